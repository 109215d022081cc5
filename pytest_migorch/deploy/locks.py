"""golang-migrate's advisory lock of a service: its key and a bounded wait for it.

The key is golang-migrate's ``GenerateAdvisoryLockId`` (database/util.go) over
``schema \\0 table \\0 dbname``; which spelling of the database name is hashed is decided by
:func:`lock_database_names` from what the server says, so two spellings of one URL cannot
compute two keys for one database.
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any

import psycopg

from pytest_migorch.errors import LockTimeout
from pytest_migorch.postgres.connection import database_error

__all__ = ["LOCK_SALT", "advisory_lock_id", "lock_key", "lock_database_names", "AdvisoryLock",
           "take_free_prefix", "release_all",
           "lock_wait_timeout", "MIGRATE_INSTANCE"]

log = logging.getLogger(__name__)

#: golang-migrate's words when it cannot connect, lock or create its table; users search them.
MIGRATE_INSTANCE = "Failed to create migrate instance"

#: golang-migrate's ``advisoryLockIDSalt`` (database/util.go).
LOCK_SALT = 1486364155


def advisory_lock_id(database_name: str, *additional_names: str) -> int:
    """golang-migrate's ``GenerateAdvisoryLockId``: crc32 (IEEE) of the additional names and
    the database name joined by NUL, times the salt, as a uint32."""
    joined = "\x00".join([*additional_names, database_name]).encode("utf-8")
    return (zlib.crc32(joined) * LOCK_SALT) & 0xFFFFFFFF


def lock_key(database_name: str, schema: str, table: str) -> int:
    """The key golang-migrate's postgres driver (v4.15+) locks for ``schema.table``:
    crc32 of ``schema \\0 table \\0 db``, salted.

    ``database_name`` is what golang-migrate calls ``DatabaseName``: the URL path with its
    leading slash (``"/mydb"``), or ``current_database()`` when the URL has no path.
    """
    return advisory_lock_id(database_name, schema, table)


def lock_database_names(current_database: str) -> tuple[str, str]:
    """The database names whose keys a run locks, from the server's ``current_database()``.

    golang-migrate hashes the URL path (``/app``) when the URL has one and
    ``current_database()`` (``app``) when it has none, so the same database has two keys
    depending on how its URL is spelled. migorch derives both from the server, never from
    the URL, and takes both: the ``/app`` key first (the spelling golang-migrate users
    write), then ``app``. Every migorch run therefore computes the same keys for one
    database, and excludes golang-migrate under either spelling.
    """
    return (f"/{current_database}", current_database)


class AdvisoryLock:
    """golang-migrate's session-level advisory lock of one service, with a bounded wait.

    Waiting polls ``pg_try_advisory_lock`` from the client instead of blocking in
    ``pg_advisory_lock``: a session blocked in a query holds a snapshot, and ``CREATE INDEX
    CONCURRENTLY`` run by the lock holder waits for every older snapshot, so eight runners
    queued on the lock deadlock with the one building an index. Between polls nothing is held.
    """

    #: First and longest pause between two attempts (seconds); the pause doubles each time.
    POLL_START = 0.02
    POLL_MAX = 0.5

    def __init__(self, conn: psycopg.Connection[Any], key: int, label: str) -> None:
        self.conn = conn
        self.key = key
        self.label = label
        self.held = False

    def try_acquire(self) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", (self.key,)).fetchone()
        self.held = bool(row and row[0])
        return self.held

    def acquire(self, timeout: float) -> float:
        """Take the lock, waiting at most ``timeout`` seconds; returns the seconds waited."""
        begin = time.monotonic()
        try:
            if self.try_acquire():
                return 0.0
            holder = self.holder()
            log.info("waiting up to %ss for the lock of %s, held by %s", timeout, self.label,
                     holder or "another session")
            pause = self.POLL_START
            while time.monotonic() - begin < timeout:
                time.sleep(min(pause, max(timeout - (time.monotonic() - begin), 0)))
                pause = min(pause * 2, self.POLL_MAX)
                if self.try_acquire():
                    return time.monotonic() - begin
            holder = self.holder() or holder
        except psycopg.Error as exc:
            raise database_error(exc, f"{MIGRATE_INSTANCE}: taking the lock of {self.label}"
                                 ) from exc
        raise LockTimeout(
            f"timeout: can't acquire database lock for {self.label} within {timeout:g}s "
            f"(advisory lock {self.key}, the one golang-migrate takes for this service); "
            f"held by {holder or 'another session'}. Another migorch or golang-migrate run is "
            "migrating this service: wait for it, or raise --lock-timeout."
        )

    def release(self) -> None:
        if self.held and not self.conn.closed:
            try:
                self.conn.execute("SELECT pg_advisory_unlock(%s::bigint)", (self.key,))
            except psycopg.Error as exc:  # the connection is going away: the lock goes with it
                log.debug("releasing %s: %s", self.label, exc)
        self.held = False

    def holder(self) -> str | None:
        """Who holds the lock right now: pid, application, user and since when."""
        row = self.conn.execute(
            "SELECT a.pid, a.application_name, a.usename, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 "
            "AND l.objid = %s::bigint::oid AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (self.key,),
        ).fetchone()
        if row is None:
            return None
        pid, app, user, since = row
        return (f"pid {pid} ({app or 'unknown application'}, user {user}, "
                f"connected {since:%Y-%m-%d %H:%M:%S%z})")



def take_free_prefix(conn: psycopg.Connection[Any], locks: list[AdvisoryLock]) -> int:
    """Try every lock of ``locks`` in one round trip and keep the longest prefix taken; the
    number of locks held. A lock taken after one that was busy is released at once (in a
    second round trip), so a run never holds a later lock while it waits for an earlier one
    and two runs taking the same locks in the same order still cannot deadlock; the caller
    waits for the rest one by one (:meth:`AdvisoryLock.acquire`). Ten services' twenty keys
    were forty round trips, taking and releasing, on every deploy."""
    if not locks:
        return 0
    try:
        rows = conn.execute(
            "SELECT pg_try_advisory_lock(k) FROM unnest(%s::bigint[]) WITH ORDINALITY AS x(k, i)"
            " ORDER BY i", ([lock.key for lock in locks],)).fetchall()
    except psycopg.Error as exc:
        raise database_error(exc, f"{MIGRATE_INSTANCE}: taking the lock of {locks[0].label}"
                             ) from exc
    taken = [bool(row[0]) for row in rows]
    held = next((i for i, ok in enumerate(taken) if not ok), len(locks))
    for lock in locks[:held]:
        lock.held = True
    release_all(conn, [lock for lock, ok in zip(locks[held:], taken[held:]) if ok],
                force=True)
    return held


def release_all(conn: psycopg.Connection[Any], locks: list[AdvisoryLock], *,
                force: bool = False) -> None:
    """Release ``locks`` (those held, or all with ``force``) in one round trip."""
    keys = [lock.key for lock in locks if lock.held or force]
    for lock in locks:
        lock.held = False
    if not keys or conn.closed:
        return
    try:
        conn.execute("SELECT pg_advisory_unlock(k) FROM unnest(%s::bigint[]) AS x(k)", (keys,))
    except psycopg.Error as exc:  # the connection is going away: the locks go with it
        log.debug("releasing advisory locks %s: %s", keys, exc)


#: Who holds a lock, other than a plain reader, on a tracking table of any service.
_TRACKING_LOCK_HOLDERS = """
SELECT DISTINCT n.nspname, c.relname, l.pid, l.mode, a.application_name, a.usename,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120)
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND l.mode <> 'AccessShareLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (c.relname IN ('migration_executions', 'migration_execution_history')
       OR (n.nspname = 'public' AND c.relname LIKE '%\\_schema\\_migrations'))
