"""Hygiene rules: type choices, breaking changes for running clients, timeouts and re-runnable
files, the kinds of risk squawk users know (docs/sql-rules.md maps every squawk rule).

They warn and never raise the derived risk level (``level=None``), except dropping a database
(high: it destroys data) and detaching a partition without CONCURRENTLY (low, like a plain DROP
INDEX): most of them are advice whose cost depends on the code around the migration, and a
warning must never turn a correct ``risk_level`` into an error. :mod:`pytest_migorch.checks.rules`
calls them statement by statement, in file order, with the migration's running
:class:`~pytest_migorch.checks.rule_base.State`.
"""

from __future__ import annotations

import re

from pytest_migorch.checks.rule_base import RiskRule, State, risk_rule
from pytest_migorch.model import RiskLevel
from pytest_migorch.sql.analysis import StatementAnalysis
from pytest_migorch.sql.cursor import display_name
from pytest_migorch.sql.facts import Op, OpKind, Role

__all__ = ["HYGIENE_RULES", "op_hits", "statement_hits", "scans", "record", "record_objects"]

Found = list[tuple[RiskRule, str]]

DROP_CONSTRAINT = risk_rule(
    "RSK029", "drop-constraint", None,
    "Dropping a constraint removes a guarantee (uniqueness, a reference, a check) that running "
    "code may rely on.",
    "Make sure no code relies on it; to replace it, add the new constraint before dropping this "
    "one.", squawk="ban-drop-constraint")
DROP_OBJECT = risk_rule(
    "RSK030", "drop-object", None,
    "Dropping a view, function, type, sequence, domain or extension breaks running code that "
    "still uses it.",
    "Stop using the object in a release first; drop it in a later migration.",
    squawk="ban-drop-view, ban-drop-function, ban-drop-type, ban-drop-sequence, "
    "ban-drop-domain, ban-drop-extension")
DROP_DATABASE = risk_rule(
    "RSK031", "drop-database", RiskLevel.HIGH,
    "DROP DATABASE destroys a whole database; it cannot even run inside a transaction.",
    "Never drop databases from a migration; do it by hand, with a backup.",
    squawk="ban-drop-database")
RENAME_OBJECT = risk_rule(
    "RSK032", "rename-object", None,
    "Renaming an index breaks code and scripts that name it (index hints, REINDEX, monitoring).",
    "Check nothing refers to the index by name, then silence this with a reason.",
    squawk="renaming-object")
ALTER_IDENTITY = risk_rule(
    "RSK033", "drop-identity", None,
    "Dropping a column's identity removes its default: inserts of running code that leave the "
    "column out start failing.",
    "Deploy code that sets the column itself first, or keep the identity.",
    squawk="ban-alter-identity")
INT_KEY = risk_rule(
    "RSK034", "int-primary-key", None,
    "A primary key (or identity/serial column) of type integer or smallint runs out at 2^31 "
    "(2^15) rows; widening it later rewrites the table and every referencing one.",
    "Use bigint (bigint GENERATED ALWAYS AS IDENTITY) for keys.",
    squawk="prefer-bigint-over-int, prefer-bigint-over-smallint")
PREFER_IDENTITY = risk_rule(
    "RSK035", "serial-column", None,
    "serial columns own a separate sequence with its own permissions and dependencies; an "
    "identity column is the standard, simpler equivalent.",
    "Use bigint GENERATED ALWAYS AS IDENTITY (or BY DEFAULT) instead of serial.",
    squawk="prefer-identity")
CHAR_COLUMN = risk_rule(
    "RSK036", "char-column", None,
    "char(n) pads values with spaces and compares them ignoring the padding: almost always a "
    "mistake.",
    "Use text (with a CHECK on length if the length matters).",
    squawk="ban-char-field")
VARCHAR_LIMIT = risk_rule(
    "RSK037", "varchar-limit", None,
    "varchar(n) enforces a length that is costly to change later: shrinking it rewrites the "
    "table under an ACCESS EXCLUSIVE lock.",
    "Use text, with a CHECK (length(col) <= n) NOT VALID constraint if a limit is needed.",
    squawk="prefer-text-field")
TIMESTAMP_NO_TZ = risk_rule(
    "RSK038", "timestamp-without-time-zone", None,
    "timestamp (without time zone) drops the UTC offset, so the same instant reads differently "
    "in sessions with another TimeZone.",
    "Use timestamptz (timestamp with time zone).",
    squawk="prefer-timestamptz")
STATEMENT_TIMEOUT = risk_rule(
    "RSK039", "missing-statement-timeout", None,
    "A statement scans or rewrites an existing table while holding a lock, with no "
    "statement_timeout set earlier in the migration: on a larger table than expected it blocks "
    "the table for as long as it runs.",
    "Set statement_timeout at the top of the migration (longer than the expected duration), "
    "so an unexpectedly slow statement fails instead of blocking production.",
    squawk="require-statement-timeout")
