"""Files golang-migrate applies cleanly apply cleanly with us, without a dependencies.json:
a lone CREATE INDEX CONCURRENTLY and a file with its own BEGIN/COMMIT blocks, in the runner
(`migorch up`) and in the round-trip, on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_runner, query, write_service

from pytest_migorch.errors import MigrationFailed
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip

OWN_BLOCKS = ("BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n"
              "BEGIN;\nCREATE TABLE b (x int);\nCOMMIT;\n")
FILES = {
    "1_t.up.sql": "CREATE TABLE t (id int);\n",
    "1_t.down.sql": "DROP TABLE t;\n",
    "2_i.up.sql": "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    "2_i.down.sql": "DROP INDEX CONCURRENTLY t_id;\n",
    "3_blocks.up.sql": OWN_BLOCKS,
    "3_blocks.down.sql": "BEGIN;\nDROP TABLE b;\nCOMMIT;\nBEGIN;\nDROP TABLE a;\nCOMMIT;\n",
}


def test_runner_applies_golang_migrate_style_files_without_metadata(
        tmp_path: Path, fresh_db: str) -> None:
    write_service(tmp_path, "svc", FILES)
    run = make_runner(tmp_path, fresh_db)
    plan = run.up(["svc"], "default", dry_run=True).plan
    assert plan is not None
    rendered = plan.render()
    assert rendered.count("[non-transactional]") == 2
    assert "outside a transaction: CREATE INDEX CONCURRENTLY at line 1" in rendered
    assert "outside a transaction: its own transaction control (COMMIT at line 3)" in rendered
    run.up(["svc"], "default")
    assert query(fresh_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                 "'svc.t_id'::regclass") == [(True,)]
    assert query(fresh_db, "SELECT version, dirty FROM public.svc_schema_migrations") \
        == [(3, False)]
    run.down("svc", "default", steps=2)
    assert query(fresh_db, "SELECT to_regclass('svc.t_id'), to_regclass('svc.a')") \
        == [(None, None)]


def test_runner_fails_a_file_that_leaves_its_transaction_open(
        tmp_path: Path, fresh_db: str) -> None:
    write_service(tmp_path, "svc", {"1_t.up.sql": "BEGIN;\nCREATE TABLE t (id int);\n"
                                                  "COMMIT;\nBEGIN;\nCREATE TABLE u (id int);\n",
                                    "1_t.down.sql": "DROP TABLE t;\n"})
    with pytest.raises(MigrationFailed, match=r"leaves a transaction open \(opened at line 4"):
        make_runner(tmp_path, fresh_db).up(["svc"], "default")


def test_roundtrip_passes_golang_migrate_style_files_without_metadata(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "svc", FILES)
    project = load_project(tmp_path)
    roundtrip = RoundTrip(pg_server, project, ProjectGraph(project), "svc", "default")
    try:
        outcomes = {o.migration.version: o for o in roundtrip.run_all()}
    finally:
        roundtrip.close()
    assert [f.code for f in outcomes[2].findings] == []
    assert [f.code for f in outcomes[3].findings] == []


def test_roundtrip_checks_the_transaction_status_as_the_runner_does(
        pg_server: PostgresServer, tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {"1_t.up.sql": "BEGIN;\nCREATE TABLE t (id int);\n"
                                                  "COMMIT;\nBEGIN;\nCREATE TABLE u (id int);\n",
                                    "1_t.down.sql": "DROP TABLE t;\n"})
    project = load_project(tmp_path)
    roundtrip = RoundTrip(pg_server, project, ProjectGraph(project), "svc", "default")
    try:
        outcome = roundtrip.run_all()[0]
    finally:
        roundtrip.close()
    failed = [f for f in outcome.findings if f.code == "DB001"]
    assert failed and "leaves a transaction open" in failed[0].message
    assert failed[0].file is not None and failed[0].file.name == "1_t.up.sql"
