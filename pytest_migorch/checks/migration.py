"""Check one migration's SQL: affects_tables, risk rules, declared risk_level, ignore comments.

:func:`check_migration` is what ``migorch validate``, the pytest plugin and the deploy runner
call. It analyses the migration's files (:mod:`analysis`, cached by content), runs the risk rules
on the *up* file (:mod:`risk_rules`), derives the risk level, cross-checks ``affects_tables`` and
the declared ``risk_level`` from dependencies.json, applies ``-- migorch:ignore`` comments and
returns every finding with service, migration, file and line set. :func:`plan_entry` turns the
same report into the line the runner prints before applying anything.

Decisions users rely on (docs/sql-rules.md has them all):

- ``affects_tables`` and the risk level are about the up file; the down file is only checked for
  statements that cannot be read (down migrations are destructive by nature).
- Names are compared the way PostgreSQL resolves them with the service's schema first on the
  ``search_path``: ``users`` and ``user_service.users`` are the same table for ``user-service``;
  unquoted names compare case-insensitively, quoted ones exactly.
- A table that is only read is not affected; created, altered (including indexes, triggers,
  comments and grants on it), dropped, renamed or written tables are. Views may be declared but
  need not be; temporary tables are never required.
- Without dependencies.json there is no declared level: rules are reported as warnings and no
  risk-level or affects_tables finding is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_migorch.checks.rules import (
    NEEDS_NO_TRANSACTION,
    RISK_RULES,
    RISK_TOO_LOW,
    Hit,
    evaluate,
)
from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import Migration, MigrationFile, RiskLevel, Service
from pytest_migorch.sql.analysis import (
    INVALID_SQL,
    NOT_ANALYSED,
    UNTERMINATED_SQL,
    AnalysisCache,
    SqlAnalysis,
    StatementAnalysis,
    analyse_sql,
)
from pytest_migorch.sql.analysis import RULES as ANALYSIS_RULES
from pytest_migorch.sql.cursor import display_name, parse_qualified_name
from pytest_migorch.sql.facts import AFFECTING_ROLES, OpKind, Role

__all__ = [
    "RULES",
    "FiredRule",
    "MigrationReport",
    "PlanEntry",
    "check_migration",
    "plan_entry",
    "migration_analyser",
]

logger = logging.getLogger(__name__)

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
UNUSED_IGNORE = Rule(
    code="SQL005", name="unused-ignore", severity=Severity.WARNING, family=Family.SQL,
    summary="A `-- migorch:ignore` comment silences nothing: no such finding at the statement "
    "after it, or the code is not a SQL or risk rule.",
    hint="Remove the comment or fix the code in it.",
)
OWN_TRANSACTION = Rule(
    code="SQL006", name="transaction-control-in-transaction", severity=Severity.ERROR,
    family=Family.SQL,
    summary="A transactional migration controls the transaction itself (COMMIT, ROLLBACK, "
    "SAVEPOINT... other than one BEGIN/COMMIT around the whole file): migorch runs it inside "
    "the transaction that also records it, and refuses such a file.",
    hint="Remove the transaction control, or mark the migration \"transactional\": false in "
    "dependencies.json.",
)

RULES: tuple[Rule, ...] = (TABLE_NOT_DECLARED, TABLE_NOT_TOUCHED, UNUSED_IGNORE, OWN_TRANSACTION)

#: What an ignore comment may name (a code or a rule name) -> the rule's code.
_SILENCEABLE: dict[str, str] = {
    key: rule.code
    for rule in (*ANALYSIS_RULES, *RULES, *(r.rule for r in RISK_RULES))
    for key in (rule.code, rule.name)
}


@dataclass(frozen=True)
class FiredRule:
    """A risk rule that fired on a statement of the up file."""

    code: str
    name: str
    level: RiskLevel | None
    file: Path | None
    line: int
    statement: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name,
                "level": self.level.value if self.level else None,
                "file": str(self.file) if self.file else None, "line": self.line,
                "statement": self.statement, "message": self.message}


@dataclass
class MigrationReport:
    """Everything the SQL analysis found for one migration."""

    service: str
    migration_id: str
    findings: list[Finding] = field(default_factory=list)
    derived_level: RiskLevel = RiskLevel.LOW
    declared_level: RiskLevel | None = None
    fired: list[FiredRule] = field(default_factory=list)
    ignored: list[FiredRule] = field(default_factory=list)
    tables_touched: list[str] = field(default_factory=list)
    tables_read: list[str] = field(default_factory=list)
    statements_total: int = 0
    statements_analysed: int = 0
    not_analysed: list[tuple[str, int]] = field(default_factory=list)
    down_not_analysed: list[tuple[str, int]] = field(default_factory=list)

    @property
    def effective_level(self) -> RiskLevel:
        """The level the runner acts on: the higher of declared and derived."""
        if self.declared_level is None:
            return self.derived_level
        return max(self.declared_level, self.derived_level)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "migration": self.migration_id,
            "risk_declared": self.declared_level.value if self.declared_level else None,
            "risk_derived": self.derived_level.value,
            "risk_effective": self.effective_level.value,
            "fired": [f.to_json() for f in self.fired],
            "ignored": [f.to_json() for f in self.ignored],
            "tables_touched": self.tables_touched, "tables_read": self.tables_read,
            "statements_total": self.statements_total,
            "statements_analysed": self.statements_analysed,
            "not_analysed": [{"kind": k, "line": n} for k, n in self.not_analysed],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class PlanEntry:
    """One migration as the deploy runner's plan shows it."""

    service: str
    migration_id: str
    risk_declared: RiskLevel | None
    risk_derived: RiskLevel
    risk_effective: RiskLevel
    rules_fired: tuple[tuple[str, str, int], ...]
    tables: tuple[str, ...]
    estimated_duration: str | None
    estimated_seconds: float | None
    statements_not_analysed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "migration": self.migration_id,
            "risk_declared": self.risk_declared.value if self.risk_declared else None,
            "risk_derived": self.risk_derived.value, "risk": self.risk_effective.value,
            "rules": [{"code": c, "name": n, "line": line} for c, n, line in self.rules_fired],
            "tables": list(self.tables), "estimated_duration": self.estimated_duration,
            "estimated_seconds": self.estimated_seconds,
            "statements_not_analysed": self.statements_not_analysed,
        }

    def render(self) -> str:
        """``000002_add_profiles  risk high (declared medium)  tables: a, b  ~45s  RSK003@3``."""
        declared = self.risk_declared.value if self.risk_declared else "undeclared"
        risk = f"risk {self.risk_effective.value} (declared {declared}, derived " \
               f"{self.risk_derived.value})"
        parts = [self.migration_id, risk, "tables: " + (", ".join(self.tables) or "-"),
                 self.estimated_duration or "duration unknown"]
        if self.rules_fired:
            parts.append(" ".join(f"{code}@{line}" for code, _, line in self.rules_fired))
        if self.statements_not_analysed:
            parts.append(f"{self.statements_not_analysed} statement(s) not analysed")
        return "  ".join(parts)


