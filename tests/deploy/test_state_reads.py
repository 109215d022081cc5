"""Every service's rows and golang-migrate version in one round trip (deploy/state_reads.py):
the same answers as reading each service alone, and only for services whose tables exist."""

from __future__ import annotations

from typing import Iterator

import psycopg
import pytest

from pytest_migorch.deploy.session import Session
from pytest_migorch.deploy.state_reads import read_states
from pytest_migorch.postgres.connection import resolve_settings


@pytest.fixture
def session(fresh_db: str) -> Iterator[Session]:
    conn = psycopg.connect(fresh_db, autocommit=True)
    s = Session(conn, resolve_settings(fresh_db, {}), 5.0)
    try:
        yield s
    finally:
        s.close()


def _start(session: Session, schema: str, migration: str, environment: str,
           status: str = "running") -> int:
    return session.tracking(schema).start(
        migration_id=migration, migration_version=migration.split("_")[0],
        environment=environment, action="up", status=status, executed_by="test",
        checksum="c" * 64, dependencies=["000001"], metadata={"dirty": status == "running",
                                                             "note": "it's"})


def test_one_query_reads_what_each_service_reads_alone(session: Session) -> None:
    for schema in ("alpha", "beta", "gamma", "delta"):
        if schema != "delta":
            session.tracking(schema).create()
    _start(session, "alpha", "000001_a", "staging", "completed")
    _start(session, "alpha", "000002_b", "staging")
    _start(session, "alpha", "000001_a", "production", "completed")
    session.tracking("alpha").write_schema_version(2, True)
    _start(session, "beta", "000001_x", "staging", "completed")
    session.tracking("beta").write_schema_version(1, False)
    # gamma: tables, no rows, golang-migrate's table empty; delta: never initialised
    schemas = ["alpha", "beta", "gamma", "delta"]
    session.probe_tables(schemas)
    read = read_states(session, schemas)
    assert sorted(read) == ["alpha", "beta", "gamma"]  # delta is read the usual way
    for schema, (records, version) in read.items():
        tracking = session.tracking(schema)
        assert records == tracking.records()
        assert version == tracking.read_schema_version()
    assert [r.migration_id for r in read["alpha"][0]] == ["000001_a", "000002_b", "000001_a"]
    assert read["alpha"][1].dirty and read["gamma"][1].version == -1
    assert read["alpha"][0][1].metadata == {"dirty": True, "note": "it's"}


def test_nothing_is_read_inside_a_transaction_or_for_unknown_tables(session: Session) -> None:
    session.tracking("alpha").create()
    fresh = Session(psycopg.connect(session.settings.conninfo, autocommit=True),
                    session.settings, 5.0)
    try:
        assert read_states(fresh, ["alpha"]) == {}  # not probed: not known to exist
        fresh.probe_tables(["alpha"])
        with fresh.conn.transaction():
            assert read_states(fresh, ["alpha"]) == {}
        assert "alpha" in read_states(fresh, ["alpha"])
    finally:
        fresh.close()


def test_rows_read_as_tuples_are_in_the_record_fields_order() -> None:
    """record_from_tuple builds records by position: the columns read must be the fields."""
    import dataclasses

    from pytest_migorch.deploy.records import ExecutionRecord
    from pytest_migorch.deploy.tracking_sql import RECORD_COLUMNS

    assert RECORD_COLUMNS == tuple(f.name for f in dataclasses.fields(ExecutionRecord))


def test_tracking_writes_return_the_row_as_it_now_is(session: Session) -> None:
    tracking = session.tracking("alpha")
    tracking.create()
    record_id = _start(session, "alpha", "000001_a", "staging")
    updated = tracking.update(record_id, action="up", status="completed", completed=True,
                              metadata={"dirty": False})
    assert updated is not None and updated == tracking.record(record_id)
    assert updated.status == "completed" and updated.metadata["note"] == "it's"
