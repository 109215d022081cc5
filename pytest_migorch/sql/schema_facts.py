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

import json
import re
import functools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pytest_migorch.sql.cursor import QName
from pytest_migorch.sql.split import split_statements

try:  # pglast ships wheels for Linux and macOS only; without it there are no details
    from pglast import parser as _pg_parser
except ImportError:  # pragma: no cover - depends on the platform
    _pg_parser = None  # type: ignore[assignment]

__all__ = ["SchemaDetail", "schema_details", "statement_texts", "NOTHING", "file_details",
           "remember_file_details"]

Node = dict[str, Any]

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


#: Statements that can have schema details, by their first words; only they are parsed.
_KINDS = re.compile(
    r"\s*(CREATE\s+(UNLOGGED\s+)?TABLE|ALTER\s+TABLE|CREATE\s+(UNIQUE\s+)?INDEX|"
    r"(CREATE|ALTER)\s+SEQUENCE|DROP\s|ALTER\s+INDEX)", re.IGNORECASE)
#: Words without which a statement of those kinds has no detail beyond its facts.
_WORDS = re.compile(
    r"IF\s+(NOT\s+)?EXISTS|SERIAL|IDENTITY|OWNED\s+BY|REFERENCES|DROP\s+CONSTRAINT",
    re.IGNORECASE)


def schema_details(text: str) -> SchemaDetail:
    """The :class:`SchemaDetail` of one statement's text (NOTHING when it cannot be read).

    Statements that cannot have a detail (by their first words and the words a detail needs)
    are not parsed; the others are read from pglast's JSON tree, which costs a third of
    building its Python tree."""
    if _pg_parser is None or not _KINDS.match(text) or not _WORDS.search(text):
        return NOTHING
    try:
        statements = json.loads(_pg_parser.parse_sql_json(text)).get("stmts", [])
    except _pg_parser.ParseError:
        return NOTHING
    if len(statements) != 1:
        return NOTHING
    ((kind, tree),) = statements[0]["stmt"].items()
    if kind == "CreateStmt":
        return _create_table(tree)
    if kind == "AlterTableStmt":
        return _alter_table(tree)
    if kind in ("IndexStmt", "CreateTableAsStmt", "ViewStmt"):
        return SchemaDetail(if_not_exists=bool(tree.get("if_not_exists")))
    if kind in ("CreateSeqStmt", "AlterSeqStmt"):
        return _sequence(tree)
    if kind in ("DropStmt", "RenameStmt"):
        return SchemaDetail(missing_ok=bool(tree.get("missing_ok")))
    return NOTHING


def file_details(text: str, count: int) -> tuple[SchemaDetail, ...]:
    """The schema details of every statement of a file (``count`` statements), by index.

    Served from what an analysis worker computed (:func:`remember_file_details`), else
    computed here. PostgreSQL's scanner splits a file about ten times faster than our
    splitter; its split is used when it finds the same number of statements, which it does
    for any file PostgreSQL accepts. Each file is replayed twice (history, then its own
    check), hence the cache."""
    known = _known_details.get(text)
    if known is not None and known[0] == count:
        return known[1]
    return _file_details(text, count)


@functools.lru_cache(maxsize=1024)
def _file_details(text: str, count: int) -> tuple[SchemaDetail, ...]:
    texts = statement_texts(text)
    if texts is None or len(texts) != count:
        texts = [st.text for st in split_statements(text)]
    return tuple(schema_details(piece) for piece in texts)


#: Details computed in another process (:mod:`pytest_migorch.sql.ahead`): text -> (count,
#: details), most recent last.
_known_details: OrderedDict[str, tuple[int, tuple[SchemaDetail, ...]]] = OrderedDict()


def remember_file_details(text: str, count: int, details: tuple[SchemaDetail, ...]) -> None:
    """Keep :func:`file_details` of ``text`` made elsewhere (as many as the splits kept)."""
    _known_details[text] = (count, details)
    _known_details.move_to_end(text)
    while len(_known_details) > 4096:
        _known_details.popitem(last=False)


def statement_texts(text: str) -> list[str] | None:
    """The statements of a file as PostgreSQL's scanner splits it (fast), or None without
    pglast or when it cannot split it; callers check the count against their own split."""
    if _pg_parser is None:
        return None
    try:
        return [str(piece) for piece in _pg_parser.split(text, with_parser=False)]
    except _pg_parser.ParseError:
        return None


