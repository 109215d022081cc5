"""The tracked snapshot, re-reading only what changed, against a full read of the catalogue.

Every case applies one change (or a change and its undoing) to the base schema of
test_snapshot.py and checks that the tracker's snapshot equals ``take_snapshot``, key for key, and
that it got there by a partial read: a tracker that missed something would let a down that fails
to undo it pass the round-trip.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from pytest_migorch.errors import DatabaseError
from pytest_migorch.postgres.probes import PROBE_SCHEMA, install_probes, reset_ddl_log
from pytest_migorch.postgres.snapshot import diff_snapshots, take_snapshot
from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker

from test_snapshot import BASE_SCHEMA, CASES

EXTRA_CASES = {
    "schema renamed": "ALTER SCHEMA app RENAME TO app2",
    "table renamed (views, foreign keys, row type users)":
        "CREATE TABLE app.holder (u app.users, us app.users[]);"
        " ALTER TABLE app.users RENAME TO people",
    "column renamed (index, view, foreign key)": "ALTER TABLE app.users RENAME COLUMN id TO uid",
    "table moved to another schema": "CREATE SCHEMA other; ALTER TABLE app.users SET SCHEMA other",
    "type renamed (columns, domain base)": "ALTER TYPE app.mood RENAME TO feeling",
    "function renamed (trigger)": "ALTER FUNCTION app.touch() RENAME TO refresh",
    "sequence renamed (column default)": "ALTER SEQUENCE app.users_id_seq RENAME TO ids",
    "index renamed": "ALTER INDEX app.users_email_idx RENAME TO users_mail_idx",
    "constraint renamed": "ALTER TABLE app.users RENAME CONSTRAINT users_email_check TO ok",
    "partition attached": "CREATE TABLE app.events_2025 (at date NOT NULL, payload jsonb);"
                          " ALTER TABLE app.events ATTACH PARTITION app.events_2025"
                          " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
    "sequence owned by nobody": "ALTER SEQUENCE app.users_id_seq OWNED BY NONE",
    "index comment": "COMMENT ON INDEX app.users_email_idx IS 'lookups'",
    "constraint comment": "COMMENT ON CONSTRAINT users_email_check ON app.users IS 'x'",
    "schema comment": "COMMENT ON SCHEMA public IS 'shared'",
    "trigger comment": "COMMENT ON TRIGGER users_touch ON app.users IS 'x'",
    "default dropped": "ALTER TABLE app.users ALTER COLUMN nickname DROP DEFAULT",
    "enum label renamed": "ALTER TYPE app.mood RENAME VALUE 'ok' TO 'fine'",
    "domain default": "ALTER DOMAIN app.posint SET DEFAULT 1",
    "domain constraint dropped": "ALTER DOMAIN app.posint DROP CONSTRAINT posint_check",
    "view options": "ALTER VIEW app.active_users SET (security_barrier = true)",
    "table options": "ALTER TABLE app.users SET (fillfactor = 70)",
    "replica mode hides no DDL": "SET session_replication_role = replica;"
                                 " ALTER TABLE app.users ADD COLUMN bio text;"
                                 " DROP INDEX app.users_email_idx;"
                                 " SET session_replication_role = origin",
    "catalogue updated by hand": "UPDATE pg_catalog.pg_attribute SET atttypmod = 54"
                                 " WHERE attrelid = 'app.users'::regclass"
                                 " AND attname = 'nickname'",
    "comment updated by hand": "UPDATE pg_catalog.pg_description SET description = 'folk'"
                               " WHERE objoid = 'app.users'::regclass AND objsubid = 0",
    "grant (not part of a snapshot)": "GRANT SELECT ON app.users TO PUBLIC",
    "dropped and created again": "DROP TABLE app.orders;"
                                 " CREATE TABLE app.orders (id int PRIMARY KEY, note text)",
    "view on a view": "CREATE VIEW app.v2 AS SELECT * FROM app.active_users;"
                      " ALTER VIEW app.active_users RENAME TO busy_users",
}

ALL_CASES = {**{case.name: case.change for case in CASES}, **EXTRA_CASES}


@pytest.fixture
def db(fresh_db: str) -> Iterator[psycopg.Connection]:
    """The base schema, with the DDL event triggers the round-trip installs."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(BASE_SCHEMA)
        assert install_probes(conn)
        yield conn


