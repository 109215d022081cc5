"""Rows in the tables before each up of the round-trip, and what up then down did to them.

An empty table hides the defects that matter in production: ``ADD COLUMN ... NOT NULL`` without
a default, ``SET NOT NULL``, a new UNIQUE or CHECK constraint, a type change without a cast or a
foreign key all pass on an empty table and fail on the first row. So before each up every empty
table of the database is given a few rows, generated from the catalogue (types, NOT NULL,
defaults, identity, enum labels, foreign keys filled in dependency order), or first from the
team's fixture ``migrations/testdata/<version>.sql`` when there is one. The values are derived
from the migration's id, so a failure reproduces. A table that cannot be filled (a CHECK the
generator cannot satisfy, a NOT NULL self reference) is noted, never an error.

The same rows let the round-trip see a down that loses data: :func:`capture_rows` fingerprints
every table's row count and column values before up, :func:`lost_rows` compares after down.
"""

from __future__ import annotations

import functools
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

__all__ = ["ROWS_PER_TABLE", "SeedResult", "seed_tables", "capture_rows", "lost_rows",
           "testdata_file", "truncate_tables", "RowPrint", "ROWS_COMPARED", "RowCapture",
           "INVALID_INDEXES", "SeedTable", "COLUMNS", "FOREIGN_KEYS", "read_catalogue",
           "tables_of"]

#: Rows given to each empty table: enough for a UNIQUE to bite, few enough to cost nothing.
ROWS_PER_TABLE = 3

#: The tables of the schemas first (a materialized CTE), then their columns by index: left to
#: itself the planner reads every column of the database, catalogue's included, and filters
#: the schemas last (2.5 ms against 0.7 ms on the benchmark repository).
COLUMNS = """
WITH c AS MATERIALIZED (
    SELECT c.oid, n.nspname, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s))
SELECT c.oid::int, c.nspname, c.relname, a.attname, a.attnotnull,
       -- a default counts unless the column is unique and the default is no sequence: every
       -- row would get the same value (DEFAULT '' under a UNIQUE), so it is generated instead
       a.atthasdef AND NOT (
           EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique
                   AND a.attnum = ANY(i.indkey))
           AND COALESCE((SELECT pg_get_expr(d.adbin, d.adrelid) NOT LIKE 'nextval(%%'
                         FROM pg_attrdef d WHERE d.adrelid = c.oid AND d.adnum = a.attnum),
                        false)),
       a.attidentity <> '' OR a.attgenerated <> '',
       COALESCE(bt.typcategory, t.typcategory)::text, COALESCE(bt.typname, t.typname)::text,
       a.atttypmod,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e
             WHERE e.enumtypid = COALESCE(bt.oid, t.oid) ORDER BY e.enumsortorder)
FROM c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
ORDER BY c.nspname, c.relname, a.attnum
"""

FOREIGN_KEYS = """
SELECT c.conrelid::int, c.confrelid::int, rn.nspname, r.relname, a.attname, ra.attname
FROM pg_constraint c
JOIN pg_class r ON r.oid = c.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(col, refcol)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.refcol
WHERE c.contype = 'f' AND c.connamespace IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%s))
"""


#: The INVALID indexes (``pg_index.indisvalid = false``) of the schemas, qualified and quoted
#: as SQL wants them; read with the catalogue, in the same message, before each up.
INVALID_INDEXES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = ANY(%s) ORDER BY 1
"""


@dataclass
class _Column:
    name: str
    not_null: bool
    has_default: bool
    generated: bool
    category: str
    type_name: str
    typmod: int
    labels: list[str]
    #: ``(schema, table, column)`` this column references, if it is part of a foreign key.
    references: tuple[str, str, str] | None = None


@dataclass
class SeedTable:
    """A table as seeding reads it. :class:`~pytest_migorch.roundtrip.seed_catalogue.
    SeedCatalogue` keeps these from one migration to the next: never changed once read."""

    oid: int
    schema: str
    name: str
    columns: list[_Column] = field(default_factory=list)
    parents: set[int] = field(default_factory=set)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass
class SeedResult:
    """What seeding did: rows given to each table, and the tables it could not fill (why)."""

    filled: dict[str, int] = field(default_factory=dict)
    unfilled: dict[str, str] = field(default_factory=dict)
    fixture: Path | None = None
    #: The tables as the catalogue had them, for :func:`capture_rows` to reuse.
    tables: list[SeedTable] = field(default_factory=list)
    #: The INVALID indexes before the up (:data:`INVALID_INDEXES`), read with the tables.
    invalid_indexes: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        out = []
        if self.fixture is not None:
            out.append(f"rows loaded from {self.fixture.name} before up")
        if self.filled:
            out.append("generated rows before up: " + ", ".join(
                f"{table} {count}" for table, count in sorted(self.filled.items())))
        for table, why in sorted(self.unfilled.items()):
            out.append(f"could not fill {table} with generated rows: {why}")
        return out


def testdata_file(up_file: Path, version: int) -> Path | None:
    """The team's fixture for this migration: ``migrations/testdata/<version>.sql``."""
    directory = up_file.parent
    if directory.name != "migrations":  # an environment directory: migrations/<env>/
        directory = directory.parent
    path = directory / "testdata" / f"{version}.sql"
    return path if path.is_file() else None