ORDER BY 1, 2, 3
"""


def lock_wait_timeout(conn: psycopg.Connection[Any], exc: psycopg.Error,
                      timeout: float | None) -> LockTimeout:
    """A tracking statement gave up waiting (``lock_timeout``): name the table and the
    session that holds it, so the person on call knows what to end or wait for."""
    holders: list[tuple[Any, ...]] = []
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            holders = conn.execute(_TRACKING_LOCK_HOLDERS).fetchall()
    except psycopg.Error as lookup:  # the reason is still worth reporting without holders
        log.debug("looking up lock holders: %s", lookup)
    waited = f" within {timeout:g}s" if timeout is not None else ""
    if holders:
        described = "; ".join(
            f"{schema}.{table} held ({mode}) by pid {pid} ({app or 'unknown application'}, "
            f"user {user}: {sql_text or '?'})"
            for schema, table, pid, mode, app, user, sql_text in holders)
    else:
        described = f"a tracking table ({exc.diag.message_primary or exc})"
    return LockTimeout(
        f"timeout: can't acquire a lock{waited} on {described}. Nothing more was done and "
        "the advisory lock was released. Wait for that session or end it (e.g. "
        "`SELECT pg_terminate_backend(<pid>)`), then run again; --lock-timeout bounds this wait."
    )
