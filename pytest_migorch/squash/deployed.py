"""Is it safe to squash for these deployed databases? Read where each one stands.

After a squash, golang-migrate skips the squashed file on a database already at or past its
version (it carries the highest replaced version), and a fresh database runs it whole. A
database *between* the two, which applied some replaced migrations but not all, would run the
squashed file over a partial schema: such a database makes the squash refuse until it has been
migrated up to the squashed version.

Both records are read: golang-migrate's table and migorch's executions, so a database deployed
with either tool is judged by what it knows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg

from pytest_migorch.deploy.tracking import Tracking
from pytest_migorch.postgres.connection import connect, database_error, resolve_settings
from pytest_migorch.squash.selection import SquashSelection

__all__ = ["DeployedDatabase", "check_deployed", "inspect_database"]


@dataclass(frozen=True)
class DeployedDatabase:
    """Where one database stands for the squashed service."""

    display: str
    #: golang-migrate's version, -1 when it has none.
    version: int
    dirty: bool
    #: Replaced versions migorch recorded as applied there.
    applied: frozenset[int]

    def problem(self, selection: SquashSelection) -> str | None:
        """Why squashing would break this database, or None when it is safe."""
        replaced = {m.version for m in selection.replaced}
        base = {m.version for m in selection.replaced if m.is_base}
        if self.dirty:
            return (f"{self.display}: golang-migrate's table is dirty at version {self.version};"
                    " fix that database first")
        if self.version >= selection.version or replaced <= self.applied:
            return None
        if self.version < 0 and not self.applied:
            return None  # nothing of the service yet: it will run the squashed file whole
        at = max([self.version, *(v for v in self.applied if v in base)])
        return (f"{self.display}: at version {at}, below {selection.version_text}: it would run "
                f"{selection.migration_id} over a partial schema. Migrate it up to "
                f"{selection.version_text} first, then squash")


def inspect_database(url: str, schema: str,
                     environ: Mapping[str, str] = os.environ) -> DeployedDatabase:
    """Read golang-migrate's table and migorch's executions of ``schema`` at ``url``."""
    settings = resolve_settings(url, environ)
    with connect(settings, purpose="squash safety check") as conn:
        tracking = Tracking(conn, schema)
        try:
            gm = tracking.read_schema_version()
            records = tracking.records() if tracking.is_initialised() else []
        except psycopg.Error as exc:
            raise database_error(exc, f"reading the migration state of {schema}") from exc
    applied = frozenset(r.version for r in records if r.status == "completed")
    return DeployedDatabase(settings.display, gm.version if gm.exists else -1, gm.dirty,
                            applied)


def check_deployed(selection: SquashSelection, urls: Iterable[str],
                   environ: Mapping[str, str] = os.environ) -> list[str]:
    """The reasons, one per database, why the squash must not be written (empty: safe)."""
    problems = []
    for url in urls:
        problem = inspect_database(url, selection.schema, environ).problem(selection)
        if problem:
            problems.append(problem)
    return problems
