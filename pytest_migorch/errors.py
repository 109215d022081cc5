"""The one exception tree of pytest-migorch.

Every error the core raises derives from :class:`MigorchError`, so the CLI can turn any of them
into a one-line message and an exit code, and the plugin into a clean test failure, without ever
showing a Python traceback. Third-party exceptions (psycopg, OSError, json) are translated where
they happen with ``raise SomeMigorchError(...) from exc``.
"""

from __future__ import annotations

__all__ = [
    "MigorchError",
    "UsageError",
    "ConfigurationError",
    "DatabaseError",
    "ServerUnavailable",
    "LockTimeout",
    "MigrationFailed",
]


class MigorchError(Exception):
    """Root of every error pytest-migorch raises on purpose.

    ``exit_code`` follows SPEC section 5: 1 when a check or a migration failed, 2 for bad usage
    or bad configuration.
    """

    exit_code: int = 1


class UsageError(MigorchError):
    """The user asked for something that cannot be done as asked (bad option, unknown service)."""

    exit_code = 2


class ConfigurationError(MigorchError):
    """The services root or its JSON files are unusable (e.g. an undeclared environment)."""

    exit_code = 2


class DatabaseError(MigorchError):
    """A database operation failed; the message never contains a password."""


class ServerUnavailable(DatabaseError):
    """No PostgreSQL server could be reached or started for tests."""


class LockTimeout(DatabaseError):
    """The advisory lock of a service could not be taken within the allowed time."""


class MigrationFailed(DatabaseError):
    """A migration's SQL failed; the message names the file, the line and PostgreSQL's error."""