def _qname(range_var: Node) -> QName:
    return (range_var.get("schemaname") or None, str(range_var.get("relname", "")))


def _strings(nodes: Iterable[Node] | None) -> list[str]:
    return [str(n.get("String", {}).get("sval", "")) for n in nodes or ()]


def _create_table(tree: Node) -> SchemaDetail:
    table = _qname(tree["relation"])
    sequences: list[tuple[QName, QName]] = []
    keys: list[tuple[str, QName]] = []
    for element in tree.get("tableElts", ()):
        if "ColumnDef" in element:
            sequences += _column_sequences(table, element["ColumnDef"])
            keys += _column_keys(table, element["ColumnDef"])
        elif _is_foreign_key(element):
            constraint = element["Constraint"]
            keys.append((_key_name(table, constraint), _qname(constraint["pktable"])))
    return SchemaDetail(if_not_exists=bool(tree.get("if_not_exists")), table=table,
                        owned_sequences=tuple(sequences), foreign_keys=tuple(keys))


def _alter_table(tree: Node) -> SchemaDetail:
    table = _qname(tree["relation"])
    sequences: list[tuple[QName, QName]] = []
    keys: list[tuple[str, QName]] = []
    dropped: list[str] = []
    for wrapper in tree.get("cmds", ()):
        cmd = wrapper.get("AlterTableCmd", {})
        subtype, definition, name = cmd.get("subtype"), cmd.get("def", {}), cmd.get("name")
        if subtype == "AT_AddColumn" and "ColumnDef" in definition:
            sequences += _column_sequences(table, definition["ColumnDef"])
            keys += _column_keys(table, definition["ColumnDef"])
        elif subtype == "AT_AddConstraint" and _is_foreign_key(definition):
            constraint = definition["Constraint"]
            keys.append((_key_name(table, constraint), _qname(constraint["pktable"])))
        elif subtype == "AT_DropConstraint" and name:
            dropped.append(str(name))
        elif subtype == "AT_AddIdentity" and name:
            sequences.append(((table[0], f"{table[1]}_{name}_seq"), table))
    return SchemaDetail(missing_ok=bool(tree.get("missing_ok")), table=table,
                        owned_sequences=tuple(sequences), foreign_keys=tuple(keys),
                        dropped_constraints=tuple(dropped))


def _sequence(tree: Node) -> SchemaDetail:
    sequence = _qname(tree["sequence"])
    owned: list[tuple[QName, QName]] = []
    for wrapper in tree.get("options", ()):
        option = wrapper.get("DefElem", {})
        if option.get("defname") == "owned_by":
            parts = _strings(option.get("arg", {}).get("List", {}).get("items"))
            if len(parts) >= 2:  # [schema.]table.column; OWNED BY NONE has one part
                schema = parts[-3] if len(parts) >= 3 else None
                owned.append((sequence, (schema, parts[-2])))
    return SchemaDetail(if_not_exists=bool(tree.get("if_not_exists")),
                        missing_ok=bool(tree.get("missing_ok")), owned_sequences=tuple(owned))


def _column_sequences(table: QName, column: Node) -> list[tuple[QName, QName]]:
    """A serial or identity column owns ``<table>_<column>_seq`` (PostgreSQL's default name)."""
    names = _strings(column.get("typeName", {}).get("names"))
    identity = any(_is_constraint(c, "CONSTR_IDENTITY") for c in column.get("constraints", ()))
    if (names and names[-1].lower() in _SERIAL_TYPES) or identity:
        return [((table[0], f"{table[1]}_{column['colname']}_seq"), table)]
    return []


def _column_keys(table: QName, column: Node) -> list[tuple[str, QName]]:
    return [(str(c["Constraint"].get("conname") or f"{table[1]}_{column['colname']}_fkey"),
             _qname(c["Constraint"]["pktable"]))
            for c in column.get("constraints", ()) if _is_foreign_key(c)]


def _is_constraint(node: Node, contype: str) -> bool:
    return bool(node.get("Constraint", {}).get("contype") == contype)


def _is_foreign_key(node: Node) -> bool:
    return _is_constraint(node, "CONSTR_FOREIGN")


def _key_name(table: QName, constraint: Node) -> str:
    if constraint.get("conname"):
        return str(constraint["conname"])
    columns = _strings(constraint.get("fk_attrs"))
    return f"{table[1]}_{'_'.join(columns)}_fkey"
