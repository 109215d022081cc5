"""pytest-migorch: validate, test and deploy golang-migrate style migrations of many services.

The public API is small and loaded lazily, so ``import pytest_migorch`` (which pytest does for
every session through the plugin entry point) costs nothing until a name is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_PUBLIC = {
    "load_project": "project.validation",
    "validate_project": "project.validation",
    "ValidationResult": "project.validation",
    "ProjectGraph": "project.graph",
    "Finding": "findings",
    "Rule": "findings",
    "Severity": "findings",
    "MigorchError": "errors",
    "RoundTrip": "roundtrip.engine",
    "apply_migrations": "roundtrip.applying",
    "start_server": "postgres.servers.chain",
    "ServerOptions": "postgres.servers.base",
    "PostgresServer": "postgres.servers.base",
    "Runner": "deploy.runner",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_migorch' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
