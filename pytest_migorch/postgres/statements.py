"""Run one migration file on a connection, and say precisely where it failed.

golang-migrate sends a whole file as one simple query, so PostgreSQL's error cannot be tied to a
statement. We send the file statement by statement (split as psql splits it), in the caller's
transaction for transactional migrations and in autocommit for ``"transactional": false`` ones,
so a failure names the file, the line of the failing statement and PostgreSQL's message.

A file that wraps itself in ``BEGIN; ... COMMIT;`` (common in golang-migrate projects, where it is
harmless) has that wrapper dropped when we provide the transaction, because its ``COMMIT`` would
end our transaction before the tracking rows are written.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Callable

import psycopg

from pytest_migorch.errors import MigrationFailed
from pytest_migorch.model import MigrationFile
from pytest_migorch.sql.execution_mode import drop_wrapper, is_transaction_control
from pytest_migorch.sql.split import Statement, split_statements

__all__ = ["run_migration_file", "run_sql_text", "run_statement", "prepared_statements",
           "open_transaction_error", "run_outside_transaction", "MigrationSqlError"]

log = logging.getLogger(__name__)

class MigrationSqlError(MigrationFailed):
    """A statement of a migration file failed; carries where and PostgreSQL's diagnostics."""

    def __init__(self, path: Path, line: int, pg_message: str, sqlstate: str | None,
                 detail: str | None = None, hint: str | None = None,
                 statement: str | None = None) -> None:
        self.path = path
        self.line = line
        self.pg_message = pg_message
        self.sqlstate = sqlstate
        self.detail = detail
        self.pg_hint = hint
        self.statement = statement
        text = f"{path.name}:{line}: {pg_message}"
        if sqlstate:
            text += f" (SQLSTATE {sqlstate})"
        if detail:
            text += f"\nDETAIL: {detail}"
        if hint:
            text += f"\nHINT: {hint}"
        super().__init__(text)


def prepared_statements(text: str, *, in_transaction: bool, path: Path) -> list[Statement]:
    """The statements to send: the file's own BEGIN/COMMIT wrapper dropped when we provide
    the transaction. Other transaction control inside a transactional file cannot be honoured."""
    statements = [s for s in split_statements(text) if s.text.strip()]
    if not in_transaction:
        return statements
    statements = drop_wrapper(statements)
    for statement in statements:
        if is_transaction_control(statement.text):
            raise MigrationSqlError(
                path, statement.line,
                f"{statement.text.split()[0].upper()} inside a transactional migration would end "
                "the transaction that also records the migration",
                None, hint='mark the migration "transactional": false in dependencies.json, '
                "or remove the transaction control statements",
            )
    return statements


def run_sql_text(
    conn: psycopg.Connection[Any], text: str, *, path: Path, in_transaction: bool
) -> float:
    """Execute ``text`` statement by statement; return the seconds it took.

    ``in_transaction`` says whether the caller holds a transaction open (transactional
    migrations); otherwise the connection must be in autocommit mode and the file runs as
    :func:`run_outside_transaction` runs it (a transaction it leaves open is an error).
    """
    statements = prepared_statements(text, in_transaction=in_transaction, path=path)
    started = time.perf_counter()
    if in_transaction:
        for statement in statements:
            run_statement(conn, statement, path)
    else:
        run_outside_transaction(conn, statements, path)
    return time.perf_counter() - started


def run_statement(conn: psycopg.Connection[Any], statement: Statement, path: Path) -> None:
    """Send one statement as it is (simple query, no parameters); a failure names the file
    and the line PostgreSQL points at. With debug logging, each statement is logged as it is
    sent and again with its time (one level check otherwise)."""
    debug = log.isEnabledFor(logging.DEBUG)
    if debug:
        log.debug("sending %s:%d: %s", path.name, statement.line, _for_log(statement.text))
        started = time.perf_counter()
    try:
        conn.execute(statement.text.encode("utf-8"), prepare=False)
    except psycopg.Error as exc:
        if debug:
            log.debug("failed %s:%d after %.1f ms: %s", path.name, statement.line,
                      (time.perf_counter() - started) * 1000, exc.diag.message_primary or exc)
        raise _sql_error(exc, statement, path) from exc
    if debug:
        log.debug("done %s:%d in %.1f ms (%s)", path.name, statement.line,
                  (time.perf_counter() - started) * 1000, conn.info.transaction_status.name)


#: ``PASSWORD 'secret'`` (CREATE/ALTER ROLE ... PASSWORD): never logged.
_PASSWORD_LITERAL = re.compile(r"(\bPASSWORD\s+)E?'(?:[^']|'')*'", re.IGNORECASE)


def _for_log(text: str, limit: int = 300) -> str:
    """A statement on one line, clipped, with role passwords masked."""
    one_line = " ".join(_PASSWORD_LITERAL.sub(r"\1'***'", text).split())
    return one_line if len(one_line) <= limit else one_line[:limit] + f"... ({len(one_line)} chars)"


def open_transaction_error(path: Path, opened_by: Statement | None, *,
                           failed: bool) -> MigrationSqlError:
    """A file run in autocommit ended inside a transaction block it opened: PostgreSQL would
    roll that block back when the session ends, so what it did must not be reported done."""
    line = opened_by.line if opened_by is not None else 1
    state = "an aborted transaction" if failed else "a transaction open"
    return MigrationSqlError(
        path, line,
        f"the file leaves {state} (opened at line {line}, never committed): PostgreSQL "
        "would roll it back when the session ends, so it was rolled back now and the "
        f"statements from line {line} on did not take effect", None,
        hint="end the transaction with COMMIT in the file, or remove BEGIN and mark the "
             "migration transactional",
        statement=opened_by.text if opened_by is not None else None)


def run_outside_transaction(
    conn: psycopg.Connection[Any], statements: list[Statement], path: Path,
    committed: Callable[[int, Statement], None] | None = None,
) -> None:
    """Run ``statements`` on an autocommit connection as golang-migrate's PostgreSQL would,
    honouring the file's own BEGIN/COMMIT; the runner and the round-trip both use this.

    After each statement the session's transaction status says whether it took effect: idle
    means committed, and ``committed(done, statement)`` is told (the runner records progress).
    Inside a transaction block the file opened nothing is committed yet; a block still open (or
    aborted) at the end of the file is an error naming the file, never a success."""
    opened_by: Statement | None = None
    for done, statement in enumerate(statements, 1):
        run_statement(conn, statement, path)
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            opened_by = None
            if committed is not None:
                committed(done, statement)
        elif opened_by is None:
            opened_by = statement
    status = conn.info.transaction_status
    if status != psycopg.pq.TransactionStatus.IDLE:
        raise open_transaction_error(
            path, opened_by, failed=status == psycopg.pq.TransactionStatus.INERROR)


def run_migration_file(
    conn: psycopg.Connection[Any], file: MigrationFile, *, in_transaction: bool
) -> float:
    """Execute one up or down file; see :func:`run_sql_text`."""
    return run_sql_text(conn, file.read_text(), path=file.path, in_transaction=in_transaction)


def _sql_error(exc: psycopg.Error, statement: Statement, path: Path) -> MigrationSqlError:
    diag = exc.diag
    line = statement.line
    position = diag.statement_position
    if position and position.isdigit():
        # PostgreSQL counts characters from 1 within the statement we sent.
        line += statement.text[: int(position) - 1].count("\n")
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return MigrationSqlError(
        path, line, message, diag.sqlstate, detail=diag.message_detail,
        hint=diag.message_hint, statement=statement.text,
    )