class _Silencer:
    """Applies ignore comments and remembers which codes were used, per file and statement."""

    def __init__(self) -> None:
        self.known = _SILENCEABLE
        self.used: set[tuple[str, int, str]] = set()

    def silenced(self, file_key: str, statement: StatementAnalysis, code: str) -> bool:
        codes = {self.known.get(c, c) for c in statement.ignored_codes}
        if code in codes:
            self.used.add((file_key, statement.index, code))
            return True
        return False

    def unused(self, file_key: str, analysis: SqlAnalysis, file: Path,
               where: dict[str, Any], risk_checked: bool) -> list[Finding]:
        findings: list[Finding] = []
        for statement in analysis.statements:
            for ignore in statement.ignores:
                idle = [c for c in ignore.codes
                        if (file_key, statement.index, self.known.get(c, "")) not in self.used]
                if idle or not ignore.codes:
                    findings.append(UNUSED_IGNORE.finding(
                        self._message(idle, risk_checked), file=file, line=ignore.line, **where))
        for ignore in analysis.orphan_ignores:
            findings.append(UNUSED_IGNORE.finding(
                "`-- migorch:ignore` stands after the last statement and applies to none",
                file=file, line=ignore.line, **where))
        return findings

    def _message(self, idle: list[str], risk_checked: bool) -> str:
        if not idle:
            return "`-- migorch:ignore` names no code"
        unknown = [c for c in idle if c not in self.known]
        text = f"`-- migorch:ignore {', '.join(idle)}` silences nothing at this statement"
        if unknown:
            text += f" ({', '.join(unknown)}: not a SQL or risk rule)"
        elif not risk_checked and any(self.known[c].startswith("RSK") for c in idle):
            text += " (risk rules are checked on up files only)"
        return text


