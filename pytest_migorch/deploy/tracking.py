"""What the database remembers about migrations: the tracking tables, golang-migrate's table,
the advisory lock and the checksums that reveal drift.

Three records are kept per service (SPEC section 6):

- ``<schema>.migration_executions``: one row per migration and environment, its current state,
  created with exactly the DDL the SPEC gives;
- ``<schema>.migration_execution_history``: append-only, one row per state change (every start,
  every outcome), a snapshot of the executions row at that moment, so an audit survives re-runs;
- ``public.<schema>_schema_migrations``: golang-migrate's own table, left the way its postgres
  driver leaves it (one row or none, replaced in one transaction), so golang-migrate keeps
  working on the same database.

This module only reads and writes; deciding what to write is :mod:`pytest_migorch.deploy.runner`'s
job. Identifiers reach SQL only through :class:`psycopg.sql.Identifier`.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pytest_migorch.deploy.locks import MIGRATE_INSTANCE, AdvisoryLock, advisory_lock_id, lock_key
from pytest_migorch.deploy.records import (
    ACTIONS,
    STATUSES,
    ExecutionRecord,
    HistoryRecord,
    SchemaVersion,
    file_checksum,
)
from pytest_migorch.deploy.tracking_ddl import executions_ddl, history_ddl
from pytest_migorch.deploy.prepared_writes import PreparedWrites
from pytest_migorch.deploy.tracking_sql import (
    RECORD_COLUMNS,
    RECORD_LIST,
    UNSET,
    Literal,
    WriteText,
)
from pytest_migorch.postgres.connection import database_error

__all__ = [
    "EXECUTIONS_TABLE",
    "HISTORY_TABLE",
    "GOLANG_MIGRATE_SCHEMA",
    "STATUSES",
    "ACTIONS",
    "executions_ddl",
    "history_ddl",
    "golang_migrate_table",
    "lock_key",
    "advisory_lock_id",
    "file_checksum",
    "ExecutionRecord",
    "HistoryRecord",
    "SchemaVersion",
    "Tracking",
    "AdvisoryLock",
]

log = logging.getLogger(__name__)

EXECUTIONS_TABLE = "migration_executions"
HISTORY_TABLE = "migration_execution_history"
#: golang-migrate's table lives in ``public``: ``public.<schema>_schema_migrations``.
GOLANG_MIGRATE_SCHEMA = "public"

_RECORD_LIST = sql.SQL(RECORD_LIST)
#: Start of the comment migorch puts on golang-migrate's table of a service it tracks.
MARKER = "migorch keeps the records of this table in"


def golang_migrate_table(schema: str) -> str:
    """golang-migrate's table name for a service schema (it lives in ``public``)."""
    return f"{schema}_schema_migrations"


