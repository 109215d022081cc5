"""Schema snapshots of a PostgreSQL database, read from its catalogue in one query.

The up/down round-trip (SPEC section 4) needs to know whether a down migration really undid its
up: it snapshots the schema before the up, after the up, after the down and after the re-up, and
compares (the comparison is :mod:`pytest_migorch.postgres.schema_diff`, which needs no server).
A :class:`Snapshot` is a plain value: every user-visible object (schemas,
tables, columns, constraints, indexes, sequences, views, functions, triggers, types, extensions
and their comments) keyed by its identity, with the attributes that define it rendered as text by
PostgreSQL itself (``format_type``, ``pg_get_*def``). Text rendering keeps the snapshot free of
OIDs, so the same schema built in two databases gives equal snapshots.

Design choices:

- One catalogue query (a ``UNION ALL`` aggregated into one JSON document) keeps a snapshot in
  the low milliseconds; the round-trip reads it whole once per database and then narrowed to
  what changed (:mod:`pytest_migorch.postgres.snapshot_tracking`). It is kept as a named server-side
  prepared statement, so it is parsed and planned once per session (see :func:`take_snapshot`).
- The query runs with ``search_path`` set to ``pg_catalog`` only, so every name PostgreSQL prints
  is schema-qualified and does not depend on the caller's session.
- Objects that belong to an extension are left out: the extension entry stands for them.
- Sequence current values are data, not schema, and are not recorded.
- Exclusions take shell-style wildcards (``("public", "*_schema_migrations")``); excluding a table
  also excludes its columns, constraints, indexes, triggers and the sequences it owns.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from pytest_migorch.errors import DatabaseError
from pytest_migorch.postgres.schema_diff import (
    Attributes,
    ObjectKey,
    SchemaDifference,
    Snapshot,
    diff_snapshots,
    display_name,
    render_differences,
)

__all__ = [
    "SchemaDifference",
    "Snapshot",
    "diff_snapshots",
    "display_name",
    "render_differences",
    "take_snapshot",
]

# One statement returning one JSON document: a list of ``[kind, *name parts, attributes, owner
# oid, own oid]`` arrays (the oids, never part of a Snapshot, are for snapshot_tracking). One document costs one JSON parse instead of one per object; nulls are dropped on the
# client (a missing attribute reads as None). Exclusions are inlined as literals (see
# _snapshot_query), so the statement has no parameters and PostgreSQL plans it once, generically.
# Comments, extension membership and column defaults are looked up per object through their
# catalogue indexes rather than joined in bulk: the schemas under test are small next to the
# catalogue itself (pg_description alone describes thousands of built-in objects).
_SNAPSHOT_SQL = r"""
WITH {scope_cte}nsp AS MATERIALIZED (
    SELECT n.oid, n.nspname FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
      AND NOT n.nspname LIKE ANY ({exclude_schemas})
), excluded_rel AS MATERIALIZED (
    SELECT c.oid FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
    JOIN unnest({exclude_table_schemas}, {exclude_table_names}) AS x(s, t)
      ON n.nspname LIKE x.s AND c.relname LIKE x.t
), rel AS MATERIALIZED (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relpartbound, c.reloptions,
           n.nspname,
           (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
              AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0) AS comment
    FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      AND NOT EXISTS (SELECT FROM excluded_rel e WHERE e.oid = c.oid) AND {rel_scope}
      AND NOT EXISTS (SELECT FROM pg_depend d JOIN excluded_rel e ON e.oid = d.refobjid
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
), typ AS MATERIALIZED (
    SELECT t.oid, t.typname, t.typtype, t.typrelid, t.typbasetype, t.typtypmod, t.typnotnull,
           t.typdefault, n.nspname,
           (SELECT d.description FROM pg_description d WHERE d.objoid = t.oid
              AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0) AS comment
    FROM pg_type t JOIN nsp n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'c', 'd', 'r') AND {typ_scope}
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
)
SELECT json_agg(o)::text{meta} FROM (
SELECT json_build_array('schema', n.nspname, json_build_object(
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = n.oid
                   AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0)),
       n.oid::bigint, NULL)
