"""An up that leaves an INVALID index behind is DB013, whether it succeeded or failed."""

from __future__ import annotations

from pathlib import Path

from helpers import dependencies_json, entry, write_service
from test_seeding import codes, run

from pytest_migorch.postgres.servers import PostgresServer

PARTITIONED = "CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);\n" \
    "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO " \
    "('2025-01-01');\n"


def test_an_up_that_succeeds_leaving_an_invalid_index_is_db013(pg_server: PostgresServer,
                                                                tmp_path: Path) -> None:
    # ON ONLY: the parent's index stays INVALID until each partition's index is attached.
    write_service(tmp_path, "svc", {
        "1_events.up.sql": PARTITIONED, "1_events.down.sql": "DROP TABLE events;",
        "2_index.up.sql": "SET lock_timeout = '50ms';\nCREATE INDEX events_id ON ONLY events (id);",
        "2_index.down.sql": "DROP INDEX events_id;",
    })
    outcome = run(pg_server, tmp_path)[2]
    (finding,) = outcome.findings  # type: ignore[attr-defined]
    assert finding.code == "DB013" and finding.file.name == "2_index.up.sql"
    assert "up of 2_index left index svc.events_id INVALID" in finding.message
    assert "DROP INDEX CONCURRENTLY svc.events_id;" in finding.message


def test_without_the_invalid_index_the_same_up_is_clean(pg_server: PostgresServer,
                                                        tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {
        "1_events.up.sql": PARTITIONED, "1_events.down.sql": "DROP TABLE events;",
        "2_index.up.sql": "SET lock_timeout = '50ms';\nCREATE INDEX events_id ON events (id);",
        "2_index.down.sql": "DROP INDEX events_id;",
    })
    assert codes(run(pg_server, tmp_path)[2]) == []


def test_ignore_comment_silences_db013(pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {
        "1_events.up.sql": PARTITIONED, "1_events.down.sql": "DROP TABLE events;",
        "2_index.up.sql": "-- migorch:ignore DB013 partitions get theirs in 3\n"
                          "SET lock_timeout = '50ms';\nCREATE INDEX events_id ON ONLY events (id);",
        "2_index.down.sql": "DROP INDEX events_id;",
    })
    assert codes(run(pg_server, tmp_path)[2]) == []


def test_failed_concurrent_build_on_the_team_s_rows_is_db011_and_db013(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {
        "1_base.up.sql": "CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);",
        "1_base.down.sql": "DROP TABLE parent;",
        "2_unique.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS parent_lower_name\n"
                           "  ON parent (lower(name));\n",
        "2_unique.down.sql": "DROP INDEX CONCURRENTLY parent_lower_name;\n",
        "dependencies.json": dependencies_json({
            "1": entry(risk_level="low", affects_tables=["parent"]),
            "2": entry(risk_level="medium", affects_tables=["parent"], transactional=False)}),
        "testdata/2.sql": "INSERT INTO parent VALUES (1, 'Ann'), (2, 'ann');\n",
    })
    outcome = run(pg_server, tmp_path)[2]
    assert codes(outcome) == ["DB011", "DB013"], outcome.findings  # type: ignore[attr-defined]
    db011, db013 = outcome.findings  # type: ignore[attr-defined]
    assert "could not create unique index" in db011.message and db011.line == 1
    assert "the failed up left index svc.parent_lower_name INVALID" in db013.message
    assert "DROP INDEX CONCURRENTLY svc.parent_lower_name;" in db013.message


def test_a_build_that_generated_rows_may_break_is_tested_on_empty_tables(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    # Generated values say nothing of the real ones: a unique build they break is a note.
    write_service(tmp_path, "svc", {
        "1_base.up.sql": "CREATE TABLE flags (id int PRIMARY KEY, on_ boolean NOT NULL);",
        "1_base.down.sql": "DROP TABLE flags;",
        "2_unique.up.sql": "CREATE UNIQUE INDEX CONCURRENTLY flags_on ON flags (on_);\n",
        "2_unique.down.sql": "DROP INDEX CONCURRENTLY flags_on;\n",
        "dependencies.json": dependencies_json({
            "1": entry(risk_level="low", affects_tables=["flags"]),
            "2": entry(risk_level="medium", affects_tables=["flags"], transactional=False)}),
    })
    outcome = run(pg_server, tmp_path)[2]
    assert codes(outcome) == []
    (note,) = [n for n in outcome.notes if "fails on the generated rows" in n]  # type: ignore
    assert "23505" in note and "migrations/testdata/2.sql" in note
    assert "left svc.flags_on INVALID" in note
