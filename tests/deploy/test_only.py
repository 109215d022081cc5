"""``migorch down <service> --only VERSION`` against a real PostgreSQL: exactly one applied
migration is rolled back, the newer ones stay, and dependents refuse (or cascade)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import make_runner, query

from pytest_migorch.cli.main import main
from pytest_migorch.deploy.runner import Refused
from pytest_migorch.errors import UsageError

ALL = ["notification-service", "order-service", "user-service"]


def statuses(url: str, schema: str) -> dict[str, tuple[Any, ...]]:
    found = query(url, f"SELECT migration_id, status, rollback_version "
                       f"FROM {schema}.migration_executions ORDER BY id")
    return {r[0]: tuple(r[1:]) for r in found}


def gm(url: str, schema: str) -> list[tuple[int, bool]]:
    return [(int(v), bool(d)) for v, d in query(
        url, f"SELECT version, dirty FROM public.{schema}_schema_migrations")]


def test_only_rolls_back_that_migration_and_keeps_the_newer_ones(
        services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(ALL, "staging", allow_high_risk=True)
    result = run.down("user-service", "staging", only=2)
    assert [o.step.migration.qualified_id for o in result.outcomes] == [
        "user-service:000002_add_profiles"]
    rows = statuses(fresh_db, "user_service")
    assert rows["000002_add_profiles"] == ("rolled_back", "000005")
    assert rows["000004_add_users_email_lower_index"][0] == "completed"
    assert rows["000005_staging_qa_accounts"][0] == "completed"
    # golang-migrate's rule: every base migration up to 1 is applied, 2 is not.
    assert gm(fresh_db, "user_service") == [(1, False)]
    assert query(fresh_db, "SELECT to_regclass('user_service.user_profiles')")[0][0] is None
    events = query(fresh_db, "SELECT action, status FROM user_service."
                             "migration_execution_history WHERE migration_id = "
                             "'000002_add_profiles' ORDER BY id")
    assert events[-2:] == [("down", "running"), ("down", "rolled_back")]
    # Applying again re-applies only that one.
    again = run.up(["user-service"], "staging")
    assert [o.step.migration.id for o in again.outcomes] == ["000002_add_profiles"]
    assert gm(fresh_db, "user_service") == [(4, False)]  # 000005 is staging-only


def test_only_refuses_naming_dependents_and_cascade_rolls_them_back_first(
        services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(ALL, "development")
    with pytest.raises(Refused, match=r"depend on it: order-service:000005_dev_sample_orders"
                                      r", user-service:000003_dev_test_data.*--cascade"):
        run.down("user-service", "development", only=2)
    assert {s for s, _ in statuses(fresh_db, "user_service").values()} == {"completed"}
    result = run.down("user-service", "development", only=2, cascade=True)
    assert [o.step.migration.qualified_id for o in result.outcomes] == [
        "order-service:000005_dev_sample_orders",
        "user-service:000003_dev_test_data",
        "user-service:000002_add_profiles"]
    rows = statuses(fresh_db, "user_service")
    assert rows["000004_add_users_email_lower_index"][0] == "completed"
    assert rows["000001_create_users"][0] == "completed"
    assert gm(fresh_db, "user_service") == [(1, False)]


def test_only_refuses_irreversible_and_not_applied_and_bad_versions(
        services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(ALL, "staging", allow_high_risk=True)
    with pytest.raises(Refused, match="000004_drop_legacy_status is irreversible"):
        run.down("order-service", "staging", only=4)
    with pytest.raises(Refused, match="000003_dev_test_data is not applied"):
        run.down("user-service", "staging", only=3)
    with pytest.raises(UsageError, match="no migration with version 9"):
        run.down("user-service", "staging", only=9)
    with pytest.raises(UsageError, match="one of --steps, --version or --only"):
        run.down("user-service", "staging", only=2, steps=1)
    assert {s for s, _ in statuses(fresh_db, "order_service").values()} == {"completed"}


def test_only_from_the_command_line_with_dry_run_and_protection(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    make_runner(services, fresh_db).up(["user-service"], "production")
    base = ["--root", str(services), "down", "user-service", "--only", "2",
            "--database-url", fresh_db, "--env", "production"]
    capsys.readouterr()
    assert main([*base, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "roll back 1 migration(s)" in out and "user-service 000002_add_profiles" in out
    assert "000004" not in out.split("Total")[0]
    assert main(base) == 1
    assert "protected" in capsys.readouterr().err
    assert statuses(fresh_db, "user_service")["000002_add_profiles"][0] == "completed"
    assert main([*base, "--yes"]) == 0
    assert statuses(fresh_db, "user_service")["000002_add_profiles"][0] == "rolled_back"
    assert statuses(fresh_db, "user_service")["000004_add_users_email_lower_index"][0] == \
        "completed"
