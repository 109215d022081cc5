"""Adopting migorch on a database golang-migrate manages, through ``migorch``: ``init`` without
an environment, ``status``/``list`` naming what ``init`` would adopt, and ``down`` refusing on
a database that was never initialised (real PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import golang_migrate_applied, query

from pytest_migorch.cli.main import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL", "MIGORCH_LOG_LEVEL", "MIGORCH_ROOT",
                 "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSL_MODE"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, "--json", *argv)
    return code, json.loads(out)


def test_init_without_an_environment_creates_the_tables_and_up_adopts(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    golang_migrate_applied(services, fresh_db)
    common = ["--root", str(services), "--database-url", fresh_db]
    code, out, err = run(capsys, "init", "user-service", *common)
    assert code == 0, err
    assert "created user_service.migration_executions" in out
    assert ("Migration already applied by golang-migrate: public.user_service_schema_migrations"
            " says version 2; the first `up` (or `init --env NAME`) records 2 migration(s) as "
            "applied without running them: 000001_create_users, 000002_add_profiles") in out
    assert query(fresh_db, "SELECT count(*) FROM user_service.migration_executions") == [(0,)]
    code, doc = run_json(capsys, "init", "--all", *common)  # again, and every service
    assert code == 0 and doc["environment"] is None and doc["ok"] is True

    code, doc = run_json(capsys, "status", "user-service", "--env", "production", *common)
    assert code == 0, doc
    assert doc["services"][0]["adoptable"] == ["000001_create_users", "000002_add_profiles"]

    code, out, _ = run(capsys, "up", "user-service", "--env", "production", *common)
    assert code == 0 and "Migration already applied by golang-migrate: adopted 2" in out
    assert "applying user-service 000001_create_users" not in out  # adopted, not run
    assert "applying user-service 000004_add_users_email_lower_index" in out
    # The environment is recorded by that first `up`: the wrong-environment check still works.
    code, out, _ = run(capsys, "status", "user-service", "--env", "staging", *common)
    assert code == 1 and "deployed in this database as environment 'production'" in out
    code, out, _ = run(capsys, "init", "user-service", *common)
    assert code == 0 and "deployed in this database as environment(s) 'production'" in out
    assert "Migration already applied" not in out


def test_init_with_an_environment_still_adopts_at_once(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    golang_migrate_applied(services, fresh_db)
    code, out, _ = run(capsys, "init", "user-service", "--env", "staging", "--root",
                       str(services), "--database-url", fresh_db)
    assert code == 0 and "Migration already applied by golang-migrate: adopted 2" in out
    assert query(fresh_db, "SELECT count(*) FROM user_service.migration_executions "
                           "WHERE environment = 'staging'") == [(2,)]


def test_init_without_an_environment_checks_the_selection(
        services: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "no-such-service", "--root", str(services),
                       "--database-url", "postgres://u@127.0.0.1:1/x")
    assert code == 2 and "unknown service 'no-such-service'" in err


def test_status_and_list_before_init_name_what_init_adopts(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    golang_migrate_applied(services, fresh_db)
    common = ["user-service", "--env", "production", "--root", str(services),
              "--database-url", fresh_db]
    code, out, _ = run(capsys, "status", *common)
    assert code == 1 and "Migration tracking table does not exist" in out
    assert ("Migration already applied by golang-migrate: public.user_service_schema_migrations"
            " says version 2; `migorch init` records 2 migration(s)") in out
    assert "pending: 000001_create_users  (applied by golang-migrate: adopted, not run)" in out
    assert "pending: 000004_add_users_email_lower_index\n" in out + "\n"
    code, out, _ = run(capsys, "list", *common)
    assert code == 0 and "`migorch init` records 2 migration(s)" in out
    assert out.count("[applied by golang-migrate: init/up adopts it]") == 2
    code, doc = run_json(capsys, "list", *common)
    assert [m["adoptable"] for m in doc["services"][0]["migrations"]] == [True, True, False]
    assert query(fresh_db, "SELECT to_regclass('user_service.migration_executions')") == [
        (None,)]  # read-only


def test_down_on_a_database_never_initialised_refuses(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["user-service", "--env", "staging", "--root", str(services),
              "--database-url", fresh_db]
    for extra in ([], ["--dry-run"]):
        code, _, err = run(capsys, "down", *common, *extra)
        assert code == 1
        assert err.startswith("migorch: error: Migration tracking table does not exist: "
                              "user_service.migration_executions is missing")
        assert "Nothing was created or changed" in err and "migorch init user-service" in err
    code, doc = run_json(capsys, "down", *common)
    assert code == 1 and doc["ok"] is False and doc["exit_code"] == 1
    assert query(fresh_db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'user_service'"
                 ) == [(0,)]


# --- the design's messages, first, then the detail ----------------------------------------------


def test_unreachable_server_says_failed_to_create_migrate_instance(
        services: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "user-service", "--root", str(services),
                       "--database-url", "postgres://app:pw@127.0.0.1:1/app?connect_timeout=3")
    assert code == 1
    assert err.startswith("migorch: error: Failed to create migrate instance: cannot connect to "
                          "postgres://app:***@127.0.0.1:1/app")


def test_no_right_to_create_the_tracking_tables_says_failed_to_create_migrate_instance(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    role = f"migorch_ro_{abs(hash(fresh_db)) % 10**8}"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        code, _, err = run(capsys, "init", "user-service", "--env", "staging", "--root",
                           str(services), "--database-url", f"{fresh_db} user={role}")
        assert code == 1
        assert err.startswith("migorch: error: Failed to create migrate instance: creating the "
                              "tracking tables of user_service: permission denied")
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_designs_make_init_runs_as_written(services: Path, fresh_db: str) -> None:
    """`make db-migrate-init-orchestrator SERVICE_NAME=user-service`, no APP_ENV."""
    makefile = Path(__file__).resolve().parents[2] / "pytest_migorch" / "make" / "migorch.mk"
    (services.parent / "Makefile").write_text(f"include {makefile}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "SERVICE_NAME")}
    env["DATABASE_URL"] = fresh_db
    done = subprocess.run(["make", "-s", "db-migrate-init-orchestrator",
                           "SERVICE_NAME=user-service", f"MIGORCH={sys.executable} -m "
                           "pytest_migorch"], cwd=services.parent, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "created user_service.migration_executions" in done.stdout


def test_a_dry_run_before_init_leaves_out_what_up_would_adopt(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The dry run plans what the real run does: golang-migrate's applied migrations are
    adopted by ``up``, not run again, so they are not steps of its plan either."""
    golang_migrate_applied(services, fresh_db)
    common = ["--root", str(services), "--database-url", fresh_db, "--env", "production"]
    code, doc = run_json(capsys, "up", "user-service", "--dry-run", *common)
    assert code == 0, doc
    planned = [step["migration"] for step in doc["plan"]["steps"]]
    assert "000001_create_users" not in planned and "000002_add_profiles" not in planned
    assert "000004_add_users_email_lower_index" in planned
    assert any("Migration already applied by golang-migrate" in note and "`up` records 2" in note
               for note in doc["notes"])
    assert query(fresh_db, "SELECT to_regclass('user_service.migration_executions')") == [(None,)]

    code, doc = run_json(capsys, "up", "user-service", *common)  # the real run agrees
    assert code == 0, doc
    applied = [step["migration"] for step in doc["plan"]["steps"]]
    assert applied == planned
