"""How a failed step of the round-trip is worded: PostgreSQL's message, SQLSTATE, DETAIL, HINT.

Apart from the engine so that every finding about a failed statement (DB001 to DB006, and DB011
for an up that fails only on tables with rows) says it the same way.
"""

from __future__ import annotations

from pytest_migorch.postgres.statements import MigrationSqlError

__all__ = ["describe_failure"]


def describe_failure(migration_id: str, exc: MigrationSqlError, step: str,
                     because: str | None = None) -> tuple[str, str | None]:
    """``(message, details)`` for ``step`` of ``migration_id`` failing with ``exc``."""
    details = None
    if exc.detail or exc.pg_hint:
        details = "\n".join(filter(None, [
            f"DETAIL: {exc.detail}" if exc.detail else None,
            f"HINT: {exc.pg_hint}" if exc.pg_hint else None,
        ]))
    message = (f"{step} of {migration_id} failed: {exc.pg_message}"
               + (f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else "")
               + (f", most likely because {because}" if because else ""))
    return message, details