FROM nsp n WHERE {nsp_scope}
UNION ALL
SELECT json_build_array('extension', e.extname, json_build_object(
       'schema', n.nspname, 'version', e.extversion,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = e.oid
                   AND d.classoid = 'pg_extension'::regclass AND d.objsubid = 0)),
       e.oid::bigint, NULL)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE NOT n.nspname LIKE ANY ({exclude_schemas}) AND {ext_scope}
UNION ALL
SELECT json_build_array('table', r.nspname, r.relname, json_build_object(
       'kind', CASE r.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign'
                              ELSE 'ordinary' END,
       'unlogged', r.relpersistence = 'u',
       'partition_key', CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END,
       'partition_bound', pg_get_expr(r.relpartbound, r.oid),
       'parents', (SELECT array_agg(i.inhparent::regclass::text ORDER BY i.inhseqno)
                   FROM pg_inherits i WHERE i.inhrelid = r.oid),
       'options', r.reloptions,
       'columns', (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
       'comment', r.comment), r.oid::bigint, NULL)
FROM rel r WHERE r.relkind IN ('r', 'p', 'f')
UNION ALL
SELECT json_build_array('column', r.nspname, r.relname, a.attname, json_build_object(
       'type', format_type(a.atttypid, a.atttypmod),
       'not_null', a.attnotnull,
       'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
       'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
       'collation', CASE WHEN a.attcollation <> 0 AND a.attcollation <>
           (SELECT t.typcollation FROM pg_type t WHERE t.oid = a.atttypid) THEN
           (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation) END,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = a.attrelid
                   AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum)),
       r.oid::bigint, d.oid::bigint)
FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE r.relkind IN ('r', 'p', 'f')
UNION ALL
SELECT json_build_array('constraint', r.nspname, r.relname, c.conname, json_build_object(
       'type', CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
               WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion'
               WHEN 't' THEN 'trigger' ELSE c.contype::text END,
       'definition', pg_get_constraintdef(c.oid),
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
                   AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0)),
       r.oid::bigint, c.oid::bigint)
FROM rel r JOIN pg_constraint c ON c.conrelid = r.oid
UNION ALL
SELECT json_build_array('constraint', t.nspname, t.typname, c.conname, json_build_object(
       'type', 'check', 'definition', pg_get_constraintdef(c.oid),
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = c.oid
                   AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0)),
       t.oid::bigint, c.oid::bigint)
FROM typ t JOIN pg_constraint c ON c.contypid = t.oid WHERE t.typtype = 'd'
UNION ALL
SELECT json_build_array('index', r.nspname, r.relname, i.relname, json_build_object(
       'definition', pg_get_indexdef(x.indexrelid),
       'valid', x.indisvalid,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = i.oid
                   AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0)),
       r.oid::bigint, i.oid::bigint)
FROM rel r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class i ON i.oid = x.indexrelid
WHERE NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = x.indrelid
                  AND c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT json_build_array('sequence', r.nspname, r.relname, json_build_object(
       'type', format_type(s.seqtypid, NULL), 'start', s.seqstart,
       'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax, 'cache', s.seqcache,
       'cycle', s.seqcycle,
       'owned_by', (SELECT ARRAY[tn.nspname, tc.relname, ta.attname]
                    FROM pg_depend d
                    JOIN pg_class tc ON tc.oid = d.refobjid
                    JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                    JOIN pg_attribute ta ON ta.attrelid = tc.oid AND ta.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                    LIMIT 1),
       'comment', r.comment), r.oid::bigint, NULL)
FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
UNION ALL
SELECT json_build_array(CASE r.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
       r.nspname, r.relname, json_build_object(
       'definition', pg_get_viewdef(r.oid), 'options', r.reloptions, 'comment', r.comment),
       r.oid::bigint, NULL)
FROM rel r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT json_build_array(
       CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       n.nspname, p.proname || '(' || oidvectortypes(p.proargtypes) || ')',
       json_build_object(
       'definition', CASE WHEN p.prokind = 'a' THEN
           (SELECT concat_ws(' ', 'SFUNC', ag.aggtransfn::regproc::text,
                             'STYPE', format_type(ag.aggtranstype, NULL),
                             'FINALFUNC', NULLIF(ag.aggfinalfn, 0)::regproc::text,
                             'INITCOND', ag.agginitval)
            FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
           ELSE pg_get_functiondef(p.oid) END,
       'result', pg_get_function_result(p.oid),
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = p.oid
                   AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0)), p.oid::bigint, NULL)
