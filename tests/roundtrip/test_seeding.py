"""Rows in the tables before each up: what only rows reveal (DB011, DB012), on a real server."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import dependencies_json, entry, write_service

from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip

BASE = ("CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL UNIQUE);\n"
        "CREATE TABLE child (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "  parent_id int NOT NULL REFERENCES parent, amount numeric(5,2) NOT NULL,\n"
        "  code varchar(3), at timestamptz NOT NULL, tag uuid);\n")


def run(server: PostgresServer, root: Path, **options: object) -> dict[int, object]:
    project = load_project(root)
    options.setdefault("seed_data", True)
    roundtrip = RoundTrip(server, project, ProjectGraph(project), "svc", "default",
                          **options)  # type: ignore[arg-type]
    try:
        return {o.migration.version: o for o in roundtrip.run_all()}
    finally:
        roundtrip.close()


def make(tmp_path: Path, second_up: str, second_down: str, risk: str = "high") -> Path:
    write_service(tmp_path, "svc", {
        "000001_base.up.sql": BASE, "000001_base.down.sql": "DROP TABLE child, parent;",
        "000002_change.up.sql": second_up, "000002_change.down.sql": second_down,
        "dependencies.json": dependencies_json({
            "000001": entry("base", risk_level="low", affects_tables=["parent", "child"]),
            "000002": entry("change", risk_level=risk, affects_tables=["child", "parent"])}),
    })
    return tmp_path


def codes(outcome: object) -> list[str]:
    return [f.code for f in outcome.findings]  # type: ignore[attr-defined]


def test_generated_rows_fill_tables_in_foreign_key_order(pg_server: PostgresServer,
                                                         tmp_path: Path) -> None:
    root = make(tmp_path, "SET lock_timeout = '100ms';\nALTER TABLE child ADD COLUMN note text;",
                "ALTER TABLE child DROP COLUMN note;")
    outcome = run(pg_server, root)[2]
    assert codes(outcome) == [], outcome.notes  # type: ignore[attr-defined]
    assert any("generated rows before up" in n and "svc.child 3" in n and "svc.parent 3" in n
               for n in outcome.notes), outcome.notes  # type: ignore[attr-defined]


def test_not_null_column_without_default_fails_only_with_rows(pg_server: PostgresServer,
                                                             tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE child\n  ADD COLUMN note text NOT NULL;",
                "ALTER TABLE child DROP COLUMN note;")
    finding = run(pg_server, root)[2].findings[0]  # type: ignore[attr-defined]
    assert finding.code == "DB011"
    assert "passes on empty tables" in finding.message
    assert "contains null values" in finding.message and "23502" in finding.message
    assert finding.file.name == "000002_change.up.sql" and finding.line == 1


def test_without_seed_data_the_same_up_passes(pg_server: PostgresServer, tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE child ADD COLUMN note text NOT NULL;",
                "ALTER TABLE child DROP COLUMN note;")
    found = run(pg_server, root, seed_data=False)[2].findings  # type: ignore[attr-defined]
    assert [f.code for f in found if f.is_error] == []


def test_an_up_failing_on_empty_tables_too_stays_db001(pg_server: PostgresServer,
                                                       tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE nowhere ADD COLUMN x int;", "SELECT 1;")
    assert codes(run(pg_server, root)[2]) == ["DB001"]


def test_a_down_that_loses_rows_is_reported(pg_server: PostgresServer, tmp_path: Path) -> None:
    root = make(tmp_path, "DELETE FROM child WHERE id = (SELECT min(id) FROM child);",
                "SELECT 1;", risk="high")
    finding = run(pg_server, root)[2].findings[0]  # type: ignore[attr-defined]
    assert finding.code == "DB012"
    assert "1 of 3 rows of svc.child are gone" in finding.message
    assert finding.file.name == "000002_change.down.sql"


def test_a_down_that_loses_column_values_is_reported(pg_server: PostgresServer,
                                                     tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE child DROP COLUMN code;",
                "ALTER TABLE child ADD COLUMN code varchar(3);")
    found = run(pg_server, root)[2].findings  # type: ignore[attr-defined]
    assert "DB012" in [f.code for f in found]
    assert any("svc.child.code" in f.message for f in found if f.code == "DB012")


def test_ignore_comment_silences_db012(pg_server: PostgresServer, tmp_path: Path) -> None:
    root = make(tmp_path, "-- migorch:ignore DB012 the rows are test data\n"
                "DELETE FROM child WHERE id = (SELECT min(id) FROM child);", "SELECT 1;")
    assert "DB012" not in codes(run(pg_server, root)[2])


def test_testdata_fixture_is_loaded_before_the_up(pg_server: PostgresServer,
                                                   tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE parent ADD CONSTRAINT short CHECK (length(name) < 5);",
                "ALTER TABLE parent DROP CONSTRAINT short;")
    testdata = root / "svc" / "migrations" / "testdata"
    testdata.mkdir()
    (testdata / "2.sql").write_text("INSERT INTO parent (name) VALUES ('a long name');\n")
    project = load_project(root)
    assert not [f for f in project.services["svc"].findings if "testdata" in f.message]
    assert "testdata" not in project.services["svc"].environment_names()
    outcome = run(pg_server, root)[2]
    assert codes(outcome) == ["DB011"]
    assert any("2.sql" in n for n in outcome.notes)  # type: ignore[attr-defined]


def test_a_failure_the_generated_values_may_cause_is_a_note_not_db011(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    # A text column the application fills with JSON: the generated text is not JSON, and
    # saying the up would fail in production would be a false red.
    root = make(tmp_path, "ALTER TABLE parent ADD COLUMN n int;\n"
                "UPDATE parent SET n = (name::json ->> 'n')::int;",
                "ALTER TABLE parent DROP COLUMN n;")
    outcome = run(pg_server, root)[2]
    assert [f.code for f in outcome.findings if f.is_error] == []  # type: ignore[attr-defined]
    (note,) = [n for n in outcome.notes if "fails on the generated rows" in n]  # type: ignore
    assert "invalid input syntax for type json" in note and "22P02" in note
    assert "line 2" in note and "testdata/2.sql" in note


def test_the_same_failure_on_the_team_s_rows_is_db011(pg_server: PostgresServer,
                                                      tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE parent ADD COLUMN n int;\n"
                "UPDATE parent SET n = (name::json ->> 'n')::int;",
                "ALTER TABLE parent DROP COLUMN n;")
    testdata = root / "svc" / "migrations" / "testdata"
    testdata.mkdir()
    (testdata / "2.sql").write_text("INSERT INTO parent (name) VALUES ('not json');\n")
    finding = run(pg_server, root)[2].findings[0]  # type: ignore[attr-defined]
    assert (finding.code, finding.line) == ("DB011", 2)


def test_an_up_that_only_adds_rows_loses_nothing(pg_server: PostgresServer,
                                                 tmp_path: Path) -> None:
    # Up then a no-op down leave one row more than before, which is no loss.
    root = make(tmp_path, "INSERT INTO child (parent_id, amount, at)\n"
                "SELECT min(id), 1, now() FROM parent;", "SELECT 1;")
    assert codes(run(pg_server, root)[2]) == []


def test_a_backfill_whose_down_keeps_the_values_loses_nothing(pg_server: PostgresServer,
                                                              tmp_path: Path) -> None:
    # The NULLs the up fills in carried no data; the down keeping the values destroys none.
    root = make(tmp_path, "UPDATE child SET tag = gen_random_uuid() WHERE tag IS NULL;",
                "SELECT 1;")
    seeding = root / "svc" / "migrations" / "testdata"
    seeding.mkdir()
    (seeding / "2.sql").write_text(
        "INSERT INTO parent (name) VALUES ('p');\n"
        "INSERT INTO child (parent_id, amount, at) SELECT id, 1, now() FROM parent;\n")
    assert codes(run(pg_server, root)[2]) == []


def test_a_unique_column_with_a_constant_default_gets_generated_values(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    # Every row left to DEFAULT '' would collide under the UNIQUE: the generator fills it.
    root = make(tmp_path, "SET lock_timeout = '50ms';\n"
                "ALTER TABLE parent ADD COLUMN code varchar(8) NOT NULL DEFAULT '' UNIQUE;",
                "ALTER TABLE parent DROP COLUMN code;")
    write = root / "svc" / "migrations"
    (write / "000003_more.up.sql").write_text("SET lock_timeout = '50ms';\n"
                                              "ALTER TABLE parent ADD COLUMN note text;")
    (write / "000003_more.down.sql").write_text("ALTER TABLE parent DROP COLUMN note;")
    deps = json.loads((write / "dependencies.json").read_text())
    deps["migrations"]["000003"] = entry("more", affects_tables=["parent"])
    (write / "dependencies.json").write_text(json.dumps(deps))
    outcome = run(pg_server, root)[3]
    assert codes(outcome) == []
    assert not [n for n in outcome.notes if "could not fill" in n]  # type: ignore[attr-defined]


def test_rows_are_inserted_in_one_statement_and_row_by_row_when_refused(fresh_db: str) -> None:
    # One INSERT per table when the rows pass; when a constraint refuses the batch (here a
    # UNIQUE boolean: rows 0 and 2 are both true), row by row as before, the refused row
    # retried with its nullable columns NULL; a self reference reads the rows before it (the
    # first row has none to reference).
    import psycopg

    from pytest_migorch.roundtrip.seeding import seed_tables

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA svc; CREATE TABLE svc.plain (id serial PRIMARY KEY, n int);"
                     "CREATE TABLE svc.flags (b boolean UNIQUE);"
                     "CREATE TABLE svc.tree (id int PRIMARY KEY, parent int REFERENCES svc.tree)")
        statements: list[bytes] = []
        conn.add_notice_handler(lambda _: None)
        original = conn.execute

        def counting(query: object, *args: object, **kwargs: object) -> object:
            if "INSERT" in str(query):
                statements.append(str(query).encode())
            return original(query, *args, **kwargs)  # type: ignore[arg-type]

        conn.execute = counting  # type: ignore[method-assign]
        result = seed_tables(conn, ["svc"], "svc/2")
        conn.execute = original  # type: ignore[method-assign]
        assert result.filled == {"svc.plain": 3, "svc.flags": 3, "svc.tree": 3}, result.unfilled
        assert conn.execute("SELECT count(*) FROM svc.flags WHERE b IS NULL").fetchone() == (1,)
        assert conn.execute("SELECT count(parent) FROM svc.tree").fetchone() == (2,)
    plain = [s for s in statements if b"plain" in s]
    assert len(plain) == 1  # one statement for its three rows
    assert len([s for s in statements if b"flags" in s]) == 1 + 4  # batch, then 2 + 2 tries
