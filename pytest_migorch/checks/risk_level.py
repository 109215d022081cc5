"""The risk level a migration's SQL implies, against the level dependencies.json declares.

The risk rules (:mod:`pytest_migorch.checks.rules`) fire on statements of the up file; here the
hits become :class:`FiredRule` records and findings (honouring ignore comments), the *derived*
level is the highest level a fired rule implies, and a declared ``risk_level`` lower than that is
``RSK028``. A statement the analysis cannot see into (a DO block, a function call, syntax sqlglot
does not structure) could do anything, so it makes the derived risk *unknown*
(:func:`opaque_statements`) unless an ignore comment says, with a reason, that it was reviewed:
an unknown risk never lowers the protected-environment gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_migorch.checks.ignores import Silencer
from pytest_migorch.checks.rules import NEEDS_NO_TRANSACTION, RISK_TOO_LOW, Hit
from pytest_migorch.findings import Finding, Severity
from pytest_migorch.model import Migration, RiskLevel
from pytest_migorch.sql.analysis import NOT_ANALYSED, SqlAnalysis, StatementAnalysis

__all__ = ["FiredRule", "Derived", "apply_hits", "declared_level_finding", "opaque_statements",
           "reviewed"]


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
class Derived:
    """What the rule hits of an up file amount to: fired and ignored rules, findings, level."""

    fired: list[FiredRule]
    ignored: list[FiredRule]
    findings: list[Finding]
    level: RiskLevel


def apply_hits(hits: list[Hit], path: Path, migration: Migration, silencer: Silencer,
               where: dict[str, Any]) -> Derived:
    """Turn rule hits into fired rules, findings and the derived level."""
    derived = Derived(fired=[], ignored=[], findings=[], level=RiskLevel.LOW)
    lock_timeout_done = False
    for hit in hits:
        rule = hit.rule
        fired = FiredRule(rule.code, rule.rule.name, rule.level, path, hit.statement.line,
                          hit.statement.summary, hit.message)
        if silencer.silenced(str(path), hit.statement, rule.code):
            derived.ignored.append(fired)
            continue
        if rule.rule.name == "missing-lock-timeout":
            if lock_timeout_done:
                continue  # one finding per migration: the fix is one line at the top
            lock_timeout_done = True
        derived.fired.append(fired)
        if rule.reported:
            derived.findings.append(_hit_finding(hit, path, migration, where))
    levels = [f.level for f in derived.fired if f.level is not None]
    derived.level = max(levels, default=RiskLevel.LOW)
    return derived


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


def declared_level_finding(declared: RiskLevel | None, derived: Derived, path: Path,
                           migration: Migration, where: dict[str, Any]) -> Finding | None:
    """RSK028 when dependencies.json declares a lower risk_level than the SQL implies."""
    if declared is None or derived.level <= declared:
        return None
    top = [f for f in derived.fired if f.level == derived.level]
    first = top[0]
    others = sorted({f.code for f in top} - {first.code})
    also = f" (also {', '.join(others)})" if others else ""
    location = ""
    if migration.meta is not None and migration.meta.file is not None:
        location = f" in {migration.meta.file.name}" + (
            f" line {migration.meta.line}" if migration.meta.line else "")
    return RISK_TOO_LOW.rule.finding(
        f"declared risk_level {declared.value!r}{location} is lower than the derived "
        f"{derived.level.value!r}: {first.code} {first.name} at {path.name}:{first.line} "
        f"({first.statement}){also}", file=path, line=first.line, **where)




def reviewed(statement: StatementAnalysis) -> bool:
    """True when a ``-- migorch:ignore SQL002 <reason>`` says someone read the statement."""
    return any(
        ignore.reason and any(code in (NOT_ANALYSED.code, NOT_ANALYSED.name)
                              for code in ignore.codes)
        for ignore in statement.ignores)


def opaque_statements(analysis: SqlAnalysis) -> list[tuple[str, int]]:
    """``(kind, line)`` of the statements that make the derived risk unknown.

    Those are the statements the analysis cannot see into, except the ones reviewed with a
    reason: unterminated and certainly invalid statements are errors of their own and fail the
    migration anyway, so they are not counted here.
    """
    return [(s.kind, s.line) for s in analysis.statements
            if not s.analysed and not s.invalid and not s.unterminated and not reviewed(s)]
