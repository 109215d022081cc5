"""Provider ``local``: a postmaster of our own, from PostgreSQL programs on this machine.

Started on a private unix socket with durability off, as an unprivileged user when we run as
root, from a cached ``initdb`` so a start costs a copy instead of a cluster build (the file work
is in :mod:`pytest_migorch.postgres.clusters` and :mod:`pytest_migorch.postgres.runtime`).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pytest_migorch.errors import ServerUnavailable, UsageError
from pytest_migorch.postgres import binaries, clusters, runtime
from pytest_migorch.postgres.binaries import SUPERUSER, PgBinaries, ServerUser
from pytest_migorch.postgres.runtime import RuntimeDir
from pytest_migorch.postgres.safety import foreign_path, warn_unsafe
from pytest_migorch.postgres.servers.base import (
    UNIX_PORT,
    PostgresServer,
    ServerOptions,
    version_text,
)
from pytest_migorch.postgres.servers.launch import launch, log_tail, stop_process

__all__ = [
    "LocalServer",
    "start_local",
]

log = logging.getLogger(__name__)

_SOCKET_PATH_MAX = 103  # sun_path is 108 bytes on Linux, 104 on macOS, NUL included


class LocalServer(PostgresServer):
    """A postmaster we started from local binaries, living in one runtime directory."""

    provider = "local"

    def __init__(
        self,
        *,
        binaries: PgBinaries,
        runtime: RuntimeDir,
        process: subprocess.Popen[bytes],
        user: ServerUser,
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
                user=SUPERUSER,
                password=self._password,
                dbname=dbname,
                sslmode="disable",
            )
        return make_conninfo(
            host=str(self.socket_dir), port=UNIX_PORT, user=SUPERUSER, dbname=dbname
        )

    def describe(self) -> str:
        where = f"127.0.0.1:{self.port}" if self.listen_tcp else f"socket {self.socket_dir}"
        return (
            f"PostgreSQL {version_text(self.version)} (local, {self.binaries.bin_dir}, "
            f"{where}, as {self.os_user}, pid {self.pid})"
        )

    def _death(self) -> tuple[str, str] | None:
        """The postmaster is our child: ``poll`` says at once whether it is still there."""
        code = self._process.poll()
        if code is None:
            return None
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        reason = f"postgres (pid {self.pid}) {how}"
        return reason, f"its log {self.log_path} ends with:\n{log_tail(self.log_path)}"

    def _shutdown(self) -> None:
        started = time.monotonic()
        try:
            stop_process(self._process)
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


def start_local(options: ServerOptions) -> LocalServer:
    """Find binaries, make a runtime dir and a cluster (from the cache when possible), start."""
    began = time.monotonic()
    found = binaries.find_binaries(options.bin_dir)
    user = binaries.server_user(options.server_user)
    parent = runtime.choose_runtime_parent(options.runtime_parent)
    if len(str(parent / "xxxxxxxx/sock/.s.PGSQL.65535").encode()) > _SOCKET_PATH_MAX:
        raise UsageError(f"{parent} is too long a path for unix sockets; choose a shorter one")
    runtime.cleanup_stale_servers(options.runtime_parent)
    plan = _Plan(found, user, options, clusters.initdb_args(found), _cache_entry(found, options))
    for attempt in (1, 2):
        server = plan.attempt(parent, last=attempt == 2)
        if server is not None:
            server.timings["total"] = time.monotonic() - began
            log.info("started %s in %.3f s %s", server.describe(), server.timings["total"],
                     server.timings)
            return server
    raise AssertionError("unreachable")  # pragma: no cover


def _cache_entry(found: PgBinaries, options: ServerOptions) -> Path | None:
    """Where this build's cluster is cached, or None when the cache is off."""
    if not options.use_cache:
        return None
    cache_dir = Path(options.cache_dir) if options.cache_dir else None
    return clusters.cache_entry(found, clusters.initdb_args(found), cache_dir)


