"""Schema snapshots of a PostgreSQL database and readable differences between two of them.

The up/down round-trip (SPEC section 4) needs to know whether a down migration really undid its
up: it snapshots the schema before the up, after the up, after the down and after the re-up, and
compares. A :class:`Snapshot` is therefore a plain value: every user-visible object (schemas,
tables, columns, constraints, indexes, sequences, views, functions, triggers, types, extensions
and their comments) keyed by its identity, with the attributes that define it rendered as text by
PostgreSQL itself (``format_type``, ``pg_get_*def``). Text rendering keeps the snapshot free of
OIDs, so the same schema built in two databases gives equal snapshots.

Design choices:

- One catalogue query (a ``UNION ALL`` aggregated into one JSON document) keeps a snapshot in
  the low milliseconds; it runs three times per migration. It is kept as a named server-side
  prepared statement, so it is parsed and planned once per session (see :func:`take_snapshot`).
- The query runs with ``search_path`` set to ``pg_catalog`` only, so every name PostgreSQL prints
  is schema-qualified and does not depend on the caller's session.
- Objects that belong to an extension are left out: the extension entry stands for them.
- Sequence current values are data, not schema, and are not recorded.
- Exclusions take shell-style wildcards (``("public", "*_schema_migrations")``); excluding a table
  also excludes its columns, constraints, indexes, triggers and the sequences it owns.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pytest_migorch.errors import DatabaseError
from pytest_migorch.findings import clip

__all__ = [
    "SchemaDifference",
    "Snapshot",
    "diff_snapshots",
    "display_name",
    "render_differences",
    "take_snapshot",
]

#: An object's identity: its kind, then its qualified name parts, e.g.
#: ``("column", "public", "users", "email")`` or ``("function", "public", "f(integer)")``.
ObjectKey = tuple[str, ...]
#: An attribute value: JSON scalars, or tuples of them (lists in JSON).
AttrValue = str | int | float | bool | None | tuple[Any, ...]
Attributes = Mapping[str, AttrValue]
DifferenceKind = Literal["missing", "extra", "changed"]

# The order in which differences are listed: containers before what they contain.
_KIND_ORDER = (
    "schema", "extension", "enum", "composite type", "range type", "domain", "sequence", "table",
    "column", "constraint", "index", "view", "materialized view", "function", "procedure",
    "aggregate", "trigger",
)
# Kinds whose key is (kind, schema, relation-or-domain, name): children of a table-like parent.
_CHILD_KINDS = frozenset({"column", "constraint", "index", "trigger"})
_PARENT_KINDS = ("table", "view", "materialized view", "domain")

# One statement returning one JSON document: a list of ``[kind, *name parts, attributes]``
# arrays. One document costs one JSON parse instead of one per object; nulls are dropped on the
# client (a missing attribute reads as None). Exclusions are inlined as literals (see
# _snapshot_query), so the statement has no parameters and PostgreSQL plans it once, generically.
# Comments, extension membership and column defaults are looked up per object through their
# catalogue indexes rather than joined in bulk: the schemas under test are small next to the
# catalogue itself (pg_description alone describes thousands of built-in objects).
_SNAPSHOT_SQL = r"""
WITH nsp AS MATERIALIZED (
    SELECT n.oid, n.nspname FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
      AND NOT n.nspname LIKE ANY ({exclude_schemas})
), excluded_rel AS MATERIALIZED (
    SELECT c.oid FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
    JOIN unnest({exclude_table_schemas}, {exclude_table_names}) AS x(s, t)
      ON n.nspname LIKE x.s AND c.relname LIKE x.t
), rel AS MATERIALIZED (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relpartbound, c.reloptions,
           n.nspname,
           (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
              AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0) AS comment
    FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      AND NOT EXISTS (SELECT FROM excluded_rel e WHERE e.oid = c.oid)
      AND NOT EXISTS (SELECT FROM pg_depend d JOIN excluded_rel e ON e.oid = d.refobjid
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
), typ AS MATERIALIZED (
    SELECT t.oid, t.typname, t.typtype, t.typrelid, t.typbasetype, t.typtypmod, t.typnotnull,
           t.typdefault, n.nspname,
           (SELECT d.description FROM pg_description d WHERE d.objoid = t.oid
              AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0) AS comment
    FROM pg_type t JOIN nsp n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'c', 'd', 'r')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
)
SELECT json_agg(o)::text FROM (
SELECT json_build_array('schema', n.nspname, json_build_object(
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = n.oid
                   AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0)))
