"""The risk of rolling a migration back: its down file read by the same rules as an up file.

A rollback plan showed ``risk -`` for every step, though a down that drops a table throws away
every row written since the up ran. The down file goes through the analysis and rules the up
file goes through (:mod:`pytest_migorch.sql.analysis`, :func:`~pytest_migorch.checks.rules.
evaluate`, :func:`~pytest_migorch.checks.risk_level.apply_hits`, ignore comments included), so a
``DROP TABLE`` is high risk in either direction; what it destroys is named separately
(:attr:`DownRisk.loses`), for the confirmation a protected environment asks for. No findings are
made: ``validate`` keeps the rule that down files are destructive by nature.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_migorch.checks.ignores import Silencer, silenceable
from pytest_migorch.checks.risk_level import apply_hits, opaque_statements
from pytest_migorch.checks.rules import (
    DELETE_ALL,
    DROP_CASCADE,
    DROP_COLUMN,
    DROP_SCHEMA,
    DROP_TABLE,
    RISK_RULES,
    TRUNCATE,
    TRUNCATE_CASCADE,
    evaluate,
)
from pytest_migorch.checks.schema_history import read_migration_file
from pytest_migorch.model import Migration, RiskLevel
from pytest_migorch.sql.analysis import NOT_ANALYSED, AnalysisCache, analyse_sql
from pytest_migorch.sql.execution_mode import file_execution_mode

__all__ = ["DownRisk", "down_risk", "DATA_LOSS_CODES"]

#: Rules whose statement destroys stored data (not only locks or rewrites it).
DATA_LOSS_CODES = frozenset(rule.code for rule in (
    DROP_SCHEMA, DROP_TABLE, DROP_COLUMN, TRUNCATE, TRUNCATE_CASCADE, DELETE_ALL, DROP_CASCADE))

_SILENCEABLE = silenceable((NOT_ANALYSED, *(r.rule for r in RISK_RULES)))


@dataclass(frozen=True)
class DownRisk:
    """What the plan shows about one rollback step."""

    level: RiskLevel
    #: ``RSK002 drop-table at line 1: DROP TABLE users destroys its data``, ...
    reasons: tuple[str, ...]
    #: What it destroys, one entry per statement: ``DROP TABLE users destroys its data``.
    loses: tuple[str, ...]


def down_risk(migration: Migration, schema: str,
              cache: AnalysisCache | None = None) -> DownRisk | None:
    """The risk of running ``migration``'s down file; None without a readable one.

    A statement the analysis cannot see into makes it high, as for up files (the gate treats
    an unknown risk as high), unless a ``-- migorch:ignore SQL002 <reason>`` says it was read."""
    file = migration.down
    text = read_migration_file(file)
    if file is None or text is None:
        return None
    analysis = analyse_sql(text, cache)
    silencer = Silencer(_SILENCEABLE)
    silencer.read_file_ignores(str(file.path), text, analysis)
    mode = file_execution_mode(migration, file)
    hits = evaluate(analysis.statements, schema=schema, transactional=mode.transactional)
    where = {"service": migration.service, "migration": migration.id}
    derived = apply_hits(hits, file.path, migration, silencer, where)
    fired = [f for f in derived.fired if f.level is not None]
    reasons = [f"{f.code} {f.name} at line {f.line}: {f.message}" for f in fired]
    level = derived.level
    opaque = opaque_statements(analysis)
    if opaque:
        level = RiskLevel.HIGH
        reasons += [f"{kind} at line {line} was not analysed: risk unknown, treated as high"
                    for kind, line in opaque]
    loses = tuple(f.message for f in fired if f.code in DATA_LOSS_CODES)
    return DownRisk(level, tuple(reasons), loses)
