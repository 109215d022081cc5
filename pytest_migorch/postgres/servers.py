"""Throwaway PostgreSQL servers for tests: one per session, a fresh database per test.

The provider chain follows SPEC section 7, most explicit first:

1. ``dsn``: a server the user named. If it does not answer we fail; silently testing against
   another server than the one asked for would make a green run meaningless.
2. ``local``: PostgreSQL programs on this machine, started on a private unix socket with
   durability off, as an unprivileged user when we run as root, from a cached ``initdb`` so a
   start costs a copy instead of a cluster build (the file work is in :mod:`.pgbinaries`).
3. ``docker``: testcontainers, only when a Docker daemon answers our ping within ~2 s;
   docker-py's own timeout is a minute, and a session must not hang that long to learn "no".

Every provider returns a :class:`PostgresServer`, so the pytest plugin (which decides between
skip and fail) never needs to know which one it got. This module must not import pytest: the
CLI and the benchmarks use it too.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import ctypes
import importlib
import itertools
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_migorch.errors import DatabaseError, ServerUnavailable, UsageError
from pytest_migorch.postgres import binaries as pgb
from pytest_migorch.postgres.binaries import PgBinaries, cleanup_stale_servers, default_cache_dir

__all__ = [
    "DSN_ENV_VAR",
    "PROVIDERS",
    "THROWAWAY_SETTINGS",
    "DockerProbe",
    "PostgresServer",
    "ServerOptions",
    "cleanup_stale_servers",
    "default_cache_dir",
    "find_docker_daemon",
    "mask_dsn",
    "running_server",
    "start_server",
    "unique_database_name",
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

_SUPERUSER = pgb.SUPERUSER
_SOCKET_PATH_MAX = 103  # sun_path is 108 bytes on Linux, 104 on macOS, NUL included
_UNIX_PORT = 5432  # only names the socket file; the socket directory is private anyway


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


def mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``, for messages and logs.

    Handles URLs (userinfo and ``?password=``) and key/value strings, and rather masks too much
    than too little: text that does not even parse is still shown without its secret.
    """
    masked = re.sub(r"(://[^:@/?#]*:)(.*)@", r"\1***@", dsn)
    masked = re.sub(r"([?&]password=)[^&]*", r"\1***", masked, flags=re.I)
    return re.sub(
        r"((?<![?&])\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", masked, flags=re.I
    )


def _scrub(text: str, secret: str | None) -> str:
    """Remove a known secret from an error text (libpq rarely echoes one; be sure)."""
    return text.replace(secret, "***") if secret else text


def _version_text(num: int) -> str:
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


# --------------------------------------------------------------------------------------------
# The interface


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

    def _admin_execute(self, queries: list[sql.Composed], what: str) -> None:
        """Run maintenance statements; reconnect once if the admin connection was lost."""
        with self._admin_lock:
            if self._stopped:
                raise DatabaseError(f"could not {what}: the server is stopped")
            for attempt in (1, 2):
                try:
                    if self._admin is None or self._admin.closed:
                        self._admin = psycopg.connect(self.admin_conninfo, autocommit=True)
                    for query in queries:
                        self._admin.execute(query)
                    return
                except psycopg.OperationalError as exc:
                    if attempt == 1 and self._admin is not None and self._admin.closed:
                        continue  # e.g. a test terminated all backends
                    raise DatabaseError(f"could not {what}: {exc}") from exc
                except psycopg.Error as exc:
                    raise DatabaseError(f"could not {what}: {exc}") from exc

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
                self._before_stop()
            finally:
                self._stopped = True
                if self._admin is not None:
                    with contextlib.suppress(psycopg.Error):
                        self._admin.close()
                    self._admin = None
        self._shutdown()


# --------------------------------------------------------------------------------------------
# Provider "dsn": an explicit server


