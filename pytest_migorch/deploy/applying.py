"""Apply or roll back one planned migration so that the records stay true whatever happens.

The order of writes is the whole point of this module:

- transactional: the ``running`` row is committed first (visible while the migration runs and
  left behind if the process dies); then the SQL, the row's new state and golang-migrate's row
  commit in one transaction. A crash or a failure leaves nothing of the SQL (PostgreSQL rolls it
  back) and a row that says so.
- non-transactional: the ``running`` row and golang-migrate's dirty flag are committed together
  first; statements run one by one in autocommit, the row recording after each how many are
  done; success clears the dirty flag together with the row. A failure or crash leaves the
  flag set, as golang-migrate does, and the row says exactly how far it got.

Everything runs on the one :class:`~pytest_migorch.deploy.session.Session` connection, which also
holds the advisory locks.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Protocol

import psycopg
from psycopg import sql

from pytest_migorch import __version__
from pytest_migorch.deploy.batch import (
    Batch,
    build_batch,
    locate_failure,
    run_batch,
    unterminated_failure,
)
from pytest_migorch.deploy.invalid_indexes import drop_advice, find_invalid_indexes
from pytest_migorch.deploy.planning import Plan, PlanStep, ServiceState
from pytest_migorch.deploy.prepared_writes import may_deallocate
from pytest_migorch.deploy.records import Action, Status
from pytest_migorch.deploy.session import Session
from pytest_migorch.deploy.tracking import (
    ExecutionRecord,
    SchemaVersion,
    Tracking,
    file_checksum,
)
from pytest_migorch.errors import MigrationFailed
from pytest_migorch.findings import display_path
from pytest_migorch.model import Migration, MigrationFile
from pytest_migorch.postgres.connection import database_error
from pytest_migorch.postgres.statements import (
    MigrationSqlError,
    prepared_statements,
    run_outside_transaction,
    run_statement,
)
from pytest_migorch.sql.split import Statement

__all__ = ["Applier", "Reporter", "NullReporter", "StepOutcome"]

log = logging.getLogger(__name__)
#: The logger of :func:`~pytest_migorch.postgres.statements.run_statement`.
_STATEMENT_LOG = logging.getLogger("pytest_migorch.postgres.statements")

class Reporter(Protocol):
    """What front ends are told while a run progresses (the CLI prints it)."""

    def note(self, message: str) -> None: ...

    def plan(self, plan: Plan) -> None: ...

    def step_started(self, step: PlanStep, index: int, total: int) -> None: ...

    def step_finished(self, outcome: StepOutcome, index: int, total: int) -> None: ...


class NullReporter:
    """Tells nobody but the log; for library use and tests."""

    def note(self, message: str) -> None:
        log.info("%s", message)

    def plan(self, plan: Plan) -> None:
        pass

    def step_started(self, step: PlanStep, index: int, total: int) -> None:
        pass

    def step_finished(self, outcome: StepOutcome, index: int, total: int) -> None:
        pass


@dataclass
class StepOutcome:
    """How one planned step ended: ``completed``, ``rolled_back`` or ``failed``."""

    step: PlanStep
    status: str
    seconds: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"service": self.step.migration.service, "migration": self.step.migration.id,
                "direction": self.step.direction, "status": self.status,
                "duration_ms": round(self.seconds * 1000),
                "estimated_seconds": self.step.estimated_seconds, "error": self.error}


class Applier:
    """Runs planned steps on a :class:`Session`, keeping rows and golang-migrate's table true."""

    def __init__(self, session: Session, root: Path, runner_id: str) -> None:
        self.session = session
        self.root = root
        self.executed_by = runner_id
        self._root: Path | None = None
        #: Directory -> its resolved path: the files of a run share a dozen directories.
        self._resolved_dirs: dict[Path, str] = {}

    # --- metadata ---------------------------------------------------------------------------

    def _shown(self, path: Path) -> str:
        """A file as the ``metadata`` column shows it, relative to the root (as
        :func:`display_path`; the file was just read, so it is no dangling link). The root is
        resolved once per run: resolving it and checking links again for every migration
        took a tenth of the runner's own time on a long deploy. So is each directory: a file
        that is no link resolves to its resolved directory and its name (one ``lstat``,
        instead of one per component of its path)."""
        if self._root is None:
            self._root = self.root.resolve()
        if os.path.islink(path):
            resolved = str(path.resolve())
        else:
            directory = self._resolved_dirs.get(path.parent)
            if directory is None:
                directory = self._resolved_dirs[path.parent] = str(path.parent.resolve())
            resolved = os.path.join(directory, path.name)
        # Both resolved (absolute, normalised): relative_to is a prefix test on the text.
        prefix = os.path.join(str(self._root), "")
        if resolved.startswith(prefix):
            return resolved[len(prefix):]
        return str(path)

    def metadata(self, migration: Migration, action: str, schema: str,
                 step: PlanStep | None = None) -> dict[str, Any]:
        """What the ``metadata`` column records about a migration and the run."""
        meta = migration.meta
        file = step.file if step is not None else migration.main_file.path
        data: dict[str, Any] = {
            "action": action, "service": migration.service, "schema": schema,
            "description": meta.description if meta else "",
            "declared_risk_level": meta.risk_level.value if meta else None,
            "affects_tables": list(meta.affects_tables) if meta else [],
            "estimated_duration": meta.estimated_duration if meta else "",
            "estimated_seconds": meta.estimated_seconds if meta else 0.0,
            "transactional": (step.transactional if step is not None
                              else migration.transactional),
            "environment_only": migration.environment,
            "file": self._shown(file),
            "runner": f"migorch {__version__}",
            "dirty": False,
        }
        if step is not None:
            data["risk_level"] = step.risk_level.value if step.risk_level else None
            data["backend_pid"] = self.session.conn.info.backend_pid
        return data

    # --- up and down ------------------------------------------------------------------------

    def apply_up(self, state: ServiceState, step: PlanStep) -> StepOutcome:
        migration = step.migration
        assert migration.up is not None
        tracking = self.session.tracking(state.schema)
        metadata = self.metadata(migration, "up", state.schema, step)
        start: dict[str, Any] = dict(
            migration_id=migration.id, migration_version=migration.version_text,
            environment=state.environment, action=Action.UP, executed_by=self.executed_by,
            checksum=file_checksum(migration.up.path),
            dependencies=[d.text for d in migration.depends_on],
        )
        after = state.prefix(state.applied_versions() | {migration.version})
        settings = self.session.migration_settings(state.schema)
        if step.transactional:
            # committed first (in the same query), so visible before the migration runs;
            # the settings apply first
            def opening(prepared: bool) -> sql.SQL:
                return tracking.start_sql(**start, metadata=metadata, before=settings,
                                          prepared=prepared, id_only=True)

            return self._transactional(state, step, opening, "completed", after)
        # one query, so one (implicit) transaction: the row (with how many statements
        # there are to run) and the dirty flag commit together
        statements = _outside_statements(step)
        record_id = tracking.start(**start, metadata={
            **metadata, "dirty": True, "statements_total": len(statements),
            "statements_done": 0}, schema_version=(after, True), before=settings)
        try:
            return self._non_transactional(state, step, record_id, statements, "completed",
                                           after)
        finally:
            _forget_if_ended(tracking, statements)

    def apply_down(self, state: ServiceState, step: PlanStep,
                   rollback_version: str) -> StepOutcome:
        migration = step.migration
        assert migration.down is not None
        tracking = self.session.tracking(state.schema)
        record = state.record(migration)
        assert record is not None, f"{migration.qualified_id} is not recorded"
        metadata = {"action": Action.DOWN, "backend_pid": self.session.conn.info.backend_pid,
                    "down_file": self._shown(migration.down.path),
                    "transactional": step.transactional,
                    # the up's counts must not survive into the rollback's row: a crash
                    # before its first statement would read as "all statements done"
                    "statements_done": 0, "statements_total": None}
        after = state.prefix(state.applied_versions() - {migration.version})
        settings = self.session.migration_settings(state.schema)
        if step.transactional:
            def opening(prepared: bool) -> sql.SQL:  # a shape written once per rollback: text
                return tracking.update_sql(
                    record.id, action=Action.DOWN, status=Status.RUNNING, started=True,
                    error_message=None, executed_by=self.executed_by, metadata=metadata,
                    before=settings)

            return self._transactional(state, step, opening, "rolled_back", after,
                                       rollback_version=rollback_version,
                                       failed_status=Status.COMPLETED)
        statements = _outside_statements(step)
        tracking.update(record.id, action=Action.DOWN, status=Status.RUNNING, started=True,
                        error_message=None, executed_by=self.executed_by,
                        metadata={**metadata, "dirty": True,
                                  "statements_total": len(statements)},
                        schema_version=(after, True),
                        before=settings)  # one query: the row and the flag commit together
        try:
            return self._non_transactional(state, step, record.id, statements, "rolled_back",
                                           after, rollback_version=rollback_version)
        finally:
            _forget_if_ended(tracking, statements)

    # --- the two execution modes ------------------------------------------------------------

    def _transactional(
        self, state: ServiceState, step: PlanStep, opening: Callable[[bool], sql.SQL],
        done_status: str, gm_version: int, *, rollback_version: str | None = None,
        failed_status: str = "failed",
    ) -> StepOutcome:
        """The ``running`` row (``opening``, with the session's settings) committed first;
        then the SQL, the tracking row and golang-migrate's row in one transaction, sent as
        one query (:mod:`pytest_migorch.deploy.batch`). Both writes use prepared statements
        where they can (:mod:`pytest_migorch.deploy.prepared_writes`): a batch whose write
        found its statement gone was rolled back whole and is sent once more without it.

        Two round trips, not one: the ``running`` row could travel in the same query,
        committed ahead of a ``BEGIN``, but then ``pg_stat_activity`` (which keeps the first
        1 kB of a query) would show the runner's bookkeeping instead of the migration."""
        conn = self.session.conn
        tracking = self.session.tracking(state.schema)
        file = step_file(step)
        record_id = tracking.run_start(opening(True), unprepared=lambda: opening(False))
        started = time.perf_counter()
        text = file.read_text()
        keeps_prepared = not may_deallocate(text)
        try:
            statements = prepared_statements(text, in_transaction=True, path=file.path)
        except MigrationSqlError as exc:  # refused before it ran: the row says so
            self._fail(tracking, record_id, step, failed_status, exc, started)
        unterminated = unterminated_failure(conn, statements, file.path)
        if unterminated is not None:
            self._fail(tracking, record_id, step, failed_status, unterminated, started)
        for prepared in (keeps_prepared, False):
            write = tracking.update_sql(record_id, action=step.direction, status=done_status,
                                        completed=True, timed_by_server=True,
                                        rollback_version=rollback_version,
                                        schema_version=(gm_version, False), prepared=prepared)
            batch = build_batch(statements, write.as_string(conn))
            try:
                done = self._send(batch, tracking, write, file.path)
                break
            except MigrationSqlError as exc:  # sent one by one: the statement's own error
                self._fail(tracking, record_id, step, failed_status, exc, started)
            except psycopg.Error as exc:
                if conn.closed or conn.broken or self._running_row(tracking, record_id) is None:
                    raise  # the connection is gone: the session's handling says what it left
                if prepared and tracking.prepared_lost(exc):
                    continue  # the migration ended it; nothing of the batch stayed
                located = locate_failure(conn, batch, exc, file.path,
                                         trust_position=not prepared)
                self._fail(tracking, record_id, step, failed_status, located or exc, started)
            except BaseException:  # Ctrl-C: PostgreSQL rolled back; record it if we still can
                if self._running_row(tracking, record_id) is not None:
                    self._record_interrupt(tracking, record_id, step, failed_status,
                                           dirty=False)
                raise
            finally:
                if not keeps_prepared:
                    tracking.forget_prepared()
        self._refresh(state, tracking, done, gm_version)
        return StepOutcome(step, done_status, time.perf_counter() - started)

    def _send(self, batch: Batch, tracking: Tracking, write: sql.SQL | sql.Composed,
              path: Path) -> ExecutionRecord | None:
        """Run the batch as one query; with debug logging of statements (``LOG_LEVEL=debug``
        shows each one as it is sent, with its time) as the same transaction sent one
        statement at a time, which is what that log is for."""
        conn = self.session.conn
        if not _STATEMENT_LOG.isEnabledFor(logging.DEBUG):
            return run_batch(conn, batch)
        with conn.transaction():
            for statement in batch.statements:
                run_statement(conn, statement, path)
            return tracking.run_change(write)

    def _fail(self, tracking: Tracking, record_id: int, step: PlanStep, status: str,
              exc: Exception, started: float) -> NoReturn:
        """Record a transactional step's failure (PostgreSQL rolled its SQL back) and raise
        it as the error people read."""
        failure = self.failure(step, exc)
        tracking.update(record_id, action=step.direction, status=status, completed=True,
                        duration_ms=round((time.perf_counter() - started) * 1000),
                        error_message=str(failure))
        raise failure from None

    def _running_row(self, tracking: Tracking, record_id: int) -> int | None:
        """After a batch failed or was interrupted: the row's id when it still says
        ``running`` once the aborted transaction is rolled back, so the outcome is still to
        be recorded. None when the batch did commit before Ctrl-C took effect (the row
        already tells the truth and must stay) or the row cannot be read."""
        try:
            _end_open_transaction(self.session.conn)
            found = tracking.record(record_id)
        except Exception as exc:  # the row stays as it is; the next run resolves it
            log.debug("could not read the row of the interrupted step: %s", exc)
            return None
        return found.id if found is not None and found.status == Status.RUNNING else None

    def _non_transactional(
        self, state: ServiceState, step: PlanStep, record_id: int,
        statements: list[Statement], done_status: str, gm_version: int, *,
        rollback_version: str | None = None,
    ) -> StepOutcome:
        """Statement by statement in autocommit, recording progress after each one (the
        row's first write already said how many there are: ``statements_total``)."""
        conn = self.session.conn
        tracking = self.session.tracking(state.schema)
        file = step_file(step)
        started = time.perf_counter()
        try:
            self._run_in_autocommit(tracking, record_id, statements, file.path)
        except (MigrationSqlError, psycopg.Error) as exc:
            seconds = time.perf_counter() - started
            _end_open_transaction(conn)
            failure = self.failure(step, exc, dirty=True, state=state)
            if not tracking.still_initialised():
                raise records_gone(step, tracking) from None
            tracking.update(record_id, action=step.direction, status=Status.FAILED,
                            completed=True,
                            duration_ms=round(seconds * 1000), error_message=str(failure),
                            metadata={"dirty": True})
            raise failure from None
        except BaseException:
            self._record_interrupt(tracking, record_id, step, "failed", dirty=True)
            raise
        seconds = time.perf_counter() - started
        # one query: the row and the cleared flag commit together (an implicit transaction)
        record = tracking.update(record_id, action=step.direction, status=done_status,
                                 completed=True, duration_ms=round(seconds * 1000),
                                 rollback_version=rollback_version,
                                 metadata={"dirty": False}, schema_version=(gm_version, False))
        self._refresh(state, tracking, record, gm_version)
        return StepOutcome(step, done_status, seconds)

    def _run_in_autocommit(self, tracking: Tracking, record_id: int,
                           statements: list[Statement], path: Path) -> None:
        """The shared golang-migrate-style execution, recording progress after each committed
        statement (inside a block the file opened, only when the block ends)."""
        def committed(done: int, statement: Statement) -> None:
            tracking.note_progress(record_id, {"statements_done": done,
                                               "last_line": statement.end_line})

        run_outside_transaction(self.session.conn, statements, path, committed)

    @staticmethod
    def _refresh(state: ServiceState, tracking: Tracking, record: ExecutionRecord | None,
                 gm_version: int) -> None:
        """Take in the row the step committed (as its UPDATE returned it) and golang-migrate's
        version it wrote clean, so the next step computes from what the database holds
        without reading either back."""
        if record is None:  # cannot happen short of someone deleting the row meanwhile
            state.refresh(tracking.records(), tracking.read_schema_version())
        else:
            state.replace_record(record, SchemaVersion(version=gm_version, exists=True))

    def _record_interrupt(self, tracking: Tracking, record_id: int, step: PlanStep,
                          status: str, *, dirty: bool) -> None:
        try:
            if tracking.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                return  # the next run finds the running row and resolves it
            tracking.update(record_id, action=step.direction, status=status, completed=True,
                            error_message="interrupted by the user (Ctrl-C); "
                            + ("golang-migrate's dirty flag is set" if dirty
                               else "PostgreSQL rolled back the transaction"),
                            metadata={"interrupted": True, "dirty": dirty})
        except Exception as exc:  # the row stays 'running'; the next run resolves it
            log.debug("could not record the interruption: %s", exc)

    def _invalid_indexes(self, schema: str) -> str:
        """What to say of the INVALID indexes a failed non-transactional migration left in
        the service's schema (a concurrent build that failed), or ""."""
        try:
            return drop_advice(find_invalid_indexes(self.session.conn, schema))
        except psycopg.Error as exc:  # the failure is the message; this is only advice
            log.debug("could not look for invalid indexes: %s", exc)
            return ""

    def failure(self, step: PlanStep, exc: Exception, *, dirty: bool = False,
                state: ServiceState | None = None) -> MigrationFailed:
        """PostgreSQL's message, the file and line, and what state it left."""
        migration = step.migration
        verb = "rollback of" if step.direction == "down" else "migration"
        if isinstance(exc, MigrationSqlError):
            where = f"{display_path(exc.path, self.root.parent)}:{exc.line}"
            text = exc.pg_message + (f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else "")
            if exc.detail:
                text += f"\n  DETAIL: {exc.detail}"
            if exc.pg_hint:
                text += f"\n  HINT: {exc.pg_hint}"
        else:
            where = display_path(step.file, self.root.parent)
            assert isinstance(exc, psycopg.Error)
            text = str(database_error(exc, "database error"))
        message = f"{verb} {migration.qualified_id} failed at {where}: {text}"
        if dirty:
            message += (
                "\nIt is not transactional: the statements before the failing one are in "
                "effect and golang-migrate's dirty flag is set. Finish or undo them by hand, "
                "then record which:" + (force_advice(state, migration.version) if state else "")
            ) + (self._invalid_indexes(state.schema) if state else "")
        elif step.direction == "up":
            message += "\nNothing of it was applied: its transaction was rolled back."
        else:
            message += "\nNothing was rolled back: the transaction was rolled back."
        return MigrationFailed(message)


