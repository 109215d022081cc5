"""The text of the tracking writes, rendered straight to strings.

Every migration sends three writes (its ``running`` row, its outcome and golang-migrate's
row), each a few hundred bytes of fixed SQL around a dozen values. Built as
:mod:`psycopg.sql` compositions they cost ~0.1 ms of client time each, most of it walking the
composition tree, parsing its template again and creating an adapter context per value, on a
machine where the server applies a small migration in about that time. Here the fixed parts
are plain format strings with the identifiers quoted once (by :class:`psycopg.sql.Identifier`,
in :class:`~pytest_migorch.deploy.tracking.Tracking`), and each value becomes a literal
through one :class:`psycopg.adapt.Transformer` of the connection: psycopg's own quoting, as
``sql.Literal`` would produce it, character for character.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import psycopg
from psycopg import sql
from psycopg.adapt import Transformer
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from psycopg.abc import Transformer as TransformerType

__all__ = ["WriteText", "Literal", "RECORD_COLUMNS", "HISTORY_COPIED", "UNSET"]

#: Renders one value of a write: :meth:`WriteText.literal`, or a placeholder recorder when
#: the write becomes a prepared statement (:mod:`pytest_migorch.deploy.prepared_writes`).
Literal = Callable[[Any], str]

RECORD_COLUMNS = (
    "id", "migration_id", "migration_version", "environment", "status", "started_at",
    "completed_at", "duration_ms", "executed_by", "checksum", "dependencies", "metadata",
    "error_message", "rollback_version", "created_at", "updated_at",
)
HISTORY_COPIED = (
    "migration_id", "migration_version", "environment", "status", "started_at", "completed_at",
    "duration_ms", "executed_by", "checksum", "error_message", "rollback_version", "metadata",
)
#: The column lists, quoted (fixed lower-case names: quoting cannot change them).
RECORD_LIST = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
HISTORY_LIST = ", ".join(f'"{c}"' for c in HISTORY_COPIED)
#: "Leave this column alone" for :meth:`WriteText.update`.
UNSET: Any = object()
SERVER_DURATION = ("duration_ms = round(extract(epoch FROM clock_timestamp() "
                   "- transaction_timestamp()) * 1000)")

_UPSERT = (
    "INSERT INTO {t} (migration_id, migration_version, environment, status, "
    "started_at, completed_at, executed_by, checksum, dependencies, metadata) "
    "VALUES ({id}, {version}, {env}, {status}, "
    "CASE WHEN {started} THEN clock_timestamp() END, "
    "CASE WHEN {completed} THEN clock_timestamp() END, {by}, "
    "{checksum}, {deps}, {meta}) "
    "ON CONFLICT (migration_id, environment) DO UPDATE SET "
    "migration_version = EXCLUDED.migration_version, status = EXCLUDED.status, "
    "started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at, "
    "duration_ms = NULL, "
    "executed_by = EXCLUDED.executed_by, checksum = EXCLUDED.checksum, "
    "dependencies = EXCLUDED.dependencies, metadata = EXCLUDED.metadata, "
    "error_message = NULL, rollback_version = NULL, updated_at = clock_timestamp()"
)
_LOGGED = (
    "WITH changed AS ({change} RETURNING *), "
    "logged AS (INSERT INTO {h} (execution_id, action, " + HISTORY_LIST + ") "
    "SELECT id, {action}, " + HISTORY_LIST + " FROM changed) "
    "SELECT {returning} FROM changed"
)
_OPTIONAL_COLUMNS = ("duration_ms", "error_message", "rollback_version", "executed_by",
                     "checksum")


class WriteText:
    """The write statements of one service's tables on one connection, as text.

    ``executions``, ``history`` and ``gm`` are the tables' names as quoted by
    :class:`psycopg.sql.Identifier` (rendered for this connection)."""

    def __init__(self, conn: psycopg.Connection[Any], executions: sql.Composable,
                 history: sql.Composable, gm: sql.Composable) -> None:
        self.conn = conn
        self._tables = (executions, history, gm)
        self._names: tuple[str, str, str] | None = None
        self._transformer: TransformerType | None = None

    def _table_names(self) -> tuple[str, str, str]:
        if self._names is None:  # on first use: the connection may not have been usable
            executions, history, gm = (t.as_string(self.conn) for t in self._tables)
            self._names = (executions, history, gm)
        return self._names

    def literal(self, value: Any) -> str:
        """``value`` as an SQL literal, exactly as ``sql.Literal(value)`` renders it."""
        if self._transformer is None:
            self._transformer = Transformer.from_context(self.conn)
        return self._transformer.as_literal(value).decode(self.conn.info.encoding)

    def upsert(self, *, migration_id: str, migration_version: str, environment: str,
               status: str, started: bool, completed: bool, executed_by: str,
               checksum: str | None, dependencies: list[str], metadata: dict[str, Any],
               lit: Literal | None = None) -> str:
        """Insert or reset a migration's row (a fresh attempt)."""
        lit = lit or self.literal
        return _UPSERT.format(
            t=self._table_names()[0], id=lit(migration_id), version=lit(migration_version),
            env=lit(environment), status=lit(status), started=lit(started),
            completed=lit(completed), by=lit(executed_by), checksum=lit(checksum),
            deps=lit(Jsonb(dependencies)), meta=lit(Jsonb(metadata)))

    def update(self, record_id: int, *, status: str, started: bool, completed: bool,
               values: dict[str, Any], metadata: dict[str, Any] | None,
               timed_by_server: bool, lit: Literal | None = None) -> str:
        """Change a row's state; ``values``: the columns of ``_OPTIONAL_COLUMNS`` to set."""
        lit = lit or self.literal
        sets = [f"status = {lit(status)}", "updated_at = clock_timestamp()"]
        if started:
            sets += ["started_at = clock_timestamp()", "completed_at = NULL",
                     "duration_ms = NULL"]
        if completed:
            sets.append("completed_at = clock_timestamp()")
        for column in _OPTIONAL_COLUMNS:
            if column in values:
                sets.append(f'"{column}" = {lit(values[column])}')
        if metadata:
            sets.append(f"metadata = coalesce(metadata, '{{}}'::jsonb) || {lit(Jsonb(metadata))}")
        if timed_by_server:
            sets.append(SERVER_DURATION)
        return (f"UPDATE {self._table_names()[0]} SET {', '.join(sets)} "
                f"WHERE id = {lit(record_id)}")

    def logged(self, change: str, action: str, lit: Literal | None = None, *,
               id_only: bool = False) -> str:
        """``change`` (an INSERT or UPDATE of one executions row) with its history event,
        returning the changed row (``id_only``: its id, all a ``running`` row's writer needs)."""
        return _LOGGED.format(change=change, h=self._table_names()[1],
                              action=(lit or self.literal)(action),
                              returning='"id"' if id_only else RECORD_LIST)

    def set_version(self, version: int, dirty: bool) -> str:
        """golang-migrate's ``SetVersion`` as ``DELETE`` + ``INSERT`` (see
        :meth:`Tracking._set_version_sql`)."""
        gm = self._table_names()[2]
        statements = [f"DELETE FROM {gm}"]
        if version >= 0 or (version == -1 and dirty):
            statements.append(f"INSERT INTO {gm} (version, dirty) VALUES "
                              f"({self.literal(version)}, {self.literal(dirty)})")
        return "; ".join(statements)

    def progress(self, record_id: int, metadata: dict[str, Any]) -> str:
        """Merge ``metadata`` into a running row, without a history event."""
        return (f"UPDATE {self._table_names()[0]} SET metadata = coalesce(metadata, "
                f"'{{}}'::jsonb) || {self.literal(Jsonb(metadata))}, "
                f"updated_at = clock_timestamp() WHERE id = {self.literal(record_id)}")

    def render(self, part: sql.Composable | None) -> str | None:
        """A composed statement (the session's settings, the guard) as text."""
        return None if part is None else part.as_string(self.conn)
