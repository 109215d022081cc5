"""The round-trip's per-migration catalogue queries as functions with kept plans
(postgres.cached_plans, roundtrip.server_plans): the same rows as the queries themselves, and
the query itself wherever its function is not there."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_migorch.postgres.cached_plans import cached, install_cached
from pytest_migorch.postgres.probes import install_probes
from pytest_migorch.roundtrip.server_plans import ROUND_TRIP_QUERIES, install_round_trip_plans

_SCHEMA = """
CREATE SCHEMA svc;
CREATE TABLE svc.parent (id int PRIMARY KEY, name text NOT NULL DEFAULT '');
CREATE TYPE svc.mood AS ENUM ('sad', 'ok');
CREATE TABLE svc.child (id serial PRIMARY KEY, parent_id int REFERENCES svc.parent,
                        mood svc.mood, at timestamptz NOT NULL);
CREATE TABLE svc.part (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE svc.part_1 PARTITION OF svc.part FOR VALUES FROM (0) TO (10);
INSERT INTO svc.parent VALUES (1, 'a');
CREATE INDEX part_k ON ONLY svc.part (k);  -- INVALID until its partitions have theirs
"""


def _arguments(types: tuple[str, ...], conn: psycopg.Connection[Any]) -> list[object]:
    oids = [r[0] for r in conn.execute(
        "SELECT c.oid::int FROM pg_class c WHERE c.relnamespace = 'svc'::regnamespace"
        " AND c.relkind IN ('r', 'p')").fetchall()]
    return [["svc"] if t == "text[]" else oids for t in types]


def test_every_round_trip_query_gives_the_same_rows_as_a_function(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(_SCHEMA)
        assert install_probes(conn)
        assert install_round_trip_plans(conn) == len(ROUND_TRIP_QUERIES)
        for query, types in ROUND_TRIP_QUERIES:
            call = cached(conn, query)
            assert call != query and call.startswith("SELECT * FROM migorch_probe.plan_")
            args = _arguments(types, conn) if types else None
            with conn.transaction():  # the truth reads the transaction's locks and writes
                conn.execute("LOCK TABLE svc.parent IN ACCESS EXCLUSIVE MODE")
                direct = conn.execute(query, args, prepare=False).fetchall()
                through = conn.execute(call, args, prepare=False).fetchall()
            assert through == direct and direct, query[:60]


def test_a_query_without_its_function_is_sent_as_it_is(fresh_db: str) -> None:
    """Not installed on this connection, or not installable (a table not there): the query."""
    missing = "SELECT id FROM svc.nowhere WHERE id = ANY(%s)"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert install_probes(conn)
        assert cached(conn, missing) == missing
        assert install_cached(conn, [(missing, ("int[]",))]) == 0
        assert cached(conn, missing) == missing
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(fresh_db, autocommit=True) as other:
        query, _ = ROUND_TRIP_QUERIES[0]
        assert cached(other, query) == query  # installed for that connection only


def test_placeholders_must_match_the_types(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn, pytest.raises(ValueError):
        install_cached(conn, [("SELECT %s::int, %s::int", ("int",))])
