"""Getting one service ready before a command runs: create what is missing, refuse on
destroyed records, resolve what a dead run left behind, adopt golang-migrate's records, and
``force``'s record-keeping.

A mixin of :class:`pytest_migorch.deploy.runner.Runner` (which holds the project, graph,
reporter and identity), split out so the command facade stays readable.
"""

from __future__ import annotations

import logging
from typing import Any

from pytest_migorch.deploy.adoption import ALREADY_APPLIED, adoptable, adoption_line
from pytest_migorch.deploy.applying import (
    Applier,
    Reporter,
)
from pytest_migorch.deploy.planning import (
    ServiceState,
)
from pytest_migorch.deploy.records import Action, Status
from pytest_migorch.deploy.invalid_indexes import drop_advice, find_invalid_indexes
from pytest_migorch.deploy.recovery import Resolution, decide_recovery
from pytest_migorch.deploy.results import Refused, RunResult
from pytest_migorch.deploy.session import Session
from pytest_migorch.deploy.state_reads import StateRead
from pytest_migorch.deploy.tracking import (
    Tracking,
    file_checksum,
)
from pytest_migorch.model import Migration, Project
from pytest_migorch.project.graph import ProjectGraph

__all__ = ["ServicePreparation", "refuse_destroyed_records", "refuse_uninitialised", "self_user"]

log = logging.getLogger(__name__)


