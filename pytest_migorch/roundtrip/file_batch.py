"""A transactional migration file sent as one query inside the round-trip's transaction.

Statement by statement, a file costs a round trip per statement, three times per migration (up,
down, re-up), where psql and golang-migrate pay one wait each. Inside the transaction the
engine opened, the file's statements (split as psql splits them, the file's own ``BEGIN`` /
``COMMIT`` wrapper dropped and other transaction control refused before anything runs) travel
as one simple query: PostgreSQL runs them in order, in that transaction, as it would one by
one, and the first error aborts it.

What one query changes is which error comes back: PostgreSQL parses the whole text before it
runs any of it, so a syntax error further down is reported before an earlier statement's
failure, and an error without a position does not say which statement failed. So on any error
the transaction is rolled back and the statements run again one by one in a new transaction,
also rolled back: the first that fails is the error the statement-by-statement path reports,
with its line. Only a failing file pays for that second run; a file whose last statement leaves
a quote or comment open (the separator would land inside it) is sent statement by statement.
The second run sets the file's ``search_path`` again: the rollback undid the one set with it.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from pytest_migorch.model import MigrationFile
from pytest_migorch.postgres.statements import (
    MigrationSqlError,
    prepared_statements,
    run_statement,
)
from pytest_migorch.sql.split import Statement

__all__ = ["run_transactional_file", "first_failure", "query_error"]

log = logging.getLogger(__name__)


def run_transactional_file(conn: psycopg.Connection[Any], file: MigrationFile, *,
                           setup: bytes = b"") -> None:
    """Run ``file``'s statements in the transaction ``conn`` has open, as one query. On
    failure the transaction is ended (rolled back) and the error is the first failing
    statement's :class:`MigrationSqlError`, as :func:`run_statement` reports it; ``setup``
    (the ``SET search_path`` sent with the ``BEGIN``) is sent again before that second run."""
    statements = prepared_statements(file.read_text(), in_transaction=True, path=file.path)
    if len(statements) < 2 or any(s.unterminated for s in statements):
        for statement in statements:
            run_statement(conn, statement, file.path)
        return
    log.debug("sending %s as one query (%d statements)", file.path.name, len(statements))
    try:
        conn.execute(";\n".join(s.text for s in statements).encode("utf-8"), prepare=False)
    except psycopg.Error as exc:
        conn.execute("ROLLBACK")
        raise first_failure(conn, statements, file, setup) or query_error(
            exc, statements, file) from exc


def first_failure(conn: psycopg.Connection[Any], statements: list[Statement],
                  file: MigrationFile, setup: bytes) -> MigrationSqlError | None:
    """The statements again, one by one, in a transaction always rolled back, after
    ``setup`` again: the first error, or None when none fails this time."""
    conn.execute(b"BEGIN;\n" + setup if setup else b"BEGIN", prepare=False)
    try:
        for statement in statements:
            run_statement(conn, statement, file.path)
    except MigrationSqlError as found:
        return found
    finally:
        conn.execute("ROLLBACK")
    return None


def query_error(exc: psycopg.Error, statements: list[Statement],
                file: MigrationFile) -> MigrationSqlError:
    """The query's own error, at the first statement: for a file whose statements all pass
    when run again one by one (it depends on time or chance, or failed only at COMMIT)."""
    diag = exc.diag
    return MigrationSqlError(
        file.path, statements[0].line if statements else 1,
        diag.message_primary or str(exc).strip(), diag.sqlstate, detail=diag.message_detail,
        hint=diag.message_hint, statement=statements[0].text if statements else None)
