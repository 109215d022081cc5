"""Which tables' rows may differ after the down from before the up, without reading the rows.

``DB012`` compares every table's rows before the up with the same table's after the down
(:mod:`pytest_migorch.roundtrip.seeding`). Reading every table again costs as much as the first
read, and grows with the schema, while an up and its down touch a table or two. So with the
rows before the up PostgreSQL is asked, for each table, a stamp that any change of its rows
moves: the statistics' row-write counters (inserted + updated + deleted tuples: the shared ones
plus this backend's not yet flushed, which add up across the flush), which every INSERT,
UPDATE, DELETE, MERGE or COPY moves, even rolled back. After the down, the tables whose stamp
moved, and those the snapshot tracker re-read since (any DDL or catalogue change on them or on
what they depend on: a column dropped and added again, an enum label renamed, and TRUNCATE or
a rewrite, which give the table a new ``relfilenode`` in ``pg_class``), are read again and
compared; the others are the rows as before.

Everything is read again when that cannot be trusted: ``track_counts`` off, no snapshot
tracking (no event triggers), a full read by the tracker since (lost events, another
connection), or DDL the tracker has not seen yet (the log went further).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_migorch.postgres.probes import PROBE_SCHEMA

if TYPE_CHECKING:
    import psycopg

    from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker

__all__ = ["RowChanges"]

_STAMPS = f"""
SELECT c.oid::bigint,
       pg_stat_get_tuples_inserted(c.oid) + pg_stat_get_tuples_updated(c.oid)
       + pg_stat_get_tuples_deleted(c.oid) + pg_stat_get_xact_tuples_inserted(c.oid)
       + pg_stat_get_xact_tuples_updated(c.oid) + pg_stat_get_xact_tuples_deleted(c.oid),
       current_setting('track_counts')::bool,
       (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
        FROM {PROBE_SCHEMA}.ddl_log_seq_seq)
FROM pg_class c WHERE c.oid = ANY(%s::oid[])
"""

#: table oid -> row writes
_Stamps = dict[int, int]


class RowChanges:
    """The stamps of some tables at one moment (:meth:`send` then :meth:`receive`, in the
    message that reads their rows), then :meth:`changed`: which of them may differ now."""

    def __init__(self, tracker: SnapshotTracker | None) -> None:
        self._tracker = tracker
        self._oids: list[int] = []
        self._stamps: _Stamps | None = None
        self._position = (0, 0)

    def send(self, conn: psycopg.Connection[Any],
             oids: list[int]) -> psycopg.Cursor[Any] | None:
        """Ask for the stamps (in a pipeline, with the rows); None when they could not be
        trusted later anyway (no tracked snapshots, so no event triggers nor DDL log)."""
        if self._tracker is None or self._tracker.logged_through() is None or not oids:
            return None
        self._oids = list(oids)
        self._position = self._tracker.position()
        return conn.execute(_STAMPS, [self._oids], prepare=False)

    def receive(self, cursor: psycopg.Cursor[Any] | None) -> None:
        self._stamps = None if cursor is None else self._read(cursor.fetchall())

    def changed(self, conn: psycopg.Connection[Any]) -> set[int] | None:
        """The oids among the stamped tables whose rows may have changed since, or None when
        any of them may have (read them all)."""
        if self._stamps is None or self._tracker is None:
            return None
        ddl = self._tracker.changed_since(conn, self._position)
        logged = self._tracker.logged_through()
        if ddl is None or logged is None:
            return None
        rows = conn.execute(_STAMPS, [self._oids], prepare=False).fetchall()
        now = self._read(rows)
        if now is None or any(row[3] != logged for row in rows):
            return None  # counters off, or DDL after the last snapshot
        return {oid for oid in self._oids if oid in ddl or now.get(oid) != self._stamps.get(oid)}

    @staticmethod
    def _read(rows: list[tuple[Any, ...]]) -> _Stamps | None:
        """The stamps, or None when ``track_counts`` is off (the counters do not move)."""
        if not all(row[2] for row in rows):
            return None
        return {int(oid): int(writes) for oid, writes, _, _ in rows}
