"""golang-migrate's table in the throwaway database, for services that declare it.

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

from pytest_migorch.model import Service

__all__ = ["VERSION_TABLE_DDL", "create_declared_tables"]

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
