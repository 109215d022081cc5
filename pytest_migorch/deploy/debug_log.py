"""What ``LOG_LEVEL=debug`` (or ``MIGORCH_LOG_LEVEL=debug``) tells a person debugging a deploy:
how the plan was resolved, each migration with why it is applied, planned or left out.

The statements as they are sent (with their timing) are logged by
:mod:`pytest_migorch.postgres.statements`, lock waits by :mod:`pytest_migorch.deploy.session`,
recovery and adoption decisions by :mod:`pytest_migorch.deploy.preparing`. Every function
here returns at once unless debug logging is on, so a normal run pays one level check.
Passwords never reach these lines: ``migorch`` installs its masking filter on the handler.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from pytest_migorch.deploy.planning import ServiceState
from pytest_migorch.model import Migration

__all__ = ["log_resolution"]

log = logging.getLogger("pytest_migorch.deploy.plan")


def log_resolution(command: str, environment: str, order: Sequence[Migration],
                   states: Mapping[str, ServiceState], selected: set[str],
                   planned: Sequence[Migration]) -> None:
    """One line per migration of the resolved order: applied (and how), planned (its step
    number) or not planned (and why)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    steps = {m.key: index for index, m in enumerate(planned, 1)}
    log.debug("%s in environment %r: %d migration(s) in resolved order, %d planned",
              command, environment, len(order), len(planned))
    for migration in order:
        log.debug("  %-40s %s", migration.qualified_id,
                  _why(command, migration, states, selected, steps))


def _why(command: str, migration: Migration, states: Mapping[str, ServiceState],
         selected: set[str], steps: Mapping[tuple[str, int], int]) -> str:
    state = states.get(migration.service)
    step = steps.get(migration.key)
    if step is not None:
        return f"planned as step {step} ({'apply' if command == 'up' else 'roll back'})"
    record = state.record(migration) if state is not None else None
    applied = state is not None and state.is_applied(migration)
    if applied and record is not None:
        how = "adopted from golang-migrate's table" if record.metadata.get("adopted") else \
            f"applied by {record.executed_by or 'unknown'}"
        reason = f"{how} (row {record.id}, {record.status})"
        return reason + ("" if command == "up" else ": not chosen for rollback")
    if migration.service not in selected:
        return f"pending in {migration.service}, which is not selected (a prerequisite)"
    if record is not None:
        return f"pending (last row {record.id}: {record.status}) but not planned"
    return "pending but not planned (beyond --count)" if command == "up" else "not applied"
