"""DB015: an up that reads every row of a table with rows while declared below high risk."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import dependencies_json, entry, write_service
from test_seeding import BASE, codes, make, run

from pytest_migorch.postgres.servers import PostgresServer

LOCK = "SET lock_timeout = '50ms';\n"


@pytest.mark.parametrize("up, down", [
    ("ALTER TABLE child ALTER COLUMN code SET NOT NULL;",
     "ALTER TABLE child ALTER COLUMN code DROP NOT NULL;"),
    ("ALTER TABLE child ADD CONSTRAINT positive CHECK (amount > 0);",
     "ALTER TABLE child DROP CONSTRAINT positive;"),
    # NOT VALID then VALIDATE in one transaction: the ADD's ACCESS EXCLUSIVE covers the scan
    ("ALTER TABLE child ADD CONSTRAINT c CHECK (code IS NOT NULL) NOT VALID;\n"
     "ALTER TABLE child VALIDATE CONSTRAINT c;",
     "ALTER TABLE child DROP CONSTRAINT c;"),
    # the UPDATE reads every row while the ADD COLUMN's lock is held, to the commit
    ("ALTER TABLE child ADD COLUMN note text;\nUPDATE child SET note = 'x';",
     "ALTER TABLE child DROP COLUMN note;"),
])
def test_a_full_scan_of_a_table_with_rows_below_high_risk_is_db015(
        pg_server: PostgresServer, tmp_path: Path, up: str, down: str) -> None:
    root = make(tmp_path, LOCK + up, down, risk="medium")
    outcome = run(pg_server, root)[2]
    assert codes(outcome) == ["DB015"], outcome.findings  # type: ignore[attr-defined]
    finding = outcome.findings[0]  # type: ignore[attr-defined]
    assert "declared medium" in finding.message and "svc.child" in finding.message
    assert "svc.parent" not in finding.message
    assert finding.file.name == "000002_change.up.sql"


def test_the_same_scan_declared_high_is_clean(pg_server: PostgresServer,
                                              tmp_path: Path) -> None:
    root = make(tmp_path, LOCK + "ALTER TABLE child ALTER COLUMN code SET NOT NULL;",
                "ALTER TABLE child ALTER COLUMN code DROP NOT NULL;", risk="high")
    assert codes(run(pg_server, root)[2]) == []


@pytest.mark.parametrize("up, down", [
    ("ALTER TABLE child ADD COLUMN note text;", "ALTER TABLE child DROP COLUMN note;"),
    ("ALTER TABLE child ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;",
     "ALTER TABLE child DROP CONSTRAINT positive;"),
    ("UPDATE child SET amount = amount WHERE id = 2;", "SELECT 1;"),
    # a backfill alone scans, but under row locks only: no reader waits
    ("UPDATE child SET amount = amount + 0;", "SELECT 1;"),
])
def test_no_scan_of_existing_rows_is_no_db015(pg_server: PostgresServer, tmp_path: Path,
                                              up: str, down: str) -> None:
    root = make(tmp_path, LOCK + up, down, risk="low")
    assert codes(run(pg_server, root)[2]) == []


def test_without_rows_there_is_nothing_to_scan(pg_server: PostgresServer,
                                               tmp_path: Path) -> None:
    root = make(tmp_path, LOCK + "ALTER TABLE child ALTER COLUMN code SET NOT NULL;",
                "ALTER TABLE child ALTER COLUMN code DROP NOT NULL;", risk="low")
    assert codes(run(pg_server, root, seed_data=False)[2]) == []


def test_ignore_comment_silences_db015(pg_server: PostgresServer, tmp_path: Path) -> None:
    root = make(tmp_path, "-- migorch:ignore DB015 the table has ten rows\n" + LOCK
                + "ALTER TABLE child ALTER COLUMN code SET NOT NULL;",
                "ALTER TABLE child ALTER COLUMN code DROP NOT NULL;", risk="low")
    assert codes(run(pg_server, root)[2]) == []


def test_a_scan_before_the_exclusive_lock_is_no_db015(pg_server: PostgresServer,
                                                      tmp_path: Path) -> None:
    # VALIDATE scans under SHARE UPDATE EXCLUSIVE; SET NOT NULL then takes ACCESS EXCLUSIVE,
    # held to the commit, but the valid CHECK spares it the scan (the add-column template).
    write_service(tmp_path, "svc", {
        "1_base.up.sql": BASE, "1_base.down.sql": "DROP TABLE child, parent;",
        "2_check.up.sql": LOCK + "ALTER TABLE child ADD CONSTRAINT c CHECK (code IS NOT NULL) "
                          "NOT VALID;",
        "2_check.down.sql": "ALTER TABLE child DROP CONSTRAINT c;",
        "3_not_null.up.sql": LOCK + "ALTER TABLE child VALIDATE CONSTRAINT c;\n"
                             "ALTER TABLE child ALTER COLUMN code SET NOT NULL;",
        "3_not_null.down.sql": "ALTER TABLE child ALTER COLUMN code DROP NOT NULL;\n"
                               "ALTER TABLE child DROP CONSTRAINT c;\n"
                               "ALTER TABLE child ADD CONSTRAINT c CHECK (code IS NOT NULL) "
                               "NOT VALID;",
        "dependencies.json": dependencies_json({
            str(v): entry(risk_level="low", affects_tables=["parent", "child"])
            for v in (1, 2, 3)}),
    })
    outcomes = run(pg_server, tmp_path)
    assert codes(outcomes[3]) == [], outcomes[3].findings  # type: ignore[attr-defined]


def test_the_scan_log_is_checked_once_per_connection_and_emptied_each_time(
        fresh_db: str) -> None:
    # Installed (or found) once per round-trip connection; before each up only emptied.
    import psycopg

    from pytest_migorch.postgres.probes import PROBE_SCHEMA
    from pytest_migorch.roundtrip.scans import install_scan_log, prepare_scan_log

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert prepare_scan_log(conn)
        conn.execute(f"INSERT INTO {PROBE_SCHEMA}.scan_log VALUES (1, 'svc.t', 0, false)")
        sent: list[str] = []
        original = conn.execute

        def counting(query: object, *args: object, **kwargs: object) -> object:
            sent.append(str(query))
            return original(query, *args, **kwargs)  # type: ignore[arg-type]

        conn.execute = counting  # type: ignore[method-assign]
        assert prepare_scan_log(conn) and install_scan_log(conn)
        conn.execute = original  # type: ignore[method-assign]
        assert [q.split()[0] for q in sent] == ["DELETE", "SELECT"]  # emptied, recording on
        assert "set_config" in sent[1]
        assert conn.execute(f"SELECT count(*) FROM {PROBE_SCHEMA}.scan_log").fetchone() == (0,)
    with psycopg.connect(fresh_db, autocommit=True) as other:  # another connection checks
        assert install_scan_log(other)


def test_the_scan_log_records_only_between_its_reset_and_its_stop(fresh_db: str) -> None:
    """The trigger returns at once unless recording is on: from reset_scan_log (before an
    up) to stop_scan_log (its log read); downs, re-ups and lock probes record nothing."""
    import psycopg

    from pytest_migorch.postgres.probes import PROBE_SCHEMA
    from pytest_migorch.roundtrip.scans import install_scan_log, reset_scan_log, stop_scan_log

    def logged(conn: psycopg.Connection[object]) -> int:
        row = conn.execute(f"SELECT count(*) FROM {PROBE_SCHEMA}.scan_log").fetchone()
        assert row is not None
        return int(row[0])

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert install_scan_log(conn)
        conn.execute("BEGIN; CREATE TABLE t (id int); ALTER TABLE t ADD COLUMN n int; COMMIT")
        assert logged(conn) == 0
        reset_scan_log(conn)
        conn.execute("BEGIN; ALTER TABLE t ADD COLUMN m int; COMMIT")
        assert logged(conn) == 1
        stop_scan_log(conn)
        conn.execute("BEGIN; ALTER TABLE t ADD COLUMN o int; COMMIT")
        assert logged(conn) == 1
