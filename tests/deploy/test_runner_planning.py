"""Planning without a database: environments, protection, plans, golang-migrate's version and
drift, decided from files and rows (planning.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import service_files, write_service

from pytest_migorch.deploy.planning import (
    Plan,
    ServiceState,
    base_prefix,
    check_environment_name,
    check_schema_collisions,
    format_seconds,
    is_protected,
    plan_step,
    resolve_environment,
)
from pytest_migorch.deploy.tracking import ExecutionRecord, SchemaVersion
from pytest_migorch.errors import ConfigurationError, UsageError
from pytest_migorch.model import RiskLevel
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"


@pytest.mark.parametrize(("base", "applied", "expected"), [
    ([1, 2, 4], [], -1),
    ([1, 2, 4], [1], 1),
    ([1, 2, 4], [1, 2, 3], 2),  # 3 is environment-only: not golang-migrate's business
    ([1, 2, 4], [1, 2, 4], 4),
    ([1, 2, 4], [2, 4], -1),  # a gap at the start: golang-migrate has applied nothing
    ([1, 2, 4], [1, 4], 1),
])
def test_base_prefix(base: list[int], applied: list[int], expected: int) -> None:
    assert base_prefix(base, applied) == expected


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.12, "120ms"), (1.5, "1.5s"), (45, "45s"), (150, "2m30s"), (3600, "1h"),
    (3725, "1h2m5s"), (207, "3m27s"),
])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_environment_from_option_or_app_env() -> None:
    project = load_project(EXAMPLES)
    services = sorted(project.services)
    assert resolve_environment(project, services, "staging", {"APP_ENV": "production"}) \
        == "staging"
    assert resolve_environment(project, services, None, {"APP_ENV": "production"}) \
        == "production"
    with pytest.raises(UsageError, match="pass --env NAME or set APP_ENV"):
        resolve_environment(project, services, None, {})
    with pytest.raises(ConfigurationError, match="Environment not found in configuration"):
        resolve_environment(project, services, "qa", {})


def test_services_without_environments_json(tmp_path: Path) -> None:
    write_service(tmp_path, "plain", {"1_a.up.sql": "SELECT 1;", "1_a.down.sql": "SELECT 1;"})
    project = load_project(tmp_path)
    assert resolve_environment(project, ["plain"], None, {}) == "default"
    assert resolve_environment(project, ["plain"], "anything", {}) == "anything"
    assert is_protected(project, ["plain"], "production")
    assert not is_protected(project, ["plain"], "staging")


def test_protection_is_production_by_default_and_configurable(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["environments.json"] = json.dumps({"environments": {
        "production": {"migrations": []},
        "staging": {"migrations": [], "protected": True},
        "prod": {"migrations": [], "protected": False}}})
    write_service(tmp_path, "svc", files)
    project = load_project(tmp_path)
    assert is_protected(project, ["svc"], "production")
    assert is_protected(project, ["svc"], "staging")
    assert not is_protected(project, ["svc"], "prod")


def test_plan_uses_the_sql_analysis(tmp_path: Path) -> None:
    files = service_files(["000001_a", "000002_b"])
    files["000002_b.up.sql"] = "ALTER TABLE t DROP COLUMN x;\n"
    files["000001_a.up.sql"] = "CREATE TABLE t (id int, x int);\n"
    write_service(tmp_path, "svc", files)
    migrations = load_project(tmp_path).services["svc"].migrations
    drop = plan_step(migrations[2], "up", "svc")  # declared low, does something high
    assert drop.risk_level is RiskLevel.HIGH and drop.declared_risk is RiskLevel.LOW
    assert drop.high_risk
    assert [r.split(" at ")[0] for r in drop.reasons] == ["RSK003 drop-column"]
    assert "line 1" in drop.reasons[0]
    assert drop.tables == ("t",)
    create = plan_step(migrations[1], "up", "svc")
    assert create.risk_level is RiskLevel.LOW and create.estimated_seconds == 1
    down = plan_step(migrations[1], "down", "svc")
    # Its down file (the helper's DROP TABLE t) is read by the same rules: high, and a loss.
    assert down.risk_level is RiskLevel.HIGH and down.file.name.endswith(".down.sql")
    assert down.loses == ("DROP TABLE t destroys its data",)
    plan = Plan("up", "production", True, [create, drop])
    text = plan.render()
    assert "Plan: apply 2 migration(s) in environment 'production' (protected)" in text
    assert " !  2. svc 000002_b" in text and "- RSK003 drop-column at line 1" in text
    assert text.endswith("Total estimated duration: 2s")
    data = plan.to_json()
    assert data["total_estimated_seconds"] == 2
    assert data["high_risk"] == ["svc:000002_b"]


def test_declared_level_higher_than_derived_wins(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {"risk_level": "high"}}))
    migration = load_project(tmp_path).services["svc"].migrations[1]
    assert plan_step(migration, "up", "svc").risk_level is RiskLevel.HIGH


def record(migration_id: str, status: str = "completed", checksum: str | None = None,
           environment: str = "production", **metadata: Any) -> ExecutionRecord:
    now = datetime.now(timezone.utc)
    return ExecutionRecord(
        id=1, migration_id=migration_id, migration_version=migration_id.split("_")[0],
        environment=environment, status=status, started_at=now, completed_at=now,
        duration_ms=1, executed_by="me@host", checksum=checksum, dependencies=[],
        metadata=metadata, error_message=None, rollback_version=None, created_at=now,
        updated_at=now)


def state_of(root: Path, service: str, env: str, records: list[ExecutionRecord],
             gm: SchemaVersion | None = None) -> ServiceState:
    project = load_project(root)
    order = ProjectGraph(project).order(service, env)
    return ServiceState.build(project.services[service], env, order, True,
                              gm or SchemaVersion(exists=True), records)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_state_applied_pending_and_drift(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(["000001_a", "000002_b", "000003_c"]))
    migrations = tmp_path / "svc/migrations"
    records = [
        record("000001_a", checksum=sha(migrations / "000001_a.up.sql")),
        record("000002_old_name", checksum="x"),  # renamed since applied
        record("000009_gone", checksum="y"),  # its file was deleted
        record("000003_c", status="failed"),
        record("000001_a", environment="staging"),
    ]
    state = state_of(tmp_path, "svc", "production", records)
    assert [m.id for m in state.applied] == ["000001_a", "000002_b"]
    assert [m.id for m in state.pending] == ["000003_c"]
    assert [r.migration_id for r in state.failed] == ["000003_c"]
    assert state.other_environments == ["staging"]
    assert {d.kind for d in state.drift()} == {"renamed", "missing"}
    (migrations / "000001_a.up.sql").write_text("CREATE TABLE t (id bigint);\n")
    changed = [d for d in state.drift() if d.kind == "changed"]
    assert [d.migration_id for d in changed] == ["000001_a"]
    assert "changed since it was applied" in changed[0].message
    assert state.prefix() == 2


def test_dirty_rows_are_the_unfinished_non_transactional_ones(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(["000001_a", "000002_b"]))
    state = state_of(tmp_path, "svc", "production", [
        record("000001_a", status="failed"),
        record("000002_b", status="failed", dirty=True, transactional=False),
    ], SchemaVersion(2, True, True))
    assert [r.migration_id for r in state.dirty_records] == ["000002_b"]


def test_production_in_capitals_is_protected(tmp_path: Path) -> None:
    """Production-like names are protected whatever their case (``Production``, ``PROD``)."""
    write_service(tmp_path, "plain", service_files(["000001_a"]))
    project = load_project(tmp_path)
    assert is_protected(project, ["plain"], "Production")
    assert is_protected(project, ["plain"], "PROD")


@pytest.mark.parametrize("case", ["symlink-loop", "services-sharing-a-schema"])
def test_runner_refuses_bad_trees_with_the_finding_not_a_traceback(
    tmp_path: Path, case: str
) -> None:
    """Before any connection: a looping link used to raise ``RuntimeError: Symlink loop``
    while the error was rendered; two services in one schema used to deploy into it."""
    from helpers import make_runner

    migrations = write_service(tmp_path, "user-service", service_files(["000001_a"]))
    if case == "symlink-loop":
        (migrations / "000002_b.up.sql").symlink_to("000002_b.up.sql")
        expected = "FIL015"
    else:
        write_service(tmp_path, "user_service", service_files(["000001_a"]))
        expected = "FIL018"
    runner = make_runner(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match=expected):
        runner.check_static(["user-service"])


@pytest.mark.parametrize("env", ["production", "Production", "PROD", "prod"])
def test_production_is_protected_by_default_in_any_case(tmp_path: Path, env: str) -> None:
    write_service(tmp_path, "bare", {"000001_a.up.sql": "SELECT 1;\n",
                                     "000001_a.down.sql": "SELECT 1;\n"})
    declared = service_files(["000001_a"], environments={env: []})
    write_service(tmp_path, "declared", declared)
    project = load_project(tmp_path)
    assert is_protected(project, ["bare"], env)
    assert is_protected(project, ["declared"], env)
    assert not is_protected(project, ["bare"], "productions")


def test_schema_collisions_name_both_services(tmp_path: Path) -> None:
    long_a, long_b = "s" * 63 + "-a", "s" * 63 + "-b"
    for name in ("user-service", "user_service", long_a, long_b, "other"):
        write_service(tmp_path, name, service_files(["000001_a"]))
    project = load_project(tmp_path)
    assert project.services[long_a].schema == "s" * 63
    with pytest.raises(ConfigurationError, match=r"services user-service and user_service both "
                                                 r"map to schema 'user_service'.*share tracking"):
        check_schema_collisions(project, ["user-service"])
    with pytest.raises(ConfigurationError, match=rf"{long_a} and {long_b} both map"):
        check_schema_collisions(project, [long_b])
    check_schema_collisions(project, ["other"])


def test_environment_longer_than_the_tracking_column_is_bad_usage() -> None:
    check_environment_name("e" * 50)
    with pytest.raises(UsageError, match="51 characters long.*at most 50"):
        check_environment_name("e" * 51)
