"""Provider ``docker``: a PostgreSQL container from testcontainers.

Used only when a Docker daemon answers our own ping within ~2 s; docker-py's own timeout is a
minute, and a session must not hang that long to learn "no".
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres.binaries import SUPERUSER
from pytest_migorch.postgres.servers.base import (
    THROWAWAY_SETTINGS,
    PostgresServer,
    ServerOptions,
    mask_secret,
    version_text,
)

__all__ = [
    "DockerProbe",
    "DockerServer",
    "find_docker_daemon",
    "start_docker",
]

log = logging.getLogger(__name__)


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
        return f"PostgreSQL {version_text(self.version)} (docker {image}, {where})"

    def _shutdown(self) -> None:
        try:
            self._container.stop()
        except Exception as exc:  # docker errors vary; testcontainers' Ryuk reaps the rest
            log.warning("could not remove the PostgreSQL container: %s", exc)


def start_docker(options: ServerOptions) -> DockerServer:
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
        username=SUPERUSER,
        password=password,
        dbname="postgres",
        driver=None,
    ).with_command(f"postgres {flags}")
    try:
        container.start()
        params: dict[str, Any] = {
            "host": container.get_container_host_ip(),
            "port": int(container.get_exposed_port(5432)),
            "user": SUPERUSER,
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
            f"{mask_secret(str(exc), password)}"
        ) from None
    server = DockerServer(container, params, admin)
    log.info("started %s", server.describe())
    return server
