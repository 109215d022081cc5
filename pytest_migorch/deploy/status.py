"""``migorch status`` and ``migorch list``: what the database says about each service, read-only.

A report joins a service's :class:`~pytest_migorch.planning.ServiceState` with the live facts
only the server knows (is the session that owns a ``running`` row still alive? who holds the
lock?) and the newest history events, and renders it for people and as documented JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_migorch.deploy.adoption import adoptable, adoption_line
from pytest_migorch.deploy.advice import without_force_commands
from pytest_migorch.deploy.applying import force_advice
from pytest_migorch.deploy.planning import Drift, ServiceState, format_seconds
from pytest_migorch.deploy.records import Action, Status
from pytest_migorch.deploy.tracking import (
    ExecutionRecord,
    HistoryRecord,
)
from pytest_migorch.findings import display_path
from pytest_migorch.model import Migration

if TYPE_CHECKING:
    from pytest_migorch.deploy.session import Session

__all__ = ["ServiceReport", "collect_report"]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class ServiceReport:
    """One service in one environment: rows, drift, live sessions and recent history."""

    state: ServiceState
    drift: list[Drift]
    history: list[HistoryRecord]
    alive_pids: set[int] = field(default_factory=set)
    lock_holder: str | None = None

    @property
    def name(self) -> str:
        return self.state.service.name

    def running_state(self, record: ExecutionRecord) -> str:
        """``running`` while its session lives, ``interrupted`` once it is gone."""
        pid = record.backend_pid
        return "running" if pid is not None and pid in self.alive_pids else "interrupted"

    @property
    def dirty(self) -> str | None:
        """Why golang-migrate's dirty flag is (or will be) set, or None (the commands that
        resolve it are :attr:`recovery`, printed once)."""
        state = self.state
        for record in state.dirty_records:
            error = without_force_commands(record.error_message) or "running"
            return f"{record.migration_id} did not finish: {error}"
        interrupted = [r for r in state.running
                       if not r.transactional and self.running_state(r) == "interrupted"]
        if interrupted:
            return f"{interrupted[0].migration_id} was interrupted (non-transactional)"
        if state.schema_version.dirty:
            return f"golang-migrate's table is dirty at version {state.schema_version.version}"
        return None

    @property
    def recovery(self) -> list[str]:
        """The ``migorch force`` commands that resolve the dirty state, once."""
        state = self.state
        if state.dirty_records:
            advice = force_advice(state, state.dirty_records[0].version)
            return [line.strip() for line in advice.splitlines() if line.strip()]
        if self.dirty:
            return [f"migorch force {self.name} <version>   # the version the schema is at"]
        return []

    @property
    def adoptable(self) -> list[Migration]:
        """Pending base migrations golang-migrate already applied: the next ``init`` (or
        ``up``) records them as applied without running them. None while the service is
        deployed as another environment: that is refused, nothing would be adopted."""
        state = self.state
        if state.other_environments:
            return []
        return adoptable(state.service, state.schema_version, state.applied_versions())

    def _adoption_lines(self) -> list[str]:
        waiting = self.adoptable
        if not waiting:
            return []
        by = "`migorch init`" if not self.state.initialised else "the next `migorch up`"
        return ["  " + adoption_line(self.state.service, self.state.schema_version, waiting,
                                     by=by)]

    @property
    def has_problems(self) -> bool:
        """Drift, a dirty state, a failed migration or no tracking table: ``status`` exits 1.

        A database never initialised is a problem too: a deploy script must be able to tell
        "not set up" from "all good" by the exit code alone.
        """
        return bool(self.drift or self.dirty or self.state.failed or not self.state.initialised
                    or self.state.other_environments)

    def migration_rows(self, root: Path | None = None) -> list[dict[str, Any]]:
        """One entry per migration of the environment, then applied rows with no file."""
        state = self.state
        drift = {d.version: d for d in self.drift}
        waiting = {m.version for m in self.adoptable}
        rows = []
        for migration in state.order:
            record = state.record(migration)
            status = record.status if record else Status.PENDING
            if record is not None and status == Status.RUNNING:
                status = self.running_state(record)
            meta = migration.meta
            rows.append({
                "migration": migration.id,
                "version": migration.version_text,
                "environment_only": migration.environment,
                "status": status,
                "applied_at": _iso(record.completed_at) if record and status == Status.COMPLETED
                else None,
                "duration_ms": record.duration_ms if record else None,
                "estimated_duration": meta.estimated_duration if meta else None,
                "risk_level": meta.risk_level.value if meta else None,
                "tables": list(meta.affects_tables) if meta else [],
                "depends_on": [d.text for d in migration.depends_on],
                "transactional": migration.transactional,
                "adopted": bool(record and record.metadata.get("adopted")),
                "adoptable": migration.version in waiting,
                "drift": drift[migration.version_text].kind
                if migration.version_text in drift else None,
                "error": without_force_commands(record.error_message)
                if record and status != Status.COMPLETED else None,
                "file": display_path(migration.main_file.path, root),
            })
        known = {m.version for m in state.order}
        for record in state.records:
            if record.version not in known:
                squash = state.squashed_into(record)
                rows.append({
                    "migration": record.migration_id, "version": record.migration_version,
                    "environment_only": None, "status": record.status,
                    "applied_at": _iso(record.completed_at), "duration_ms": record.duration_ms,
                    "estimated_duration": None, "risk_level": None, "tables": [],
                    "depends_on": [], "transactional": record.transactional,
                    "adopted": bool(record.metadata.get("adopted")), "adoptable": False,
                    "drift": None if squash else "missing",
                    "error": without_force_commands(record.error_message), "file": None,
                    **({"squashed_into": squash.id} if squash else {}),
                })
        return rows

    def last_runs(self) -> list[dict[str, Any]]:
        """Finished up/down attempts, newest first, with duration against the estimate."""
        out = []
        for event in self.history:
            if event.action not in (Action.UP, Action.DOWN) or event.status == Status.RUNNING:
                continue
            estimate = event.metadata.get("estimated_seconds")
            out.append({
                "migration": event.migration_id, "action": event.action,
                "status": event.status, "started_at": _iso(event.started_at),
                "duration_ms": event.duration_ms,
                "estimated_seconds": estimate,
                "executed_by": event.executed_by,
                "error": without_force_commands(event.error_message),
            })
        return out

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        """The documented shape of one service in ``status --json`` (docs/runner.md)."""
        state = self.state
        gm = state.schema_version
        return {
            "service": self.name,
            "schema": state.schema,
            "environment": state.environment,
            "initialised": state.initialised,
            "golang_migrate": {
                "table": ".".join(state.service.migrations_table),
                "exists": gm.exists, "version": gm.version if gm.exists else None,
                "dirty": gm.dirty,
            },
            "applied": [m.id for m in state.applied],
            "pending": [m.id for m in state.pending],
            "adoptable": [m.id for m in self.adoptable],
            "failed": [{"migration": r.migration_id,
                        "error": without_force_commands(r.error_message)}
                       for r in state.failed],
            "running": [{"migration": r.migration_id, "state": self.running_state(r),
                         "started_at": _iso(r.started_at), "backend_pid": r.backend_pid,
                         "executed_by": r.executed_by} for r in state.running],
            "drift": [d.to_json(root) for d in self.drift],
            "dirty": self.dirty,
            "recovery": self.recovery,
            "lock_holder": self.lock_holder,
            "other_environments": state.other_environments,
            "last_runs": self.last_runs(),
            "ok": not self.has_problems,
        }

    def render_status(self) -> str:
        state = self.state
        lines = [f"{self.name} (schema {state.schema}, environment {state.environment!r})"]
        if state.other_environments:
            lines.append("  deployed in this database as environment "
                         + ", ".join(repr(e) for e in state.other_environments)
                         + f", not {state.environment!r}: check --env / APP_ENV")
        if not state.initialised:
            lines.append("  Migration tracking table does not exist: this database was never "
                         "initialised; run `migorch init` (or `up`, which does it)")
        gm = state.schema_version
        lines.append(f"  golang-migrate {'.'.join(state.service.migrations_table)}"
                     f": {gm.describe()}")
        lines.append(f"  applied {len(state.applied)}, pending {len(state.pending)}, "
                     f"failed {len(state.failed)}, drift {len(self.drift)}")
        if self.lock_holder:
            lines.append(f"  lock held by {self.lock_holder}")
        lines += self._adoption_lines()
        waiting = {m.version for m in self.adoptable}
        for migration in state.pending:
            lines.append(f"  pending: {migration.id}" + (
                "  (applied by golang-migrate: adopted, not run)"
                if migration.version in waiting else ""))
        for record in state.failed:
            first = (record.error_message or "").splitlines()[0:1]
            lines.append(f"  failed: {record.migration_id}: {first[0] if first else ''}")
        for record in state.running:
            lines.append(f"  {self.running_state(record)}: {record.migration_id} since "
                         f"{record.started_at:%Y-%m-%d %H:%M:%S %Z}" if record.started_at
                         else f"  running: {record.migration_id}")
        for item in self.drift:
            lines.append(f"  drift: {item.message}")
        if self.dirty:
            lines.append(f"  DIRTY: {self.dirty}")
            lines += [f"    {command}" for command in self.recovery]
        if state.other_environments:
            lines.append("  also deployed as: " + ", ".join(state.other_environments))
        runs = [e for e in self.history
                if e.action in (Action.UP, Action.DOWN) and e.status != Status.RUNNING]
        if runs:
            lines.append("  last runs:")
            for event in runs[:10]:
                took = format_seconds((event.duration_ms or 0) / 1000)
                estimate = event.metadata.get("estimated_seconds")
                against = f" (estimate {format_seconds(estimate)})" if estimate else ""
                when = f"{event.started_at:%Y-%m-%d %H:%M:%S}" if event.started_at else "-"
                lines.append(f"    {when}  {event.action:<4} {event.migration_id} "
                             f"{event.status.replace('_', ' ')} in {took}{against}")
        return "\n".join(lines)

    def render_list(self, root: Path | None = None) -> str:
        rows = self.migration_rows(root)
        lines = [f"{self.name} (environment {self.state.environment!r})",
                 *self._adoption_lines()]
        if not rows:
            lines.append("  no migrations")
        width = max((len(r["migration"]) for r in rows), default=10)
        for row in rows:
            flags = []
            if row["environment_only"]:
                flags.append(f"env {row['environment_only']}")
            if row["drift"]:
                flags.append(f"DRIFT {row['drift']}")
            if row["adopted"]:
                flags.append("adopted")
            if row["adoptable"]:
                flags.append("applied by golang-migrate: init/up adopts it")
            if row.get("squashed_into"):
                flags.append(f"squashed into {row['squashed_into']}")
            if not row["transactional"]:
                flags.append("non-transactional")
            est = row["estimated_duration"] or "-"
            lines.append(f"  {row['migration']:<{width}}  {row['status']:<12} "
                         f"risk {row['risk_level'] or '-':<6} est {est:>6}"
                         + (f"  [{', '.join(flags)}]" if flags else ""))
        return "\n".join(lines)


def collect_report(session: Session, state: ServiceState, *, history: int) -> ServiceReport:
    """Add the live facts (sessions alive, lock holder) and recent history to a state."""
    tracking = session.tracking(state.schema)
    pids = [r.backend_pid for r in state.running if r.backend_pid is not None]
    alive = session.alive_backends(pids)
    return ServiceReport(
        state=state,
        drift=state.drift(),
        history=tracking.history(state.environment, history * 2),
        alive_pids=alive,
        lock_holder=session.lock_holder(state.schema),
    )
