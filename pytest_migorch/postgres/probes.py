"""Ground truth from PostgreSQL itself about what a migration did.

Static analysis reads SQL; PostgreSQL runs it. While the round-trip applies an up migration we ask
the server three things, so declared metadata and the static analysis can be checked against what
really happened:

- which objects the migration's DDL touched, recorded by event triggers on ``ddl_command_end``
  and ``sql_drop`` into a log table in a private schema (``migorch_probe``), with the table an
  index is on and the table that owns a sequence (a dropped index's table comes from the state
  before the migration);
- which tables it wrote rows to (``pg_stat_xact_user_tables`` counts the current transaction),
  or meant to: a ``RowExclusiveLock`` on an existing table is an UPDATE or DELETE that matched no
  row of the (nearly empty) throwaway database but will change rows in production;
- which tables that existed before it holds ``ACCESS EXCLUSIVE`` or ``SHARE`` locks on just
  before it commits, and which of them were rewritten (their ``relfilenode`` changed).

Event triggers need a superuser, which the throwaway test server always provides; on a server
where they cannot be installed, :func:`install_probes` returns False and the truth is only locks
and writes. They fire ``ALWAYS``, also under ``session_replication_role = replica``, and log the
oid of every object, which :mod:`pytest_migorch.postgres.snapshot_tracking` reads to re-read
only what changed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "PROBE_SCHEMA",
    "install_probes",
    "TableState",
    "capture_table_state",
    "MigrationTruth",
    "collect_truth",
    "reset_ddl_log",
    "RESET_DDL_LOG",
    "STATE_QUERY",
    "state_from_rows",
    "truth_query",
    "truth_from_rows",
]

log = logging.getLogger(__name__)

PROBE_SCHEMA = "migorch_probe"

_INSTALL = f"""
CREATE SCHEMA IF NOT EXISTS {PROBE_SCHEMA};
CREATE TABLE IF NOT EXISTS {PROBE_SCHEMA}.ddl_log (
    seq bigserial PRIMARY KEY,
    command_tag text,
    object_type text,
    schema_name text,
    object_identity text,
    table_identity text,
    dropped boolean NOT NULL DEFAULT false
);
ALTER TABLE {PROBE_SCHEMA}.ddl_log ADD COLUMN IF NOT EXISTS objid oid;
CREATE OR REPLACE FUNCTION {PROBE_SCHEMA}.log_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $probe$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        IF r.schema_name IS DISTINCT FROM '{PROBE_SCHEMA}' THEN
            INSERT INTO {PROBE_SCHEMA}.ddl_log
                (command_tag, object_type, schema_name, object_identity, objid, table_identity)
            VALUES (r.command_tag, r.object_type, r.schema_name, r.object_identity, r.objid,
                    CASE WHEN r.object_type = 'index' THEN
                        (SELECT (pg_identify_object('pg_class'::regclass, i.indrelid, 0)).identity
                         FROM pg_index i WHERE i.indexrelid = r.objid)
                    WHEN r.object_type = 'sequence' THEN
                        (SELECT (pg_identify_object('pg_class'::regclass, d.refobjid, 0)).identity
                         FROM pg_depend d
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = r.objid
                           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                         LIMIT 1) END);
        END IF;
    END LOOP;
END $probe$;
CREATE OR REPLACE FUNCTION {PROBE_SCHEMA}.log_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $probe$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        IF r.schema_name IS DISTINCT FROM '{PROBE_SCHEMA}' AND NOT r.is_temporary THEN
            INSERT INTO {PROBE_SCHEMA}.ddl_log
                (command_tag, object_type, schema_name, object_identity, dropped, objid)
            VALUES (tg_tag, r.object_type, r.schema_name, r.object_identity, true, r.objid);
        END IF;
    END LOOP;
END $probe$;
DROP EVENT TRIGGER IF EXISTS migorch_probe_ddl;
DROP EVENT TRIGGER IF EXISTS migorch_probe_drop;
CREATE EVENT TRIGGER migorch_probe_ddl ON ddl_command_end EXECUTE FUNCTION {PROBE_SCHEMA}.log_ddl();
CREATE EVENT TRIGGER migorch_probe_drop ON sql_drop EXECUTE FUNCTION {PROBE_SCHEMA}.log_drop();
ALTER EVENT TRIGGER migorch_probe_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER migorch_probe_drop ENABLE ALWAYS;
"""

# Every ground-truth query is one SELECT of rows ``(kind, oid, a, b, c, n)``, so that the state
# before a migration and the truth after it each cost one round trip; the kinds are:
#
# - ``t``: a table (``oid``, ``a`` = schema, ``b`` = name, ``c`` = relkind, ``n`` = relfilenode);
# - ``w``: row-write counter of the current transaction (``a`` = ``schema.table``, ``n``); they
#   may still include earlier transactions of the same backend that were not flushed to the
#   shared statistics yet, so only the growth during the migration counts;
# - ``l``: a blocking lock held by this backend (``oid`` = relation, ``a`` = mode);
# - ``d``: a DDL log record (``a`` = object type, ``b`` = identity, ``c`` = table identity).
#
# Each is sent in one message with what comes before or after it in the migration's transaction.
_TABLE_STATE = f"""
SELECT 't'::text AS kind, c.oid::bigint AS oid, n.nspname::text AS a, c.relname::text AS b,
       c.relkind::text AS c, c.relfilenode::bigint AS n
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', '{PROBE_SCHEMA}')
  AND n.nspname NOT LIKE 'pg\\_%'
