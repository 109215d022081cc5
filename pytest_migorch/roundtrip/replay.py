"""Applying migrations the round-trip does not test, many files to one message.

A round-trip applies more than it tests: other services' migrations its order needs, the
migrations another environment tests, and with ``--migorch-changed-only`` the whole history
before the change. Behind one service of a large repository that is a chain of thousands of
files (about 1,200 to test one new migration in the CI scenario of issue 14), and sent
statement by statement (``SET search_path``, ``BEGIN``, each statement, ``COMMIT``) every file
costs four or more round trips to the server on top of its own execution.

Consecutive transactional files therefore go as one simple query, each in its own ``BEGIN`` ...
``COMMIT`` with its service's ``search_path``, so each commits on its own as golang-migrate
would commit it. What PostgreSQL runs is the same statements in the same transactions; only
the number of messages changes. The file's own ``BEGIN``/``COMMIT`` wrapper is dropped and any
other transaction control keeps the file out of a batch, as when it runs alone
(:func:`~pytest_migorch.postgres.statements.prepared_statements`); so does a quote or comment
the file leaves open, which would take in the files after it (as in
:mod:`~pytest_migorch.roundtrip.file_batch`).

What the batch cannot do is say which file failed and where: PostgreSQL refuses the whole
message for a syntax error anywhere in it, but after an error while running, the files before
it stay committed. So a failed batch leaves the database unknown, and the caller rebuilds it
and applies the same files one at a time, which names the file, the line and PostgreSQL's
message exactly as before (:meth:`RoundTrip._replay_batch
<pytest_migorch.roundtrip.engine.RoundTrip>`). Non-transactional files are never batched:
PostgreSQL refuses ``CREATE INDEX CONCURRENTLY`` and its kind in a multi-statement query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg
from psycopg import sql

from pytest_migorch.errors import MigrationFailed
from pytest_migorch.model import Migration, schema_name
from pytest_migorch.postgres.statements import prepared_statements
from pytest_migorch.sql.execution_mode import file_execution_mode

__all__ = ["apply_batch", "batchable_run", "MAX_BATCH_CHARS"]

log = logging.getLogger(__name__)

#: A message holds files up to about this many characters of SQL (one file may exceed it).
MAX_BATCH_CHARS = 1_000_000


class _StepLike(Protocol):
    migration: Migration
    tested: bool


def _file_sql(migration: Migration) -> str | None:
    """``migration``'s up as a self-contained part of a batch, or None when it cannot be one."""
    file = migration.up
    if file is None or not file_execution_mode(migration, file).transactional:
        return None
    try:
        statements = prepared_statements(file.read_text(), in_transaction=True, path=file.path)
    except MigrationFailed:  # transaction control inside: it fails alone, with its message
        return None
    if any(statement.unterminated for statement in statements):
        return None  # a quote or comment left open would take in the files after it
    body = "".join(f"{statement.text};\n" for statement in statements)
    return f"BEGIN;\n{body}COMMIT;\n"


def batchable_run(steps: Sequence[_StepLike], start: int,
                  blocker: Callable[[Migration], str | None]) -> list[tuple[Migration, str]]:
    """The untested steps from ``start`` on that can go in one message, with their SQL: they
    stop at a tested step, a file that must run alone, a step a failure blocks
    (``blocker`` says why), or :data:`MAX_BATCH_CHARS`."""
    run: list[tuple[Migration, str]] = []
    size = 0
    for step in steps[start:]:
        if step.tested or blocker(step.migration) is not None:
            break
        text = _file_sql(step.migration)
        if text is None or run and size + len(text) > MAX_BATCH_CHARS:
            break
        run.append((step.migration, text))
        size += len(text)
    return run


def apply_batch(conn: psycopg.Connection[Any], run: Sequence[tuple[Migration, str]]) -> bool:
    """Send ``run`` (from :func:`batchable_run`) as one message on an autocommit connection.

    True when every file committed. False when PostgreSQL refused something: the open
    transaction is rolled back, but earlier files of the message stay committed, so the
    database is in no known state and must be rebuilt."""
    parts: list[str] = []
    for migration, text in run:
        schema = sql.Identifier(schema_name(migration.service)).as_string(conn)
        parts.append(f"SET search_path TO {schema}, public;\n{text}")
    try:
        # Bytes: the files' own SQL, sent verbatim as a simple query (no parameters).
        conn.execute("".join(parts).encode("utf-8"), prepare=False)
    except psycopg.Error as exc:
        log.debug("a batch of %d migrations failed (%s); applying them one at a time",
                  len(run), exc.diag.message_primary or exc)
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the connection is dropped with the database anyway
        return False
    return conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
