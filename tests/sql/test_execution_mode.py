"""The one execution-mode decision: how golang-migrate runs a file when nothing is declared."""

from __future__ import annotations

import pytest

from pytest_migorch.sql.execution_mode import execution_mode


@pytest.mark.parametrize("sql", [
    "CREATE INDEX CONCURRENTLY i ON t (a);",
    "-- comment\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n",
    "DROP INDEX CONCURRENTLY i;",
    "VACUUM t;",
    "REINDEX TABLE CONCURRENTLY t;",
    "ALTER SYSTEM SET work_mem = '8MB';",
    "CREATE DATABASE other;",
])
def test_a_lone_no_transaction_statement_runs_outside_a_transaction(sql: str) -> None:
    mode = execution_mode(sql, None)
    assert not mode.transactional and mode.derived
    assert "cannot run inside a transaction block" in mode.reason()
    assert execution_mode(sql, True).transactional  # a declaration wins
    assert not execution_mode(sql, True).derived


def test_several_statements_run_in_golang_migrates_implicit_transaction() -> None:
    mode = execution_mode("CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);", None)
    assert mode.transactional and mode.golang_migrate_fails
    assert [(s.line, name) for s, name in mode.no_transaction] == [
        (2, "CREATE INDEX CONCURRENTLY")]


@pytest.mark.parametrize("sql,line", [
    ("BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (x int);\nCOMMIT;", 3),
    ("CREATE TABLE a (x int);\nCOMMIT;", 2),
    ("BEGIN;\nCREATE TABLE a (x int);\nSAVEPOINT s;\nCOMMIT;", 3),
])
def test_own_transaction_control_runs_as_written(sql: str, line: int) -> None:
    mode = execution_mode(sql, None)
    assert not mode.transactional and mode.derived
    assert f"at line {line}" in mode.reason()


@pytest.mark.parametrize("sql", [
    "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);",
    "BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;",
    "ALTER TYPE mood ADD VALUE 'meh';",
])
def test_everything_else_runs_in_one_transaction(sql: str) -> None:
    mode = execution_mode(sql, None)
    assert mode.transactional and not mode.derived and not mode.golang_migrate_fails


def test_declared_false_is_never_derived() -> None:
    mode = execution_mode("CREATE TABLE a (x int);", False)
    assert not mode.transactional and not mode.derived
    assert mode.reason() == 'declared "transactional": false'


def test_the_mode_is_kept_per_text_and_declaration() -> None:
    text = "CREATE INDEX CONCURRENTLY i ON t (a);\n"
    first = execution_mode(text, None)
    assert execution_mode(text, None) is first and not first.transactional
    assert execution_mode(text, True).transactional  # the declaration is in the key
    assert execution_mode(text + "SELECT 1;\n", None).transactional  # so is every byte
