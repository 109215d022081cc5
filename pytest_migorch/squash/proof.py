"""The proof that a squash changes nothing: the state two databases end in, compared.

A database's state here is what a hand-made squash tends to lose, read from PostgreSQL itself:

- the schema snapshot of :func:`pytest_migorch.postgres.snapshot.take_snapshot` (tables,
  columns, constraints, indexes, views, functions, triggers, types, comments, ...);
- the privileges (ACLs) of schemas, relations, functions and types, which the snapshot omits;
- every row of every table, as ``to_jsonb`` text, sorted, so order of insertion does not count;
- every sequence's position (``last_value``, ``is_called``).

Every non-system schema is read, not only the service's: a migration that wrote into another
schema (``public``, say) is lost by a dump of the service schema, and the proof must say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pytest_migorch.postgres.snapshot import (
    Snapshot,
    diff_snapshots,
    render_differences,
    take_snapshot,
)

__all__ = ["DatabaseState", "capture_state", "compare_states"]

#: How many differing rows of one table are printed.
ROW_SAMPLE = 5

_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""

_ACLS = f"""
SELECT 'schema ' || quote_ident(n.nspname), coalesce(n.nspacl::text, '')
  FROM pg_namespace n WHERE {_USER_SCHEMAS}
UNION ALL
SELECT 'relation ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       coalesce(c.relacl::text, '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER_SCHEMAS}
UNION ALL
SELECT 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '('
       || pg_get_function_identity_arguments(p.oid) || ')', coalesce(p.proacl::text, '')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_SCHEMAS}
UNION ALL
SELECT 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname),
       coalesce(t.typacl::text, '')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype IN ('b', 'd', 'e', 'r', 'm') AND t.typcategory <> 'A' AND {_USER_SCHEMAS}
"""

_RELATIONS = f"""
SELECT n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'S') AND {_USER_SCHEMAS}
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class DatabaseState:
    """Everything the proof compares, of one database."""

    snapshot: Snapshot
    acls: dict[str, str]
    rows: dict[str, list[str]]
    sequences: dict[str, tuple[Any, ...]]


def capture_state(conn: psycopg.Connection[Any]) -> DatabaseState:
    """Read the state of the database behind ``conn`` (autocommit; nothing is changed).

    Every name is schema-qualified in the query itself, so the state does not depend on the
    ``search_path`` the last migration left behind."""
    snapshot = take_snapshot(conn)
    acls = {name: acl for name, acl in conn.execute(_ACLS).fetchall()}
    rows: dict[str, list[str]] = {}
    sequences: dict[str, tuple[Any, ...]] = {}
    for schema, name, kind in conn.execute(_RELATIONS).fetchall():
        label = f"{schema}.{name}"
        ident = sql.Identifier(schema, name)
        if kind == "S":
            found = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(ident))
            sequences[label] = tuple(found.fetchone() or ())
        else:
            # ORDER BY the rows' own text: the comparison ignores the order rows were written in.
            query = sql.SQL("SELECT to_jsonb(t)::text COLLATE \"C\" AS r FROM {} AS t ORDER BY 1")
            rows[label] = [r for (r,) in conn.execute(query.format(ident)).fetchall()]
    return DatabaseState(snapshot, acls, rows, sequences)


def compare_states(expected: DatabaseState, actual: DatabaseState, *,
                   default_schema: str | None = None) -> list[str]:
    """The differences from ``expected`` (the replay) to ``actual`` (the squash), as lines
    a user can read; empty when the two are the same."""
    out: list[str] = []
    differences = diff_snapshots(expected.snapshot, actual.snapshot,
                                 default_schema=default_schema)
    if differences:
        out.append(render_differences(
            differences, "after the squashed file, compared with the replayed migrations"))
    for name in sorted(expected.acls.keys() | actual.acls.keys()):
        before, after = expected.acls.get(name), actual.acls.get(name)
        if before != after:
            out.append(f"privileges of {name}: {before or 'none'} after the migrations, "
                       f"{after or 'none'} after the squashed file")
    for name in sorted(expected.sequences.keys() | actual.sequences.keys()):
        before_seq, after_seq = expected.sequences.get(name), actual.sequences.get(name)
        if before_seq != after_seq:
            out.append(f"sequence {name}: (last_value, is_called) {before_seq} after the "
                       f"migrations, {after_seq} after the squashed file")
    for name in sorted(expected.rows.keys() | actual.rows.keys()):
        out.extend(_row_differences(name, expected.rows.get(name, []),
                                    actual.rows.get(name, [])))
    return out


def _row_differences(table: str, before: list[str], after: list[str]) -> list[str]:
    if before == after:
        return []
    missing = sorted(set(before) - set(after))
    extra = sorted(set(after) - set(before))
    lines = [f"rows of {table}: {len(before)} after the migrations, {len(after)} after the "
             "squashed file"]
    lines += [f"  missing: {row}" for row in missing[:ROW_SAMPLE]]
    lines += [f"  extra:   {row}" for row in extra[:ROW_SAMPLE]]
    hidden = len(missing) + len(extra) - min(len(missing), ROW_SAMPLE) - min(len(extra),
                                                                              ROW_SAMPLE)
    if hidden > 0:
        lines.append(f"  ... and {hidden} more")
    return ["\n".join(lines)]
