"""Starting, waiting for and stopping a postmaster process of our own.

Started directly, not through pg_ctl (whose ``-w`` polls in 100 ms steps), in its own session,
and (on Linux) set to die with us. Only process work lives here; :mod:`.local` decides what to
start.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres.binaries import SUPERUSER, PgBinaries, ServerUser, child_env
from pytest_migorch.postgres.runtime import RuntimeDir
from pytest_migorch.postgres.servers.base import THROWAWAY_SETTINGS, UNIX_PORT, ServerOptions

__all__ = [
    "launch",
    "server_settings",
    "log_tail",
    "stop_process",
]

log = logging.getLogger(__name__)


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


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)


def log_tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(errors="replace").strip()[-limit:]
    except OSError:
        return "(no log)"


#: Settings no throwaway server needs and a cluster must not bring along: they run commands
#: (``restore_command`` in recovery, archiving) or load code at start. Given on the command
#: line, which overrides postgresql.conf and ``ALTER SYSTEM``; (name, first major that has it).
_NEUTRALISED: tuple[tuple[str, str, int], ...] = (
    ("archive_mode", "off", 0),
    ("archive_command", "", 0),
    ("archive_library", "", 15),
    ("restore_command", "", 12),
    ("archive_cleanup_command", "", 12),
    ("recovery_end_command", "", 12),
    ("primary_conninfo", "", 12),
    ("shared_preload_libraries", "", 0),
    ("ssl_passphrase_command", "", 11),
)


def server_settings(binaries: PgBinaries, options: ServerOptions, socket_dir: Path,
                    port: int) -> dict[str, str]:
    """Every setting a local server starts with: neutralised, throwaway, ours, the user's."""
    major = binaries.major_version
    settings = {name: value for name, value, since in _NEUTRALISED if major >= since}
    settings.update(THROWAWAY_SETTINGS)
    settings.update(
        listen_addresses="127.0.0.1" if options.listen_tcp else "",
        port=str(port),
        unix_socket_directories=str(socket_dir),
        unix_socket_permissions="0700",
    )
    if major >= 10:
        settings["password_encryption"] = "scram-sha-256"
    settings.update(options.settings)
    return settings


def _open_log(path: Path) -> int:
    """The server log, private (0600): it shows statements and errors of every test."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    return fd


def launch(
    binaries: PgBinaries, runtime: RuntimeDir, user: ServerUser, options: ServerOptions
) -> tuple[subprocess.Popen[bytes], int, psycopg.Connection[Any]]:
    """Start postgres on the prepared data dir; return it once it accepts connections.

    Started directly, not through pg_ctl (whose ``-w`` polls in 100 ms steps), and in its own
    session so a terminal Ctrl-C reaches only us and we shut the server down ourselves.
    Readiness is polled every few milliseconds on the unix socket, which TCP mode has too.
    """
    socket_dir = runtime.path / "sock"
    port = _free_tcp_port() if options.listen_tcp else UNIX_PORT
    command = [str(binaries.postgres), "-D", str(runtime.path / "data")]
    for name, value in server_settings(binaries, options, socket_dir, port).items():
        command += ["-c", f"{name}={value}"]
    log_fd = _open_log(runtime.path / "postgres.log")
    try:
        process = subprocess.Popen(
            command,
            cwd=runtime.path,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(options.die_with_parent),
            **user.popen_kwargs(),
        )
    finally:
        os.close(log_fd)
    try:
        admin = _wait_ready(process, socket_dir, port, options.start_timeout, runtime.path)
    except BaseException:
        stop_process(process, grace=2.0)
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
    conninfo = make_conninfo(host=str(socket_dir), port=port, user=SUPERUSER, dbname="postgres")
    socket_file = socket_dir / f".s.PGSQL.{port}"
    deadline = time.monotonic() + timeout
    delay = 0.002
    last_error = "socket not created"
    while True:
        code = process.poll()
        if code is not None:
            raise ServerUnavailable(
                f"postgres exited with code {code} while starting; its log ends with:\n"
                + log_tail(runtime / "postgres.log")
            )
        if socket_file.exists():
            try:
                return psycopg.connect(conninfo, autocommit=True)
            except psycopg.OperationalError as exc:  # "the database system is starting up"
                last_error = str(exc).strip()
        if time.monotonic() > deadline:
            raise ServerUnavailable(
                f"postgres did not accept connections within {timeout:g} s ({last_error}); "
                "its log ends with:\n" + log_tail(runtime / "postgres.log")
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)
