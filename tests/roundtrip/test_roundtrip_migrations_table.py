"""The round-trip creates a declared golang-migrate table before the first migration, so a
migration that alters or writes it behaves as in production (real PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import write_service

from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip

FILES = {
    "000001_note.up.sql": "SET lock_timeout = '50ms';\n"
                          "ALTER TABLE schema_migrations ADD COLUMN note text;",
    "000001_note.down.sql": "ALTER TABLE schema_migrations DROP COLUMN note;",
    "000002_seed.up.sql": "INSERT INTO schema_migrations (version, dirty) VALUES (99, false);",
    "000002_seed.down.sql": "DELETE FROM schema_migrations WHERE version = 99;",
}


def _deps(declared: str | None) -> str:
    body = {"description": "golang-migrate's table", "depends_on": [],
            "affects_tables": ["public.schema_migrations"], "risk_level": "low",
            "estimated_duration": "1s"}
    doc: dict[str, object] = {"migrations": {"000001": body, "000002": body}}
    if declared is not None:
        doc["migrations_table"] = declared
    return json.dumps(doc)


def _run(server: PostgresServer, root: Path) -> dict[int, list[str]]:
    project = load_project(root)
    roundtrip = RoundTrip(server, project, ProjectGraph(project), "app", "default")
    try:
        return {o.migration.version: [f"{f.code}: {f.message}" for f in o.findings]
                for o in roundtrip.run_all()}
    finally:
        roundtrip.close()


def test_declared_table_exists_before_the_first_migration(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "app", {**FILES, "dependencies.json": _deps("schema_migrations")})
    assert _run(pg_server, tmp_path) == {1: [], 2: []}


def test_qualified_declared_table_round_trips(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "app", {**FILES,
                                    "dependencies.json": _deps("public.schema_migrations")})
    assert _run(pg_server, tmp_path) == {1: [], 2: []}


def test_undeclared_table_is_not_created(pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "app", {**FILES, "dependencies.json": _deps(None)})
    outcomes = _run(pg_server, tmp_path)
    assert any(code.startswith("DB001") for code in outcomes[1]), outcomes
