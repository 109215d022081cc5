"""Risk rules, the affects_tables cross-check, declared risk levels, ignore comments, the plan."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pytest_migorch.checks import migration as risk
from pytest_migorch.checks import rules as risk_rules
from pytest_migorch.checks.migration import MigrationReport, check_migration, plan_entry
from pytest_migorch.findings import Family, Finding, Severity
from pytest_migorch.model import Migration, MigrationFile, MigrationMeta, RiskLevel
from pytest_migorch.sql.analysis import RULES as ANALYSIS_RULES
from pytest_migorch.sql.analysis import AnalysisCache

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "sql-rules.md"
SCHEMA = "user_service"

_UNSET = object()


def make_migration(tmp_path: Path, up: str, down: str | None = None, *,
                   tables: tuple[str, ...] | None = (), level: str = "high",
                   transactional: bool = True, duration: str = "45s") -> Migration:
    """A migration 000002_change of user-service; ``tables=None`` means no dependencies.json."""
    directory = tmp_path / "user-service" / "migrations"
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, MigrationFile] = {}
    for direction, text in (("up", up), ("down", down)):
        if text is None:
            continue
        path = directory / f"000002_change.{direction}.sql"
        path.write_text(text, encoding="utf-8")
        files[direction] = MigrationFile(path=path, version=2, version_text="000002",
                                         title="change", direction=direction,  # type: ignore[arg-type]
                                         extension="sql", environment=None)
    meta = None
    if tables is not None:
        meta = MigrationMeta(affects_tables=tables, risk_level=RiskLevel(level),
                             estimated_duration=duration, estimated_seconds=45.0,
                             transactional=transactional,
                             file=directory / "dependencies.json", line=7)
    return Migration(service="user-service", version=2, version_text="000002", title="change",
                     environment=None, up=files.get("up"), down=files.get("down"), meta=meta)


def check(tmp_path: Path, up: str, down: str | None = None, **kwargs: object) -> MigrationReport:
    assumed = bool(kwargs.pop("lock_timeout_assumed", True))
    migration = make_migration(tmp_path, up, down, **kwargs)  # type: ignore[arg-type]
    return check_migration(migration, SCHEMA, AnalysisCache(), lock_timeout_assumed=assumed)


def codes(report: MigrationReport) -> list[tuple[str, int | None]]:
    return [(f.code, f.line) for f in report.findings]


def only(report: MigrationReport, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.findings
    return found[0]


# --- the three cases of the issue ---------------------------------------------------------------


def test_insert_into_an_undeclared_table_is_an_error_at_its_line(tmp_path: Path) -> None:
    report = check(tmp_path, "INSERT INTO users (id) VALUES (1);\n\nINSERT INTO audit_log (m)\n"
                   "  SELECT 'x' FROM users;\n", tables=("users",), level="low")
    finding = only(report, "SQL003")
    assert finding.severity is Severity.ERROR and finding.line == 3
    assert "audit_log" in finding.message and "written" in finding.message
    assert finding.file is not None and finding.file.name == "000002_change.up.sql"
    assert (finding.service, finding.migration) == ("user-service", "000002_change")
    assert report.tables_touched == ["users", "audit_log"]
    assert report.derived_level is RiskLevel.LOW


def test_dropping_a_column_while_declaring_low_names_rule_and_statement(tmp_path: Path) -> None:
    report = check(tmp_path, "-- remove the legacy flag\nSET lock_timeout = '5s';\n"
                   "ALTER TABLE users DROP COLUMN legacy;\n", tables=("users",), level="low")
    assert codes(report) == [("RSK003", 3), ("RSK028", 3)]
    warning, error = report.findings
    assert warning.severity is Severity.WARNING and "implies high risk" in warning.message
    assert error.severity is Severity.ERROR and error.family is Family.RISK
    assert "RSK003 drop-column at 000002_change.up.sql:3" in error.message
    assert "'low'" in error.message and "'high'" in error.message
    assert "dependencies.json line 7" in error.message
    assert report.derived_level is RiskLevel.HIGH and report.effective_level is RiskLevel.HIGH


def test_non_concurrent_index_on_an_existing_table(tmp_path: Path) -> None:
    report = check(tmp_path, "CREATE TABLE other (id int);\nCREATE INDEX other_id ON other (id);\n"
                   "CREATE INDEX users_email ON users (email);\n",
                   tables=("users", "other"), level="high")
    assert codes(report) == [("RSK008", 3)]
    assert "users_email on users without CONCURRENTLY" in report.findings[0].message


# --- exemptions and levels ----------------------------------------------------------------------


def test_objects_created_in_the_same_migration_are_exempt(tmp_path: Path) -> None:
    sql = ("CREATE TABLE t (id int, o int);\n"
           "CREATE INDEX t_o ON t (o);\n"
           "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (o) REFERENCES orgs (id);\n"
           "ALTER TABLE t ADD CONSTRAINT u UNIQUE (id), ALTER COLUMN o SET NOT NULL;\n"
           "ALTER TABLE t ADD COLUMN x int NOT NULL, ALTER COLUMN id TYPE bigint;\n"
           "UPDATE t SET o = 1;\nDROP INDEX t_o;\nALTER TABLE t RENAME TO t2;\n"
           "ALTER TABLE t2 DROP COLUMN x;\n")
    report = check(tmp_path, sql, tables=("t", "t2"), level="low", lock_timeout_assumed=False)
    # Only the foreign key's lock on the existing table orgs needs a lock_timeout.
    assert codes(report) == [("RSK027", 3)]
    assert "locks orgs" in report.findings[0].message
    assert report.derived_level is RiskLevel.LOW
    assert report.tables_touched == ["t", "t2"]
    assert report.tables_read == ["orgs"]


@pytest.mark.parametrize("sql,rule,level", [
    ("DROP SCHEMA legacy CASCADE", "RSK001", "high"),
    ("DROP TABLE users", "RSK002", "high"),
    ("ALTER TABLE users ALTER COLUMN id TYPE bigint", "RSK004", "high"),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL", "RSK005", "high"),
    ("ALTER TABLE users ADD COLUMN plan text NOT NULL", "RSK006", "high"),
    ("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()", "RSK007", "high"),
    ("ALTER TABLE users ADD COLUMN n bigserial", "RSK007", "high"),
    ("DROP INDEX users_email", "RSK009", "low"),
    ("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id)", "RSK011",
     "high"),
    ("ALTER TABLE users ADD CONSTRAINT ck CHECK (age > 0)", "RSK012", "high"),
    ("ALTER TABLE users ADD CONSTRAINT u UNIQUE (email)", "RSK013", "high"),
    ("ALTER TABLE users ADD PRIMARY KEY (id)", "RSK013", "high"),
    ("ALTER TABLE users RENAME TO members", "RSK014", "high"),
    ("ALTER TABLE users SET SCHEMA archive", "RSK014", "high"),
    ("ALTER TABLE users RENAME COLUMN a TO b", "RSK015", "high"),
    ("TRUNCATE users", "RSK016", "high"),
    ("UPDATE users SET active = true", "RSK018", "high"),
    ("DELETE FROM users", "RSK019", "high"),
    ("VACUUM FULL users", "RSK021", "high"),
    ("CLUSTER users USING users_pkey", "RSK022", "high"),
    ("LOCK TABLE users", "RSK023", "high"),
    ("REINDEX TABLE users", "RSK024", "high"),
    ("ALTER TABLE users SET UNLOGGED", "RSK025", "high"),
    ("DROP TYPE mood CASCADE", "RSK026", "high"),
])
def test_each_rule_fires_with_its_level(tmp_path: Path, sql: str, rule: str, level: str) -> None:
    report = check(tmp_path, sql + ";", tables=None)
    fired = [f.code for f in report.fired if f.code != "RSK010"]  # VACUUM needs no transaction
    assert fired == [rule]
    assert report.derived_level is RiskLevel(level)
    assert [(f.code, f.line) for f in report.findings if f.code == rule] == [(rule, 1)]


@pytest.mark.parametrize("sql", [
    "ALTER TABLE users ADD COLUMN bio text",
    "ALTER TABLE users ADD COLUMN created timestamptz NOT NULL DEFAULT now()",
    "ALTER TABLE users ALTER COLUMN bio SET DEFAULT ''",
    "ALTER TABLE users ALTER COLUMN bio DROP NOT NULL",
    "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id) NOT VALID",
    "ALTER TABLE users ADD CONSTRAINT ck CHECK (age > 0) NOT VALID",
    "ALTER TABLE users VALIDATE CONSTRAINT ck",
    "ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email_key",
    "CREATE TABLE profiles (id int REFERENCES users (id))",
    "CREATE VIEW active AS SELECT * FROM users WHERE active",
    "INSERT INTO users (id) VALUES (1)",
    "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
    "COMMENT ON TABLE users IS 'people'",
])
def test_low_risk_changes_fire_nothing(tmp_path: Path, sql: str) -> None:
    report = check(tmp_path, sql + ";", tables=None)
    assert report.fired == [] and report.findings == []
    assert report.derived_level is RiskLevel.LOW


def test_update_with_where_is_medium_without_a_warning(tmp_path: Path) -> None:
    report = check(tmp_path, "UPDATE users SET plan = 'free' WHERE plan IS NULL;",
                   tables=("users",), level="low")
    assert report.derived_level is RiskLevel.MEDIUM
    assert [f.code for f in report.fired] == ["RSK020"]
    assert codes(report) == [("RSK028", 1)]
    assert "RSK020 changes-existing-rows" in report.findings[0].message
    assert check(tmp_path, "UPDATE users SET plan = 'x' WHERE id = 1;", tables=("users",),
                 level="medium").findings == []


def test_a_higher_declared_level_is_fine(tmp_path: Path) -> None:
    report = check(tmp_path, "ALTER TABLE users ADD COLUMN bio text;", tables=("users",),
                   level="high")
    assert report.findings == [] and report.effective_level is RiskLevel.HIGH


def test_without_metadata_rules_are_warnings_only(tmp_path: Path) -> None:
    report = check(tmp_path, "CREATE INDEX CONCURRENTLY i ON users (a);\nDROP TABLE users;\n"
                   "INSERT INTO t VALUES (1);", tables=None)
    assert codes(report) == [("RSK010", 1), ("RSK002", 2)]
    assert all(f.severity is Severity.WARNING for f in report.findings)
    assert report.declared_level is None and report.effective_level is RiskLevel.HIGH


def test_concurrently_needs_a_non_transactional_migration(tmp_path: Path) -> None:
    sql = "CREATE INDEX CONCURRENTLY i ON users (a);"
    report = check(tmp_path, sql, tables=("users",), level="low")
    assert codes(report) == [("RSK010", 1)]
    assert report.findings[0].severity is Severity.ERROR
    assert check(tmp_path, sql, tables=("users",), level="low", transactional=False).findings == []
    # without dependencies.json a lone VACUUM runs outside a transaction, as golang-migrate runs
    # it (SQL011 says so); among other statements it runs in golang-migrate's implicit one
    assert codes(check(tmp_path, "VACUUM users;", tables=None)) == [("SQL011", 1)]
    assert codes(check(tmp_path, "VACUUM users;\nSELECT 1;", tables=None)) == [("RSK010", 1)]


def test_missing_lock_timeout_is_one_warning_that_does_not_raise_the_level(tmp_path: Path) -> None:
    sql = ("CREATE TABLE fresh (id int);\nALTER TABLE users ADD COLUMN a int;\n"
           "ALTER TABLE users ADD COLUMN b int;\n")
    report = check(tmp_path, sql, tables=("users", "fresh"), level="low",
                   lock_timeout_assumed=False)
    assert codes(report) == [("RSK027", 2)]
    assert report.derived_level is RiskLevel.LOW
    assert "locks users" in report.findings[0].message
    with_timeout = "SET LOCAL lock_timeout TO '3s';\n" + sql
    assert check(tmp_path, with_timeout, tables=("users", "fresh"), level="low",
                 lock_timeout_assumed=False).findings == []
    reset = "SET lock_timeout = '3s';\nSET lock_timeout = 0;\n" + sql
    assert codes(check(tmp_path, reset, tables=("users", "fresh"), level="low",
                       lock_timeout_assumed=False)) == [("RSK027", 4)]


# --- affects_tables -----------------------------------------------------------------------------


def test_read_only_tables_are_not_affected(tmp_path: Path) -> None:
    sql = "INSERT INTO summary SELECT count(*) FROM orders JOIN users ON true;"
    assert check(tmp_path, sql, tables=("summary",), level="low").findings == []
    report = check(tmp_path, sql, tables=("summary", "orders"), level="low")
    finding = only(report, "SQL004")
    assert finding.severity is Severity.WARNING
    assert finding.file is not None and finding.file.name == "dependencies.json"
    assert finding.line == 7 and "'orders'" in finding.message


@pytest.mark.parametrize("declared", ["users", "USERS", "user_service.users",
                                      '"user_service".users'])
def test_service_schema_and_case_are_normalised(tmp_path: Path, declared: str) -> None:
    sql = "ALTER TABLE users ADD COLUMN a int;\nALTER TABLE User_Service.Users ADD COLUMN b int;"
    assert check(tmp_path, sql, tables=(declared,), level="low").findings == []


def test_other_schemas_and_quoted_names_must_match(tmp_path: Path) -> None:
    sql = 'INSERT INTO public.users VALUES (1);\nINSERT INTO "Users" VALUES (1);'
    report = check(tmp_path, sql, tables=("users",), level="low")
    assert [(f.code, f.line) for f in report.findings] == [("SQL003", 1), ("SQL003", 2),
                                                           ("SQL004", 7)]
    assert report.tables_touched == ["public.users", '"Users"']
    ok = check(tmp_path, 'INSERT INTO public.users VALUES (1);\nINSERT INTO "Users" VALUES (1);',
               tables=("public.users", '"Users"'), level="low")
    assert ok.findings == []


def test_a_renamed_table_may_be_declared_by_either_name(tmp_path: Path) -> None:
    for declared in ("accounts", "users"):
        report = check(tmp_path, "ALTER TABLE users RENAME TO accounts;", tables=(declared,))
        assert [f.code for f in report.findings] == ["RSK014"]


def test_views_may_be_declared_and_temporary_tables_need_not_be(tmp_path: Path) -> None:
    sql = ("CREATE TEMP TABLE scratch (id int);\nINSERT INTO scratch SELECT id FROM users;\n"
           "CREATE VIEW active_users AS SELECT * FROM users;")
    assert check(tmp_path, sql, tables=(), level="low").findings == []
    assert check(tmp_path, sql, tables=("active_users",), level="low").findings == []


def test_undeclared_table_touched_only_by_an_unanalysed_statement_is_not_guessed(
        tmp_path: Path) -> None:
    report = check(tmp_path, "DO $$ BEGIN EXECUTE 'INSERT INTO t VALUES (1)'; END $$;",
                   tables=("t",), level="low")
    assert codes(report) == [("SQL002", 1), ("SQL004", 7)]
    assert "1 statement(s) could not be analysed" in report.findings[1].message
    assert report.not_analysed == [("DO", 1)]


# --- ignore comments ----------------------------------------------------------------------------


def test_ignore_comment_silences_the_named_rules_for_one_statement(tmp_path: Path) -> None:
    sql = ("-- migorch:ignore RSK003 the column has been unused since v2\n"
           "ALTER TABLE users DROP COLUMN legacy;\n"
           "ALTER TABLE users DROP COLUMN other;\n")
    report = check(tmp_path, sql, tables=("users",), level="high")
    assert codes(report) == [("RSK003", 3)]
    assert [(f.code, f.line) for f in report.ignored] == [("RSK003", 2)]


def test_ignored_rules_do_not_raise_the_derived_level(tmp_path: Path) -> None:
    sql = "ALTER TABLE users DROP COLUMN legacy; -- migorch:ignore drop-column\n"
    report = check(tmp_path, sql, tables=("users",), level="low")
    assert report.findings == [] and report.derived_level is RiskLevel.LOW


def test_ignore_comments_that_silence_nothing_are_warnings(tmp_path: Path) -> None:
    up = ("-- migorch:ignore RSK003, RSK999\nALTER TABLE users ADD COLUMN a int;\n"
          "-- migorch:ignore SQL002\nDO $$ BEGIN EXECUTE 'x'; END $$;\n-- migorch:ignore\n"
          "SELECT 1;\n"
          "-- migorch:ignore RSK002\n")
    down = "-- migorch:ignore RSK003\nALTER TABLE users DROP COLUMN a;\n"
    report = check(tmp_path, up, down, tables=("users",), level="low")
    unused = [f for f in report.findings if f.code == "SQL005"]
    assert [(f.file.name if f.file else None, f.line) for f in unused] == [
        ("000002_change.down.sql", 1), ("000002_change.up.sql", 1),
        ("000002_change.up.sql", 5), ("000002_change.up.sql", 7)]
    assert "up files only" in unused[0].message
    assert "RSK003, RSK999" in unused[1].message and "RSK999: not a SQL or risk rule" in \
        unused[1].message
    assert "names no code" in unused[2].message
    assert "after the last statement" in unused[3].message
    assert [f.code for f in report.findings if f.code != "SQL005"] == []


def test_undeclared_table_can_be_acknowledged_per_statement(tmp_path: Path) -> None:
    sql = "-- migorch:ignore SQL003 owned by billing-service\nINSERT INTO invoices VALUES (1);"
    assert check(tmp_path, sql, tables=(), level="low").findings == []


# --- files --------------------------------------------------------------------------------------


def test_down_file_is_checked_for_unreadable_statements_only(tmp_path: Path) -> None:
    report = check(tmp_path, "CREATE TABLE t (id int);",
                   "DROP TABLE t;\nDO $$ BEGIN EXECUTE 'x'; END $$;\n", tables=("t",), level="low")
    finding = only(report, "SQL002")
    assert finding.file is not None and finding.file.name == "000002_change.down.sql"
    assert finding.line == 2
    assert report.down_not_analysed == [("DO", 2)]


@pytest.mark.parametrize("sql,message", [
    ("ALTER TABLE t DROP IF EXISTS COLUMN c", "write DROP COLUMN IF EXISTS"),
    ("ALTER TABLE t ALTER COLUMN id TYPE BIGSERIAL, ALTER COLUMN id DROP NOT NULL",
     "TYPE BIGSERIAL is not valid SQL"),
])
def test_statements_postgres_certainly_rejects_are_errors(tmp_path: Path, sql: str,
                                                           message: str) -> None:
    report = check(tmp_path, "CREATE TABLE t (id int);", "SELECT 1;\n" + sql + ";",
                   tables=("t",), level="low")
    finding = only(report, "SQL007")
    assert finding.severity is Severity.ERROR and message in finding.message
    assert finding.file is not None and finding.file.name == "000002_change.down.sql"
    assert finding.line == 2


def test_unterminated_sql_is_an_error(tmp_path: Path) -> None:
    report = check(tmp_path, "SELECT 1;\nINSERT INTO t VALUES ('open);\n", tables=("t",),
                   level="low")
    finding = only(report, "SQL001")
    assert finding.severity is Severity.ERROR and finding.line == 2


def test_a_begin_commit_wrapper_is_fine(tmp_path: Path) -> None:
    sql = "BEGIN;\nALTER TABLE users ADD COLUMN a int;\nCOMMIT;\n"
    assert check(tmp_path, sql, tables=("users",), level="low").findings == []


@pytest.mark.parametrize("sql,line", [
    ("ALTER TABLE users ADD COLUMN a int;\nCOMMIT;\nALTER TABLE users ADD COLUMN b int;", 2),
    ("BEGIN;\nALTER TABLE users ADD COLUMN a int;\nSAVEPOINT s;\nCOMMIT;", 3),
    ("BEGIN;\nALTER TABLE users ADD COLUMN a int;\nROLLBACK;", 3),
])
def test_other_transaction_control_in_a_transactional_migration(tmp_path: Path, sql: str,
                                                                line: int) -> None:
    report = check(tmp_path, sql, tables=("users",), level="low")
    assert codes(report) == [("SQL006", line)]
    assert report.findings[0].severity is Severity.ERROR
    assert check(tmp_path, sql, tables=("users",), level="low", transactional=False).findings == []
    no_metadata = check(tmp_path, sql, tables=None)  # runs as written, as golang-migrate does
    assert [(f.code, f.severity) for f in no_metadata.findings
            if f.code in ("SQL006", "SQL011")] == [("SQL011", Severity.WARNING)]


# --- plan ---------------------------------------------------------------------------------------


def test_plan_entry(tmp_path: Path) -> None:
    migration = make_migration(tmp_path, "ALTER TABLE users DROP COLUMN a;", tables=("users",),
                               level="medium")
    report = check_migration(migration, SCHEMA, AnalysisCache(), lock_timeout_assumed=True)
    entry = plan_entry(migration, report)
    assert entry.migration_id == "000002_change"
    assert (entry.risk_declared, entry.risk_derived, entry.risk_effective) == (
        RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.HIGH)
    assert entry.rules_fired == (("RSK003", "drop-column", 1),)
    assert entry.tables == ("users",)
    assert (entry.estimated_duration, entry.estimated_seconds) == ("45s", 45.0)
    assert "risk high (declared medium, derived high)" in entry.render()
    assert json.loads(json.dumps(entry.to_json()))["risk"] == "high"
    assert json.loads(json.dumps(report.to_json()))["risk_derived"] == "high"


def test_plan_entry_without_metadata(tmp_path: Path) -> None:
    migration = make_migration(tmp_path, "SELECT 1;", tables=None)
    entry = plan_entry(migration, check_migration(migration, SCHEMA, AnalysisCache()))
    assert entry.risk_declared is None and entry.estimated_duration is None
    assert "declared undeclared" in entry.render() and "duration unknown" in entry.render()


# --- catalogue ----------------------------------------------------------------------------------


def test_rule_codes_are_unique_and_in_their_family() -> None:
    rules = [*ANALYSIS_RULES, *risk.RULES, *risk_rules.RULES]
    assert len({r.code for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)
    for rule in rules:
        prefix = {Family.SQL: "SQL", Family.RISK: "RSK"}[rule.family]
        assert rule.code.startswith(prefix) and rule.summary and rule.hint


def test_every_rule_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for rule in [*ANALYSIS_RULES, *risk.RULES, *risk_rules.RULES]:
        assert f"`{rule.code}`" in text and rule.name in text, rule.code


# --- real services ------------------------------------------------------------------------------


def _project_reports(root: Path) -> list[MigrationReport]:
    from pytest_migorch.project.validation import load_project

    project = load_project(root)
    return [check_migration(m, service.schema, AnalysisCache())
            for service in project.services.values() for m in service.migrations.values()]


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/services not present")
def test_example_services_raise_no_false_errors() -> None:
    reports = _project_reports(EXAMPLES)
    assert reports
    errors = [f for r in reports for f in r.findings if f.is_error]
    assert errors == []


@pytest.mark.skipif(not CORPORA.is_dir(), reason="shared/corpora is not next to the repository")
def test_corpora_are_checked_without_crash_or_false_error() -> None:
    errors: set[tuple[str, str, int | None]] = set()
    for root in sorted(CORPORA.glob("*/services")):
        reports = _project_reports(root)
        assert reports, root
        errors |= {(f.code, f.file.name if f.file else "", f.line)
                   for r in reports for f in r.findings if f.is_error}
    # No dependencies.json, so nothing declared to contradict: the only errors are the three
    # quickwit downs that PostgreSQL rejects (see shared/corpora/README.md).
    assert errors == {
        ("SQL007", "14_update-shard-id.down.sql", 1),
        ("SQL007", "19_add-split-node-id-field.down.sql", 3),
        ("SQL007", "20_add-shard-doc-mapping-uid-field.down.sql", 1),
    }


# --- execution mode (golang-migrate's way of running a file) -------------------------------------


def test_an_undeclared_lone_concurrently_warns_to_declare_it(tmp_path: Path) -> None:
    migration = make_migration(tmp_path, "CREATE INDEX CONCURRENTLY i ON users (a);",
                               tables=("users",), level="low")
    assert migration.meta is not None
    migration.meta = dataclasses.replace(migration.meta, transactional=None)
    report = check_migration(migration, SCHEMA, AnalysisCache())
    assert codes(report) == [("SQL011", 1)]
    assert report.findings[0].severity is Severity.WARNING
    assert '"transactional": false' in report.findings[0].message


def test_a_concurrently_in_a_multi_statement_down_is_golang_migrates_error(tmp_path: Path) -> None:
    down = "DROP INDEX CONCURRENTLY i;\nALTER TABLE users DROP COLUMN a;\n"
    migration = make_migration(tmp_path, "ALTER TABLE users ADD COLUMN a int;", down,
                               tables=("users",), level="low")
    assert migration.meta is not None
    migration.meta = dataclasses.replace(migration.meta, transactional=None)
    report = check_migration(migration, SCHEMA, AnalysisCache())
    found = only(report, "SQL012")
    assert found.severity is Severity.ERROR and found.line == 1
    assert "DROP INDEX CONCURRENTLY cannot run inside a transaction block" in found.message


def test_a_declared_true_with_create_database_is_an_error(tmp_path: Path) -> None:
    report = check(tmp_path, "CREATE DATABASE other;\nSELECT 1;", tables=(), level="low")
    found = only(report, "SQL012")
    assert found.severity is Severity.ERROR and 'declared "transactional": true' in found.message
