"""Applying an ``up`` plan on several connections at once: ``migorch up --all --jobs N``.

Services whose pending migrations do not depend on each other need not wait for each other; a
release of many services then takes as long as its longest chain instead of the sum. What must
not change is what the records say, so:

- a step starts only after every step it depends on (``depends_on``, in any service) committed,
  and a service's own steps run one at a time in plan order (golang-migrate's version of a
  service is computed from what is applied before it, one step after the other);
- each worker thread has its own connection and :class:`~pytest_migorch.deploy.session.Session`
  and runs each step with the same :class:`~pytest_migorch.deploy.applying.Applier` as
  ``--jobs 1``, so every row, history entry and golang-migrate row is written exactly as then;
- the coordinating session keeps holding every selected service's advisory lock for the whole
  run (PostgreSQL cannot hand a session-level lock to another session without a window where a
  second runner could take it), so eight runners at once still apply every migration once;
- a step that runs outside a transaction runs alone: nothing else starts while it runs and it
  starts when nothing else runs (see :func:`may_start`);
- a failure stops new work; running steps finish and are recorded; the error names what
  completed, what failed and what never started;
- the reporter is called under one lock, so lines never interleave.

psycopg releases the GIL while it waits for the server, so threads are enough.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import psycopg

from pytest_migorch.deploy.applying import Applier, Reporter, StepOutcome
from pytest_migorch.deploy.planning import Plan, PlanStep, ServiceState
from pytest_migorch.deploy.records import Status
from pytest_migorch.deploy.results import RunResult
from pytest_migorch.deploy.session import Session
from pytest_migorch.errors import MigorchError, MigrationFailed
from pytest_migorch.postgres.connection import database_error
from pytest_migorch.project.graph import Key

__all__ = ["LockedReporter", "ParallelApplier", "may_start", "step_prerequisites"]


class LockedReporter:
    """A reporter that several threads may call: one event, one whole line, at a time."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    def note(self, message: str) -> None:
        with self._lock:
            self.inner.note(message)

    def plan(self, plan: Plan) -> None:
        with self._lock:
            self.inner.plan(plan)

    def step_started(self, step: PlanStep, index: int, total: int) -> None:
        with self._lock:
            self.inner.step_started(step, index, total)

    def step_finished(self, outcome: StepOutcome, index: int, total: int) -> None:
        with self._lock:
            self.inner.step_finished(outcome, index, total)


def step_prerequisites(plan: Plan, predecessors: Callable[[Key], Iterable[Key]]
                       ) -> dict[Key, set[Key]]:
    """For each planned step, the planned steps it waits for: its direct dependencies that are
    in the plan and the previous planned step of its own service. That is enough: a dependency
    outside the plan is applied already (the runner refused otherwise), and each planned step
    waits in turn for its own."""
    planned = {step.migration.key for step in plan.steps}
    last_of_service: dict[str, Key] = {}
    out: dict[Key, set[Key]] = {}
    for step in plan.steps:
        key = step.migration.key
        waits = {k for k in predecessors(key) if k in planned}
        previous = last_of_service.get(step.migration.service)
        if previous is not None:
            waits.add(previous)
        last_of_service[step.migration.service] = key
        out[key] = waits
    return out


def may_start(step: PlanStep, running: Iterable[PlanStep]) -> bool:
    """Whether ``step`` may start beside the steps now ``running``: only if neither it nor any
    of them runs outside a transaction.

    ``CREATE INDEX CONCURRENTLY`` (and the other statements golang-migrate can only run outside
    a transaction) waits for every transaction of the database that started before it, while
    holding a lock on its table. A migration of another service that needs a lock on that table
    at that moment (a foreign key to it, say) waits for the build, which waits for it:
    PostgreSQL breaks the deadlock by cancelling one, failing a migration that is right or
    leaving an INVALID index behind. With ``--jobs 1`` that never happens; so such a step runs
    as with ``--jobs 1``: alone."""
    others = list(running)
    if not others:
        return True
    return step.transactional and all(other.transactional for other in others)


