"""The up/down/up round-trip of every migration of a service, in a throwaway database.

For one service and environment, in resolved order (migrations of other services it needs are
applied first, where the order puts them), each of the service's migrations is checked:

1. snapshot, apply up (it must succeed), snapshot;
2. apply down (it must succeed), snapshot: it must equal the snapshot before up;
3. apply up again (it must succeed), snapshot: it must equal the snapshot after the first up.

Irreversible migrations (``"reversible": false``) skip 2 and 3 and say so. After a failed or
unclean step the next migration is tested from the state it expects (the preceding ups replayed
on a fresh database), so one defect is reported once, not as a cascade: a later up that fails
because an earlier one failed is ``DB006`` naming it (:mod:`pytest_migorch.roundtrip.causes`),
and a table whose columns are only in another order after down is the warning ``DB010``.
Migrations the plan says are tested in another environment, or are history a change did not
reach, are only applied here (:mod:`pytest_migorch.roundtrip.coverage`). While each up runs,
:mod:`pytest_migorch.postgres.probes` records what PostgreSQL saw it do, which is compared with the
declared ``affects_tables`` and ``risk_level`` and with what the static analysis derived.

The runner is incremental: :meth:`RoundTrip.outcome` computes outcomes up to the migration asked
for, so each generated pytest item does its own share of the work.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg
from psycopg import sql

from pytest_migorch.errors import DatabaseError, MigrationFailed
from pytest_migorch.findings import Finding, Rule
from pytest_migorch.model import Migration, MigrationFile, Project, schema_name
from pytest_migorch.postgres.probes import PROBE_SCHEMA, MigrationTruth, install_probes
from pytest_migorch.postgres.schema_diff import SchemaDifference, split_column_order
from pytest_migorch.postgres.servers import PostgresServer, ServerGone, unique_database_name
from pytest_migorch.postgres.snapshot import Snapshot, diff_snapshots, render_differences
from pytest_migorch.postgres.snapshot_tracking import SnapshotTracker
from pytest_migorch.postgres.statements import MigrationSqlError
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.roundtrip.causes import EarlierFailure, explaining_failure
from pytest_migorch.roundtrip.coverage import EnvironmentPlan
from pytest_migorch.roundtrip.data_checks import DataChecks
from pytest_migorch.roundtrip.failures import describe_failure
from pytest_migorch.roundtrip.file_step import FileResult, apply_file
from pytest_migorch.roundtrip.replay import apply_batch, batchable_run
from pytest_migorch.roundtrip.row_changes import KnownRows
from pytest_migorch.roundtrip.rules import (
    COLUMN_ORDER,
    DOWN_FAILED,
    DOWN_RESIDUE,
    PREREQUISITE_FAILED,
    REUP_DIFFERS,
    REUP_FAILED,
    RULES,
    UP_FAILED,
)
from pytest_migorch.roundtrip.seed_catalogue import SeedCatalogue
from pytest_migorch.roundtrip.server_plans import install_round_trip_plans
from pytest_migorch.roundtrip.truth import truth_findings
from pytest_migorch.roundtrip.version_table import prepare_database

__all__ = ["RoundTrip", "MigrationOutcome", "RULES", "StaticTables"]

log = logging.getLogger(__name__)

#: Tables the static analysis says a migration changes (``schema.table``), or None if unknown.
StaticTables = Callable[[Migration], "set[str] | None"]


@dataclass
class MigrationOutcome:
    """What the round-trip found for one migration."""

    migration: Migration
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    truth: MigrationTruth | None = None

    @property
    def failed(self) -> bool:
        return any(f.is_error for f in self.findings)


@dataclass
class _Step:
    """One entry of the resolved order: a migration of this service (tested) or another's."""

    migration: Migration
    tested: bool


