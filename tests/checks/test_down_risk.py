"""The risk of a down file, read by the up file's rules (checks/down_risk.py), and the rollback
plan that shows it (no database needed)."""

from __future__ import annotations

from pathlib import Path

from helpers import service_files, write_service

from pytest_migorch.checks.down_risk import down_risk
from pytest_migorch.deploy.planning import Plan, plan_step
from pytest_migorch.deploy.rollback import protected_rollback_refusal
from pytest_migorch.model import Migration, RiskLevel
from pytest_migorch.project.validation import load_project


def migration_with_down(tmp_path: Path, down: str) -> Migration:
    files = service_files(["000001_a"])
    files["000001_a.down.sql"] = down
    write_service(tmp_path, "svc", files)
    return load_project(tmp_path).services["svc"].migrations[1]


def test_a_down_that_drops_a_table_and_a_column_is_high_and_names_the_loss(
        tmp_path: Path) -> None:
    migration = migration_with_down(
        tmp_path, "ALTER TABLE orders DROP COLUMN note;\nDROP TABLE items;\n")
    risk = down_risk(migration, "svc")
    assert risk is not None and risk.level is RiskLevel.HIGH
    assert risk.loses == ("DROP COLUMN orders.note destroys its data",
                          "DROP TABLE items destroys its data")
    assert risk.reasons[1] == "RSK002 drop-table at line 2: DROP TABLE items destroys its data"


def test_a_harmless_down_is_low_and_loses_nothing(tmp_path: Path) -> None:
    risk = down_risk(migration_with_down(tmp_path, "DROP INDEX CONCURRENTLY IF EXISTS i;\n"),
                     "svc")
    assert risk is not None and risk.level is RiskLevel.LOW and risk.loses == ()


def test_ignore_comments_in_a_down_file_are_honoured(tmp_path: Path) -> None:
    risk = down_risk(migration_with_down(
        tmp_path, "-- migorch:ignore RSK002 the table only held a cache\nDROP TABLE c;\n"),
        "svc")
    assert risk is not None and risk.level is RiskLevel.LOW and risk.loses == ()


def test_an_unreadable_statement_makes_the_down_high(tmp_path: Path) -> None:
    risk = down_risk(migration_with_down(
        tmp_path, "DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$;\n"), "svc")
    assert risk is not None and risk.level is RiskLevel.HIGH
    assert "risk unknown, treated as high" in risk.reasons[-1]


def test_rollback_plan_shows_the_risk_and_the_confirmation_names_the_loss(
        tmp_path: Path) -> None:
    migration = migration_with_down(tmp_path, "DROP TABLE items;\n")
    step = plan_step(migration, "down", "svc")
    assert step.risk_level is RiskLevel.HIGH and step.loses == (
        "DROP TABLE items destroys its data",)
    plan = Plan("down", "production", True, [step])
    assert "risk high" in plan.render() and " !  1. svc 000001_a" in plan.render()
    assert plan.to_json()["steps"][0]["loses"] == ["DROP TABLE items destroys its data"]
    assert plan.to_json()["high_risk"] == ["svc:000001_a"]
    assert protected_rollback_refusal(plan) == (
        "environment 'production' is protected: rolling back there loses data:\n"
        "  svc 000001_a: DROP TABLE items destroys its data\n"
        "Review the plan, then pass --yes to roll back.")
    assert plan_step(migration, "up", "svc").loses == ()