@dataclass
class _Board:
    """What the workers share, always read and changed under ``cond``."""

    waiting: list[tuple[int, PlanStep]]
    cond: threading.Condition = field(default_factory=threading.Condition)
    done: set[Key] = field(default_factory=set)
    running: set[Key] = field(default_factory=set)
    #: The steps of ``running``, for :func:`may_start`.
    active: dict[Key, PlanStep] = field(default_factory=dict)
    failed: list[tuple[PlanStep, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


class ParallelApplier:
    """Runs one ``up`` plan with up to ``jobs`` worker connections."""

    def __init__(self, plan: Plan, states: Mapping[str, ServiceState],
                 prerequisites: Mapping[Key, set[Key]], open_session: Callable[[], Session],
                 root: Path, executed_by: str, reporter: Reporter, jobs: int,
                 after_step: Callable[[Session, PlanStep], None] | None = None) -> None:
        self.plan = plan
        self.states = states
        self.prerequisites = prerequisites
        self.open_session = open_session
        self.root = root
        self.executed_by = executed_by
        self.reporter = LockedReporter(reporter)
        self.jobs = jobs
        #: The service's after-each hooks, run on the worker's session after a step succeeded.
        self.after_step = after_step
        self._board = _Board(list(enumerate(plan.steps, 1)))
        self._began = time.monotonic()

    def run(self, result: RunResult) -> None:
        """Apply the plan; on any failure raise :class:`MigrationFailed` naming what ran."""
        services = {step.migration.service for step in self.plan.steps}
        workers = [threading.Thread(target=self._work, args=(result,), daemon=True,
                                    name=f"migorch-job-{n}")
                   for n in range(max(1, min(self.jobs, len(services))))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        board = self._board
        if board.failed or board.errors:
            raise self._failure(board, result)

    def _next(self) -> tuple[int, PlanStep] | None:
        """The first waiting step whose prerequisites all committed (None: stop working)."""
        board = self._board
        with board.cond:
            while True:
                if board.failed or board.errors or not board.waiting:
                    return None
                for position, (index, step) in enumerate(board.waiting):
                    if not self.prerequisites[step.migration.key] <= board.done:
                        continue
                    if not may_start(step, board.active.values()):
                        if not step.transactional:
                            break  # the barrier: later steps wait too, so it is not starved
                        continue
                    del board.waiting[position]
                    board.running.add(step.migration.key)
                    board.active[step.migration.key] = step
                    return index, step
                if not board.running:  # nothing can ever become ready (not expected)
                    board.errors.append(MigorchError("no planned step can start: the plan's "
                                                     "dependencies form a cycle"))
                    board.cond.notify_all()
                    return None
                board.cond.wait()

    def _work(self, result: RunResult) -> None:
        session: Session | None = None
        try:
            while (job := self._next()) is not None:
                if session is None:
                    session = self.open_session()
                if self._run_one(Applier(session, self.root, self.executed_by), *job, result) \
                        and self.after_step is not None:
                    self.after_step(session, job[1])
        except BaseException as exc:  # connecting failed, or the connection died
            with self._board.cond:
                self._board.errors.append(exc)
                self._board.cond.notify_all()
        finally:
            if session is not None:
                with suppress(psycopg.Error):
                    session.close()

    def _run_one(self, applier: Applier, index: int, step: PlanStep, result: RunResult) -> bool:
        """Apply one step and record how it ended; True when it succeeded."""
        total = len(self.plan.steps)
        state = self.states[step.migration.service]
        self.reporter.step_started(step, index, total)
        started = time.monotonic() - self._began
        try:
            outcome = applier.apply_up(state, step)
        except MigrationFailed as exc:
            outcome = StepOutcome(step, Status.FAILED, 0.0, str(exc))
        except psycopg.Error as exc:
            outcome = StepOutcome(step, Status.FAILED, 0.0,
                                  str(database_error(exc, f"applying {step.label}")))
        board = self._board
        with board.cond:
            result.outcomes.append(outcome)
            _time(result, step.migration.service, started, time.monotonic() - self._began)
            board.running.discard(step.migration.key)
            board.active.pop(step.migration.key, None)
            if outcome.status == Status.FAILED:
                board.failed.append((step, outcome.error or "failed"))
            else:
                board.done.add(step.migration.key)
            board.cond.notify_all()
        self.reporter.step_finished(outcome, index, total)
        return outcome.status != Status.FAILED

    @staticmethod
    def _failure(board: _Board, result: RunResult) -> MigorchError:
        completed = [o.step.label for o in result.outcomes if o.status != Status.FAILED]
        never = [step.label for _, step in board.waiting]
        lines = [f"{step.label} failed: {error}" for step, error in board.failed]
        lines += [str(exc) for exc in board.errors]
        lines.append("parallel run stopped; migrations already running finished and were "
                     "recorded. completed: " + (", ".join(completed) or "none")
                     + "; failed: " + (", ".join(s.label for s, _ in board.failed) or "none")
                     + "; never started: " + (", ".join(never) or "none"))
        return MigrationFailed("\n".join(lines))


def _time(result: RunResult, service: str, started: float, finished: float) -> None:
    """Per-service timings for ``--json``: its first start and last end (seconds from the
    start of the run), to show which services ran side by side."""
    timing = result.timings.setdefault(service, {"started": started, "finished": finished})
    timing["started"] = min(timing["started"], started)
    timing["finished"] = max(timing["finished"], finished)
