"""The runner never applies twice, never says "done" when nothing was applied, never hangs.

Each test reproduces, on a real PostgreSQL, a way a deploy went wrong, and checks what the
runner does now.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from helpers import make_runner, query
from psycopg.conninfo import conninfo_to_dict

from pytest_migorch.deploy.applying import NullReporter
from pytest_migorch.deploy.runner import Refused
from pytest_migorch.deploy.session import Session
from pytest_migorch.deploy.tracking import Tracking
from pytest_migorch.errors import (
    ConfigurationError,
    DatabaseError,
    LockTimeout,
    MigrationFailed,
    UsageError,
)
from pytest_migorch.postgres.connection import connect, resolve_settings
from pytest_migorch.project.scaffold import create_migration
from pytest_migorch.project.validation import load_project


def spellings(conninfo: str) -> tuple[str, str]:
    """One database as two URLs: the name in the path, and in ``?dbname=``."""
    params = conninfo_to_dict(conninfo)
    user = quote(str(params.get("user", "postgres")), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    rest = {k: str(v) for k, v in params.items()
            if k in ("host", "port", "sslmode")}
    host = ""
    if not str(rest.get("host", "/")).startswith("/"):
        host = rest.pop("host")
    path_url = f"postgres://{auth}@{host}/{params['dbname']}?{urlencode(rest)}"
    query_url = f"postgres://{auth}@{host}?{urlencode({**rest, 'dbname': params['dbname']})}"
    return path_url, query_url


def add_migration(root: Path, name: str, sql_text: str, *, transactional: bool = True,
                  service: str = "user-service", depends_on: tuple[str, ...] = ("000001",),
                  down: str = "SELECT 1;\n") -> str:
    """A new migration at the end of ``service`` whose up file is ``sql_text``."""
    created = create_migration(load_project(root), service, name, depends_on=list(depends_on))
    created.up.write_text(sql_text)
    created.down.write_text(down)
    deps_file = root / service / "migrations" / "dependencies.json"
    deps = json.loads(deps_file.read_text())
    deps["migrations"][created.migration_id.split("_")[0]]["transactional"] = transactional
    deps_file.write_text(json.dumps(deps, indent=2))
    return created.migration_id


def executions(url: str, schema: str = "user_service") -> dict[str, tuple[Any, ...]]:
    """migration_id -> (status, error_message, metadata)."""
    return {r[0]: r[1:] for r in query(
        url, f"SELECT migration_id, status, error_message, metadata FROM "
             f"{schema}.migration_executions ORDER BY id")}


def test_two_spellings_of_one_url_take_the_same_lock(services: Path, fresh_db: str) -> None:
    path_url, query_url = spellings(fresh_db)
    first = Session(connect(resolve_settings(path_url, {})), resolve_settings(path_url, {}))
    try:
        assert query(path_url, "SELECT 1") == [(1,)] == query(query_url, "SELECT 1")
        first.lock(["user_service"], 1.0, NullReporter())
        with pytest.raises(LockTimeout, match="can't acquire database lock"):
            make_runner(services, query_url, lock_timeout=0.3).up(["user-service"],
                                                                   "production")
        assert query(fresh_db, "SELECT count(*) FROM pg_namespace "
                               "WHERE nspname = 'user_service'") == [(0,)]
    finally:
        first.close()
    make_runner(services, query_url).up(["user-service"], "production", count=1)


def test_a_running_row_of_a_live_backend_is_never_recovered(services: Path,
                                                            fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production", count=1)
    with psycopg.connect(fresh_db, autocommit=True) as live:
        pid = live.info.backend_pid
        tracking = Tracking(live, "user_service")
        tracking.start(migration_id="000002_add_profiles", migration_version="000002",
                       environment="production", action="up", executed_by="ci@other",
                       checksum=None, dependencies=[],
                       metadata={"action": "up", "transactional": True, "backend_pid": pid})
        with pytest.raises(Refused, match=rf"being run right now .*pid {pid}"):
            run.up(["user-service"], "production")
        found: list[Any] = query(fresh_db, "SELECT status, error_message FROM "
                                           "user_service.migration_executions "
                                           "WHERE migration_version = '000002'")
        assert found == [("running", None)]


def test_non_transactional_file_that_leaves_a_transaction_open_is_a_failure(
        services: Path, fresh_db: str) -> None:
    bad = add_migration(services, "seed", "CREATE TABLE early (id int);\n"
                        "BEGIN;\nINSERT INTO users (email) VALUES ('a@example.com');\n",
                        transactional=False)
    later = add_migration(services, "later", "CREATE TABLE later (id int);\n",
                          depends_on=(bad.split("_")[0],))
    run = make_runner(services, fresh_db)
    with pytest.raises(MigrationFailed, match=r"seed.up.sql:2: the file leaves a transaction "
                                              r"open") as failed:
        run.up(["user-service"], "production")
    result = failed.value.result  # type: ignore[attr-defined]
    assert [o.status for o in result.outcomes][-1] == "failed"
    assert all(o.step.migration.id != later for o in result.outcomes)
    status, error, metadata = executions(fresh_db)[bad]
    assert status == "failed" and metadata["dirty"] is True
    assert metadata["statements_done"] == 1  # CREATE TABLE early, not what the block did
    assert "transaction open" in error
    assert later not in executions(fresh_db)
    assert query(fresh_db, "SELECT count(*) FROM user_service.users") == [(0,)]
    assert query(fresh_db, "SELECT to_regclass('user_service.early') IS NOT NULL") == [(True,)]
    version = int(bad.split("_")[0])
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(version, True)]


def test_non_transactional_file_with_its_own_committed_block_applies(
        services: Path, fresh_db: str) -> None:
    block = add_migration(services, "block", "BEGIN;\nINSERT INTO users (email) "
                          "VALUES ('a@example.com');\nCOMMIT;\nSELECT 1;\n",
                          transactional=False)
    make_runner(services, fresh_db).up(["user-service"], "production")
    status, _, metadata = executions(fresh_db)[block]
    assert status == "completed" and metadata["statements_done"] == 4
    assert query(fresh_db, "SELECT count(*) FROM user_service.users") == [(1,)]


def execute(url: str, text: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(text)


def owner(url: str, table: str) -> str:
    return str(query(url, "SELECT tableowner FROM pg_tables WHERE schemaname = 'user_service' "
                          "AND tablename = %s", (table,))[0][0])


def test_a_role_set_by_one_migration_does_not_leak_into_the_next(
        services: Path, fresh_db: str) -> None:
    role = f"r_{conninfo_to_dict(fresh_db)['dbname']}"[:63]
    login = str(query(fresh_db, "SELECT session_user")[0][0])
    execute(fresh_db, f'CREATE ROLE "{role}"')
    try:
        first = add_migration(services, "as_role", f'SET ROLE "{role}";\n')
        add_migration(services, "after_role", "CREATE TABLE after_role (id int);\n",
                      depends_on=(first.split("_")[0],))
        second = add_migration(services, "as_session", f'SET SESSION AUTHORIZATION "{role}";\n',
                               transactional=False)
        add_migration(services, "after_session", "CREATE TABLE after_session (id int);\n",
                      depends_on=(second.split("_")[0],))
        result = make_runner(services, fresh_db).up(["user-service"], "production")
        assert all(o.status == "completed" for o in result.outcomes)
        assert owner(fresh_db, "after_role") == login
        assert owner(fresh_db, "after_session") == login
        assert set(query(fresh_db, "SELECT DISTINCT status FROM "
                                   "user_service.migration_executions")) == {("completed",)}
    finally:
        execute(fresh_db, f'DROP OWNED BY "{role}"')
        execute(fresh_db, f'DROP ROLE "{role}"')


def test_a_lock_on_the_tracking_table_bounds_up_and_status(services: Path,
                                                           fresh_db: str) -> None:
    run = make_runner(services, fresh_db, lock_timeout=0.5)
    run.up(["user-service"], "production")
    run.down("user-service", "production", confirmed=True)  # 000004's row: rolled_back
    with psycopg.connect(fresh_db, application_name="holder") as holder:
        holder.execute("SELECT * FROM user_service.migration_executions FOR UPDATE")
        pid = holder.info.backend_pid
        with pytest.raises(LockTimeout, match=rf"user_service\.migration_executions held "
                                              rf"\(RowShareLock\) by pid {pid} \(holder"):
            run.up(["user-service"], "production")
        holder.rollback()
        holder.execute("LOCK TABLE user_service.migration_executions IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(LockTimeout, match=rf"migration_executions held "
                                              rf"\(AccessExclusiveLock\) by pid {pid}"):
            run.status(["user-service"], "production")
    # The lock was released with the failed run: the next one proceeds.
    assert query(fresh_db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    assert len(run.up(["user-service"], "production").outcomes) == 1


UNREACHABLE = "postgres://nobody@127.0.0.1:9/none?connect_timeout=1"


def test_colliding_schemas_and_long_environments_refuse_before_connecting(
        services: Path) -> None:
    shutil.copytree(services / "notification-service", services / "user_service")
    with pytest.raises(ConfigurationError, match="user-service and user_service both map"):
        make_runner(services, UNREACHABLE).up(["user-service"], "production")
    shutil.rmtree(services / "user_service")
    with pytest.raises(UsageError, match="at most 50"):
        make_runner(services, UNREACHABLE).status(["notification-service"], "n" * 51)


def test_an_interrupted_rollback_still_counts_as_applied(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("UPDATE user_service.migration_executions SET status = 'running', "
                     "metadata = metadata || '{\"action\": \"down\", \"backend_pid\": 1}' "
                     "WHERE migration_version = '000002'")
    (report,) = run.status(["user-service"], "production")
    body = report.to_json()
    assert body["pending"] == []
    assert "000002_add_profiles" in body["applied"]
    assert body["running"][0]["state"] == "interrupted"
    result = run.up(["user-service"], "production")  # recovered: still applied, nothing to do
    assert result.outcomes == []
    assert any("still applied" in n for n in result.notes)


def test_a_terminated_backend_says_what_ran_and_what_the_records_say(
        services: Path, fresh_db: str) -> None:
    killer = add_migration(services, "kill", "SELECT pg_terminate_backend(pg_backend_pid());\n")
    run = make_runner(services, fresh_db)
    with pytest.raises(DatabaseError, match=rf"while applying user-service:{killer}\. The "
                                            r"records now say 'running'.*next run will "
                                            r"record it as interrupted.*run again") as lost:
        # A function call is opaque to the analysis, so production needs the confirmation.
        run.up(["user-service"], "production", allow_high_risk=True)
    body = lost.value.result.to_json()  # type: ignore[attr-defined]
    assert body["ok"] is False and body["results"][-1]["status"] == "failed"
    assert body["results"][-1]["migration"] == killer
    assert body["connection_lost"]["running"]["migration"] == killer
    assert body["connection_lost"]["record"]["status"] == "running"
    assert "run again" in body["connection_lost"]["next_run"]
    (report,) = run.status(["user-service"], "production")
    assert report.to_json()["running"][0]["state"] == "interrupted"


def test_a_migration_that_drops_its_own_schema_is_not_re_adopted(
        services: Path, fresh_db: str) -> None:
    dropper = add_migration(services, "drop_schema", "DROP SCHEMA user_service CASCADE;\n",
                            transactional=False)
    run = make_runner(services, fresh_db)
    with pytest.raises(MigrationFailed, match=rf"{dropper} destroyed migorch's records"):
        run.up(["user-service"], "production", allow_high_risk=True)
    version = int(dropper.split("_")[0])
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(version, True)]
    for attempt in (run.up, run.init):
        with pytest.raises(Refused, match=r"records are gone.*says version \d+ \(dirty\).*"
                                          r"migorch force user-service <version>"):
            attempt(["user-service"], "production")
    assert query(fresh_db, "SELECT count(*) FROM pg_namespace "
                           "WHERE nspname = 'user_service'") == [(0,)]
    run.force("user-service", -1, "production")  # a person decided: nothing of it is left
    assert len(run.up(["user-service"], "production", count=3).outcomes) == 3
