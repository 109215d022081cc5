"""The cross-check of a migration's declared ``affects_tables`` against what its up SQL does.

``affects_tables`` in dependencies.json is what reviewers and the deploy plan rely on to know
which tables a migration changes, so it must match the SQL both ways: a table the SQL creates,
alters, drops, renames or writes but the list omits is an error (``SQL003``); a listed table the
SQL never touches is a warning (``SQL004``, often a typo or a schema missing). This is about
*which* tables, not how dangerous the change is: that is :mod:`pytest_migorch.checks.risk_level`.

Names are compared the way PostgreSQL resolves them with the service's schema first on the
``search_path``; reads do not count, temporary tables are never required, views may be declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_migorch.checks.ignores import Silencer
from pytest_migorch.checks.schema_model import Effect
from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import Migration
from pytest_migorch.sql.analysis import SqlAnalysis, StatementAnalysis
from pytest_migorch.sql.cursor import display_name, parse_qualified_name
from pytest_migorch.sql.facts import AFFECTING_ROLES, OpKind, Role

__all__ = ["TABLE_NOT_DECLARED", "TABLE_NOT_TOUCHED", "RULES", "TableUse", "cross_check_tables"]

TABLE_NOT_DECLARED = Rule(
    code="SQL003", name="table-not-declared", severity=Severity.ERROR, family=Family.SQL,
    summary="The migration creates, alters, drops or writes a table that its affects_tables in "
    "dependencies.json does not list.",
    hint="Add the table to affects_tables (schema-qualified if it is not in the service's "
    "schema).",
)
TABLE_NOT_TOUCHED = Rule(
    code="SQL004", name="declared-table-not-touched", severity=Severity.WARNING,
    family=Family.SQL,
    summary="affects_tables lists a table that the migration's SQL never creates, alters, drops "
    "or writes.",
    hint="Remove it from affects_tables, or check the name (and schema) for a typo.",
)
RULES: tuple[Rule, ...] = (TABLE_NOT_DECLARED, TABLE_NOT_TOUCHED)


def _table_key(schema: str | None, name: str, service_schema: str) -> tuple[str, str]:
    return (schema or service_schema, name)


def _show(key: tuple[str, str], service_schema: str) -> str:
    return display_name(None if key[0] == service_schema else key[0], key[1])


@dataclass
class _Touches:
    """Tables (and views) the up file affects, each with the statements that touch it."""

    tables: dict[tuple[str, str], list[tuple[StatementAnalysis, Role]]] = field(
        default_factory=dict)
    views: set[tuple[str, str]] = field(default_factory=set)
    read: dict[tuple[str, str], None] = field(default_factory=dict)
    aliases: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    temporary: set[tuple[str, str]] = field(default_factory=set)


def _collect_touches(analysis: SqlAnalysis, schema: str,
                     effects: Sequence[Effect] | None = None) -> _Touches:
    touches = _Touches()
    for position, st in enumerate(analysis.statements):
        if not st.analysed:
            continue
        effect = effects[position] if effects is not None else Effect()
        for key, role in effect.extra:
            touches.tables.setdefault(key, []).append((st, role))
        for op in st.ops:
            if op.op is OpKind.CREATE_TABLE and op.has("temporary") and op.name:
                touches.temporary.add(_table_key(op.schema, op.name, schema))
        for obj in st.objects:
            key = _table_key(obj.schema, obj.name, schema)
            if obj.kind in ("view", "materialized view") and obj.role in AFFECTING_ROLES:
                touches.views.add(key)
            if obj.kind != "table" or key in effect.void:
                continue
            if obj.role not in AFFECTING_ROLES:
                touches.read[key] = None
                continue
            touches.tables.setdefault(key, []).append((st, obj.role))
            if obj.role is Role.RENAMED:
                new = _table_key(obj.new_schema or obj.schema, obj.new_name or obj.name, schema)
                touches.aliases.setdefault(key, set()).add(new)
                touches.aliases.setdefault(new, set()).add(key)
    for key in touches.temporary:
        touches.tables.pop(key, None)
    return touches


@dataclass
class TableUse:
    """The tables an up file touches and reads (as shown to users), and the findings about them."""

    touched: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def cross_check_tables(analysis: SqlAnalysis, path: Path, migration: Migration, schema: str,
                       silencer: Silencer, where: dict[str, Any],
                       effects: Sequence[Effect] | None = None) -> TableUse:
    """The tables ``analysis`` (the up file) touches, and SQL003/SQL004 against affects_tables.

    ``effects`` (one per statement, from replaying the file into the schema model) add the
    tables the facts do not name and take away the ones a statement does not change."""
    touches = _collect_touches(analysis, schema, effects)
    use = TableUse(touched=[_show(k, schema) for k in touches.tables],
                   read=[_show(k, schema) for k in touches.read if k not in touches.tables])
    if migration.meta is not None:
        use.findings = _compare(touches, analysis, path, migration, schema, silencer, where)
    return use


def _compare(touches: _Touches, analysis: SqlAnalysis, path: Path, migration: Migration,
             schema: str, silencer: Silencer, where: dict[str, Any]) -> list[Finding]:
    assert migration.meta is not None
    findings: list[Finding] = []
    declared = _declared_keys(migration.meta.affects_tables, schema)
    for key, uses in touches.tables.items():
        if key in declared or touches.aliases.get(key, set()) & declared.keys():
            continue
        unsilenced = [(st, role) for st, role in uses
                      if not silencer.silenced(str(path), st, TABLE_NOT_DECLARED.code)]
        if unsilenced:
            st, role = unsilenced[0]
            findings.append(TABLE_NOT_DECLARED.finding(
                f"table {_show(key, schema)} is {role.value} at line {st.line} ({st.summary}) "
                f"but not listed in affects_tables of {migration.id}",
                file=path, line=st.line, **where))
    touched = set(touches.tables) | touches.views
    for key, text in declared.items():
        if key in touched or touches.aliases.get(key, set()) & touched:
            continue
        findings.append(TABLE_NOT_TOUCHED.finding(
            _untouched_message(text, migration, analysis), file=migration.meta.file or path,
            line=migration.meta.line if migration.meta.file else None, **where))
    return findings


def _declared_keys(names: Iterable[str], schema: str) -> dict[tuple[str, str], str]:
    keys: dict[tuple[str, str], str] = {}
    for text in names:
        parsed = parse_qualified_name(text)
        key = _table_key(parsed[0], parsed[1], schema) if parsed else (schema, text.lower())
        keys[key] = text
    return keys


def _untouched_message(text: str, migration: Migration, analysis: SqlAnalysis) -> str:
    message = (f"affects_tables of {migration.id} lists {text!r}, which its up SQL never "
               "creates, alters, drops or writes")
    if analysis.not_analysed:
        message += (f" (as far as can be seen: {len(analysis.not_analysed)} statement(s) could "
                    "not be analysed)")
    return message
