"""The metadata ``migorch new --template`` writes, as the SQL analysis derives it.

The scaffold (:mod:`pytest_migorch.project.scaffold`) sits below the analysis, so it takes this
deriver as an argument: a generated entry then says exactly what ``migorch validate`` will
check it against (affects_tables, risk_level), instead of a hand-kept copy that drifts.
"""

from __future__ import annotations

from pytest_migorch.checks.migration import check_migration
from pytest_migorch.model import Migration, Service
from pytest_migorch.project.scaffold import Derived, Deriver
from pytest_migorch.sql.analysis import AnalysisCache

__all__ = ["metadata_deriver"]


def metadata_deriver(cache: AnalysisCache | None = None) -> Deriver:
    """A :data:`~pytest_migorch.project.scaffold.Deriver` backed by :func:`check_migration`."""

    def derive(service: Service, migration: Migration) -> Derived:
        report = check_migration(migration, service.schema, cache)
        return Derived(tuple(report.tables_touched), report.derived_level)

    return derive
