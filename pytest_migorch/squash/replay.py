"""Running migrations and the squashed SQL in a throwaway database, the way the runner does.

Each file runs with its service's schema first on the ``search_path``, in one transaction when
the migration is transactional, statement by statement through
:mod:`pytest_migorch.postgres.statements` (so a failure names the file and line). Service
schemas are created first, as ``migorch init`` would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pytest_migorch.errors import MigrationFailed
from pytest_migorch.model import Migration, schema_name
from pytest_migorch.postgres.servers import PostgresServer, unique_database_name
from pytest_migorch.postgres.statements import MigrationSqlError, run_migration_file, run_sql_text

__all__ = ["throwaway_database", "create_schemas", "apply_all", "run_squashed_sql"]


@contextmanager
def throwaway_database(server: PostgresServer, prefix: str) -> Iterator[psycopg.Connection[Any]]:
    """A new empty database and an autocommit connection to it; both gone afterwards."""
    name = server.create_database(unique_database_name(prefix))
    try:
        with psycopg.connect(server.conninfo(name), autocommit=True) as conn:
            yield conn
    finally:
        server.drop_database(name)


def create_schemas(conn: psycopg.Connection[Any], services: Iterable[str]) -> None:
    for schema in sorted({schema_name(s) for s in services}):
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def _search_path(conn: psycopg.Connection[Any], service: str) -> None:
    conn.execute(sql.SQL("SET search_path TO {}, public").format(
        sql.Identifier(schema_name(service))))


def apply_all(conn: psycopg.Connection[Any], migrations: Iterable[Migration]) -> None:
    """Apply the up files of ``migrations`` in the order given."""
    for migration in migrations:
        assert migration.up is not None
        _search_path(conn, migration.service)
        try:
            if migration.transactional:
                with conn.transaction():
                    run_migration_file(conn, migration.up, in_transaction=True)
            else:
                run_migration_file(conn, migration.up, in_transaction=False)
        except MigrationSqlError as exc:
            raise MigrationFailed(f"replaying {migration.qualified_id} failed: {exc}") from exc


def run_squashed_sql(conn: psycopg.Connection[Any], service: str, text: str, path: Path) -> None:
    """Run the squashed up or down SQL as a transactional migration of ``service``."""
    _search_path(conn, service)
    with conn.transaction():
        run_sql_text(conn, text, path=path, in_transaction=True)
