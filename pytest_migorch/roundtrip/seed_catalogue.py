"""What seeding reads of the catalogue, kept across a round-trip's migrations.

Before each up, seeding reads every table of the service's schemas and its prerequisites':
columns, types, defaults, foreign keys (:mod:`pytest_migorch.roundtrip.seeding`). Read whole,
that cost grows with the schema (the planner's and the executor's work on every column of
the database) although one migration changes a table or two. The round-trip's
:class:`~pytest_migorch.postgres.snapshot_tracking.SnapshotTracker` already asks PostgreSQL,
for each snapshot, which objects may differ since the last one (what the DDL event triggers
logged, every catalogue row written since, and what depends on those): a
:class:`SeedCatalogue` re-reads only the tables among them and keeps the others as read.

It reads everything again (the full path) whenever it cannot be sure what changed: the first
time, after the tracker read the whole catalogue (lost events, a rebuilt database, another
connection), when the DDL log has gone past the tracker's last snapshot (DDL no snapshot saw),
with the team's fixture (whatever SQL it runs, after the snapshot), or for other schemas.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pytest_migorch.postgres.cached_plans import cached
from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker
from pytest_migorch.postgres.probes import PROBE_SCHEMA
from pytest_migorch.roundtrip.seeding import (
    COLUMNS,
    INVALID_INDEXES,
    SeedTable,
    read_catalogue,
    tables_of,
)

__all__ = ["SeedCatalogue", "COLUMNS_OF", "FOREIGN_KEYS_OF"]


def _narrowed(query: str, anchor: str, condition: str) -> str:
    """``query`` with ``condition`` after ``anchor`` (which must be in it exactly once)."""
    assert query.count(anchor) == 1, anchor
    return query.replace(anchor, anchor + condition)


#: The columns of the tables with the given oids only (parameters: schemas, oids).
COLUMNS_OF = _narrowed(COLUMNS, "AND n.nspname = ANY(%s)", " AND c.oid = ANY(%s::oid[])")

#: :data:`~pytest_migorch.roundtrip.seeding.FOREIGN_KEYS` of the tables with the given oids
#: (parameter: oids), the constraints first: PostgreSQL plans it in a quarter of the time
#: (0.4 against 1.4 ms, planned anew each migration). A constraint's namespace is its table's,
#: and only tables of the schemas are kept, so it needs no schema filter.
FOREIGN_KEYS_OF = """
WITH k AS MATERIALIZED (
    SELECT c.conrelid, c.confrelid, u.col, u.refcol
    FROM pg_constraint c, unnest(c.conkey, c.confkey) AS u(col, refcol)
    WHERE c.contype = 'f' AND c.conrelid = ANY(%s::oid[]))
SELECT k.conrelid::int, k.confrelid::int, rn.nspname, r.relname, a.attname, ra.attname
FROM k JOIN pg_class r ON r.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.col
JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.refcol
"""
_LOG_POSITION = (f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
                 f" FROM {PROBE_SCHEMA}.ddl_log_seq_seq")


class SeedCatalogue:
    """The tables seeding needs, read whole once per database, then only where the snapshot
    tracker says something may have changed. ``full_reads`` / ``partial_reads`` count both."""

    def __init__(self, tracker: SnapshotTracker) -> None:
        self._tracker = tracker
        self._tables: dict[int, SeedTable] | None = None
        self._schemas: list[str] = []
        self._position = (0, 0)
        self.full_reads = 0
        self.partial_reads = 0

    def read(self, conn: psycopg.Connection[Any], schemas: list[str], *,
             fixture_ran: bool = False) -> tuple[list[SeedTable], list[str]]:
        """The tables of ``schemas`` in catalogue order (schema, name) and the INVALID
        indexes, as :func:`~pytest_migorch.roundtrip.seeding.read_catalogue` reads them.
        ``fixture_ran``: SQL ran since the last snapshot (a full read)."""
        changed = None if fixture_ran or self._tables is None or schemas != self._schemas \
            else self._tracker.changed_since(conn, self._position)
        logged = self._tracker.logged_through()
        if changed is not None and logged is not None and self._tables is not None:
            found = self._read_changed(conn, schemas, changed, logged)
            if found is not None:
                return found
        return self._read_all(conn, schemas)

    def _read_all(self, conn: psycopg.Connection[Any], schemas: list[str],
                  ) -> tuple[list[SeedTable], list[str]]:
        self.full_reads += 1
        tables, invalid = read_catalogue(conn, schemas)
        self._remember(schemas, {t.oid: t for t in tables})
        return tables, invalid

    def _read_changed(self, conn: psycopg.Connection[Any], schemas: list[str],
                      changed: frozenset[int], logged: int,
                      ) -> tuple[list[SeedTable], list[str]] | None:
        """The cache with ``changed`` re-read, in one message with the INVALID indexes and
        the DDL log's position; None when the log went past the last snapshot."""
        assert self._tables is not None
        oids = sorted(changed)
        with conn.pipeline():
            position = conn.execute(_LOG_POSITION, prepare=False)
            queries = [conn.execute(cached(conn, COLUMNS_OF), [schemas, oids], prepare=False),
                       conn.execute(cached(conn, FOREIGN_KEYS_OF), [oids], prepare=False)]
            invalid = conn.execute(cached(conn, INVALID_INDEXES), [schemas], prepare=True)
        row = position.fetchone()
        if row is None or int(row[0]) != logged:
            return None
        columns, keys = (cursor.fetchall() for cursor in queries)
        tables = {oid: table for oid, table in self._tables.items() if oid not in changed}
        tables.update((t.oid, t) for t in tables_of(columns, keys))
        self.partial_reads += 1
        self._remember(schemas, tables)
        return list(self._tables_in_order()), [r[0] for r in invalid.fetchall()]

    def _remember(self, schemas: list[str], tables: dict[int, SeedTable]) -> None:
        self._schemas = list(schemas)
        self._tables = tables
        self._position = self._tracker.position()

    def _tables_in_order(self) -> list[SeedTable]:
        """Ordered as the full read orders them (``ORDER BY nspname, relname``: ``name``
        sorts bytewise, as Python sorts code points)."""
        assert self._tables is not None
        return sorted(self._tables.values(), key=lambda t: (t.schema, t.name))
