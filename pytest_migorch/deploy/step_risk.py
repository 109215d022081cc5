"""The risk a plan shows for one step, from the SQL analysis, in either direction.

Pure (no database), and the SQL analysis stack (sqlglot, pglast) is imported only when a plan
is made. An analysis bug never stops a deploy or a rollback: the step then shows its declared
metadata (up) or no level (down), and a warning says why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pytest_migorch.deploy.plan_cache import cached_up_risk
from pytest_migorch.model import Migration, RiskLevel

if TYPE_CHECKING:
    from pytest_migorch.checks.down_risk import DownRisk
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = ["up_risk", "down_risk_or_none"]

log = logging.getLogger(__name__)


def up_risk(
    migration: Migration, schema: str, cache: AnalysisCache | None
) -> tuple[RiskLevel, tuple[str, ...], tuple[str, ...]] | None:
    """(effective risk, the rules that raised it, tables touched) from the SQL analysis, kept
    between runs by content and tool in ``cache``'s store (:mod:`.plan_cache`)."""
    return cached_up_risk(migration, schema, cache,
                          lambda: _analysed_up_risk(migration, schema, cache))


def _analysed_up_risk(
    migration: Migration, schema: str, cache: AnalysisCache | None
) -> tuple[RiskLevel, tuple[str, ...], tuple[str, ...]] | None:
    from pytest_migorch.checks import migration as risk

    try:
        report = risk.check_migration(migration, schema, cache)
        entry = risk.plan_entry(migration, report)
    except Exception as exc:  # an analysis bug must not stop a deploy; the declared level holds
        log.warning("risk analysis of %s failed, using its declared metadata: %s",
                    migration.qualified_id, exc)
        return None
    reasons = tuple(f"{f.code} {f.name} at line {f.line}: {f.message}"
                    for f in report.fired if f.level is not None)
    return entry.gate_level, reasons + entry.unknown_reasons, entry.tables


def down_risk_or_none(migration: Migration, schema: str,
                      cache: AnalysisCache | None) -> DownRisk | None:
    """The down file's risk and what it destroys (:mod:`pytest_migorch.checks.down_risk`)."""
    from pytest_migorch.checks.down_risk import down_risk

    try:
        return down_risk(migration, schema, cache)
    except Exception as exc:  # as for up files: a bug in the analysis never stops a rollback
        log.warning("risk analysis of the down file of %s failed: %s", migration.qualified_id,
                    exc)
        return None
