"""Recovery decisions for ``running`` rows, with plain values (no server)."""

from __future__ import annotations

from typing import Any

from pytest_migorch.deploy.records import ExecutionRecord, Status
from pytest_migorch.deploy.recovery import Resolution, decide_recovery


def running(**metadata: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=1, migration_id="000003_x", migration_version="000003", environment="production",
        status="running", started_at=None, completed_at=None, duration_ms=None,
        executed_by="ci@host", checksum=None, dependencies=[],
        metadata={"backend_pid": 4242, **metadata}, error_message=None,
        rollback_version=None, created_at=None, updated_at=None)


def test_a_row_whose_backend_is_alive_is_never_recovered() -> None:
    for record in (running(), running(transactional=False, statements_total=2,
                                      statements_done=1), running(action="down")):
        decision = decide_recovery(record, backend_alive=True, schema_dirty=True)
        assert decision.resolution is Resolution.LIVE
        assert decision.status is None and not decision.proceeds
        assert "pid 4242" in decision.message


def test_dead_transactional_up_runs_again_and_a_rollback_stays_applied() -> None:
    up = decide_recovery(running(), backend_alive=False, schema_dirty=False)
    assert (up.resolution, up.status, up.dirty) == (Resolution.ROLLED_BACK, Status.FAILED, False)
    assert "it will run again" in up.message
    down = decide_recovery(running(action="down"), backend_alive=False, schema_dirty=False)
    assert down.status is Status.COMPLETED and "still applied" in down.message


def test_dead_non_transactional_run_is_finished_or_partial_by_its_progress() -> None:
    done = decide_recovery(running(transactional=False, statements_total=2, statements_done=2),
                           backend_alive=False, schema_dirty=True)
    assert (done.resolution, done.status, done.completed) == (
        Resolution.FINISHED, Status.COMPLETED, True)
    half = decide_recovery(running(transactional=False, statements_total=3, statements_done=1),
                           backend_alive=False, schema_dirty=True)
    assert (half.resolution, half.status, half.dirty) == (Resolution.PARTIAL, Status.FAILED, True)
    assert "after 1 of 3 statement(s)" in half.message and "dirty flag is set" in half.message
    unflagged = decide_recovery(running(transactional=False), backend_alive=False,
                                schema_dirty=False)
    assert unflagged.dirty and "should be set but is not" in unflagged.message


def test_a_partial_run_names_the_invalid_indexes_it_left() -> None:
    advice = "\nIt left 1 INVALID index(es) ...\n  DROP INDEX CONCURRENTLY s.i;"
    partial = decide_recovery(running(transactional=False, statements_total=2,
                                      statements_done=0),
                              backend_alive=False, schema_dirty=True, invalid_indexes=advice)
    assert partial.resolution is Resolution.PARTIAL
    assert partial.message.endswith("DROP INDEX CONCURRENTLY s.i;")
    # A finished run had no statement interrupted: nothing to say of indexes.
    done = decide_recovery(running(transactional=False, statements_total=2, statements_done=2),
                           backend_alive=False, schema_dirty=True, invalid_indexes=advice)
    assert "INVALID" not in done.message
