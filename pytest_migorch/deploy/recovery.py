"""What to do with a ``running`` row found at the start of a run: a pure decision.

A ``running`` row means a run started a migration and has not recorded its end. Whether that
run is dead is a fact only the server knows (is its backend in ``pg_stat_activity``?); the
runner looks it up and hands it in, so every case here is tested with plain values. A row whose
backend is alive belongs to a live run and is never touched, whatever lock this run holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_migorch.deploy.records import Action, ExecutionRecord, Status, TextEnum

__all__ = ["Resolution", "RecoveryDecision", "decide_recovery"]


class Resolution(TextEnum):
    """How a ``running`` row is resolved."""

    #: Its backend is alive: another run is executing it. Leave it alone; refuse to proceed.
    LIVE = "live"
    #: Transactional: PostgreSQL rolled it back; an up runs again, a rollback left it applied.
    ROLLED_BACK = "rolled_back"
    #: Non-transactional, every statement committed: only the final bookkeeping was lost.
    FINISHED = "finished"
    #: Non-transactional, stopped part-way: dirty until a person decides (``force``).
    PARTIAL = "partial"


@dataclass(frozen=True)
class RecoveryDecision:
    """The new state of the row (``status`` None: leave it) and what to tell people."""

    resolution: Resolution
    message: str
    status: Status | None = None
    dirty: bool = False
    completed: bool = False

    @property
    def proceeds(self) -> bool:
        """Whether the run may go on after this (a partial run stops it at the dirty check)."""
        return self.resolution is not Resolution.LIVE


def decide_recovery(record: ExecutionRecord, *, backend_alive: bool,
                    schema_dirty: bool, invalid_indexes: str = "") -> RecoveryDecision:
    """The decision for one ``running`` row: ``backend_alive`` says whether the session that
    wrote it still exists, ``schema_dirty`` whether golang-migrate's dirty flag is set;
    ``invalid_indexes`` is what to say of the INVALID indexes in the service's schema
    (:func:`pytest_migorch.deploy.invalid_indexes.drop_advice`), added to a partial run's
    message: an interrupted concurrent index build leaves one."""
    down = record.action == Action.DOWN
    what = "rollback" if down else "migration"
    when = (f" (started {record.started_at:%Y-%m-%d %H:%M:%S %Z} by {record.executed_by})"
            if record.started_at else "")
    if backend_alive:
        return RecoveryDecision(Resolution.LIVE, (
            f"being run right now by a live session (backend pid {record.backend_pid}){when}: "
            f"another run is executing this {what}. Nothing was changed; wait for it to finish, "
            "then run again."))
    if record.transactional:
        return RecoveryDecision(
            Resolution.ROLLED_BACK,
            f"interrupted: the run{when} ended before this {what} finished (process killed or "
            "connection lost). PostgreSQL rolled back its transaction, so nothing of it took "
            "effect; " + ("the migration is still applied." if down else "it will run again."),
            status=Status.COMPLETED if down else Status.FAILED)
    total = record.metadata.get("statements_total")
    done = record.metadata.get("statements_done", 0)
    if total is not None and done == total:
        return RecoveryDecision(
            Resolution.FINISHED,
            f"interrupted: the run{when} ended after all {total} statement(s) of this "
            f"non-transactional {what} had completed, before recording it; recorded as "
            f"{'rolled back' if down else 'applied'}.",
            status=Status.ROLLED_BACK if down else Status.COMPLETED, completed=True)
    flag = ("golang-migrate's dirty flag is set." if schema_dirty else
            "golang-migrate's dirty flag should be set but is not: treat it as dirty.")
    return RecoveryDecision(
        Resolution.PARTIAL,
        f"interrupted: the run{when} ended during this non-transactional {what}, after "
        f"{done} of {total if total is not None else '?'} statement(s) had completed: those "
        f"are in effect, the rest are not. {flag}{invalid_indexes}",
        status=Status.FAILED, dirty=True)