class ServicePreparation:
    """Creation, recovery, adoption and forcing of a service's records (Runner's mixin)."""

    project: Project
    graph: ProjectGraph
    reporter: Reporter
    executed_by: str

    def _prepare_service(self, session: Session, name: str, env: str, *, writable: bool,
               result: RunResult | None = None, forcing: bool = False,
               prefetched: StateRead | None = None) -> ServiceState:
        """A service's state; when ``writable`` (its lock held), first create what is missing,
        resolve what a dead run left behind and adopt golang-migrate's records.

        ``prefetched``: its rows and version as :func:`~pytest_migorch.deploy.state_reads.
        read_states` read them for every service at once, used only when nothing was written
        here before the state is read."""
        tracking = session.tracking(self.project.services[name].schema)
        recreated = False
        created: list[str] = []
        if writable:
            if not tracking.is_initialised() and not forcing:
                refuse_destroyed_records(tracking, name)
            created = [] if tracking.is_initialised() else tracking.create()
            if created:
                self._note(result, f"{name}: created {', '.join(created)}")
            elif not tracking.has_schema_version_table():
                with session.conn.transaction():
                    recreated = tracking.ensure_schema_version_table()
        state = self._read_state(tracking, name, env,
                                 None if created or recreated else prefetched)
        if recreated and state.records:
            # Someone dropped golang-migrate's table (its `drop` does): rebuild it from ours.
            tracking.write_schema_version(state.prefix(), bool(state.dirty_records))
            self._note(result, f"{name}: golang-migrate's table was missing; recreated at "
                               f"version {state.prefix()}")
            state = self._read_state(tracking, name, env)
        if writable:
            if state.running and self._recover(session, state, result):
                state = self._read_state(tracking, name, env)
            # A database deployed as another environment is refused by _check_ready; adopting
            # golang-migrate's records into this environment first would hide that.
            if not state.other_environments and self._adopt(session, state, result):
                state = self._read_state(tracking, name, env)
        return state

    def _create_tables_only(self, session: Session, name: str, result: RunResult) -> None:
        """``init`` without an environment: create what is missing and say what the first
        command with an environment will adopt. Rows name their environment, so nothing is
        adopted (or recovered) until one is known; the tables and the lock are the same in
        every environment."""
        tracking = session.tracking(self.project.services[name].schema)
        if not tracking.is_initialised():
            refuse_destroyed_records(tracking, name)
            created = tracking.create()
            if created:
                self._note(result, f"{name}: created {', '.join(created)}")
        else:
            with session.conn.transaction():
                tracking.ensure_schema_version_table()
        records = tracking.records()
        deployed = sorted({r.environment for r in records if r.status == Status.COMPLETED})
        if deployed:
            self._note(result, f"{name}: deployed in this database as environment(s) "
                               + ", ".join(map(repr, deployed)))
        gm = tracking.read_schema_version()
        service = self.project.services[name]
        waiting = adoptable(service, gm, {r.version for r in records
                                          if r.counts_as_applied and r.environment in deployed})
        if waiting and not deployed:
            self._note(result, f"{name}: " + adoption_line(
                service, gm, waiting, by="the first `up` (or `init --env NAME`)"))

    def _read_state(self, tracking: Tracking, name: str, env: str,
                    prefetched: StateRead | None = None) -> ServiceState:
        service = self.project.services[name]
        records, version = prefetched if prefetched is not None else (
            tracking.records(), tracking.read_schema_version())
        return ServiceState.build(
            service, env, self.graph.order(name, env), tracking.is_initialised(), version,
            records)


    def _note(self, result: RunResult | None, message: str) -> None:
        if result is not None:
            result.notes.append(message)
        self.reporter.note(message)

    # --- recovery and adoption --------------------------------------------------------------

    def _recover(self, session: Session, state: ServiceState, result: RunResult | None) -> bool:
        """Resolve ``running`` rows left by a run that died and say truthfully what it means
        (:func:`~pytest_migorch.deploy.recovery.decide_recovery`). A row whose backend is
        still alive belongs to a live run: it is never touched, and this run refuses."""
        tracking = session.tracking(state.schema)
        alive = session.alive_backends(
            [r.backend_pid for r in state.running if r.backend_pid is not None])
        left = drop_advice(find_invalid_indexes(session.conn, state.schema)) if any(
            not r.transactional for r in state.running) else ""
        decisions = [(record, decide_recovery(
            record, backend_alive=record.backend_pid in alive,
            schema_dirty=state.schema_version.dirty, invalid_indexes=left))
            for record in state.running]
        for record, decision in decisions:
            log.debug("recovery of %s:%s row %d (backend pid %s %s, %stransactional, "
                      "golang-migrate dirty: %s): %s -> %s", state.service.name,
                      record.migration_id, record.id, record.backend_pid,
                      "alive" if record.backend_pid in alive else "gone",
                      "" if record.transactional else "non-", state.schema_version.dirty,
                      decision.resolution.value, decision.status or "left alone")
        live = [(r, d) for r, d in decisions if not d.proceeds]
        if live:
            raise Refused("\n".join(f"{state.service.name}: {r.migration_id} is {d.message}"
                                     for r, d in live))
        for record, decision in decisions:
            assert decision.status is not None
            tracking.update(record.id, action=Action.RECOVER, status=decision.status,
                            completed=decision.completed, error_message=decision.message,
                            metadata={"interrupted": True, "dirty": decision.dirty})
            self._note(result, f"{state.service.name}: {record.migration_id} was "
                               f"{decision.message}")
            if decision.resolution is Resolution.FINISHED:
                self._clear_dirty_if_ours(tracking, state)
        return bool(state.running)

    def _clear_dirty_if_ours(self, tracking: Tracking, state: ServiceState) -> None:
        """Rewrite golang-migrate's table clean when the only reason it was dirty is gone."""
        fresh = self._read_state(tracking, state.service.name, state.environment)
        unresolved = [r for r in fresh.records if r.dirty or
                      (r.status == Status.RUNNING and not r.transactional)]
        if fresh.schema_version.dirty and not unresolved:
            tracking.write_schema_version(fresh.prefix(), False)

    def _adopt(self, session: Session, state: ServiceState, result: RunResult | None) -> bool:
        """Record as completed, without running anything, the base migrations golang-migrate's
        table says are applied (up to its version; below it when it is dirty)."""
        gm = state.schema_version
        adopt = adoptable(state.service, gm, state.applied_versions())
        log.debug("adoption for %s in %r: golang-migrate's table says %s; %s",
                  state.service.name, state.environment, gm.describe(),
                  ", ".join(m.id for m in adopt) or "nothing to adopt")
        if not adopt:
            return False
        tracking = session.tracking(state.schema)
        applier = Applier(session, self.project.root, self.executed_by)
        source = f"{tracking.gm_schema}.{tracking.gm_table} version {gm.describe()}"
        with session.conn.transaction():
            for migration in adopt:
                self._record_applied_without_running(
                    tracking, applier, state, migration, "adopt",
                    {"adopted": True, "source": source})
        self._note(result, f"{state.service.name}: {ALREADY_APPLIED}: adopted "
                           f"{len(adopt)} migration(s) that golang-migrate's table records as "
                           f"applied ({source}): " + ", ".join(m.id for m in adopt))
        if gm.version not in state.service.migrations:
            self._note(result, f"{state.service.name}: golang-migrate's version {gm.version} "
                               "matches no migration file")
        return True


    def _would_adopt(self, state: ServiceState, result: RunResult) -> set[int]:
        """What a real ``up`` would adopt before planning (see :meth:`_adopt`), for a dry run,
        which writes nothing: noted, and left out of the plan as the real run leaves it out."""
        if state.other_environments:
            return set()
        adopt = adoptable(state.service, state.schema_version, state.applied_versions())
        if adopt:
            self._note(result, f"{state.service.name}: " + adoption_line(
                state.service, state.schema_version, adopt, by="`up`"))
        return {m.version for m in adopt}

    def _force_dirty(self, tracking: Tracking, state: ServiceState, version: int,
                     result: RunResult) -> None:
        for record in state.dirty_records:
            applied = record.version <= version
            if applied:
                status = Status.COMPLETED
            else:
                status = Status.ROLLED_BACK if record.action == Action.DOWN else Status.FAILED
            note = (f"[forced to {version} by {self_user(tracking)}: recorded as "
                    f"{'applied' if applied else 'not applied'}]")
            tracking.update(record.id, action=Action.FORCE, status=status,
                            error_message=f"{record.error_message or ''} {note}".strip(),
                            rollback_version=None if applied else str(version),
                            metadata={"dirty": False, "forced": version})
            result.changes.append(f"{record.migration_id}: recorded as "
                                  f"{'applied' if applied else 'not applied'}")

    def _record_applied_without_running(
        self, tracking: Tracking, applier: Applier, state: ServiceState, migration: Migration,
        action: str, extra: dict[str, Any],
    ) -> None:
        """A ``completed`` row for a migration that ran elsewhere (adopted or forced)."""
        assert migration.up is not None
        record = state.record(migration)
        tracking.start(
            migration_id=record.migration_id if record else migration.id,
            migration_version=migration.version_text, environment=state.environment,
            action=action, status=Status.COMPLETED, started=False,
            executed_by=self.executed_by, checksum=file_checksum(migration.up.path),
            dependencies=[d.text for d in migration.depends_on],
            metadata={**applier.metadata(migration, action, state.schema), **extra},
        )

    def _force_literal(self, session: Session, tracking: Tracking, state: ServiceState,
                       version: int, result: RunResult) -> None:
        applier = Applier(session, self.project.root, self.executed_by)
        for migration in state.service.base_migrations():
            if migration.up is None:
                continue
            record = state.record(migration)
            if migration.version <= version and not state.is_applied(migration):
                self._record_applied_without_running(
                    tracking, applier, state, migration, "force", {"forced": version})
                result.changes.append(f"{migration.id}: recorded as applied (not run)")
            elif migration.version > version and record is not None \
                    and record.status == Status.COMPLETED:
                tracking.update(record.id, action=Action.FORCE, status=Status.ROLLED_BACK,
                                rollback_version=str(version), metadata={"forced": version})
                result.changes.append(f"{migration.id}: recorded as not applied (down not run)")