def seed_tables(conn: psycopg.Connection[Any], schemas: list[str], seed_text: str,
                fixture: Path | None = None, catalogue: CatalogueReader | None = None,
                ) -> SeedResult:
    """Load ``fixture`` (if any), then give every still-empty table of ``schemas`` a few
    generated rows. ``conn`` is in autocommit: a table's rows are one statement, and when a
    constraint refuses it each row is its own, so one refused row costs only that table's
    remaining rows. ``catalogue`` reads the tables (default :func:`read_catalogue`; the
    round-trip's :class:`~pytest_migorch.roundtrip.seed_catalogue.SeedCatalogue` re-reads
    only what changed), told whether the fixture ran."""
    result = SeedResult(fixture=fixture)
    if fixture is not None:
        conn.execute(fixture.read_text(encoding="utf-8").encode(), prepare=False)
    seed = zlib.crc32(seed_text.encode()) % 7
    result.tables, result.invalid_indexes = (
        catalogue(conn, schemas, fixture_ran=fixture is not None) if catalogue is not None
        else read_catalogue(conn, schemas))
    empty = _empty_tables(conn, result.tables)
    for table in _in_dependency_order(result.tables):
        if table.oid not in empty:
            continue
        inserted, why = _fill(conn, table, seed)
        if inserted:
            result.filled[table.qualified] = inserted
        if why is not None:
            result.unfilled[table.qualified] = why
    return result


class CatalogueReader(Protocol):
    """Reads the tables and INVALID indexes of ``schemas`` as :func:`read_catalogue` does."""

    def __call__(self, conn: psycopg.Connection[Any], schemas: list[str], *,
                 fixture_ran: bool) -> tuple[list[SeedTable], list[str]]: ...


def _empty_tables(conn: psycopg.Connection[Any], tables: list[SeedTable]) -> set[int]:
    """The oids of the tables without a row, in one query for all."""
    if not tables:
        return set()
    found = conn.execute(sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}::int WHERE NOT EXISTS (SELECT FROM {})").format(
            sql.Literal(t.oid), t.identifier) for t in tables)).fetchall()
    return {row[0] for row in found}


def _read_tables(conn: psycopg.Connection[Any], schemas: list[str]) -> list[SeedTable]:
    return read_catalogue(conn, schemas)[0]


def read_catalogue(conn: psycopg.Connection[Any], schemas: list[str],
                    ) -> tuple[list[SeedTable], list[str]]:
    """The tables and the INVALID indexes: three queries in one message (pipeline), so the
    round-trip pays one wait for the server where it paid three."""
    with conn.pipeline():
        queries = [conn.execute(q, [schemas], prepare=True)
                   for q in (COLUMNS, FOREIGN_KEYS, INVALID_INDEXES)]
    columns, keys, invalid = (cursor.fetchall() for cursor in queries)
    return tables_of(columns, keys), [row[0] for row in invalid]


def tables_of(columns: list[Any], keys: list[Any]) -> list[SeedTable]:
    tables: dict[int, SeedTable] = {}
    for oid, schema, name, column, *rest in columns:
        table = tables.setdefault(oid, SeedTable(oid, schema, name))
        table.columns.append(_Column(column, *rest[:7]))
    for child, parent, schema, name, column, refcol in keys:
        if child not in tables:
            continue
        if parent != child:
            tables[child].parents.add(parent)
        for col in tables[child].columns:
            if col.name == column:
                col.references = (schema, name, refcol)
    return list(tables.values())


