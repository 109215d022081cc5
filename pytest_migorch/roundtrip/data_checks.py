"""The round-trip's checks that need rows in the tables, called by the engine around each up.

:class:`DataChecks` seeds the tables before an up (:mod:`pytest_migorch.roundtrip.seeding`),
and afterwards answers three questions the schema snapshots cannot:

- did the up fail only because rows exist? It is re-run on emptied tables, and ``DB011``
  says that it passes there, with PostgreSQL's message for the rows. Generated values are not
  the column's real content (a ``text`` column that holds JSON, a CHECK on a format): a
  failure they may have caused (anything but a column added ``NOT NULL`` without a default,
  which any row breaks) is only a note, and the up is tested on empty tables instead; with
  the team's own rows (``migrations/testdata/<version>.sql``) every failure counts;
- did up then down lose rows or values present before the up (``DB012``)?
- did the up leave an INVALID index behind (``DB013``): after it succeeded (``CREATE INDEX ON
  ONLY`` a partitioned table) or failed (a ``CREATE INDEX CONCURRENTLY`` that stopped)?
- did it read every row of a table with rows while declared below high (``DB015``,
  :mod:`pytest_migorch.roundtrip.scans`)?
- would the up stall all traffic on a table it locks, waiting behind a reader without a
  ``lock_timeout`` (``DB014``, :mod:`pytest_migorch.roundtrip.lock_probe`)?

Each is silenced for one migration by ``-- migorch:ignore CODE reason`` in its up file, and
seeding and the lock probe as a whole are on by default, off with ``--migorch-no-seed-data``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol, TypeVar

import psycopg

from pytest_migorch.errors import MigrationFailed
from pytest_migorch.findings import Finding
from pytest_migorch.model import Migration, MigrationFile, schema_name
from pytest_migorch.postgres.cached_plans import cached
from pytest_migorch.postgres.probes import MigrationTruth
from pytest_migorch.postgres.statements import MigrationSqlError
from pytest_migorch.sql.execution_mode import file_execution_mode
from pytest_migorch.roundtrip.lock_probe import LOCK_MODES, probe_lock_wait
from pytest_migorch.roundtrip.row_changes import KnownRows
from pytest_migorch.roundtrip.rules import (
    DOWN_LOSES_ROWS,
    INVALID_INDEX_LEFT,
    LOCK_STALL,
    ROWS_BREAK_UP,
    SCAN_BELOW_RISK,
)
from pytest_migorch.roundtrip.scans import (
    install_scan_log,
    receive_counters,
    receive_scan_log,
    reset_scan_log,
    send_counters,
    send_scan_log,
    stop_scan_log,
    scan_message,
    scanned_tables,
)
from pytest_migorch.roundtrip.seeding import (
    INVALID_INDEXES,
    CatalogueReader,
    RowCapture,
    RowPrint,
    lost_rows,
    seed_tables,
    testdata_file,
    truncate_tables,
)

__all__ = ["DataChecks", "ignored_codes", "invalid_indexes", "rows_certainly_break",
           "SILENCEABLE"]

#: The codes a ``-- migorch:ignore`` in an up file silences in the round-trip.
SILENCEABLE = tuple(r.code for r in (ROWS_BREAK_UP, DOWN_LOSES_ROWS, INVALID_INDEX_LEFT,
                                     LOCK_STALL, SCAN_BELOW_RISK))

_IGNORE = re.compile(r"--\s*migorch:ignore\s+([A-Za-z0-9_, -]+)")

#: An ADD COLUMN ... NOT NULL with neither a default nor a generation expression: any row
#: existing breaks it, whatever its values.
_ADDS_NOT_NULL = re.compile(r"(?is)\bADD\b(?:\s+COLUMN)?.*\bNOT\s+NULL\b")
_HAS_VALUE = re.compile(r"(?i)\b(DEFAULT|GENERATED)\b")
#: A migration that turns the row-write counters off or resets them, or writes through
#: another session (dblink, a foreign data wrapper: that backend's counters are not ours yet):
#: after its down every table is read again, since the counters may not show its writes.
_TOUCHES_STATISTICS = re.compile(r"(?i)track_counts|pg_stat_reset|dblink|_fdw\b")

def ignored_codes(migration: Migration) -> set[str]:
    """The codes a ``-- migorch:ignore`` comment anywhere in the up file names."""
    if migration.up is None:
        return set()
    codes: set[str] = set()
    for match in _IGNORE.finditer(migration.up.read_text()):
        codes.update(c for c in re.split(r"[\s,]+", match.group(1)) if c.isupper())
    return codes


def invalid_indexes(conn: psycopg.Connection[Any], schemas: list[str]) -> list[str]:
    """INVALID indexes (``pg_index.indisvalid = false``) of ``schemas``, qualified and quoted
    as SQL wants them (``schema.name``)."""
    return [row[0] for row in conn.execute(cached(conn, INVALID_INDEXES), [schemas], prepare=True).fetchall()]


def rows_certainly_break(exc: MigrationSqlError, *, team_rows: bool) -> bool:
    """Whether a failure on tables with rows is one rows cause whatever their values: with
    the team's rows, every failure; with generated rows, only a NOT NULL violation of an
    ``ADD COLUMN ... NOT NULL`` without default (the values are invented: a cast, a CHECK, a
    UNIQUE or a foreign key that they break says nothing of the real rows)."""
    if team_rows:
        return True
    statement = exc.statement or ""
    return exc.sqlstate == "23502" and bool(_ADDS_NOT_NULL.search(statement)) \
        and not _HAS_VALUE.search(statement)


#: What the engine's ``apply`` returns for the up (the truth, with the snapshot after it).
_Applied = TypeVar("_Applied")


class _Outcome(Protocol):
    """What :meth:`DataChecks.run_up` needs of the engine's outcome: its notes."""

    notes: list[str]


