"""Does ``lock_timeout`` really protect the table? The stall check of the round-trip.

A migration that needs ACCESS EXCLUSIVE (or SHARE) on a busy table queues behind the readers
that hold ACCESS SHARE, and every query that arrives after it queues behind the migration: the
table stalls until the longest reader ends. ``SET lock_timeout`` turns that into a fast failure
(SQLSTATE 55P03) that the deploy can retry. Declarations cannot prove it; PostgreSQL can:

1. a second session holds ACCESS SHARE on each table the up locked (``BEGIN; SELECT 1 FROM t
   LIMIT 0``), as any reader in production does;
2. a third session runs the up in a transaction that is always rolled back, with PostgreSQL
   itself timing the wait: the session's ``lock_timeout`` is :data:`WAIT_BOUND`, and each
   ``SET lock_timeout`` of the file is run with a tiny value (:data:`OWN_TIMEOUT`) when it sets
   one, or the bound when it sets none (``0``): the file's own timeout fires at once, so the
   probe never waits the seconds a file allows itself;
3. the up failing with 55P03 is the answer: when the ``SET lock_timeout`` in effect at the
   failing statement was the file's own, the up is safe (proof: it fails fast and the deploy
   can retry); when none was, it waited :data:`WAIT_BOUND` and would stall all traffic.

No polling, no sleep. A file that sets ``lock_timeout`` some other way (``set_config``, a
``DO`` block) is run as it is, with the round-trip's session polling ``pg_stat_activity`` for
the backend instead, with a bound long enough for the file's timeout to fire
(:data:`OWN_TIMEOUT_BOUND`).

It runs with the database in the state before the up (after the round-trip's down), so the
probe sees the same tables the up found; its transaction never commits.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

from pytest_migorch.model import MigrationFile, schema_name
from pytest_migorch.postgres.statements import MigrationSqlError, run_sql_text
from pytest_migorch.sql.split import split_statements

__all__ = ["LOCK_MODES", "WAIT_BOUND", "Stall", "probe_lock_wait"]

#: The lock modes of pre-existing tables that make an up worth probing.
LOCK_MODES = ("AccessExclusiveLock", "ShareLock")
#: How long the up may wait for its lock before it counts as a stall (seconds).
WAIT_BOUND = 0.2
#: The bound when the file sets its own lock_timeout: long enough for one of seconds to fire.
OWN_TIMEOUT_BOUND = 10.0
#: What the file's own non-zero ``lock_timeout`` becomes in the probe: the probe waits this
#: long each time a file is safe (the usual case), and any non-zero value proves the same, as
#: the blocker's is the only conflicting lock (it was 10 ms: 2 ms per migration of the
#: benchmark's round-trip).
OWN_TIMEOUT = "1ms"
_POLL = 0.002
_SETS_LOCK_TIMEOUT = re.compile(r"(?i)\block_timeout\b")
_SET_LOCK_TIMEOUT = re.compile(
    r"(?is)^(SET\s+(?:SESSION\s+|LOCAL\s+)?lock_timeout\s*(?:=|\bTO\b)\s*)"
    r"('[^']*'|[0-9.]+\s*[a-z]*|DEFAULT)\s*$")
_ZERO = re.compile(r"(?i)^'?\s*(0+(\.0*)?\s*[a-z]*|DEFAULT)\s*'?$")


@dataclass(frozen=True)
class _Rewritten:
    """The up's text for the probe, and the lines of its ``SET lock_timeout`` statements with
    whether each sets one (a zero or DEFAULT sets none)."""

    text: str
    sets: list[tuple[int, bool]]


def _rewrite(text: str) -> _Rewritten | None:
    """The text with each ``SET lock_timeout`` at :data:`OWN_TIMEOUT` (or the bound for a
    zero), or None when the file names lock_timeout in a way this cannot follow."""
    out, last, sets = [], 0, []
    for statement in split_statements(text):
        if not _SETS_LOCK_TIMEOUT.search(statement.text):
            continue
        match = _SET_LOCK_TIMEOUT.match(statement.text.strip())
        if match is None:
            return None
        own = not _ZERO.match(match.group(2))
        value = OWN_TIMEOUT if own else f"{WAIT_BOUND * 1000:.0f}ms"
        out += [text[last:statement.start], f"{match.group(1)}'{value}'"]
        last = statement.end
        sets.append((statement.line, own))
    out.append(text[last:])
    return _Rewritten("".join(out), sets)
_WAITING = "SELECT wait_event_type = 'Lock', query FROM pg_stat_activity WHERE pid = %s"


@dataclass(frozen=True)
class Stall:
    """The up waited behind a reader without failing: where, and what to say."""

    message: str
    line: int | None


def _run_up(conn: psycopg.Connection[Any], text: str, up: MigrationFile,
            service: str) -> MigrationSqlError | None:
    """Run ``text`` (the up's) in a transaction that is always rolled back; its error."""
    try:
        conn.execute(sql.SQL("SET search_path TO {}, public").format(
            sql.Identifier(schema_name(service))))
        conn.execute("BEGIN")
        run_sql_text(conn, text, path=up.path, in_transaction=True)
    except MigrationSqlError as exc:
        return exc
    except psycopg.Error:  # the probe proves nothing then; the up ran before
        pass
    finally:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass
    return None


class _Runner(threading.Thread):
    """Runs the up in its own session while the round-trip's session watches it."""

    def __init__(self, conn: psycopg.Connection[Any], up: MigrationFile, service: str) -> None:
        super().__init__(daemon=True)
        self.conn, self.up, self.service = conn, up, service
        self.error: MigrationSqlError | None = None

    def run(self) -> None:
        self.error = _run_up(self.conn, self.up.read_text(), self.up, self.service)


def _connect(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Another session on the same database as ``conn``, with the same credentials."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True,
                           prepare_threshold=None)


#: The blocker's and the migrator's sessions of each round-trip connection: a connection
#: costs more than the probe itself (~10 ms on a loaded machine), and a round-trip probes many
#: migrations on the same database. Closed when the round-trip's connection is collected
#: (the engine drops its database WITH (FORCE) anyway).
_SESSIONS: weakref.WeakKeyDictionary[psycopg.Connection[Any], list[psycopg.Connection[Any]]] \
    = weakref.WeakKeyDictionary()


def _close_all(sessions: list[psycopg.Connection[Any]]) -> None:
    for session in sessions:
        session.close()


def _sessions(conn: psycopg.Connection[Any]) -> tuple[psycopg.Connection[Any],
                                                       psycopg.Connection[Any]]:
    """The blocker and the migrator for ``conn``'s database, reused while they are idle and
    alive; the migrator's settings are reset (a probe's lock_timeout must not outlive it)."""
    sessions = _SESSIONS.get(conn)
    idle = psycopg.pq.TransactionStatus.IDLE
    if sessions is None or any(s.closed or s.info.transaction_status != idle
                               for s in sessions):
        if sessions is not None:
            _close_all(sessions)
        sessions = [_connect(conn), _connect(conn)]
        _SESSIONS[conn] = sessions
        weakref.finalize(conn, _close_all, sessions)
    else:
        sessions[1].execute("RESET ALL")
    return sessions[0], sessions[1]


def probe_lock_wait(conn: psycopg.Connection[Any], up: MigrationFile, service: str,
                    tables: list[str]) -> Stall | None:
    """Run ``up`` behind a reader of each of ``tables``; a :class:`Stall` when it waited on
    its lock beyond the bound without failing with ``lock_timeout``, else None."""
    rewritten = _rewrite(up.read_text())
    blocker, migrator = _sessions(conn)
    blocker.execute("BEGIN")
    try:
        for table in tables:
            schema, _, name = table.partition(".")
            blocker.execute(sql.SQL("SELECT 1 FROM {} LIMIT 0").format(
                sql.Identifier(schema, name)))
        if rewritten is not None:
            migrator.execute(f"SET lock_timeout = '{WAIT_BOUND * 1000:.0f}ms'")
            error = _run_up(migrator, rewritten.text, up, service)
            return _verdict(error, rewritten, up, tables)
        runner = _Runner(migrator, up, service)
        runner.start()
        query = _watch(conn, migrator.info.backend_pid, runner, OWN_TIMEOUT_BOUND)
        runner.join()
    finally:
        blocker.execute("ROLLBACK")
    if query is None:
        return None  # it never waited that long, or lock_timeout ended the wait (55P03)
    return _stall(up, tables, OWN_TIMEOUT_BOUND, query,
                  runner.error.line if runner.error is not None else None)


def _verdict(error: MigrationSqlError | None, rewritten: _Rewritten, up: MigrationFile,
             tables: list[str]) -> Stall | None:
    """The fast path's answer: a lock timeout at a statement where the file had set none is
    the probe's own bound, a stall; where the file had set one, the proof it is safe."""
    if error is None or error.sqlstate != "55P03" or "lock timeout" not in error.pg_message:
        return None  # no wait on a lock (or a NOWAIT): nothing to say
    own = [sets for line, sets in rewritten.sets if line <= error.line]
    if own and own[-1]:
        return None
    return _stall(up, tables, WAIT_BOUND, error.statement or "", error.line)


def _stall(up: MigrationFile, tables: list[str], bound: float, query: str,
           line: int | None) -> Stall:
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