def refuse_destroyed_records(tracking: Tracking, name: str) -> None:
    """Refuse when migorch's records of ``name`` are gone but golang-migrate's table (marked
    by migorch) says migrations were applied: re-adopting them would record as applied
    migrations whose objects may be gone with the schema."""
    version = tracking.records_destroyed()
    if version is None:
        return
    raise Refused(
        f"{name}: migorch's records are gone: {tracking.schema}.migration_executions does not "
        f"exist, but golang-migrate's table {tracking.gm_schema}.{tracking.gm_table}, which "
        f"migorch kept, says version {version.describe()}. Something (a migration dropping "
        "its own schema or the tracking tables, or a person) destroyed them; what that "
        "version's migrations created may be gone too, so nothing is adopted or run. Check "
        "what the schema really holds, then record it with "
        f"`migorch force {name} <version>` (-1 when nothing of it is left).")




def refuse_uninitialised(tracking: Tracking, name: str) -> None:
    """``down`` on a database migorch never initialised: there is nothing it applied to roll
    back, and creating the tracking tables as a side effect of a rollback would hide that
    the wrong database (or service) was named."""
    if tracking.is_initialised():
        return
    raise Refused(
        f"Migration tracking table does not exist: {tracking.schema}.migration_executions is "
        f"missing, so {name} was never initialised in this database and migorch applied "
        "nothing there to roll back. Nothing was created or changed. Check --database-url / "
        f"DATABASE_URL; to manage this database, run `migorch init {name}` first (it adopts "
        "what golang-migrate applied).")


def self_user(tracking: Tracking) -> str:
    """The database user, for notes written into rows."""
    row = tracking.conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else "unknown"


