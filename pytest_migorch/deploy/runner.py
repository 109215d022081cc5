"""The deploy runner: ``init``, ``up``, ``down``, ``force`` and ``status`` against a database.

It runs at release time against production, so it never guesses: before anything runs it
holds the services' advisory locks (golang-migrate's keys), resolves what a dead run left
behind and says what happened (:mod:`pytest_migorch.deploy.preparing`), adopts what
golang-migrate's table records as applied, and refuses to start on drift, a dirty state,
missing prerequisites, applied dependents or an unconfirmed high-risk plan in a protected
environment.

Planning is pure (:mod:`pytest_migorch.deploy.planning`); writing each step so the records stay
true is :mod:`pytest_migorch.deploy.applying`; reading status is :mod:`.status`.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import psycopg

from pytest_migorch.checks.custom import load_custom_checks
from pytest_migorch.deploy.applying import (
    NullReporter,
    Reporter,
    StepOutcome,
    force_advice,
)
from pytest_migorch.deploy.debug_log import log_resolution
from pytest_migorch.deploy.executing import Executor, hook_notes
from pytest_migorch.deploy.hooks import HookRunner
from pytest_migorch.deploy.invalid_indexes import recorded_advice
from pytest_migorch.deploy.locks import MIGRATE_INSTANCE, lock_wait_timeout
from pytest_migorch.deploy.lost import connection_lost
from pytest_migorch.deploy.planning import (
    Plan,
    ServiceState,
    check_environment_name,
    check_schema_collisions,
    is_protected,
    plan_step,
    resolve_environment,
)
from pytest_migorch.deploy.preparing import ServicePreparation, refuse_uninitialised
from pytest_migorch.deploy.records import Status
from pytest_migorch.deploy.results import Refused, RunResult, attach_result, plan_sql
from pytest_migorch.deploy.rollback import (
    check_down_options,
    chosen_for_down,
    protected_rollback_refusal,
)
from pytest_migorch.deploy.session import Session, executed_by
from pytest_migorch.deploy.state_reads import read_states
from pytest_migorch.deploy.status import ServiceReport, collect_report
from pytest_migorch.errors import ConfigurationError, DatabaseError, MigorchError, UsageError
from pytest_migorch.findings import Family
from pytest_migorch.model import Migration, Project
from pytest_migorch.postgres.connection import ConnectionSettings, connect, database_error
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import ProjectCheck, validate_project

if TYPE_CHECKING:
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = ["Runner", "RunResult", "Refused", "DEFAULT_LOCK_TIMEOUT"]

log = logging.getLogger(__name__)

#: golang-migrate's default ``-lock-timeout`` (seconds).
DEFAULT_LOCK_TIMEOUT = 15.0
_STRUCTURAL = (Family.CONFIG, Family.FILES, Family.GRAPH, Family.CUSTOM)


class Runner(ServicePreparation):
    """Runs commands for one project against one database.

    Commands raise :class:`~pytest_migorch.errors.MigorchError` subclasses; once a command has
    started, the partial :class:`RunResult` is attached to the error as ``result``.
    """

    def __init__(
        self,
        project: Project,
        settings: ConnectionSettings,
        *,
        reporter: Reporter | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        analysis_cache: AnalysisCache | None = None,
        checks: Sequence[ProjectCheck] | None = None,
    ) -> None:
        self.project = project
        #: A team's own checks; by default those declared above the root (checks.custom).
        self.checks = [load_custom_checks(project.root, analysis_cache)] if checks is None \
            else list(checks)
        #: SQL analyses for plans, by file content (default: the process-wide memory cache).
        self.analysis_cache = analysis_cache
        self.settings = settings
        self.reporter: Reporter = reporter or NullReporter()
        self.lock_timeout = lock_timeout
        self.environ = os.environ if environ is None else environ
        self.graph = ProjectGraph(project)
        self.executed_by = executed_by()
        #: False (``--no-hooks``): environments.json hooks are skipped, with a warning.
        self.run_hooks = True

    # --- shared steps -----------------------------------------------------------------------

    def environment(self, services: Sequence[str], requested: str | None) -> str:
        """``--env`` or ``APP_ENV``, declared by every selected service (else exit 2)."""
        self._check_services(services)
        check_environment_name(requested or self.environ.get("APP_ENV") or "")
        env = resolve_environment(self.project, services, requested, self.environ)
        check_environment_name(env)
        return env

    def _no_environment(self, services: Sequence[str], requested: str | None) -> bool:
        """No ``--env``/``APP_ENV`` while a selected service declares environments."""
        self._check_services(services)
        return not (requested or self.environ.get("APP_ENV")) and any(
            self.project.services[s].has_environments for s in services)

    def _check_services(self, services: Sequence[str]) -> None:
        for name in services:
            if name not in self.project.services:
                raise UsageError(f"unknown service {name!r}")
        check_schema_collisions(self.project, services)

    def check_static(self, services: Sequence[str]) -> None:
        """Refuse to deploy a tree whose files, configuration or graph have errors."""
        result = validate_project(self.project, services=list(services), checks=self.checks,
                                  graph=self.graph)
        errors = [f for f in result.errors if f.family in _STRUCTURAL]
        if errors:
            shown = "\n".join(f.render() for f in errors[:10])
            more = f"\n... and {len(errors) - 10} more" if len(errors) > 10 else ""
            raise ConfigurationError(
                f"the migrations have {len(errors)} error(s); fix them first "
                f"(`migorch validate` lists them):\n{shown}{more}"
            )

    @contextmanager
    def _session(self, result: RunResult | None = None) -> Iterator[Session]:
        try:
            conn = connect(self.settings)
        except DatabaseError as exc:  # golang-migrate's words for it, then ours
            raise DatabaseError(f"{MIGRATE_INSTANCE}: {exc}") from None
        try:
            session = Session(conn, self.settings, self.lock_timeout)
            session.gm_tables = {s.schema: s.migrations_table
                                 for s in self.project.services.values()}
        except psycopg.Error as exc:
            conn.close()
            raise database_error(exc, "reading the database name") from exc
        try:
            yield session
        except psycopg.errors.LockNotAvailable as exc:
            raise attach_result(lock_wait_timeout(session.conn, exc, self.lock_timeout),
                          result) from exc
        except psycopg.Error as exc:
            if session.conn.closed or session.conn.broken:
                raise attach_result(self._lost(exc, result), result) from exc
            raise attach_result(database_error(exc, "talking to the database"), result) from exc
        except MigorchError as exc:
            raise attach_result(exc, result)
        finally:
            session.close()

    def _lost(self, exc: psycopg.Error, result: RunResult | None) -> MigorchError:
        """The connection died: name what was running and what the records say now."""
        step = result.running if result is not None else None
        schema = self.project.services[step.migration.service].schema if step else None
        env = result.environment if result is not None else ""
        error, info = connection_lost(exc, self.settings, env, step, schema)
        if result is not None:
            result.connection_lost = info
            if step is not None:
                outcome = StepOutcome(step, Status.FAILED, 0.0, str(error))
                result.outcomes.append(outcome)
        return error

    # --- readiness --------------------------------------------------------------------------

    def _check_ready(self, state: ServiceState, *, allow_drift: bool,
                     result: RunResult | None) -> None:
        name = state.service.name
        if state.other_environments:
            raise UsageError(
                f"{name} is deployed in this database as environment "
                f"{', '.join(map(repr, state.other_environments))}; refusing to run "
                f"{state.environment!r} on top of it (use the same --env, or another database)"
            )
        self._check_dirty(state)
        for squash, done in state.partial_squashes():
            raise Refused(
                f"{name}: this database applied {', '.join(done)} but not all the migrations "
                f"that {squash.id} replaced; running it would create their objects over a "
                f"partial schema. Apply the replaced files (kept in {name}/migrations/squashed/)"
                f" up to version {squash.version_text} first, then record it with "
                f"`migorch force {name} {squash.version_text}`."
            )
        gm = state.schema_version
        recorded = state.prefix()
        if gm.exists and not gm.dirty and gm.version < recorded:
            raise Refused(
                f"{name}: golang-migrate's table {'.'.join(state.service.migrations_table)}"
                f" says version {gm.version}, but migorch "
                f"recorded every base migration up to {recorded} as applied: something rolled "
                "back or forced golang-migrate's table outside migorch. Check the schema, then "
                f"run `migorch force {name} <version>` to record the version it is at."
            )
        drift = state.drift()
        if drift and not allow_drift:
            listed = "\n".join(f"  - {d.message}" for d in drift)
            raise Refused(
                f"{name}: {len(drift)} applied migration(s) differ from the files (drift):\n"
                f"{listed}\nRestore the files as they were applied (a change belongs in a new "
                "migration), or pass --allow-drift to run anyway."
            )
        for item in drift:
            self._note(result, f"{name}: drift allowed: {item.message}")

    def _check_dirty(self, state: ServiceState) -> None:
        name = state.service.name
        gm = state.schema_version
        if state.dirty_records:
            record = state.dirty_records[0]
            # The recorded error's first line only: the rest is its own recovery advice,
            # which the advice below repeats.
            error = (record.error_message or "no error recorded").splitlines()[0]
            raise Refused(
                f"{name} is dirty: {record.migration_id} (non-transactional "
                f"{'rollback' if record.action == 'down' else 'migration'}) did not finish: "
                f"{error}\n"
                f"golang-migrate's table says {gm.describe()}.\n"
                "To recover: look at what its statements did (e.g. an INVALID index left by "
                "CREATE INDEX CONCURRENTLY), finish or undo them by hand, then record which:"
                + force_advice(state, record.version) + recorded_advice(record.error_message)
            )
        if gm.dirty:
            raise Refused(
                f"Dirty database version {gm.version}. Fix and force version.\n"
                f"({name}: golang-migrate's table {'.'.join(state.service.migrations_table)}"
                f" was left dirty by a run migorch has no "
                "record of, most likely golang-migrate's own. Fix the schema by hand, then run "
                f"`migorch force {name} <version>` or golang-migrate's `force`.)"
            )

    @staticmethod
    def _risk_gate(plan: Plan, allowed: bool) -> None:
        risky = plan.high_risk
        if plan.protected and risky and not allowed:
            names = ", ".join(f"{s.migration.service}:{s.migration.id}" for s in risky)
            raise Refused(
                f"environment {plan.environment!r} is protected and the plan has "
                f"{len(risky)} high-risk migration(s): {names}. Review the plan, then pass "
                "--yes (or --allow-high-risk) to apply it."
            )

    def _executor(self, environment: str) -> Executor:
        def open_session() -> Session:
            conn = connect(self.settings, purpose="migorch worker")
            return Session(conn, self.settings, self.lock_timeout)

        hooks = HookRunner(self.project, environment, self.settings, self.executed_by,
                           enabled=self.run_hooks)
        return Executor(self.project.root, self.executed_by, self.reporter, self.graph, hooks,
                        open_session)

    def _show_plan(self, plan: Plan, result: RunResult, dry_run: bool) -> None:
        """Print the plan, and what it says about hooks (``--dry-run`` lists them)."""
        result.plan = plan
        self.reporter.plan(plan)
        hooks = HookRunner(self.project, plan.environment, self.settings, self.executed_by,
                           enabled=self.run_hooks)
        for line in hook_notes(hooks, plan, dry_run=dry_run):
            self._note(result, line)

    # --- commands ---------------------------------------------------------------------------

    def init(self, services: Sequence[str], environment: str | None = None) -> RunResult:
        """Create schemas and tracking tables and adopt golang-migrate's records.

        Without ``--env``/``APP_ENV`` where a service declares environments, only the tables
        are created: the first command run with an environment adopts (docs/runner.md)."""
        env = "" if self._no_environment(services, environment) else \
            self.environment(services, environment)
        result = RunResult("init", env, list(services))
        with self._session(result) as session:
            session.lock([self.project.services[s].schema for s in services],
                         self.lock_timeout, self.reporter)
            for name in services:
                if not env:
                    self._create_tables_only(session, name, result)
                    continue
                state = self._prepare_service(session, name, env, writable=True, result=result)
                if state.schema_version.dirty:
                    self._note(result, f"{name}: golang-migrate's table is dirty "
                                       f"({state.schema_version.describe()}); `up` refuses "
                                       "until it is fixed and forced")
                self._note(result, f"{name}: {len(state.applied)} applied, "
                                   f"{len(state.pending)} pending in {env!r}")
        return result

    def up(
        self, services: Sequence[str], environment: str | None = None, *,
        count: int | None = None, dry_run: bool = False, allow_drift: bool = False,
        allow_high_risk: bool = False, jobs: int = 1,
    ) -> RunResult:
        """Apply the pending migrations of ``services`` in resolved order; with ``jobs`` > 1,
        independent ones at the same time on up to ``jobs`` connections."""
        if count is not None and count < 1:
            raise UsageError("--count must be at least 1")
        if jobs < 1:
            raise UsageError("--jobs must be at least 1")
        env = self.environment(services, environment)
        self.check_static(services)
        result = RunResult("up", env, list(services), dry_run=dry_run)
        selected = set(services)
        order = self.graph.order_all(env, services)
        involved = sorted(selected | {m.service for m in order})
        with self._session(result) as session:
            if not dry_run:
                session.lock([self.project.services[s].schema for s in services],
                             self.lock_timeout, self.reporter)
            schemas = {name: self.project.services[name].schema for name in involved}
            session.probe_tables(list(schemas.values()))
            read = read_states(session, list(schemas.values()))
            states = {name: self._prepare_service(session, name, env, result=result,
                                        writable=name in selected and not dry_run,
                                        prefetched=read.get(schemas[name]))
                      for name in involved}
            for name in services:
                self._check_ready(states[name], allow_drift=allow_drift, result=result)
            adopting = {name: self._would_adopt(states[name], result)
                        for name in services} if dry_run else {}
            pending = [m for m in order if not states[m.service].is_applied(m)
                       and m.version not in adopting.get(m.service, ())]
            self._check_prerequisites(pending, selected, env)
            todo = [m for m in pending if m.service in selected][:count]
            log_resolution("up", env, order, states, selected, todo)
            plan = Plan("up", env, is_protected(self.project, services, env),
                        [plan_step(m, "up", states[m.service].schema, self.analysis_cache)
                         for m in todo])
            self._show_plan(plan, result, dry_run)
            if dry_run:
                result.sql = plan_sql(plan)
                return result
            self._risk_gate(plan, allow_high_risk)
            self._executor(env).execute(session, plan, states, result, jobs=jobs)
        return result

    def _check_prerequisites(self, pending: list[Migration], selected: set[str],
                             env: str) -> None:
        """Deploying one service never silently deploys another: refuse when a pending
        migration needs a migration of an unselected service that is not applied."""
        graph = self.graph.graph(env)
        waiting = {m.key: m for m in pending}
        missing: list[tuple[Migration, Migration]] = []
        for migration in pending:
            if migration.service in selected:
                for key in graph.predecessors(migration.key):
                    if key[0] not in selected and key in waiting:
                        missing.append((migration, waiting[key]))
        if missing:
            lines = [f"{m.qualified_id} depends on {d.qualified_id}, which is not applied in "
                     f"{env!r}" for m, d in missing]
            others = sorted({d.service for _, d in missing})
            raise Refused("\n".join(lines) + f"\nDeploy {', '.join(others)} first, or use "
                          "--all to deploy every service in cross-service order.")

    def down(
        self, service: str, environment: str | None = None, *, steps: int | None = None,
        version: int | None = None, cascade: bool = False, dry_run: bool = False,
        confirmed: bool = False, only: int | None = None,
    ) -> RunResult:
        """Roll back the newest applied migrations of ``service`` (one by default), or with
        ``only`` exactly that one migration (and, with ``cascade``, what depends on it)."""
        check_down_options(self.project, service, steps, version, only)
        env = self.environment([service], environment)
        own = [m.key for m in self.graph.order(service, env)]
        involved = sorted({service} | {k[0] for k in self.graph.dependents(own, env)})
        self.check_static(involved)
        result = RunResult("down", env, [service], dry_run=dry_run)
        with self._session(result) as session:
            refuse_uninitialised(session.tracking(self.project.services[service].schema),
                                 service)
            if not dry_run:
                session.lock([self.project.services[s].schema for s in involved],
                             self.lock_timeout, self.reporter)
            states = {name: self._prepare_service(session, name, env, result=result,
                                        writable=name == service and not dry_run)
                      for name in involved}
            self._check_ready(states[service], allow_drift=True, result=result)
            plan, rollback_to = self._down_plan(states, service, env, steps, version, cascade,
                                                only)
            log_resolution("down", env, states[service].order, states, {service},
                           [step.migration for step in plan.steps])
            self._show_plan(plan, result, dry_run)
            if dry_run:
                result.sql = plan_sql(plan)
                return result
            if plan.steps and plan.protected and not confirmed:
                raise Refused(protected_rollback_refusal(plan))
            for name in {s.migration.service for s in plan.steps}:
                self._check_dirty(states[name])
            self._executor(env).execute(session, plan, states, result, rollback_to)
        return result

    def _down_plan(self, states: dict[str, ServiceState], service: str, env: str,
                   steps: int | None, version: int | None, cascade: bool,
                   only: int | None = None) -> tuple[Plan, dict[str, str]]:
        """What to roll back, newest first; refuse on applied dependents or irreversibility."""
        chosen = chosen_for_down(states[service], env, steps, version, only)
        keys = {m.key for m in chosen}
        dependents = sorted(
            key for key in self.graph.dependents(keys, env)
            if key not in keys and key[0] in states
            and states[key[0]].is_applied(self.project.services[key[0]].migrations[key[1]])
        )
        if dependents and not cascade:
            names = ", ".join(self.project.services[s].migrations[v].qualified_id
                              for s, v in dependents)
            raise Refused(
                f"cannot roll back {', '.join(m.qualified_id for m in chosen)}: applied "
                f"migrations depend on it: {names}. Roll those back first, or pass --cascade "
                "to roll them back too (dependents first)."
            )
        keys |= set(dependents)
        ordered = [m for m in reversed(self.graph.order_all(env)) if m.key in keys]
        irreversible = [m for m in ordered if not m.reversible or m.down is None]
        if irreversible:
            raise Refused(
                "nothing was rolled back: "
                + ", ".join(f"{m.qualified_id} is irreversible"
                            + (' ("reversible": false)' if not m.reversible else " (no down file)")
                            for m in irreversible)
                + "; it cannot be rolled back"
            )
        rollback_to: dict[str, str] = {}
        for name, svc_state in states.items():
            remaining = [m for m in svc_state.applied if m.key not in keys]
            rollback_to[name] = remaining[-1].version_text if remaining else "0"
        plan = Plan("down", env, is_protected(self.project, [service], env),
                    [plan_step(m, "down", states[m.service].schema, self.analysis_cache)
                         for m in ordered])
        return plan, rollback_to

    def force(self, service: str, version: int, environment: str | None = None) -> RunResult:
        """Clear a dirty state after a manual fix, like golang-migrate's ``force``.

        A dirty migration is recorded as applied when its version is <= ``version``, as not
        applied otherwise. Without one (golang-migrate left the flag, or nothing is dirty),
        golang-migrate's meaning applies: base migrations up to ``version`` are applied, later
        ones are not. golang-migrate's table is then rewritten, clean.
        """
        if version < -1:
            raise UsageError("version must be >= -1")
        env = self.environment([service], environment)
        result = RunResult("force", env, [service])
        with self._session(result) as session:
            session.lock([self.project.services[service].schema], self.lock_timeout,
                         self.reporter)
            state = self._prepare_service(session, service, env, writable=True, result=result,
                                forcing=True)
            tracking = session.tracking(state.schema)
            with session.conn.transaction():
                if state.dirty_records:
                    self._force_dirty(tracking, state, version, result)
                else:
                    self._force_literal(session, tracking, state, version, result)
                after = self._read_state(tracking, service, env)
                tracking.write_schema_version(after.prefix(), False)
            result.changes.append(f"{tracking.gm_schema}.{tracking.gm_table} set to "
                                  f"version {after.prefix()}, clean")
        return result  # the front end prints result.changes, once

    def status(self, services: Sequence[str], environment: str | None = None, *,
               history: int = 10) -> list[ServiceReport]:
        """Read-only: state, pending work, drift, dirty state and the last runs."""
        env = self.environment(services, environment)
        reports = []
        with self._session() as session:
            schemas = [self.project.services[s].schema for s in services]
            session.probe_tables(schemas)
            read = read_states(session, schemas)
            for name in services:
                tracking = session.tracking(self.project.services[name].schema)
                state = self._read_state(tracking, name, env, read.get(tracking.schema))
                reports.append(collect_report(session, state, history=history))
        return reports