def check_migration(migration: Migration, service_schema: str,
                    cache: AnalysisCache | None = None, *,
                    lock_timeout_assumed: bool = False) -> MigrationReport:
    """Analyse ``migration`` (up file fully, down file for unreadable statements).

    ``service_schema`` is the schema first on the search_path (``user_service`` for
    ``user-service``). ``lock_timeout_assumed`` turns off the missing-lock_timeout rule for a
    runner that sets lock_timeout itself.
    """
    report = MigrationReport(service=migration.service, migration_id=migration.id,
                             declared_level=migration.meta.risk_level if migration.meta else None)
    where = {"service": migration.service, "migration": migration.id}
    silencer = _Silencer()
    up = _analyse(migration.up, cache)
    down = _analyse(migration.down, cache)
    if down is not None and migration.down is not None:
        report.findings += _file_findings(down, migration.down.path, migration, silencer, where)
        report.down_not_analysed = down.not_analysed
    if up is not None and migration.up is not None:
        path = migration.up.path
        report.findings += _file_findings(up, path, migration, silencer, where)
        report.statements_total = up.statements_total
        report.statements_analysed = up.statements_analysed
        report.not_analysed = up.not_analysed
        hits = evaluate(up.statements, schema=service_schema,
                        transactional=migration.transactional,
                        lock_timeout_assumed=lock_timeout_assumed)
        _apply_hits(report, hits, path, migration, silencer, where)
        _cross_check_tables(report, up, path, migration, service_schema, silencer, where)
        _check_declared_level(report, path, migration, where)
    for analysis, file in ((down, migration.down), (up, migration.up)):
        if analysis is not None and file is not None:
            report.findings += silencer.unused(str(file.path), analysis, file.path, where,
                                               risk_checked=file is migration.up)
    return report


def _analyse(file: MigrationFile | None, cache: AnalysisCache | None) -> SqlAnalysis | None:
    if file is None:
        return None
    try:
        text = file.read_text()
    except OSError as exc:  # discovery reports unreadable files; nothing to analyse here
        logger.debug("cannot read %s: %s", file.path, exc)
        return None
    return analyse_sql(text, cache)


def _file_findings(analysis: SqlAnalysis, path: Path, migration: Migration,
                   silencer: _Silencer, where: dict[str, Any]) -> list[Finding]:
    """SQL001 (unterminated), SQL002 (not analysed), SQL006 (own BEGIN/COMMIT) and SQL007
    (certainly invalid) of a file."""
    findings: list[Finding] = []
    key = str(path)
    if analysis.unterminated_comment_line is not None:
        findings.append(UNTERMINATED_SQL.finding(
            f"unterminated block comment starting at line {analysis.unterminated_comment_line}",
            file=path, line=analysis.unterminated_comment_line, **where))
    for st in analysis.statements:
        if st.unterminated:
            findings.append(UNTERMINATED_SQL.finding(st.unterminated, file=path, line=st.line,
                                                     **where))
        elif st.invalid:
            findings.append(INVALID_SQL.finding(f"{st.reason} ({st.summary})", file=path,
                                                line=st.line, **where))
        elif not st.analysed and not silencer.silenced(key, st, NOT_ANALYSED.code):
            findings.append(NOT_ANALYSED.finding(
                f"{st.kind} at line {st.line} was not analysed: {st.reason} ({st.summary})",
                file=path, line=st.line, **where))
    if migration.transactional:
        findings += _transaction_control(analysis, path, migration, silencer, where)
    return findings


