"""The tracking writes as prepared statements (prepared_writes.py), and the way back to plain
text when a migration ends them: nothing is lost, nothing turns red."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from test_applying import Harness, harness_for  # noqa: F401  (the fixture)

from pytest_migorch.deploy.prepared_writes import may_deallocate
from pytest_migorch.deploy.tracking import Tracking


def prepared_names(conn: psycopg.Connection[Any]) -> list[str]:
    return [str(row[0]) for row in conn.execute(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'migorch_tracking_%' "
        "ORDER BY name").fetchall()]


def start(tracking: Tracking, migration_id: str) -> int:
    return tracking.start(migration_id=migration_id, migration_version="000001",
                          environment="dev", action="up", executed_by="me", checksum=None,
                          dependencies=[], metadata={"n": 1})


def test_the_running_row_is_written_by_a_prepared_statement_and_survives_its_loss(
        fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        tracking = Tracking(conn, "svc")
        tracking.create()
        first = start(tracking, "000001_a")
        assert len(prepared_names(conn)) == 1  # prepared once, then executed
        start(tracking, "000002_b")
        assert len(prepared_names(conn)) == 1
        conn.execute("DEALLOCATE ALL")  # as a migration may (DISCARD ALL, dynamic SQL)
        third = start(tracking, "000003_c")  # sent again as text, and prepared anew later
        assert third > first
        assert [r.migration_id for r in tracking.records()] == [
            "000001_a", "000002_b", "000003_c"]
        assert [h.status for h in tracking.history("dev")] == ["running"] * 3
        start(tracking, "000004_d")
        assert len(prepared_names(conn)) == 1


def test_a_migration_that_ends_the_prepared_writes_where_no_text_says_so_still_applies(
    harness_for: Callable[..., Harness],  # noqa: F811
) -> None:
    # the name is built at run time, so nothing in the file mentions it: the outcome's
    # EXECUTE fails after the migration's statements, the transaction rolls back whole, and
    # the batch runs once more with the outcome written as text
    hidden = ("CREATE TABLE u (id int);\n"
              "DO $$ BEGIN EXECUTE 'DEALL' || 'OCATE ALL'; END $$;\n")
    assert not may_deallocate(hidden.replace("DEALL' || 'OCATE", "x"))
    h = harness_for(hidden)
    h.up("000001_a")
    assert len(prepared_names(h.session.conn)) == 2  # the running row and the outcome
    outcome = h.up("000002_b")
    assert outcome.status == "completed"
    assert h.row("000002_b")[0] == "completed"
    assert h.tables() == ["t", "u"]
    assert h.golang_migrate() == [(2, False)]
    assert h.history("000002_b") == [("up", "running"), ("up", "completed")]
    h.down("000002_b", "000001")  # the writes after it are prepared again
    assert h.row("000002_b")[0] == "rolled_back" and h.tables() == ["t"]


@pytest.mark.parametrize("sql", ["CREATE TABLE u (id int);\nDEALLOCATE ALL;\n",
                                 "CREATE TABLE u (id int);\n-- discard nothing\n"])
def test_a_file_that_mentions_deallocate_writes_its_outcome_as_text(
    harness_for: Callable[..., Harness], sql: str,  # noqa: F811
) -> None:
    h = harness_for(sql)
    h.up("000001_a")
    assert may_deallocate(sql)
    assert h.up("000002_b").status == "completed"
    assert h.row("000002_b")[0] == "completed" and h.golang_migrate() == [(2, False)]
    h.down("000002_b", "000001")
    assert h.row("000002_b")[0] == "rolled_back"


def test_an_error_in_the_runners_own_prepared_write_names_no_line_of_the_file(
    harness_for: Callable[..., Harness],  # noqa: F811
) -> None:
    # PostgreSQL places such an error in the prepared statement's text: mapped onto the
    # batch it would point into the migration; the statements run again instead, succeed,
    # and the error is reported as the runner's own
    from pytest_migorch.errors import MigrationFailed

    h = harness_for("CREATE TABLE u (id int);\n"
                    "ALTER TABLE shop.migration_executions RENAME TO gone;\n")
    h.up("000001_a")
    with pytest.raises(MigrationFailed) as caught:
        h.up("000002_b")
    assert "000002_b.up.sql: database error: relation" in str(caught.value)  # no line
    assert h.tables() == ["t"] and h.golang_migrate() == [(1, False)]