"""

# ``i``: an index (``oid``) and its table (``a`` = ``schema.table``), so that a dropped index,
# which the drop event no longer knows the table of, is still put on its table.
_INDEXES = f"""
SELECT 'i'::text, i.indexrelid::bigint, n.nspname || '.' || c.relname, NULL::text, NULL::text,
       NULL::bigint
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '{PROBE_SCHEMA}')
  AND n.nspname NOT LIKE 'pg\\_%'
"""

# The rows of ``pg_stat_xact_user_tables`` (but the probes'), through the functions its
# columns are: PostgreSQL took longer to plan the view than to run it, twice per up.
_WRITES = f"""
SELECT 'w'::text, NULL::bigint, n.nspname || '.' || c.relname, NULL::text, NULL::text,
       pg_stat_get_xact_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_updated(c.oid)
       + pg_stat_get_xact_tuples_deleted(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 't', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', '{PROBE_SCHEMA}')
  AND n.nspname !~ '^pg_toast'
"""

_LOCKS = """
SELECT 'l'::text, l.relation::bigint, l.mode, NULL::text, NULL::text, NULL::bigint
FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.mode IN ('AccessExclusiveLock', 'ShareLock', 'RowExclusiveLock')
"""

_DDL_LOG = f"""
SELECT 'd'::text, objid::bigint, object_type, object_identity, table_identity, NULL::bigint
FROM {PROBE_SCHEMA}.ddl_log
"""

#: Empties the DDL log. A DELETE, not a TRUNCATE: the log holds a few rows, and a TRUNCATE
#: creates new files for the table each time, which costs more than the rest of the capture.
RESET_DDL_LOG = f"DELETE FROM {PROBE_SCHEMA}.ddl_log"

_BEFORE = f"{_TABLE_STATE} UNION ALL {_WRITES} UNION ALL {_INDEXES}"

#: The state before a migration as one query, for a message built elsewhere: its rows go to
#: :func:`state_from_rows` (:func:`capture_table_state` sends it on its own).
STATE_QUERY = _BEFORE

#: Object types whose identity names a table, or ends in "on <table>".
_TABLE_TYPES = {"table", "table column", "foreign table"}
_ON_TABLE_TYPES = {"table constraint", "trigger", "rule", "policy"}
_ON_TABLE = re.compile(r" on (.+)$")


def install_probes(conn: psycopg.Connection[Any]) -> bool:
    """Install the DDL-recording event triggers; False when the server does not allow it."""
    try:
        with conn.transaction():
            conn.execute(_INSTALL)
        return True
    except psycopg.Error as exc:
        log.info("event triggers unavailable (%s); DDL ground truth is off", exc)
        return False


def reset_ddl_log(conn: psycopg.Connection[Any]) -> None:
    """Empty the DDL log; :data:`RESET_DDL_LOG` can also go in a message with other statements."""
    conn.execute(RESET_DDL_LOG)


@dataclass(frozen=True)
class TableState:
    """Before a migration: tables (oid -> qualified name, relfilenode) and row-write counters."""

    tables: dict[int, tuple[str, int]]
    writes: dict[str, int]
    #: index oid -> ``schema.table`` it is on.
    indexes: dict[int, str] = field(default_factory=dict)
    #: oids of materialized views (their refresh replaces their storage but writes no table).
    materialized: frozenset[int] = frozenset()


def _parse_state(rows: list[tuple[Any, ...]]) -> TableState:
    tables: dict[int, tuple[str, int]] = {}
    writes: dict[str, int] = {}
    indexes: dict[int, str] = {}
    materialized: set[int] = set()
    for kind, oid, a, b, c, n in rows:
        if kind == "t":
            tables[oid] = (f"{a}.{b}", n)
            if c == "m":
                materialized.add(oid)
        elif kind == "w":
            writes[a] = n
        elif kind == "i":
            indexes[oid] = a
    return TableState(tables=tables, writes=writes, indexes=indexes,
                      materialized=frozenset(materialized))


def _rows(conn: psycopg.Connection[Any], statements: Sequence[sql.Composable]) -> list[Any]:
    """Send ``statements`` as one message (one round trip); the rows of the one with rows.

    They are not prepared: psycopg would then DEALLOCATE ALL after the next DROP or ALTER,
    taking the snapshot's own prepared statement with them (see :func:`.snapshot.run_prepared`)."""
    rows: list[Any] = []
    with conn.cursor() as cur:
        cur.execute(sql.SQL(";\n").join(statements), prepare=False)
        while True:
            if cur.description is not None:
                rows = cur.fetchall()
            if not cur.nextset():
                return rows


def capture_table_state(conn: psycopg.Connection[Any], *,
                        setup: sql.Composable | None = None) -> TableState:
    """Tables, relfilenodes and write counters, in one query; inside the migration's
    transaction for a transactional one, since the write counters are the transaction's.
    ``setup`` (``SET search_path``, ``BEGIN``...) goes first, in the same message."""
    return _parse_state(_rows(conn, [*([setup] if setup else []), sql.SQL(_BEFORE)]))


@dataclass
class MigrationTruth:
    """What PostgreSQL saw one up migration do."""

    ddl_tables: set[str] = field(default_factory=set)
    written_tables: set[str] = field(default_factory=set)
    #: Pre-existing tables -> strongest lock held before commit (transactional migrations).
    locks: dict[str, str] = field(default_factory=dict)
    rewritten: set[str] = field(default_factory=set)
    ddl_available: bool = True

    @property
    def touched_tables(self) -> set[str]:
        return self.ddl_tables | self.written_tables


def _parse_truth(
    rows: list[tuple[Any, ...]], before: TableState, *, ddl_available: bool,
) -> MigrationTruth:
    truth = MigrationTruth(ddl_available=ddl_available)
    filenodes: dict[int, int] = {}
    for kind, oid, a, b, c, n in rows:
        if kind == "d":
            table = _table_of(a, b, c)
            if table is None and a == "index":
                table = before.indexes.get(oid)
            if table is not None:
                truth.ddl_tables.add(table)
        elif kind == "w":
            if n > before.writes.get(a, 0):
                truth.written_tables.add(a)
        elif kind == "l":
            if oid in before.tables and a == "RowExclusiveLock":
                # INSERT/UPDATE/DELETE/MERGE/COPY hold it: the table is written even when no
                # row of the throwaway database matched.
                truth.written_tables.add(before.tables[oid][0])
            elif oid in before.tables:
                name = before.tables[oid][0]
                if truth.locks.get(name) != "AccessExclusiveLock":
                    truth.locks[name] = a
        elif kind == "t":
            filenodes[oid] = n
    for oid, (name, filenode) in before.tables.items():
        now = filenodes.get(oid)
        if now is not None and now != filenode:
            truth.rewritten.add(name)
            if oid not in before.materialized:  # TRUNCATE: no DDL event, no row counter
                truth.written_tables.add(name)
    return truth


def collect_truth(
    conn: psycopg.Connection[Any], before: TableState, *, ddl_available: bool,
    in_transaction: bool, commit: bool = False,
) -> MigrationTruth:
    """Read the ground truth, in one query; call it after the up ran and, if transactional,
    before commit (the locks and write counters are the transaction's). ``commit``: the
    ``COMMIT`` goes in the same message (it runs only if the query succeeded)."""
    query: list[sql.Composable] = [sql.SQL(truth_query(ddl_available=ddl_available,
                                                       in_transaction=in_transaction))]
    if commit:
        query.append(sql.SQL("COMMIT"))
    return _parse_truth(_rows(conn, query), before, ddl_available=ddl_available)


def truth_query(*, ddl_available: bool, in_transaction: bool) -> str:
    """:func:`collect_truth`'s query, for a message built elsewhere (its rows go to
    :func:`truth_from_rows`)."""
    parts = [_DDL_LOG] if ddl_available else []
    if in_transaction:
        parts += [_WRITES, _LOCKS]
    parts.append(_TABLE_STATE)  # again, for rewrites
    return " UNION ALL ".join(parts)


def state_from_rows(rows: list[tuple[Any, ...]]) -> TableState:
    """The :class:`TableState` from the rows of :data:`STATE_QUERY`."""
    return _parse_state(rows)


def truth_from_rows(rows: list[tuple[Any, ...]], before: TableState, *,
                    ddl_available: bool) -> MigrationTruth:
    """The :class:`MigrationTruth` from the rows of :func:`truth_query`."""
    return _parse_truth(rows, before, ddl_available=ddl_available)


def _table_of(object_type: str, identity: str, table_identity: str | None) -> str | None:
    """The table an event-trigger record concerns, as ``schema.table`` (unquoted)."""
    if object_type in ("index", "sequence"):
        return _unquote(table_identity) if table_identity else None
    if object_type in _TABLE_TYPES:
        parts = _split_identity(identity)
        return ".".join(parts[:2]) if len(parts) >= 2 else None
    if object_type in _ON_TABLE_TYPES:
        match = _ON_TABLE.search(identity)
        return _unquote(match.group(1)) if match else None
    return None


def _split_identity(identity: str) -> list[str]:
    """Split ``a."b.c".d`` into its unquoted parts."""
    parts: list[str] = []
    current = ""
    quoted = False
    i = 0
    while i < len(identity):
        char = identity[i]
        if char == '"':
            if quoted and i + 1 < len(identity) and identity[i + 1] == '"':
                current += '"'
                i += 1
            else:
                quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
        i += 1
    parts.append(current)
    return parts


def _unquote(qualified: str) -> str:
    parts = _split_identity(qualified)
    return ".".join(parts[:2]) if len(parts) >= 2 else ("public." + parts[0])
