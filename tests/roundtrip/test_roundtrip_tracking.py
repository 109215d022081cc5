"""The round-trip's snapshots read only what changed: a down that fails to undo its up is still
caught, whatever it left behind, and a clean one still passes.

Each case is a service whose second migration's down leaves something different from before the
up; the finding must name it, as a full read of the catalogue would. The round-trip must have got
there with partial reads (one full read at the start), or these tests would prove nothing about
them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_service

from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip

BASE = {
    "1_items.up.sql": "CREATE TABLE items (id int PRIMARY KEY, name text, price int, code varchar(30));\n"
                      "CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10;",
    "1_items.down.sql": "DROP VIEW cheap; DROP TABLE items;",
    "3_next.up.sql": "CREATE TABLE later (id int);",
    "3_next.down.sql": "DROP TABLE later;",
}

#: name -> (up, down, what the DB003 message says)
RESIDUES = {
    "column default": ("ALTER TABLE items ALTER COLUMN price SET DEFAULT 0;", "SELECT 1;",
                       "column shop.items.price changed: default none -> 0"),
    "index": ("CREATE INDEX items_name_idx ON items (name);", "SELECT 1;",
              "index items_name_idx on shop.items is still there"),
    "comment": ("COMMENT ON COLUMN items.name IS 'label';",
                "COMMENT ON COLUMN items.name IS 'lable';",
                "column shop.items.name changed: comment none -> lable"),
    "index dropped by the up, another created by the down": (
        "ALTER TABLE items DROP CONSTRAINT items_pkey;",
        "ALTER TABLE items ADD CONSTRAINT items_pkey UNIQUE (id);",
        "constraint items_pkey on shop.items changed: PRIMARY KEY (id) -> UNIQUE (id)"),
    "table renamed back to another name": (
        "ALTER TABLE items RENAME TO goods;", "ALTER TABLE goods RENAME TO item;",
        "table shop.items is missing"),
    "view left on a renamed column": (
        "ALTER TABLE items RENAME COLUMN name TO title;",
        "ALTER TABLE items RENAME COLUMN title TO label;",
        "column shop.items.name is missing"),
    "trigger function left behind": (
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
        "\nCREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW"
        " EXECUTE FUNCTION touch();",
        "DROP TRIGGER items_touch ON items;",
        "function shop.touch() is still there"),
    "down in replica mode": (
        "ALTER TABLE items ADD COLUMN note text;",
        "SET session_replication_role = replica; SELECT 1; SET session_replication_role = origin;",
        "column shop.items.note is still there"),
    "catalogue updated by hand": (
        "ALTER TABLE items ALTER COLUMN code TYPE varchar(40);",
        "UPDATE pg_catalog.pg_attribute SET atttypmod = 54"
        " WHERE attrelid = 'items'::regclass AND attname = 'code';",
        "column shop.items.code changed: type character varying(30) -> character varying(50)"),
}


def _round_trip(server: PostgresServer, root: Path) -> tuple[dict, RoundTrip]:
    project = load_project(root)
    roundtrip = RoundTrip(server, project, ProjectGraph(project), "shop", "default")
    try:
        return {o.migration.version: o for o in roundtrip.run_all()}, roundtrip
    finally:
        roundtrip.close()


@pytest.mark.parametrize("case", RESIDUES.values(), ids=list(RESIDUES))
def test_a_down_that_leaves_something_behind_is_caught(
    pg_server: PostgresServer, tmp_path: Path, case: tuple[str, str, str],
) -> None:
    up, down, message = case
    write_service(tmp_path, "shop", {**BASE, "2_change.up.sql": up, "2_change.down.sql": down})
    outcomes, roundtrip = _round_trip(pg_server, tmp_path)
    assert [f.code for f in outcomes[1].findings] == []
    assert [f.code for f in outcomes[2].findings] == ["DB003"]
    assert message in outcomes[2].findings[0].message
    assert outcomes[3].findings == []  # tested from a rebuilt database: no cascade
    assert roundtrip._tracker.partial_reads >= 3  # 1: after up, down, re-up; 2: after up


def test_a_clean_service_is_read_in_full_once(pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "shop", {
        **BASE,
        # lock_timeout: the lock probe would rightly report DB014 without it.
        "2_rename.up.sql": "SET lock_timeout = '1s';\n"
                           "ALTER TABLE items RENAME COLUMN name TO title;\n"
                           "ALTER TABLE items RENAME TO goods;\n"
                           "COMMENT ON VIEW cheap IS 'on sale';",
        "2_rename.down.sql": "COMMENT ON VIEW cheap IS NULL;\n"
                             "ALTER TABLE goods RENAME TO items;\n"
                             "ALTER TABLE items RENAME COLUMN title TO name;",
    })
    outcomes, roundtrip = _round_trip(pg_server, tmp_path)
    assert {v: o.findings for v, o in outcomes.items()} == {1: [], 2: [], 3: []}
    assert roundtrip._tracker.full_reads == 1
    assert roundtrip._tracker.partial_reads == 9  # after up, down and re-up of each
