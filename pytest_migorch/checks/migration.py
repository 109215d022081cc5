"""Check one migration's SQL: the orchestration of the per-migration checks.

:func:`check_migration` is what ``migorch validate``, the pytest plugin and the deploy runner
call. It analyses the migration's files (:mod:`pytest_migorch.sql.analysis`, cached by content)
and runs the checks, each in a module named for what it does: transaction control
(:mod:`~pytest_migorch.checks.transactions`), the risk rules and the derived against the
declared level (:mod:`~pytest_migorch.checks.risk_level`), the ``affects_tables`` cross-check
(:mod:`~pytest_migorch.checks.affected_tables`) and ``-- migorch:ignore`` comments
(:mod:`~pytest_migorch.checks.ignores`). It returns every finding with service, migration, file
and line set. :func:`plan_entry` turns the same report into the line the runner prints before
applying anything.

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
- A statement of the up file that cannot be analysed makes the risk *unknown*, which the
  protected-environment gate treats like high (:attr:`PlanEntry.gate_level`), unless it is
  ignored with a reason (``-- migorch:ignore SQL002 reviewed: only grants``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_migorch.checks import affected_tables, ignores, transactions
from pytest_migorch.checks.affected_tables import TABLE_NOT_DECLARED, TABLE_NOT_TOUCHED
from pytest_migorch.checks.ignores import UNUSED_IGNORE, Silencer, silenceable
from pytest_migorch.checks.risk_level import (
    FiredRule,
    apply_hits,
    declared_level_finding,
    opaque_statements,
)
from pytest_migorch.checks.rules import RISK_RULES, evaluate
from pytest_migorch.checks.schema_history import file_effects, read_migration_file, service_models
from pytest_migorch.checks.schema_model import Effect, SchemaModel
from pytest_migorch.checks.transactions import OWN_TRANSACTION, UNCLOSED_TRANSACTION
from pytest_migorch.findings import Finding, Rule
from pytest_migorch.model import Migration, MigrationFile, RiskLevel, Service
from pytest_migorch.sql.analysis import (
    INVALID_SQL,
    NOT_ANALYSED,
    UNTERMINATED_SQL,
    AnalysisCache,
    SqlAnalysis,
    analyse_sql,
)
from pytest_migorch.sql.analysis import RULES as ANALYSIS_RULES
from pytest_migorch.sql.execution_mode import file_execution_mode

__all__ = [
    "RULES",
    "analysis_order",
    "TABLE_NOT_DECLARED",
    "TABLE_NOT_TOUCHED",
    "UNUSED_IGNORE",
    "OWN_TRANSACTION",
    "UNCLOSED_TRANSACTION",
    "FiredRule",
    "MigrationReport",
    "PlanEntry",
    "check_migration",
    "plan_entry",
    "migration_analyser",
]

logger = logging.getLogger(__name__)

RULES: tuple[Rule, ...] = (*affected_tables.RULES, *ignores.RULES, *transactions.RULES)

#: What an ignore comment may name (a code or a rule name) -> the rule's code.
_SILENCEABLE = silenceable((*ANALYSIS_RULES, *RULES, *(r.rule for r in RISK_RULES)))


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
    #: Up-file statements that make the derived risk unknown (not analysed, not reviewed).
    opaque: list[tuple[str, int]] = field(default_factory=list)
    #: Lint of the ignore comments themselves (SQL009, an ignore without a reason): reported by
    #: ``validate`` and the plugin (:func:`migration_analyser`), not part of the SQL verdict.
    comment_findings: list[Finding] = field(default_factory=list)

    @property
    def risk_unknown(self) -> bool:
        """True when a statement the analysis cannot see into may do more than the rules say."""
        return bool(self.opaque)

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
            "risk_unknown": self.risk_unknown,
            "opaque_statements": [{"kind": k, "line": n} for k, n in self.opaque],
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
    #: Lines of up-file statements that make the derived risk unknown (see MigrationReport).
    opaque_lines: tuple[int, ...] = ()

    @property
    def risk_unknown(self) -> bool:
        return bool(self.opaque_lines)

    @property
    def gate_level(self) -> RiskLevel:
        """The level the protected-environment gate acts on: an unknown risk counts as high,
        because a statement nobody can see into may drop a table as well as anything else."""
        return RiskLevel.HIGH if self.risk_unknown else self.risk_effective

    @property
    def needs_confirmation(self) -> bool:
        """True when a protected environment must not apply this without ``--yes``."""
        return self.gate_level is RiskLevel.HIGH

    @property
    def unknown_reasons(self) -> tuple[str, ...]:
        """Why the risk is unknown, one line per statement, for the plan's reasons."""
        return tuple(f"{NOT_ANALYSED.code} {NOT_ANALYSED.name} at line {line}: not analysed, "
                     "risk unknown (treated as high)" for line in self.opaque_lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "migration": self.migration_id,
            "risk_declared": self.risk_declared.value if self.risk_declared else None,
            "risk_derived": self.risk_derived.value, "risk": self.risk_effective.value,
            "rules": [{"code": c, "name": n, "line": line} for c, n, line in self.rules_fired],
            "tables": list(self.tables), "estimated_duration": self.estimated_duration,
            "estimated_seconds": self.estimated_seconds,
            "statements_not_analysed": self.statements_not_analysed,
            "risk_unknown": self.risk_unknown,
            "opaque_lines": list(self.opaque_lines),
            "needs_confirmation": self.needs_confirmation,
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
        if self.risk_unknown:
            parts.append("risk unknown: treated as high")
        return "  ".join(parts)


def check_migration(migration: Migration, service_schema: str,
                    cache: AnalysisCache | None = None, *,
                    lock_timeout_assumed: bool = False,
                    model: SchemaModel | None = None) -> MigrationReport:
    """Analyse ``migration`` (up file fully, down file for unreadable statements).

    ``service_schema`` is the schema first on the search_path (``user_service`` for
    ``user-service``). ``lock_timeout_assumed`` turns off the missing-lock_timeout rule for a
    runner that sets lock_timeout itself. ``model`` is the schema as the migrations before this
    one left it (:mod:`pytest_migorch.checks.schema_history`); it is not changed. Without it
    only the migration's own statements are known.
    """
    report = MigrationReport(service=migration.service, migration_id=migration.id,
                             declared_level=migration.meta.risk_level if migration.meta else None)
    where = {"service": migration.service, "migration": migration.id}
    silencer = Silencer(_SILENCEABLE)
    up_text = read_migration_file(migration.up)
    up = _analyse(migration.up, up_text, cache, silencer)
    down = _analyse(migration.down, read_migration_file(migration.down), cache, silencer)
    if down is not None and migration.down is not None:
        report.findings += _file_findings(down, migration.down.path, migration, silencer, where)
        report.down_not_analysed = down.not_analysed
    if up is not None and migration.up is not None:
        report.findings += _file_findings(up, migration.up.path, migration, silencer, where)
        effects = _effects(up, up_text or "", service_schema, model)
        _check_up(report, up, migration.up.path, migration, service_schema, silencer, where,
                  lock_timeout_assumed, model, effects)
    for analysis, file in ((down, migration.down), (up, migration.up)):
        if analysis is not None and file is not None:
            report.findings += silencer.unused(str(file.path), analysis, file.path, where,
                                               risk_checked=file is migration.up)
            report.comment_findings += silencer.reasonless(str(file.path), analysis,
                                                           file.path, where)
    return report


def _check_up(report: MigrationReport, up: SqlAnalysis, path: Path, migration: Migration,
              schema: str, silencer: Silencer, where: dict[str, Any],
              lock_timeout_assumed: bool, model: SchemaModel | None,
              effects: list[Effect]) -> None:
    """The checks only the up file gets: risk rules and level, affects_tables."""
    report.statements_total = up.statements_total
    report.statements_analysed = up.statements_analysed
    report.not_analysed = up.not_analysed
    report.opaque = opaque_statements(up)
    assert migration.up is not None
    mode = file_execution_mode(migration, migration.up)
    existing = frozenset(model.tables) if model is not None else None
    hits = evaluate(up.statements, schema=schema, transactional=mode.transactional,
                    lock_timeout_assumed=lock_timeout_assumed, existing=existing)
    derived = apply_hits(hits, path, migration, silencer, where)
    report.fired, report.ignored = derived.fired, derived.ignored
    report.derived_level = derived.level
    report.findings += derived.findings
    use = affected_tables.cross_check_tables(up, path, migration, schema, silencer, where,
                                             effects)
    report.tables_touched, report.tables_read = use.touched, use.read
    report.findings += use.findings
    too_low = declared_level_finding(report.declared_level, derived, path, migration, where)
    if too_low is not None:
        report.findings.append(too_low)


def _effects(up: SqlAnalysis, text: str, schema: str,
             model: SchemaModel | None) -> list[Effect]:
    """The up file replayed into a copy of ``model`` (an empty one: only the file is known)."""
    start = model.copy() if model is not None else SchemaModel(exact=False)
    return file_effects(start, up, text, schema)


def _analyse(file: MigrationFile | None, text: str | None, cache: AnalysisCache | None,
             silencer: Silencer) -> SqlAnalysis | None:
    if file is None or text is None:  # unreadable files are discovery's findings
        return None
    analysis = analyse_sql(text, cache)
    silencer.read_file_ignores(str(file.path), text, analysis)
    return analysis


def _file_findings(analysis: SqlAnalysis, path: Path, migration: Migration,
                   silencer: Silencer, where: dict[str, Any]) -> list[Finding]:
    """SQL001 (unterminated), SQL002 (not analysed), SQL007 (certainly invalid) and the
    transaction findings (SQL006, SQL008, SQL011, SQL012) of a file."""
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
    up = migration.up
    file = up if up is not None and up.path == path else migration.down
    mode = file_execution_mode(migration, file) if file is not None else None
    findings += transactions.transaction_findings(analysis, path, migration, silencer, where,
                                                  mode=mode)
    return findings


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
        opaque_lines=tuple(line for _, line in report.opaque),
    )


