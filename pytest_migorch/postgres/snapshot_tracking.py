"""Schema snapshots kept up to date by re-reading only the objects that changed.

The round-trip compares a snapshot after each up, down and re-up with an earlier one. Reading the
whole catalogue each time costs the same whatever the migration did and grows with the schema
(about 8 ms for 300 objects, most of it PostgreSQL rendering definitions with ``pg_get_*def``),
where the migrations themselves take a few milliseconds. A :class:`SnapshotTracker` reads the
whole catalogue once, then, for each later snapshot, asks PostgreSQL which objects may differ
since its last look and renders only those, with the very statement of
:mod:`pytest_migorch.postgres.snapshot` narrowed to them: the result is the snapshot a full read
would give, at a cost that follows the migration, not the schema.

Which objects may differ, decided in the server by the same statement, is deliberately more than
what changed:

- every object the DDL event triggers of :mod:`pytest_migorch.postgres.probes` logged since the
  last look, created, altered, commented on or dropped (they are enabled ``ALWAYS``, so
  ``session_replication_role = replica`` does not hide anything);
- every object with a catalogue row (``pg_class``, ``pg_attribute``, ``pg_proc``,
  ``pg_description``, ``pg_depend``... every catalogue the snapshot reads) written since the
  last look: its ``xmin`` is a transaction that started after it. This catches what no event
  reports, such as a partition detached from its parent or a catalogue updated by hand;
- every object in a schema among those (a renamed schema renames everything in it);
- then everything that depends on any of them (``pg_depend``), since definitions print the names
  of what they refer to: a view on a renamed table, a foreign key to it, a column of its row type;
- and each of these is read with what it belongs to: an index, constraint, trigger or column
  default with its table, a domain constraint with its domain, a view's rule with the view.

A dropped index or trigger no longer says which table it was on, so the tracker sends the owners
of those it knows with each statement. When it cannot be sure it saw every event (the log lost
rows: a rolled-back transaction, another session emptying it), or the connection, database or
event triggers are not the ones it started with, it reads the whole catalogue again. Without event
triggers (no superuser), every snapshot is a full one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql

from pytest_migorch.errors import DatabaseError
from pytest_migorch.postgres.probes import PROBE_SCHEMA
from pytest_migorch.postgres.schema_diff import Attributes, ObjectKey, Snapshot
from pytest_migorch.postgres.snapshot import Row, parse_rows, run_prepared, snapshot_statement
from pytest_migorch.postgres.snapshot_function import (
    failure_of,
    install_snapshot_function,
    snapshot_call,
)

__all__ = ["SnapshotTracker"]

# Catalogue rows -> the oid of what they describe, for the xmin net: every catalogue whose rows
# the snapshot statement reads but pg_depend (it has no index to read user rows by, and what
# changes a dependency is DDL the event triggers report). Only user objects (oids from 16384,
# FirstNormalObjectId, read through each catalogue's index) and the public schema can be in a
# snapshot.
_WRITTEN = (
    ("pg_class", "oid", "oid"), ("pg_attribute", "attrelid", "attrelid"),
    ("pg_attrdef", "oid", "oid"), ("pg_constraint", "oid", "oid"),
    ("pg_index", "indexrelid", "indexrelid"), ("pg_trigger", "oid", "oid"),
    ("pg_type", "oid", "oid"), ("pg_proc", "oid", "oid"), ("pg_extension", "oid", "oid"),
    ("pg_description", "objoid", "objoid"), ("pg_enum", "oid", "enumtypid"),
    ("pg_inherits", "inhrelid", "inhrelid"), ("pg_sequence", "seqrelid", "seqrelid"),
    ("pg_rewrite", "oid", "oid"),
    ("pg_range", "rngtypid", "rngtypid"), ("pg_aggregate", "aggfnoid", "aggfnoid"),
    ("pg_collation", "oid", "oid"), ("pg_language", "oid", "oid"),
    ("pg_opclass", "oid", "oid"), ("pg_operator", "oid", "oid"),
)

# $1: the last DDL log sequence number seen; $2: the transaction id from which rows are new;
# $3, $4: known sub-objects (indexes, constraints, triggers, column defaults) and their owners.
_PARAMS = "bigint, bigint, oid[], oid[]"

# Sets of oids travel as arrays in one-row CTEs: a lookup by ``= ANY`` of a small array goes
# through each catalogue's oid index whatever the planner guesses of the array's size.
# ``age()`` measures from one transaction id for the whole statement, so a row is new when its
# xmin is no older than the watermark (a frozen xmin is as old as can be).
_SCOPE_CTE = """
p AS (SELECT $1::bigint AS seq, age(($2::bigint % 4294967296)::text::xid) AS age_w),
logged AS MATERIALIZED (
    SELECT array_agg(l.objid) AS oids FROM {log} l, p WHERE l.seq > p.seq AND l.objid IS NOT NULL
), changed AS MATERIALIZED (
    SELECT array_agg(DISTINCT u.oid) AS oids FROM (
        SELECT unnest(oids) FROM logged
        UNION ALL SELECT s.owner FROM unnest($3::oid[], $4::oid[]) AS s(sub, owner), logged
        WHERE s.sub = ANY(logged.oids)
        UNION ALL SELECT x.oid FROM pg_namespace x, p WHERE age(x.xmin) <= p.age_w
        UNION ALL SELECT x.objoid FROM pg_description x, p
        WHERE x.objoid = 2200 AND age(x.xmin) <= p.age_w
        {written}
    ) AS u(oid)
), members AS MATERIALIZED (
    SELECT c.oids
        || ARRAY(SELECT r.oid FROM pg_class r WHERE cardinality(c.nsps) > 0
                 AND r.relnamespace = ANY(c.nsps))
        || ARRAY(SELECT t.oid FROM pg_type t WHERE cardinality(c.nsps) > 0
                 AND t.typnamespace = ANY(c.nsps))
        || ARRAY(SELECT f.oid FROM pg_proc f WHERE cardinality(c.nsps) > 0
                 AND f.pronamespace = ANY(c.nsps)) AS oids
    FROM (SELECT coalesce(ch.oids, '{{}}') AS oids,
                 ARRAY(SELECT n.oid FROM pg_namespace n WHERE n.oid = ANY(ch.oids)) AS nsps
          FROM changed ch) AS c
), affected AS MATERIALIZED (
    SELECT m.oids || ARRAY(SELECT d.objid FROM unnest(m.oids) AS u(oid)
                           JOIN pg_depend d ON d.refobjid = u.oid) AS oids
    FROM members m
), scope AS MATERIALIZED (
    SELECT ARRAY(SELECT DISTINCT s.oid FROM (
        SELECT unnest(a.oids) FROM affected a
        UNION ALL SELECT i.indrelid FROM pg_index i, affected a WHERE i.indexrelid = ANY(a.oids)
        UNION ALL SELECT c.conrelid FROM pg_constraint c, affected a
        WHERE c.oid = ANY(a.oids) AND c.conrelid <> 0
        UNION ALL SELECT c.contypid FROM pg_constraint c, affected a
        WHERE c.oid = ANY(a.oids) AND c.contypid <> 0
        UNION ALL SELECT g.tgrelid FROM pg_trigger g, affected a WHERE g.oid = ANY(a.oids)
        UNION ALL SELECT d.adrelid FROM pg_attrdef d, affected a WHERE d.oid = ANY(a.oids)
        UNION ALL SELECT r.ev_class FROM pg_rewrite r, affected a WHERE r.oid = ANY(a.oids)
        UNION ALL SELECT t.oid FROM pg_type t, affected a
        WHERE t.oid >= 16384 AND t.typrelid = ANY(a.oids)
        UNION ALL SELECT t.typrelid FROM pg_type t, affected a
        WHERE t.oid = ANY(a.oids) AND t.typrelid <> 0
        UNION ALL SELECT e.enumtypid FROM pg_enum e, affected a WHERE e.oid = ANY(a.oids)
    ) AS s(oid)) AS oids
),"""

_WRITTEN_ROWS = ("UNION ALL SELECT x.{output} FROM {catalogue} x, p"
                 " WHERE x.{indexed} >= 16384 AND age(x.xmin) <= p.age_w")

#: The log's last sequence number, how many of its rows are newer than $1 (all of them, unless
#: some were lost), the transaction id from which rows are new next time, the scope.
_META = f"""
, (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
   FROM {PROBE_SCHEMA}.ddl_log_seq_seq),
  (SELECT count(*) FROM {PROBE_SCHEMA}.ddl_log l, p WHERE l.seq > p.seq),
  pg_snapshot_xmin(pg_current_snapshot())::text::bigint, (SELECT oids FROM scope)"""

# The starting point: where the log and the transaction ids are when the whole catalogue is read.
_WATERMARKS = f"""
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
        FROM {PROBE_SCHEMA}.ddl_log_seq_seq),
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint
"""

_IN_SCOPE = {
    "nsp_scope": "n.oid = ANY((SELECT oids FROM scope)::oid[])",
    "ext_scope": "e.oid = ANY((SELECT oids FROM scope)::oid[])",
    "rel_scope": "c.oid = ANY((SELECT oids FROM scope)::oid[])",
    "typ_scope": "t.oid = ANY((SELECT oids FROM scope)::oid[])",
    "proc_scope": "p.oid = ANY((SELECT oids FROM scope)::oid[])",
}


def _scoped_parts() -> dict[str, sql.Composable]:
    written = "\n        ".join(
        _WRITTEN_ROWS.format(output=output, indexed=indexed, catalogue=f"pg_catalog.{name}")
        for name, indexed, output in _WRITTEN)
    cte = _SCOPE_CTE.format(log=f"{PROBE_SCHEMA}.ddl_log", written=written)
    parts: dict[str, sql.Composable] = {name: sql.SQL(text) for name, text in _IN_SCOPE.items()}
    parts["scope_cte"] = sql.SQL(cte)
    parts["meta"] = sql.SQL(_META)
    return parts

log = logging.getLogger(__name__)


@dataclass
class _State:
    """What the tracker knows of the database: the objects, and where it last looked."""

    session: tuple[int, int, str]  # the connection: id, backend pid, database
    seq: int  # the DDL log's last sequence number seen
    xid: int  # catalogue rows with an xmin from here on may be new
    objects: dict[ObjectKey, Attributes] = field(default_factory=dict)
    #: owner oid -> the keys it was read with, and their own oids
    parts: dict[int, list[tuple[ObjectKey, int | None]]] = field(default_factory=dict)
    owner_of: dict[int, int] = field(default_factory=dict)  # sub-object oid -> owner oid
    key_owner: dict[ObjectKey, int] = field(default_factory=dict)

    def add(self, rows: Iterable[Row]) -> None:
        for key, attrs, owner, own in rows:
            self.objects[key] = attrs
            self.key_owner[key] = owner
            self.parts.setdefault(owner, []).append((key, own))
            if own is not None:
                self.owner_of[own] = owner

    def drop(self, owner: int) -> None:
        """Forget what ``owner`` was read with (it is read again, or gone)."""
        for key, own in self.parts.pop(owner, ()):
            if self.key_owner.get(key) == owner:
                del self.objects[key], self.key_owner[key]
            if own is not None and self.owner_of.get(own) == owner:
                del self.owner_of[own]


class SnapshotTracker:
    """Snapshots of one database through one connection, each read as cheaply as it can be.

    Call :meth:`snapshot` where ``take_snapshot`` would be called; the first call (and any
    after :meth:`forget`, on another connection or after lost events) reads the whole
    catalogue. ``full_reads`` and ``partial_reads`` count the two kinds of reads."""

    def __init__(self, *, exclude_schemas: Iterable[str] = (),
                 exclude_tables: Iterable[tuple[str, str]] = ()) -> None:
        schemas = tuple(exclude_schemas)
        schemas = schemas if PROBE_SCHEMA in schemas else (*schemas, PROBE_SCHEMA)
        tables = tuple((schema, table) for schema, table in exclude_tables)
        self._full = snapshot_statement(schemas, tables)
        self._scoped = snapshot_statement(schemas, tables, _scoped_parts())
        #: encoding -> the full and the scoped statement, and the name the latter is prepared as
        self._text: dict[str, tuple[bytes, bytes, str]] = {}
        self._prepared_in: tuple[int, int, str] | None = None  # the session it is prepared in
        self._state: _State | None = None
        #: The session the snapshot function is installed for, and its name.
        self._function: tuple[tuple[int, int, str], str] | None = None
        self.full_reads = 0
        self.partial_reads = 0
        self.last_read = 0  # objects the last read rendered
        #: The oids each partial read since the last full one re-read (its scope).
        self._scopes: list[frozenset[int]] = []

    def forget(self) -> None:
        """Read the whole catalogue next time."""
        self._state = None

    def position(self) -> tuple[int, int]:
        """Where the tracker is: a mark for :meth:`changed_since`."""
        return self.full_reads, len(self._scopes)

    def changed_since(self, conn: psycopg.Connection[Any],
                      position: tuple[int, int]) -> frozenset[int] | None:
        """The oids of every object that may have changed between the snapshot taken at
        ``position`` and the last one (each partial read's scope: what it re-read, with its
        owners and dependents), or None when that is unknown: a full read since (lost
        events, another connection or database) or nothing tracked on ``conn``. Callers that
        cache what they read of the catalogue re-read only these, and everything on None."""
        state = self._state
        full_reads, partial = position
        if state is None or state.session != _session(conn) or full_reads != self.full_reads \
                or partial > len(self._scopes):
            return None
        return frozenset().union(*self._scopes[partial:])

    def logged_through(self) -> int | None:
        """The DDL log's last sequence number the last snapshot saw (None: none tracked):
        a log that has gone further since holds DDL no snapshot has seen yet."""
        return self._state.seq if self._state is not None else None

    def snapshot(self, conn: psycopg.Connection[Any], *, events: bool = True) -> Snapshot:
        """The snapshot of the database now. ``events``: the DDL event triggers are installed
        (:func:`pytest_migorch.postgres.probes.install_probes` said so); without them every
        snapshot reads the whole catalogue."""
        try:
            state = self._state
            if not events:
                self._state = None
                return Snapshot(self._read_all(conn, watermarks=False).objects)
            if state is None or state.session != _session(conn) or not self._refresh(conn, state):
                state = self._state = self._read_all(conn, watermarks=True)
            return Snapshot(dict(state.objects))
        except psycopg.Error as exc:
            self._state = None
            raise DatabaseError(f"could not take a schema snapshot: {exc}") from exc

    def _statements(self, conn: psycopg.Connection[Any]) -> tuple[bytes, bytes, str]:
        """Both statements as bytes, composed once (they are long), and the scoped one's name
        (:func:`run_prepared` names a statement after its text)."""
        encoding = conn.info.encoding
        if encoding not in self._text:
            scoped = self._scoped.as_bytes(conn)
            digest = hashlib.sha256(scoped + _PARAMS.encode()).hexdigest()[:16]
            self._text[encoding] = (self._full.as_bytes(conn), scoped, f"migorch_snapshot_{digest}")
        return self._text[encoding]

    def _read_all(self, conn: psycopg.Connection[Any], *, watermarks: bool) -> _State:
        self.full_reads += 1
        self._scopes = []
        seq = xid = 0
        if watermarks:  # before the read: whatever happens after it is looked at next time
            row = conn.execute(_WATERMARKS, prepare=False).fetchone()
            assert row is not None
            seq, xid = int(row[0]), int(row[1])
        result = run_prepared(conn, self._statements(conn)[0])
        state = _State(_session(conn), seq, xid)
        rows = parse_rows(result[0] if result else None)
        state.add(rows)
        self.last_read = len(rows)
        return state

    def _refresh(self, conn: psycopg.Connection[Any], state: _State) -> bool:
        """Re-read what may have changed into ``state``; False when that cannot be trusted."""
        return self._take(state, self._execute_scoped(conn, _arguments(state)))

    def _take(self, state: _State, result: tuple[Any, ...]) -> bool:
        """The scoped statement's row into ``state``; False (``state`` untouched) when events
        were lost since the last look."""
        document, last_seq, newer, xid, scope = result
        if newer != last_seq - state.seq:  # events were lost: the log cannot be trusted
            return False
        self.partial_reads += 1
        self._scopes.append(frozenset(int(oid) for oid in scope or ()))
        for owner in scope or ():
            state.drop(owner)
        rows = parse_rows(document)
        state.add(rows)
        self.last_read = len(rows)
        state.seq, state.xid = int(last_seq), int(xid)
        return True

    # --- the read after a file, in its message (postgres.snapshot_function) -------------------

    def install_function(self, conn: psycopg.Connection[Any]) -> bool:
        """Install the scoped read as a function in ``conn``'s database (once per database,
        with the probes), so that :meth:`call_after` can put it after a file."""
        name = install_snapshot_function(conn, self._statements(conn)[1])
        self._function = (_session(conn), name) if name is not None else None
        return name is not None

    def call_after(self, conn: psycopg.Connection[Any]) -> bytes | None:
        """The ``SELECT`` to send after a file's ``COMMIT``, in its message, whose row
        :meth:`snapshot_from` turns into the snapshot; None when there is no tracked state or
        function on this connection (take :meth:`snapshot` after the file instead)."""
        state, session = self._state, _session(conn)
        if state is None or state.session != session or self._function is None \
                or self._function[0] != session:
            return None
        return snapshot_call(conn, self._function[1], _arguments(state))

    def snapshot_from(self, conn: psycopg.Connection[Any],
                      row: tuple[Any, ...] | None) -> Snapshot:
        """The snapshot from the row of :meth:`call_after`'s ``SELECT``, sent since with no
        other snapshot in between; when it is missing, says the read failed, or events were
        lost, the snapshot read as :meth:`snapshot` reads it (a full read if need be)."""
        state = self._state
        failure = failure_of(row) if row is not None else "no row"
        if failure is not None:
            log.info("the snapshot read after a file failed (%s): read on its own", failure)
        elif state is not None and state.session == _session(conn) and row is not None \
                and self._take(state, row):
            return Snapshot(dict(state.objects))
        return self.snapshot(conn)

    def _execute_scoped(self, conn: psycopg.Connection[Any], args: str) -> tuple[Any, ...]:
        """The scoped statement's row. Once it is prepared in the session, with the connection
        idle in autocommit (the round-trip's case), the transaction, its settings (those of
        :func:`run_prepared`) and the statement go in one message: one round trip, not four."""
        _, text, name = self._statements(conn)
        session = _session(conn)
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if self._prepared_in == session and idle and conn.autocommit:
            message = (f"BEGIN; SET LOCAL search_path TO pg_catalog;"
                       f" SET LOCAL plan_cache_mode TO force_generic_plan;"
                       f" EXECUTE {name}({args}); COMMIT")
            try:
                with conn.cursor() as cur:
                    cur.execute(message.encode(), prepare=False)
                    while cur.description is None and cur.nextset():
                        pass
                    row: tuple[Any, ...] | None = cur.fetchone()
                assert row is not None
                return row
            except psycopg.errors.InvalidSqlStatementName:  # DEALLOCATE ALL: prepare again
                conn.execute("ROLLBACK")
            except psycopg.Error:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise
        result = run_prepared(conn, text, params=_PARAMS, args=sql.SQL(args))
        assert result is not None
        self._prepared_in = session
        return result


def _arguments(state: _State) -> str:
    """The scoped statement's four arguments as literals (integers only): the log's position,
    the transaction id, the known sub-objects and their owners."""
    subs = list(state.owner_of)
    owners = [state.owner_of[s] for s in subs]
    return (f"{int(state.seq)}, {int(state.xid)}, '{{{','.join(map(str, subs))}}}'::oid[],"
            f" '{{{','.join(map(str, owners))}}}'::oid[]")


def _session(conn: psycopg.Connection[Any]) -> tuple[int, int, str]:
    """Which connection, backend and database: a tracked state holds for one of each."""
    return id(conn), conn.info.backend_pid, conn.info.dbname