#: Builds a finding in the round-trip's environment(s): ``(rule, migration, file, message)``.
FindingMaker = Callable[..., Finding]


class DataChecks:
    """One migration's data checks, from its seeding to its down; the engine calls
    :meth:`before_up`, runs the up through :meth:`run_up`, then :meth:`up_failed` or
    :meth:`after_up`, then :meth:`after_down`."""

    def __init__(self, migration: Migration, services: list[str], finding: FindingMaker,
                 sql_failure: FindingMaker, rebuild: Callable[[], None],
                 catalogue: CatalogueReader | None = None,
                 known_rows: KnownRows | None = None) -> None:
        """``rebuild`` gives the engine's session a fresh database with the ups in effect
        replayed (no rows): how a non-transactional up, whose failure left part of it in
        effect, is re-run on empty tables. ``catalogue`` reads the tables to seed (the
        engine's :class:`~pytest_migorch.roundtrip.seed_catalogue.SeedCatalogue`);
        ``known_rows``, the engine's rows as last read: before the up and after the down
        only the tables that may differ since are read again (:mod:`.row_changes`)."""
        self._catalogue = catalogue
        self._known = known_rows if known_rows is not None else KnownRows(None)
        self._trusted = not _TOUCHES_STATISTICS.search(
            " ".join(f.read_text() for f in (migration.up, migration.down) if f))
        self.migration = migration
        self.schemas = sorted({schema_name(s) for s in services})
        self._finding = finding
        self._sql_failure = sql_failure
        self._rebuild = rebuild
        self._ignored = ignored_codes(migration)
        self._transactional = migration.up is not None and file_execution_mode(
            migration, migration.up).transactional
        self._before: RowPrint = {}
        self._rows: RowCapture | None = None  # before the up, the same after a clean down
        self._counters: dict[str, int] | None = None
        self._invalid_before: set[str] = set()
        self._locked: list[str] = []
        self._seeded = False
        self._team_rows = False
        self._recording = False  # the scan log records DDL statements (DB015)

    def before_up(self, conn: psycopg.Connection[Any], *, seed: bool) -> list[str]:
        """Seed (when asked) and fingerprint the rows; remember indexes already invalid.
        Returns notes for the report section."""
        self._seeded = seed
        if not seed or self.migration.up is None:
            self._invalid_before = set(invalid_indexes(conn, self.schemas))
            return []
        fixture = testdata_file(self.migration.up.path, self.migration.version)
        result = seed_tables(conn, self.schemas, self.migration.qualified_id, fixture,
                             self._catalogue)
        self._invalid_before = set(result.invalid_indexes)  # read with the tables
        self._team_rows = fixture is not None
        self._rows = RowCapture(conn, result.tables)
        scans = self._transactional and SCAN_BELOW_RISK.code not in self._ignored \
            and self.migration.meta is not None and bool(result.tables) \
            and install_scan_log(conn)

        def scan_start(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any] | None:
            if not scans:
                return None
            self._recording = True
            reset_scan_log(conn)  # after the rows' own scans, with them in one message
            return send_counters(conn, self.schemas)

        self._before, counters = self._known.capture(conn, self._rows, trusted=self._trusted,
                                                     also=scan_start)
        if self._before and isinstance(counters, psycopg.Cursor):
            self._counters = receive_counters(counters)
        return result.notes()

    def run_up(self, conn: psycopg.Connection[Any], apply: Callable[..., _Applied],
               outcome: _Outcome) -> _Applied:
        """Run the up (``apply`` is the engine's, with the truth; what it returns is
        returned); when it fails on generated rows in a way their invented values may cause,
        note it and run it again on empty tables (its failure there is the real one)."""
        up, notes = self.migration.up, outcome.notes

        def apply_up() -> _Applied:
            return apply(self.migration, up, outcome, want_truth=True)

        try:
            return apply_up()
        except MigrationSqlError as exc:
            if not self._before or rows_certainly_break(exc, team_rows=self._team_rows):
                raise
            left = self._new_invalid_indexes(conn)
            notes.append(
                f"up of {self.migration.id} fails on the generated rows ({exc.pg_message}"
                f"{f', SQLSTATE {exc.sqlstate}' if exc.sqlstate else ''}, line {exc.line}); "
                "generated values are not the columns' real content, so it was tested on "
                "empty tables: put representative rows in migrations/testdata/"
                f"{self.migration.version}.sql to test it with rows"
                + (f" (the failed build left {', '.join(left)} INVALID)" if left else ""))
            self._empty_tables(conn)
            return apply_up()

    def up_failed(self, conn: psycopg.Connection[Any], exc: MigrationSqlError,
                  apply: Callable[[Migration, MigrationFile], object],
                  failure: Callable[[], Finding]) -> list[Finding]:
        """The findings of a failed up: ``failure()`` (DB001 or DB006), or DB011 when rows
        certainly break it and it passes on emptied tables; and DB013 for each INVALID index
        the failed up left (the database is left dirty either way: the engine rebuilds it)."""
        found = [self._invalid_finding(index, failed=True)
                 for index in self._new_invalid_indexes(conn)
                 if INVALID_INDEX_LEFT.code not in self._ignored]
        return [self._fails_only_with_rows(conn, exc, apply) or failure(), *found]

    def _fails_only_with_rows(self, conn: psycopg.Connection[Any], exc: MigrationSqlError,
                              apply: Callable[[Migration, MigrationFile], object],
                              ) -> Finding | None:
        if not self._before or ROWS_BREAK_UP.code in self._ignored or self.migration.up is None:
            return None
        self._empty_tables(conn)
        try:
            apply(self.migration, self.migration.up)
        except MigrationFailed:
            return None  # it fails on empty tables too: the plain DB001
        return self._sql_failure(ROWS_BREAK_UP, self.migration, exc, "up",
                                 because="the tables have rows: it passes on empty tables")

    def _empty_tables(self, conn: psycopg.Connection[Any]) -> None:
        """Tables without rows, as the up found them before: emptied in place after a
        transactional up (rolled back whole), a fresh database after a non-transactional one
        (part of it is in effect). The rows' checks have nothing left to compare."""
        if self._transactional:
            truncate_tables(conn, self.schemas)
        else:
            self._rebuild()
        self._before, self._counters = {}, None

    def _new_invalid_indexes(self, conn: psycopg.Connection[Any]) -> list[str]:
        return [i for i in invalid_indexes(conn, self.schemas) if i not in self._invalid_before]

    def _invalid_finding(self, index: str, *, failed: bool) -> Finding:
        how = "the failed up" if failed else f"up of {self.migration.id}"
        return self._finding(
            INVALID_INDEX_LEFT, self.migration, self.migration.up,
            f"{how} left index {index} INVALID (pg_index.indisvalid = false): it slows every "
            f"write and serves no read, and CREATE INDEX ... IF NOT EXISTS skips it on a "
            f"retry; run DROP INDEX CONCURRENTLY {index}; before retrying (an index ON ONLY a "
            "partitioned table becomes valid once each partition's index is attached: ALTER "
            "INDEX ... ATTACH PARTITION)")

    def after_up(self, conn: psycopg.Connection[Any],
                 truth: MigrationTruth | None) -> list[Finding]:
        """DB013 for each INVALID index the up left, DB015 for the tables with rows it read
        in full; remembers the tables it locked."""
        if truth is not None and self._transactional and self._seeded:
            self._locked = sorted(t for t, mode in truth.locks.items() if mode in LOCK_MODES)
        with conn.pipeline():  # the indexes and the scan log: one message
            invalid = conn.execute(cached(conn, INVALID_INDEXES), [self.schemas], prepare=True)
            log = send_scan_log(conn, self.schemas) if self._counters is not None else None
            if self._recording:  # the down, re-up and lock probe record nothing
                stop_scan_log(conn)
                self._recording = False
        found = [] if INVALID_INDEX_LEFT.code in self._ignored else [
            self._invalid_finding(index, failed=False) for (index,) in invalid.fetchall()
            if index not in self._invalid_before]
        if self._counters is not None and log is not None:
            tables = scanned_tables(self.migration, truth, set(self._before),
                                    receive_scan_log(log, self._counters),
                                    transactional=self._transactional)
            if tables:
                found.append(self._finding(SCAN_BELOW_RISK, self.migration, self.migration.up,
                                           scan_message(self.migration, tables)))
        return found

    def after_down(self, conn: psycopg.Connection[Any]) -> list[Finding]:
        """DB012 for the rows up then down lost; then, with the database back in the state
        before the up, DB014 if the up would wait for its lock behind a reader."""
        found: list[Finding] = []
        if self._before and self._rows is not None and DOWN_LOSES_ROWS.code not in self._ignored:
            found += [self._finding(
                DOWN_LOSES_ROWS, self.migration, self.migration.down,
                f"after up then down of {self.migration.id}, {lost}: the down loses data")
                for lost in lost_rows(self._before, self._known.capture(
                    conn, self._rows, trusted=self._trusted)[0])]
        if self._locked and LOCK_STALL.code not in self._ignored and self.migration.up:
            stall = probe_lock_wait(conn, self.migration.up, self.migration.service,
                                    self._locked)
            if stall is not None:
                found.append(self._finding(
                    LOCK_STALL, self.migration, self.migration.up, stall.message,
                    line=stall.line))
        return found
