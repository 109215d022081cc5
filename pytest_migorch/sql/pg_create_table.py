"""CREATE TABLE read from PostgreSQL's parse tree, for the plain tables most migrations create.

sqlglot's parse of a CREATE TABLE costs about 2 ms (the PostgreSQL parser's, as JSON, about
0.1 ms) and CREATE TABLE is most of a cold ``migorch validate``'s sqlglot time. :func:`
create_table_facts` reads the same facts as :mod:`pytest_migorch.sql.ast_recognisers` does from
sqlglot's tree (the table created, each column's type as sqlglot prints it with its key,
identity and reference flags, the tables referenced, in sqlglot's order) from pglast's JSON tree,
for statements made only of parts it knows exactly: columns of the types in :data:`_TYPES`,
NULL / NOT NULL / DEFAULT / CHECK / PRIMARY KEY / UNIQUE / REFERENCES / identity constraints,
table-level PRIMARY KEY, UNIQUE, FOREIGN KEY and CHECK, and DEFAULT and CHECK expressions of
the plain node types in :data:`_PLAIN_EXPRESSIONS`.

Anything else (quoted names, partitions, LIKE, INHERITS, storage options, other types, any
node not listed) returns None, and the statement goes to sqlglot as before: this is a faster
path to the same facts, never a different reading. ``tests/sql/test_pg_create_table.py``
compares both readings on every CREATE TABLE of the test trees and the benchmark's repository.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pytest_migorch.sql.facts import Facts, ObjectRef, Op, OpKind, Role

__all__ = ["create_table_facts", "Declined", "only_keys", "relation", "plain_expression"]

logger = logging.getLogger(__name__)

_parse_json: Any
try:  # see pytest_migorch.sql.pg_parse: without pglast every CREATE TABLE goes to sqlglot
    from pglast.parser import parse_sql_json as _parse_json
except ImportError:  # pragma: no cover - exercised in a subprocess test
    _parse_json = None

QName = tuple[str | None, str]

#: PostgreSQL's name of a type (as its parser writes it) -> how sqlglot prints it, and whether
#: it may carry type modifiers (``varchar(20)``).
_TYPES: dict[tuple[str, ...], tuple[str, bool]] = {
    ("bigserial",): ("BIGSERIAL", False), ("serial",): ("SERIAL", False),
    ("smallserial",): ("SMALLSERIAL", False), ("text",): ("TEXT", False),
    ("pg_catalog", "int8"): ("BIGINT", False), ("int8",): ("BIGINT", False),
    ("pg_catalog", "int4"): ("INT", False), ("int4",): ("INT", False),
    ("pg_catalog", "int2"): ("SMALLINT", False), ("int2",): ("SMALLINT", False),
    ("pg_catalog", "numeric"): ("DECIMAL", True), ("pg_catalog", "varchar"): ("VARCHAR", True),
    ("pg_catalog", "bpchar"): ("CHAR", True),
    ("timestamptz",): ("TIMESTAMPTZ", True), ("pg_catalog", "timestamptz"): ("TIMESTAMPTZ", True),
    ("pg_catalog", "timestamp"): ("TIMESTAMP", True), ("date",): ("DATE", False),
    ("pg_catalog", "bool"): ("BOOLEAN", False), ("bool",): ("BOOLEAN", False),
    ("uuid",): ("UUID", False), ("jsonb",): ("JSONB", False), ("pg_catalog", "json"): ("JSON", False),
    ("bytea",): ("BYTEA", False), ("pg_catalog", "float4"): ("REAL", False),
    ("pg_catalog", "float8"): ("DOUBLE PRECISION", False), ("float4",): ("REAL", False),
    ("float8",): ("DOUBLE PRECISION", False), ("inet",): ("INET", False),
}

#: Expression nodes of a DEFAULT or CHECK whose reading sqlglot and PostgreSQL agree on.
_PLAIN_EXPRESSIONS = {"A_Const", "ColumnRef", "A_Expr", "BoolExpr", "NullTest", "TypeCast",
                      "FuncCall", "String", "Integer", "Float", "Boolean", "List",
                      "SQLValueFunction"}
_PLAIN_A_EXPR = {"AEXPR_OP", "AEXPR_IN"}

_COLUMN_CONSTRAINTS = {"CONSTR_NULL", "CONSTR_NOTNULL", "CONSTR_DEFAULT", "CONSTR_CHECK",
                       "CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_FOREIGN", "CONSTR_IDENTITY"}
_TABLE_CONSTRAINTS = {"CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_FOREIGN", "CONSTR_CHECK"}
#: Keys of a Constraint node that change nothing read here; any other key (INCLUDE, WITH,
#: USING INDEX TABLESPACE, DEFERRABLE, NOT VALID, MATCH ...) sends the statement to sqlglot.
_CONSTRAINT_KEYS = {"contype", "conname", "location", "raw_expr", "keys", "pktable", "pk_attrs",
                    "fk_attrs", "fk_matchtype", "fk_upd_action", "fk_del_action",
                    "initially_valid", "is_enforced", "generated_when"}
_CREATE_KEYS = {"relation", "tableElts", "oncommit", "if_not_exists"}
_COLUMN_KEYS = {"colname", "typeName", "is_local", "constraints", "location"}
_RELATION_KEYS = {"schemaname", "relname", "inh", "relpersistence", "location"}


class Declined(Exception):
    """The statement has a part this module does not read: sqlglot reads it."""


def create_table_facts(text: str) -> Facts | None:
    """The facts of a plain ``CREATE TABLE`` statement ``text``, or None for sqlglot to read."""
    if _parse_json is None or '"' in text or "pg_catalog" in text.lower() or not text.isascii():
        return None  # quoted or non-ASCII names fold differently; explicit catalog types print so
    try:
        tree = json.loads(_parse_json(text))
        statements = tree.get("stmts") or []
        if len(statements) != 1:
            return None
        node = statements[0].get("stmt", {}).get("CreateStmt")
        if node is None:
            return None
        return _create(node)
    except Declined:
        return None
    except Exception:  # PostgreSQL rejects it, or a tree we misread: the full path decides
        logger.debug("CREATE TABLE left to sqlglot", exc_info=True)
        return None


def only_keys(node: dict[str, Any], allowed: set[str]) -> None:
    if not allowed.issuperset(node):
        raise Declined(sorted(set(node) - allowed))


def _create(node: dict[str, Any]) -> Facts:
    only_keys(node, _CREATE_KEYS)
    if node.get("oncommit", "ONCOMMIT_NOOP") != "ONCOMMIT_NOOP":
        raise Declined("ON COMMIT")
    name = relation(node["relation"])
    persistence = node["relation"].get("relpersistence", "p")
    if persistence not in ("p", "t"):
        raise Declined("UNLOGGED")
    facts = Facts(kind="CREATE TABLE")
    facts.obj("table", name, Role.CREATED)
    facts.op(OpKind.CREATE_TABLE, name, flags=("temporary" if persistence == "t" else "",
                                               "if_not_exists" if node.get("if_not_exists")
                                               else ""))
    elements = [_element(e) for e in node.get("tableElts") or ()]
    # A table-level PRIMARY KEY marks its columns, named (CONSTRAINT pk PRIMARY KEY (a)) or not.
    keys = {key for kind, body in elements if kind == "Constraint"
            and body["contype"] == "CONSTR_PRIMARY" for key in _strings(body.get("keys"))}
    # sqlglot's tree is searched breadth first: an unnamed table-level FOREIGN KEY's reference
    # sits one level above a column's or a named constraint's, so it comes first.
    shallow: list[QName] = []
    deep: list[QName] = []
    for kind, body in elements:
        if kind == "ColumnDef":
            deep.extend(_column(name, body, facts, keys))
        else:
            target = _table_constraint(body)
            if target is not None:
                (deep if body.get("conname") else shallow).append(target)
    for target in shallow + deep:
        facts.obj("table", target, Role.READ)
        facts.op(OpKind.REFERENCES, target)
    return facts


def _element(element: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if len(element) != 1:
        raise Declined("element")
    kind, body = next(iter(element.items()))
    if kind not in ("ColumnDef", "Constraint"):
        raise Declined(kind)  # LIKE, ...
    return kind, body


def relation(node: dict[str, Any]) -> QName:
    only_keys(node, _RELATION_KEYS)
    if not node.get("inh", True):
        raise Declined("ONLY")
    return (node.get("schemaname"), _name(node["relname"]))


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) >= 63:
        raise Declined("name")  # PostgreSQL truncates long names; sqlglot does not
    return value


def _strings(nodes: Any) -> list[str]:
    values = []
    for item in nodes or ():
        string = item.get("String") if isinstance(item, dict) else None
        if string is None or "sval" not in string:
            raise Declined("name list")
        values.append(_name(string["sval"]))
    return values


def _column(table: QName, body: dict[str, Any], facts: Facts, keys: set[str]) -> list[QName]:
    """The COLUMN fact of a column definition; returns the tables its REFERENCES name."""
    only_keys(body, _COLUMN_KEYS)
    column = _name(body["colname"])
    detail = _type(body["typeName"])
    flags = ["primary_key" if column in keys else ""]
    targets: list[QName] = []
    for item in body.get("constraints") or ():
        constraint = _constraint(item, _COLUMN_CONSTRAINTS)
        contype = constraint["contype"]
        if contype == "CONSTR_PRIMARY":
            flags.append("primary_key")
        elif contype == "CONSTR_IDENTITY":
            flags.append("identity")
        elif contype == "CONSTR_FOREIGN":
            flags.append("references")
            targets.append(relation(constraint["pktable"]))
            _strings(constraint.get("pk_attrs"))
    facts.ops.append(Op(op=OpKind.COLUMN, schema=table[0], name=table[1], column=column,
                        detail=detail, flags=tuple(sorted(f for f in flags if f))))
    return targets


def _table_constraint(body: dict[str, Any]) -> QName | None:
    constraint = _constraint({"Constraint": body}, _TABLE_CONSTRAINTS)
    _strings(constraint.get("keys"))
    if constraint["contype"] != "CONSTR_FOREIGN":
        return None
    _strings(constraint.get("fk_attrs"))
    _strings(constraint.get("pk_attrs"))
    return relation(constraint["pktable"])


def _constraint(item: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    constraint: dict[str, Any] | None = item.get("Constraint") if len(item) == 1 else None
    if constraint is None or constraint.get("contype") not in allowed:
        raise Declined("constraint")
    only_keys(constraint, _CONSTRAINT_KEYS)
    if constraint.get("fk_matchtype", "s") != "s":
        raise Declined("MATCH")
    if "conname" in constraint:
        _name(constraint["conname"])
    if "raw_expr" in constraint:
        plain_expression(constraint["raw_expr"])
    return constraint


def plain_expression(node: Any, a_expr: frozenset[str] | set[str] = _PLAIN_A_EXPR) -> None:
    """Raise Declined unless every node of the expression is of a plain kind (``a_expr``: the
    kinds of operator expression allowed)."""
    if isinstance(node, list):
        for item in node:
            plain_expression(item, a_expr)
        return
    if not isinstance(node, dict):
        return
    for kind, body in node.items():
        if kind[:1].isupper():
            if kind not in _PLAIN_EXPRESSIONS:
                raise Declined(kind)
            if kind == "A_Expr" and body.get("kind") not in a_expr:
                raise Declined("A_Expr")
            if kind == "FuncCall" and (body.get("funcformat") != "COERCE_EXPLICIT_CALL"
                                       or set(body) - {"funcname", "args", "funcformat",
                                                       "location"}):
                raise Declined("FuncCall")
            if kind == "TypeCast":
                _type(body["typeName"])
        plain_expression(body, a_expr)


def _type(node: dict[str, Any]) -> str:
    """The type as sqlglot prints it (``VARCHAR(20)``, ``DECIMAL(10, 2)``, ``TEXT[]``)."""
    if set(node) - {"names", "typmods", "typemod", "arrayBounds", "location"} or \
            node.get("typemod", -1) != -1:
        raise Declined("type")
    known = _TYPES.get(tuple(_strings(node["names"])))
    if known is None:
        raise Declined("type name")
    printed, takes_modifiers = known
    modifiers = []
    for item in node.get("typmods") or ():
        value = item.get("A_Const", {}).get("ival", {}) if takes_modifiers else None
        if not isinstance(value, dict) or set(item["A_Const"]) - {"ival", "location"}:
            raise Declined("type modifier")
        if item["A_Const"].get("location") == -1:  # the parser's own: char is char(1)
            if printed != "CHAR":
                raise Declined("implied type modifier")
            continue
        modifiers.append(str(value.get("ival", 0)))
    if modifiers:
        printed += f"({', '.join(modifiers)})"
    for bound in node.get("arrayBounds") or ():
        if bound != {"Integer": {"ival": -1}}:
            raise Declined("array bound")
        printed += "[]"
    return printed