class ExternalServer(PostgresServer):
    """A server someone else runs (a CI service container, a shared development server).

    It is not ours to stop: ``stop`` drops the databases this object created and that are still
    there, so a shared server does not fill up with test databases.
    """

    provider = "dsn"

    def __init__(self, dsn: str, admin: psycopg.Connection[Any], fast_clone: bool) -> None:
        super().__init__(admin, fast_clone=fast_clone)
        self._dsn = dsn

    @classmethod
    def connect_to(cls, dsn: str, connect_timeout: float) -> ExternalServer:
        """Connect or raise :class:`ServerUnavailable`, with the password masked."""
        shown = mask_dsn(dsn)
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            # The parser's message may quote the string, password included: not repeated.
            raise UsageError(
                f"the test database DSN {shown} is not a valid URL or conninfo"
            ) from None
        secret = str(params["password"]) if params.get("password") else None
        extra: dict[str, Any] = {}
        if "connect_timeout" not in params:
            extra["connect_timeout"] = max(2, round(connect_timeout))  # libpq's minimum is 2
        started = time.monotonic()
        try:
            admin = psycopg.connect(dsn, autocommit=True, **extra)
        except psycopg.Error as exc:
            raise ServerUnavailable(
                f"could not connect to the test database server {shown} "
                f"({time.monotonic() - started:.1f} s): {_scrub(str(exc).strip(), secret)}"
            ) from None
        try:
            row = admin.execute(
                "SELECT r.rolsuper OR r.rolcreatedb, current_setting('fsync') = 'off'"
                " FROM pg_roles r WHERE r.rolname = current_user"
            ).fetchone()
        except psycopg.Error as exc:
            admin.close()
            raise ServerUnavailable(f"{shown}: {_scrub(str(exc), secret)}") from None
        if not row or not row[0]:
            admin.close()
            raise ServerUnavailable(
                f"the role in {shown} may not create databases; grant it CREATEDB "
                "(each test gets a fresh database)"
            )
        server = cls(dsn, admin, fast_clone=bool(row[1]))
        log.info("using %s", server.describe())
        return server

    @property
    def admin_conninfo(self) -> str:
        return self._dsn

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(self._dsn, dbname=dbname)

    def describe(self) -> str:
        return f"PostgreSQL {_version_text(self.version)} at {mask_dsn(self._dsn)} (dsn)"

    def _before_stop(self) -> None:
        for name in sorted(self._created):
            try:
                self.drop_database(name)
            except DatabaseError as exc:
                log.warning("could not drop leftover test database %s: %s", name, exc)

    def _shutdown(self) -> None:
        return None  # not ours to stop


# --------------------------------------------------------------------------------------------
# Provider "local": a postmaster of our own


