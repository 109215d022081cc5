"""The round-trip's per-migration catalogue queries, installed as functions with kept plans.

Which queries :mod:`pytest_migorch.postgres.cached_plans` keeps the plans of, installed once per
round-trip database with the probes: the state before an up and the truth after it (sent in
the file's message, :mod:`.file_step`), the row stamps (:mod:`.row_changes`), what seeding
re-reads of the catalogue (:mod:`.seed_catalogue`), the INVALID indexes and the scan counters
(:mod:`.data_checks`, :mod:`.scans`). Each call site sends ``cached(conn, QUERY)``: the
function's call where it was installed, the query itself everywhere else (the deploy runner,
a server where the functions could not be created).
"""

from __future__ import annotations

from typing import Any

import psycopg

from pytest_migorch.postgres.cached_plans import install_cached
from pytest_migorch.postgres.probes import STATE_QUERY, truth_query
from pytest_migorch.roundtrip.row_changes import STAMPS
from pytest_migorch.roundtrip.scans import COUNTERS
from pytest_migorch.roundtrip.seed_catalogue import COLUMNS_OF, FOREIGN_KEYS_OF
from pytest_migorch.roundtrip.seeding import INVALID_INDEXES

__all__ = ["ROUND_TRIP_QUERIES", "install_round_trip_plans"]

#: ``(query, parameter types)``; the truth is the one read in a transaction with the DDL log.
ROUND_TRIP_QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (STATE_QUERY, ()),
    (truth_query(ddl_available=True, in_transaction=True), ()),
    (STAMPS, ("oid[]",)),
    (COLUMNS_OF, ("text[]", "oid[]")),
    (FOREIGN_KEYS_OF, ("oid[]",)),
    (INVALID_INDEXES, ("text[]",)),
    (COUNTERS, ("text[]",)),
)


def install_round_trip_plans(conn: psycopg.Connection[Any]) -> int:
    """Install :data:`ROUND_TRIP_QUERIES` on ``conn``'s database; how many were."""
    return install_cached(conn, ROUND_TRIP_QUERIES)