ROBUST_STATEMENTS = risk_rule(
    "RSK040", "not-rerunnable", None,
    "A migration that runs outside a transaction keeps the statements that ran before a "
    "failure; this CREATE or DROP (not the file's last statement) fails when the deploy is "
    "retried.",
    "Write IF NOT EXISTS / IF EXISTS so the file can be re-run after a partial failure.",
    squawk="prefer-robust-stmts")
TRANSACTION_NESTING = risk_rule(
    "RSK041", "transaction-nesting", None,
    "A BEGIN inside a transaction the file already opened does not start a new one: "
    "PostgreSQL only warns, and the first COMMIT commits the work of both.",
    "Keep at most one BEGIN ... COMMIT block open at a time.",
    squawk="transaction-nesting")
DETACH_PARTITION = risk_rule(
    "RSK042", "detach-partition-non-concurrently", RiskLevel.LOW,
    "DETACH PARTITION without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the parent table.",
    "Use DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+) in a migration marked "
    "\"transactional\": false.", squawk="require-concurrent-partition-detach")
ENUM_VALUE_ORDER = risk_rule(
    "RSK043", "enum-value-unordered", None,
    "ALTER TYPE ... ADD VALUE without BEFORE or AFTER appends the value at the end, which "
    "changes how ORDER BY sorts the enum if the order matters.",
    "Say where the value goes with BEFORE 'x' or AFTER 'y'.",
    squawk="require-enum-value-ordering")
DOMAIN_CHECK = risk_rule(
    "RSK044", "domain-with-check", None,
    "A CHECK on a domain cannot be added NOT VALID to the columns that use it later and is "
    "validated against every such column at once.",
    "Put the CHECK on the table columns instead.",
    squawk="ban-create-domain-with-constraint")
IDENTIFIER_TOO_LONG = risk_rule(
    "RSK045", "identifier-too-long", None,
    "PostgreSQL truncates names longer than 63 bytes, so the object gets another name than the "
    "one the SQL (and later migrations) use.",
    "Use a name of at most 63 bytes.",
    squawk="identifier-too-long")
CONCURRENT_INDEX_IF_NOT_EXISTS = risk_rule(
    "RSK046", "concurrent-index-if-not-exists", None,
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS: a failed or killed concurrent build leaves an "
    "INVALID index of that name, which IF NOT EXISTS then skips on the retry, so the index is "
    "never built and its queries stay slow.",
    "Drop a left-over invalid index first: put DROP INDEX CONCURRENTLY IF EXISTS <name>; before "
    "the CREATE (and drop IF NOT EXISTS), or check pg_index.indisvalid after the deploy.")

HYGIENE_RULES: tuple[RiskRule, ...] = (
    DROP_CONSTRAINT, DROP_OBJECT, DROP_DATABASE, RENAME_OBJECT, ALTER_IDENTITY,
    INT_KEY, PREFER_IDENTITY, CHAR_COLUMN, VARCHAR_LIMIT, TIMESTAMP_NO_TZ, STATEMENT_TIMEOUT,
    ROBUST_STATEMENTS, TRANSACTION_NESTING, DETACH_PARTITION, ENUM_VALUE_ORDER, DOMAIN_CHECK,
    IDENTIFIER_TOO_LONG, CONCURRENT_INDEX_IF_NOT_EXISTS,
)

#: PostgreSQL's NAMEDATALEN - 1: longer names are truncated.
MAX_IDENTIFIER_BYTES = 63

_DROPPED_OBJECTS = frozenset({"view", "materialized view", "function", "procedure", "type",
                              "sequence", "domain", "extension"})
_SMALL_INTS = {"INT": "integer", "SMALLINT": "smallint", "SERIAL": "serial",
               "SMALLSERIAL": "smallserial"}
_SERIALS = frozenset({"SERIAL", "SMALLSERIAL", "BIGSERIAL"})
_CHAR = re.compile(r"^(CHAR|NCHAR)(\(\d+\))?$")
_VARCHAR = re.compile(r"^VARCHAR\(\d+\)$")
#: Whole-object statements that fail on a re-run without IF [NOT] EXISTS. ALTER TABLE actions
#: are left out (docs/sql-rules.md says why).
_CREATE_GUARDED = frozenset({OpKind.CREATE_TABLE, OpKind.CREATE_INDEX, OpKind.CREATE_SEQUENCE,
                             OpKind.CREATE_EXTENSION})