def _full(conn: psycopg.Connection) -> dict:
    return dict(take_snapshot(conn, exclude_schemas=[PROBE_SCHEMA]).objects)


@pytest.mark.parametrize("change", ALL_CASES.values(), ids=list(ALL_CASES))
def test_a_partial_read_equals_a_full_one(db: psycopg.Connection, change: str) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    assert dict(tracker.snapshot(db).objects) == _full(db)
    db.execute(change)
    tracked = tracker.snapshot(db)
    assert (tracker.full_reads, tracker.partial_reads) == (1, 1)
    assert diff_snapshots(take_snapshot(db, exclude_schemas=[PROBE_SCHEMA]), tracked) == []
    assert dict(tracked.objects) == _full(db)


def test_changes_across_many_reads_add_up(db: psycopg.Connection) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    tracker.snapshot(db)
    failed = 0
    for change in reversed(EXTRA_CASES.values()):  # renaming the schema last
        try:
            db.execute(change)
        except psycopg.Error:  # an earlier change removed what this one needs; a failed
            failed += 1  # statement may leave a gap in the log, and a full read follows
        assert dict(tracker.snapshot(db).objects) == _full(db), change
    assert tracker.full_reads <= 1 + failed
    assert failed < len(EXTRA_CASES) // 2


def test_a_partial_read_costs_what_changed(db: psycopg.Connection) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    tracker.snapshot(db)
    assert tracker.snapshot(db) == take_snapshot(db, exclude_schemas=[PROBE_SCHEMA])
    assert tracker.last_read == 0  # nothing changed, nothing read
    db.execute("CREATE TABLE app.lonely (id int)")
    tracker.snapshot(db)
    assert tracker.last_read == 2  # the table and its column, of the ~60 objects


def test_lost_events_mean_a_full_read(db: psycopg.Connection) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    tracker.snapshot(db)
    db.execute("ALTER TABLE app.users ADD COLUMN bio text")
    reset_ddl_log(db)  # another session emptied the log before the tracker read it
    assert dict(tracker.snapshot(db).objects) == _full(db)
    assert tracker.full_reads == 2
    with db.transaction():
        db.execute("ALTER TABLE app.users ADD COLUMN lost text")
        db.execute("ROLLBACK")  # a rolled-back transaction leaves a gap in the log
    assert dict(tracker.snapshot(db).objects) == _full(db)
    assert tracker.full_reads == 3


def test_a_deallocated_statement_is_prepared_again(db: psycopg.Connection) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    tracker.snapshot(db)
    tracker.snapshot(db)  # prepared now: the next read is one message
    db.execute("DEALLOCATE ALL; ALTER TABLE app.users ADD COLUMN bio text")
    assert dict(tracker.snapshot(db).objects) == _full(db)
    db.execute("ALTER TABLE app.users DROP COLUMN bio")
    assert dict(tracker.snapshot(db).objects) == _full(db)
    assert (tracker.full_reads, tracker.partial_reads) == (1, 3)
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_another_connection_means_a_full_read(db: psycopg.Connection, fresh_db: str) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    tracker.snapshot(db)
    with psycopg.connect(fresh_db, autocommit=True) as other:
        other.execute("ALTER TABLE app.users ADD COLUMN bio text")
        assert dict(tracker.snapshot(other).objects) == _full(db)
    assert tracker.full_reads == 2


def test_without_event_triggers_every_read_is_full(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(BASE_SCHEMA)
        tracker = SnapshotTracker()
        first = tracker.snapshot(conn, events=False)
        conn.execute("ALTER TABLE app.users ADD COLUMN bio text")
        second = tracker.snapshot(conn, events=False)
        assert [d.message for d in diff_snapshots(first, second)] == [
            "column app.users.bio is still there"]
        assert tracker.full_reads == 2


def test_a_broken_connection_becomes_a_database_error(db: psycopg.Connection,
                                                      fresh_db: str) -> None:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    with psycopg.connect(fresh_db) as conn:
        tracker.snapshot(conn)
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT 1/0")
        with pytest.raises(DatabaseError, match="could not take a schema snapshot"):
            tracker.snapshot(conn)
