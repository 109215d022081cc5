"""Every selected service's tracking rows and golang-migrate version, read in one round trip.

A command reads each service's state before it decides anything: its ``migration_executions``
rows and golang-migrate's ``(version, dirty)``. Asked per service, that was two queries per
service (twenty round trips for ten services, and most of the server's share of an ``up`` with
nothing to do); here one query text carries both questions for every service whose three tables
the session already saw exist (:meth:`~pytest_migorch.deploy.session.Session.probe_tables`).
A service not covered (a table missing: it is about to be created or recreated) is read the
usual way, after those writes. The answers are handed to the first state read of each service
only (:meth:`~pytest_migorch.deploy.preparing.ServicePreparation._prepare_service`): every read
after a write asks the database again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import psycopg
from psycopg import sql

from pytest_migorch.deploy.records import ExecutionRecord, SchemaVersion
from pytest_migorch.deploy.tracking import EXECUTIONS_TABLE, record_from_tuple
from pytest_migorch.deploy.tracking_sql import RECORD_LIST

if TYPE_CHECKING:
    from pytest_migorch.deploy.session import Session

__all__ = ["StateRead", "read_states"]

#: One service's rows (in id order) and golang-migrate's version, as read together.
StateRead = tuple[list[ExecutionRecord], SchemaVersion]


def read_states(session: Session, schemas: Sequence[str]) -> dict[str, StateRead]:
    """The state of each of ``schemas`` whose tables are known to exist, in one query; other
    schemas are left out (the caller reads them itself). Outside a transaction only, like the
    table probe it relies on."""
    idle = session.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    known = [schema for schema in dict.fromkeys(schemas)
             if idle and session.tracking(schema).tables_known()]
    if not known:
        return {}
    rows_query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {} AS k, {} FROM {}").format(
            sql.Literal(index), sql.SQL(RECORD_LIST), sql.Identifier(schema, EXECUTIONS_TABLE))
        for index, schema in enumerate(known))
    version_query = sql.SQL(" UNION ALL ").join(
        sql.SQL("(SELECT {} AS k, version, dirty FROM {} LIMIT 1)").format(
            sql.Literal(index), sql.Identifier(*session.gm_table_of(schema)))
        for index, schema in enumerate(known))
    query = sql.SQL("SELECT * FROM ({}) AS r ORDER BY k, id; {}").format(rows_query,
                                                                         version_query)
    records: list[list[ExecutionRecord]] = [[] for _ in known]
    versions = [SchemaVersion(exists=True) for _ in known]
    with session.conn.cursor() as cur:
        cur.execute(query, prepare=False)
        for row in cur.fetchall():
            records[row[0]].append(record_from_tuple(row[1:]))
        cur.nextset()
        for index, version, dirty in cur.fetchall():
            versions[index] = SchemaVersion(version=int(version), dirty=bool(dirty), exists=True)
    return {schema: (records[i], versions[i]) for i, schema in enumerate(known)}