FROM pg_proc p JOIN nsp n ON n.oid = p.pronamespace
WHERE {proc_scope} AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT json_build_array('trigger', r.nspname, r.relname, g.tgname, json_build_object(
       'definition', pg_get_triggerdef(g.oid),
       'enabled', CASE g.tgenabled WHEN 'O' THEN 'yes' WHEN 'D' THEN 'no' WHEN 'R' THEN 'replica'
                  WHEN 'A' THEN 'always' END,
       'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = g.oid
                   AND d.classoid = 'pg_trigger'::regclass AND d.objsubid = 0)),
       r.oid::bigint, g.oid::bigint)
FROM rel r JOIN pg_trigger g ON g.tgrelid = r.oid
WHERE NOT g.tgisinternal
UNION ALL
SELECT json_build_array('enum', t.nspname, t.typname, json_build_object(
       'labels', (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                  WHERE e.enumtypid = t.oid),
       'comment', t.comment), t.oid::bigint, NULL)
FROM typ t WHERE t.typtype = 'e'
UNION ALL
SELECT json_build_array('composite type', t.nspname, t.typname, json_build_object(
       'attributes', (SELECT array_agg(quote_ident(a.attname) || ' '
                                       || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                      FROM pg_attribute a
                      WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
       'comment', t.comment), t.oid::bigint, NULL)
FROM typ t JOIN pg_class c ON c.oid = t.typrelid WHERE t.typtype = 'c' AND c.relkind = 'c'
UNION ALL
SELECT json_build_array('domain', t.nspname, t.typname, json_build_object(
       'base_type', format_type(t.typbasetype, t.typtypmod), 'not_null', t.typnotnull,
       'default', t.typdefault, 'comment', t.comment), t.oid::bigint, NULL)
FROM typ t WHERE t.typtype = 'd'
UNION ALL
SELECT json_build_array('range type', t.nspname, t.typname, json_build_object(
       'subtype', format_type(g.rngsubtype, NULL), 'comment', t.comment), t.oid::bigint, NULL)
FROM typ t JOIN pg_range g ON g.rngtypid = t.oid
) AS objects(o)
"""


def _glob_to_like(pattern: str) -> str:
    """Shell-style ``*`` and ``?`` to a LIKE pattern, escaping LIKE's own wildcards."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _text_array(items: Iterable[str]) -> sql.Composable:
    return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(map(sql.Literal, items)))


#: The parts of :data:`_SNAPSHOT_SQL` that narrow it to some objects: everything, here.
#: :mod:`pytest_migorch.postgres.snapshot_tracking` fills them to re-read only what changed.
WHOLE_CATALOGUE: dict[str, sql.Composable] = {
    "scope_cte": sql.SQL(""), "meta": sql.SQL(""),
    **{name: sql.SQL("TRUE") for name in (
        "nsp_scope", "ext_scope", "rel_scope", "typ_scope", "proc_scope")},
}


def snapshot_statement(
    exclude_schemas: tuple[str, ...], exclude_tables: tuple[tuple[str, str], ...],
    parts: dict[str, sql.Composable] | None = None,
) -> sql.Composed:
    """The snapshot statement with the exclusions inlined as LIKE patterns; ``parts`` replace
    those of :data:`WHOLE_CATALOGUE` (a scope, extra result columns)."""
    return sql.SQL(_SNAPSHOT_SQL).format(
        exclude_schemas=_text_array(_glob_to_like(s) for s in exclude_schemas),
        exclude_table_schemas=_text_array(_glob_to_like(s) for s, _ in exclude_tables),
        exclude_table_names=_text_array(_glob_to_like(t) for _, t in exclude_tables),
        **{**WHOLE_CATALOGUE, **(parts or {})},
    )


@functools.lru_cache(maxsize=32)
def _snapshot_query(
    exclude_schemas: tuple[str, ...], exclude_tables: tuple[tuple[str, str], ...]
) -> sql.Composed:
    return snapshot_statement(exclude_schemas, exclude_tables)


