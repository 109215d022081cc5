"""A service's migrations (and what they need) applied to an existing database: what the
user-facing fixtures (``migorch_db``...) give a test, without the round-trip's checks."""

from __future__ import annotations

from contextlib import nullcontext

import psycopg
from psycopg import sql

from pytest_migorch.model import Migration, Project, schema_name
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.postgres.statements import run_migration_file
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.sql.execution_mode import file_execution_mode

__all__ = ["apply_migrations"]


def apply_migrations(
    server: PostgresServer, dbname: str, project: Project, graph: ProjectGraph, service: str,
    environment: str, *, up_to: int | None = None,
) -> list[Migration]:
    """Apply ``service``'s migrations (and what they need) to an existing database, up to and
    including version ``up_to`` (all when None). Used by the user-facing fixtures."""
    order = graph.order_all(environment, [service])
    if up_to is not None:
        wanted = {m.key for m in order if m.service == service and m.version <= up_to}
        needed = graph.ancestors(wanted, environment) | wanted
        order = [m for m in order if m.key in needed]
    applied = []
    with psycopg.connect(server.conninfo(dbname), autocommit=True) as conn:
        for schema in sorted({schema_name(m.service) for m in order}):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for migration in order:
            assert migration.up is not None
            conn.execute(sql.SQL("SET search_path TO {}, public").format(
                sql.Identifier(schema_name(migration.service))))
            in_tx = file_execution_mode(migration, migration.up).transactional
            with conn.transaction() if in_tx else nullcontext():
                run_migration_file(conn, migration.up, in_transaction=in_tx)
            applied.append(migration)
    return applied
