"""A transactional up, down or re-up travels with its transaction, the ground truth and the
snapshot after it in one message (roundtrip.file_step, roundtrip.file_message,
postgres.snapshot_function): what that message can fail on is still told apart, and every
finding is the one the separate messages gave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_seeding import codes, make, run

from pytest_migorch.errors import DatabaseError
from pytest_migorch.model import MigrationFile
from pytest_migorch.postgres.probes import PROBE_SCHEMA
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.roundtrip.engine import RoundTrip
from pytest_migorch.roundtrip.file_message import run_in_one_message
from pytest_migorch.postgres.statements import MigrationSqlError

#: The snapshot function, replaced by one whose read always fails (its row says so).
_BREAK = f"""
DO $break$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n
             ON n.oid = p.pronamespace WHERE n.nspname = '{PROBE_SCHEMA}'
             AND p.proname LIKE 'snapshot\\_%' LOOP
        EXECUTE format('CREATE OR REPLACE FUNCTION %s RETURNS TABLE (snapshot_document text,
            snapshot_last_seq bigint, snapshot_newer bigint, snapshot_xid bigint,
            snapshot_scope oid[]) LANGUAGE plpgsql AS $f$ BEGIN RETURN QUERY SELECT
            ''broken'', NULL::bigint, NULL::bigint, NULL::bigint, NULL::oid[]; END $f$', f);
    END LOOP;
END $break$
"""


def _broken_function(monkeypatch: pytest.MonkeyPatch, how: str = _BREAK) -> list[int]:
    """Every round-trip database gets a snapshot function that fails; the count of them."""
    broken: list[int] = []
    original = RoundTrip._new_database

    def new_database(self: RoundTrip) -> None:
        original(self)
        self.conn.execute(how)
        broken.append(1)

    monkeypatch.setattr(RoundTrip, "_new_database", new_database)
    return broken


DOWN_LEAVES_A_COLUMN = ("ALTER TABLE child ADD COLUMN note text;\nALTER TABLE child ADD COLUMN "
                        "memo text;", "ALTER TABLE child DROP COLUMN memo;")


@pytest.mark.parametrize("broken", [False, True], ids=["function", "function-fails"])
def test_a_down_leaving_residue_is_found_whether_or_not_the_snapshot_function_works(
        pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        broken: bool) -> None:
    """When the function's read fails after the file committed, the file is not taken for
    failed and the snapshot is read on its own: the residue is still DB003, the clean base
    clean."""
    made = _broken_function(monkeypatch) if broken else []
    outcomes = run(pg_server, make(tmp_path, *DOWN_LEAVES_A_COLUMN), seed_data=False)
    assert codes(outcomes[1]) == []
    assert codes(outcomes[2]) == ["DB003"]
    assert "note" in outcomes[2].findings[0].message  # type: ignore[attr-defined]
    assert bool(made) == broken


def test_a_re_up_that_differs_is_found_with_a_failing_snapshot_function(
        pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _broken_function(monkeypatch)
    root = make(tmp_path, "CREATE TABLE IF NOT EXISTS extra (id int);\n"
                          "ALTER TABLE child ADD COLUMN IF NOT EXISTS note text;",
                "ALTER TABLE child DROP COLUMN note;\nALTER TABLE extra ADD COLUMN more int;")
    outcomes = run(pg_server, root, seed_data=False)
    # extra.more stays after down: the residue (DB008: extra is not in affects_tables)
    assert codes(outcomes[2]) == ["DB008", "DB003"]


def test_a_snapshot_function_that_errors_is_an_error_of_the_round_trip(
        pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It never errors; if it does (dropped by a migration), whether the file committed
    cannot be told: an error of the round-trip, never a finding about the file."""
    _broken_function(monkeypatch, _BREAK.replace(
        "RETURN QUERY SELECT\n            ''broken'', NULL::bigint, NULL::bigint, NULL::bigint,"
        " NULL::oid[];", "RAISE EXCEPTION ''gone'';"))
    with pytest.raises(DatabaseError, match="snapshot function is gone"):
        run(pg_server, make(tmp_path, *DOWN_LEAVES_A_COLUMN), seed_data=False)