def _transaction_control(analysis: SqlAnalysis, path: Path, migration: Migration,
                         silencer: _Silencer, where: dict[str, Any]) -> list[Finding]:
    """SQL006: transaction control the runner cannot honour in a transactional migration.

    Like the runner, a BEGIN as the first statement (and then a COMMIT as the last) is a
    wrapper that is simply dropped; any other transaction control is refused.
    """
    statements = analysis.statements
    control = [s for s in statements if any(op.op is OpKind.TRANSACTION for op in s.ops)]
    wrapper: set[int] = set()
    if statements and _tx_detail(statements[0]) == "begin":
        wrapper.add(statements[0].index)
        if len(statements) > 1 and _tx_detail(statements[-1]) == "commit":
            wrapper.add(statements[-1].index)
    offending = [s for s in control if s.index not in wrapper
                 and not silencer.silenced(str(path), s, OWN_TRANSACTION.code)]
    if not offending:
        return []
    first = offending[0]
    severity = None if migration.meta is not None else Severity.WARNING
    return [OWN_TRANSACTION.finding(
        f"{first.kind} at line {first.line} controls the transaction inside a transactional "
        "migration; the runner refuses it (only a BEGIN/COMMIT around the whole file is "
        "dropped)", file=path, line=first.line, severity=severity, **where)]


def _tx_detail(statement: StatementAnalysis) -> str | None:
    return next((op.detail for op in statement.ops if op.op is OpKind.TRANSACTION), None)


def _apply_hits(report: MigrationReport, hits: list[Hit], path: Path, migration: Migration,
                silencer: _Silencer, where: dict[str, Any]) -> None:
    """Turn rule hits into fired rules, findings and the derived level."""
    lock_timeout_done = False
    for hit in hits:
        rule = hit.rule
        fired = FiredRule(rule.code, rule.rule.name, rule.level, path, hit.statement.line,
                          hit.statement.summary, hit.message)
        if silencer.silenced(str(path), hit.statement, rule.code):
            report.ignored.append(fired)
            continue
        if rule.rule.name == "missing-lock-timeout":
            if lock_timeout_done:
                continue  # one finding per migration: the fix is one line at the top
            lock_timeout_done = True
        report.fired.append(fired)
        if rule.reported:
            report.findings.append(_hit_finding(hit, path, migration, where))
    levels = [f.level for f in report.fired if f.level is not None]
    report.derived_level = max(levels, default=RiskLevel.LOW)


def _hit_finding(hit: Hit, path: Path, migration: Migration, where: dict[str, Any]) -> Finding:
    rule = hit.rule
    message = hit.message
    if rule.level is not None:
        message += f" (implies {rule.level.value} risk)"
    severity = None
    if rule is NEEDS_NO_TRANSACTION and migration.meta is None:
        severity = Severity.WARNING  # no metadata: nowhere to mark it non-transactional yet
    return rule.rule.finding(message, file=path, line=hit.statement.line, severity=severity,
                             **where)


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


def _collect_touches(analysis: SqlAnalysis, schema: str) -> _Touches:
    touches = _Touches()
    for st in analysis.statements:
        if not st.analysed:
            continue
        for op in st.ops:
            if op.op is OpKind.CREATE_TABLE and op.has("temporary") and op.name:
                touches.temporary.add(_table_key(op.schema, op.name, schema))
        for obj in st.objects:
            key = _table_key(obj.schema, obj.name, schema)
            if obj.kind in ("view", "materialized view") and obj.role in AFFECTING_ROLES:
                touches.views.add(key)
            if obj.kind != "table":
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


