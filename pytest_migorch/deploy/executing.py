"""Running a checked plan: its steps one after the other (or side by side with ``--jobs``) and
the environment's hooks around them.

The runner decides *whether* a plan may run (locks, readiness, risk gate); this module only
runs it, so the order of events is in one place: every selected service's before-hooks (a
failure stops the run before anything is applied), each step followed by its service's
after-each hooks (a failure stops the run after that step, whose state is recorded), then the
after-hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from pytest_migorch.deploy.applying import Applier, Reporter, StepOutcome
from pytest_migorch.deploy.hooks import HookRunner
from pytest_migorch.deploy.parallel import ParallelApplier, step_prerequisites
from pytest_migorch.deploy.planning import Plan, PlanStep, ServiceState
from pytest_migorch.deploy.records import Status
from pytest_migorch.deploy.results import RunResult
from pytest_migorch.deploy.session import Session
from pytest_migorch.errors import MigrationFailed
from pytest_migorch.project.graph import ProjectGraph

__all__ = ["Executor", "EVENTS", "hook_notes"]

#: (before, after each, after) per direction.
EVENTS = {"up": ("before_run", "after_each", "after_run"),
          "down": ("before_down", "after_each_down", "after_down")}


def hook_notes(hooks: HookRunner, plan: Plan, *, dry_run: bool) -> list[str]:
    """What a run says about its hooks: the list for ``--dry-run``, a warning for
    ``--no-hooks``, nothing otherwise."""
    services = _services(plan)
    listed = hooks.describe(services, EVENTS[plan.direction])
    if not listed:
        return []
    if not hooks.enabled:
        return [f"warning: --no-hooks: {len(listed)} hook(s) skipped: "
                + "; ".join(listed)]
    return listed if dry_run else []


def _services(plan: Plan) -> list[str]:
    return list(dict.fromkeys(step.migration.service for step in plan.steps))


@dataclass
class Executor:
    """Runs one plan for the runner."""

    root: Path
    executed_by: str
    reporter: Reporter
    graph: ProjectGraph
    hooks: HookRunner
    open_session: Callable[[], Session]

    def execute(self, session: Session, plan: Plan, states: dict[str, ServiceState],
                result: RunResult, rollback_to: Mapping[str, str] | None = None,
                jobs: int = 1) -> None:
        before, each, after = EVENTS[plan.direction]
        services = _services(plan)
        for name in services:
            self.hooks.run(session, name, before, plan.direction)

        def after_step(on: Session, step: PlanStep) -> None:
            self.hooks.run(on, step.migration.service, each, plan.direction, step.migration.id)

        if jobs > 1 and len(services) > 1 and plan.direction == "up":
            prerequisites = step_prerequisites(
                plan, self.graph.graph(plan.environment).predecessors)
            ParallelApplier(plan, states, prerequisites, self.open_session, self.root,
                            self.executed_by, self.reporter, jobs, after_step).run(result)
        else:
            self._sequential(session, plan, states, result, rollback_to, after_step)
        for name in services:
            self.hooks.run(session, name, after, plan.direction)

    def _sequential(self, session: Session, plan: Plan, states: dict[str, ServiceState],
                    result: RunResult, rollback_to: Mapping[str, str] | None,
                    after_step: Callable[[Session, PlanStep], None]) -> None:
        applier = Applier(session, self.root, self.executed_by)
        total = len(plan.steps)
        for index, step in enumerate(plan.steps, 1):
            state = states[step.migration.service]
            self.reporter.step_started(step, index, total)
            result.running = step
            try:
                if step.direction == "up":
                    outcome = applier.apply_up(state, step)
                else:
                    assert rollback_to is not None
                    outcome = applier.apply_down(state, step, rollback_to[state.service.name])
            except MigrationFailed as exc:
                outcome = StepOutcome(step, Status.FAILED, 0.0, str(exc))
                result.outcomes.append(outcome)
                self.reporter.step_finished(outcome, index, total)
                raise
            result.running = None
            result.outcomes.append(outcome)
            self.reporter.step_finished(outcome, index, total)
            after_step(session, step)
