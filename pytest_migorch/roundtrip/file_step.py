"""One migration file applied in the round-trip's session, in as few messages as it allows.

Round trips are most of what a file costs the round-trip beyond its own statements, so a
transactional file goes in one message (:mod:`.file_message`) with ``BEGIN``, its
``search_path``, with the ground truth when asked (emptying the DDL log and the state before
it; the truth after it, read inside its transaction just before the commit, while its locks are
still held), its ``COMMIT`` and the snapshot read after it when the caller passes one.

When that cannot be done (a quote or comment left open at the end of the file), or a failure
in that message is not found again in the file alone, the old way: ``SET search_path``,
``BEGIN``, emptying the DDL log and the state before in one message, the file in another
(:mod:`.file_batch`), the truth after and the ``COMMIT`` in a third. A non-transactional file
runs statement by statement in autocommit, as golang-migrate runs it, the truth around it.

Every file sets its own ``search_path`` and snapshots set theirs, so it is not reset afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pytest_migorch.model import Migration, MigrationFile, schema_name
from pytest_migorch.postgres.cached_plans import cached
from pytest_migorch.postgres.probes import (
    RESET_DDL_LOG,
    STATE_QUERY,
    MigrationTruth,
    capture_table_state,
    collect_truth,
    state_from_rows,
    truth_from_rows,
    truth_query,
)
from pytest_migorch.postgres.statements import run_migration_file
from pytest_migorch.roundtrip.file_batch import run_transactional_file
from pytest_migorch.roundtrip.file_message import run_in_one_message
from pytest_migorch.sql.execution_mode import file_execution_mode

__all__ = ["FileResult", "apply_file"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileResult:
    """What applying a file gave: the truth when asked, and whether ``then`` (the snapshot
    read) went with it, with its row (None when it did not run or failed: read it again)."""

    truth: MigrationTruth | None = None
    then_sent: bool = False
    then_row: tuple[Any, ...] | None = None


def apply_file(conn: psycopg.Connection[Any], migration: Migration, file: MigrationFile, *,
               want_truth: bool = False, probes: bool = False,
               then: bytes | None = None) -> FileResult:
    """Run ``file`` in the migration's service schema; the truth when ``want_truth`` (with
    the DDL log when ``probes``). ``then``: a ``SELECT`` sent after the file's ``COMMIT`` in
    its message, for a transactional file applied without the truth. A failing file raises
    :class:`~pytest_migorch.postgres.statements.MigrationSqlError` with nothing left open."""
    path = sql.SQL("SET search_path TO {}, public").format(
        sql.Identifier(schema_name(migration.service)))
    transactional = file_execution_mode(migration, file).transactional
    try:
        if transactional:
            done = _in_one_message(conn, file, path.as_bytes(conn), want_truth=want_truth,
                                   probes=probes, then=then)
            if done is not None:
                return done
        setup: list[sql.Composable] = [path]
        if transactional:
            setup.append(sql.SQL("BEGIN"))
        if want_truth and probes:
            setup.append(sql.SQL(RESET_DDL_LOG))
        joined = sql.SQL(";\n").join(setup)
        before = capture_table_state(conn, setup=joined) if want_truth else None
        if before is None:
            conn.execute(joined, prepare=False)
        if transactional:  # one query: see roundtrip.file_batch
            run_transactional_file(conn, file, setup=path.as_bytes(conn))
        else:
            run_migration_file(conn, file, in_transaction=False)
        if before is not None:  # with the COMMIT, in one message
            return FileResult(collect_truth(conn, before, ddl_available=probes,
                                            in_transaction=transactional, commit=transactional))
        if transactional:
            conn.execute("COMMIT")
        return FileResult()
    except BaseException:
        _rollback(conn)
        raise


def _in_one_message(conn: psycopg.Connection[Any], file: MigrationFile, path: bytes, *,
                    want_truth: bool, probes: bool, then: bytes | None) -> FileResult | None:
    """A transactional file in one message (:func:`.file_message.run_in_one_message`), or
    None: apply it the old way."""
    before = [b"BEGIN", path]
    after = [b"COMMIT", *([then] if then is not None else [])]
    if want_truth:
        before += [*([RESET_DDL_LOG.encode()] if probes else []),
                   cached(conn, STATE_QUERY).encode()]
        after.insert(0, cached(conn, truth_query(ddl_available=probes,
                                                  in_transaction=True)).encode())
    results = run_in_one_message(conn, file, before=before, after=after, setup=path,
                                 check=then)
    if results is None:
        return None
    truth = None
    if want_truth:
        state = state_from_rows(results[len(before) - 1] or [])
        truth = truth_from_rows(results[len(before)] or [], state, ddl_available=probes)
    snapshot = results[-1] if then is not None else None
    return FileResult(truth, then_sent=then is not None,
                      then_row=snapshot[0] if snapshot else None)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End the transaction :func:`apply_file` opened, if a failure left it open."""
    if conn.closed or conn.info.transaction_status not in (
        psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR,
    ):
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error as exc:  # the original failure is the one worth reporting
        log.warning("rollback after a failed migration failed: %s", exc)