def _cross_check_tables(report: MigrationReport, analysis: SqlAnalysis, path: Path,
                        migration: Migration, schema: str, silencer: _Silencer,
                        where: dict[str, Any]) -> None:
    touches = _collect_touches(analysis, schema)
    report.tables_touched = [_show(k, schema) for k in touches.tables]
    report.tables_read = [_show(k, schema) for k in touches.read if k not in touches.tables]
    if migration.meta is None:
        return
    declared = _declared_keys(migration.meta.affects_tables, schema)
    for key, uses in touches.tables.items():
        if key in declared or touches.aliases.get(key, set()) & declared.keys():
            continue
        unsilenced = [(st, role) for st, role in uses
                      if not silencer.silenced(str(path), st, TABLE_NOT_DECLARED.code)]
        if unsilenced:
            st, role = unsilenced[0]
            report.findings.append(TABLE_NOT_DECLARED.finding(
                f"table {_show(key, schema)} is {role.value} at line {st.line} ({st.summary}) "
                f"but not listed in affects_tables of {migration.id}",
                file=path, line=st.line, **where))
    touched = set(touches.tables) | touches.views
    for key, text in declared.items():
        if key in touched or touches.aliases.get(key, set()) & touched:
            continue
        report.findings.append(TABLE_NOT_TOUCHED.finding(
            _untouched_message(text, migration, analysis), file=migration.meta.file or path,
            line=migration.meta.line if migration.meta.file else None, **where))


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


def _check_declared_level(report: MigrationReport, path: Path, migration: Migration,
                          where: dict[str, Any]) -> None:
    """RSK028 when dependencies.json declares a lower risk_level than the SQL implies."""
    declared = report.declared_level
    if declared is None or report.derived_level <= declared:
        return
    top = [f for f in report.fired if f.level == report.derived_level]
    first = top[0]
    others = sorted({f.code for f in top} - {first.code})
    also = f" (also {', '.join(others)})" if others else ""
    location = ""
    if migration.meta is not None and migration.meta.file is not None:
        location = f" in {migration.meta.file.name}" + (
            f" line {migration.meta.line}" if migration.meta.line else "")
    report.findings.append(RISK_TOO_LOW.rule.finding(
        f"declared risk_level {declared.value!r}{location} is lower than the derived "
        f"{report.derived_level.value!r}: {first.code} {first.name} at {path.name}:{first.line} "
        f"({first.statement}){also}", file=path, line=first.line, **where))


def plan_entry(migration: Migration, report: MigrationReport) -> PlanEntry:
    """The runner's plan line for ``migration`` from its :func:`check_migration` report."""
    meta = migration.meta
    has_duration = meta is not None and bool(meta.estimated_duration)
    return PlanEntry(
        service=migration.service,
        migration_id=migration.id,
        risk_declared=report.declared_level,
        risk_derived=report.derived_level,
        risk_effective=report.effective_level,
        rules_fired=tuple((f.code, f.name, f.line) for f in report.fired),
        tables=tuple(report.tables_touched),
        estimated_duration=meta.estimated_duration if has_duration and meta else None,
        estimated_seconds=meta.estimated_seconds if has_duration and meta else None,
        statements_not_analysed=len(report.not_analysed),
    )


def migration_analyser(cache: AnalysisCache | None = None, *, lock_timeout_assumed: bool = False
                       ) -> Callable[[Service, Migration], list[Finding]]:
    """A ``validation.MigrationAnalyser``: the findings of :func:`check_migration`."""

    def analyse(service: Service, migration: Migration) -> list[Finding]:
        return check_migration(migration, service.schema, cache,
                               lock_timeout_assumed=lock_timeout_assumed).findings

    return analyse