def force_advice(state: ServiceState, version: int) -> str:
    """The two ``force`` commands that resolve the half-done migration ``version``
    (golang-migrate's "force N" / "force N-1"), with this service's versions spelled out."""
    lower = [m.version for m in state.order if m.version < version]
    undone = max(lower) if lower else -1
    name = state.service.name
    return (f"\n  migorch force {name} {version}   # it is now fully applied"
            f"\n  migorch force {name} {undone}   # it is fully undone (it runs again)")


def records_gone(step: PlanStep, tracking: Tracking) -> MigrationFailed:
    """A non-transactional step dropped migorch's own tables (its schema, or the tables)."""
    migration = step.migration
    return MigrationFailed(
        f"{'rollback of' if step.direction == 'down' else 'migration'} "
        f"{migration.qualified_id} destroyed migorch's records: {tracking.schema}."
        "migration_executions no longer exists after its statements ran (it dropped its own "
        f"schema or the tracking tables). golang-migrate's table "
        f"{tracking.gm_schema}.{tracking.gm_table} keeps the dirty flag. Nothing more "
        "runs, and the next run refuses until a person checks what the schema holds and "
        f"records it with `migorch force {migration.service} <version>`.")


def _forget_if_ended(tracking: Tracking, statements: list[Statement]) -> None:
    """After statements run outside a transaction that may have ended the session's
    prepared statements (``DISCARD ALL``), prepare the tracking writes again."""
    if any(may_deallocate(statement.text) for statement in statements):
        tracking.forget_prepared()


def _outside_statements(step: PlanStep) -> list[Statement]:
    """The statements of a non-transactional step, known before its row is written so the
    first write records how many there are (splitting never fails on a file outside a
    transaction: nothing is refused there)."""
    file = step_file(step)
    return prepared_statements(file.read_text(), in_transaction=False, path=file.path)


def step_file(step: PlanStep) -> MigrationFile:
    file = step.migration.file_for(step.direction)
    assert file is not None
    return file


def _end_open_transaction(conn: psycopg.Connection[Any]) -> None:
    """Roll back a transaction block a failed non-transactional file left open, so the
    failure is recorded (a write in an aborted block fails) and nothing of the block stays."""
    if conn.info.transaction_status in (psycopg.pq.TransactionStatus.INTRANS,
                                        psycopg.pq.TransactionStatus.INERROR):
        conn.execute("ROLLBACK")