def _die_with_parent_hook(enabled: bool) -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGQUIT the postmaster when we die (PR_SET_PDEATHSIG).

    The kernel watches the *thread* that forked, so this is only used from the main thread (a
    worker thread that exits would take the server with it). Elsewhere, and on other systems,
    the stale-directory scan at the next start is the safety net.
    """
    if not enabled or not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        # Runs after subprocess switched the uid, which would have cleared the setting.
        prctl(1, int(signal.SIGQUIT))  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)


def _log_tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(errors="replace").strip()[-limit:]
    except OSError:
        return "(no log)"


class LocalServer(PostgresServer):
    """A postmaster we started from local binaries, living in one runtime directory."""

    provider = "local"

    def __init__(
        self,
        *,
        binaries: PgBinaries,
        runtime: pgb.RuntimeDir,
        process: subprocess.Popen[bytes],
        user: pgb.ServerUser,
        port: int,
        password: str | None,
        admin: psycopg.Connection[Any],
        timings: dict[str, float],
    ) -> None:
        super().__init__(admin, fast_clone=True)
        self.binaries = binaries
        self.runtime_dir = runtime.path
        self.data_dir = runtime.path / "data"
        self.socket_dir = runtime.path / "sock"
        self.log_path = runtime.path / "postgres.log"
        self.port = port
        self.listen_tcp = password is not None
        self.os_user = user.name
        self.timings = timings  # seconds per phase: for benchmarks and debug logs
        self._runtime = runtime
        self._process = process
        self._password = password
        self._owner_pid = os.getpid()

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return self._process.pid

    @property
    def admin_conninfo(self) -> str:
        return self.conninfo("postgres")

    def conninfo(self, dbname: str) -> str:
        if self._password is not None:
            return make_conninfo(
                host="127.0.0.1",
                port=self.port,
                user=_SUPERUSER,
                password=self._password,
                dbname=dbname,
                sslmode="disable",
            )
        return make_conninfo(
            host=str(self.socket_dir), port=_UNIX_PORT, user=_SUPERUSER, dbname=dbname
        )

    def describe(self) -> str:
        where = f"127.0.0.1:{self.port}" if self.listen_tcp else f"socket {self.socket_dir}"
        return (
            f"PostgreSQL {_version_text(self.version)} (local, {self.binaries.bin_dir}, "
            f"{where}, as {self.os_user}, pid {self.pid})"
        )

    def _shutdown(self) -> None:
        started = time.monotonic()
        try:
            _stop_process(self._process)
        finally:
            self._runtime.remove()
            with _LIVE_LOCK:
                _LIVE.discard(self)
        self.timings["stop"] = time.monotonic() - started


_LIVE: set[LocalServer] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_live_servers() -> None:
    """Safety net for sessions that end without ``stop`` (skipped in forked children)."""
    with _LIVE_LOCK:
        servers = [s for s in _LIVE if s._owner_pid == os.getpid()]
    for server in servers:
        try:
            server.stop()
        except Exception:  # interpreter shutdown: report and carry on with the others
            log.exception("could not stop %s", server.describe())


def _launch(
    binaries: PgBinaries, runtime: pgb.RuntimeDir, user: pgb.ServerUser, options: ServerOptions
) -> tuple[subprocess.Popen[bytes], int, psycopg.Connection[Any]]:
    """Start postgres on the prepared data dir; return it once it accepts connections.

    Started directly, not through pg_ctl (whose ``-w`` polls in 100 ms steps), and in its own
    session so a terminal Ctrl-C reaches only us and we shut the server down ourselves.
    Readiness is polled every few milliseconds on the unix socket, which TCP mode has too.
    """
    socket_dir = runtime.path / "sock"
    port = _free_tcp_port() if options.listen_tcp else _UNIX_PORT
    settings = dict(THROWAWAY_SETTINGS)
    settings.update(
        listen_addresses="127.0.0.1" if options.listen_tcp else "",
        port=str(port),
        unix_socket_directories=str(socket_dir),
        unix_socket_permissions="0700",
    )
    if binaries.major_version >= 10:
        settings["password_encryption"] = "scram-sha-256"
    settings.update(options.settings)
    command = [str(binaries.postgres), "-D", str(runtime.path / "data")]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    with open(runtime.path / "postgres.log", "ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=runtime.path,
            env=pgb.child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(options.die_with_parent),
            **user.popen_kwargs(),
        )
    try:
        admin = _wait_ready(process, socket_dir, port, options.start_timeout, runtime.path)
    except BaseException:
        _stop_process(process, grace=2.0)
        raise
    return process, port, admin


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(
    process: subprocess.Popen[bytes], socket_dir: Path, port: int, timeout: float, runtime: Path
) -> psycopg.Connection[Any]:
    """Poll until a connection succeeds; the first one becomes the admin connection."""
    conninfo = make_conninfo(host=str(socket_dir), port=port, user=_SUPERUSER, dbname="postgres")
    socket_file = socket_dir / f".s.PGSQL.{port}"
    deadline = time.monotonic() + timeout
    delay = 0.002
    last_error = "socket not created"
    while True:
        code = process.poll()
        if code is not None:
            raise ServerUnavailable(
                f"postgres exited with code {code} while starting; its log ends with:\n"
                + _log_tail(runtime / "postgres.log")
            )
        if socket_file.exists():
            try:
                return psycopg.connect(conninfo, autocommit=True)
            except psycopg.OperationalError as exc:  # "the database system is starting up"
                last_error = str(exc).strip()
        if time.monotonic() > deadline:
            raise ServerUnavailable(
                f"postgres did not accept connections within {timeout:g} s ({last_error}); "
                "its log ends with:\n" + _log_tail(runtime / "postgres.log")
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)


def _start_local(options: ServerOptions) -> LocalServer:
    """Find binaries, make a runtime dir and a cluster (from the cache when possible), start."""
    began = time.monotonic()
    binaries = pgb.find_binaries(options.bin_dir)
    user = pgb.server_user(options.server_user)
    if options.runtime_parent:
        parent = Path(options.runtime_parent)
    else:
        parent = pgb.default_runtime_parents()[0]
    pgb.prepare_runtime_parent(parent)
    if len(str(parent / "xxxxxxxx/sock/.s.PGSQL.65535").encode()) > _SOCKET_PATH_MAX:
        raise UsageError(f"{parent} is too long a path for unix sockets; choose a shorter one")
    cleanup_stale_servers(options.runtime_parent)

    args = pgb.initdb_args(binaries)
    entry = None
    if options.use_cache:
        cache_dir = Path(options.cache_dir) if options.cache_dir else None
        entry = pgb.cache_entry(binaries, args, cache_dir)

    for attempt in (1, 2):
        timings: dict[str, float] = {}
        runtime = pgb.RuntimeDir.create(parent)
        process: subprocess.Popen[bytes] | None = None
        admin: psycopg.Connection[Any] | None = None
        try:
            socket_dir = runtime.path / "sock"
            socket_dir.mkdir(mode=0o700)
            user.chown(socket_dir)
            data_dir = runtime.path / "data"
            from_cache = entry is not None and pgb.is_cluster(entry)
            mark = time.monotonic()
            if entry is not None and from_cache:
                try:
                    pgb.copy_cluster(entry, data_dir, user)
                    timings["copy"] = time.monotonic() - mark
                except OSError as exc:  # e.g. a cache restored for another user: not fatal
                    log.warning("cannot copy cached cluster %s (%s); running initdb", entry, exc)
                    shutil.rmtree(data_dir, ignore_errors=True)
                    from_cache, entry = False, None
            if not from_cache:
                data_dir.mkdir(mode=0o700)
                user.chown(data_dir)
                pgb.run_initdb(binaries, data_dir, user, args)
                timings["initdb"] = time.monotonic() - mark
                if entry is not None:
                    mark = time.monotonic()
                    pgb.publish_to_cache(data_dir, entry)
                    timings["cache_write"] = time.monotonic() - mark
            mark = time.monotonic()
            try:
                process, port, admin = _launch(binaries, runtime, user, options)
            except ServerUnavailable as exc:
                if attempt == 2 or not (from_cache or options.listen_tcp):
                    raise
                # A TCP port taken between our probe and postgres' bind, or a damaged cache
                # entry: one more try, on a new port and (unless it was the port) a new initdb.
                if entry is not None and from_cache and "already in use" not in str(exc):
                    log.warning("start from cached cluster %s failed; rebuilding it", entry)
                    pgb.discard_cache_entry(entry)
                runtime.remove()
                continue
            timings["start"] = time.monotonic() - mark
            password = None
            if options.listen_tcp:
                password = secrets.token_urlsafe(18)
                admin.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(_SUPERUSER), sql.Literal(password)
                    )
                )
        except BaseException as exc:
            if admin is not None:
                admin.close()
            if process is not None:
                _stop_process(process, grace=2.0)
            runtime.remove()
            if isinstance(exc, OSError):
                raise ServerUnavailable(
                    f"could not prepare a local PostgreSQL server in {runtime.path}: {exc}"
                ) from exc
            raise
        timings["total"] = time.monotonic() - began
        server = LocalServer(
            binaries=binaries,
            runtime=runtime,
            process=process,
            user=user,
            port=port,
            password=password,
            admin=admin,
            timings=timings,
        )
        with _LIVE_LOCK:
            _LIVE.add(server)
        log.info("started %s in %.3f s %s", server.describe(), timings["total"], timings)
        return server
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Provider "docker": testcontainers


@dataclass(frozen=True)
class DockerProbe:
    """The outcome of looking for a Docker daemon: the URL that answered and what was tried."""

    url: str | None
    tried: tuple[str, ...] = ()

    @property
    def reachable(self) -> bool:
        return self.url is not None


def _docker_candidates(environ: Mapping[str, str]) -> list[str]:
    if environ.get("DOCKER_HOST"):
        return [environ["DOCKER_HOST"]]
    home = os.path.expanduser("~")
    runtime_dir = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    sockets = [
        "/var/run/docker.sock",
        f"{runtime_dir}/docker.sock",  # rootless Docker
        f"{runtime_dir}/podman/podman.sock",
        f"{home}/.docker/run/docker.sock",  # Docker Desktop (macOS)
        f"{home}/.docker/desktop/docker.sock",  # Docker Desktop (Linux)
        f"{home}/.colima/default/docker.sock",
        f"{home}/.rd/docker.sock",  # Rancher Desktop
        f"{home}/.orbstack/run/docker.sock",
    ]
    return ["unix://" + path for path in sockets]


def _ping(url: str, deadline: float, tls: bool) -> str | None:
    """``GET /_ping`` before ``deadline``; None when the daemon answered, else why not."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return "no time left"
    address: Any
    if url.startswith("unix://"):
        address = url[len("unix://") :]
        if not os.path.exists(address):
            return "no socket"
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    elif url.startswith(("tcp://", "http://", "https://")):
        host, _, port = url.split("://", 1)[1].split("/", 1)[0].rpartition(":")
        tls = tls or url.startswith("https://")
        try:
            address = (host.strip("[]") or "127.0.0.1", int(port or (2376 if tls else 2375)))
        except ValueError:
            return "bad address"
        conn = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    else:
        return "scheme not checked (only unix:// and tcp:// can be pinged quickly)"
    reply = b""
    try:
        with conn:
            conn.settimeout(remaining)
            conn.connect(address)
            if tls:
                return None  # needs client certificates to say more; a TCP answer will do
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            while b"\r\n" not in reply and len(reply) < 1024:
                conn.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = conn.recv(1024)
                if not chunk:
                    break
                reply += chunk
    except OSError as exc:
        return str(exc) or type(exc).__name__
    status = reply.split(b"\r\n", 1)[0].split()
    if len(status) >= 2 and status[0].startswith(b"HTTP/") and status[1] == b"200":
        return None
    return f"unexpected reply {reply[:40]!r}"


