"""Provider ``dsn``: a server the user named (a CI service container, a shared server).

If it does not answer we fail; silently testing against another server than the one asked for
would make a green run meaningless.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_migorch.errors import DatabaseError, ServerUnavailable, UsageError
from pytest_migorch.postgres.servers.base import (
    PostgresServer,
    mask_dsn,
    mask_secret,
    version_text,
)

__all__ = [
    "ExternalServer",
]

log = logging.getLogger(__name__)


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
                f"({time.monotonic() - started:.1f} s): {mask_secret(str(exc).strip(), secret)}"
            ) from None
        try:
            row = admin.execute(
                "SELECT r.rolsuper OR r.rolcreatedb, current_setting('fsync') = 'off'"
                " FROM pg_roles r WHERE r.rolname = current_user"
            ).fetchone()
        except psycopg.Error as exc:
            admin.close()
            raise ServerUnavailable(f"{shown}: {mask_secret(str(exc), secret)}") from None
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
        return f"PostgreSQL {version_text(self.version)} at {mask_dsn(self._dsn)} (dsn)"

    def _before_stop(self) -> None:
        for name in sorted(self._created):
            try:
                self.drop_database(name)
            except DatabaseError as exc:
                log.warning("could not drop leftover test database %s: %s", name, exc)

    def _shutdown(self) -> None:
        return None  # not ours to stop
