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

:func:`run_committed_file` goes further for a file whose truth is not wanted (a down, a re-up):
``BEGIN``, the ``search_path``, the file, ``COMMIT`` and the snapshot after it
(:mod:`pytest_migorch.postgres.snapshot_function`) in one message, where they were three or
four. After an error the session says which part failed: still in the file's aborted
transaction block when the file did (then as above), idle when the file committed and the
snapshot failed (its SQLSTATE is the function's own; the caller then reads the snapshot on its
own), and idle with any other error when nothing ran (PostgreSQL parses the whole message
before running any of it: a syntax error) or ``COMMIT`` itself failed (a deferred constraint)
and undid the file: both a failure of the file, found again statement by statement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from pytest_migorch.errors import DatabaseError
from pytest_migorch.model import MigrationFile
from pytest_migorch.postgres.snapshot_function import SNAPSHOT_FAILED
from pytest_migorch.postgres.statements import (
    MigrationSqlError,
    prepared_statements,
    run_statement,
)
from pytest_migorch.sql.split import Statement

__all__ = ["run_transactional_file", "run_committed_file", "Committed"]

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
        raise _first_failure(conn, statements, file, exc, setup) from exc


@dataclass(frozen=True)
class Committed:
    """A file :func:`run_committed_file` ran and committed, and the row of the query sent
    after it (None when there was none, or it failed)."""

    then_row: tuple[Any, ...] | None


def run_committed_file(conn: psycopg.Connection[Any], file: MigrationFile, *, setup: bytes,
                       then: bytes | None = None) -> Committed | None:
    """``BEGIN``, ``setup``, ``file``'s statements, ``COMMIT`` and ``then`` (a ``SELECT``
    raising :data:`SNAPSHOT_FAILED` on failure) in one message, on an idle autocommit
    connection. None, with nothing sent, for a file whose statements cannot be joined (run it
    as before); a failing file raises its first failing statement's :class:`MigrationSqlError`
    with the transaction rolled back, as :func:`run_transactional_file` does."""
    statements = prepared_statements(file.read_text(), in_transaction=True, path=file.path)
    if any(s.unterminated for s in statements):
        return None
    parts = [b"BEGIN", setup, *(s.text.encode("utf-8") for s in statements), b"COMMIT"]
    if then is not None:
        parts.append(then)
    log.debug("sending %s with its transaction as one query (%d statements)", file.path.name,
              len(statements))
    try:
        with conn.cursor() as cur:
            cur.execute(b";\n".join(parts), prepare=False)
            while cur.nextset():
                pass
            row: tuple[Any, ...] | None = cur.fetchone() if then is not None else None
    except psycopg.Error as exc:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")  # the file failed in its transaction
        elif exc.sqlstate == SNAPSHOT_FAILED:  # committed; the caller reads it on its own
            log.info("the snapshot after %s failed (%s); read again", file.path.name, exc)
            return Committed(None)
        elif then is not None and not _still_callable(conn, then):
            raise DatabaseError(f"the round-trip's snapshot function is gone after "
                                f"{file.path.name} ran ({exc}): did it drop the probes' schema?"
                                ) from exc
        # Else nothing ran (PostgreSQL parses the whole message first: a syntax error) or
        # COMMIT failed (a deferred constraint) and rolled it all back: the file fails.
        raise _first_failure(conn, statements, file, exc, setup) from exc
    return Committed(row)


def _still_callable(conn: psycopg.Connection[Any], then: bytes) -> bool:
    """Whether ``then`` runs now, in a transaction rolled back: when it does not, its own
    failure may have been the error, after the file committed (only the file could have
    dropped the function), and a failure of the file cannot be told from it."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(then, prepare=False)
    except psycopg.Error:
        return False
    return True


def _first_failure(conn: psycopg.Connection[Any], statements: list[Statement],
                   file: MigrationFile, exc: psycopg.Error, setup: bytes) -> MigrationSqlError:
    """The statements again, one by one, in a transaction always rolled back, after
    ``setup`` again: the first error. Should none fail again (a file that depends on time or
    chance), the query's own error, at the first statement."""
    conn.execute(b"BEGIN;\n" + setup if setup else b"BEGIN", prepare=False)
    try:
        for statement in statements:
            run_statement(conn, statement, file.path)
    except MigrationSqlError as found:
        return found
    finally:
        conn.execute("ROLLBACK")
    diag = exc.diag
    return MigrationSqlError(
        file.path, statements[0].line, diag.message_primary or str(exc).strip(),
        diag.sqlstate, detail=diag.message_detail, hint=diag.message_hint,
        statement=statements[0].text)
