"""Full scans of tables with rows under an ACCESS EXCLUSIVE lock: ``DB015``, from PostgreSQL.

``SET NOT NULL``, a validated ``CHECK``, or an ``UPDATE`` after an ``ALTER TABLE`` in the same
transaction read every row of the table while the up holds ACCESS EXCLUSIVE on it: no one can
read or write the table for as long as the scan lasts, which on the throwaway database is no
time and in production grows with the table. The static analysis guesses; the round-trip sees
it. A rewrite or a SHARE lock (index build) is already ``DB007``; a scan under a weaker lock
(``VALIDATE CONSTRAINT`` under SHARE UPDATE EXCLUSIVE, a backfill ``UPDATE`` alone, the builds
of ``CREATE INDEX CONCURRENTLY``) blocks no reader and is not counted: those are the safe
patterns the hints recommend.

When a scan ran matters, not only that it did: ``VALIDATE CONSTRAINT`` then ``SET NOT NULL``
(which a valid CHECK spares its scan) ends holding ACCESS EXCLUSIVE, yet scanned before taking
it. So an event trigger on ``ddl_command_end`` records, after each DDL statement, the scan
counter of every table the transaction has locked and whether that lock is ACCESS EXCLUSIVE
(:data:`INSTALL`); a scan between two records counts when the lock was exclusive at the later
one (a DDL statement takes its lock before it scans), and a scan after the last DDL statement
when the lock was still exclusive at commit. The counters are the shared statistics plus what
this backend has not flushed yet, so they add up across the commit. Only for transactional
ups, on tables that had rows before the up (seeded, or the team's fixture), when the declared
``risk_level`` is below high; the trigger records only from just before such an up until its
log is read (a session setting), and returns at once after every other DDL statement.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_migorch.model import Migration, RiskLevel
from pytest_migorch.postgres.cached_plans import cached
from pytest_migorch.postgres.probes import PROBE_SCHEMA

if TYPE_CHECKING:
    import psycopg

    from pytest_migorch.postgres.probes import MigrationTruth

__all__ = ["COUNTERS", "ScanLog", "prepare_scan_log", "install_scan_log", "reset_scan_log", "stop_scan_log",
           "read_counters",
           "read_scan_log", "scanned_tables", "scan_message", "send_counters",
           "receive_counters", "send_scan_log", "receive_scan_log"]

log = logging.getLogger(__name__)

_TOTAL = "s.seq_scan + COALESCE(x.seq_scan, 0)"
#: The same total as :data:`_TOTAL` (the views' ``seq_scan`` columns are these functions) of
#: the tables ``pg_stat_user_tables`` lists in the schemas, without the views: planning
#: them cost 0.8 ms each time, twice per migration, for a few tables.
COUNTERS = """
SELECT n.nspname || '.' || c.relname,
       pg_stat_get_numscans(c.oid) + pg_stat_get_xact_numscans(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 't', 'm', 'p') AND n.nspname = ANY(%s)
"""

#: The session setting that turns the trigger's recording on, from :func:`reset_scan_log`
#: before an up to :func:`stop_scan_log` after it: reading the locks and the statistics views
#: after every DDL statement cost ~0.5 ms a statement, in every down, re-up, replay and lock
#: probe, which record nothing anyone reads.
_SWITCH = "migorch.scan_log"

#: The scan log and its trigger, in the probes' private schema (no snapshot sees it).
INSTALL = f"""
CREATE SCHEMA IF NOT EXISTS {PROBE_SCHEMA};
CREATE TABLE IF NOT EXISTS {PROBE_SCHEMA}.scan_log (
    command int NOT NULL, relation text NOT NULL, scans bigint NOT NULL, exclusive boolean NOT NULL
);
CREATE OR REPLACE FUNCTION {PROBE_SCHEMA}.log_scans() RETURNS event_trigger
LANGUAGE plpgsql AS $probe$
DECLARE n int;
BEGIN
    IF current_setting('{_SWITCH}', true) IS DISTINCT FROM 'on' THEN
        RETURN;  -- not recording: every other DDL statement pays nothing for the log
    END IF;
    n := COALESCE((SELECT max(command) FROM {PROBE_SCHEMA}.scan_log), 0) + 1;
    INSERT INTO {PROBE_SCHEMA}.scan_log
    SELECT n, s.schemaname || '.' || s.relname, {_TOTAL},
           bool_or(l.mode = 'AccessExclusiveLock')
    FROM pg_locks l
    JOIN pg_stat_user_tables s ON s.relid = l.relation
    LEFT JOIN pg_stat_xact_user_tables x ON x.relid = s.relid
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND s.schemaname <> '{PROBE_SCHEMA}'
    GROUP BY 1, 2, 3;
END $probe$;
DROP EVENT TRIGGER IF EXISTS migorch_probe_scans;
CREATE EVENT TRIGGER migorch_probe_scans ON ddl_command_end
    EXECUTE FUNCTION {PROBE_SCHEMA}.log_scans();
