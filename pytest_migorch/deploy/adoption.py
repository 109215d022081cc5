"""Which migrations golang-migrate already applied that migorch has not recorded yet: the ones
``init`` (or the next ``up``) adopts, recording them as completed without running them.

Pure (no database): ``init`` and ``up`` adopt exactly these, and ``status`` and ``list`` name them
before anything is adopted, so a team adopting migorch on a database golang-migrate manages sees
"adopted by init" instead of a wall of pending migrations it must not run again.
"""

from __future__ import annotations

from typing import Iterable

from pytest_migorch.deploy.records import SchemaVersion
from pytest_migorch.model import Migration, Service

__all__ = ["adoptable", "adoption_line", "ALREADY_APPLIED"]

#: The design's words for a migration golang-migrate's table records as applied.
ALREADY_APPLIED = "Migration already applied by golang-migrate"


def adoptable(service: Service, schema_version: SchemaVersion,
              applied: Iterable[int]) -> list[Migration]:
    """The base migrations golang-migrate's table records as applied (up to its version; below
    it only, when it is dirty: the dirty one did not finish) that are not in ``applied``.

    Environment-only migrations are never adopted: golang-migrate never ran them."""
    if not schema_version.exists or schema_version.version < 0:
        return []
    done = set(applied)
    top = schema_version.version
    return [m for m in service.base_migrations()
            if m.up is not None and m.version not in done
            and (m.version < top or (m.version == top and not schema_version.dirty))]


def adoption_line(service: Service, schema_version: SchemaVersion,
                  migrations: list[Migration], *, by: str) -> str:
    """One line naming what ``by`` (``init``, ``up``) adopts, for notes and ``status``."""
    table = ".".join(service.migrations_table)
    return (f"{ALREADY_APPLIED}: {table} says version {schema_version.describe()}; {by} "
            f"records {len(migrations)} migration(s) as applied without running them: "
            + ", ".join(m.id for m in migrations))