class Tracking:
    """The tracking tables of one service on one connection.

    Methods that write take no transaction of their own unless they say so: the runner decides
    what commits together (a transactional migration, its row and golang-migrate's row).
    """

    def __init__(self, conn: psycopg.Connection[Any], schema: str, *,
                 guard: sql.Composed | None = None,
                 gm_table: tuple[str, str] | None = None) -> None:
        self.conn = conn
        self.schema = schema
        #: Parameterless ``SET LOCAL`` statements sent ahead of every write (the runner's
        #: identity and lock wait bound, see :func:`pytest_migorch.deploy.applying.tracking_guard`).
        self.guard = guard
        #: golang-migrate's table: the service's declared ``migrations_table`` or the default.
        self.gm_schema, self.gm_table = gm_table or (GOLANG_MIGRATE_SCHEMA,
                                                     golang_migrate_table(schema))
        # Quoted once: composing identifiers costs more client time than the server spends
        # on a tracking write, and every migration makes two of them.
        self._executions = _rendered(conn, sql.Identifier(schema, EXECUTIONS_TABLE))
        self._history = _rendered(conn, sql.Identifier(schema, HISTORY_TABLE))
        self._gm = _rendered(conn, sql.Identifier(self.gm_schema, self.gm_table))
        self._text = WriteText(conn, self._executions, self._history, self._gm)
        self._prepared = PreparedWrites(conn, self._text)
        self._seen: set[tuple[str, str]] = set()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """A transaction unless the caller already holds one (then its own, without the
        savepoint psycopg would nest: fewer round trips per migration)."""
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self.conn.transaction():
                yield
        else:
            yield

    # --- structure --------------------------------------------------------------------------

    def _exists(self, schema: str, table: str) -> bool:
        """Whether a table exists; once seen, it is assumed to stay for the session."""
        if (schema, table) in self._seen:
            return True
        row = self.conn.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
            (schema, table),
        ).fetchone()
        found = bool(row and row[0])
        if found and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self._seen.add((schema, table))
        return found

    def tables(self) -> list[tuple[str, str]]:
        """(schema, table) of both tracking tables and golang-migrate's table."""
        return [(self.schema, EXECUTIONS_TABLE), (self.schema, HISTORY_TABLE),
                (self.gm_schema, self.gm_table)]

    def tables_known(self) -> bool:
        """Whether all three tables were seen to exist (nothing is asked)."""
        return all(table in self._seen for table in self.tables())

    def known_to_exist(self, tables: set[tuple[str, str]]) -> None:
        """Tables of :meth:`tables` the caller saw exist, outside a transaction, in one
        question for many services (:meth:`Session.probe_tables`): not asked again."""
        self._seen.update(t for t in self.tables() if t in tables)

    def has_schema_version_table(self) -> bool:
        """Whether golang-migrate's table is known (or now seen) to exist."""
        return self._exists(self.gm_schema, self.gm_table)

    def is_initialised(self) -> bool:
        return self._exists(self.schema, EXECUTIONS_TABLE) and self._exists(
            self.schema, HISTORY_TABLE
        )

    def create(self) -> list[str]:
        """Create what is missing (schema, both tables, golang-migrate's table) in one
        transaction; returns what was created. Call it with the service lock held."""
        created: list[str] = []
        try:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self.schema)))
                if not self._exists(self.schema, EXECUTIONS_TABLE):
                    self.conn.execute(executions_ddl(self.schema))
                    created.append(f"{self.schema}.{EXECUTIONS_TABLE}")
                if not self._exists(self.schema, HISTORY_TABLE):
                    for statement in history_ddl(self.schema):
                        self.conn.execute(statement)
                    created.append(f"{self.schema}.{HISTORY_TABLE}")
                if self.ensure_schema_version_table():
                    created.append(f"{self.gm_schema}.{self.gm_table}")
                self.mark_schema_version_table()
        except psycopg.Error as exc:
            raise database_error(exc, f"{MIGRATE_INSTANCE}: creating the tracking tables of "
                                 f"{self.schema}") from exc
        return created

    def ensure_schema_version_table(self) -> bool:
        """golang-migrate's ``ensureVersionTable``: check, then create only when missing."""
        if self._exists(self.gm_schema, self.gm_table):
            return False
        self.conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version bigint not null primary key, "
            "dirty boolean not null)"
        ).format(self._gm))
        return True

    def mark_schema_version_table(self) -> None:
        """Note on golang-migrate's table that migorch keeps records for it. The table lives
        in ``public``, so the note survives a migration that drops the service schema, and
        the next run can tell "records destroyed" from "golang-migrate never had migorch"."""
        self.conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
            self._gm, sql.Literal(f"{MARKER} {self.schema}.{EXECUTIONS_TABLE}")))

    def still_initialised(self) -> bool:
        """Whether both tracking tables exist now (asks the server: a migration may have
        dropped them since they were seen)."""
        self._seen.discard((self.schema, EXECUTIONS_TABLE))
        self._seen.discard((self.schema, HISTORY_TABLE))
        return self.is_initialised()

    def records_destroyed(self) -> SchemaVersion | None:
        """golang-migrate's version when migorch's tables are gone although migorch kept
        records for this service (the marker on golang-migrate's table) and that table says
        something was applied or is dirty; None otherwise. Asks the server, not the cache."""
        if self.still_initialised() or not self._exists(self.gm_schema, self.gm_table):
            return None
        row = self.conn.execute(
            "SELECT obj_description(to_regclass(format('%%I.%%I', %s::text, %s::text)), "
            "'pg_class')", (self.gm_schema, self.gm_table)).fetchone()
        if not row or not str(row[0] or "").startswith(MARKER):
            return None
        version = self.read_schema_version()
        return version if version.version >= 0 or version.dirty else None

    # --- golang-migrate's table -------------------------------------------------------------

    def read_schema_version(self) -> SchemaVersion:
        """golang-migrate's ``Version()``: (-1, false) for an empty or missing table."""
        if not self._exists(self.gm_schema, self.gm_table):
            return SchemaVersion()
        row = self.conn.execute(
            sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(self._gm)
        ).fetchone()
        if row is None:
            return SchemaVersion(exists=True)
        return SchemaVersion(version=int(row[0]), dirty=bool(row[1]), exists=True)

    def write_schema_version(self, version: int, dirty: bool) -> None:
        """golang-migrate's ``SetVersion``: empty the table, then INSERT unless nil and clean,
        in one transaction: the caller's, if any, which makes it atomic with its other
        writes."""
        with self._atomic():
            self.conn.execute(self._guarded(self._set_version_sql(version, dirty)),
                              prepare=False)

    def _guarded(self, statement: sql.SQL) -> sql.SQL:
        guard = self._text.render(self.guard)
        return statement if guard is None else sql.SQL(f"{guard}; {statement.as_string()}")

    def _set_version_sql(self, version: int, dirty: bool) -> sql.SQL:
        """``DELETE`` + ``INSERT`` as one parameterless text: one round trip.

        golang-migrate empties the table with ``TRUNCATE``; the rows left are the same, but a
        TRUNCATE gives the table a new file and takes an ACCESS EXCLUSIVE lock each time,
        which measured ~1 ms per migration, more than the rest of the write (a DELETE of one
        row is MVCC-safe too: a reader sees the old version until the commit)."""
        return sql.SQL(self._text.set_version(version, dirty))

    # --- executions -------------------------------------------------------------------------

    def records(self) -> list[ExecutionRecord]:
        if not self._exists(self.schema, EXECUTIONS_TABLE):
            return []
        query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
            _RECORD_LIST, self._executions)
        with self.conn.cursor() as cur:
            rows = cur.execute(query).fetchall()
        return [record_from_tuple(row) for row in rows]

    def record(self, record_id: int) -> ExecutionRecord | None:
        """One row by id: after a step, reading only the row it changed keeps a long run
        linear instead of re-reading every row after every migration."""
        query = sql.SQL("SELECT {} FROM {} WHERE id = %s").format(
            _RECORD_LIST, self._executions)
        with self.conn.cursor() as cur:
            row = cur.execute(query, (record_id,)).fetchone()
        return record_from_tuple(row) if row else None

    def start(self, *, action: str, schema_version: tuple[int, bool] | None = None,
              before: sql.Composable | None = None, **row: Any) -> int:
        """Insert or reset the row of a migration to ``status`` (a fresh attempt) and append
        the history event; returns the row id.

        One statement (the history row is written by a data-modifying CTE), so it is atomic on
        its own: in autocommit it is committed when this returns, inside the caller's
        transaction it commits with it. ``schema_version`` and ``before`` as in
        :meth:`update`; ``row``: the columns of :meth:`start_sql`."""
        def write(prepared: bool) -> sql.SQL:
            return self.start_sql(action=action, schema_version=schema_version, before=before,
                                  prepared=prepared, id_only=True, **row)

        return self.run_start(write(True), unprepared=lambda: write(False))

    def start_sql(
        self,
        *,
        migration_id: str,
        migration_version: str,
        environment: str,
        action: str,
        executed_by: str,
        checksum: str | None,
        dependencies: list[str],
        metadata: dict[str, Any],
        status: str = "running",
        started: bool = True,
        schema_version: tuple[int, bool] | None = None,
        before: sql.Composable | None = None,
        prepared: bool = False,
        id_only: bool = False,
    ) -> sql.SQL:
        """The parameterless statements of :meth:`start`, to send with others; with
        ``prepared``, the write as an ``EXECUTE`` of its prepared statement when it can be
        (:mod:`pytest_migorch.deploy.prepared_writes`; send it with :meth:`run_change`'s
        ``unprepared``); ``id_only``: it returns only the row's id (:meth:`run_start`)."""
        def upsert(lit: Literal) -> str:
            return self._text.upsert(
                migration_id=migration_id, migration_version=migration_version,
                environment=environment, status=status, started=started,
                completed=status == "completed", executed_by=executed_by, checksum=checksum,
                dependencies=dependencies, metadata=metadata, lit=lit)

        return self._change_sql(upsert, action, schema_version, before, prepared, id_only)

    def update(
        self,
        record_id: int,
        *,
        action: str,
        status: str,
        schema_version: tuple[int, bool] | None = None,
        before: sql.Composable | None = None,
        **changes: Any,
    ) -> ExecutionRecord | None:
        """Change a row's state; ``metadata`` is merged into the stored object. Appends the
        history event atomically with the change and returns the row as it now is (``None``
        if it no longer exists), so the caller need not read it back.

        ``schema_version=(version, dirty)`` also writes golang-migrate's row (DELETE +
        INSERT) in the same round trip: the caller's transaction, or else the implicit
        transaction PostgreSQL gives a multi-statement query, commits all of it or nothing.
        ``before``: parameterless statements sent first in the same round trip (the runner's
        per-migration session settings). ``changes``: the columns of :meth:`update_sql`."""
        query = self.update_sql(record_id, action=action, status=status,
                                schema_version=schema_version, before=before, **changes)
        return self.run_change(query)

    def update_sql(
        self,
        record_id: int,
        *,
        action: str,
        status: str,
        started: bool = False,
        completed: bool = False,
        duration_ms: int | None = UNSET,
        error_message: str | None = UNSET,
        rollback_version: str | None = UNSET,
        executed_by: str | None = UNSET,
        checksum: str | None = UNSET,
        metadata: dict[str, Any] | None = None,
        schema_version: tuple[int, bool] | None = None,
        before: sql.Composable | None = None,
        timed_by_server: bool = False,
        prepared: bool = False,
    ) -> sql.SQL:
        """The parameterless statements of :meth:`update`, to send later or together with
        others (the runner appends them to a migration's SQL: one round trip for both).

        ``timed_by_server``: ``duration_ms`` measured by the server from the start of the
        transaction that carries this update (``transaction_timestamp()``: its ``BEGIN``) to
        the write: the duration of the migration SQL run ahead of it in that transaction,
        without the client's clock. ``prepared`` as in :meth:`start_sql`."""
        given = {"duration_ms": duration_ms, "error_message": error_message,
                 "rollback_version": rollback_version, "executed_by": executed_by,
                 "checksum": checksum}
        values = {k: v for k, v in given.items() if v is not UNSET}

        def change(lit: Literal) -> str:
            return self._text.update(
                record_id, status=status, started=started, completed=completed, values=values,
                metadata=metadata, timed_by_server=timed_by_server, lit=lit)

        return self._change_sql(change, action, schema_version, before, prepared)

    def run_change(self, query: sql.SQL | sql.Composed, *,
                   unprepared: Callable[[], sql.SQL] | None = None) -> ExecutionRecord | None:
        """Send a query of :meth:`_change_sql`: one ``execute``, one round trip.

        When it used a prepared statement the session no longer has (a migration ended it),
        nothing of it was applied (its own transaction): ``unprepared()`` is sent instead."""
        row = self._run_write(query, unprepared)
        return record_from_tuple(row) if row else None

    def run_start(self, query: sql.SQL | sql.Composed, *,
                  unprepared: Callable[[], sql.SQL] | None = None) -> int:
        """:meth:`run_change` for a write that returns the row's id (``id_only``, or any)."""
        row = self._run_write(query, unprepared)
        assert row is not None, "the write changed no row"
        return int(row[0])  # "id" comes first in either shape

    def _run_write(self, query: sql.SQL | sql.Composed,
                   unprepared: Callable[[], sql.SQL] | None) -> tuple[Any, ...] | None:
        try:
            return self._send_change(query)
        except psycopg.errors.InvalidSqlStatementName as exc:
            idle = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if unprepared is None or not self.prepared_lost(exc) or not idle:
                raise
        return self._send_change(unprepared())

    def prepared_lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` says a prepared tracking write is gone (then it is forgotten)."""
        return self._prepared.lost(exc)

    def forget_prepared(self) -> None:
        """A migration may have ended the prepared writes: prepare them again when used."""
        self._prepared.forget()

    def _send_change(self, query: sql.SQL | sql.Composed) -> tuple[Any, ...] | None:
        with self.conn.cursor() as cur:
            cur.execute(query, prepare=False)
            while not returns_rows(cur) and cur.nextset():
                pass  # skip the results of ``before``: the row is the first one with columns
            return cur.fetchone()

    def _change_sql(self, change: Callable[[Literal], str], action: str,
                    schema_version: tuple[int, bool] | None,
                    before: sql.Composable | None = None, prepared: bool = False,
                    id_only: bool = False) -> sql.SQL:
        """``change`` (an INSERT or UPDATE of one executions row) with its history event
        and, if asked, golang-migrate's row, as one parameterless text
        (:class:`~pytest_migorch.deploy.tracking_sql.WriteText` renders it).

        The history row is inserted by a data-modifying CTE from the changed row itself
        (``RETURNING *``), which also hands the new row back. Values are literals (no
        parameters) because only a parameterless query may hold several statements."""
        write = self._prepared.render(
            lambda lit: self._text.logged(change(lit), action, lit, id_only=id_only),
            prepared=prepared)
        statements = [self._text.render(before), self._text.render(self.guard), write]
        if schema_version is not None:
            statements.append(self._text.set_version(*schema_version))
        return sql.SQL("; ".join(s for s in statements if s is not None))

    def note_progress(self, record_id: int, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into a running row without a history event (progress of a
        non-transactional migration, committed after each statement)."""
        self.conn.execute(self._guarded(sql.SQL(self._text.progress(record_id, metadata))),
                          prepare=False)

    # --- history ----------------------------------------------------------------------------

    def history(self, environment: str | None = None, limit: int = 20) -> list[HistoryRecord]:
        """The newest history events first."""
        if not self._exists(self.schema, HISTORY_TABLE):
            return []
        where = sql.SQL("WHERE environment = %(env)s") if environment else sql.SQL("")
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                sql.SQL("SELECT * FROM {} {} ORDER BY id DESC LIMIT %(limit)s").format(
                    self._history, where),
                {"env": environment, "limit": limit},
            ).fetchall()
        return [HistoryRecord(**{**row, "metadata": row["metadata"] or {}}) for row in rows]


def _rendered(conn: psycopg.Connection[Any], identifier: sql.Identifier) -> sql.Composable:
    """``identifier`` quoted now, for a connection that may not be usable yet (closed in
    some tests): then quoted again at each use."""
    try:
        return sql.SQL(identifier.as_string(conn))
    except psycopg.Error:
        return identifier


_MAKE_RECORD: Any = ExecutionRecord
_METADATA = RECORD_COLUMNS.index("metadata")


def record_from_tuple(row: Sequence[Any]) -> ExecutionRecord:
    """An executions row read as a plain tuple of :data:`RECORD_COLUMNS` (the dataclass's
    fields, in order), as every read and write of the table returns it: no column descriptions
    or dict per row."""
    record: ExecutionRecord = _MAKE_RECORD(*row[:_METADATA], row[_METADATA] or {},
                                           *row[_METADATA + 1:])
    return record


def returns_rows(cur: psycopg.Cursor[Any]) -> bool:
    """Whether the cursor's current result has rows (``cur.description is not None``,
    without building the column descriptions that asks for)."""
    res = cur.pgresult
    return res is not None and (res.nfields > 0 or
                                res.status == psycopg.pq.ExecStatus.TUPLES_OK)
