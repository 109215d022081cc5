"""The runner's commands through ``migorch`` (in-process ``main``), their JSON and exit codes,
connection settings and password masking, and the Makefile fragment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_migorch.cli.main import main
from pytest_migorch.errors import ConfigurationError, UsageError
from pytest_migorch.postgres.connection import SecretFilter, mask_secret, resolve_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
MAKEFILE = Path(__file__).resolve().parents[2] / "pytest_migorch" / "make" / "migorch.mk"
SECRET = "hunter2-Sup3rSecret"



@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL", "MIGORCH_ROOT", "DB_HOST", "DB_PORT",
                 "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSL_MODE"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, err = run(capsys, "--json", *argv)
    return code, json.loads(out)


@pytest.mark.parametrize("command", ["init", "up", "down", "status", "list", "force", "graph",
                                     "new", "validate"])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: migorch {command}")


# --- connection settings (no server needed) ---------------------------------------------------


def test_settings_priority_and_masking() -> None:
    env = {"DATABASE_URL": f"postgres://app:{SECRET}@db:5432/app?sslmode=disable"
                           "&x-migrations-table=foo&search_path=s",
           "DB_HOST": "ignored"}
    settings = resolve_settings(None, env)
    assert settings.source == "DATABASE_URL"
    assert SECRET not in settings.display and SECRET not in repr(settings)
    assert settings.display == "postgres://app:***@db:5432/app?sslmode=disable"
    assert "x-migrations-table" not in settings.conninfo and "search_path" not in \
        settings.conninfo
    assert settings.lock_database_name == "/app"  # golang-migrate hashes the URL path
    explicit = resolve_settings("postgres://u@h/other", env)
    assert explicit.source == "--database-url" and explicit.lock_database_name == "/other"
    variables = resolve_settings(None, {"DB_HOST": "db", "DB_PORT": "6432", "DB_USER": "u",
                                        "DB_PASSWORD": SECRET, "DB_NAME": "app",
                                        "DB_SSL_MODE": "require"})
    assert variables.source == "DB_* variables"
    assert SECRET not in variables.display and "sslmode=require" in variables.display
    assert variables.lock_database_name == "/app"
    assert resolve_settings("postgres://u@h", {}).lock_database_name is None


def test_bad_settings_are_configuration_errors_without_the_password() -> None:
    with pytest.raises(UsageError, match="DATABASE_URL.*DB_HOST"):
        resolve_settings(None, {})
    with pytest.raises(ConfigurationError) as caught:
        resolve_settings(f"postgres://u:{SECRET}@host:notaport/db", {})
    assert SECRET not in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(ConfigurationError) as caught:
        resolve_settings(f"host=h password={SECRET} nonsense", {})
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigurationError, match="DB_PORT"):
        resolve_settings(None, {"DB_PORT": "five", "DB_PASSWORD": SECRET})
    with pytest.raises(ConfigurationError, match="scheme 'mysql'"):
        resolve_settings("mysql://u@h/db", {})


def test_log_records_are_masked() -> None:
    resolve_settings(f"postgres://u:{SECRET}@h/db", {})
    import logging

    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "conninfo %s", (
        f"password={SECRET} host=h",), None)
    assert SecretFilter().filter(record)
    assert SECRET not in record.getMessage()
    assert mask_secret(f"a {SECRET} b") == "a *** b"


def test_unreachable_server_is_a_clear_error_without_the_password(
        services: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "up", "user-service", "--root", str(services), "--env",
                         "production", "--database-url",
                         f"postgres://app:{SECRET}@127.0.0.1:1/app?connect_timeout=3")
    assert code == 1
    assert "cannot connect to postgres://app:***@127.0.0.1:1/app" in err
    assert SECRET not in out + err


def test_debug_logs_never_show_the_password(services: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")
           and k not in ("DATABASE_URL", "APP_ENV")}
    env.update({"LOG_LEVEL": "debug", "DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_USER": "app",
                "DB_PASSWORD": SECRET, "DB_NAME": "app"})
    done = subprocess.run([sys.executable, "-m", "pytest_migorch", "status", "--all",
                           "--root", str(services), "--env", "production"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert "DEBUG" in done.stderr and "password=***" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_no_connection_settings_is_a_usage_error(services: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--all", "--root", str(services), "--env", "staging")
    assert code == 2 and "no database connection" in err


# --- against PostgreSQL -----------------------------------------------------------------------


def test_up_status_list_down_json(services: Path, fresh_db: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--root", str(services), "--database-url", fresh_db]
    code, doc = run_json(capsys, "up", "--all", "--env", "staging", *common)
    assert code == 0
    assert set(doc) >= {"ok", "command", "environment", "services", "dry_run", "plan",
                        "results", "notes", "sql", "error", "exit_code"}
    assert doc["ok"] is True and doc["environment"] == "staging"
    assert len(doc["results"]) == len(doc["plan"]["steps"]) == 11
    step = doc["plan"]["steps"][0]
    assert set(step) >= {"service", "migration", "risk_level", "tables", "estimated_duration",
                         "transactional", "file"}
    assert doc["plan"]["total_estimated_duration"] == "3m27s"

    code, doc = run_json(capsys, "status", "--all", "--env", "staging", *common)
    assert code == 0 and doc["ok"] is True
    user = next(s for s in doc["services"] if s["service"] == "user-service")
    assert user["golang_migrate"]["version"] == 4 and user["pending"] == []
    assert user["last_runs"][0]["migration"] == "000005_staging_qa_accounts"

    code, doc = run_json(capsys, "list", "user-service", "--env", "staging", *common)
    assert code == 0
    assert [m["status"] for m in doc["services"][0]["migrations"]] == ["completed"] * 4

    code, out, _ = run(capsys, "down", "user-service", "--env", "staging", "--dry-run", *common)
    assert code == 0 and "DELETE FROM users WHERE email LIKE 'qa-%@staging.test'" in out
    assert "Dry run: nothing was changed." in out

    code, out, _ = run(capsys, "down", "user-service", "--env", "staging", "--steps", "2",
                       *common)
    assert code == 0 and "rolled back user-service 000005_staging_qa_accounts" in out
    code, out, _ = run(capsys, "status", "user-service", "--env", "staging", *common)
    assert "pending: 000004_add_users_email_lower_index" in out


def test_exit_codes_of_refusals(services: Path, fresh_db: str,
                                capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    monkeypatch.setenv("APP_ENV", "production")
    root = ["--root", str(services)]
    code, _, err = run(capsys, "up", "--all", *root)
    assert code == 1 and "--yes" in err and "order-service:000004_drop_legacy_status" in err
    code, doc = run_json(capsys, "up", "--all", *root)
    assert code == 1 and doc["ok"] is False and doc["exit_code"] == 1
    assert doc["plan"]["high_risk"] == ["order-service:000004_drop_legacy_status"]
    code, _, err = run(capsys, "up", "--all", "--env", "qa", *root)
    assert code == 2 and "Environment not found in configuration" in err
    code, _, err = run(capsys, "up", "no-such-service", *root)
    assert code == 2 and "unknown service" in err
    code, out, _ = run(capsys, "up", "--all", "--yes", *root)
    assert code == 0 and "Done: applied 9 migration(s)" in out
    code, out, _ = run(capsys, "up", "--all", *root)
    assert code == 0 and "Nothing to do." in out
    edited = services / "user-service/migrations/000002_add_profiles.up.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    code, out, _ = run(capsys, "status", "user-service", *root)
    assert code == 1 and "drift: 000002_add_profiles.up.sql changed since it was applied" in out
    code, _, err = run(capsys, "up", "user-service", *root)
    assert code == 1 and "--allow-drift" in err
    code, _, err = run(capsys, "down", "user-service", "--version", "0", *root)
    assert code == 1 and "order-service:000001_create_orders" in err and "--cascade" in err


def test_force_accepts_minus_one(services: Path, fresh_db: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "force", "user-service", "-1", "--env", "production",
                         "--root", str(services), "--database-url", fresh_db)
    assert code == 0 and doc["command"] == "force"
    assert doc["changes"] == ["public.user_service_schema_migrations set to version -1, clean"]


def test_graph_and_new_through_the_cli(services: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", "--root", str(services), "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart LR")
    code, doc = run_json(capsys, "graph", "order-service", "--root", str(services),
                         "--env", "development")
    assert code == 0 and doc["format"] == "dot" and doc["graph"].startswith("digraph")
    assert {"from": "user-service:3", "to": "order-service:5"} in doc["edges"]
    code, _, err = run(capsys, "graph", "--root", str(services), "--env", "qa")
    assert code == 2
    code, doc = run_json(capsys, "new", "user-service", "add email verified", "--root",
                         str(services), "--depends-on", "000001")
    assert code == 0 and doc["migration"] == "000006_add_email_verified"
    assert Path(doc["up"]).is_file() and Path(doc["down"]).is_file()
    code, _, _ = run(capsys, "validate", "user-service", "--root", str(services))
    assert code == 0


def test_progress_line_on_a_terminal(services: Path) -> None:
    import io
    import time

    from pytest_migorch.cli.output import TextReporter as _TextReporter
    from pytest_migorch.deploy.applying import StepOutcome
    from pytest_migorch.deploy.planning import plan_step
    from pytest_migorch.project.validation import load_project

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    reporter = _TextReporter(stream, services)
    migration = load_project(services).services["user-service"].migrations[1]
    step = plan_step(migration, "up", "user_service")
    reporter.step_started(step, 1, 3)
    time.sleep(0.5)
    reporter.step_finished(StepOutcome(step, "completed", 0.5), 1, 3)
    text = stream.getvalue()
    assert "\r\033[K[1/3] applying user-service 000001_create_users" in text
    assert "/ estimate 5s [#---" in text
    assert text.endswith("[1/3] completed user-service 000001_create_users in 500ms "
                         "(estimate 5s)\n")


# --- the Makefile fragment --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("target", "variables", "expected"), [
    ("db-migrate-up", ["SERVICE_NAME=user-service", "COUNT=2", "APP_ENV=staging"],
     "migorch up user-service --count 2 --root services --env staging"),
    ("db-migrate-up", [], "migorch up --all --root services"),
    ("db-migrate-up", ["JOBS=4", "APP_ENV=staging"],
     "migorch up --all --jobs 4 --root services --env staging"),
    ("db-migrate-down", ["SERVICE_NAME=user-service", "STEPS=3"],
     "migorch down user-service --steps 3 --root services"),
    ("db-migrate-status", ["MIGORCH_ROOT=svc"], "migorch status --all --root svc"),
    ("db-migrate-list", ["SERVICE_NAME=a"], "migorch list a --root services"),
    ("db-migrate-status-orchestrator", ["SERVICE_NAME=a", "APP_ENV=dev"],
     "migorch status a --root services --env dev"),
    ("db-migrate-list-orchestrator", [], "migorch list --all --root services"),
    ("db-migrate-init-orchestrator", ["APP_ENV=production"],
     "migorch init --all --root services --env production"),
    ("db-migrate-init-orchestrator", ["SERVICE_NAME=user-service"],  # the design's example
     "migorch init user-service --root services"),
    ("db-migrate-validate-orchestrator", [], "migorch validate --all --root services"),
    ("db-migrate-force", ["SERVICE_NAME=a", "VERSION=3"], "migorch force a 3 --root services"),
])
def test_makefile_fragment(tmp_path: Path, target: str, variables: list[str],
                           expected: str) -> None:
    (tmp_path / "Makefile").write_text(f"include {MAKEFILE}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "SERVICE_NAME")}
    done = subprocess.run(["make", "-s", "-n", target, *variables], cwd=tmp_path,
                          capture_output=True, text=True, env=env, check=True)
    (command,) = [line for line in done.stdout.splitlines() if line.startswith("migorch")]
    assert " ".join(command.split()) == expected


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_down_needs_a_service(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text(f"include {MAKEFILE}\n")
    done = subprocess.run(["make", "-s", "db-migrate-down"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode != 0 and "set SERVICE_NAME" in done.stderr
