"""Which tables' rows may differ since they were last read, without reading the rows.

``DB012`` compares every table's rows before the up with the same table's after the down
(:mod:`pytest_migorch.roundtrip.seeding`). Reading every table again costs as much as the first
read, and grows with the schema, while an up and its down touch a table or two. So with the
rows before the up PostgreSQL is asked, for each table, a stamp that any change of its rows
moves: the statistics' row-write counters (inserted + updated + deleted tuples: the shared ones
plus this backend's not yet flushed, which add up across the flush), which every INSERT,
UPDATE, DELETE, MERGE or COPY moves, even rolled back, summed over the table's partitions and
inheritance children (whose rows its own read includes), with the list of them. After the
down, the tables whose stamp
moved, and those the snapshot tracker re-read since (any DDL or catalogue change on them or on
what they depend on, or on a partition or child: a column dropped and added again, an enum
label renamed, and TRUNCATE or a rewrite, which give the table a new ``relfilenode`` in
``pg_class``), are read again and compared; the others are the rows as before.

The rows after a down are, for most tables, the rows before the next up: :class:`KnownRows`
keeps them, with their stamps, from one read to the next, so before the next up too only the
tables whose stamp moved since (the re-up's writes, seeding's rows) or that the tracker
re-read are read again.

Everything is read again when that cannot be trusted: ``track_counts`` off, no snapshot
tracking (no event triggers), a full read by the tracker since (lost events, another
connection), or DDL the tracker has not seen yet (the log went further).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pytest_migorch.postgres.cached_plans import cached
from pytest_migorch.postgres.probes import PROBE_SCHEMA
from pytest_migorch.roundtrip.seeding import RowCapture, RowPrint

if TYPE_CHECKING:
    import psycopg

    from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker

__all__ = ["RowChanges", "KnownRows", "STAMPS"]

#: A table's rows, as read, include those of its partitions and inheritance children, whose
#: writes move their own counters: a table's stamp is its tree's counters and members.
STAMPS = f"""
WITH RECURSIVE tree(root, rel) AS (
    SELECT c.oid, c.oid FROM pg_class c WHERE c.oid = ANY(%s::oid[])
    UNION ALL SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.rel)
SELECT t.root::bigint,
       sum(pg_stat_get_tuples_inserted(t.rel) + pg_stat_get_tuples_updated(t.rel)
           + pg_stat_get_tuples_deleted(t.rel) + pg_stat_get_xact_tuples_inserted(t.rel)
           + pg_stat_get_xact_tuples_updated(t.rel) + pg_stat_get_xact_tuples_deleted(t.rel)
           )::bigint,
       array_agg(t.rel::bigint ORDER BY t.rel),
       current_setting('track_counts')::bool,
       (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
        FROM {PROBE_SCHEMA}.ddl_log_seq_seq)
FROM tree t GROUP BY t.root
"""

#: table oid -> its tree's row writes, and its tree (itself, its partitions and children)
_Stamps = dict[int, tuple[int, tuple[int, ...]]]


class RowChanges:
    """The stamps of some tables at one moment (:meth:`send` then :meth:`receive`, in the
    message that reads their rows), then :meth:`changed`: which of them may differ now."""

    def __init__(self, tracker: SnapshotTracker | None) -> None:
        self.tracker = tracker
        self._stamps: _Stamps | None = None
        self._position = (0, 0)

    def send(self, conn: psycopg.Connection[Any],
             oids: list[int]) -> psycopg.Cursor[Any] | None:
        """Ask for the stamps (in a pipeline, with the rows); None when they could not be
        trusted later anyway (no tracked snapshots, so no event triggers nor DDL log)."""
        if self.tracker is None or self.tracker.logged_through() is None or not oids:
            return None
        self._position = self.tracker.position()
        return conn.execute(cached(conn, STAMPS), [oids], prepare=False)

    def receive(self, cursor: psycopg.Cursor[Any] | None) -> None:
        self._stamps = None if cursor is None else self._read(cursor.fetchall())

    def changed(self, conn: psycopg.Connection[Any], oids: list[int]) -> set[int] | None:
        """The oids among ``oids`` whose rows may have changed since the stamps (a table not
        stamped then has), or None when any of them may have (read them all, stamp again).
        The stamps now replace the old ones: read the changed tables before writing again."""
        stamps, self._stamps = self._stamps, None
        if stamps is None or self.tracker is None:
            return None
        ddl = self.tracker.changed_since(conn, self._position)
        logged = self.tracker.logged_through()
        if ddl is None or logged is None:
            return None
        rows = conn.execute(cached(conn, STAMPS), [oids], prepare=False).fetchall()
        now = self._read(rows)
        if now is None or any(row[4] != logged for row in rows):
            return None  # counters off, or DDL after the last snapshot
        self._stamps, self._position = now, self.tracker.position()
        return {oid for oid in oids if now.get(oid) != stamps.get(oid)
                or not ddl.isdisjoint(now[oid][1] if oid in now else (oid,))}

    @staticmethod
    def _read(rows: list[tuple[Any, ...]]) -> _Stamps | None:
        """The stamps, or None when ``track_counts`` is off (the counters do not move)."""
        if not all(row[3] for row in rows):
            return None
        return {int(oid): (int(writes), tuple(int(m) for m in members))
                for oid, writes, members, _, _ in rows}


#: What :meth:`KnownRows.capture` also sends, after the rows, in the same message.
Also = Callable[["psycopg.Connection[Any]"], object]


class KnownRows:
    """The rows of a round-trip's tables as last read (before an up, after its down), kept
    from one read to the next for the tables whose stamps did not move: the tables' rows
    before the next up are mostly the rows after this down."""

    def __init__(self, tracker: SnapshotTracker | None) -> None:
        self._changes = RowChanges(tracker)
        self._prints: dict[int, tuple[int, tuple[str, ...], list[tuple[str | None, ...]]]] = {}
        self._shapes: dict[int, tuple[str, ...]] = {}  # every table read: its column names

    def capture(self, conn: psycopg.Connection[Any], rows: RowCapture, *, trusted: bool = True,
                also: Also | None = None) -> tuple[RowPrint, object]:
        """:meth:`RowCapture.capture` of ``rows``, reading only the tables that may have
        changed since the last capture (all of them when that cannot be told, or when not
        ``trusted``: the migration may write in ways the counters miss); ``also`` goes in the
        same message, after the rows, and its result is returned with them."""
        oids = [t.oid for t in rows.tables]
        changed = self._changes.changed(conn, oids) if trusted and self._shapes else None
        fresh = [t for t, names in zip(rows.tables, rows.names)
                 if changed is None or t.oid in changed or self._shapes.get(t.oid) != names]
        reader = rows if len(fresh) == len(rows.tables) else RowCapture(conn, fresh)
        with conn.pipeline():
            cursor = reader.send(conn)
            stamps = self._changes.send(conn, oids) if changed is None and trusted else None
            extra = also(conn) if also is not None else None
        found = reader.receive(cursor)
        if changed is None:
            self._changes.receive(stamps)
        oid_of = {t.qualified: t.oid for t in fresh}
        kept = {t.oid for t in rows.tables} - set(oid_of.values())
        self._prints = {oid: p for oid, p in self._prints.items() if oid in kept}
        self._prints.update((oid_of[name], print_) for name, print_ in found.items())
        self._shapes = dict(zip(oids, rows.names)) if trusted else {}
        return {t.qualified: self._prints[t.oid] for t in rows.tables
                if t.oid in self._prints}, extra
