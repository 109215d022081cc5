"""Rollback plans through ``migorch down``: each step's risk from its down file, and the
protected environment's confirmation naming what would be lost (real PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_migorch.cli.main import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL", "MIGORCH_LOG_LEVEL", "MIGORCH_ROOT"):
        monkeypatch.delenv(name, raising=False)


def test_down_plans_show_the_risk_and_protected_rollback_names_the_loss(
        services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--root", str(services), "--database-url", fresh_db, "--env", "production"]
    assert main(["up", "user-service", *common]) == 0
    capsys.readouterr()

    assert main(["--json", "down", "user-service", "--steps", "3", "--dry-run", *common]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    steps = {s["migration"]: s for s in plan["steps"]}
    assert steps["000001_create_users"]["risk_level"] == "high"
    assert steps["000001_create_users"]["loses"] == ["DROP TABLE users destroys its data"]
    assert steps["000004_add_users_email_lower_index"]["risk_level"] == "low"
    assert steps["000004_add_users_email_lower_index"]["loses"] == []
    assert plan["high_risk"] == ["user-service:000002_add_profiles",
                                 "user-service:000001_create_users"]

    code = main(["down", "user-service", "--steps", "3", *common])
    out, err = capsys.readouterr()
    assert code == 1
    assert "risk -" not in out and "risk high" in out
    assert err == (
        "migorch: error: environment 'production' is protected: rolling back there loses "
        "data:\n"
        "  user-service 000002_add_profiles: DROP TABLE user_profiles destroys its data\n"
        "  user-service 000001_create_users: DROP TABLE users destroys its data\n"
        "Review the plan, then pass --yes to roll back.\n")
