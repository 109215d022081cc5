"""Untested migrations applied many files to one message, and what happens when one fails."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import dependencies_json, entry, write_service

from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip
from pytest_migorch.roundtrip.replay import apply_batch, batchable_run


def prerequisites(root: Path, third_up: str) -> None:
    """Service a (1, 2, 3 = ``third_up``) and b, whose only migration needs a:3."""
    write_service(root, "a", {
        "1_one.up.sql": "CREATE TABLE one (id int);", "1_one.down.sql": "DROP TABLE one;",
        "2_two.up.sql": "BEGIN;\nCREATE TABLE two (id int);\nCOMMIT;\n",
        "2_two.down.sql": "DROP TABLE two;",
        "3_three.up.sql": third_up, "3_three.down.sql": "DROP TABLE three;",
        "dependencies.json": dependencies_json({
            "1": entry(affects_tables=["one"]),
            "2": entry(depends_on=["1"], affects_tables=["two"]),
            "3": entry(depends_on=["2"], affects_tables=["three"])}),
    })
    write_service(root, "b", {
        "1_uses.up.sql": "CREATE TABLE uses (id int);", "1_uses.down.sql": "DROP TABLE uses;",
        "dependencies.json": dependencies_json({"1": entry(depends_on=["a:3"],
                                                           affects_tables=["uses"])}),
    })


def round_trip_b(server: PostgresServer, root: Path) -> tuple[RoundTrip, list[str]]:
    project = load_project(root)
    roundtrip = RoundTrip(server, project, ProjectGraph(project), "b", "default")
    outcome = roundtrip.outcome(project.services["b"].migrations[1])
    return roundtrip, [f.message for f in outcome.findings]


def tables(roundtrip: RoundTrip) -> set[str]:
    rows = roundtrip.conn.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema IN ('a', 'b')").fetchall()
    return {row[0] for row in rows}


def test_prerequisites_go_in_one_message_and_each_commits(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    prerequisites(tmp_path, "CREATE TABLE three (id int);")
    roundtrip, messages = round_trip_b(pg_server, tmp_path)
    try:
        assert messages == []
        assert tables(roundtrip) == {"a.one", "a.two", "a.three", "b.uses"}
        assert roundtrip._one_at_a_time_until == 0  # the batch did not fail
    finally:
        roundtrip.close()


@pytest.mark.parametrize(("third_up", "error"), [
    ("CREATE TABLE three (\n  id int,\n  oops in t\n);", "3_three.up.sql:3: syntax error"),
    ("CREATE TABLE three (\n  id int REFERENCES missing (id)\n);",
     '3_three.up.sql:1: relation "missing" does not exist'),
])
def test_a_failing_batch_is_applied_again_one_file_at_a_time(
        pg_server: PostgresServer, tmp_path: Path, third_up: str, error: str) -> None:
    """The failure is named as when every file ran alone: the file, its line, PostgreSQL's
    message; the files before it are in effect, exactly once."""
    prerequisites(tmp_path, third_up)
    roundtrip, messages = round_trip_b(pg_server, tmp_path)
    try:
        assert len(messages) == 1
        assert "its dependency a:3 failed" in messages[0]
        assert error in messages[0]
        assert tables(roundtrip) == {"a.one", "a.two"}  # rebuilt: not a half-applied batch
    finally:
        roundtrip.close()


def test_a_failed_batch_leaves_what_committed_before_the_failure(
        fresh_db: str, tmp_path: Path) -> None:
    """Why the round-trip rebuilds after a failed batch: its state is not all or nothing (a
    syntax error anywhere refuses the whole message; an error while running does not)."""
    prerequisites(tmp_path, "CREATE TABLE three (id int REFERENCES missing (id));")
    project = load_project(tmp_path)

    class Step:
        def __init__(self, version: int) -> None:
            self.migration = project.services["a"].migrations[version]
            self.tested = False

    run = batchable_run([Step(1), Step(2), Step(3)], 0, lambda migration: None)
    assert [m.version for m, _ in run] == [1, 2, 3]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA a")
        assert apply_batch(conn, run) is False
        rows = conn.execute("SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = 'a' ORDER BY 1").fetchall()
    assert rows == [("one",), ("two",)]


def test_what_must_run_alone_is_not_batched(tmp_path: Path) -> None:
    write_service(tmp_path, "a", {
        "1_one.up.sql": "CREATE TABLE one (id int);",
        "2_idx.up.sql": "CREATE INDEX CONCURRENTLY one_id ON one (id);",
        "3_own.up.sql": "CREATE TABLE t (id int);\nCOMMIT;\nCREATE TABLE u (id int);",
        "4_four.up.sql": "CREATE TABLE four (id int);",
        "5_five.up.sql": "CREATE TABLE five (id int);",
        "6_open.up.sql": "CREATE TABLE six (id int);\nSELECT 'never closed",
        "7_seven.up.sql": "CREATE TABLE seven (id int);",
    })
    migrations = load_project(tmp_path).services["a"].migrations

    class Step:
        def __init__(self, version: int, tested: bool = False) -> None:
            self.migration = migrations[version]
            self.tested = tested

    steps = [Step(1), Step(2), Step(3), Step(4), Step(5, tested=True)]
    never = lambda migration: None  # noqa: E731
    assert [m.version for m, _ in batchable_run(steps, 0, never)] == [1]  # CIC runs alone
    assert batchable_run(steps, 2, never) == []  # its own COMMIT: fails alone, with its message
    assert [m.version for m, _ in batchable_run(steps, 3, never)] == [4]  # 5 is tested
    assert batchable_run(steps, 3, lambda migration: "a:1 failed") == []
    # A quote left open would take in the next file (its COMMIT, and the file after it).
    later = [Step(6), Step(7)]
    assert batchable_run(later, 0, never) == []
    assert [m.version for m, _ in batchable_run(later, 1, never)] == [7]