FROM nsp n
UNION ALL
SELECT json_build_array('extension', e.extname, json_build_object(
       'schema', n.nspname, 'version', e.extversion,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = e.oid
                   AND d.classoid = 'pg_extension'::regclass AND d.objsubid = 0)))
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE NOT n.nspname LIKE ANY ({exclude_schemas})
UNION ALL
SELECT json_build_array('table', r.nspname, r.relname, json_build_object(
       'kind', CASE r.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign'
                              ELSE 'ordinary' END,
       'unlogged', r.relpersistence = 'u',
       'partition_key', CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END,
       'partition_bound', pg_get_expr(r.relpartbound, r.oid),
       'parents', (SELECT array_agg(i.inhparent::regclass::text ORDER BY i.inhseqno)
                   FROM pg_inherits i WHERE i.inhrelid = r.oid),
       'options', r.reloptions,
       'columns', (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
       'comment', r.comment))
FROM rel r WHERE r.relkind IN ('r', 'p', 'f')
UNION ALL
SELECT json_build_array('column', r.nspname, r.relname, a.attname, json_build_object(
       'type', format_type(a.atttypid, a.atttypmod),
       'not_null', a.attnotnull,
       'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
       'collation', CASE WHEN a.attcollation <> 0 AND a.attcollation <>
           (SELECT t.typcollation FROM pg_type t WHERE t.oid = a.atttypid) THEN
           (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation) END,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = a.attrelid
                   AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum)))
FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE r.relkind IN ('r', 'p', 'f')
UNION ALL
SELECT json_build_array('constraint', r.nspname, r.relname, c.conname, json_build_object(
       'type', CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
               WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion'
               WHEN 't' THEN 'trigger' ELSE c.contype::text END,
       'definition', pg_get_constraintdef(c.oid),
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
                   AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0)))
FROM rel r JOIN pg_constraint c ON c.conrelid = r.oid
UNION ALL
SELECT json_build_array('constraint', t.nspname, t.typname, c.conname, json_build_object(
       'type', 'check', 'definition', pg_get_constraintdef(c.oid),
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
                   AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0)))
FROM typ t JOIN pg_constraint c ON c.contypid = t.oid WHERE t.typtype = 'd'
UNION ALL
SELECT json_build_array('index', r.nspname, r.relname, i.relname, json_build_object(
       'definition', pg_get_indexdef(x.indexrelid),
       'valid', x.indisvalid,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = i.oid
                   AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0)))
FROM rel r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class i ON i.oid = x.indexrelid
WHERE NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = x.indrelid
                  AND c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT json_build_array('sequence', r.nspname, r.relname, json_build_object(
       'type', format_type(s.seqtypid, NULL), 'start', s.seqstart,
       'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax, 'cache', s.seqcache,
       'cycle', s.seqcycle,
       'owned_by', (SELECT ARRAY[tn.nspname, tc.relname, ta.attname]
                    FROM pg_depend d
                    JOIN pg_class tc ON tc.oid = d.refobjid
                    JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                    JOIN pg_attribute ta ON ta.attrelid = tc.oid AND ta.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                    LIMIT 1),
       'comment', r.comment))
FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
UNION ALL
SELECT json_build_array(CASE r.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
       r.nspname, r.relname, json_build_object(
       'definition', pg_get_viewdef(r.oid), 'options', r.reloptions, 'comment', r.comment))
FROM rel r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT json_build_array(
       CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       n.nspname, p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
       json_build_object(
       'definition', CASE WHEN p.prokind = 'a' THEN
           (SELECT concat_ws(' ', 'SFUNC', ag.aggtransfn::regproc::text,
                             'STYPE', format_type(ag.aggtranstype, NULL),
                             'FINALFUNC', NULLIF(ag.aggfinalfn, 0)::regproc::text,
                             'INITCOND', ag.agginitval)
            FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
           ELSE pg_get_functiondef(p.oid) END,
       'result', pg_get_function_result(p.oid),
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = p.oid
                   AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0)))
FROM pg_proc p JOIN nsp n ON n.oid = p.pronamespace
WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT json_build_array('trigger', r.nspname, r.relname, g.tgname, json_build_object(
       'definition', pg_get_triggerdef(g.oid),
       'enabled', CASE g.tgenabled WHEN 'O' THEN 'yes' WHEN 'D' THEN 'no' WHEN 'R' THEN 'replica'
                  WHEN 'A' THEN 'always' END,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = g.oid
                   AND d.classoid = 'pg_trigger'::regclass AND d.objsubid = 0)))
FROM rel r JOIN pg_trigger g ON g.tgrelid = r.oid
WHERE NOT g.tgisinternal
UNION ALL
SELECT json_build_array('enum', t.nspname, t.typname, json_build_object(
       'labels', (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                  WHERE e.enumtypid = t.oid),
       'comment', t.comment))
FROM typ t WHERE t.typtype = 'e'
UNION ALL
SELECT json_build_array('composite type', t.nspname, t.typname, json_build_object(
       'attributes', (SELECT array_agg(quote_ident(a.attname) || ' '
                                       || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                      FROM pg_attribute a
                      WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
       'comment', t.comment))
FROM typ t JOIN pg_class c ON c.oid = t.typrelid WHERE t.typtype = 'c' AND c.relkind = 'c'
UNION ALL
SELECT json_build_array('domain', t.nspname, t.typname, json_build_object(
       'base_type', format_type(t.typbasetype, t.typtypmod), 'not_null', t.typnotnull,
       'default', t.typdefault, 'comment', t.comment))
FROM typ t WHERE t.typtype = 'd'
UNION ALL
SELECT json_build_array('range type', t.nspname, t.typname, json_build_object(
       'subtype', format_type(g.rngsubtype, NULL), 'comment', t.comment))
FROM typ t JOIN pg_range g ON g.rngtypid = t.oid
) AS objects(o)
"""


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

    def of_kind(self, kind: str) -> dict[ObjectKey, Attributes]:
        """The objects of one kind, e.g. ``snapshot.of_kind("table")``."""
        return {key: attrs for key, attrs in self.objects.items() if key[0] == kind}

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


def _glob_to_like(pattern: str) -> str:
    """Shell-style ``*`` and ``?`` to a LIKE pattern, escaping LIKE's own wildcards."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _text_array(items: Iterable[str]) -> sql.Composable:
    return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(map(sql.Literal, items)))