class RoundTrip:
    """The round-trip of one service in one environment, on its own database."""

    def __init__(
        self, server: PostgresServer, project: Project, graph: ProjectGraph, service: str,
        environment: str, *, static_tables: StaticTables | None = None,
        strict_column_order: bool = False, plan: EnvironmentPlan | None = None,
        seed_data: bool = True,
    ) -> None:
        """``strict_column_order`` makes a column-order-only difference after down an error;
        ``plan`` (see :mod:`pytest_migorch.roundtrip.coverage`) names the migrations tested in
        another environment (only applied here) and the environments each outcome covers;
        ``seed_data``: rows in the tables before each up (:mod:`.data_checks`)."""
        self.seed_data = seed_data
        self.server = server
        self.project = project
        self.service = service
        self.environment = environment
        self.static_tables = static_tables
        self.strict_column_order = strict_column_order
        self._covers = plan.covers if plan is not None else {}
        untested = plan.applied_only if plan is not None else frozenset()
        order = graph.order_all(environment, [service])
        self.steps = [_Step(m, m.service == service and m.key not in untested) for m in order]
        #: No migration of the service (in any environment, so all classify failures alike) nor
        #: of the order declares depends_on: golang-migrate's order, each needs all earlier.
        own = project.services[service].migrations.values() if service in project.services else ()
        self._implicit_order = not any(m.depends_on for m in [*own, *order])
        self._created: dict[tuple[str, int], set[str]] = {}  # SQL analysis, for failing ups
        self.outcomes: dict[int, MigrationOutcome] = {}
        self._position = 0  # index of the next step to run
        self._applied: list[Migration] = []  # ups in effect on the current database
        self._failed: dict[tuple[str, int], str] = {}  # prerequisites that could not be applied
        self._dbname: str | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._probes = False
        self._dirty = False  # the current database is not in the state the next step expects
        #: The snapshot of the database as it is now, when known: the state after one
        #: migration's round-trip is the state before the next one's, so it is taken once.
        self._known_state: Snapshot | None = None
        self._tracker = SnapshotTracker(exclude_schemas=[PROBE_SCHEMA])  # reads what changed
        self._one_at_a_time_until = 0  # steps before this index are not batched (one failed)
        self._catalogue = SeedCatalogue(self._tracker)  # seeding's, read where it changed
        self._rows = KnownRows(self._tracker)  # the rows as last read, read where they changed

    # --- public -------------------------------------------------------------------------------

    def migrations(self) -> list[Migration]:
        """The service's own migrations, in the order they are tested."""
        return [step.migration for step in self.steps if step.tested]

    def outcome(self, migration: Migration) -> MigrationOutcome:
        """The outcome of ``migration``, running the round-trip up to it if needed.

        Raises :class:`ServerGone` instead of a psycopg error or a misleading SQL failure when
        the server died under the round-trip, and at once for every later migration."""
        self.server.check_alive()
        try:
            while migration.version not in self.outcomes and self._position < len(self.steps):
                if not self._replay_batch():
                    self._run_step(self.steps[self._position])
                    self._position += 1
        except (psycopg.Error, DatabaseError):
            self.server.check_alive(probe=True)
            raise
        found = self.outcomes.get(migration.version)
        if found is not None and found.failed:
            self.server.check_alive()  # "server closed the connection" is not the SQL's fault
        if found is None:
            raise DatabaseError(f"{migration.qualified_id} is not part of this round-trip")
        return found

    def run_all(self) -> list[MigrationOutcome]:
        return [self.outcome(m) for m in self.migrations()]

    def close(self) -> None:
        """Drop the working database; with a dead server there is nothing left to drop (the
        items that needed it have said so), and teardown must not add a traceback."""
        try:
            self._drop_database()
        except ServerGone:
            self._dbname = None

    # --- database lifecycle -------------------------------------------------------------------

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._dirty:
            self._rebuild()
        assert self._conn is not None
        return self._conn

    def _drop_database(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._dbname is not None:
            self.server.drop_database(self._dbname)
            self._dbname = None

    def _new_database(self) -> None:
        self._drop_database()
        self._dbname = self.server.create_database(unique_database_name("migorch_rt"))
        # No psycopg-prepared statements: psycopg would DEALLOCATE ALL after a DROP or ALTER.
        self._conn = conn = psycopg.connect(self.server.conninfo(self._dbname), autocommit=True,
                                            prepare_threshold=None)
        served = {step.migration.service for step in self.steps}
        prepare_database(conn, [self.project.services[n] for n in served
                                if n in self.project.services])
        self._probes = install_probes(conn)
        if self._probes:  # the snapshot after a file, in its message; kept plans
            self._tracker.install_function(conn)
            install_round_trip_plans(conn)

    def _rebuild(self) -> None:
        """A fresh database with every up that is in effect replayed in order."""
        replay = list(self._applied)
        self._known_state = None
        self._new_database()
        self._dirty = False
        assert self._conn is not None
        self._applied = []
        for migration in replay:
            try:
                self._apply(migration, migration.up)  # type: ignore[arg-type]
            except MigrationFailed as exc:
                # It applied before on the same state; a different result is worth saying.
                raise DatabaseError(
                    f"replaying {migration.qualified_id} on a fresh database failed: {exc}"
                ) from exc
            self._applied.append(migration)

    # --- steps --------------------------------------------------------------------------------

    def _run_step(self, step: _Step) -> None:
        migration = step.migration
        blocker = self._blocking_prerequisite(migration)
        if not step.tested:
            if blocker is None:
                self._apply_prerequisite(migration)
            else:
                self._failed[migration.key] = blocker
            return
        outcome = MigrationOutcome(migration)
        self.outcomes[migration.version] = outcome
        if blocker is not None:
            outcome.findings.append(self._finding(
                PREREQUISITE_FAILED, migration, migration.up,
                f"{migration.id} was not tested because {blocker}",
            ))
            self._failed[migration.key] = f"{migration.qualified_id} was not tested"
            return
        self._round_trip(outcome)

    def _replay_batch(self) -> bool:
        """Apply the untested steps from here on in one message (:mod:`.replay`); False when
        there are fewer than two, or the batch failed (then they are applied one at a time)."""
        run = [] if self._position < self._one_at_a_time_until else batchable_run(
            self.steps, self._position, self._blocking_prerequisite)
        if len(run) < 2:
            return False
        self._known_state = None
        if apply_batch(self.conn, run):
            self._applied.extend(migration for migration, _ in run)
            self._position += len(run)
            return True
        self._dirty = True  # some of it committed: rebuild, then one at a time
        self._one_at_a_time_until = self._position + len(run)
        return False

    def _blocking_prerequisite(self, migration: Migration) -> str | None:
        """Why ``migration`` cannot be tested: a dependency that failed, or None."""
        for dep in migration.depends_on:
            reason = self._failed.get(dep.key())
            if reason is not None:
                return f"its dependency {dep.text} failed ({reason})"
        return None

    def _apply_prerequisite(self, migration: Migration) -> None:
        self._known_state = None
        try:
            self._apply(migration, migration.up)  # type: ignore[arg-type]
            self._applied.append(migration)
        except MigrationFailed as exc:
            self._failed[migration.key] = f"{migration.qualified_id} failed: {exc}"
            self._dirty = True

    def _round_trip(self, outcome: MigrationOutcome) -> None:
        migration = outcome.migration
        assert migration.up is not None
        known, self._known_state = self._known_state, None
        before_up = known if known is not None and not self._dirty else self._snapshot(outcome)
        data = DataChecks(migration, [s.migration.service for s in self.steps], self._finding,
                          self._sql_failure, self._rebuild, self._catalogue.read, self._rows)
        outcome.notes.extend(data.before_up(self.conn, seed=self.seed_data))
        try:
            done = data.run_up(self.conn, functools.partial(self._apply_file, snapshot=True),
                               outcome)
        except MigrationSqlError as exc:
            outcome.findings.extend(data.up_failed(self.conn, exc, self._apply, lambda: (
                self._step_failure(UP_FAILED, migration, exc, "up"))))
            self._failed[migration.key] = f"{migration.qualified_id} up failed"
            self._dirty = True
            return
        self._applied.append(migration)
        outcome.truth = done.truth
        after_up = self._snapshot_after(outcome, done)
        self._check_truth(outcome)
        outcome.findings.extend(data.after_up(self.conn, outcome.truth))
        if not migration.reversible:
            outcome.notes.append(
                f'{migration.id} is marked "reversible": false: down and re-up not tested')
            self._known_state = after_up
            return
        if migration.down is None:
            outcome.notes.append(f"{migration.id} has no down file: down and re-up not tested")
            self._known_state = after_up
            return
        if not self._down_is_clean(outcome, before_up):
            return
        outcome.findings.extend(data.after_down(self.conn))
        self._reup(outcome, after_up)

    def _down_is_clean(self, outcome: MigrationOutcome, before_up: Snapshot) -> bool:
        migration = outcome.migration
        assert migration.down is not None
        try:
            done = self._apply_file(migration, migration.down, outcome, timing="down",
                                    snapshot=True)
        except MigrationSqlError as exc:
            outcome.findings.append(self._step_failure(DOWN_FAILED, migration, exc, "down"))
            self._dirty = True
            return False
        after_down = self._snapshot_after(outcome, done)
        differences, reordered = split_column_order(
            diff_snapshots(before_up, after_down, default_schema=None))
        context = f"after down of {migration.id}, compared with before its up"
        if differences:
            outcome.findings.append(self._finding(
                DOWN_RESIDUE, migration, migration.down,
                f"after up then down of {migration.id}, "
                + "; ".join(d.message for d in differences[:3])
                + (f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""),
                details=render_differences(differences + reordered, context),
            ))
            self._dirty = True  # the next migration gets the state it expects
            return False
        if reordered:
            outcome.findings.append(self._column_order(
                migration, reordered, context, f"after up then down of {migration.id}"))
        return True

    def _reup(self, outcome: MigrationOutcome, after_up: Snapshot) -> None:
        migration = outcome.migration
        assert migration.up is not None
        try:
            done = self._apply_file(migration, migration.up, outcome, timing="reup",
                                    snapshot=True)
        except MigrationSqlError as exc:
            outcome.findings.append(self._step_failure(REUP_FAILED, migration, exc, "re-up"))
            self._dirty = True
            return
        after_reup = self._snapshot_after(outcome, done)
        differences, reordered = split_column_order(diff_snapshots(after_up, after_reup))
        if reordered and not differences:
            outcome.findings.append(self._column_order(
                migration, reordered,
                f"after the second up of {migration.id}, compared with the first",
                f"after down then up again of {migration.id}"))
        if differences:
            outcome.findings.append(self._finding(
                REUP_DIFFERS, migration, migration.up,
                f"up again after down of {migration.id} gives a different schema: "
                + "; ".join(d.message for d in differences[:3]),
                details=render_differences(
                    differences + reordered,
                    f"after the second up of {migration.id}, compared with the first"),
            ))
            self._dirty = True
        else:
            self._known_state = after_reup

    # --- applying -----------------------------------------------------------------------------

    def _apply(
        self, migration: Migration, file: MigrationFile, outcome: MigrationOutcome | None = None,
        *, timing: str = "up", want_truth: bool = False,
    ) -> MigrationTruth | None:
        """Run one file (:mod:`.file_step`); collect the truth when asked."""
        return self._apply_file(migration, file, outcome, timing=timing,
                                want_truth=want_truth).truth

    def _apply_file(self, migration: Migration, file: MigrationFile,
                    outcome: MigrationOutcome | None = None, *, timing: str = "up",
                    want_truth: bool = False, snapshot: bool = False) -> FileResult:
        """:func:`.file_step.apply_file`, timed into ``outcome``; ``snapshot``: the snapshot
        read goes with the file when it can (:meth:`_snapshot_after` takes it)."""
        conn = self.conn
        then = self._tracker.call_after(conn) if snapshot and self._probes else None
        started = time.perf_counter()
        result = apply_file(conn, migration, file, want_truth=want_truth, probes=self._probes,
                            then=then)
        if outcome is not None:
            outcome.timings[timing] = time.perf_counter() - started
        return result

    def _snapshot_after(self, outcome: MigrationOutcome, result: FileResult) -> Snapshot:
        """The snapshot after a file: from the row that came with it, else read now."""
        if not result.then_sent:
            return self._snapshot(outcome)
        started = time.perf_counter()
        snapshot = self._tracker.snapshot_from(self.conn, result.then_row)
        outcome.timings["snapshot"] = outcome.timings.get("snapshot", 0.0) + (
            time.perf_counter() - started)
        return snapshot

    def _snapshot(self, outcome: MigrationOutcome) -> Snapshot:
        started = time.perf_counter()
        snapshot = self._tracker.snapshot(self.conn, events=self._probes)
        outcome.timings["snapshot"] = outcome.timings.get("snapshot", 0.0) + (
            time.perf_counter() - started)
        return snapshot

    # --- ground truth -------------------------------------------------------------------------

    def _check_truth(self, outcome: MigrationOutcome) -> None:
        if outcome.truth is None:
            return
        static = self.static_tables(outcome.migration) if self.static_tables else None
        notes, found = truth_findings(outcome.migration, outcome.truth, static)
        outcome.notes.extend(notes)
        for rule, message in found:
            outcome.findings.append(
                self._finding(rule, outcome.migration, outcome.migration.up, message))

    # --- findings -----------------------------------------------------------------------------

    def _finding(self, rule: Rule, migration: Migration, file: MigrationFile | None,
                 message: str, *, line: int | None = None, details: str | None = None) -> Finding:
        """A finding in this environment, or in every environment the outcome stands for."""
        environments = self._covers.get(migration.version, (self.environment,))
        if len(environments) > 1:
            message += f" (the same in environments {', '.join(environments)})"
        return rule.finding(
            message, file=file.path if file else None, line=line, service=migration.service,
            migration=migration.id, environment=", ".join(environments), details=details,
        )

    def _column_order(self, migration: Migration, reordered: list[SchemaDifference],
                      context: str, when: str) -> Finding:
        """DB010: a warning (an error with ``strict_column_order``) naming the tables."""
        tables = ", ".join(d.name for d in reordered)
        finding = self._finding(
            COLUMN_ORDER, migration, migration.down,
            f"{when}, the columns of {tables} are in another order (a re-added column comes "
            "last); SELECT *, and COPY or INSERT without a column list, see the columns in the "
            "new order",
            details=render_differences(reordered, context),
        )
        return finding.escalated() if self.strict_column_order else finding

    def _step_failure(self, rule: Rule, migration: Migration, exc: MigrationSqlError,
                      step: str) -> Finding:
        """``rule``, or DB006 when an earlier failure explains it (see roundtrip.causes): for an
        up, any earlier one in a set without depends_on; else one that creates what is missing."""
        earlier = [EarlierFailure(s.migration, self._failed[s.migration.key])
                   for s in self.steps[:self._position] if s.migration.key in self._failed]
        found = explaining_failure(exc.pg_message, earlier, created=self._created,
                                   implicit_order=self._implicit_order and step == "up")
        if found is None:
            return self._sql_failure(rule, migration, exc, step)
        cause, why = found
        return self._sql_failure(PREREQUISITE_FAILED, migration, exc, step,
                                 because=f"an earlier migration failed ({cause.reason}): {why}")

    def _sql_failure(self, rule: Rule, migration: Migration, exc: MigrationSqlError,
                     step: str, *, because: str | None = None) -> Finding:
        message, details = describe_failure(migration.id, exc, step, because)
        file = migration.file_for("down" if step == "down" else "up")
        return self._finding(rule, migration, file, message, line=exc.line, details=details)

