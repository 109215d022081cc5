"""What every throwaway server offers, whatever provider made it, and the options to get one.

:class:`PostgresServer` creates and drops test databases through one admin connection, and
notices when the server died under it (a killed postmaster, an OOM kill): from then on every
request fails at once with :class:`ServerGone` and one reason, instead of each test waiting for
its own "connection refused". This module must not import pytest: the CLI and the benchmarks use
it too.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import logging
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from pytest_migorch.errors import DatabaseError, UsageError
from pytest_migorch.postgres.binaries import SUPERUSER
from pytest_migorch.postgres.connection import mask_dsn, mask_secret

__all__ = [
    "DSN_ENV_VAR",
    "PROVIDERS",
    "PostgresServer",
    "SUPERUSER",
    "ServerGone",
    "ServerOptions",
    "THROWAWAY_SETTINGS",
    "UNIX_PORT",
    "mask_dsn",
    "mask_secret",
    "unique_database_name",
    "version_text",
]

log = logging.getLogger(__name__)

PROVIDERS: tuple[str, ...] = ("auto", "dsn", "local", "docker")

#: The environment variable the plugin reads for an explicit server (the core never reads it).
DSN_ENV_VAR = "MIGORCH_TEST_DATABASE_URL"

#: Settings for data nobody will read again: durability costs fsyncs and full page images,
#: autovacuum and JIT add noise and latency to short-lived databases.
THROWAWAY_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_timeout": "1d",
    "max_wal_size": "4GB",
    "autovacuum": "off",
    "jit": "off",
    "log_checkpoints": "off",
    "TimeZone": "UTC",  # the same test output on every machine
    "log_timezone": "UTC",
}

UNIX_PORT = 5432  # only names the socket file; the socket directory is private anyway


@dataclass(frozen=True)
class ServerOptions:
    """How to get a server; built once by the plugin (or a benchmark) from its own settings.

    ``provider`` is ``"auto"`` (the chain) or forces ``"dsn"``, ``"local"`` or ``"docker"``.
    A ``dsn`` with ``"auto"`` is the explicit server: used, or the start fails. ``settings``
    are extra ``(name, value)`` server settings for local servers, over
    :data:`THROWAWAY_SETTINGS`. ``runtime_parent`` and ``cache_dir`` override where runtime
    directories and cached clusters go.
    """

    provider: str = "auto"
    dsn: str | None = None
    bin_dir: str | None = None
    listen_tcp: bool = False
    server_user: str | None = None
    use_cache: bool = True
    cache_dir: str | None = None
    runtime_parent: str | None = None
    settings: tuple[tuple[str, str], ...] = ()
    docker_image: str = "postgres:16-alpine"
    connect_timeout: float = 5.0
    docker_timeout: float = 2.0
    start_timeout: float = 30.0
    die_with_parent: bool = True

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise UsageError(
                f"unknown server provider {self.provider!r}; choose one of {', '.join(PROVIDERS)}"
            )
        if self.provider == "dsn" and not self.dsn:
            raise UsageError(f"provider 'dsn' needs a DSN (e.g. through {DSN_ENV_VAR})")
        if min(self.connect_timeout, self.docker_timeout, self.start_timeout) <= 0:
            raise UsageError("server timeouts must be positive")


def version_text(num: int) -> str:
    """150018 -> ``15.18``; 90624 -> ``9.6.24``."""
    if num >= 100000:
        return f"{num // 10000}.{num % 10000}"
    return f"{num // 10000}.{num // 100 % 100}.{num % 100}"


_name_counter = itertools.count(1)


def unique_database_name(prefix: str = "migorch") -> str:
    """A database name no other test, worker or session picks (pid, counter, random).

    Lower case and well under 63 bytes, so PostgreSQL never truncates it and it can be typed in
    psql without quotes.
    """
    clean = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:32] or "migorch"
    return f"{clean}_{os.getpid()}_{next(_name_counter)}_{secrets.token_hex(3)}"



class ServerGone(DatabaseError):
    """The session's server died (killed, crashed, out of memory) after it had started.

    Not a :class:`ServerUnavailable`: the plugin skips tests when no server can be had, but a
    server that vanished mid-session is a failure of every test that still needed it.
    """


#: libpq's words for "nobody listens there any more" (TCP, then a unix socket).
_REFUSED = ("Connection refused", "No such file or directory")


class PostgresServer(abc.ABC):
    """A server tests create and drop databases on, whatever provider made it.

    Subclasses give connection strings and say what stopping means. Database creation is shared
    and goes through one autocommit admin connection: a fresh database costs one statement, not
    a connection plus a statement.
    """

    provider: ClassVar[str]

    def __init__(self, admin: psycopg.Connection[Any], *, fast_clone: bool) -> None:
        self.version: int = admin.info.server_version  # server_version_num, e.g. 150018
        self._admin: psycopg.Connection[Any] | None = admin
        self._admin_lock = threading.RLock()
        self._created: set[str] = set()
        self._stopped = False
        self._gone: str | None = None  # why the server died, once we know it did
        self._gone_told = False
        self._gone_details = ""
        # PG15 added STRATEGY: WAL_LOG (default) pushes the template's pages through shared
        # buffers and WAL, FILE_COPY copies files and checkpoints. With fsync off checkpoints
        # are cheap and FILE_COPY measured ~1.8x faster for small templates; with fsync on we
        # leave the server's default alone.
        self.create_strategy: str | None = "FILE_COPY" if fast_clone else None

    @property
    @abc.abstractmethod
    def admin_conninfo(self) -> str:
        """A conninfo for maintenance (create/drop database), credentials included."""

    @abc.abstractmethod
    def conninfo(self, dbname: str) -> str:
        """A psycopg/libpq conninfo string for ``dbname``, credentials included."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for humans (session header, skip reason); never contains a password."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Release what the provider holds (process, container); called once by ``stop``."""

    def _death(self) -> tuple[str, str] | None:
        """(why, details) when the provider can tell its server died, else None (default).

        Only a cheap local check belongs here (it runs before every maintenance statement)."""
        return None

    def _before_stop(self) -> None:
        """Last use of the admin connection before ``stop`` closes it (default: none)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A new psycopg connection to ``dbname``; the caller closes it."""
        return psycopg.connect(self.conninfo(dbname), **kwargs)

    @property
    def gone(self) -> str | None:
        """Why the server died during the session, or None while it is (as far as we know) up."""
        if self._gone is None and not self._stopped:
            death = self._death()
            if death is not None:
                self._mark_gone(*death)
        return self._gone

    def check_alive(self, *, probe: bool = False) -> None:
        """Raise :class:`ServerGone` when the server died; cheap enough to call before each use.

        ``probe`` also asks the server itself (one ``SELECT 1`` on the admin connection), for
        providers that cannot tell from here, after a connection failed. The first error
        carries the details (for a local server, the tail of its log) and the death is logged
        once; later ones repeat only the reason, so a session with a hundred remaining
        round-trips says it once and fails each of them with one line."""
        if probe and self.gone is None and not self._stopped:
            self._probe()
        reason = self.gone
        if reason is None:
            return
        if self._gone_told:
            raise ServerGone(f"the PostgreSQL server died earlier in this session: {reason}")
        self._gone_told = True
        raise ServerGone(self._gone_details)

    def _mark_gone(self, reason: str, details: str = "") -> None:
        self._gone = reason
        self._gone_details = f"the PostgreSQL server died: {reason}" + (
            f"\n{details}" if details else "")
        log.error("the PostgreSQL server died: %s", reason)

    def _admin_execute(self, queries: Sequence[sql.SQL | sql.Composed], what: str) -> None:
        """Run maintenance statements; reconnect once if the admin connection was lost."""
        with self._admin_lock:
            if self._stopped:
                raise DatabaseError(f"could not {what}: the server is stopped")
            self.check_alive()
            for attempt in (1, 2):
                try:
                    self._admin_run(queries)
                    return
                except psycopg.OperationalError as exc:
                    if attempt == 1 and self._admin is not None and self._admin.closed:
                        continue  # e.g. a test terminated all backends
                    self._mark_if_refused(exc)
                    self.check_alive()
                    raise DatabaseError(f"could not {what}: {exc}") from exc
                except psycopg.Error as exc:
                    raise DatabaseError(f"could not {what}: {exc}") from exc

    def _admin_run(self, queries: Sequence[sql.SQL | sql.Composed]) -> None:
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.admin_conninfo, autocommit=True)
        for query in queries:
            self._admin.execute(query)

    def _probe(self) -> None:
        """``SELECT 1`` on the admin connection (reconnecting once); marks a refusing server."""
        with self._admin_lock:
            for _ in (1, 2):
                try:
                    self._admin_run([sql.SQL("SELECT 1")])
                    return
                except psycopg.OperationalError as exc:
                    self._mark_if_refused(exc)
                except psycopg.Error:
                    return

    def _mark_if_refused(self, exc: psycopg.OperationalError) -> None:
        """After a lost admin connection: the server died if nothing listens any more."""
        if self.gone is None and any(text in str(exc) for text in _REFUSED):
            self._mark_gone(f"{self.describe()} refuses connections ({str(exc).strip()})")

    def create_database(
        self, name: str, template: str | None = None, *, strategy: str | None = None
    ) -> str:
        """``CREATE DATABASE name [TEMPLATE template]``; returns ``name``.

        The template must have no other connections (PostgreSQL waits up to 5 s for them).
        ``strategy`` (``"WAL_LOG"`` or ``"FILE_COPY"``, PG15+) overrides the chosen default.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        chosen = (strategy or self.create_strategy) if self.version >= 150000 else None
        if chosen is not None:
            if chosen.upper() not in ("WAL_LOG", "FILE_COPY"):
                raise UsageError(f"unknown CREATE DATABASE strategy {chosen!r}")
            query += sql.SQL(" STRATEGY {}").format(sql.SQL(chosen.upper()))
        source = f" from template {template!r}" if template else ""
        self._admin_execute([query], f"create database {name!r}{source}")
        self._created.add(name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting whoever still uses it."""
        ident = sql.Identifier(name)
        if self.version >= 130000:
            queries = [sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)]
        else:
            queries = [
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
                ).format(sql.Literal(name)),
                sql.SQL("DROP DATABASE IF EXISTS {}").format(ident),
            ]
        self._admin_execute(queries, f"drop database {name!r}")
        self._created.discard(name)

    def stop(self) -> None:
        """Stop the server (or let go of it). Idempotent; also run by ``atexit``."""
        with self._admin_lock:
            if self._stopped:
                return
            try:
                if self.gone is None:  # a dead server has nothing left to clean up
                    self._before_stop()
            finally:
                self._stopped = True
                if self._admin is not None:
                    with contextlib.suppress(psycopg.Error):
                        self._admin.close()
                    self._admin = None
        self._shutdown()
