"""The connection died mid-run (backend terminated, server restarted): say what happened.

"the connection is closed" alone leaves the person on call guessing whether the migration ran.
This module names what was running, re-reads its row on a new connection when the server is
back, and says what the next run will make of it (the same decision recovery takes,
:func:`pytest_migorch.deploy.recovery.decide_recovery`).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from pytest_migorch.deploy.planning import PlanStep
from pytest_migorch.deploy.records import Status
from pytest_migorch.deploy.recovery import decide_recovery
from pytest_migorch.deploy.tracking import Tracking
from pytest_migorch.errors import DatabaseError
from pytest_migorch.postgres.connection import ConnectionSettings, connect, database_error

__all__ = ["connection_lost"]

log = logging.getLogger(__name__)


def connection_lost(exc: psycopg.Error, settings: ConnectionSettings, environment: str,
                    step: PlanStep | None,
                    schema: str | None) -> tuple[DatabaseError, dict[str, Any]]:
    """The error to raise and the ``connection_lost`` object of the JSON result."""
    reason = str(database_error(exc, "the connection to the database was lost"))
    info: dict[str, Any] = {"reason": reason, "running": None, "record": None,
                            "next_run": None}
    if step is None or schema is None:
        text = (f"{reason}, between migrations: every step reported above as finished is "
                "recorded; run the command again.")
        return DatabaseError(text), info
    migration = step.migration
    info["running"] = {"service": migration.service, "migration": migration.id,
                       "direction": step.direction, "transactional": step.transactional}
    what = "rolling back" if step.direction == "down" else "applying"
    text = f"{reason}, while {what} {migration.qualified_id}."
    try:
        described, record_info, next_run = _reread(settings, environment, step, schema)
    except (psycopg.Error, DatabaseError) as again:
        log.debug("re-reading the records: %s", again)
        text += (" The records could not be re-read (the server is still unreachable); "
                 "the next run will find this migration's row and resolve it.")
        return DatabaseError(text), info
    info["record"] = record_info
    info["next_run"] = next_run
    return DatabaseError(f"{text} {described}"), info


def _reread(settings: ConnectionSettings, environment: str, step: PlanStep,
            schema: str) -> tuple[str, dict[str, Any] | None, str | None]:
    """What the records say now, on a new connection, and what the next run will do."""
    migration = step.migration
    with connect(settings) as conn:
        tracking = Tracking(conn, schema)
        schema_version = tracking.read_schema_version()
        records = [r for r in tracking.records()
                   if r.environment == environment and r.version == migration.version]
    if not records:
        return ("The records say nothing about it: it did not start; the next run applies "
                "it.", None, None)
    record = records[0]
    info = {"status": record.status, "dirty": record.dirty,
            "statements_done": record.metadata.get("statements_done"),
            "statements_total": record.metadata.get("statements_total"),
            "golang_migrate": schema_version.describe()}
    if record.status != Status.RUNNING:
        return (f"The records now say {record.status!r} (golang-migrate's table: "
                f"{schema_version.describe()}).", info, None)
    decision = decide_recovery(record, backend_alive=False, schema_dirty=schema_version.dirty)
    return (f"The records now say 'running' (golang-migrate's table: "
            f"{schema_version.describe()}); its session is gone, so the next run will record "
            f"it as {decision.message}", info, decision.message)