def _in_dependency_order(tables: list[SeedTable]) -> list[SeedTable]:
    """Referenced tables first; a cycle is broken by taking the rest in catalogue order."""
    pending = {t.oid: t for t in tables}
    ordered: list[SeedTable] = []
    while pending:
        ready = [t for t in pending.values() if not (t.parents & pending.keys())]
        for table in ready or list(pending.values()):
            ordered.append(pending.pop(table.oid))
    return ordered


def _fill(conn: psycopg.Connection[Any], table: SeedTable, seed: int) -> tuple[int, str | None]:
    """Insert the rows, all in one statement first; when it is refused, row by row, a refused
    row retried with its nullable columns left NULL. A table that references itself is filled
    row by row at once: a row's reference reads the rows inserted before it."""
    if not any(c.references is not None and c.references[:2] == (table.schema, table.name)
               for c in table.columns):
        try:
            conn.execute(_insert_all(table, seed))
            return ROWS_PER_TABLE, None
        except psycopg.Error:
            pass  # a constraint refused some row: find which, row by row
    inserted = 0
    for row in range(ROWS_PER_TABLE):
        error: str | None = None
        for sparse in (False, True):
            try:
                conn.execute(_insert(table, row, seed, sparse=sparse))
                inserted += 1
                error = None
                break
            except psycopg.Error as exc:
                error = (exc.diag.message_primary or str(exc)).strip()
        if error is not None:
            return inserted, error
    return inserted, None


def _insert(table: SeedTable, row: int, seed: int, *, sparse: bool) -> sql.Composed:
    names: list[sql.Composable] = []
    values: list[sql.Composable] = []
    for column in table.columns:
        if column.generated or column.has_default or (sparse and not column.not_null):
            continue
        value = _value(column, row, seed)
        if value is None:
            continue
        names.append(sql.Identifier(column.name))
        values.append(value)
    if not names:
        return sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table.identifier)
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        table.identifier, sql.SQL(", ").join(names), sql.SQL(", ").join(values))


def _insert_all(table: SeedTable, seed: int) -> sql.Composed:
    """The :data:`ROWS_PER_TABLE` rows of :func:`_insert` (not sparse) in one statement."""
    columns = [c for c in table.columns if not (c.generated or c.has_default)]
    rows = [[_value(c, row, seed) for c in columns] for row in range(ROWS_PER_TABLE)]
    kept = [i for i in range(len(columns)) if rows[0][i] is not None]
    if not kept:
        return sql.SQL("; ").join(sql.SQL("INSERT INTO {} DEFAULT VALUES").format(
            table.identifier) for _ in range(ROWS_PER_TABLE))
    return sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
        table.identifier, sql.SQL(", ").join(sql.Identifier(columns[i].name) for i in kept),
        sql.SQL(", ").join(sql.SQL("({})").format(sql.SQL(", ").join(
            row[i] if row[i] is not None else sql.SQL("NULL") for i in kept)) for row in rows))


def _value(column: _Column, row: int, seed: int) -> sql.Composable | None:
    """A value for ``column`` in row ``row``, or None to leave the column to NULL."""
    if column.references is not None:
        schema, name, refcol = column.references
        return sql.SQL("(SELECT {} FROM {} ORDER BY ctid LIMIT 1 OFFSET {} % GREATEST("
                       "(SELECT count(*) FROM {}), 1))").format(
            sql.Identifier(refcol), sql.Identifier(schema, name), sql.Literal(row),
            sql.Identifier(schema, name))
    text = _text(column, row, row + 1 + seed)
    return None if text is None else sql.Literal(text)


def _text(column: _Column, row: int, n: int) -> str | None:
    """The value as text, which PostgreSQL casts to the column's type (sent untyped)."""
    category, name = column.category, column.type_name
    if column.labels:
        return column.labels[row % len(column.labels)]
    if category == "N":
        return str(n)
    if category == "S":
        limit = column.typmod - 4 if column.typmod > 4 else 0
        text = f"m{n}"
        return text[-limit:] if limit else text
    if category == "B":
        return "true" if row % 2 == 0 else "false"
    if category == "D":
        return f"12:00:{n:02d}" if name in ("time", "timetz") else f"2024-01-{n:02d} 12:00:00"
    if category == "T":
        return f"{n} days"
    if category == "I":
        return f"10.0.0.{n}"
    if category == "A":
        return "{}"
    return {"uuid": f"00000000-0000-4000-8000-{n:012d}", "json": f'{{"n": {n}}}',
            "jsonb": f'{{"n": {n}}}', "bytea": f"\\x{n:02x}"}.get(name)