"""

_READY = f"SELECT to_regclass('{PROBE_SCHEMA}.scan_log') IS NOT NULL"


@dataclass(frozen=True)
class ScanLog:
    """Scan counters before the up, after each of its DDL statements, and after it."""

    before: dict[str, int]
    #: ``[{table: (scans, exclusive)}]``, one per DDL statement, in order.
    commands: list[dict[str, tuple[int, bool]]]
    after: dict[str, int]


#: The round-trip connections whose database has the scan log: checked once per database,
#: not before every up (the check and the emptying were two waits for the server each time).
_INSTALLED: weakref.WeakSet[Any] = weakref.WeakSet()


def prepare_scan_log(conn: psycopg.Connection[Any]) -> bool:
    """Install the scan log on this database if needed and empty it; False when the server
    allows no event trigger (then there is no ``DB015``)."""
    if not install_scan_log(conn):
        return False
    reset_scan_log(conn)
    return True


def install_scan_log(conn: psycopg.Connection[Any]) -> bool:
    """Install the scan log on this database if needed (checked once per connection); False
    when the server allows no event trigger (then there is no ``DB015``)."""
    import psycopg

    if conn in _INSTALLED:
        return True
    try:
        if conn.execute(_READY).fetchone() != (True,):
            with conn.transaction():
                conn.execute(INSTALL)
    except psycopg.Error as exc:
        log.info("no scan log (%s): DB015 is off", exc)
        return False
    _INSTALLED.add(conn)
    return True


def reset_scan_log(conn: psycopg.Connection[Any]) -> None:
    """Empty the installed scan log and start recording, before an up (in a pipeline, with
    others; two statements: a pipeline sends one per query)."""
    conn.execute(f"DELETE FROM {PROBE_SCHEMA}.scan_log")
    conn.execute(f"SELECT set_config('{_SWITCH}', 'on', false)")


def stop_scan_log(conn: psycopg.Connection[Any]) -> None:
    """Stop recording, once the up's log is read (in a pipeline, with others)."""
    conn.execute(f"SELECT set_config('{_SWITCH}', 'off', false)")


def read_counters(conn: psycopg.Connection[Any], schemas: list[str]) -> dict[str, int]:
    """The sequential scans of every table of ``schemas`` so far, in one query."""
    return receive_counters(send_counters(conn, schemas))


def send_counters(conn: psycopg.Connection[Any], schemas: list[str]) -> psycopg.Cursor[Any]:
    """Send :func:`read_counters`' query (in a pipeline, with others); its cursor."""
    return conn.execute(cached(conn, COUNTERS), [schemas], prepare=True)


def receive_counters(cursor: psycopg.Cursor[Any]) -> dict[str, int]:
    """The counters :func:`send_counters` asked for."""
    return {table: int(n or 0) for table, n in cursor.fetchall()}


def read_scan_log(conn: psycopg.Connection[Any], schemas: list[str],
                  before: dict[str, int]) -> ScanLog:
    """The log the up's DDL statements left, and the counters now."""
    with conn.pipeline():
        sent = send_scan_log(conn, schemas)
    return receive_scan_log(sent, before)


def send_scan_log(conn: psycopg.Connection[Any], schemas: list[str],
                  ) -> tuple[psycopg.Cursor[Any], psycopg.Cursor[Any]]:
    """Send :func:`read_scan_log`'s two queries (in a pipeline, with others)."""
    return (conn.execute(f"SELECT command, relation, scans, exclusive FROM {PROBE_SCHEMA}"
                         ".scan_log ORDER BY command", prepare=True),
            send_counters(conn, schemas))


def receive_scan_log(sent: tuple[psycopg.Cursor[Any], psycopg.Cursor[Any]],
                     before: dict[str, int]) -> ScanLog:
    """The :class:`ScanLog` :func:`send_scan_log` asked for."""
    commands: dict[int, dict[str, tuple[int, bool]]] = {}
    for command, table, scans, exclusive in sent[0].fetchall():
        commands.setdefault(command, {})[table] = (int(scans), bool(exclusive))
    return ScanLog(before, [commands[n] for n in sorted(commands)], receive_counters(sent[1]))


def _scanned_under_exclusive(table: str, scans: ScanLog, exclusive_at_commit: bool) -> bool:
    last = scans.before.get(table, 0)
    for command in scans.commands:
        now, exclusive = command.get(table, (last, False))
        if now > last and exclusive:
            return True
        last = now
    return exclusive_at_commit and scans.after.get(table, 0) > last


def scanned_tables(migration: Migration, truth: MigrationTruth | None, had_rows: set[str],
                   scans: ScanLog, *, transactional: bool) -> list[str]:
    """The tables ``DB015`` names for this up (sorted), or none when it does not apply."""
    meta = migration.meta
    if truth is None or meta is None or not meta.risk_level < RiskLevel.HIGH \
            or not transactional:
        return []
    db007 = truth.rewritten | {t for t, mode in truth.locks.items() if mode == "ShareLock"}
    return [table for table in sorted(had_rows - db007) if _scanned_under_exclusive(
        table, scans, truth.locks.get(table) == "AccessExclusiveLock")]


def scan_message(migration: Migration, tables: list[str]) -> str:
    assert migration.meta is not None
    return (f"{migration.id} is declared {migration.meta.risk_level.value} but PostgreSQL read "
            f"every row of {', '.join(tables)} while the up held ACCESS EXCLUSIVE on it (e.g. "
            "validating SET NOT NULL or a CHECK, or an UPDATE after an ALTER TABLE in the same "
            "transaction): in production no one can read or write the table for as long as "
            "the scan lasts, which grows with the table: high risk")
