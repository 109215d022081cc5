"""What a throwaway database holds before the first migration: the services' schemas and
golang-migrate's table of the services that declare it.

A service declares ``migrations_table`` when its migrations touch golang-migrate's own table
(ALTER it, INSERT into it). In production that table exists before the first migration, so the
round-trip creates it first, with exactly golang-migrate's DDL: the migrations then behave as
they will live, and the table is in every snapshot (before and after each migration), so it is
never taken for residue of one.
"""

from __future__ import annotations

from typing import Any, Iterable

import psycopg
from psycopg import sql

from pytest_migorch.model import Service, schema_name

__all__ = ["VERSION_TABLE_DDL", "create_declared_tables", "prepare_database"]

#: golang-migrate's ``ensureVersionTable``, verbatim.
VERSION_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS {} (version bigint not null primary key, dirty boolean not null)"
)


def create_declared_tables(conn: psycopg.Connection[Any], services: Iterable[Service]) -> None:
    """Create the declared golang-migrate table of each service (undeclared: nothing, as
    before: the default table is the runner's, never a migration's)."""
    for service in services:
        if service.declared_migrations_table:
            conn.execute(sql.SQL(VERSION_TABLE_DDL).format(
                sql.Identifier(*service.migrations_table)))


def prepare_database(conn: psycopg.Connection[Any], services: Iterable[Service]) -> None:
    """Each service's schema (the runner creates it before the first migration too) and its
    declared golang-migrate table."""
    services = sorted(services, key=lambda service: service.name)
    for schema in sorted({schema_name(service.name) for service in services}):
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    create_declared_tables(conn, services)
