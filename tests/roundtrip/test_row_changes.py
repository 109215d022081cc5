"""After the down only the tables whose rows may differ are read again (DB012), and every
table is read again whenever that cannot be told: each case below loses rows or values in a
way one of the signals misses, and must still be DB012."""

from __future__ import annotations

from pathlib import Path

import psycopg
from helpers import write_service
from test_seeding import codes, make, run

from pytest_migorch.postgres.probes import PROBE_SCHEMA, install_probes
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker
from pytest_migorch.roundtrip.row_changes import RowChanges

LOSE_A_ROW = "DELETE FROM child WHERE id = (SELECT min(id) FROM child);"


def test_rows_deleted_move_the_counters(pg_server: PostgresServer, tmp_path: Path) -> None:
    assert codes(run(pg_server, make(tmp_path, LOSE_A_ROW, "SELECT 1;"))[2]) == ["DB012"]


def test_values_lost_by_ddl_alone_are_seen_through_the_tracker(pg_server: PostgresServer,
                                                               tmp_path: Path) -> None:
    """A column dropped and added again writes no row: only the tracker names the table."""
    root = make(tmp_path, "ALTER TABLE child DROP COLUMN code;",
                "ALTER TABLE child ADD COLUMN code varchar(3);")
    assert "DB012" in codes(run(pg_server, root)[2])


def test_a_truncate_moves_the_relfilenode(pg_server: PostgresServer, tmp_path: Path) -> None:
    root = make(tmp_path, "SET lock_timeout = '1s';\nTRUNCATE child;", "SELECT 1;")
    assert codes(run(pg_server, root)[2]) == ["DB012"]


def test_counters_turned_off_by_the_migration_read_every_table(pg_server: PostgresServer,
                                                              tmp_path: Path) -> None:
    """The up's DELETE is not counted, and the down turns the counters on again."""
    root = make(tmp_path, f"SET track_counts = off;\n{LOSE_A_ROW}", "SET track_counts = on;")
    assert codes(run(pg_server, root)[2]) == ["DB012"]


def test_counters_left_off_by_an_earlier_migration_read_every_table(
    pg_server: PostgresServer, tmp_path: Path,
) -> None:
    """Migration 3 says nothing of the counters, which 2 turned off for the session."""
    make(tmp_path, "SET track_counts = off;", "SELECT 1;")
    write_service(tmp_path, "svc", {"000003_lose.up.sql": LOSE_A_ROW,
                                    "000003_lose.down.sql": "SELECT 1;"})
    assert codes(run(pg_server, tmp_path)[3]) == ["DB012"]


def test_lost_ddl_events_read_every_table(pg_server: PostgresServer, tmp_path: Path) -> None:
    """The down empties the DDL log: the tracker reads everything again, so must DB012."""
    root = make(tmp_path, "ALTER TABLE child DROP COLUMN code;",
                "ALTER TABLE child ADD COLUMN code varchar(3);\n"
                f"DELETE FROM {PROBE_SCHEMA}.ddl_log;")
    assert "DB012" in codes(run(pg_server, root)[2])


def test_ddl_after_the_last_snapshot_reads_every_table(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True, prepare_threshold=None) as conn:
        assert install_probes(conn)
        conn.execute("CREATE TABLE t (id int, code text); INSERT INTO t VALUES (1, 'a')")
        tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
        tracker.snapshot(conn)
        oid = conn.execute("SELECT 't'::regclass::oid").fetchone()[0]  # type: ignore[index]
        changes = RowChanges(tracker)
        changes.receive(changes.send(conn, [oid]))
        assert changes.changed(conn, [oid]) == set()
        assert changes.changed(conn, [oid]) == set()  # stamped again by the call before
        conn.execute("ALTER TABLE t DROP COLUMN code")  # no snapshot since
        assert changes.changed(conn, [oid]) is None
        tracker.snapshot(conn)
        changes.receive(changes.send(conn, [oid]))
        conn.execute("UPDATE t SET id = 2")
        assert changes.changed(conn, [oid]) == {oid}


def test_rows_changed_by_the_re_up_are_read_again_before_the_next_up(
    pg_server: PostgresServer, tmp_path: Path,
) -> None:
    """Migration 2's re-up writes other values than its first up; 3's down writes the same
    values back (a change of no value): kept from 2's down, 3's rows before its up would
    differ from those after its down, a false DB012."""
    make(tmp_path, "UPDATE child SET code = left(md5(random()::text), 3);", "SELECT 1;")
    write_service(tmp_path, "svc", {"000003_same.up.sql": "SELECT 1;",
                                    "000003_same.down.sql": "UPDATE child SET code = code;"})
    outcomes = run(pg_server, tmp_path)
    assert codes(outcomes[2]) == ["DB012"]  # the first up's values are gone
    assert codes(outcomes[3]) == []


def _partitioned(tmp_path: Path, up: str) -> Path:
    write_service(tmp_path, "svc", {
        "000001_events.up.sql": "CREATE TABLE events (id int, note text) PARTITION BY RANGE (id);"
                                "\nCREATE TABLE events_1 PARTITION OF events"
                                " FOR VALUES FROM (MINVALUE) TO (MAXVALUE);",
        "000001_events.down.sql": "DROP TABLE events;",
        "000002_lose.up.sql": up, "000002_lose.down.sql": "SELECT 1;",
    })
    return tmp_path


def test_rows_lost_in_a_partition_are_the_partitioned_tables(pg_server: PostgresServer,
                                                             tmp_path: Path) -> None:
    """The partition's counters move, not its parent's, which is the table read."""
    root = _partitioned(tmp_path, "DELETE FROM events_1 WHERE id = (SELECT min(id) FROM events);")
    assert codes(run(pg_server, root)[2]) == ["DB012"]


def test_rows_lost_in_an_inheritance_child_are_its_parents_too(pg_server: PostgresServer,
                                                                tmp_path: Path) -> None:
    """The parent's rows, as read, include its child's: the child's loss is the parent's."""
    write_service(tmp_path, "svc", {
        "000001_base.up.sql": "CREATE TABLE base (id int, note text);\n"
                              "CREATE TABLE extra (id int, note text) INHERITS (base);",
        "000001_base.down.sql": "DROP TABLE extra, base;",
        "000002_lose.up.sql": "DELETE FROM extra WHERE id = (SELECT min(id) FROM extra);",
        "000002_lose.down.sql": "SELECT 1;",
    })
    found = run(pg_server, tmp_path)[2].findings  # type: ignore[attr-defined]
    assert sorted(f.message.split(", ", 1)[1].split(" are gone")[0] for f in found) == [
        "1 of 3 rows of svc.extra", "1 of 6 rows of svc.base"]


def test_a_truncated_partition_is_seen_through_the_tracker(pg_server: PostgresServer,
                                                           tmp_path: Path) -> None:
    """TRUNCATE moves no counter; the partitions get new storage, not their parent."""
    root = _partitioned(tmp_path, "SET lock_timeout = '1s';\nTRUNCATE events;")
    assert codes(run(pg_server, root)[2]) == ["DB012"]
