"""``migorch status`` and ``list`` rendering (deploy/status.py), without a server.

The report is built from a :class:`ServiceState` whose rows are written by hand (as
pytest-xdist tests its schedulers with fake workers): each test names the rows a database
would hold and checks the exact text and JSON the report gives for them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from helpers import UP_SQL, service_files, write_service

from pytest_migorch.deploy.planning import ServiceState
from pytest_migorch.deploy.records import ExecutionRecord, SchemaVersion, file_checksum
from pytest_migorch.deploy.status import ServiceReport
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project

ENV = "production"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def record(row_id: int, migration_id: str, status: str, **metadata: Any) -> ExecutionRecord:
    error = metadata.pop("error", None)
    checksum = metadata.pop("checksum", None)
    return ExecutionRecord(
        id=row_id, migration_id=migration_id, migration_version=migration_id.split("_")[0],
        environment=ENV, status=status, started_at=WHEN,
        completed_at=WHEN if status != "running" else None, duration_ms=1500,
        executed_by="ci@host", checksum=checksum, dependencies=[], metadata=metadata,
        error_message=error, rollback_version=None, created_at=WHEN, updated_at=WHEN)


def report(
    tmp_path: Path, records: list[ExecutionRecord], *,
    version: SchemaVersion = SchemaVersion(), alive: set[int] | None = None,
) -> ServiceReport:
    root = tmp_path / "services"
    write_service(root, "shop", service_files(["000001_a", "000002_b", "000003_c"],
                                              environments={ENV: []}))
    project = load_project(root)
    state = ServiceState.build(project.services["shop"], ENV,
                               ProjectGraph(project).order("shop", ENV), True, version, records)
    return ServiceReport(state=state, drift=state.drift(), history=[],
                         alive_pids=alive or set())


def checksum(tmp_path: Path, migration_id: str) -> str:
    """The checksum the up file of ``migration_id`` has once :func:`report` wrote it."""
    path = tmp_path / "unchanged.sql"
    path.write_text(UP_SQL, encoding="utf-8")
    return file_checksum(path)


def test_fresh_service_is_all_pending(tmp_path: Path) -> None:
    rep = report(tmp_path, [], version=SchemaVersion(exists=True))
    assert rep.render_status() == (
        "shop (schema shop, environment 'production')\n"
        "  golang-migrate public.shop_schema_migrations: no version\n"
        "  applied 0, pending 3, failed 0, drift 0\n"
        "  pending: 000001_a\n  pending: 000002_b\n  pending: 000003_c")
    data = rep.to_json()
    assert (data["applied"], data["pending"], data["failed"], data["dirty"], data["ok"]) == (
        [], ["000001_a", "000002_b", "000003_c"], [], None, True)
    assert data["golang_migrate"] == {"table": "public.shop_schema_migrations",
                                      "exists": True, "version": -1, "dirty": False}


def test_applied_failed_and_pending(tmp_path: Path) -> None:
    rows = [record(1, "000001_a", "completed", checksum=checksum(tmp_path, "000001_a")),
            record(2, "000002_b", "failed", error="relation \"x\" does not exist\nmore")]
    rep = report(tmp_path, rows, version=SchemaVersion(1, False, True))
    data = rep.to_json()
    assert data["applied"] == ["000001_a"]
    assert data["pending"] == ["000002_b", "000003_c"]
    assert data["failed"] == [{"migration": "000002_b",
                               "error": "relation \"x\" does not exist\nmore"}]
    assert data["ok"] is False
    assert "  failed: 000002_b: relation \"x\" does not exist" in rep.render_status().splitlines()
    assert [(r["migration"], r["status"], r["error"]) for r in rep.migration_rows()] == [
        ("000001_a", "completed", None),
        ("000002_b", "failed", "relation \"x\" does not exist\nmore"),
        ("000003_c", "pending", None)]


def test_changed_file_is_drift(tmp_path: Path) -> None:
    rep = report(tmp_path, [record(1, "000001_a", "completed", checksum="0" * 64)],
                 version=SchemaVersion(1, False, True))
    assert [d.kind for d in rep.drift] == ["changed"]
    assert rep.to_json()["ok"] is False
    assert rep.migration_rows()[0]["drift"] == "changed"
    assert "[DRIFT changed]" in rep.render_list().splitlines()[1]


def test_applied_row_without_file_is_missing_drift(tmp_path: Path) -> None:
    rep = report(tmp_path, [record(1, "000009_gone", "completed")],
                 version=SchemaVersion(9, False, True))
    assert [(d.migration_id, d.kind) for d in rep.drift] == [("000009_gone", "missing")]
    assert rep.migration_rows()[-1]["migration"] == "000009_gone"
    assert rep.migration_rows()[-1]["drift"] == "missing"


def test_running_row_is_running_while_its_session_lives_then_interrupted(
    tmp_path: Path,
) -> None:
    row = record(1, "000001_a", "running", backend_pid=4711, transactional=False)
    alive = report(tmp_path, [row], alive={4711})
    assert alive.to_json()["running"][0]["state"] == "running"
    assert alive.dirty is None
    gone = report(tmp_path / "again", [row])
    assert gone.to_json()["running"][0]["state"] == "interrupted"
    assert gone.dirty == "000001_a was interrupted (non-transactional)"
    assert gone.migration_rows()[0]["status"] == "interrupted"


def test_dirty_row_and_golang_migrate_dirty_flag(tmp_path: Path) -> None:
    rep = report(tmp_path, [record(1, "000001_a", "failed", dirty=True, error="boom")],
                 version=SchemaVersion(1, True, True))
    assert rep.dirty == "000001_a did not finish: boom"
    assert rep.render_status().splitlines()[-3:] == [
        "  DIRTY: 000001_a did not finish: boom",
        "    migorch force shop 1   # it is now fully applied",
        "    migorch force shop -1   # it is fully undone (it runs again)"]
    assert rep.to_json()["recovery"] == ["migorch force shop 1   # it is now fully applied",
                                         "migorch force shop -1   # it is fully undone (it "
                                         "runs again)"]
    theirs = report(tmp_path / "again", [], version=SchemaVersion(2, True, True))
    assert theirs.dirty == "golang-migrate's table is dirty at version 2"
    assert theirs.recovery == ["migorch force shop <version>   # the version the schema is at"]
    assert theirs.to_json()["ok"] is False


def test_render_list_columns(tmp_path: Path) -> None:
    rep = report(tmp_path, [record(1, "000001_a", "completed",
                                   checksum=checksum(tmp_path, "000001_a"))],
                 version=SchemaVersion(1, False, True))
    assert rep.render_list() == (
        "shop (environment 'production')\n"
        "  000001_a  completed    risk low    est     1s\n"
        "  000002_b  pending      risk low    est     1s\n"
        "  000003_c  pending      risk low    est     1s")
