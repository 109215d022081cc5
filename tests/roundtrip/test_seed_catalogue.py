"""Seeding's catalogue, re-read only where the snapshot tracker says it may have changed, is the
catalogue a full read gives; and whenever the tracker cannot say, it is read in full again.

Each step below changes what seeding reads (a column, a type's labels, a foreign key's target,
a unique index, a default, a table gone or new) and is followed by a snapshot, as in the
round-trip; the cached read must equal a fresh full read after every one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pytest_migorch.postgres.probes import PROBE_SCHEMA, install_probes
from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker
from pytest_migorch.roundtrip.seed_catalogue import SeedCatalogue
from pytest_migorch.roundtrip.seeding import read_catalogue

SCHEMAS = ["other", "shop"]

SETUP = """
CREATE SCHEMA shop; CREATE SCHEMA other;
CREATE TYPE shop.mood AS ENUM ('ok');
CREATE TABLE shop.items (id int PRIMARY KEY, name text NOT NULL, mood shop.mood);
CREATE TABLE other.refs (id int, item int REFERENCES shop.items (id));
"""

STEPS = {
    "column added": "ALTER TABLE shop.items ADD COLUMN price int NOT NULL DEFAULT 0",
    "enum label added": "ALTER TYPE shop.mood ADD VALUE 'sad'",
    "referenced table renamed": "ALTER TABLE shop.items RENAME TO goods",
    "referenced column renamed": "ALTER TABLE shop.goods RENAME COLUMN id TO ident",
    "unique index on a column with a default": "CREATE UNIQUE INDEX ON shop.goods (price)",
    "default dropped": "ALTER TABLE shop.goods ALTER COLUMN price DROP DEFAULT",
    "NOT NULL dropped": "ALTER TABLE shop.goods ALTER COLUMN name DROP NOT NULL",
    "foreign key dropped": "ALTER TABLE other.refs DROP CONSTRAINT refs_item_fkey",
    "table created": "CREATE TABLE shop.new (id int REFERENCES shop.goods (ident), note text)",
    "table dropped": "DROP TABLE other.refs",
    "column type changed": "ALTER TABLE shop.new ALTER COLUMN note TYPE varchar(5)",
    "schema renamed": "ALTER SCHEMA other RENAME TO elsewhere",
}


@pytest.fixture
def conn(fresh_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_db, autocommit=True, prepare_threshold=None) as connection:
        assert install_probes(connection)
        connection.execute(SETUP)
        yield connection


def _tracked(conn: psycopg.Connection[Any]) -> tuple[SnapshotTracker, SeedCatalogue]:
    tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])
    tracker.snapshot(conn)
    return tracker, SeedCatalogue(tracker)


def test_each_change_is_read_as_a_full_read_reads_it(conn: psycopg.Connection[Any]) -> None:
    tracker, catalogue = _tracked(conn)
    assert catalogue.read(conn, SCHEMAS) == read_catalogue(conn, SCHEMAS)
    for step, ddl in STEPS.items():
        conn.execute(ddl)
        tracker.snapshot(conn)
        assert catalogue.read(conn, SCHEMAS) == read_catalogue(conn, SCHEMAS), step
    assert (catalogue.full_reads, catalogue.partial_reads) == (1, len(STEPS))


def _columns(catalogue: SeedCatalogue, conn: psycopg.Connection[Any], **kwargs: bool,
             ) -> list[str]:
    tables, _ = catalogue.read(conn, SCHEMAS, **kwargs)
    return [c.name for t in tables if t.name == "items" for c in t.columns]


def test_after_lost_events_the_catalogue_is_read_in_full(conn: psycopg.Connection[Any]) -> None:
    """The tracker read everything again (the log lost rows): so must seeding."""
    tracker, catalogue = _tracked(conn)
    assert _columns(catalogue, conn) == ["id", "name", "mood"]
    conn.execute("ALTER TABLE shop.items ADD COLUMN price int")
    conn.execute(f"DELETE FROM {PROBE_SCHEMA}.ddl_log")  # another session emptied it
    tracker.snapshot(conn)
    assert tracker.full_reads == 2
    assert _columns(catalogue, conn) == ["id", "name", "mood", "price"]
    assert catalogue.full_reads == 2


def test_ddl_after_the_last_snapshot_is_read_in_full(conn: psycopg.Connection[Any]) -> None:
    """No snapshot saw the change, so the tracker's scopes cannot name it."""
    _, catalogue = _tracked(conn)
    assert _columns(catalogue, conn) == ["id", "name", "mood"]
    conn.execute("ALTER TABLE shop.items ADD COLUMN price int")
    assert _columns(catalogue, conn) == ["id", "name", "mood", "price"]
    assert catalogue.full_reads == 2


def test_after_the_teams_fixture_the_catalogue_is_read_in_full(
    conn: psycopg.Connection[Any],
) -> None:
    tracker, catalogue = _tracked(conn)
    assert _columns(catalogue, conn) == ["id", "name", "mood"]
    conn.execute("ALTER TABLE shop.items ADD COLUMN price int")
    # As if the fixture's DDL left no trace in the log: only ``fixture_ran`` tells.
    conn.execute("SELECT setval(%s, %s)", [f"{PROBE_SCHEMA}.ddl_log_seq_seq",
                                           tracker.logged_through()])
    assert _columns(catalogue, conn, fixture_ran=True) == ["id", "name", "mood", "price"]
