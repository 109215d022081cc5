"""A transactional file with its transaction and the round-trip's own queries in one message.

:mod:`.file_batch` sends a file's statements as one query inside a transaction opened before;
here the ``BEGIN``, the ``search_path``, what is read before the file (the ground truth's
state), the file, what is read after it (the truth, before ``COMMIT``, while the locks are
held), the ``COMMIT`` and the snapshot after it (:mod:`pytest_migorch.postgres.snapshot_function`)
all travel as one simple query: one round trip for an up that took four, for a down or a re-up
that took three. PostgreSQL runs them in order and each statement gives one result, so the
caller finds its queries' rows by position, from the start and from the end.

After an error the session says where it happened:

- still in the transaction block: something between ``BEGIN`` and ``COMMIT`` failed, and it
  was all rolled back. The file's statements run again one by one (rolled back): the first
  that fails is the error, at its line. If none does, the failure may have been one of our
  own queries: None, and the caller applies the file the old way, in separate messages;
- idle: nothing ran (PostgreSQL parses the whole message first: a syntax error anywhere) or
  ``COMMIT`` failed (a deferred constraint) and undid everything. Both are the file's failure,
  found again statement by statement, or the query's own error when only ``COMMIT`` failed.
  The snapshot function cannot be the cause: it reports its own failures in its row, never as
  an error; only a missing function could, which is checked, and is an error of the round-trip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from pytest_migorch.errors import DatabaseError
from pytest_migorch.model import MigrationFile
from pytest_migorch.postgres.statements import prepared_statements
from pytest_migorch.roundtrip.file_batch import first_failure, query_error

__all__ = ["Results", "run_in_one_message"]

log = logging.getLogger(__name__)

#: One entry per statement of the message: its rows, or None for a statement without rows.
Results = list["list[tuple[Any, ...]] | None"]


def run_in_one_message(conn: psycopg.Connection[Any], file: MigrationFile, *,
                       before: Sequence[bytes], after: Sequence[bytes], setup: bytes,
                       check: bytes | None = None) -> Results | None:
    """``before`` (starting with ``BEGIN``), ``file``'s statements and ``after`` (with the
    ``COMMIT``) as one query on an idle autocommit connection; the results of ``before`` and
    ``after`` (those of the file's statements are left out). ``setup`` is sent again before
    the statement-by-statement run of a failing file; ``check`` is a query of ``after`` that
    must still run after an error for it to be the file's (the snapshot function's call).

    None, with nothing committed, when the file cannot go in one query (a quote or comment
    left open) or when its failure could not be found again (apply it the old way); a failing
    file raises its first failing statement's
    :class:`~pytest_migorch.postgres.statements.MigrationSqlError`."""
    statements = prepared_statements(file.read_text(), in_transaction=True, path=file.path)
    if any(s.unterminated for s in statements):
        return None
    message = b";\n".join([*before, *(s.text.encode("utf-8") for s in statements), *after])
    log.debug("sending %s with the round-trip's queries as one query (%d statements)",
              file.path.name, len(statements))
    results: Results = []
    try:
        with conn.cursor() as cur:
            cur.execute(message, prepare=False)
            while True:
                results.append(cur.fetchall() if cur.description is not None else None)
                if not cur.nextset():
                    break
    except psycopg.Error as exc:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
            _raise_found_again(conn, statements, file, setup)
            return None
        if check is not None and not _still_runs(conn, check):
            raise DatabaseError(f"the round-trip's snapshot function is gone after "
                                f"{file.path.name} ran ({exc}): did it drop the probes' schema?"
                                ) from exc
        raise first_failure(conn, statements, file, setup) or query_error(
            exc, statements, file) from exc
    # The file's statements gave as many results as PostgreSQL saw statements (a comment
    # alone gives none): ours are the first and the last.
    assert len(results) >= len(before) + len(after), (file.path, len(results))
    return [*results[:len(before)], *results[len(results) - len(after):]]


def _raise_found_again(conn: psycopg.Connection[Any], statements: list[Any], file: MigrationFile,
                 setup: bytes) -> None:
    """Raise the first failing statement's error; return when none fails again."""
    found = first_failure(conn, statements, file, setup)
    if found is not None:
        raise found
    log.info("%s failed with the round-trip's queries but passes alone: applied the old way",
             file.path.name)


def _still_runs(conn: psycopg.Connection[Any], query: bytes) -> bool:
    """Whether ``query`` runs now, in a transaction rolled back: when it does not, its own
    failure may have been the error, after the file committed (only the file could have
    dropped the function), and a failure of the file cannot be told from it."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(query, prepare=False)
    except psycopg.Error:
        return False
    return True
