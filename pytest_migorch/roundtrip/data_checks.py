"""The round-trip's checks that need rows in the tables, called by the engine around each up.

:class:`DataChecks` seeds the tables before an up (:mod:`pytest_migorch.roundtrip.seeding`),
and afterwards answers three questions the schema snapshots cannot:

- did the up fail only because rows exist? It is re-run on emptied tables, and ``DB011``
  says that it passes there, with PostgreSQL's message for the rows;
- did up then down lose rows or values present before the up (``DB012``)?
- did the up leave an INVALID index behind (a failed ``CREATE INDEX CONCURRENTLY``, ``DB013``)?
- would the up stall all traffic on a table it locks, waiting behind a reader without a
  ``lock_timeout`` (``DB014``, :mod:`pytest_migorch.roundtrip.lock_probe`)?

Each is silenced for one migration by ``-- migorch:ignore CODE reason`` in its up file, and
seeding and the lock probe as a whole are opt-in: ``--migorch-seed-data``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import psycopg

from pytest_migorch.errors import MigrationFailed
from pytest_migorch.findings import Finding
from pytest_migorch.model import Migration, MigrationFile, schema_name
from pytest_migorch.postgres.probes import MigrationTruth
from pytest_migorch.postgres.statements import MigrationSqlError
from pytest_migorch.roundtrip.lock_probe import LOCK_MODES, probe_lock_wait
from pytest_migorch.roundtrip.rules import (
    DOWN_LOSES_ROWS,
    INVALID_INDEX_LEFT,
    LOCK_STALL,
    ROWS_BREAK_UP,
)
from pytest_migorch.roundtrip.seeding import (
    RowPrint,
    capture_rows,
    lost_rows,
    seed_tables,
    testdata_file,
    truncate_tables,
)

__all__ = ["DataChecks", "ignored_codes", "invalid_indexes"]

_IGNORE = re.compile(r"--\s*migorch:ignore\s+([A-Za-z0-9_, -]+)")

_INVALID_INDEXES = """
SELECT n.nspname || '.' || c.relname
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = ANY(%s) ORDER BY 1
"""


def ignored_codes(migration: Migration) -> set[str]:
    """The codes a ``-- migorch:ignore`` comment anywhere in the up file names."""
    if migration.up is None:
        return set()
    codes: set[str] = set()
    for match in _IGNORE.finditer(migration.up.read_text()):
        codes.update(c for c in re.split(r"[\s,]+", match.group(1)) if c.isupper())
    return codes


def invalid_indexes(conn: psycopg.Connection[Any], schemas: list[str]) -> list[str]:
    """INVALID indexes (``pg_index.indisvalid = false``) of ``schemas``, qualified."""
    return [row[0] for row in conn.execute(_INVALID_INDEXES, [schemas]).fetchall()]


#: Builds a finding in the round-trip's environment(s): ``(rule, migration, file, message)``.
FindingMaker = Callable[..., Finding]


class DataChecks:
    """One migration's data checks, from its seeding to its down; the engine calls
    :meth:`before_up`, then :meth:`fails_only_with_rows` or :meth:`after_up`, then
    :meth:`after_down`."""

    def __init__(self, migration: Migration, services: list[str], finding: FindingMaker,
                 sql_failure: FindingMaker) -> None:
        self.migration = migration
        self.schemas = sorted({schema_name(s) for s in services})
        self._finding = finding
        self._sql_failure = sql_failure
        self._ignored = ignored_codes(migration)
        self._before: RowPrint = {}
        self._invalid_before: set[str] = set()
        self._locked: list[str] = []
        self._seeded = False

    def before_up(self, conn: psycopg.Connection[Any], *, seed: bool) -> list[str]:
        """Seed (when asked) and fingerprint the rows; remember indexes already invalid.
        Returns notes for the report section."""
        self._invalid_before = set(invalid_indexes(conn, self.schemas))
        self._seeded = seed
        if not seed or self.migration.up is None:
            return []
        fixture = testdata_file(self.migration.up.path, self.migration.version)
        result = seed_tables(conn, self.schemas, self.migration.qualified_id, fixture)
        self._before = capture_rows(conn, self.schemas)
        return result.notes()

    def fails_only_with_rows(self, conn: psycopg.Connection[Any], exc: MigrationSqlError,
                             apply: Callable[[Migration, MigrationFile], object],
                             ) -> Finding | None:
        """After a failed up on tables with rows: empty them and run the up again; DB011 when
        it passes there (the database is left dirty either way: the engine rebuilds it)."""
        if not self._before or ROWS_BREAK_UP.code in self._ignored or self.migration.up is None:
            return None
        truncate_tables(conn, self.schemas)
        try:
            apply(self.migration, self.migration.up)
        except MigrationFailed:
            return None  # it fails on empty tables too: the plain DB001
        return self._sql_failure(ROWS_BREAK_UP, self.migration, exc, "up",
                                 because="the tables have rows: it passes on empty tables")

    def after_up(self, conn: psycopg.Connection[Any],
                 truth: MigrationTruth | None) -> list[Finding]:
        """DB013 for each INVALID index the up left; remembers the tables it locked."""
        if truth is not None and self.migration.transactional and self._seeded:
            self._locked = sorted(t for t, mode in truth.locks.items() if mode in LOCK_MODES)
        if INVALID_INDEX_LEFT.code in self._ignored:
            return []
        return [self._finding(
            INVALID_INDEX_LEFT, self.migration, self.migration.up,
            f"up of {self.migration.id} left index {index} INVALID (pg_index.indisvalid = "
            f"false); run DROP INDEX CONCURRENTLY {index}; before a retry, which IF NOT EXISTS "
            "would otherwise skip")
            for index in invalid_indexes(conn, self.schemas) if index not in self._invalid_before]

    def after_down(self, conn: psycopg.Connection[Any]) -> list[Finding]:
        """DB012 for the rows up then down lost; then, with the database back in the state
        before the up, DB014 if the up would wait for its lock behind a reader."""
        found: list[Finding] = []
        if self._before and DOWN_LOSES_ROWS.code not in self._ignored:
            found += [self._finding(
                DOWN_LOSES_ROWS, self.migration, self.migration.down,
                f"after up then down of {self.migration.id}, {lost}: the down loses data")
                for lost in lost_rows(self._before, capture_rows(conn, self.schemas))]
        if self._locked and LOCK_STALL.code not in self._ignored and self.migration.up:
            stall = probe_lock_wait(conn, self.migration.up, self.migration.service,
                                    self._locked)
            if stall is not None:
                found.append(self._finding(
                    LOCK_STALL, self.migration, self.migration.up, stall.message,
                    line=stall.line))
        return found
