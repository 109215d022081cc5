"""A transaction a file never closes (SQL008), and the unknown risk of statements nobody can see
into, up to the deploy plan's protected-environment gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import service_files, write_service
from test_risk import SCHEMA, check, codes, make_migration, only

from pytest_migorch.checks.migration import check_migration, plan_entry
from pytest_migorch.deploy.planning import Plan, plan_step
from pytest_migorch.findings import Severity
from pytest_migorch.model import RiskLevel
from pytest_migorch.project.validation import load_project
from pytest_migorch.sql.analysis import AnalysisCache

DO_DROP = "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$;\n"


# --- SQL008 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transactional", [True, False])
def test_a_begin_without_commit_is_an_error_at_the_begin(tmp_path: Path,
                                                         transactional: bool) -> None:
    sql = "-- add a row\nBEGIN;\nINSERT INTO users (id) VALUES (1);\n"
    report = check(tmp_path, sql, tables=("users",), level="low", transactional=transactional)
    finding = only(report, "SQL008")
    assert finding.line == 2 and finding.severity is Severity.ERROR
    assert "BEGIN at line 2" in finding.message


def test_start_transaction_after_a_commit_is_still_open(tmp_path: Path) -> None:
    sql = ("BEGIN;\nINSERT INTO users (id) VALUES (1);\nCOMMIT;\n"
           "START TRANSACTION;\nINSERT INTO users (id) VALUES (2);\n")
    report = check(tmp_path, sql, tables=("users",), level="low", transactional=False)
    assert codes(report) == [("SQL008", 4)]


@pytest.mark.parametrize("sql", [
    "BEGIN;\nINSERT INTO users (id) VALUES (1);\nCOMMIT;\n",
    "BEGIN;\nINSERT INTO users (id) VALUES (1);\nROLLBACK;\n",
    "START TRANSACTION;\nINSERT INTO users (id) VALUES (1);\nEND;\n",
    "INSERT INTO users (id) VALUES (1);\n",
])
def test_closed_or_no_transactions_are_fine(tmp_path: Path, sql: str) -> None:
    report = check(tmp_path, sql, tables=("users",), level="low", transactional=False)
    assert "SQL008" not in [f.code for f in report.findings]


def test_an_unclosed_begin_in_the_down_file_is_reported_too(tmp_path: Path) -> None:
    report = check(tmp_path, "SELECT 1;", "BEGIN;\nDELETE FROM users WHERE id = 1;\n",
                   tables=(), level="low", transactional=False)
    finding = only(report, "SQL008")
    assert finding.file is not None and finding.file.name.endswith(".down.sql")


# --- unknown risk -------------------------------------------------------------------------------


def test_a_do_block_makes_the_risk_unknown_and_the_gate_high(tmp_path: Path) -> None:
    migration = make_migration(tmp_path, DO_DROP, tables=("users",), level="low")
    report = check_migration(migration, SCHEMA, AnalysisCache(), lock_timeout_assumed=True)
    assert report.risk_unknown and report.opaque == [("DO", 1)]
    assert report.to_json()["risk_unknown"] is True
    entry = plan_entry(migration, report)
    assert entry.risk_effective is RiskLevel.LOW  # nothing the rules can see
    assert entry.opaque_lines == (1,)
    assert entry.gate_level is RiskLevel.HIGH and entry.needs_confirmation
    assert "risk unknown: treated as high" in entry.render()
    assert entry.to_json()["needs_confirmation"] is True
    assert entry.unknown_reasons == (
        "SQL002 statement-not-analysed at line 1: not analysed, risk unknown (treated as high)",)


def test_an_ignore_without_a_reason_silences_the_warning_but_not_the_gate(
        tmp_path: Path) -> None:
    sql = "-- migorch:ignore SQL002\n" + DO_DROP
    migration = make_migration(tmp_path, sql, tables=("users",), level="low")
    report = check_migration(migration, SCHEMA, AnalysisCache(), lock_timeout_assumed=True)
    assert "SQL002" not in [f.code for f in report.findings]
    assert plan_entry(migration, report).needs_confirmation


@pytest.mark.parametrize("comment", ["-- migorch:ignore SQL002 reviewed: drops nothing in prod",
                                     "-- migorch:ignore statement-not-analysed checked by ops"])
def test_an_ignore_with_a_reason_clears_the_unknown_risk(tmp_path: Path, comment: str) -> None:
    migration = make_migration(tmp_path, comment + "\n" + DO_DROP, tables=("users",), level="low")
    report = check_migration(migration, SCHEMA, AnalysisCache(), lock_timeout_assumed=True)
    assert not report.risk_unknown
    entry = plan_entry(migration, report)
    assert entry.gate_level is RiskLevel.LOW and not entry.needs_confirmation


def test_only_unreviewed_statements_count(tmp_path: Path) -> None:
    sql = ("-- migorch:ignore SQL002 reviewed\nDO $$ BEGIN NULL; END $$;\n"
           "SELECT my_function();\n")
    report = check(tmp_path, sql, tables=("users",), level="low")
    assert report.opaque == [("SELECT", 3)]


def test_the_plan_gate_treats_an_unknown_risk_as_high(tmp_path: Path) -> None:
    files = service_files(["000001_a", "000002_b"])
    files["000001_a.up.sql"] = "CREATE TABLE users (id int);\n"
    files["000002_b.up.sql"] = DO_DROP
    write_service(tmp_path, "svc", files)
    migrations = load_project(tmp_path).services["svc"].migrations
    step = plan_step(migrations[2], "up", "svc")  # declared low
    assert step.high_risk and step.risk_level is RiskLevel.HIGH
    assert any("risk unknown" in reason for reason in step.reasons)
    plan = Plan("up", "production", True, [plan_step(migrations[1], "up", "svc"), step])
    assert [s.migration.id for s in plan.high_risk] == ["000002_b"]
