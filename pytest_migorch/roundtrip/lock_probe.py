"""Does ``lock_timeout`` really protect the table? The stall check of the round-trip.

A migration that needs ACCESS EXCLUSIVE (or SHARE) on a busy table queues behind the readers
that hold ACCESS SHARE, and every query that arrives after it queues behind the migration: the
table stalls until the longest reader ends. ``SET lock_timeout`` turns that into a fast failure
(SQLSTATE 55P03) that the deploy can retry. Declarations cannot prove it; PostgreSQL can:

1. a second session holds ACCESS SHARE on each table the up locked (``BEGIN; SELECT 1 FROM t
   LIMIT 0``), as any reader in production does;
2. a third session runs the up in a transaction that is always rolled back;
3. the round-trip's own session polls ``pg_stat_activity`` for that backend: once it waits on a
   ``Lock`` for longer than :data:`WAIT_BOUND` (longer when the file sets a ``lock_timeout``
   itself, so that it can fire), it is a stall: the backend is cancelled (``pg_cancel_backend``)
   and the statement it waited in is reported. A 55P03 is the proof that the up is safe.

It runs with the database in the state before the up (after the round-trip's down), so the
probe sees the same tables the up found; its transaction never commits.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

from pytest_migorch.model import MigrationFile, schema_name
from pytest_migorch.postgres.statements import MigrationSqlError, run_migration_file

__all__ = ["LOCK_MODES", "WAIT_BOUND", "Stall", "probe_lock_wait"]

#: The lock modes of pre-existing tables that make an up worth probing.
LOCK_MODES = ("AccessExclusiveLock", "ShareLock")
#: How long the up may wait for its lock before it counts as a stall (seconds).
WAIT_BOUND = 0.2
#: The bound when the file sets its own lock_timeout: long enough for one of seconds to fire.
OWN_TIMEOUT_BOUND = 10.0
_POLL = 0.002
_SETS_LOCK_TIMEOUT = re.compile(r"(?i)\block_timeout\b")
_WAITING = "SELECT wait_event_type = 'Lock', query FROM pg_stat_activity WHERE pid = %s"


@dataclass(frozen=True)
class Stall:
    """The up waited behind a reader without failing: where, and what to say."""

    message: str
    line: int | None


class _Runner(threading.Thread):
    """Runs the up in its own session, in a transaction that is always rolled back."""

    def __init__(self, conn: psycopg.Connection[Any], up: MigrationFile, service: str) -> None:
        super().__init__(daemon=True)
        self.conn, self.up, self.service = conn, up, service
        self.error: MigrationSqlError | None = None

    def run(self) -> None:
        try:
            self.conn.execute(sql.SQL("SET search_path TO {}, public").format(
                sql.Identifier(schema_name(self.service))))
            self.conn.execute("BEGIN")
            run_migration_file(self.conn, self.up, in_transaction=True)
        except MigrationSqlError as exc:
            self.error = exc
        except psycopg.Error:  # noqa: S110 - the probe proves nothing then; the up ran before
            pass
        finally:
            try:
                self.conn.execute("ROLLBACK")
            except psycopg.Error:
                pass


def _connect(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Another session on the same database as ``conn``, with the same credentials."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True)


def probe_lock_wait(conn: psycopg.Connection[Any], up: MigrationFile, service: str,
                    tables: list[str]) -> Stall | None:
    """Run ``up`` behind a reader of each of ``tables``; a :class:`Stall` when it waited on
    its lock beyond the bound without failing with ``lock_timeout``, else None."""
    with _connect(conn) as blocker, _connect(conn) as migrator:
        blocker.execute("BEGIN")
        for table in tables:
            schema, _, name = table.partition(".")
            blocker.execute(sql.SQL("SELECT 1 FROM {} LIMIT 0").format(
                sql.Identifier(schema, name)))
        runner = _Runner(migrator, up, service)
        runner.start()
        bound = OWN_TIMEOUT_BOUND if _SETS_LOCK_TIMEOUT.search(up.read_text()) else WAIT_BOUND
        query = _watch(conn, migrator.info.backend_pid, runner, bound)
        runner.join()
        blocker.execute("ROLLBACK")
    if query is None:
        return None  # it never waited that long, or lock_timeout ended the wait (55P03)
    line = runner.error.line if runner.error is not None else None
    statement = " ".join(query.split())
    return Stall(
        f"up of {up.name} waited more than {bound * 1000:.0f} ms for its lock on "
        f"{', '.join(tables)} behind a reader (ACCESS SHARE) without failing on lock_timeout "
        f"(SQLSTATE 55P03): in production it would stall all traffic on the table; it was "
        f"cancelled. Set lock_timeout (SET lock_timeout = '2s';) before: {statement[:200]}",
        line)


def _watch(conn: psycopg.Connection[Any], pid: int, runner: _Runner,
           bound: float) -> str | None:
    """Poll the backend until the runner ends; the statement it waited in when it waited on a
    lock beyond ``bound`` (it is cancelled then), else None."""
    waiting_since: float | None = None
    while runner.is_alive():
        row = conn.execute(_WAITING, [pid]).fetchone()
        now = time.perf_counter()
        if row is not None and row[0]:
            waiting_since = waiting_since if waiting_since is not None else now
            if now - waiting_since > bound:
                conn.execute("SELECT pg_cancel_backend(%s)", [pid])
                return str(row[1])
        else:
            waiting_since = None
        time.sleep(_POLL)
    return None
