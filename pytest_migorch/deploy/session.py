"""The runner's one database session: its connection, settings, advisory locks and tracking.

Everything a deploy does runs on this one connection, which also holds the advisory locks, so
a killed runner's locks and open transaction end with its connection (within
``CLIENT_CHECK_INTERVAL``). :mod:`pytest_migorch.deploy.applying` writes each step through it.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Sequence

import psycopg
from psycopg import sql

from pytest_migorch.deploy.locks import (
    AdvisoryLock,
    lock_database_names,
    lock_key,
    release_all,
    take_free_prefix,
)
from pytest_migorch.deploy.planning import format_seconds
from pytest_migorch.deploy.tracking import GOLANG_MIGRATE_SCHEMA, Tracking, golang_migrate_table
from pytest_migorch.postgres.connection import ConnectionSettings

if TYPE_CHECKING:
    from pytest_migorch.deploy.applying import Reporter

__all__ = ["Session", "executed_by", "tracking_guard", "RESET_IDENTITY", "CLIENT_CHECK_INTERVAL"]

log = logging.getLogger(__name__)

#: How often PostgreSQL checks that the runner is still connected during a long statement, so
#: the session (its lock and its transaction) ends within a second after the runner is killed.
CLIENT_CHECK_INTERVAL = "1s"
#: ``RESET ALL`` leaves both alone: a ``SET ROLE`` or ``SET SESSION AUTHORIZATION`` in one
#: migration would otherwise run the next migration (and the tracking writes) as that role.
#: Resetting the session authorization is always allowed: it returns to the login user.
RESET_IDENTITY = sql.SQL("RESET SESSION AUTHORIZATION; RESET ROLE")
_CHECK_INTERVAL = sql.SQL("SET client_connection_check_interval = {}").format(
    sql.Literal(CLIENT_CHECK_INTERVAL))


def executed_by() -> str:
    """``user@host`` of this process, for the ``executed_by`` column."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"[:255]


