"""The tracking tables, golang-migrate's table and lock, and checksums (tracking.py)."""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import sql

from pytest_migorch.deploy.tracking import (
    AdvisoryLock,
    Tracking,
    advisory_lock_id,
    executions_ddl,
    file_checksum,
    lock_key,
)
from pytest_migorch.deploy.locks import release_all, take_free_prefix
from pytest_migorch.errors import LockTimeout

# SPEC section 6, copied verbatim: the table migorch creates must be exactly this one.
SPEC_DDL = """CREATE TABLE {schema}.migration_executions (
    id BIGSERIAL PRIMARY KEY,
    migration_id VARCHAR(255) NOT NULL,
    migration_version VARCHAR(255) NOT NULL,
    environment VARCHAR(50) NOT NULL,
    status VARCHAR(50) NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'rolled_back')),
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_ms BIGINT,
    executed_by VARCHAR(255),
    checksum VARCHAR(255),
    dependencies JSONB,
    metadata JSONB,
    error_message TEXT,
    rollback_version VARCHAR(255),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(migration_id, environment)
);"""  # noqa: E501


# --- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("names", "expected"), [
    # golang-migrate database/util_test.go
    (("database_name",), 1764327054),
    (("database_name", "schema_name_1"), 2453313553),
    (("database_name", "schema_name_2"), 235207038),
    (("database_name", "schema_name_1", "schema_name_2"), 3743845847),
])
def test_advisory_lock_id_matches_golang_migrate_vectors(names: tuple[str, ...],
                                                         expected: int) -> None:
    assert advisory_lock_id(*names) == expected


def test_lock_key_hashes_schema_table_and_url_path() -> None:
    assert lock_key("/mydb", "public", "schema_migrations") == 616192132
    assert lock_key("mydb", "public", "schema_migrations") == 2103762914
    # The key of a service's table, written out independently of the implementation.
    raw = b"public\x00user_service_schema_migrations\x00/app"
    assert lock_key("/app", "public", "user_service_schema_migrations") == (
        zlib.crc32(raw) * 1486364155) % 2**32


def test_ddl_text_is_the_spec_text() -> None:
    text = executions_ddl("user_service").as_string(None)
    assert text + ";" == SPEC_DDL.replace("{schema}", '"user_service"')


def test_checksum_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "1_x.up.sql"
    path.write_bytes(b"CREATE TABLE t (id int);\r\n")
    assert file_checksum(path) == hashlib.sha256(b"CREATE TABLE t (id int);\r\n").hexdigest()


# --- against PostgreSQL -----------------------------------------------------------------------


@pytest.fixture
def conn(fresh_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_db, autocommit=True) as connection:
        yield connection


def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT column_name, data_type, character_maximum_length, is_nullable, "
        "replace(coalesce(column_default, ''), table_schema || '.', '') "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", (schema, table)).fetchall()