def truncate_tables(conn: psycopg.Connection[Any], schemas: list[str]) -> None:
    """Empty every table of ``schemas``: the state in which an up is re-run to prove that only
    the rows made it fail."""
    tables = [t.identifier for t in _read_tables(conn, schemas)]
    if tables:
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(tables)))


#: Rows of a table kept to compare, beyond which only the row count is compared.
ROWS_COMPARED = 10_000

#: ``table -> (row count, column names, rows as tuples of md5s of each value)``; the rows are
#: empty when the table has more than :data:`ROWS_COMPARED`.
RowPrint = dict[str, tuple[int, tuple[str, ...], list[tuple[str | None, ...]]]]


@functools.lru_cache(maxsize=4096)
def _capture_part(schema: str, name: str, names: tuple[str, ...]) -> str:
    """A table's part of :class:`RowCapture`'s query after its number, composed once per
    table shape: composing it cost more than running it, every migration, for tables that
    mostly did not change."""
    return sql.SQL("count(*) OVER (), ARRAY[{values}] FROM {table} LIMIT {limit}").format(
        table=sql.Identifier(schema, name), limit=sql.Literal(ROWS_COMPARED + 1),
        values=sql.SQL(", ").join(sql.SQL("md5({}::text)").format(sql.Identifier(n))
                                  for n in names)).as_string(None)


class RowCapture:
    """The query that reads every table's row count and rows (a hash of each value, columns
    in name order, so a re-added column that comes last compares the same), one query for all
    tables, composed once: the same before the up and after a clean down."""

    def __init__(self, conn: psycopg.Connection[Any], tables: list[SeedTable]) -> None:
        self.tables = [t for t in tables if t.columns]
        self.names = [tuple(sorted(c.name for c in t.columns)) for t in self.tables]
        parts = [f"(SELECT {number}, {_capture_part(table.schema, table.name, names)})"
                 for number, (table, names) in enumerate(zip(self.tables, self.names))]
        self.query = " UNION ALL ".join(parts)

    def capture(self, conn: psycopg.Connection[Any]) -> RowPrint:
        return self.receive(self.send(conn))

    def send(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any] | None:
        """Send the query (in a pipeline, with others); its cursor for :meth:`receive`."""
        return conn.execute(self.query.encode(), prepare=False) if self.query else None

    def receive(self, cursor: psycopg.Cursor[Any] | None) -> RowPrint:
        found: RowPrint = {}
        if cursor is None:
            return found
        for number, count, row in cursor.fetchall():
            _, _, rows = found.setdefault(self.tables[number].qualified,
                                          (count, self.names[number], []))
            if count <= ROWS_COMPARED:
                rows.append(tuple(row))
        return found


def capture_rows(conn: psycopg.Connection[Any], schemas: list[str],
                 tables: list[SeedTable] | None = None) -> RowPrint:
    """:class:`RowCapture` of ``tables`` (read from the catalogue when not given)."""
    return RowCapture(conn, tables if tables is not None else _read_tables(conn, schemas)
                      ).capture(conn)


def lost_rows(before: RowPrint, after: RowPrint) -> list[str]:
    """What up then down lost of the rows present before the up, one line per table: rows
    gone, or values no longer there. Rows the up (or down) added are no loss."""
    lost = []
    for table, (count, names, rows) in sorted(before.items()):
        now_count, now_names, now_rows = after.get(table, (0, names, []))
        if now_count < count:
            lost.append(f"{count - now_count} of {count} rows of {table} are gone")
            continue
        if not rows or not now_rows or now_names != names:
            continue  # too many rows to compare, or no longer the same columns (DB003's)
        if now_rows == rows:
            continue  # the same rows in the same order: nothing to count (most tables)
        missing = Counter(rows) - Counter(now_rows)
        # A value is lost when it was not NULL before: a NULL the up filled in and the down
        # kept (a backfill) destroys nothing.
        changed = [f"{table}.{name}" for i, name in enumerate(names)
                   if Counter(r[i] for r in missing if r[i] is not None)
                   - Counter(r[i] for r in now_rows)]
        if changed:
            lost.append(f"values of {', '.join(changed)} present before the up are gone "
                        f"({sum(missing.values())} of {count} rows of {table} differ)")
    return lost
