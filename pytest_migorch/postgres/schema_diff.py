"""Schema snapshots as plain values, and readable differences between two of them.

The up/down round-trip (SPEC section 4) needs to know whether a down migration really undid its
up. A :class:`Snapshot` holds every user-visible object keyed by its identity, with the
attributes that define it as text (how :mod:`pytest_migorch.postgres.snapshot` reads them from
the catalogue); here they are compared and the differences put in words a migration author
understands ("column app.users.email changed: type text -> integer").

This module is pure (no psycopg, no server): the diff is tested on hand-built snapshots.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_migorch.findings import clip

#: An object's identity: its kind, then its qualified name parts, e.g.
#: ``("column", "public", "users", "email")`` or ``("function", "public", "f(integer)")``.
ObjectKey = tuple[str, ...]
#: An attribute value: JSON scalars, or tuples of them (lists in JSON).
AttrValue = str | int | float | bool | None | tuple[Any, ...]
Attributes = Mapping[str, AttrValue]
DifferenceKind = Literal["missing", "extra", "changed", "reordered"]

__all__ = [
    "AttrValue",
    "Attributes",
    "ObjectKey",
    "SchemaDifference",
    "Snapshot",
    "diff_snapshots",
    "display_name",
    "render_differences",
    "split_column_order",
]

# The order in which differences are listed: containers before what they contain.
_KIND_ORDER = (
    "schema", "extension", "enum", "composite type", "range type", "domain", "sequence", "table",
    "column", "constraint", "index", "view", "materialized view", "function", "procedure",
    "aggregate", "trigger",
)
# Kinds whose key is (kind, schema, relation-or-domain, name): children of a table-like parent.
_CHILD_KINDS = frozenset({"column", "constraint", "index", "trigger"})
_PARENT_KINDS = ("table", "view", "materialized view", "domain")


def _freeze(value: Any) -> AttrValue:
    """JSON arrays become tuples so attribute values stay hashable and comparable."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value  # type: ignore[no-any-return]


def _thaw(value: AttrValue) -> Any:
    """The inverse of :func:`_freeze`, for JSON output."""
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


