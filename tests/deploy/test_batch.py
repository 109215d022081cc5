"""A transactional migration sent as one query (deploy/batch.py): the same outcome, the same
records and the same file:line as statement by statement, on a real database.

The harness is test_applying's: one Applier on one Session, as the runner drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import query
from test_applying import Harness, harness_for  # noqa: F401  (the fixture)

from pytest_migorch.deploy.batch import build_batch
from pytest_migorch.errors import MigrationFailed
from pytest_migorch.sql.split import split_statements

FILE = "services/shop/migrations/000002_b.up.sql"


# --- the text and its positions (pure) ------------------------------------------------------


def test_positions_map_back_to_statements_and_lines() -> None:
    source = "-- header\nCREATE TABLE a (id int);\n\nINSERT INTO a\n  VALUES (1);\n"
    batch = build_batch(split_statements(source), "SELECT 1")
    assert batch.text == ("BEGIN;\nCREATE TABLE a (id int);\nINSERT INTO a\n  VALUES (1);\n"
                          "SELECT 1;\nCOMMIT")
    second = batch.text.index("VALUES") + 1  # PostgreSQL counts from 1
    statement, line = batch.statement_at(second)  # type: ignore[misc]
    assert (statement.text, line) == ("INSERT INTO a\n  VALUES (1)", 5)
    assert batch.statement_at(batch.text.index("CREATE") + 1)[1] == 2  # type: ignore[index]
    # BEGIN and the runner's own SQL belong to no statement of the file
    assert batch.statement_at(1) is None
    assert batch.statement_at(batch.text.index("SELECT 1") + 1) is None


def test_positions_count_characters_not_bytes() -> None:
    batch = build_batch(split_statements("SELECT 'é€';\nSELECT x;\n"), "SELECT 1")
    statement, line = batch.statement_at(batch.text.index("x;") + 1)  # type: ignore[misc]
    assert (statement.text, line) == ("SELECT x", 2)


# --- on a database --------------------------------------------------------------------------


def test_a_failure_without_a_position_is_located_by_a_second_run_that_changes_nothing(
    harness_for: Callable[..., Harness],  # noqa: F811
) -> None:
    # a division by zero carries no position: the line comes from running the statements
    # again, one by one, in a transaction that is rolled back
    h = harness_for("CREATE TABLE u (id int);\nINSERT INTO u VALUES (1);\n"
                    "SELECT 1 /\n  (SELECT count(*) - 1 FROM u);\nCREATE TABLE never (id int);\n")
    h.up("000001_a")
    with pytest.raises(MigrationFailed) as caught:
        h.up("000002_b")
    message = str(caught.value)
    assert message == (f"migration shop:000002_b failed at {FILE}:3: division by zero "
                       "(SQLSTATE 22012)\nNothing of it was applied: its transaction was "
                       "rolled back.")
    assert h.tables() == ["t"]  # neither the batch nor the second run left anything
    assert h.golang_migrate() == [(1, False)]
    status, _, error, _, _, completed = h.row("000002_b")
    assert (status, error, completed) == ("failed", message, True)
    assert h.history("000002_b") == [("up", "running"), ("up", "failed")]
    assert h.session.conn.info.transaction_status.name == "IDLE"


def test_a_syntax_error_names_the_line_inside_a_long_statement(
    harness_for: Callable[..., Harness],  # noqa: F811
) -> None:
    h = harness_for("CREATE TABLE u (id int);\nCREATE TABLE v (\n  id int,\n  name txet\n);\n")
    h.up("000001_a")
    with pytest.raises(MigrationFailed, match=rf"{FILE}:4: type \"txet\" does not exist"):
        h.up("000002_b")
    assert h.tables() == ["t"]


def test_the_migrations_own_results_do_not_hide_the_tracking_row(
    harness_for: Callable[..., Harness],  # noqa: F811
) -> None:
    # rows returned by the migration come before the tracking write's row in the one query;
    # the state the next step plans from is the tracking row, and the server times the SQL
    h = harness_for("CREATE TABLE u (id int);\nSELECT 'x' AS status, 7 AS id;\n"
                    "SELECT pg_sleep(0.2);\nSELECT id FROM u;\n")
    h.up("000001_a")
    outcome = h.up("000002_b")
    assert outcome.status == "completed"
    record = h.state.record(h.migrations["000002_b"])
    assert record is not None and record.status == "completed"
    assert record.migration_id == "000002_b" and record.id != 7
    assert record.duration_ms is not None and 200 <= record.duration_ms < 5000
    assert h.golang_migrate() == [(2, False)]
    assert h.history("000002_b") == [("up", "running"), ("up", "completed")]


def test_a_migration_that_breaks_the_tracking_write_applies_nothing(
    harness_for: Callable[..., Harness],  # noqa: F811
) -> None:
    # the statements succeed, the runner's write after them fails: the whole transaction
    # rolls back, the second run finds no failing statement, PostgreSQL's error is reported
    h = harness_for("CREATE TABLE u (id int);\n"
                    "ALTER TABLE shop.migration_executions RENAME TO gone;\n")
    h.up("000001_a")
    with pytest.raises(MigrationFailed) as caught:
        h.up("000002_b")
    message = str(caught.value)
    assert message.startswith(f"migration shop:000002_b failed at {FILE}: ")
    assert 'relation "shop.migration_executions" does not exist' in message
    assert h.tables() == ["t"]
    assert h.golang_migrate() == [(1, False)]
    assert h.row("000002_b")[0] == "failed"


def test_a_rollback_runs_as_one_query_too(harness_for: Callable[..., Harness],  # noqa: F811
                                          tmp_path: Path) -> None:
    h = harness_for("CREATE TABLE u (id int);\n",
                    second_down="DROP TABLE u;\nSELECT 1 / 0;\n")
    h.up("000001_a")
    h.up("000002_b")
    with pytest.raises(MigrationFailed, match=r"000002_b\.down\.sql:2: division by zero"):
        h.down("000002_b", "1")
    assert h.tables() == ["t", "u"]  # the DROP was rolled back with the failure
    assert h.row("000002_b")[0] == "completed"
    assert query(h.url, "SELECT count(*) FROM shop.migration_execution_history "
                        "WHERE migration_id = '000002_b' AND action = 'down'") == [(2,)]


@pytest.mark.parametrize(("second_line", "message"), [
    ("SELECT 'never closed;\n", "unterminated quoted string"),
    ("SELECT $$ never closed;\n", "unterminated dollar-quoted string"),
    ('SELECT "never closed;\n', "unterminated quoted identifier"),
])
def test_a_quote_left_open_never_swallows_the_runners_own_sql(
    harness_for: Callable[..., Harness], second_line: str, message: str,  # noqa: F811
) -> None:
    # appended after an open quote, the runner's SQL would be read as part of the string: a
    # file whose statement leaves one open runs statement by statement (rolled back) instead,
    # and PostgreSQL's own error for that statement names the line
    h = harness_for("CREATE TABLE u (id int);\n" + second_line)
    h.up("000001_a")
    with pytest.raises(MigrationFailed, match=rf"{FILE}:2: {message}"):
        h.up("000002_b")
    assert h.tables() == ["t"]
    assert h.row("000002_b")[0] == "failed"
    assert h.golang_migrate() == [(1, False)]


def test_with_debug_logging_the_same_transaction_runs_one_statement_at_a_time(
    harness_for: Callable[..., Harness], caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    # LOG_LEVEL=debug promises each statement as it is sent, with its time: the batch is
    # then sent statement by statement, with the same records and the server's duration
    h = harness_for("CREATE TABLE u (id int);\nSELECT pg_sleep(0.2);\n")
    h.up("000001_a")
    with caplog.at_level(logging.DEBUG, logger="pytest_migorch.postgres.statements"):
        outcome = h.up("000002_b")
    assert outcome.status == "completed"
    assert "done 000002_b.up.sql:2 in " in caplog.text and "(INTRANS)" in caplog.text
    record = h.state.record(h.migrations["000002_b"])
    assert record is not None and record.duration_ms is not None
    assert 200 <= record.duration_ms < 5000
    assert h.tables() == ["t", "u"] and h.golang_migrate() == [(2, False)]


def test_with_debug_logging_a_failure_names_its_line_and_applies_nothing(
    harness_for: Callable[..., Harness], caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    h = harness_for("CREATE TABLE u (id int);\nSELECT 1 / 0;\n")
    h.up("000001_a")
    with caplog.at_level(logging.DEBUG, logger="pytest_migorch.postgres.statements"), \
            pytest.raises(MigrationFailed, match=rf"{FILE}:2: division by zero"):
        h.up("000002_b")
    assert "failed 000002_b.up.sql:2 after " in caplog.text
    assert h.tables() == ["t"] and h.row("000002_b")[0] == "failed"
    assert h.history("000002_b") == [("up", "running"), ("up", "failed")]
