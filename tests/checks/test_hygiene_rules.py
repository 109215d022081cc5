"""The hygiene rules (RSK029-RSK046): what fires each, what must not, and that none raises the
derived level (except DROP DATABASE, high, and DETACH PARTITION, low)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_risk import check, codes

from pytest_migorch.checks.migration import MigrationReport
from pytest_migorch.findings import Severity
from pytest_migorch.model import RiskLevel


def fired(report: MigrationReport) -> list[str]:
    return [f.code for f in report.findings]


@pytest.mark.parametrize("sql,rule", [
    ("ALTER TABLE users DROP CONSTRAINT users_email_key", "RSK029"),
    ("DROP VIEW active_users", "RSK030"),
    ("DROP FUNCTION IF EXISTS f(int)", "RSK030"),
    ("DROP TYPE mood", "RSK030"),
    ("DROP SEQUENCE s", "RSK030"),
    ("DROP DOMAIN d", "RSK030"),
    ("DROP EXTENSION pg_trgm", "RSK030"),
    ("ALTER INDEX users_email_idx RENAME TO users_mail_idx", "RSK032"),
    ("ALTER TABLE users ALTER COLUMN id DROP IDENTITY", "RSK033"),
    ("CREATE TABLE t (id int PRIMARY KEY)", "RSK034"),
    ("CREATE TABLE t (id smallint, PRIMARY KEY (id))", "RSK034"),
    # A named key: read from PostgreSQL's tree, and (quoted names) from sqlglot's.
    ("CREATE TABLE t (id int, CONSTRAINT t_pk PRIMARY KEY (id))", "RSK034"),
    ('CREATE TABLE "t" ("id" int, CONSTRAINT "t_pk" PRIMARY KEY ("id"))', "RSK034"),
    ("CREATE TABLE t (id integer GENERATED ALWAYS AS IDENTITY)", "RSK034"),
    ("CREATE TABLE t (id bigserial PRIMARY KEY)", "RSK035"),
    ("CREATE TABLE t (code char(2))", "RSK036"),
    ("ALTER TABLE users ADD COLUMN code character", "RSK036"),
    ("CREATE TABLE t (name varchar(20))", "RSK037"),
    ("ALTER TABLE users ALTER COLUMN name TYPE varchar(40)", "RSK037"),
    ("CREATE TABLE t (at timestamp)", "RSK038"),
    ("ALTER TABLE users ADD COLUMN at timestamp without time zone", "RSK038"),
    ("ALTER TYPE mood ADD VALUE 'meh'", "RSK043"),
    ("CREATE DOMAIN positive AS int CHECK (VALUE > 0)", "RSK044"),
    ("CREATE TABLE " + "t" * 64 + " (id bigint)", "RSK045"),
    ("ALTER TABLE users ADD COLUMN " + "c" * 64 + " text", "RSK045"),
    ("ALTER TABLE users RENAME TO " + "p" * 64, "RSK045"),
    ("CREATE INDEX i ON users (" + "c" * 10 + ")", ""),
])
def test_each_hygiene_rule_fires_as_a_warning_that_keeps_the_level(
        tmp_path: Path, sql: str, rule: str) -> None:
    report = check(tmp_path, sql + ";", tables=None)
    found = [c for c in fired(report) if c.startswith("RSK0") and int(c[3:]) >= 29]
    assert found == ([rule] if rule else [])
    assert all(f.severity is Severity.WARNING for f in report.findings)
    assert all(f.level is None for f in report.fired if f.code == rule)
    if not [c for c in fired(report) if c != rule]:
        assert report.derived_level is RiskLevel.LOW


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t (id bigint PRIMARY KEY, n int, at timestamptz, name text, v varchar)",
    "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
    "CREATE VIEW v AS SELECT 1;\nDROP VIEW v",
    "CREATE INDEX i ON fresh_table (a);\nALTER INDEX i RENAME TO j",
    "CREATE TABLE fresh (id bigint);\nALTER TABLE fresh DROP CONSTRAINT c",
    "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'",
    "CREATE DOMAIN d AS text",
    "CREATE TABLE " + "t" * 63 + " (id bigint)",
    "DROP TYPE mood CASCADE",
])
def test_good_choices_and_new_objects_fire_no_hygiene_rule(tmp_path: Path, sql: str) -> None:
    report = check(tmp_path, sql + ";", tables=None)
    assert [c for c in fired(report) if c.startswith("RSK0") and int(c[3:]) >= 29] == []


def test_a_serial_added_to_an_existing_table_is_the_rewrite_rule_not_style(tmp_path: Path) -> None:
    report = check(tmp_path, "ALTER TABLE users ADD COLUMN n serial;", tables=None)
    assert fired(report) == ["RSK007", "RSK034"]  # rewrite, and a 32-bit key


def test_drop_database_is_high(tmp_path: Path) -> None:
    report = check(tmp_path, "DROP DATABASE legacy;", tables=None)
    assert "RSK031" in fired(report) and report.derived_level is RiskLevel.HIGH


def test_detach_partition_without_concurrently_is_low(tmp_path: Path) -> None:
    report = check(tmp_path, "ALTER TABLE events DETACH PARTITION events_2020;", tables=None)
    assert "RSK042" in fired(report)
    quiet = check(tmp_path, "ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY;",
                  tables=None, transactional=False)
    assert "RSK042" not in fired(quiet)


def test_statement_timeout_is_asked_once_where_an_existing_table_is_scanned(
        tmp_path: Path) -> None:
    sql = ("SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN a int;\n"
           "ALTER TABLE users ALTER COLUMN b SET NOT NULL;\nUPDATE users SET a = 1;\n")
    report = check(tmp_path, sql, tables=("users",), lock_timeout_assumed=False)
    assert [(c, line) for c, line in codes(report) if c == "RSK039"] == [("RSK039", 3)]
    assert report.derived_level is RiskLevel.HIGH  # from RSK005/RSK018, not from RSK039
    timed = "SET statement_timeout = '30min';\n" + sql
    assert "RSK039" not in fired(check(tmp_path, timed, tables=("users",),
                                       lock_timeout_assumed=False))
    cleared = "SET statement_timeout = '30min';\nSET statement_timeout = 0;\n" + sql
    assert "RSK039" in fired(check(tmp_path, cleared, tables=("users",),
                                   lock_timeout_assumed=False))


def test_statement_timeout_is_not_asked_for_catalog_only_or_concurrent_work(
        tmp_path: Path) -> None:
    sql = ("SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN a int;\n"
           "DROP TRIGGER t ON users;\n")
    assert "RSK039" not in fired(check(tmp_path, sql, tables=("users",),
                                       lock_timeout_assumed=False))
    concurrent = "CREATE INDEX CONCURRENTLY i ON users (a);\n"
    assert "RSK039" not in fired(check(tmp_path, concurrent, tables=("users",),
                                       transactional=False, lock_timeout_assumed=False))
    fresh = "CREATE TABLE fresh (id bigint);\nCREATE INDEX i ON fresh (id);\n"
    assert "RSK039" not in fired(check(tmp_path, fresh, tables=("fresh",),
                                       lock_timeout_assumed=False))


def test_a_non_transactional_file_that_cannot_be_rerun(tmp_path: Path) -> None:
    sql = ("CREATE TABLE a (id bigint);\nDROP TABLE old;\nDROP INDEX IF EXISTS i;\n"
           "CREATE INDEX CONCURRENTLY i ON a (id);\n")
    report = check(tmp_path, sql, tables=("a", "old"), transactional=False)
    assert [(c, line) for c, line in codes(report) if c == "RSK040"] == [("RSK040", 1),
                                                                          ("RSK040", 2)]
    robust = ("CREATE TABLE IF NOT EXISTS a (id bigint);\nDROP TABLE IF EXISTS old;\n"
              "CREATE INDEX CONCURRENTLY i ON a (id);\n")
    assert "RSK040" not in fired(check(tmp_path, robust, tables=("a", "old"),
                                       transactional=False))
    # inside a transaction a failure rolls everything back: re-running is always safe
    assert "RSK040" not in fired(check(tmp_path, sql.replace("CONCURRENTLY ", ""),
                                       tables=("a", "old")))


def test_transaction_nesting_in_a_non_transactional_file(tmp_path: Path) -> None:
    sql = "BEGIN;\nINSERT INTO users (id) VALUES (1);\nBEGIN;\nCOMMIT;\n"
    report = check(tmp_path, sql, tables=("users",), level="low", transactional=False)
    assert [(c, line) for c, line in codes(report) if c == "RSK041"] == [("RSK041", 3)]
    fine = "BEGIN;\nINSERT INTO users (id) VALUES (1);\nCOMMIT;\nBEGIN;\nCOMMIT;\n"
    assert "RSK041" not in fired(check(tmp_path, fine, tables=("users",), level="low",
                                       transactional=False))


def test_concurrent_index_if_not_exists_warns_with_the_drop_first_hint(tmp_path: Path) -> None:
    sql = "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);\n"
    report = check(tmp_path, sql, tables=("users",), level="low", transactional=False)
    finding = next(f for f in report.findings if f.code == "RSK046")
    assert finding.severity is Severity.WARNING and finding.line == 1
    assert "INVALID" in finding.message
    assert "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx" in finding.message
    assert "drop" in (finding.hint or "").lower()
    assert report.derived_level is RiskLevel.LOW
    dropped_first = "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;\n" + sql
    assert "RSK046" not in fired(check(tmp_path, dropped_first, tables=("users",), level="low",
                                       transactional=False))
    plain = "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n"
    assert "RSK046" not in fired(check(tmp_path, plain, tables=("users",), level="low",
                                       transactional=False))


def test_concurrent_index_if_not_exists_can_be_silenced(tmp_path: Path) -> None:
    sql = ("-- migorch:ignore RSK046 the deploy checks indisvalid afterwards\n"
           "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON users (email);\n")
    report = check(tmp_path, sql, tables=("users",), level="low", transactional=False)
    assert "RSK046" not in fired(report)
    assert [f.code for f in report.ignored] == ["RSK046"]
