"""Throwaway PostgreSQL servers for tests: one per session, a fresh database per test.

The public facade of the providers in this package (one module each: :mod:`.base`,
:mod:`.external`, :mod:`.local` with :mod:`.launch`, :mod:`.docker`, and the chain in
:mod:`.chain`), so callers import from ``pytest_migorch.postgres.servers`` whichever provider
they end up with.
"""

from __future__ import annotations

from pytest_migorch.postgres.servers.base import (
    DSN_ENV_VAR,
    PROVIDERS,
    THROWAWAY_SETTINGS,
    PostgresServer,
    ServerGone,
    ServerOptions,
    mask_dsn,
    unique_database_name,
)
from pytest_migorch.postgres.servers.chain import start_server
from pytest_migorch.postgres.servers.docker import DockerProbe, find_docker_daemon
from pytest_migorch.postgres.servers.external import ExternalServer
from pytest_migorch.postgres.servers.local import LocalServer

__all__ = [
    "DSN_ENV_VAR",
    "PROVIDERS",
    "THROWAWAY_SETTINGS",
    "DockerProbe",
    "ExternalServer",
    "LocalServer",
    "PostgresServer",
    "ServerGone",
    "ServerOptions",
    "find_docker_daemon",
    "mask_dsn",
    "start_server",
    "unique_database_name",
]