@dataclass
class _Plan:
    """What one local start needs; :meth:`attempt` is one try (a second follows a bad cache
    entry or a TCP port taken between our probe and postgres' bind)."""

    binaries: PgBinaries
    user: ServerUser
    options: ServerOptions
    args: list[str]
    entry: Path | None

    def attempt(self, parent: Path, *, last: bool) -> LocalServer | None:
        timings: dict[str, float] = {}
        rundir = RuntimeDir.create(parent)
        process: subprocess.Popen[bytes] | None = None
        admin: psycopg.Connection[Any] | None = None
        try:
            from_cache = self._make_cluster(rundir, timings)
            mark = time.monotonic()
            try:
                process, port, admin = launch(self.binaries, rundir, self.user, self.options)
            except ServerUnavailable as exc:
                if last or not (from_cache or self.options.listen_tcp):
                    raise
                if self.entry is not None and from_cache and "already in use" not in str(exc):
                    log.warning("start from cached cluster %s failed; rebuilding it", self.entry)
                    clusters.discard_cache_entry(self.entry)
                rundir.remove()
                return None
            timings["start"] = time.monotonic() - mark
            password = _set_password(admin) if self.options.listen_tcp else None
        except BaseException as exc:
            if admin is not None:
                admin.close()
            if process is not None:
                stop_process(process, grace=2.0)
            rundir.remove()
            if isinstance(exc, OSError):
                raise ServerUnavailable(
                    f"could not prepare a local PostgreSQL server in {rundir.path}: {exc}"
                ) from exc
            raise
        server = LocalServer(binaries=self.binaries, runtime=rundir, process=process,
                             user=self.user, port=port, password=password, admin=admin,
                             timings=timings)
        with _LIVE_LOCK:
            _LIVE.add(server)
        return server

    def _make_cluster(self, rundir: RuntimeDir, timings: dict[str, float]) -> bool:
        """Socket and data directories; the cluster copied from the cache (True) or built."""
        socket_dir = rundir.path / "sock"
        socket_dir.mkdir(mode=0o700)
        self.user.chown(socket_dir)
        data_dir = rundir.path / "data"
        mark = time.monotonic()
        if self._usable_entry() is not None:
            assert self.entry is not None
            try:
                clusters.copy_cluster(self.entry, data_dir, self.user)
                clusters.write_auto_conf(data_dir, self.user)
                timings["copy"] = time.monotonic() - mark
                return True
            except OSError as exc:  # e.g. a cache restored for another user: not fatal
                log.warning("cannot copy cached cluster %s (%s); running initdb", self.entry, exc)
                shutil.rmtree(data_dir, ignore_errors=True)
                self.entry = None
        data_dir.mkdir(mode=0o700)
        self.user.chown(data_dir)
        clusters.run_initdb(self.binaries, data_dir, self.user, self.args)
        timings["initdb"] = time.monotonic() - mark
        if self.entry is not None and self._cache_is_ours():
            mark = time.monotonic()
            clusters.publish_to_cache(data_dir, self.entry)
            timings["cache_write"] = time.monotonic() - mark
        return False

    def _usable_entry(self) -> Path | None:
        """The cache entry when it exists and may be trusted; a bad one is discarded, said."""
        if self.entry is None or not clusters.is_cluster(self.entry):
            return None
        problem = clusters.check_cached_cluster(self.entry)
        if problem is None:
            return self.entry
        warn_unsafe(f"not using the cached PostgreSQL cluster {self.entry}: {problem}; "
                    "running initdb instead")
        if self._cache_is_ours():
            clusters.discard_cache_entry(self.entry)
        else:
            self.entry = None  # not ours to replace either: no cache this session
        return None

    def _cache_is_ours(self) -> bool:
        """Whether the cache directories exist as ours (or do not exist yet)."""
        assert self.entry is not None
        for directory in (self.entry.parent.parent, self.entry.parent):
            if os.path.lexists(directory) and foreign_path(directory) is not None:
                return False
        return True


def _set_password(admin: psycopg.Connection[Any]) -> str:
    """A fresh superuser password: a TCP server must not be an open door to every local user."""
    password = secrets.token_urlsafe(18)
    admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(SUPERUSER), sql.Literal(password)))
    return password
