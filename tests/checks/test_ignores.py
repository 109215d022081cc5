"""``-- migorch:ignore-file`` silences a code in a whole file; ignores without a reason and
file-wide ignores that silence nothing are warnings (issue 13)."""

from __future__ import annotations

from pathlib import Path

from test_risk import SCHEMA, make_migration

from pytest_migorch.checks.ignores import file_ignores
from pytest_migorch.checks.migration import MigrationReport, check_migration, migration_analyser
from pytest_migorch.model import Service
from pytest_migorch.sql.analysis import AnalysisCache
from pytest_migorch.sql.split import parse_ignore

TWO_DROPS = ("ALTER TABLE users DROP COLUMN a;\n"
             "ALTER TABLE users DROP COLUMN b;\n")


def check(tmp_path: Path, up: str, down: str | None = None) -> MigrationReport:
    migration = make_migration(tmp_path, up, down, tables=("users",), level="high")
    return check_migration(migration, SCHEMA, AnalysisCache(), lock_timeout_assumed=True)


def codes(report: MigrationReport) -> list[tuple[str, int | None]]:
    return [(f.code, f.line) for f in report.findings + report.comment_findings]


def test_ignore_file_silences_the_code_for_every_statement(tmp_path: Path) -> None:
    assert [c for c, _ in codes(check(tmp_path, TWO_DROPS))] == ["RSK003", "RSK003"]
    report = check(tmp_path, "-- migorch:ignore-file RSK003 both columns unused since v2\n\n"
                   + TWO_DROPS)
    assert codes(report) == []
    assert [(f.code, f.line) for f in report.ignored] == [("RSK003", 3), ("RSK003", 4)]


def test_ignore_file_names_rules_by_name_and_applies_to_its_own_file_only(
        tmp_path: Path) -> None:
    down = "-- migorch:ignore-file drop-column reviewed\nALTER TABLE users DROP COLUMN x;\n"
    report = check(tmp_path, TWO_DROPS, down)
    assert [c for c, _ in codes(report)] == ["RSK003", "RSK003", "SQL005"]  # risk: up only
    unused = [f for f in report.findings if f.code == "SQL005"][0]
    assert unused.file is not None and unused.file.name.endswith(".down.sql")
    assert "ignore-file" in unused.message and "up files only" in unused.message


def test_ignore_file_below_the_first_statement_applies_to_nothing(tmp_path: Path) -> None:
    report = check(tmp_path, TWO_DROPS + "-- migorch:ignore-file RSK003 too late\n")
    assert sorted(codes(report)) == [("RSK003", 1), ("RSK003", 2), ("SQL005", 3)]
    message = [f.message for f in report.findings if f.code == "SQL005"][0]
    assert "top of the file" in message


def test_ignore_file_that_silences_nothing_is_unused(tmp_path: Path) -> None:
    report = check(tmp_path, "-- migorch:ignore-file SQL003 owned elsewhere\n"
                   "ALTER TABLE users ADD COLUMN a int;\n")
    assert codes(report) == [("SQL005", 1)]
    assert "in this file" in report.findings[0].message


def test_an_ignore_without_a_reason_is_a_warning(tmp_path: Path) -> None:
    report = check(tmp_path, "-- migorch:ignore-file RSK003\n"
                   "-- migorch:ignore RSK027\nALTER TABLE users DROP COLUMN a;\n")
    assert [(f.code, f.line) for f in report.comment_findings] == [("SQL009", 1), ("SQL009", 2)]
    assert "ignore-file RSK003` gives no reason" in report.comment_findings[0].message
    with_reason = check(tmp_path, "-- migorch:ignore-file RSK003 dropped on purpose\n"
                        "ALTER TABLE users DROP COLUMN a;\n")
    assert with_reason.comment_findings == []


def test_validate_reports_ignores_without_a_reason(tmp_path: Path) -> None:
    migration = make_migration(tmp_path, "ALTER TABLE users DROP COLUMN a; "
                               "-- migorch:ignore drop-column\n", tables=("users",))
    service = Service(name="user-service", root=tmp_path, migrations_dir=tmp_path)
    findings = migration_analyser(AnalysisCache(), lock_timeout_assumed=True)(service, migration)
    assert [f.code for f in findings] == ["SQL009"]


def test_statement_ignores_do_not_take_ignore_file_comments() -> None:
    assert parse_ignore("-- migorch:ignore-file RSK003 reason") is None
    assert parse_ignore("-- migorch:ignore RSK003 reason") == (("RSK003",), "reason")
    found = file_ignores("-- MIGORCH:IGNORE-FILE rsk003, drop-column why\nSELECT 1;\n")
    assert [(i.codes, i.line, i.reason) for i in found] == [(("RSK003", "drop-column"), 1, "why")]


def test_ignore_of_a_round_trip_code_is_not_judged_by_the_static_checks(tmp_path: Path) -> None:
    # DB012 is the round-trip's: whether the comment silences anything is known only there.
    report = check(tmp_path, "-- migorch:ignore DB012 the rows are sample data\n"
                   "DELETE FROM users WHERE id = 1;\n")
    assert [c for c, _ in codes(report) if c == "SQL005"] == []


def test_ignore_naming_a_round_trip_and_an_idle_static_code_judges_only_the_static_one(
        tmp_path: Path) -> None:
    report = check(tmp_path, "-- migorch:ignore DB011, RSK003 reviewed\n"
                   "ALTER TABLE users ADD COLUMN a int;\n")
    (unused,) = [f for f in report.findings if f.code == "SQL005"]
    assert "`-- migorch:ignore RSK003` silences nothing" in unused.message
    assert "DB011" not in unused.message


def test_ignore_of_a_round_trip_code_no_comment_silences_says_so(tmp_path: Path) -> None:
    report = check(tmp_path, "-- migorch:ignore DB003 the down is known to leave it\n"
                   "ALTER TABLE users ADD COLUMN a int;\n")
    (unused,) = [f for f in report.findings if f.code == "SQL005"]
    assert "DB003: a round-trip finding no comment silences" in unused.message
    assert "not a SQL or risk rule" not in unused.message


def test_the_static_list_of_round_trip_codes_is_the_round_trip_s_own() -> None:
    from pytest_migorch.checks.ignores import ROUND_TRIP_SILENCEABLE
    from pytest_migorch.roundtrip.data_checks import SILENCEABLE
    assert ROUND_TRIP_SILENCEABLE == frozenset(SILENCEABLE)
