"""The provider chain (SPEC section 7): the first provider that gives a server, most explicit first.

1. ``dsn``: a server the user named; if it does not answer we fail without falling through.
2. ``local``: PostgreSQL programs on this machine (:mod:`.local`).
3. ``docker``: testcontainers, when a Docker daemon answers quickly (:mod:`.docker`).

Every provider returns a :class:`~.base.PostgresServer`, so the pytest plugin (which decides
between skip and fail) never needs to know which one it got.
"""

from __future__ import annotations

import logging

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres.servers import docker, local
from pytest_migorch.postgres.servers.base import DSN_ENV_VAR, PostgresServer, ServerOptions
from pytest_migorch.postgres.servers.external import ExternalServer

__all__ = [
    "start_server",
]

log = logging.getLogger(__name__)


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
            return local.start_local(options)
        except ServerUnavailable as exc:
            if options.provider == "local" or options.bin_dir:
                raise
            reasons.append(f"local PostgreSQL: {exc}")
            log.info("no local PostgreSQL server: %s", exc)
    if options.provider in ("auto", "docker"):
        try:
            return docker.start_docker(options)
        except ServerUnavailable as exc:
            if options.provider == "docker":
                raise
            reasons.append(f"Docker: {exc}")
    raise ServerUnavailable(
        "no PostgreSQL server for database tests. "
        + " | ".join(reasons)
        + f". Give one with a DSN ({DSN_ENV_VAR}), install PostgreSQL, or start Docker."
    )