_DROP_GUARDED = frozenset({OpKind.DROP_TABLE, OpKind.DROP_INDEX, OpKind.DROP_OTHER,
                           OpKind.DROP_SCHEMA, OpKind.DROP_TRIGGER})


def op_hits(op: Op, state: State) -> Found:
    """The hygiene rules one operation fires (before ``record`` notes what it did)."""
    found = _type_hits(op, state.is_new(op)) if op.op is OpKind.COLUMN else []
    if op.op is OpKind.ALTER_COLUMN_TYPE and not state.is_new(op):
        found += _type_hits(Op(OpKind.COLUMN, op.name, op.schema, op.column, _type_of(op)), True)
    found += _breaking_hits(op, state)
    found += _robust_hits(op, state)
    found += _misc_hits(op, state)
    return found


def _type_of(op: Op) -> str:
    """``VARCHAR(20)`` of ``VARCHAR(20) COLLATE "C"``: the type an ALTER COLUMN TYPE sets."""
    return (op.detail or "").split(" COLLATE ")[0].strip().upper()


def _type_hits(op: Op, new_table: bool) -> Found:
    """Type choices of a declared column; on an existing table a serial column is RSK007's
    (adding it rewrites the table, which matters more than the style)."""
    column = f"{display_name(op.schema, op.name or '?')}.{display_name(None, op.column or '?')}"
    kind = (op.detail or "").upper()
    found: Found = []
    key = op.has("primary_key") or op.has("identity") or kind in _SERIALS
    if key and kind in _SMALL_INTS:
        found.append((INT_KEY, f"{column} is a key of type {_SMALL_INTS[kind]}; use bigint"))
    if kind in _SERIALS and new_table:
        found.append((PREFER_IDENTITY, f"{column} is {kind.lower()}; use an identity column"))
    if _CHAR.match(kind):
        found.append((CHAR_COLUMN, f"{column} is {kind.lower()}; use text"))
    if _VARCHAR.match(kind):
        found.append((VARCHAR_LIMIT, f"{column} is {kind.lower()}; use text (with a CHECK)"))
    if kind == "TIMESTAMP":
        found.append((TIMESTAMP_NO_TZ, f"{column} is timestamp without time zone; use "
                                       "timestamptz"))
    return found


def _breaking_hits(op: Op, state: State) -> Found:
    """Changes that break running clients, on objects that existed before the migration."""
    table = display_name(op.schema, op.name) if op.name else "?"
    column = f"{table}.{display_name(None, op.column)}" if op.column else table
    if op.op is OpKind.DROP_CONSTRAINT and not state.is_new(op):
        name = display_name(None, op.detail) if op.detail else "a constraint"
        return [(DROP_CONSTRAINT, f"dropping constraint {name} of {table}")]
    if op.op is OpKind.ALTER_TABLE_OTHER and (op.detail or "").lower() == "drop identity" \
            and not state.is_new(op):
        return [(ALTER_IDENTITY, f"DROP IDENTITY on {column} removes its default")]
    if op.op is OpKind.RENAME_INDEX and (op.schema or state.schema, op.name or "") \
            not in state.created_indexes:
        return [(RENAME_OBJECT, f"renaming index {table} to {op.detail}")]
    if op.op is not OpKind.DROP_OTHER:
        return []
    kind = op.detail or ""
    if kind == "database":
        return [(DROP_DATABASE, f"DROP DATABASE {table} destroys the whole database")]
    created = (kind, op.schema or state.schema, op.name or "") in state.created_objects
    if kind in _DROPPED_OBJECTS and not op.has("cascade") and not created:
        return [(DROP_OBJECT, f"DROP {kind.upper()} {table} breaks code that still uses it")]
    return []


def _robust_hits(op: Op, state: State) -> Found:
    """prefer-robust-stmts: only outside a transaction can a partial failure be retried."""
    if state.transactional or op.has("temporary") or state.at_last_statement:
        return []
    if op.op in _CREATE_GUARDED and not op.has("if_not_exists"):
        if op.op is OpKind.CREATE_INDEX and _index_dropped_first(op, state):
            return []
        return [(ROBUST_STATEMENTS, f"{op.op.label} without IF NOT EXISTS fails when the "
                                    "migration is retried after a partial failure")]
    if op.op in _DROP_GUARDED and not op.has("if_exists"):
        what = f"DROP {(op.detail or '').upper()}" if op.op is OpKind.DROP_OTHER else op.op.label
        return [(ROBUST_STATEMENTS, f"{what} without IF EXISTS fails when the migration is "
                                    "retried after a partial failure")]
    return []


def _index_dropped_first(op: Op, state: State) -> bool:
    """``DROP INDEX [CONCURRENTLY] IF EXISTS i`` came earlier: the retry-safe way to build i."""
    return op.detail is not None and (op.schema or state.schema, op.detail) in state.dropped_guarded


