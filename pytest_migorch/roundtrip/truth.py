"""What PostgreSQL saw an up do, compared with what the migration declares.

The round-trip records the ground truth while each up runs (:mod:`pytest_migorch.postgres.probes`:
locks held before commit, tables rewritten or changed). Here it is weighed against the declared
``risk_level`` and ``affects_tables`` and against the static analysis, apart from the engine so
the rules can be read (and tested) without a database: this module imports no psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_migorch.findings import Rule
from pytest_migorch.model import Migration, RiskLevel, schema_name
from pytest_migorch.roundtrip.rules import ANALYSIS_BLIND, LOCKS_EXCEED_RISK, UNDECLARED_TABLE

if TYPE_CHECKING:  # a value read by the engine; this module stays free of psycopg
    from pytest_migorch.postgres.probes import MigrationTruth

__all__ = ["truth_findings"]


def truth_findings(
    migration: Migration, truth: MigrationTruth, static: set[str] | None,
) -> tuple[list[str], list[tuple[Rule, str]]]:
    """``(notes, [(rule, message)])`` for one up; ``static`` is what the SQL analysis derived
    (``schema.table``), None when unknown."""
    notes: list[str] = []
    found: list[tuple[Rule, str]] = []
    if truth.locks or truth.rewritten:
        notes.append(_describe_locks(truth))
    meta = migration.meta
    if meta is None:
        return notes, found
    implied, reason = _risk_from_locks(truth)
    if implied is not None and meta.risk_level < implied:
        found.append((LOCKS_EXCEED_RISK,
                      f"{migration.id} is declared {meta.risk_level.value} but {reason}, which "
                      f"is {implied.value} risk"))
    declared = {_qualify(migration, t) for t in meta.affects_tables}
    for table in sorted(truth.touched_tables):
        if static is not None and table in static:
            continue  # the static analysis saw it and reported any declaration problem
        if table not in declared:
            blind = "" if static is None else "; the static analysis did not see it"
            found.append((UNDECLARED_TABLE,
                          f"PostgreSQL saw {migration.id} change table {table}, which "
                          f"affects_tables does not declare{blind}"))
        elif static is not None:
            found.append((ANALYSIS_BLIND,
                          f"PostgreSQL saw {migration.id} change table {table}, which the "
                          "static analysis did not derive from the SQL"))
    return notes, found


def _qualify(migration: Migration, table: str) -> str:
    table = table.lower()
    return table if "." in table else f"{schema_name(migration.service)}.{table}"


def _risk_from_locks(truth: MigrationTruth) -> tuple[RiskLevel | None, str]:
    """The risk the locks imply: a rewrite or a SHARE lock (index build) on an existing table
    blocks for a time that grows with the table. A brief ACCESS EXCLUSIVE alone (adding a
    nullable column) is catalog-only and implies nothing."""
    if truth.rewritten:
        return RiskLevel.HIGH, f"it rewrote {', '.join(sorted(truth.rewritten))}"
    shared = sorted(t for t, mode in truth.locks.items() if mode == "ShareLock")
    if shared:
        return RiskLevel.HIGH, (f"it held SHARE locks (writes blocked for the whole build) on "
                                f"{', '.join(shared)}")
    return None, ""


def _describe_locks(truth: MigrationTruth) -> str:
    parts = [f"{table}: {mode}" for table, mode in sorted(truth.locks.items())]
    text = "locks held before commit on existing tables: " + (", ".join(parts) or "none")
    if truth.rewritten:
        text += "; rewritten: " + ", ".join(sorted(truth.rewritten))
    return text