def _constraints(conn: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT contype, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = %s AND t.relname = %s ORDER BY 1, 2", (schema, table)).fetchall()


def test_create_makes_exactly_the_spec_table(conn: psycopg.Connection[Any]) -> None:
    created = Tracking(conn, "user_service").create()
    assert created == ["user_service.migration_executions",
                       "user_service.migration_execution_history",
                       "public.user_service_schema_migrations"]
    conn.execute("CREATE SCHEMA spec")
    conn.execute(SPEC_DDL.replace("{schema}", "spec"))
    assert _columns(conn, "user_service", "migration_executions") == _columns(
        conn, "spec", "migration_executions")
    assert _constraints(conn, "user_service", "migration_executions") == _constraints(
        conn, "spec", "migration_executions")
    assert Tracking(conn, "user_service").create() == []  # idempotent


def test_golang_migrate_table_is_created_as_golang_migrate_does(
        conn: psycopg.Connection[Any]) -> None:
    Tracking(conn, "user_service").create()
    assert _columns(conn, "public", "user_service_schema_migrations") == [
        ("version", "bigint", None, "NO", ""), ("dirty", "boolean", None, "NO", "")]
    assert _constraints(conn, "public", "user_service_schema_migrations") == [
        ("p", "PRIMARY KEY (version)")]


def test_schema_version_is_written_like_set_version(conn: psycopg.Connection[Any]) -> None:
    tracking = Tracking(conn, "svc")
    assert tracking.read_schema_version().exists is False
    assert tracking.read_schema_version().version == -1
    tracking.create()
    read = tracking.read_schema_version
    assert (read().version, read().dirty, read().exists) == (-1, False, True)
    tracking.write_schema_version(3, True)
    assert (read().version, read().dirty) == (3, True)
    tracking.write_schema_version(4, False)
    rows = conn.execute("SELECT version, dirty FROM public.svc_schema_migrations").fetchall()
    assert rows == [(4, False)]
    tracking.write_schema_version(-1, False)  # NilVersion, clean: an empty table
    assert conn.execute("SELECT count(*) FROM public.svc_schema_migrations").fetchone() == (0,)
    tracking.write_schema_version(-1, True)  # a failed down of the first migration
    assert conn.execute("SELECT version, dirty FROM public.svc_schema_migrations").fetchall() \
        == [(-1, True)]


def test_every_change_is_appended_to_the_history(conn: psycopg.Connection[Any]) -> None:
    tracking = Tracking(conn, "svc")
    tracking.create()
    record_id = tracking.start(
        migration_id="000001_a", migration_version="000001", environment="dev", action="up",
        executed_by="me@host", checksum="abc", dependencies=[], metadata={"x": 1})
    tracking.update(record_id, action="up", status="failed", completed=True, duration_ms=5,
                    error_message="boom", metadata={"y": 2})
    again = tracking.start(
        migration_id="000001_a", migration_version="000001", environment="dev", action="up",
        executed_by="me@host", checksum="abc", dependencies=[], metadata={"x": 1})
    assert again == record_id  # one row per migration and environment
    tracking.update(record_id, action="up", status="completed", completed=True,
                    duration_ms=7)
    (record,) = tracking.records()
    assert (record.status, record.error_message, record.duration_ms) == ("completed", None, 7)
    assert record.metadata == {"x": 1}  # a fresh attempt replaces the metadata
    history = tracking.history("dev")
    assert [(h.status, h.error_message) for h in reversed(history)] == [
        ("running", None), ("failed", "boom"), ("running", None), ("completed", None)]
    assert history[2].metadata == {"x": 1, "y": 2}


def test_lock_waits_at_most_the_timeout_and_names_the_holder(
        conn: psycopg.Connection[Any], fresh_db: str) -> None:
    key = lock_key("/db", "public", "svc_schema_migrations")
    with psycopg.connect(fresh_db, autocommit=True, application_name="holder-app") as other:
        other.execute("SELECT pg_advisory_lock(%s::bigint)", (key,))
        lock = AdvisoryLock(conn, key, "service schema svc")
        assert "holder-app" in (lock.holder() or "")
        began = time.monotonic()
        with pytest.raises(LockTimeout, match="held by pid .*holder-app"):
            lock.acquire(0.3)
        assert 0.25 < time.monotonic() - began < 3
        with pytest.raises(LockTimeout):
            lock.acquire(0)  # no wait at all
        threading.Timer(0.3, lambda: other.execute(
            "SELECT pg_advisory_unlock(%s::bigint)", (key,))).start()
        waited = lock.acquire(5)
        assert 0.2 < waited < 4
        assert lock.held
    lock.release()
    assert lock.holder() is None


def test_locks_taken_together_keep_only_the_prefix_before_a_busy_one(
        conn: psycopg.Connection[Any], fresh_db: str) -> None:
    # a run must never hold a later lock while it waits for an earlier one: two runs taking
    # the same locks in the same order could otherwise each wait for the other
    keys = [lock_key("/db", "public", f"s{i}_schema_migrations") for i in range(4)]
    locks = [AdvisoryLock(conn, key, f"service schema s{i}") for i, key in enumerate(keys)]

    def held_by(connection: psycopg.Connection[Any]) -> set[int]:
        rows = connection.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = %s", (connection.info.backend_pid,)).fetchall()
        return {int(row[0]) for row in rows}

    with psycopg.connect(fresh_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s::bigint)", (keys[2],))
        assert take_free_prefix(conn, locks) == 2
        assert [lock.held for lock in locks] == [True, True, False, False]
        assert held_by(conn) == {keys[0] & 0xFFFFFFFF, keys[1] & 0xFFFFFFFF}
        other.execute("SELECT pg_advisory_unlock(%s::bigint)", (keys[2],))
    assert take_free_prefix(conn, locks[2:]) == 2
    assert len(held_by(conn)) == 4
    release_all(conn, locks)
    assert held_by(conn) == set() and not any(lock.held for lock in locks)


def test_update_returns_the_row_and_writes_golang_migrate_in_one_round_trip(
    conn: psycopg.Connection[Any],
) -> None:
    tracking = Tracking(conn, "svc")
    tracking.create()
    record_id = tracking.start(
        migration_id="000001_a", migration_version="000001", environment="dev", action="up",
        executed_by="me@host", checksum="abc", dependencies=[], metadata={"x": 1},
        before=sql.SQL("SET application_name = 'before'"))
    assert conn.execute("SHOW application_name").fetchone() == ("before",)
    record = tracking.update(record_id, action="up", status="completed", completed=True,
                             duration_ms=3, metadata={"it's": "quoted"},
                             schema_version=(1, False))
    assert record is not None and record == tracking.record(record_id)
    assert (record.status, record.duration_ms, record.metadata) == (
        "completed", 3, {"x": 1, "it's": "quoted"})
    assert tracking.read_schema_version().version == 1
    # all or nothing: golang-migrate's table gone, the row's change and its history roll back
    conn.execute("DROP TABLE public.svc_schema_migrations")
    with pytest.raises(psycopg.errors.UndefinedTable):
        tracking.update(record_id, action="down", status="rolled_back",
                        schema_version=(-1, False))
    (after,) = tracking.records()
    assert after.status == "completed"
    assert len(tracking.history("dev")) == 2


def test_tracking_writes_quote_values_as_psycopg_does(conn: psycopg.Connection[Any]) -> None:
    # the writes are rendered as text for speed; every value must still be psycopg's own
    # literal, whatever it holds
    from psycopg.types.json import Jsonb

    from pytest_migorch.deploy.tracking_sql import WriteText

    text = WriteText(conn, sql.Identifier("s", "t"), sql.Identifier("s", "h"),
                     sql.Identifier("public", "g"))
    values: list[Any] = ["plain", "it's", "back\\slash", "é {x} %s", "", None, True, False, 0,
                         -5, 2**40, Jsonb({"a": "it's", "b": [1, None]}), Jsonb([])]
    for value in values:
        assert text.literal(value) == sql.Literal(value).as_string(conn)
    tracking = Tracking(conn, "svc")
    tracking.create()
    record_id = tracking.start(migration_id="000001_a'b", migration_version="000001",
                               environment="dev", action="up", executed_by="x\\y",
                               checksum=None, dependencies=["o:1"],
                               metadata={"q": "it's {}", "n": None})
    record = tracking.record(record_id)
    assert record is not None and record.migration_id == "000001_a'b"
    assert record.executed_by == "x\\y" and record.metadata == {"q": "it's {}", "n": None}
