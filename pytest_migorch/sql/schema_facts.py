"""What a statement means for the schema model, beyond the facts: read from PostgreSQL's tree.

The facts (:mod:`pytest_migorch.sql.facts`) say which objects a statement names and with what
role; replaying a service's migrations into a model of its schema
(:mod:`pytest_migorch.checks.schema_model`) also needs what they leave out: whether ``IF [NOT]
EXISTS`` makes the statement a no-op, which sequences a table owns (``serial`` and identity
columns, ``OWNED BY``), and which foreign keys a statement creates or drops by constraint name
(PostgreSQL names an unnamed one ``<table>_<column>_fkey``). They come from pglast's tree of the
statement; where pglast is missing or cannot parse it, :func:`schema_details` says nothing
(an empty :class:`SchemaDetail`), and the model falls back on the facts alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pytest_migorch.sql import pg_parse
from pytest_migorch.sql.cursor import QName
from pytest_migorch.sql.facts import NotAnalysed

__all__ = ["SchemaDetail", "schema_details", "NOTHING"]

_SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial",
                           "bigserial"})


@dataclass(frozen=True)
class SchemaDetail:
    """The schema-model facts of one statement (names as PostgreSQL stores them).

    ``table`` is the table the statement creates or alters (None for others);
    ``owned_sequences`` are ``(sequence, owning table)``; ``foreign_keys`` are ``(constraint,
    referenced table)`` created on ``table``; ``dropped_constraints`` names dropped ones.
    """

    if_not_exists: bool = False
    missing_ok: bool = False
    table: QName | None = None
    owned_sequences: tuple[tuple[QName, QName], ...] = ()
    foreign_keys: tuple[tuple[str, QName], ...] = ()
    dropped_constraints: tuple[str, ...] = ()


NOTHING = SchemaDetail()


def schema_details(text: str) -> SchemaDetail:
    """The :class:`SchemaDetail` of one statement's text (NOTHING when it cannot be read)."""
    try:
        tree = pg_parse.parse_tree(text)
    except NotAnalysed:
        return NOTHING
    kind = type(tree).__name__
    if kind == "CreateStmt":
        return _create_table(tree)
    if kind == "AlterTableStmt":
        return _alter_table(tree)
    if kind in ("IndexStmt", "CreateTableAsStmt", "ViewStmt"):
        return SchemaDetail(if_not_exists=bool(getattr(tree, "if_not_exists", False)))
    if kind in ("CreateSeqStmt", "AlterSeqStmt"):
        return _sequence(tree)
    if kind in ("DropStmt", "RenameStmt"):
        return SchemaDetail(missing_ok=bool(tree.missing_ok))
    return NOTHING


def _qname(range_var: Any) -> QName:
    return (range_var.schemaname or None, range_var.relname)


def _strings(nodes: Iterable[Any] | None) -> list[str]:
    return [str(getattr(n, "sval", "")) for n in nodes or ()]


def _create_table(tree: Any) -> SchemaDetail:
    table = _qname(tree.relation)
    sequences: list[tuple[QName, QName]] = []
    keys: list[tuple[str, QName]] = []
    for element in tree.tableElts or ():
        if type(element).__name__ == "ColumnDef":
            sequences += _column_sequences(table, element)
            keys += _column_keys(table, element)
        elif _is_foreign_key(element):
            keys.append((_key_name(table, element), _qname(element.pktable)))
    return SchemaDetail(if_not_exists=bool(tree.if_not_exists), table=table,
                        owned_sequences=tuple(sequences), foreign_keys=tuple(keys))


def _alter_table(tree: Any) -> SchemaDetail:
    table = _qname(tree.relation)
    sequences: list[tuple[QName, QName]] = []
    keys: list[tuple[str, QName]] = []
    dropped: list[str] = []
    for cmd in tree.cmds or ():
        subtype = getattr(cmd.subtype, "name", str(cmd.subtype))
        definition = cmd.def_
        if subtype == "AT_AddColumn" and definition is not None:
            sequences += _column_sequences(table, definition)
            keys += _column_keys(table, definition)
        elif subtype == "AT_AddConstraint" and _is_foreign_key(definition):
            keys.append((_key_name(table, definition), _qname(definition.pktable)))
        elif subtype == "AT_DropConstraint" and cmd.name:
            dropped.append(cmd.name)
        elif subtype == "AT_AddIdentity" and cmd.name:
            sequences.append(((table[0], f"{table[1]}_{cmd.name}_seq"), table))
    return SchemaDetail(missing_ok=bool(tree.missing_ok), table=table,
                        owned_sequences=tuple(sequences), foreign_keys=tuple(keys),
                        dropped_constraints=tuple(dropped))


def _sequence(tree: Any) -> SchemaDetail:
    sequence = _qname(tree.sequence)
    owned: list[tuple[QName, QName]] = []
    for option in tree.options or ():
        if option.defname == "owned_by":
            parts = _strings(option.arg)
            if len(parts) >= 2:  # [schema.]table.column; OWNED BY NONE has one part
                schema = parts[-3] if len(parts) >= 3 else None
                owned.append((sequence, (schema, parts[-2])))
    return SchemaDetail(if_not_exists=bool(getattr(tree, "if_not_exists", False)),
                        missing_ok=bool(getattr(tree, "missing_ok", False)),
                        owned_sequences=tuple(owned))


def _column_sequences(table: QName, column: Any) -> list[tuple[QName, QName]]:
    """A serial or identity column owns ``<table>_<column>_seq`` (PostgreSQL's default name)."""
    names = _strings(getattr(column.typeName, "names", None))
    identity = any(_contype(c) == "CONSTR_IDENTITY" for c in column.constraints or ())
    if (names and names[-1].lower() in _SERIAL_TYPES) or identity:
        return [((table[0], f"{table[1]}_{column.colname}_seq"), table)]
    return []


def _column_keys(table: QName, column: Any) -> list[tuple[str, QName]]:
    return [(c.conname or f"{table[1]}_{column.colname}_fkey", _qname(c.pktable))
            for c in column.constraints or () if _is_foreign_key(c)]


def _contype(node: Any) -> str:
    contype = getattr(node, "contype", None)
    return str(getattr(contype, "name", contype))


def _is_foreign_key(node: Any) -> bool:
    return type(node).__name__ == "Constraint" and _contype(node) == "CONSTR_FOREIGN"


def _key_name(table: QName, constraint: Any) -> str:
    if constraint.conname:
        return str(constraint.conname)
    columns = _strings(constraint.fk_attrs)
    return f"{table[1]}_{'_'.join(columns)}_fkey"