def migration_analyser(cache: AnalysisCache | None = None, *, lock_timeout_assumed: bool = False
                       ) -> Callable[[Service, Migration], list[Finding]]:
    """A ``validation.MigrationAnalyser``: the findings of :func:`check_migration`, each with
    the schema model its service's earlier migrations (by version) leave."""
    models: dict[str, dict[tuple[str, int], SchemaModel]] = {}

    def analyse(service: Service, migration: Migration) -> list[Finding]:
        if service.name not in models:
            models[service.name] = service_models(service, cache)
        report = check_migration(migration, service.schema, cache,
                                 lock_timeout_assumed=lock_timeout_assumed,
                                 model=models[service.name].get(migration.key))
        return report.findings + report.comment_findings

    return analyse


def analysis_order(services: Iterable[Service]) -> Iterator[str]:
    """The texts :func:`migration_analyser` analyses for ``services``, in the order it asks for
    them (each service's up files by version for its schema history, then each migration's up
    and down files), for analysing them ahead (:func:`pytest_migorch.sql.ahead.analyses_ahead`).
    Files are read as they are needed."""
    for service in services:
        for _, migration in sorted(service.migrations.items()):
            text = read_migration_file(migration.up)
            if text is not None:
                yield text
        for migration in service.migrations.values():
            if migration.up is not None:
                text = read_migration_file(migration.down)
                if text is not None:
                    yield text