def find_docker_daemon(
    timeout: float = 2.0, environ: Mapping[str, str] | None = None
) -> DockerProbe:
    """Ping the Docker daemon (``DOCKER_HOST`` or the usual sockets) within ``timeout`` overall.

    Our own ping, not docker-py's: its timeout is 60 s, which a session would spend hanging on
    a machine where Docker is installed but not running.
    """
    environ = os.environ if environ is None else environ
    tls = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    deadline = time.monotonic() + timeout
    tried: list[str] = []
    for url in _docker_candidates(environ):
        problem = _ping(url, deadline, tls)
        if problem is None:
            return DockerProbe(url, tuple(tried))
        if problem != "no socket" or environ.get("DOCKER_HOST"):
            tried.append(f"{url} ({problem})")
    return DockerProbe(None, tuple(tried) or ("no Docker socket found, DOCKER_HOST unset",))


class DockerServer(PostgresServer):
    """A PostgreSQL container from testcontainers; stopping removes it."""

    provider = "docker"

    def __init__(self, container: Any, params: dict[str, Any], admin: psycopg.Connection[Any]):
        super().__init__(admin, fast_clone=True)  # started with fsync=off below
        self._container = container
        self._params = params

    @property
    def admin_conninfo(self) -> str:
        return self.conninfo("postgres")

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(**{**self._params, "dbname": dbname})

    def describe(self) -> str:
        image = getattr(self._container, "image", "?")
        where = f"{self._params['host']}:{self._params['port']}"
        return f"PostgreSQL {_version_text(self.version)} (docker {image}, {where})"

    def _shutdown(self) -> None:
        try:
            self._container.stop()
        except Exception as exc:  # docker errors vary; testcontainers' Ryuk reaps the rest
            log.warning("could not remove the PostgreSQL container: %s", exc)


