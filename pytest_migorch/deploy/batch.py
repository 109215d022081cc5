"""A transactional migration and its tracking write in one round trip.

Sending a file statement by statement costs a round trip per statement, plus ``BEGIN``, the
tracking write and ``COMMIT``: on a deploy of a thousand small migrations the waiting is most of
the time. Here the whole transaction travels as one simple query, after the ``running`` row's own
(committed first, as before)::

    BEGIN; <statement>; <statement>; ...; <guard>; <tracking write>; <golang-migrate's row>; COMMIT

The migration's SQL comes first, so ``pg_stat_activity`` shows what is running.

PostgreSQL runs it exactly as it would the same statements sent one by one inside ``BEGIN``
(the statements were split as psql splits them; the file's own ``BEGIN``/``COMMIT`` wrapper is
already dropped and other transaction control refused), and it is how golang-migrate itself
sends a file: one simple query. The first error stops the query and aborts the transaction, so
nothing of the SQL and nothing of the write stays: commit order and atomicity are those of the
statement-by-statement path.

What one query loses is *which* statement failed. PostgreSQL's error position (syntax errors,
unknown names) is an offset into the query, which maps back to the statement and the line of
the file. Without a position (a constraint violation, a lock timeout), the caller runs the
statements again one by one in a fresh transaction that is always rolled back
(:func:`locate_failure`): the statement that fails again names the line. Only a failing
migration pays for that second run.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pytest_migorch.deploy.tracking import ExecutionRecord, record_from_tuple, returns_rows
from pytest_migorch.postgres.statements import MigrationSqlError, run_statement
from pytest_migorch.sql.split import Statement

__all__ = ["Batch", "build_batch", "run_batch", "locate_failure", "first_failing",
           "unterminated_failure"]

_BEGIN = "BEGIN;\n"
_SEPARATOR = ";\n"


@dataclass(frozen=True)
class Batch:
    """One transaction as one query text, and where each statement of the file stands in it."""

    text: str
    statements: tuple[Statement, ...]
    #: Offset (in characters, as PostgreSQL counts positions) of each statement in ``text``.
    offsets: tuple[int, ...]

    def statement_at(self, position: int) -> tuple[Statement, int] | None:
        """The statement and file line of PostgreSQL's 1-based error ``position``, or None
        when it falls outside the migration's statements (in the runner's own SQL)."""
        offset = position - 1
        index = bisect.bisect_right(self.offsets, offset) - 1
        if index < 0:
            return None
        statement = self.statements[index]
        within = offset - self.offsets[index]
        if within > len(statement.text):
            return None
        return statement, statement.line + statement.text[:within].count("\n")


def build_batch(statements: list[Statement], tracking_sql: str) -> Batch:
    """``BEGIN``, the statements, ``tracking_sql`` (parameterless, ends the transaction's
    work) and ``COMMIT`` as one text."""
    parts = [_BEGIN]
    offsets = []
    length = len(_BEGIN)
    for statement in statements:
        offsets.append(length)
        parts.append(statement.text)
        parts.append(_SEPARATOR)
        length += len(statement.text) + len(_SEPARATOR)
    parts += [tracking_sql, ";\nCOMMIT"]
    return Batch("".join(parts), tuple(statements), tuple(offsets))


def run_batch(conn: psycopg.Connection[Any], batch: Batch) -> ExecutionRecord | None:
    """Send the batch; return the tracking row its write returned (the last result with
    columns: the migration's own results come before it). Raises ``psycopg.Error`` as
    PostgreSQL reported it, with the connection left in the aborted transaction."""
    with conn.cursor() as cur:
        cur.execute(batch.text.encode("utf-8"), prepare=False)
        row = None
        while True:
            if returns_rows(cur):
                row = cur.fetchone()
            if not cur.nextset():
                break
    return record_from_tuple(row) if row else None


def locate_failure(conn: psycopg.Connection[Any], batch: Batch, exc: psycopg.Error,
                   path: Path, *, trust_position: bool = True) -> MigrationSqlError | None:
    """Where in the file the batch failed; None when no statement of the file fails (the
    runner's own write did, or the failure does not repeat).

    Call it with the failed transaction ended. A position in the error maps directly;
    otherwise the statements run again one by one in a new transaction, always rolled back,
    so this never changes the database. Not ``trust_position``: the batch ends in an
    ``EXECUTE`` of a prepared write, whose errors give positions in the prepared text, not
    in the batch; the statements then always run again to find the failing one."""
    position = exc.diag.statement_position if trust_position else None
    if position and position.isdigit():
        found = batch.statement_at(int(position))
        if found is not None:
            statement, line = found
            return _error_at(exc, statement, line, path)
    return first_failing(conn, batch.statements, path)


def first_failing(conn: psycopg.Connection[Any], statements: tuple[Statement, ...] | list[
        Statement], path: Path) -> MigrationSqlError | None:
    """Run ``statements`` one by one in a new transaction, always rolled back: the error of
    the first that fails, with its line, or None."""
    try:
        with conn.transaction():
            for statement in statements:
                run_statement(conn, statement, path)
            raise psycopg.Rollback()
    except MigrationSqlError as located:
        return located
    return None


def unterminated_failure(conn: psycopg.Connection[Any], statements: list[Statement],
                         path: Path) -> MigrationSqlError | None:
    """A file whose last statement leaves a quote, dollar quote or comment open cannot
    travel in a batch: the runner's own SQL after it would land inside it. Such a file is
    sent statement by statement (rolled back), and PostgreSQL's error names the line. None
    when no statement is unterminated."""
    bad = next((s for s in statements if s.unterminated), None)
    if bad is None:
        return None
    return first_failing(conn, statements, path) or MigrationSqlError(
        path, bad.line, bad.unterminated or "unterminated statement", None)


def _error_at(exc: psycopg.Error, statement: Statement, line: int,
              path: Path) -> MigrationSqlError:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return MigrationSqlError(path, line, message, diag.sqlstate, detail=diag.message_detail,
                             hint=diag.message_hint, statement=statement.text)