class Session:
    """The one connection of a run: it holds the locks and runs every migration."""

    def __init__(self, conn: psycopg.Connection[Any], settings: ConnectionSettings,
                 lock_timeout: float | None = None) -> None:
        self.conn = conn
        self.settings = settings
        self.lock_timeout = lock_timeout
        #: Sent ahead of every tracking write (``SET LOCAL``: it ends with that write's
        #: transaction, so nothing leaks into a migration): the runner's own identity, and
        #: a bounded wait for the row and table locks the write needs.
        self.guard: sql.Composed | None = tracking_guard(lock_timeout)
        self.locks: list[AdvisoryLock] = []
        #: golang-migrate's (schema, table) per service schema, when the service declares
        #: ``migrations_table``; others use :func:`golang_migrate_table`'s default.
        self.gm_tables: dict[str, tuple[str, str]] = {}
        self._trackings: dict[str, Tracking] = {}
        self._check_interval: bool | None = None
        self._settings: dict[str, sql.SQL] = {}
        # The lock keys come from what the server says, never from how the URL spells the
        # database: `/app` in the path and `?dbname=app` are one database (docs: "Locks").
        if lock_timeout is not None:
            # Reads before the first migration (state, recovery, status) wait that long too.
            conn.execute(sql.SQL("SET lock_timeout = {}").format(_milliseconds(lock_timeout)))
        row = conn.execute("SELECT current_database()").fetchone()
        self.database = str(row[0]) if row else ""
        self.lock_database_names = lock_database_names(self.database)

    def tracking(self, schema: str) -> Tracking:
        if schema not in self._trackings:
            self._trackings[schema] = Tracking(self.conn, schema, guard=self.guard,
                                               gm_table=self.gm_table_of(schema))
        return self._trackings[schema]

    def probe_tables(self, schemas: Sequence[str]) -> None:
        """Which tracking and golang-migrate tables of ``schemas`` exist, asked once for all
        of them (outside a transaction, with their locks held): a deploy of ten services
        otherwise asked three questions per service, one round trip each."""
        trackings = [self.tracking(schema) for schema in schemas]
        wanted = [table for tracking in trackings for table in tracking.tables()]
        if not wanted or self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return
        rows = self.conn.execute(
            "SELECT s, t FROM unnest(%s::text[], %s::text[]) AS x(s, t) "
            "WHERE to_regclass(format('%%I.%%I', s, t)) IS NOT NULL",
            ([s for s, _ in wanted], [t for _, t in wanted])).fetchall()
        found = {(str(s), str(t)) for s, t in rows}
        for tracking in trackings:
            tracking.known_to_exist(found)

    def gm_table_of(self, schema: str) -> tuple[str, str]:
        """golang-migrate's (schema, table) of a service schema: declared, or the default."""
        return self.gm_tables.get(schema, (GOLANG_MIGRATE_SCHEMA, golang_migrate_table(schema)))

    def locks_for(self, schema: str) -> list[AdvisoryLock]:
        """The keys golang-migrate may lock for this service, in the order runs take them."""
        gm_schema, table = self.gm_table_of(schema)
        return [AdvisoryLock(self.conn, lock_key(name, gm_schema, table),
                             f"service schema {schema}")
                for name in self.lock_database_names]

    def lock_holder(self, schema: str) -> str | None:
        """Who holds this service's lock (either key), if anyone."""
        for lock in self.locks_for(schema):
            holder = lock.holder()
            if holder:
                return holder
        return None

    def alive_backends(self, pids: Sequence[int]) -> set[int]:
        """Which of ``pids`` are sessions of this server right now (``pg_stat_activity``);
        this session's own pid counts as not alive (it cannot be running an older step)."""
        if not pids:
            return set()
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s) AND pid <> pg_backend_pid()",
            (list(pids),)).fetchall()
        return {int(row[0]) for row in rows}

    def lock(self, schemas: Sequence[str], timeout: float, reporter: Reporter) -> None:
        """golang-migrate's lock of every schema, in name order so two runs cannot deadlock
        (and, per schema, both keys in one fixed order): all free ones in one round trip,
        then each busy one (and every one after it) waited for in that order."""
        ordered = [(schema, lock) for schema in sorted(set(schemas))
                   for lock in self.locks_for(schema)]
        free = take_free_prefix(self.conn, [lock for _, lock in ordered])
        for schema, lock in ordered[:free]:
            log.debug("took %s (advisory lock %d) after waiting 0.0 ms", lock.label, lock.key)
            self.locks.append(lock)
        for schema, lock in ordered[free:]:  # busy: wait for each in turn
            waited = lock.acquire(timeout)
            log.debug("took %s (advisory lock %d) after waiting %.1f ms", lock.label,
                      lock.key, waited * 1000)
            if waited >= 0.5:
                reporter.note(f"waited {format_seconds(waited)} for the lock of {schema}")
            self.locks.append(lock)

    def migration_settings(self, schema: str) -> sql.SQL:
        """A clean session per migration: no setting leaks from the previous migration, and
        unqualified names go to the service's schema.

        Parameterless statements, so the runner sends them in the same round trip as the
        migration's first tracking write (``before=`` of :meth:`Tracking.start` and
        :meth:`Tracking.update`), ahead of it: that write, too, runs with clean settings.
        Call it outside a transaction (the first call may probe the server). Composed once
        per schema and kept quoted: it is sent before every migration."""
        if schema not in self._settings:
            statements = [RESET_IDENTITY, sql.SQL("RESET ALL"),
                          sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema))]
            if self._supports_check_interval():
                statements.append(_CHECK_INTERVAL)
            self._settings[schema] = sql.SQL(sql.SQL("; ").join(statements).as_string(self.conn))
        return self._settings[schema]

    def _supports_check_interval(self) -> bool:
        """Whether the server takes ``client_connection_check_interval``, asked once: a
        failing SET would also undo the statements sent with it."""
        if self._check_interval is None:
            try:
                self.conn.execute(_CHECK_INTERVAL)
                self._check_interval = True
            except psycopg.Error:  # PostgreSQL < 14, or a platform without it
                self._check_interval = False
        return self._check_interval

    def close(self) -> None:
        release_all(self.conn, list(reversed(self.locks)))
        self.conn.close()


def _milliseconds(seconds: float) -> sql.Literal:
    return sql.Literal(f"{max(round(seconds * 1000), 1)}ms")


def tracking_guard(lock_timeout: float | None) -> sql.Composed:
    """``SET LOCAL`` statements for a tracking write: back to the login identity (a
    migration's ``SET ROLE`` must not decide who writes the records) and, when given, at most
    ``lock_timeout`` seconds of waiting for a lock (another session's ``SELECT ... FOR UPDATE``
    on a tracking row would otherwise stall the run forever while it holds the advisory
    lock)."""
    statements: list[sql.Composable] = [sql.SQL("SET LOCAL SESSION AUTHORIZATION DEFAULT"),
                                        sql.SQL("SET LOCAL ROLE NONE")]
    if lock_timeout is not None:
        statements.append(sql.SQL("SET LOCAL lock_timeout = {}").format(
            _milliseconds(lock_timeout)))
    return sql.SQL("; ").join(statements)
