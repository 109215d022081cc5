"""Catalogue queries run for every migration, with their plans kept by PostgreSQL.

The round-trip asks the catalogue the same dozen questions for every migration (the state
before an up, the truth after it, the row stamps, the tables to seed...). Each is small to run
and costs as much again, or more, to plan: 0.1-0.3 ms of planning against 0.03-0.2 ms of
execution on the benchmark repository. psycopg's prepared statements do not keep them: psycopg
deallocates every one after a DDL statement, which every migration runs. A PL/pgSQL function
does: the plan of its ``RETURN QUERY`` is cached for the session and replanned by PostgreSQL
itself only when something it depends on changes (or the ``search_path`` does).

:func:`install_cached` creates, in the probes' private schema (no snapshot sees it), one such
function per query, with the result columns PostgreSQL gives the query (read from a prepared
statement), and remembers it for the connection; :func:`cached` then gives the call to send in
the query's place, or the query itself when there is no function on that connection (not
installed, or its creation failed): the same rows either way.
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg

from pytest_migorch.postgres.probes import PROBE_SCHEMA

__all__ = ["install_cached", "cached"]

log = logging.getLogger(__name__)

#: connection -> query text -> the call that replaces it.
_CALLS: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()

_PLACEHOLDER = re.compile(r"%%|%s")


def _numbered(query: str) -> tuple[str, int]:
    """``query`` with psycopg's ``%s`` as ``$1``, ``$2``... (and ``%%`` as ``%``); how many."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, query), count


def install_cached(conn: psycopg.Connection[Any],
                   queries: Sequence[tuple[str, tuple[str, ...]]]) -> int:
    """Create a function for each ``(query, parameter types)`` on ``conn``'s database
    (autocommit, idle); how many were created. A query that cannot be (a type PL/pgSQL
    refuses, a table not there yet) keeps being sent as it is."""
    calls = _CALLS.setdefault(conn, {})
    for query, types in queries:
        # Without parameters psycopg sends the text as it is: a % in it is a %.
        text, count = _numbered(query) if types else (query, 0)
        if count != len(types) or "$migorch_plan$" in text:
            raise ValueError(f"{count} placeholders for {len(types)} types: {query[:60]}")
        name = f"plan_{hashlib.sha256((text + repr(types)).encode()).hexdigest()[:16]}"
        signature = ", ".join(types)
        try:
            with conn.transaction():
                columns = ", ".join(f"migorch_out_{i} {t}" for i, t in
                                    enumerate(_result_types(conn, text, types), 1))
                conn.execute(
                    f"CREATE OR REPLACE FUNCTION {PROBE_SCHEMA}.{name}({signature})"
                    f" RETURNS TABLE ({columns}) LANGUAGE plpgsql VOLATILE AS $migorch_plan$"
                    f"\n#variable_conflict use_column\nBEGIN\nRETURN QUERY {text};\nEND"
                    " $migorch_plan$", prepare=False)
        except psycopg.Error as exc:
            log.info("query kept as it is, not as a function (%s): %s", exc, query[:60])
            continue
        arguments = ", ".join(f"%s::{t}" for t in types)
        calls[query] = f"SELECT * FROM {PROBE_SCHEMA}.{name}({arguments})"
    return len(calls)


def _result_types(conn: psycopg.Connection[Any], text: str,
                  types: tuple[str, ...]) -> list[str]:
    """The types of the columns ``text`` returns, as SQL spells them: the query run for no
    row, with typed NULLs for its parameters (``pg_prepared_statements.result_types`` is
    PostgreSQL 16's)."""
    probe = re.sub(r"\$(\d+)", lambda m: f"(NULL::{types[int(m.group(1)) - 1]})", text)
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({probe}) AS migorch_shape LIMIT 0", prepare=False)
        oids = [column.type_code for column in cur.description or ()]
        rows = cur.execute("SELECT format_type(t, NULL) FROM unnest(%s::oid[])"
                           " WITH ORDINALITY AS u(t, i) ORDER BY i", [oids],
                           prepare=False).fetchall()
    return [str(row[0]) for row in rows]


def cached(conn: psycopg.Connection[Any], query: str) -> str:
    """What to send for ``query`` on ``conn``: its function's call, or ``query`` itself."""
    calls = _CALLS.get(conn)
    return calls.get(query, query) if calls is not None else query
