"""What a deploy command returns and the refusal it raises: plain values for front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_migorch.deploy.advice import without_force_commands
from pytest_migorch.deploy.applying import StepOutcome
from pytest_migorch.deploy.planning import Plan, PlanStep
from pytest_migorch.errors import MigorchError

__all__ = ["Refused", "RunResult", "attach_result", "plan_sql"]


class Refused(MigorchError):
    """The runner refused to start (drift, dirty state, dependents, risk gate): exit 1."""

    exit_code = 1


@dataclass
class RunResult:
    """What a command did: its plan, each step's outcome, the notes and changes it made."""

    command: str
    environment: str
    services: list[str]
    dry_run: bool = False
    plan: Plan | None = None
    outcomes: list[StepOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sql: list[tuple[PlanStep, str]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    error: MigorchError | None = None
    #: The step being executed right now (None between steps).
    running: PlanStep | None = None
    #: Set when the connection died mid-run: what ran, what the records say now.
    connection_lost: dict[str, Any] | None = None
    #: ``--jobs N``: per service, its first start and last end (seconds from the start of the
    #: run) and the seconds its migrations took.
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        """The documented ``--json`` shape of init, up, down and force (docs/runner.md)."""
        return {
            "ok": self.ok,
            "command": self.command,
            "environment": self.environment or None,  # None: `init` without one
            "services": self.services,
            "dry_run": self.dry_run,
            "plan": self.plan.to_json(root) if self.plan else None,
            "results": [self._outcome_json(o) for o in self.outcomes],
            "notes": self.notes,
            "changes": self.changes,
            "sql": [{"service": s.migration.service, "migration": s.migration.id,
                     "direction": s.direction, "sql": text} for s, text in self.sql],
            "error": str(self.error) if self.error else None,
            "exit_code": self.error.exit_code if self.error else 0,
            "connection_lost": self.connection_lost,
            "service_timings": self.service_timings(),
        }

    def _outcome_json(self, outcome: StepOutcome) -> dict[str, Any]:
        """A step's JSON; the recovery commands are in the run's ``error``, only there."""
        data = outcome.to_json()
        data["error"] = without_force_commands(data["error"])
        return data

    def service_timings(self) -> dict[str, dict[str, float]]:
        """Per service: the seconds its migrations took (and, for a parallel run, when its
        first started and its last ended, in seconds from the start of the run)."""
        out: dict[str, dict[str, float]] = {}
        for outcome in self.outcomes:
            entry = out.setdefault(outcome.step.migration.service, {"seconds": 0.0})
            entry["seconds"] = round(entry["seconds"] + outcome.seconds, 3)
        for service, timing in self.timings.items():
            out.setdefault(service, {}).update(
                {"started": round(timing["started"], 3), "finished": round(timing["finished"], 3)})
        return out


def attach_result(error: MigorchError, result: RunResult | None) -> MigorchError:
    """Put the partial result on the error (and the error in the result) for front ends."""
    if result is not None:
        result.error = error
        error.result = result  # type: ignore[attr-defined]
    return error


def plan_sql(plan: Plan) -> list[tuple[PlanStep, str]]:
    """What ``--dry-run`` shows: each planned step with the SQL it would run."""
    return [(step, step.file.read_text(encoding="utf-8", errors="replace"))
            for step in plan.steps]