@functools.lru_cache(maxsize=32)
def _snapshot_query(
    exclude_schemas: tuple[str, ...], exclude_tables: tuple[tuple[str, str], ...]
) -> sql.Composed:
    """The snapshot statement with the exclusions inlined as LIKE patterns."""
    return sql.SQL(_SNAPSHOT_SQL).format(
        exclude_schemas=_text_array(_glob_to_like(s) for s in exclude_schemas),
        exclude_table_schemas=_text_array(_glob_to_like(s) for s, _ in exclude_tables),
        exclude_table_names=_text_array(_glob_to_like(t) for _, t in exclude_tables),
    )


def take_snapshot(
    conn: psycopg.Connection[Any],
    *,
    exclude_schemas: Iterable[str] = (),
    exclude_tables: Iterable[tuple[str, str]] = (),
) -> Snapshot:
    """Snapshot every non-system schema reachable through ``conn``.

    ``exclude_schemas`` names schemas and ``exclude_tables`` ``(schema, table)`` pairs to leave
    out; both accept ``*`` and ``?`` wildcards. The caller's transaction state and
    ``search_path`` are left as they were (the work runs in a transaction or a savepoint).

    The statement is kept as a named server-side prepared statement (the name hashes its text).
    Planning it costs about as much as running it, and psycopg's own automatic preparation does
    not help here: psycopg forgets every prepared statement after any DROP, ALTER or ROLLBACK,
    which is what a round-trip runs between two snapshots. PostgreSQL re-plans the statement by
    itself when a catalogue change requires it; if it is gone (``DEALLOCATE ALL``, a new
    session), it is prepared again.
    """
    query = _snapshot_query(tuple(exclude_schemas), tuple(tuple(p) for p in exclude_tables))
    try:
        text = query.as_bytes(conn)
        statement = "migorch_snapshot_" + hashlib.sha256(text).hexdigest()[:16]
        # Our own transaction ends with the snapshot and takes the search_path with it; in the
        # caller's transaction (a savepoint) the previous value has to be put back.
        restore = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
            # search_path = pg_catalog: every name PostgreSQL prints comes out schema-qualified.
            row = cur.execute(
                "SELECT current_setting('search_path'),"
                " set_config('search_path', 'pg_catalog', true),"
                " EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE name = %s)",
                [statement], prepare=False).fetchone()
            assert row is not None
            previous_path, _, prepared = row
            if not prepared:
                prepare = sql.SQL("PREPARE {} AS ").format(sql.Identifier(statement))
                cur.execute(prepare.as_bytes(conn) + text, prepare=False)
            result = cur.execute(sql.SQL("EXECUTE {}").format(sql.Identifier(statement)),
                                 prepare=False).fetchone()
            if restore:
                cur.execute("SELECT set_config('search_path', %s, true)", [previous_path],
                            prepare=False)
    except psycopg.Error as exc:
        raise DatabaseError(f"could not take a schema snapshot: {exc}") from exc
    document = json.loads(result[0]) if result and result[0] else []
    objects: dict[ObjectKey, Attributes] = {}
    for *key, attrs in document:  # the statement's arrays are flat: tuple() freezes them
        objects[tuple(key)] = {
            attr: tuple(value) if isinstance(value, list) else value
            for attr, value in attrs.items() if value is not None}
    return Snapshot(objects)


@dataclass(frozen=True)
class SchemaDifference:
    """One way in which ``actual`` differs from ``expected``.

    ``kind`` is "missing" (only in expected), "extra" (only in actual) or "changed";
    ``name`` is the qualified name as displayed; ``message`` is the full human sentence.
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


def _changed_attributes(kind: str, old: Attributes, new: Attributes) -> list[str]:
    clauses = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if kind == "table" and name == "columns":
            # Added or dropped columns have their own lines; only a pure reordering is news.
            if not isinstance(before, tuple) or not isinstance(after, tuple):
                continue
            if sorted(before) != sorted(after):
                continue
            clauses.append(f"column order {_format_value(before)} -> {_format_value(after)}")
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
        clauses = _changed_attributes(key[0], expected.objects[key], actual.objects[key])
        if clauses:
            name = display_name(key, default_schema)
            message = f"{key[0]} {name} changed: {'; '.join(clauses)}"
            diffs.append(SchemaDifference("changed", key[0], name, message, key))
    return sorted(diffs, key=_sort_key)


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
