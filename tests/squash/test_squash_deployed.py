"""Squashing with deployed databases: the squash refuses a listed database below the squashed
version, and the runner treats a database that applied the replaced migrations one by one as
having applied the squash (not drift, not pending)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import make_runner, query

from pytest_migorch.deploy.runner import Refused
from pytest_migorch.errors import ServerUnavailable, UsageError
from pytest_migorch.postgres.binaries import find_binaries
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.squash import squash

USER = ["user-service"]


@pytest.fixture
def server(pg_server: PostgresServer) -> PostgresServer:
    try:
        find_binaries()
    except ServerUnavailable as exc:
        pytest.skip(f"no pg_dump next to the server programs: {exc}")
    return pg_server


def test_a_listed_database_below_the_version_is_refused(
        services: Path, server: PostgresServer, fresh_db: str) -> None:
    make_runner(services, fresh_db).up(USER, "production", count=2)  # 000001, 000002
    with pytest.raises(UsageError, match=r"at version 2, below 000004: it would run "
                                         r"000004_squashed_3 over a partial schema"):
        squash(services, "user-service", 4, server=server, database_urls=(fresh_db,))
    assert (services / "user-service/migrations/000001_create_users.up.sql").exists()


def test_listed_databases_at_the_version_or_not_deployed_are_safe(
        services: Path, server: PostgresServer, fresh_db: str) -> None:
    empty = server.conninfo(server.create_database("migorch_squash_empty"))
    try:
        make_runner(services, fresh_db).up(USER, "production")
        result = squash(services, "user-service", 4, server=server,
                        database_urls=(fresh_db, empty), dry_run=True)
        assert result.ok
    finally:
        server.drop_database("migorch_squash_empty")


def test_a_golang_migrate_only_database_below_the_version_is_refused(
        services: Path, server: PostgresServer, fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.user_service_schema_migrations "
                     "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)")
        conn.execute("INSERT INTO public.user_service_schema_migrations VALUES (1, false)")
    with pytest.raises(UsageError, match="at version 1, below 000004"):
        squash(services, "user-service", 4, server=server, database_urls=(fresh_db,))


def test_the_runner_counts_the_replaced_migrations_as_the_squash(
        services: Path, server: PostgresServer, fresh_db: str) -> None:
    make_runner(services, fresh_db).up(USER, "staging")  # 1, 2, 4 and staging's 5
    assert squash(services, "user-service", 4, server=server).ok
    run = make_runner(services, fresh_db)
    (report,) = run.status(USER, "staging")
    assert report.drift == [] and not report.has_problems
    assert [m.id for m in report.state.applied] == ["000004_squashed_3",
                                                    "000005_staging_qa_accounts"]
    assert report.state.pending == []
    rows = {r["migration"]: r for r in report.migration_rows()}
    assert rows["000001_create_users"]["squashed_into"] == "000004_squashed_3"
    assert rows["000001_create_users"]["drift"] is None
    assert "squashed into 000004_squashed_3" in report.render_list()
    assert run.up(USER, "staging").outcomes == []  # nothing runs twice


def test_a_fresh_database_runs_the_squash_and_the_rest(
        services: Path, server: PostgresServer, fresh_db: str) -> None:
    assert squash(services, "user-service", 4, server=server).ok
    result = make_runner(services, fresh_db).up(USER, "development")
    assert [o.step.migration.id for o in result.outcomes] == [
        "000004_squashed_3", "000003_dev_test_data"]
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(4, False)]
    assert query(fresh_db, "SELECT count(*) FROM user_service.users") == [(2,)]


def test_the_runner_refuses_to_run_a_squash_over_part_of_what_it_replaced(
        services: Path, server: PostgresServer, fresh_db: str) -> None:
    make_runner(services, fresh_db).up(USER, "production", count=2)
    assert squash(services, "user-service", 4, server=server).ok
    with pytest.raises(Refused, match=r"applied 000001_create_users, 000002_add_profiles but "
                                      r"not all the migrations that 000004_squashed_3 replaced"):
        make_runner(services, fresh_db).up(USER, "production")
