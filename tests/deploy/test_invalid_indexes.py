"""The runner names the INVALID indexes a failed or killed concurrent build left, and the
exact ``DROP INDEX CONCURRENTLY`` to run before retrying (real PostgreSQL, real kill -9)."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest
from helpers import make_runner, query
from test_runner_crash import add_slow_migration, row, spawn, wait_until

from pytest_migorch.deploy.invalid_indexes import InvalidIndex, drop_advice
from pytest_migorch.deploy.runner import Refused
from pytest_migorch.errors import MigrationFailed

DROP = "DROP INDEX CONCURRENTLY user_service.users_name_uniq;"


def test_drop_advice_names_each_index_and_the_statement() -> None:
    assert drop_advice([]) == ""
    text = drop_advice([InvalidIndex('s."Odd"'), InvalidIndex("s.parted", partitioned=True)])
    assert '  DROP INDEX CONCURRENTLY s."Odd";' in text
    assert "  DROP INDEX s.parted;" in text  # no CONCURRENTLY on a partitioned table
    assert "IF NOT EXISTS would skip them" in text


def test_failed_concurrent_unique_build_names_the_invalid_index(services: Path,
                                                                fresh_db: str) -> None:
    migration_id = add_slow_migration(
        services, "INSERT INTO users (email, full_name) VALUES ('a@x.test', 'Same'), "
        "('b@x.test', 'Same');\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_name_uniq ON users (full_name);\n",
        transactional=False)
    run = make_runner(services, fresh_db)
    with pytest.raises(MigrationFailed) as failed:
        run.up(["user-service"], "production")
    message = str(failed.value)
    assert "could not create unique index" in message and "dirty flag is set" in message
    assert "It left 1 INVALID index(es)" in message and DROP in message
    assert row(fresh_db, migration_id)[0] == "failed"  # type: ignore[index]
    (report,) = run.status(["user-service"], "production")
    assert report.has_problems
    assert "INVALID index user_service.users_name_uniq" in report.render_status()
    assert DROP in report.render_status()
    assert report.to_json()["invalid_indexes"] == [
        {"name": "user_service.users_name_uniq", "drop": DROP}]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(DROP)
    (report,) = run.status(["user-service"], "production")
    assert report.invalid_indexes == []
    assert "INVALID index user_service.users_name_uniq (" not in report.render_status()


def test_killed_concurrent_build_is_named_by_the_next_run(services: Path,
                                                          fresh_db: str) -> None:
    migration_id = add_slow_migration(
        services, "CREATE INDEX CONCURRENTLY users_name_uniq ON users (full_name);\n",
        transactional=False)
    first = make_runner(services, fresh_db)
    (report,) = first.status(["user-service"], "production")
    first.up(["user-service"], "production", count=len(report.state.pending) - 1)
    # An open writer: the build has created its INVALID index and waits for it to end.
    with psycopg.connect(fresh_db, autocommit=True) as writer:
        writer.execute("BEGIN")
        writer.execute("INSERT INTO user_service.users (email, full_name) VALUES ('w@x', 'W')")
        proc = spawn(services, fresh_db, "up", "user-service", "--env", "production")
        wait_until(lambda: query(fresh_db, "SELECT count(*) FROM pg_stat_activity WHERE query "
                                 "LIKE 'CREATE INDEX CONCURRENTLY%%' AND wait_event_type = "
                                 "'Lock'") == [(1,)])
        pid = row(fresh_db, migration_id)[1]["backend_pid"]  # type: ignore[index]
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        query(fresh_db, "SELECT pg_terminate_backend(%s)", (pid,))  # as the server would
        wait_until(lambda: query(fresh_db, "SELECT count(*) FROM pg_stat_activity WHERE "
                                 "pid = %s", (pid,)) == [(0,)])
        writer.execute("ROLLBACK")
    assert query(fresh_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                           "'user_service.users_name_uniq'::regclass") == [(False,)]
    run = make_runner(services, fresh_db)
    with pytest.raises(Refused, match=r"(?s)after 0 of 1 statement\(s\).*INVALID index.*"
                                      + DROP.replace(".", r"\.")):
        run.up(["user-service"], "production")
    (report,) = run.status(["user-service"], "production")
    assert report.dirty and DROP in report.render_status()
