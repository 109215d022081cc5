"""The tracking tables' DDL (SPEC section 6), apart from the code that reads and writes them
(:mod:`pytest_migorch.deploy.tracking`), which re-exports it."""

from __future__ import annotations

from psycopg import sql

__all__ = ["executions_ddl", "history_ddl"]

# SPEC section 6, verbatim apart from the schema placeholder.
_EXECUTIONS_DDL = """CREATE TABLE {schema}.migration_executions (
    id BIGSERIAL PRIMARY KEY,
    migration_id VARCHAR(255) NOT NULL,
    migration_version VARCHAR(255) NOT NULL,
    environment VARCHAR(50) NOT NULL,
    status VARCHAR(50) NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'rolled_back')),
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_ms BIGINT,
    executed_by VARCHAR(255),
    checksum VARCHAR(255),
    dependencies JSONB,
    metadata JSONB,
    error_message TEXT,
    rollback_version VARCHAR(255),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(migration_id, environment)
)"""  # noqa: E501

_HISTORY_DDL = """CREATE TABLE {schema}.migration_execution_history (
    id BIGSERIAL PRIMARY KEY,
    execution_id BIGINT NOT NULL,
    migration_id VARCHAR(255) NOT NULL,
    migration_version VARCHAR(255) NOT NULL,
    environment VARCHAR(50) NOT NULL,
    action VARCHAR(20) NOT NULL CHECK (action IN ('up', 'down', 'adopt', 'force', 'recover')),
    status VARCHAR(50) NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'rolled_back')),
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_ms BIGINT,
    executed_by VARCHAR(255),
    checksum VARCHAR(255),
    error_message TEXT,
    rollback_version VARCHAR(255),
    metadata JSONB,
    recorded_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
)"""  # noqa: E501

_HISTORY_INDEX = (
    "CREATE INDEX migration_execution_history_lookup_idx "
    "ON {schema}.migration_execution_history (environment, migration_id, id)"
)


def executions_ddl(schema: str) -> sql.Composed:
    """The SPEC's ``CREATE TABLE <schema>.migration_executions`` statement."""
    return sql.SQL(_EXECUTIONS_DDL).format(schema=sql.Identifier(schema))


def history_ddl(schema: str) -> list[sql.Composed]:
    """The append-only history table and its lookup index."""
    return [sql.SQL(text).format(schema=sql.Identifier(schema))
            for text in (_HISTORY_DDL, _HISTORY_INDEX)]
