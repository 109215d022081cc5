"""The snapshot tracker's scoped read as a function in the database, callable after a file.

A :class:`~pytest_migorch.postgres.snapshot_tracking.SnapshotTracker` re-reads what changed with
one statement that takes the tracker's position (the DDL log's sequence number, a transaction
id, the sub-objects it knows and their owners). Everything it needs is known before a file runs,
so the snapshot after a down or a re-up can travel in the same message as the file and its
``COMMIT``: one round trip instead of two. A prepared statement cannot go there (``SET LOCAL
search_path`` needs a transaction block, and an error of the snapshot would look like one of the
file), a function can: installed once per database with the probes, in their private schema (no
snapshot sees it), it sets its own ``search_path`` and generic plan, and it never fails: a
failure of its read comes back as its row, with :data:`FAILED` in place of the log's position
and PostgreSQL's message in place of the document, and the tracker then reads the snapshot on
its own. So an error of the message is always the file's (or its ``COMMIT``'s), and the truth
read before that ``COMMIT`` is never lost to a failed snapshot.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import psycopg
from psycopg import sql

from pytest_migorch.postgres.probes import PROBE_SCHEMA

__all__ = ["install_snapshot_function", "snapshot_call", "failure_of"]

log = logging.getLogger(__name__)


_CREATE = """
CREATE OR REPLACE FUNCTION {name}(bigint, bigint, oid[], oid[])
RETURNS TABLE (snapshot_document text, snapshot_last_seq bigint, snapshot_newer bigint,
               snapshot_xid bigint, snapshot_scope oid[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog SET plan_cache_mode = force_generic_plan
AS $migorch_snapshot$
BEGIN
    RETURN QUERY {statement};
EXCEPTION WHEN OTHERS THEN
    RETURN QUERY SELECT SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')', NULL::bigint, NULL::bigint,
                        NULL::bigint, NULL::oid[];
END $migorch_snapshot$
"""


def _function_name(statement: bytes) -> str:
    """``migorch_probe.snapshot_<hash>``: named after its statement, as the prepared one is."""
    return f"{PROBE_SCHEMA}.snapshot_{hashlib.sha256(statement).hexdigest()[:16]}"


def install_snapshot_function(conn: psycopg.Connection[Any], statement: bytes) -> str | None:
    """Create the function that runs the scoped ``statement`` (parameters ``$1``-``$4``); its
    qualified name, or None when it cannot be created (no probe schema, no PL/pgSQL): then the
    tracker reads through its prepared statement only."""
    if b"$migorch_snapshot$" in statement:
        return None
    name = _function_name(statement)
    create = _CREATE.format(name=name, statement="{statement}")
    head, tail = create.split("{statement}")
    try:
        with conn.transaction():
            conn.execute(head.encode() + statement + tail.encode(), prepare=False)
    except psycopg.Error as exc:
        log.info("no server-side snapshot function (%s): one round trip more per snapshot", exc)
        return None
    return name


def snapshot_call(conn: psycopg.Connection[Any], name: str, args: str) -> bytes:
    """The ``SELECT`` that calls the function ``name`` with ``args`` (literal values, composed
    by the tracker from integers only), as bytes to append to a message."""
    return sql.SQL("SELECT * FROM {}({})").format(
        sql.Identifier(*name.split(".")), sql.SQL(args)).as_bytes(conn)


def failure_of(row: tuple[Any, ...]) -> str | None:
    """PostgreSQL's message when the function's read failed (its row has no log position)."""
    return str(row[0]) if row[1] is None else None