def _start_docker(options: ServerOptions) -> DockerServer:
    probe = find_docker_daemon(options.docker_timeout)
    if not probe.reachable:
        raise ServerUnavailable(
            f"no Docker daemon answered within {options.docker_timeout:g} s "
            f"(tried {'; '.join(probe.tried)})"
        )
    try:
        module = importlib.import_module("testcontainers.postgres")
    except ImportError:
        raise ServerUnavailable(
            f"a Docker daemon answers at {probe.url} but testcontainers is not installed "
            "(pip install 'pytest-migorch[docker]')"
        ) from None
    if probe.url != "unix:///var/run/docker.sock" and "DOCKER_HOST" not in os.environ:
        os.environ["DOCKER_HOST"] = str(probe.url)  # where docker-py and Ryuk will look
    password = secrets.token_urlsafe(18)
    flags = " ".join(f"-c {k}={v}" for k, v in THROWAWAY_SETTINGS.items())
    container = module.PostgresContainer(
        options.docker_image,
        username=_SUPERUSER,
        password=password,
        dbname="postgres",
        driver=None,
    ).with_command(f"postgres {flags}")
    try:
        container.start()
        params: dict[str, Any] = {
            "host": container.get_container_host_ip(),
            "port": int(container.get_exposed_port(5432)),
            "user": _SUPERUSER,
            "password": password,
            "sslmode": "disable",
        }
        deadline = time.monotonic() + options.start_timeout
        while True:
            try:
                conninfo = make_conninfo(**params, dbname="postgres")
                admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=2)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        raise ServerUnavailable(
            f"could not start {options.docker_image} through testcontainers: "
            f"{_scrub(str(exc), password)}"
        ) from None
    server = DockerServer(container, params, admin)
    log.info("started %s", server.describe())
    return server