@dataclass(frozen=True, eq=True)
class Snapshot:
    """The schema of one database: object key -> attributes. Treat it as read-only.

    Equality compares every object and attribute; ``hash()`` and :attr:`digest` are computed from
    the same canonical form, so snapshots can be cached or used as dictionary keys.
    """

    objects: Mapping[ObjectKey, Attributes] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.digest)

    @functools.cached_property
    def digest(self) -> str:
        """A SHA-256 of the canonical JSON form: equal snapshots have equal digests."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form, sorted so two dumps of equal snapshots are equal text."""
        return {
            "objects": [
                {"kind": key[0], "name": list(key[1:]),
                 "attributes": {k: _thaw(v) for k, v in sorted(self.objects[key].items())}}
                for key in sorted(self.objects)
            ]
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """The inverse of :meth:`to_json`."""
        return cls({
            (item["kind"], *item["name"]): {k: _freeze(v) for k, v in item["attributes"].items()}
            for item in data["objects"]
        })


@dataclass(frozen=True)
class SchemaDifference:
    """One way in which ``actual`` differs from ``expected``.

    ``kind`` is "missing" (only in expected), "extra" (only in actual), "changed", or
    "reordered" (a table has the same columns in another order, and nothing else about it
    differs here; see :func:`split_column_order`); ``name`` is the qualified name as displayed;
    ``message`` is the full human sentence.
    """

    kind: DifferenceKind
    object_kind: str
    name: str
    message: str
    key: ObjectKey = field(compare=False)

    def __str__(self) -> str:
        return self.message


def _qualify(schema: str, name: str, default_schema: str | None) -> str:
    return name if schema == default_schema else f"{schema}.{name}"


def display_name(key: ObjectKey, default_schema: str | None = None) -> str:
    """How an object is named in messages: ``public.users``, ``users_pkey on public.users``."""
    kind = key[0]
    if len(key) == 2:  # schemas and extensions
        return key[1]
    if kind == "column":
        return _qualify(key[1], f"{key[2]}.{key[3]}", default_schema)
    if kind in _CHILD_KINDS:
        return f"{key[3]} on {_qualify(key[1], key[2], default_schema)}"
    return _qualify(key[1], key[2], default_schema)


def _ancestors(key: ObjectKey, attrs: Attributes) -> list[ObjectKey]:
    """Keys whose absence or presence already explains this object's: its relation, schema."""
    kind = key[0]
    if kind == "schema":
        return []
    if kind == "extension":
        return [("schema", str(attrs.get("schema")))]
    found: list[ObjectKey] = [("schema", key[1])]
    if kind in _CHILD_KINDS:
        found += [(parent, key[1], key[2]) for parent in _PARENT_KINDS]
    owner = attrs.get("owned_by")
    if kind == "sequence" and isinstance(owner, tuple) and len(owner) == 3:
        found.append(("table", str(owner[0]), str(owner[1])))
    return found


def _format_value(value: AttrValue) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    return str(value)


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return clip(text, limit)


def _describe_text_change(old: str, new: str) -> str:
    """Whole values when short; otherwise the first line that differs, so bodies stay readable."""
    if "\n" not in old + new and len(old) <= 120 and len(new) <= 120:
        return f"{old} -> {new}"
    old_lines, new_lines = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        before = _shorten(" / ".join(old_lines[i1:i2])) or "nothing"
        after = _shorten(" / ".join(new_lines[j1:j2])) or "nothing"
        return f"line {i1 + 1}: {before} -> {after}"
    return f"{_shorten(old)} -> {_shorten(new)}"  # differ only in line endings


def _describe_tuple_change(label: str, old: tuple[Any, ...], new: tuple[Any, ...]) -> str:
    added = [v for v in new if v not in old]
    removed = [v for v in old if v not in new]
    parts = []
    if added:
        parts.append(f"{label} {', '.join(map(_format_value, added))} added")
    if removed:
        parts.append(f"{label} {', '.join(map(_format_value, removed))} removed")
    if not parts:
        parts.append(f"{label} order {_format_value(old)} -> {_format_value(new)}")
    return "; ".join(parts)


def _describe_attribute(name: str, old: AttrValue, new: AttrValue) -> str:
    """One clause such as ``type text -> integer`` or ``NULL -> NOT NULL``."""
    if name == "not_null":
        return f"{'NOT NULL' if old else 'NULL'} -> {'NOT NULL' if new else 'NULL'}"
    if name == "unlogged":
        return f"{'unlogged' if old else 'logged'} -> {'unlogged' if new else 'logged'}"
    label = name.replace("_", " ")
    if isinstance(old, tuple) or isinstance(new, tuple):  # an absent list reads as empty
        return _describe_tuple_change(label, old or (), new or ())  # type: ignore[arg-type]
    if isinstance(old, str) and isinstance(new, str):
        change = _describe_text_change(old, new)
        return change if name == "definition" else f"{label} {change}"
    return f"{label} {_format_value(old)} -> {_format_value(new)}"


def _column_order_change(kind: str, old: Attributes, new: Attributes) -> str | None:
    """``column order (a, b) -> (b, a)`` when a table has the same columns in another order.

    Added or dropped columns have their own lines, so only a pure reordering is news here."""
    before, after = old.get("columns"), new.get("columns")
    if kind != "table" or before == after:
        return None
    if not isinstance(before, tuple) or not isinstance(after, tuple):
        return None
    if sorted(before) != sorted(after):
        return None
    return f"column order {_format_value(before)} -> {_format_value(after)}"


def _changed_attributes(kind: str, old: Attributes, new: Attributes) -> list[str]:
    """The clauses of a change, without the order of a table's columns (reported apart)."""
    clauses = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after or (kind == "table" and name == "columns"):
            continue
        clauses.append(_describe_attribute(name, before, after))
    return clauses


def _sort_key(diff: SchemaDifference) -> tuple[int, ObjectKey, str]:
    kind = diff.object_kind
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, diff.key, diff.kind


def diff_snapshots(
    expected: Snapshot, actual: Snapshot, *, default_schema: str | None = None
) -> list[SchemaDifference]:
    """How ``actual`` differs from ``expected``, containers first, one line per root cause.

    An object whose schema or table is itself missing (or extra) is not listed separately: "table
    public.orders is missing" says everything about its columns, indexes and constraints. Names
    are ``schema.name``; objects in ``default_schema`` are shown without their schema.
    """
    missing = expected.objects.keys() - actual.objects.keys()
    extra = actual.objects.keys() - expected.objects.keys()
    passes: tuple[tuple[DifferenceKind, set[ObjectKey], Snapshot, str], ...] = (
        ("missing", missing, expected, "is missing"),
        ("extra", extra, actual, "is still there"),
    )
    diffs: list[SchemaDifference] = []
    for kind, keys, source, verb in passes:
        for key in keys:
            if any(parent in keys for parent in _ancestors(key, source.objects[key])):
                continue
            name = display_name(key, default_schema)
            diffs.append(SchemaDifference(kind, key[0], name, f"{key[0]} {name} {verb}", key))
    for key in expected.objects.keys() & actual.objects.keys():
        old, new = expected.objects[key], actual.objects[key]
        if old is new or old == new:  # most objects; snapshots kept up to date share them
            continue
        name = display_name(key, default_schema)
        clauses = _changed_attributes(key[0], old, new)
        if clauses:
            message = f"{key[0]} {name} changed: {'; '.join(clauses)}"
            diffs.append(SchemaDifference("changed", key[0], name, message, key))
        order = _column_order_change(key[0], old, new)
        if order is not None:
            message = f"{key[0]} {name} changed: {order}"
            diffs.append(SchemaDifference("reordered", key[0], name, message, key))
    return sorted(diffs, key=_sort_key)


def split_column_order(
    diffs: Iterable[SchemaDifference],
) -> tuple[list[SchemaDifference], list[SchemaDifference]]:
    """``(significant, reordered)``: a table's column order apart from everything else.

    A down file that re-adds a dropped column cannot put it back where it was (PostgreSQL
    appends it), so a column-order difference is not a defect of the down file by itself; it
    still matters to ``SELECT *``, and to ``COPY`` and ``INSERT`` without a column list, which is
    why it is reported apart rather than dropped. Column lists of indexes and constraints are
    part of their definitions and stay significant."""
    significant: list[SchemaDifference] = []
    reordered: list[SchemaDifference] = []
    for diff in diffs:
        (reordered if diff.kind == "reordered" else significant).append(diff)
    return significant, reordered


def render_differences(
    diffs: Iterable[SchemaDifference], context: str, *, limit: int = 20
) -> str:
    """A few readable lines for a test failure, e.g. with ``context`` "after down of
    000002_add_profiles, compared with before its up"; at most ``limit`` differences are listed.
    """
    items = list(diffs)
    if not items:
        return f"The schema is identical {context}."
    noun = "difference" if len(items) == 1 else "differences"
    lines = [f"The schema differs {context} ({len(items)} {noun}):"]
    lines += [f"  - {diff.message}" for diff in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)