def run_prepared(
    conn: psycopg.Connection[Any], text: bytes, *, params: str = "",
    args: sql.Composable | None = None,
) -> tuple[Any, ...] | None:
    """Run a catalogue statement as a named server-side prepared statement (the name hashes
    its text), with ``search_path`` set to ``pg_catalog`` only, so every name PostgreSQL prints
    comes out schema-qualified; its one row. ``params`` are the parameter types (``bigint,
    oid[]``) and ``args`` their literal values. The caller's transaction state and
    ``search_path`` are left as they were (the work runs in a transaction or a savepoint).

    Planning the snapshot costs about as much as running it, and psycopg's own automatic
    preparation does not help here: psycopg forgets every prepared statement after any DROP,
    ALTER or ROLLBACK, which is what a round-trip runs between two snapshots. PostgreSQL
    re-plans the statement by itself when a catalogue change requires it; if it is gone
    (``DEALLOCATE ALL``, a new session), it is prepared again."""
    statement = "migorch_snapshot_" + hashlib.sha256(text + params.encode()).hexdigest()[:16]
    # Our own transaction ends with the statement and takes the search_path with it; in the
    # caller's transaction (a savepoint) the previous value has to be put back.
    restore = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    # With parameters PostgreSQL would plan each execution anew for the values given (custom
    # plans), which costs more than running it: the generic plan is the one wanted.
    mode = "force_generic_plan" if params else "auto"
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            "SELECT current_setting('search_path'), current_setting('plan_cache_mode'),"
            " set_config('search_path', 'pg_catalog', true),"
            " set_config('plan_cache_mode', %s, true),"
            " EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE name = %s)",
            [mode, statement], prepare=False).fetchone()
        assert row is not None
        previous_path, previous_mode, _, _, prepared = row
        if not prepared:
            types = sql.SQL(f"({params})" if params else "")
            prepare = sql.SQL("PREPARE {}{} AS ").format(sql.Identifier(statement), types)
            cur.execute(prepare.as_bytes(conn) + text, prepare=False)
        call = sql.SQL("EXECUTE {}").format(sql.Identifier(statement))
        if args is not None:
            call = sql.SQL("{}({})").format(call, args)
        result = cur.execute(call, prepare=False).fetchone()
        if restore:
            cur.execute("SELECT set_config('search_path', %s, true),"
                        " set_config('plan_cache_mode', %s, true)",
                        [previous_path, previous_mode], prepare=False)
    return result


#: One object as the statement returns it: its key, its attributes, the oid of the object it
#: is read with (a table for its columns, indexes...; itself otherwise) and its own oid, if any.
Row = tuple[ObjectKey, Attributes, int, "int | None"]


def parse_rows(document: str | None) -> list[Row]:
    """The rows of the statement's JSON document; nulls dropped, arrays frozen as tuples."""
    rows: list[Row] = []
    for *key, attrs, owner, own in json.loads(document) if document else ():
        rows.append((tuple(key), {  # the statement's arrays are flat: tuple() freezes them
            attr: tuple(value) if isinstance(value, list) else value
            for attr, value in attrs.items() if value is not None}, owner, own))
    return rows


def take_snapshot(
    conn: psycopg.Connection[Any],
    *,
    exclude_schemas: Iterable[str] = (),
    exclude_tables: Iterable[tuple[str, str]] = (),
) -> Snapshot:
    """Snapshot every non-system schema reachable through ``conn``.

    ``exclude_schemas`` names schemas and ``exclude_tables`` ``(schema, table)`` pairs to leave
    out; both accept ``*`` and ``?`` wildcards. The caller's transaction state and
    ``search_path`` are left as they were (see :func:`run_prepared`).
    """
    query = _snapshot_query(tuple(exclude_schemas), tuple(tuple(p) for p in exclude_tables))
    try:
        result = run_prepared(conn, query.as_bytes(conn))
    except psycopg.Error as exc:
        raise DatabaseError(f"could not take a schema snapshot: {exc}") from exc
    return Snapshot({key: attrs for key, attrs, _, _ in parse_rows(result[0] if result else None)})