# --------------------------------------------------------------------------------------------
# The chain


def start_server(options: ServerOptions | None = None) -> PostgresServer:
    """A server from the first provider that can give one (see the module docstring).

    Raises :class:`ServerUnavailable` with one message naming everything that was tried. An
    explicit DSN, bin dir or forced provider that does not work fails without falling through.
    """
    options = options or ServerOptions()
    if options.provider == "dsn" or (options.provider == "auto" and options.dsn):
        assert options.dsn is not None
        return ExternalServer.connect_to(options.dsn, options.connect_timeout)

    reasons: list[str] = []
    if options.provider in ("auto", "local"):
        try:
            return _start_local(options)
        except ServerUnavailable as exc:
            if options.provider == "local" or options.bin_dir:
                raise
            reasons.append(f"local PostgreSQL: {exc}")
            log.info("no local PostgreSQL server: %s", exc)
    if options.provider in ("auto", "docker"):
        try:
            return _start_docker(options)
        except ServerUnavailable as exc:
            if options.provider == "docker":
                raise
            reasons.append(f"Docker: {exc}")
    raise ServerUnavailable(
        "no PostgreSQL server for database tests. "
        + " | ".join(reasons)
        + f". Give one with a DSN ({DSN_ENV_VAR}), install PostgreSQL, or start Docker."
    )


@contextlib.contextmanager
def running_server(options: ServerOptions | None = None) -> Iterator[PostgresServer]:
    """``with running_server(options) as server:`` for scripts and benchmarks."""
    server = start_server(options)
    try:
        yield server
    finally:
        server.stop()
