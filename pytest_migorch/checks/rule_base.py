"""What every risk rule module shares: the rule record, a hit, and the migration's running state.

Kept apart from :mod:`pytest_migorch.checks.rules` so the rule families (locks and rewrites
there, hygiene in :mod:`pytest_migorch.checks.rules_hygiene`) can each define their rules
without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_migorch.findings import Family, Rule, Severity
from pytest_migorch.model import RiskLevel
from pytest_migorch.sql.analysis import StatementAnalysis
from pytest_migorch.sql.facts import Op

__all__ = ["RiskRule", "Hit", "State", "risk_rule"]


@dataclass(frozen=True)
class RiskRule:
    """A risk rule: the catalogue entry, the level it implies (None: hygiene only), and whether
    it is reported as a finding or only classifies the migration."""

    rule: Rule
    level: RiskLevel | None
    reported: bool = True
    squawk: str = ""
    atlas: str = ""

    @property
    def code(self) -> str:
        return self.rule.code


def risk_rule(code: str, name: str, level: RiskLevel | None, summary: str, hint: str, *,
              severity: Severity = Severity.WARNING, reported: bool = True, squawk: str = "",
              atlas: str = "") -> RiskRule:
    """A :class:`RiskRule` in the risk family (``squawk``/``atlas``: their closest checks)."""
    rule = Rule(code=code, name=name, severity=severity, family=Family.RISK, summary=summary,
                hint=hint)
    return RiskRule(rule, level, reported, squawk, atlas)


@dataclass(frozen=True)
class Hit:
    """A rule fired by a statement, with a message about that statement."""

    rule: RiskRule
    statement: StatementAnalysis
    message: str


@dataclass
class State:
    """What the migration has done so far, in file order."""

    schema: str
    transactional: bool = True
    created_tables: set[tuple[str, str]] = field(default_factory=set)
    created_indexes: set[tuple[str, str]] = field(default_factory=set)
    created_schemas: set[str] = field(default_factory=set)
    #: (kind, schema, name) of every other object the migration created (views, types...).
    created_objects: set[tuple[str, str, str]] = field(default_factory=set)
    lock_timeout: bool = False
    statement_timeout: bool = False
    statement_timeout_reported: bool = False
    #: a non-transactional file's own BEGIN is open (for transaction nesting)
    in_transaction: bool = False
    #: the statement being checked is the file's last (a failure there left nothing to re-run)
    at_last_statement: bool = False
    #: indexes dropped with IF EXISTS (a retry-safe rebuild follows)
    dropped_guarded: set[tuple[str, str]] = field(default_factory=set)
    #: Tables that existed before the migration, from the schema model (None: unknown).
    existing: frozenset[tuple[str, str]] | None = None
    dropped_tables: set[tuple[str, str]] = field(default_factory=set)

    def key(self, op: Op) -> tuple[str, str]:
        return (op.schema or self.schema, op.name or "")

    def is_new(self, op: Op) -> bool:
        return self.key(op) in self.created_tables

    def existed(self, key: tuple[str, str]) -> bool:
        """True when the model knows ``key`` existed before and the migration did not drop it
        (so ``CREATE TABLE IF NOT EXISTS`` of it creates nothing new)."""
        return (self.existing is not None and key in self.existing
                and key not in self.dropped_tables)