def _misc_hits(op: Op, state: State) -> Found:
    table = display_name(op.schema, op.name) if op.name else "?"
    if op.op is OpKind.CREATE_INDEX and op.has("concurrently") and op.has("if_not_exists") \
            and not _index_dropped_first(op, state):
        name = display_name(None, op.detail) if op.detail else "the index"
        return [(CONCURRENT_INDEX_IF_NOT_EXISTS,
                 f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} skips an INVALID index left "
                 f"by a failed build; drop it first (DROP INDEX CONCURRENTLY IF EXISTS {name})")]
    if op.op is OpKind.DETACH_PARTITION and not op.has("concurrently") and not state.is_new(op):
        return [(DETACH_PARTITION, f"DETACH PARTITION from {table} without CONCURRENTLY")]
    if op.op is OpKind.ALTER_TYPE_ADD_VALUE and not op.has("ordered"):
        return [(ENUM_VALUE_ORDER, f"ADD VALUE to {table} without BEFORE or AFTER")]
    if op.op is OpKind.CREATE_DOMAIN and op.has("check"):
        return [(DOMAIN_CHECK, f"domain {table} has a CHECK constraint")]
    if op.op is OpKind.TRANSACTION and not state.transactional:
        return _nesting(op, state)
    return []


def _nesting(op: Op, state: State) -> Found:
    detail = op.detail or ""
    if detail == "begin" and state.in_transaction:
        return [(TRANSACTION_NESTING, "BEGIN inside a transaction that is already open")]
    return []


def scans(op: Op, state: State) -> bool:
    """Whether the operation scans or rewrites an existing table while holding a lock (what
    statement_timeout bounds). CONCURRENTLY builds are left out: a timeout that kills one
    leaves an INVALID index behind."""
    if op.name is None or state.is_new(op):
        return False
    if op.op in (OpKind.ALTER_COLUMN_TYPE, OpKind.SET_NOT_NULL, OpKind.VALIDATE_CONSTRAINT,
                 OpKind.UPDATE, OpKind.DELETE, OpKind.CLUSTER, OpKind.REWRITE_TABLE):
        return True
    if op.op is OpKind.ADD_CONSTRAINT:
        return not op.has("not_valid") and not op.has("using_index")
    if op.op is OpKind.ADD_COLUMN:
        return any(op.has(f) for f in ("rewrite", "volatile_default", "check", "foreign_key",
                                       "unique", "primary_key"))
    if op.op in (OpKind.CREATE_INDEX, OpKind.REINDEX):
        return not op.has("concurrently")
    return op.op is OpKind.VACUUM and op.has("full")


def statement_hits(statement: StatementAnalysis, state: State, scanned: list[str]) -> Found:
    """Rules on the statement as a whole: statement_timeout (once per migration) and names."""
    found: Found = []
    if scanned and not state.statement_timeout and not state.statement_timeout_reported:
        state.statement_timeout_reported = True
        tables = ", ".join(dict.fromkeys(scanned))
        found.append((STATEMENT_TIMEOUT, f"{statement.kind} scans or rewrites {tables} with no "
                                         "statement_timeout set before it"))
    names = [o.new_name if o.role is Role.RENAMED else o.name for o in statement.objects
             if o.role in (Role.CREATED, Role.RENAMED)]
    names += [op.column for op in statement.ops if op.op is OpKind.COLUMN]
    for name in dict.fromkeys(n for n in names if n):
        if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            found.append((IDENTIFIER_TOO_LONG, f"{name[:20]}... is {len(name.encode())} bytes "
                                               f"long; PostgreSQL keeps only "
                                               f"{MAX_IDENTIFIER_BYTES}"))
    return found


def record(op: Op, state: State) -> None:
    """Remember what the hygiene rules need from an operation that has run."""
    if op.op is OpKind.SET and op.name == "statement_timeout":
        text = (op.detail or "").strip().strip("'\"").lower()
        state.statement_timeout = text not in ("", "0", "default", "0s", "0ms")
    elif op.op is OpKind.TRANSACTION:
        state.in_transaction = (op.detail or "") in ("begin", "start transaction")
    elif op.op is OpKind.DROP_INDEX and op.has("if_exists") and op.name:
        state.dropped_guarded.add((op.schema or state.schema, op.name))


def record_objects(statement: StatementAnalysis, state: State) -> None:
    """Remember the non-table objects a statement created (dropping them later is fine)."""
    for obj in statement.objects:
        if obj.role is Role.CREATED and obj.kind in _DROPPED_OBJECTS:
            state.created_objects.add((obj.kind, obj.schema or state.schema, obj.name))
