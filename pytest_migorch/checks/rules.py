"""The risk rule catalogue and the pass that finds which rules a migration's statements fire.

Each :class:`RiskRule` pairs a catalogue :class:`~pytest_migorch.findings.Rule` with the
:class:`~pytest_migorch.model.RiskLevel` it implies (SPEC section 3): ``high`` for what destroys
data, breaks running code or blocks a table for a time that grows with it; ``medium`` for
changing some existing rows; ``low`` for catalog-only changes. Hygiene rules (``level=None``)
warn without raising the derived level. A few rules only classify (``reported=False``: an
UPDATE with WHERE makes a migration medium but is not a problem to warn about).

Rules look at the facts of :mod:`pytest_migorch.sql.facts`, statement by statement and in file
order, and exempt objects created earlier in the same migration: PostgreSQL's lock and rewrite
costs only matter for tables that already hold data. The hygiene rules squawk users know (type
choices, breaking drops, timeouts, re-runnable files) live in
:mod:`pytest_migorch.checks.rules_hygiene`; :data:`RISK_RULES` and :func:`evaluate` cover both.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_migorch.checks import rules_hygiene as hygiene
from pytest_migorch.checks.rule_base import Hit, RiskRule, State, risk_rule
from pytest_migorch.findings import Rule, Severity
from pytest_migorch.model import RiskLevel
from pytest_migorch.sql.analysis import StatementAnalysis
from pytest_migorch.sql.cursor import display_name
from pytest_migorch.sql.facts import Op, OpKind

__all__ = ["RiskRule", "Hit", "RISK_RULES", "RULES", "by_code", "evaluate", "risk_rule"]

HIGH, MEDIUM, LOW = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW


_risk = risk_rule  # the short name keeps the catalogue below readable


DROP_SCHEMA = _risk(
    "RSK001", "drop-schema", HIGH,
    "Dropping a schema destroys every table and all data in it.",
    "Make sure nothing uses the schema any more and that its data is backed up.",
    atlas="DS101")
DROP_TABLE = _risk(
    "RSK002", "drop-table", HIGH,
    "Dropping a table destroys its data and breaks code that still uses it.",
    "Stop using the table in a release first; drop it in a later migration.",
    squawk="ban-drop-table", atlas="DS102")
DROP_COLUMN = _risk(
    "RSK003", "drop-column", HIGH,
    "Dropping a column destroys its data and breaks code that still reads or writes it.",
    "Deploy code that no longer uses the column first; drop it in a later migration.",
    squawk="ban-drop-column", atlas="DS103")
CHANGE_TYPE = _risk(
    "RSK004", "change-column-type", HIGH,
    "Changing a column's type rewrites the table and its indexes under an ACCESS EXCLUSIVE lock "
    "(unless the change is binary-compatible, e.g. varchar(n) to a larger n or to text).",
    "Add a new column, backfill it in batches, switch the code, then drop the old one.",
    squawk="changing-column-type", atlas="PG301")
SET_NOT_NULL = _risk(
    "RSK005", "set-not-null", HIGH,
    "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock.",
    "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ "
    "skips the scan) and drop the check.",
    squawk="adding-not-nullable-field", atlas="PG303")
ADD_REQUIRED_COLUMN = _risk(
    "RSK006", "add-required-column", HIGH,
    "A NOT NULL column without a default fails on a table with rows and breaks inserts of code "
    "that does not set it.",
    "Give the column a default, or add it nullable, backfill, then set NOT NULL.",
    squawk="adding-required-field", atlas="MF103")
ADD_COLUMN_REWRITE = _risk(
    "RSK007", "add-column-rewrite", HIGH,
    "Adding a column with a volatile default (random(), clock_timestamp(), a serial, an identity "
    "or a stored generated column) rewrites the whole table under an ACCESS EXCLUSIVE lock.",
    "Add the column without the default (or with a constant one), backfill in batches, then set "
    "the default.",
    squawk="adding-field-with-default", atlas="PG302")
CREATE_INDEX = _risk(
    "RSK008", "create-index-non-concurrently", HIGH,
    "CREATE INDEX without CONCURRENTLY blocks all writes to an existing table while the index "
    "is built.",
    "Use CREATE INDEX CONCURRENTLY in a migration marked \"transactional\": false.",
    squawk="require-concurrent-index-creation", atlas="PG101")
DROP_INDEX = _risk(
    "RSK009", "drop-index-non-concurrently", LOW,
    "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table; it is short, "
    "but queues behind running queries and blocks everything behind it.",
    "Use DROP INDEX CONCURRENTLY in a migration marked \"transactional\": false.",
    squawk="require-concurrent-index-deletion", atlas="PG102")
NEEDS_NO_TRANSACTION = _risk(
    "RSK010", "concurrently-in-transaction", None,
    "CONCURRENTLY (and VACUUM) cannot run inside a transaction, but this migration runs in one.",
    "Mark the migration \"transactional\": false in dependencies.json and keep such a statement "
    "in a migration of its own.",
    severity=Severity.ERROR,
    squawk="ban-concurrent-index-creation-in-transaction", atlas="PG103")
FOREIGN_KEY = _risk(
    "RSK011", "foreign-key-without-not-valid", HIGH,
    "Adding a foreign key scans the table to validate it while blocking writes to both tables.",
    "Add it with NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
    squawk="adding-foreign-key-constraint", atlas="PG306")
CHECK_CONSTRAINT = _risk(
    "RSK012", "check-without-not-valid", HIGH,
    "Adding a CHECK constraint scans the whole table under an ACCESS EXCLUSIVE lock.",
    "Add it with NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
    squawk="constraint-missing-not-valid", atlas="PG305")
UNIQUE_CONSTRAINT = _risk(
    "RSK013", "add-unique-constraint", HIGH,
    "Adding a UNIQUE, PRIMARY KEY or EXCLUDE constraint builds an index under an ACCESS "
    "EXCLUSIVE lock, blocking reads and writes for the whole build.",
    "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX.",
    squawk="disallowed-unique-constraint", atlas="PG104/PG105")
RENAME_TABLE = _risk(
    "RSK014", "rename-table", HIGH,
    "Renaming a table or view (or moving it to another schema) breaks running code that uses "
    "the old name.",
    "Create the new name alongside (e.g. a view), switch the code, then remove the old name.",
    squawk="renaming-table", atlas="BC101")
RENAME_COLUMN = _risk(
    "RSK015", "rename-column", HIGH,
    "Renaming a column breaks running code that uses the old name.",
    "Add the new column, write both, switch reads, then drop the old column.",
    squawk="renaming-column", atlas="BC102")
TRUNCATE = _risk(
    "RSK016", "truncate", HIGH,
    "TRUNCATE deletes every row of an existing table.",
    "Make sure the data is not needed (or backed up); prefer DELETE with a WHERE.")
TRUNCATE_CASCADE = _risk(
    "RSK017", "truncate-cascade", HIGH,
    "TRUNCATE ... CASCADE also empties every table that references this one.",
    "Truncate the referencing tables explicitly so the migration says what it deletes.",
    squawk="ban-truncate-cascade")
UPDATE_ALL = _risk(
    "RSK018", "update-without-where", HIGH,
    "UPDATE without WHERE rewrites every row of the table under row locks.",
    "Add a WHERE clause, or backfill in batches outside the migration.")
DELETE_ALL = _risk(
    "RSK019", "delete-without-where", HIGH,
    "DELETE without WHERE removes every row of the table.",
    "Add a WHERE clause (or use TRUNCATE deliberately).")
CHANGES_ROWS = _risk(
    "RSK020", "changes-existing-rows", MEDIUM,
    "UPDATE or DELETE with WHERE, MERGE or INSERT ... ON CONFLICT DO UPDATE changes existing rows.",
    "Declare risk_level medium (or higher) for this migration.",
    reported=False)
VACUUM_FULL = _risk(
    "RSK021", "vacuum-full", HIGH,
    "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock.",
    "Use pg_repack (or plain VACUUM) outside migrations.",
    squawk="prefer-repack")
CLUSTER = _risk(
    "RSK022", "cluster", HIGH,
    "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock.",
    "Use pg_repack outside migrations.",
    squawk="prefer-repack")
LOCK_TABLE = _risk(
    "RSK023", "lock-table", HIGH,
    "LOCK TABLE in a mode that blocks writes holds that lock until the migration commits.",
    "Remove the explicit lock, or keep the rest of the migration short and set lock_timeout.")
REINDEX = _risk(
    "RSK024", "reindex-non-concurrently", HIGH,
    "REINDEX without CONCURRENTLY blocks writes (and reads using the index) during the rebuild.",
    "Use REINDEX CONCURRENTLY in a migration marked \"transactional\": false.",
    squawk="require-concurrent-reindex")
REWRITE_TABLE = _risk(
    "RSK025", "rewrite-table", HIGH,
    "SET LOGGED/UNLOGGED, SET TABLESPACE or SET ACCESS METHOD rewrites the whole table under an "
    "ACCESS EXCLUSIVE lock.",
    "Run it in a maintenance window, outside the normal deploy.")
DROP_CASCADE = _risk(
    "RSK026", "drop-cascade", HIGH,
    "DROP ... CASCADE also drops everything that depends on the object: columns of a type, "
    "triggers of a function, views on a view.",
    "Drop the dependent objects explicitly, then drop this one without CASCADE.")
LOCK_TIMEOUT = _risk(
    "RSK027", "missing-lock-timeout", None,
    "A statement takes a lock on an existing table with no lock_timeout set earlier in the "
    "migration: waiting behind a long query, it blocks every query queued behind it.",
    "Start the migration with SET lock_timeout = '5s' (and retry the deploy if it times out).",
    squawk="require-lock-timeout")
RISK_TOO_LOW = _risk(
    "RSK028", "risk-level-too-low", None,
    "The declared risk_level is lower than what the SQL does.",
    "Raise risk_level in dependencies.json, or change the SQL so the rule no longer applies.",
    severity=Severity.ERROR)

RISK_RULES: tuple[RiskRule, ...] = (
    DROP_SCHEMA, DROP_TABLE, DROP_COLUMN, CHANGE_TYPE, SET_NOT_NULL, ADD_REQUIRED_COLUMN,
    ADD_COLUMN_REWRITE, CREATE_INDEX, DROP_INDEX, NEEDS_NO_TRANSACTION, FOREIGN_KEY,
    CHECK_CONSTRAINT, UNIQUE_CONSTRAINT, RENAME_TABLE, RENAME_COLUMN, TRUNCATE, TRUNCATE_CASCADE,
    UPDATE_ALL, DELETE_ALL, CHANGES_ROWS, VACUUM_FULL, CLUSTER, LOCK_TABLE, REINDEX,
    REWRITE_TABLE, DROP_CASCADE, LOCK_TIMEOUT, RISK_TOO_LOW, *hygiene.HYGIENE_RULES,
)
RULES: tuple[Rule, ...] = tuple(r.rule for r in RISK_RULES)
_BY_CODE = {r.code: r for r in RISK_RULES}


def by_code(code: str) -> RiskRule | None:
    return _BY_CODE.get(code)


#: Ops that lock an existing table in a mode that blocks writes (for the lock_timeout rule).
_LOCKING_OPS: frozenset[OpKind] = frozenset({
    OpKind.ADD_COLUMN, OpKind.DROP_COLUMN, OpKind.ALTER_COLUMN_TYPE, OpKind.SET_NOT_NULL,
    OpKind.DROP_NOT_NULL, OpKind.SET_DEFAULT, OpKind.DROP_DEFAULT, OpKind.ADD_CONSTRAINT,
    OpKind.DROP_CONSTRAINT, OpKind.RENAME_TABLE, OpKind.RENAME_COLUMN, OpKind.RENAME_CONSTRAINT,
    OpKind.SET_SCHEMA, OpKind.REWRITE_TABLE, OpKind.ALTER_TABLE_OTHER, OpKind.DROP_TABLE,
    OpKind.TRUNCATE, OpKind.CREATE_TRIGGER, OpKind.DROP_TRIGGER, OpKind.CLUSTER, OpKind.REFERENCES,
    OpKind.ATTACH_PARTITION, OpKind.RENAME_VIEW, OpKind.RENAME_MATERIALIZED_VIEW,
})


def evaluate(statements: Iterable[StatementAnalysis], *, schema: str, transactional: bool,
             lock_timeout_assumed: bool = False,
             existing: frozenset[tuple[str, str]] | None = None) -> list[Hit]:
    """Every rule hit of a migration's (up) statements, in file order.

    ``lock_timeout_assumed`` means the runner sets its own timeouts: it turns off both the
    missing lock_timeout and the missing statement_timeout rule. ``existing`` are the tables the
    schema model knows existed before the migration: a ``CREATE TABLE IF NOT EXISTS`` of one of
    them does not make it new, so the rules about locking and rewriting a table with data still
    apply to it.
    """
    state = State(schema=schema, transactional=transactional, lock_timeout=lock_timeout_assumed,
                  statement_timeout=lock_timeout_assumed, existing=existing)
    hits: list[Hit] = []
    analysed = [s for s in statements if s.analysed]
    for position, statement in enumerate(analysed):
        state.at_last_statement = position == len(analysed) - 1
        hits += _statement_hits(statement, state)
    return hits


def _statement_hits(statement: StatementAnalysis, state: State) -> list[Hit]:
    """The hits of one statement, updating ``state`` with what it did."""
    hits: list[Hit] = []
    locked: list[str] = []
    scanned: list[str] = []
    for op in statement.ops:
        found = _op_rules(op, state, state.transactional) + hygiene.op_hits(op, state)
        hits += [Hit(rule, statement, message) for rule, message in found]
        if _takes_lock(op, state):
            locked.append(_locked_name(op))
        if hygiene.scans(op, state):
            scanned.append(display_name(op.schema, op.name or "?"))
        _record(op, state)
        hygiene.record(op, state)
    hygiene.record_objects(statement, state)
    if locked and not state.lock_timeout:
        tables = ", ".join(dict.fromkeys(locked))
        hits.append(Hit(LOCK_TIMEOUT, statement,
                        f"{statement.kind} locks {tables} with no lock_timeout set before it"))
    for rule, message in hygiene.statement_hits(statement, state, scanned):
        hits.append(Hit(rule, statement, message))
    return hits


def _locked_name(op: Op) -> str:
    if op.name is None:
        return "a table"
    name = display_name(op.schema, op.name)
    is_index = op.op is OpKind.DROP_INDEX or op.op is OpKind.REINDEX and op.detail == "index"
    return f"the table of index {name}" if is_index else name


def _record(op: Op, state: State) -> None:
    """Remember what the statement created (and whether lock_timeout is now set)."""
    if op.op is OpKind.CREATE_TABLE:
        if not state.existed(state.key(op)):
            state.created_tables.add(state.key(op))
    elif op.op is OpKind.DROP_TABLE:
        state.dropped_tables.add(state.key(op))
    elif op.op is OpKind.CREATE_INDEX and op.detail:
        state.created_indexes.add((op.schema or state.schema, op.detail))
    elif op.op is OpKind.CREATE_SCHEMA and op.name:
        state.created_schemas.add(op.name)
    elif op.op is OpKind.RENAME_TABLE and state.is_new(op) and op.detail:
        state.created_tables.add((op.schema or state.schema, op.detail))
    elif op.op is OpKind.SET and op.name == "lock_timeout":
        state.lock_timeout = _timeout_value_set(op.detail)


def _timeout_value_set(value: str | None) -> bool:
    text = (value or "").strip().strip("'\"").lower()
    return text not in ("", "0", "default", "0s", "0ms")


def _takes_lock(op: Op, state: State) -> bool:
    if op.op in _LOCKING_OPS:
        return not state.is_new(op)
    if op.op in (OpKind.CREATE_INDEX, OpKind.REINDEX, OpKind.DETACH_PARTITION):
        return not op.has("concurrently") and not state.is_new(op)
    if op.op is OpKind.DROP_INDEX:
        key = (op.schema or state.schema, op.name or "")
        return not op.has("concurrently") and key not in state.created_indexes
    if op.op is OpKind.LOCK:
        return not op.has("weak") and not state.is_new(op)
    if op.op is OpKind.VACUUM:
        return op.has("full") and op.name is not None and not state.is_new(op)
    return False


def _op_rules(op: Op, state: State, transactional: bool) -> list[tuple[RiskRule, str]]:
    """The rules one operation fires, with a message naming what it does."""
    found: list[tuple[RiskRule, str]] = []
    if transactional and (op.has("concurrently") or op.op is OpKind.VACUUM and op.name is None):
        what = "VACUUM" if op.op is OpKind.VACUUM else f"{op.op.label} CONCURRENTLY"
        found.append((NEEDS_NO_TRANSACTION, f"{what} cannot run inside a transaction block, "
                                            "and this file runs in one"))
    table = display_name(op.schema, op.name) if op.name else "?"
    if op.op is OpKind.DROP_SCHEMA:
        if op.name not in state.created_schemas:
            found.append((DROP_SCHEMA, f"DROP SCHEMA {table} destroys every object in it"))
        return found
    if op.op is OpKind.DROP_INDEX:
        key = (op.schema or state.schema, op.name or "")
        if not op.has("concurrently") and key not in state.created_indexes:
            found.append((DROP_INDEX, f"DROP INDEX {table} without CONCURRENTLY"))
        return found
    if op.op is OpKind.DROP_OTHER:
        if op.has("cascade"):
            found.append((DROP_CASCADE, f"DROP {(op.detail or '').upper()} {table} CASCADE also "
                                        "drops what depends on it"))
        return found
    if op.op is OpKind.REINDEX:
        if not op.has("concurrently"):
            found.append((REINDEX, f"REINDEX {(op.detail or '').upper()} {table} without "
                                   "CONCURRENTLY"))
        return found
    if state.is_new(op) or op.name is None and op.op not in (OpKind.VACUUM, OpKind.CLUSTER):
        return found
    found.extend(_table_rules(op, table))
    return found


def _table_rules(op: Op, table: str) -> list[tuple[RiskRule, str]]:
    """Rules on an operation on a table that existed before the migration."""
    column = f"{table}.{display_name(None, op.column)}" if op.column else table
    simple: dict[OpKind, tuple[RiskRule, str]] = {
        OpKind.DROP_TABLE: (
            DROP_TABLE, f"DROP TABLE {table} destroys its data"),
        OpKind.DROP_COLUMN: (
            DROP_COLUMN, f"DROP COLUMN {column} destroys its data"),
        OpKind.ALTER_COLUMN_TYPE: (
            CHANGE_TYPE, f"changing the type of {column} to {op.detail} may "
            "rewrite the table"),
        OpKind.SET_NOT_NULL: (
            SET_NOT_NULL, f"SET NOT NULL on {column} scans the whole table"),
        OpKind.RENAME_TABLE: (
            RENAME_TABLE, f"renaming {table} to {op.detail} breaks code using the "
            "old name"),
        OpKind.RENAME_VIEW: (
            RENAME_TABLE, f"renaming view {table} to {op.detail} breaks code using "
            "the old name"),
        OpKind.RENAME_MATERIALIZED_VIEW: (
            RENAME_TABLE, f"renaming materialized view {table} breaks "
            "code using the old name"),
        OpKind.SET_SCHEMA: (
            RENAME_TABLE, f"moving {table} to schema {op.detail} breaks code using "
            "the old name"),
        OpKind.RENAME_COLUMN: (
            RENAME_COLUMN, f"renaming {column} to {op.detail} breaks code using "
            "the old name"),
        OpKind.CLUSTER: (
            CLUSTER, f"CLUSTER {table} rewrites the table" if op.name else
            "CLUSTER rewrites every previously clustered table"),
        OpKind.REWRITE_TABLE: (
            REWRITE_TABLE, f"{op.detail} rewrites {table}"),
    }
    if op.op in simple:
        return [simple[op.op]]
    handler = _TABLE_HANDLERS.get(op.op)
    return handler(op, table, column) if handler else []


def _add_column(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    found: list[tuple[RiskRule, str]] = []
    if op.has("rewrite") or op.has("volatile_default"):
        why = f"a {op.detail} column" if op.has("rewrite") else f"DEFAULT {op.detail}(), which " \
            "is volatile,"
        found.append((ADD_COLUMN_REWRITE, f"adding {column} as {why} rewrites the table"))
    if op.has("not_null") and not op.has("has_default"):
        found.append((ADD_REQUIRED_COLUMN, f"adding {column} NOT NULL without a default"))
    if op.has("foreign_key"):
        found.append((FOREIGN_KEY, f"adding {column} with REFERENCES validates a foreign key"))
    if op.has("check"):
        found.append((CHECK_CONSTRAINT, f"adding {column} with a CHECK scans the table"))
    if op.has("unique") or op.has("primary_key"):
        found.append((UNIQUE_CONSTRAINT, f"adding {column} as UNIQUE/PRIMARY KEY builds an "
                                         "index under an ACCESS EXCLUSIVE lock"))
    return found


def _add_constraint(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    kind = op.detail or ""
    label = kind.replace("_", " ").upper()
    if kind == "foreign_key" and not op.has("not_valid"):
        return [(FOREIGN_KEY, f"adding a FOREIGN KEY to {table} without NOT VALID")]
    if kind == "check" and not op.has("not_valid"):
        return [(CHECK_CONSTRAINT, f"adding a CHECK constraint to {table} without NOT VALID")]
    if kind in ("unique", "primary_key", "exclude") and not op.has("using_index"):
        return [(UNIQUE_CONSTRAINT, f"adding a {label} constraint to {table} builds an index "
                                    "under an ACCESS EXCLUSIVE lock")]
    return []


def _create_index(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    if op.has("concurrently"):
        return []
    name = f" {display_name(None, op.detail)}" if op.detail else ""
    return [(CREATE_INDEX, f"CREATE INDEX{name} on {table} without CONCURRENTLY")]


def _truncate(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    found = [(TRUNCATE, f"TRUNCATE {table} deletes every row")]
    if op.has("cascade"):
        found.append((TRUNCATE_CASCADE, f"TRUNCATE {table} CASCADE also empties the tables "
                                        "referencing it"))
    return found


def _update_delete(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    verb = op.op.label
    if op.has("where"):
        return [(CHANGES_ROWS, f"{verb} changes existing rows of {table}")]
    rule = UPDATE_ALL if op.op is OpKind.UPDATE else DELETE_ALL
    return [(rule, f"{verb} without WHERE changes every row of {table}")]


def _merge_insert(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    if op.op is OpKind.MERGE or op.has("on_conflict_update"):
        return [(CHANGES_ROWS, f"{op.op.label} may change existing rows of {table}")]
    return []


def _lock(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    if op.has("weak"):
        return []
    return [(LOCK_TABLE, f"LOCK TABLE {table} IN {(op.detail or '').upper()} MODE blocks writes "
                         "until the migration commits")]


def _vacuum(op: Op, table: str, column: str) -> list[tuple[RiskRule, str]]:
    if op.has("full") and op.name is not None:
        return [(VACUUM_FULL, f"VACUUM FULL {table} rewrites the table")]
    return []


_TABLE_HANDLERS = {
    OpKind.ADD_COLUMN: _add_column,
    OpKind.ADD_CONSTRAINT: _add_constraint,
    OpKind.CREATE_INDEX: _create_index,
    OpKind.TRUNCATE: _truncate,
    OpKind.UPDATE: _update_delete,
    OpKind.DELETE: _update_delete,
    OpKind.MERGE: _merge_insert,
    OpKind.INSERT: _merge_insert,
    OpKind.LOCK: _lock,
    OpKind.VACUUM: _vacuum,
}