def test_a_down_that_fails_only_at_commit_is_a_failed_down(pg_server: PostgresServer,
                                                            tmp_path: Path) -> None:
    """A deferred foreign key is checked by COMMIT, in the file's message: the down fails
    (DB002) with PostgreSQL's message, not as an error of the round-trip."""
    root = make(tmp_path, "CREATE TABLE owner_t (id int PRIMARY KEY);\nCREATE TABLE owned_t "
                          "(owner_id int REFERENCES owner_t DEFERRABLE INITIALLY DEFERRED);",
                "INSERT INTO owned_t VALUES (42);\nSELECT 1;")
    outcomes = run(pg_server, root, seed_data=False)
    [finding] = [f for f in outcomes[2].findings  # type: ignore[attr-defined]
                 if f.code != "DB008"]  # the tables are not in affects_tables
    assert finding.code == "DB002"
    assert "foreign key" in finding.message


def _file(tmp_path: Path, text: str) -> MigrationFile:
    path = tmp_path / "000001_x.down.sql"
    path.write_text(text)
    return MigrationFile(path, 1, "000001", "x", "down", "sql", None)


def test_the_second_run_of_a_failing_file_sets_its_search_path_again(
        fresh_db: str, tmp_path: Path) -> None:
    """The rollback also undid the ``SET search_path`` sent with the file: without it again,
    the first statement would fail (its table is only in the service's schema), at line 1."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA s; CREATE TABLE s.t (id int)")
        file = _file(tmp_path, "INSERT INTO t VALUES (1);\nSELECT 1 / 0;")
        with pytest.raises(MigrationSqlError) as failed:
            run_in_one_message(conn, file, before=[b"BEGIN", b"SET search_path TO s, public"],
                               after=[b"COMMIT"], setup=b"SET search_path TO s, public")
        assert (failed.value.line, failed.value.pg_message) == (2, "division by zero")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM s.t").fetchone() == (0,)


def test_a_syntax_error_anywhere_in_the_message_is_the_file_failing(
        fresh_db: str, tmp_path: Path) -> None:
    """PostgreSQL parses the message before running it: nothing ran, the session is idle,
    and the error is the file's, at its line (not the snapshot's)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        file = _file(tmp_path, "CREATE TABLE t (id int);\nCREATE TABLE u (id int,, x int);")
        with pytest.raises(MigrationSqlError) as failed:
            run_in_one_message(conn, file, before=[b"BEGIN"], after=[b"COMMIT", b"SELECT 1"],
                               setup=b"SET search_path TO public", check=b"SELECT 1")
        assert failed.value.line == 2
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_the_query_after_the_file_comes_back_with_it(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        file = _file(tmp_path, "CREATE TABLE t (id int);\n-- a comment alone\n;\n"
                               "INSERT INTO t VALUES (7);\nSELECT * FROM t;")
        done = run_in_one_message(conn, file, before=[b"BEGIN", b"SELECT 'first'"],
                                  after=[b"COMMIT", b"SELECT count(*), min(id) FROM t"],
                                  setup=b"")
        assert done == [None, [("first",)], None, [(1, 7)]]
        row: Any = conn.execute("SELECT count(*) FROM t").fetchone()
        assert row == (1,)


def test_a_failure_of_our_own_query_in_the_message_applies_the_file_the_old_way(
        pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state before an up fails inside the file's transaction (its function is broken
    here): the file alone passes when run again, so the failure was not the file's; the up
    is applied in separate messages and nothing is reported, not a DB001 the file never had."""
    from pytest_migorch.postgres.cached_plans import cached
    from pytest_migorch.postgres.probes import STATE_QUERY

    original = RoundTrip._new_database

    def new_database(self: RoundTrip) -> None:
        original(self)
        call = cached(self.conn, STATE_QUERY)
        assert call != STATE_QUERY
        function = call.removeprefix("SELECT * FROM ").removesuffix("()")
        self.conn.execute(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS TABLE (migorch_out_1 text,"
            " migorch_out_2 bigint, migorch_out_3 text, migorch_out_4 text, migorch_out_5 text,"
            " migorch_out_6 bigint) LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'broken';"
            " END $f$")

    monkeypatch.setattr(RoundTrip, "_new_database", new_database)
    outcomes = run(pg_server, make(tmp_path, *DOWN_LEAVES_A_COLUMN), seed_data=False)
    assert codes(outcomes[1]) == []
    assert codes(outcomes[2]) == ["DB003"]
    assert outcomes[2].truth is not None  # type: ignore[attr-defined]
    assert "svc.child" in outcomes[2].truth.ddl_tables  # type: ignore[attr-defined]
