"""Plain INSERT ... VALUES, UPDATE and DELETE read from PostgreSQL's parse tree, not sqlglot's.

After CREATE TABLE (:mod:`pytest_migorch.sql.pg_create_table`), data fixes were most of a cold
``migorch validate``'s sqlglot time: about 0.5 ms a statement for sqlglot's parse against a few
microseconds for PostgreSQL's. The facts of a plain one are few: the table written, and for
UPDATE and DELETE whether a WHERE limits the rows (RSK rules on unbounded writes read it).
:func:`dml_facts` reads them only for statements made of parts whose reading sqlglot and
PostgreSQL agree on: one unaliased, unquoted, ASCII table, SET targets without subscripts,
VALUES rows, a WHERE, all of the plain expression nodes CREATE TABLE's defaults use (no
subquery, so no other table is read). Anything else (WITH, FROM, USING, RETURNING, ON
CONFLICT, INSERT ... SELECT, ONLY, any node not listed) returns None and sqlglot reads the
statement as before: a faster path to the same facts, never a different reading.
``tests/sql/test_pg_dml.py`` compares both readings.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pytest_migorch.sql.facts import Facts, OpKind, Role
from pytest_migorch.sql.pg_create_table import Declined, only_keys, plain_expression, relation

__all__ = ["dml_facts", "KINDS"]

logger = logging.getLogger(__name__)

_parse_json: Any
try:  # see pytest_migorch.sql.pg_parse: without pglast every statement goes to sqlglot
    from pglast.parser import parse_sql_json as _parse_json
except ImportError:  # pragma: no cover - exercised in a subprocess test
    _parse_json = None

#: Statement kinds (:func:`~pytest_migorch.sql.token_recognisers.statement_kind`) read here.
KINDS = frozenset({"INSERT", "UPDATE", "DELETE"})

_UPDATE_KEYS = {"relation", "targetList", "whereClause"}
_DELETE_KEYS = {"relation", "whereClause"}
_INSERT_KEYS = {"relation", "cols", "selectStmt", "override"}
_VALUES_KEYS = {"valuesLists", "limitOption", "op"}
_TARGET_KEYS = {"name", "val", "location"}
#: Operator expressions of SET, VALUES and WHERE: CREATE TABLE's, and LIKE / ILIKE, which
#: data fixes filter with (sqlglot reads them; the facts do not depend on the expression).
_A_EXPR = frozenset({"AEXPR_OP", "AEXPR_IN", "AEXPR_LIKE", "AEXPR_ILIKE"})


def dml_facts(text: str) -> Facts | None:
    """The facts of a plain INSERT ... VALUES, UPDATE or DELETE ``text``, or None for sqlglot."""
    if _parse_json is None or '"' in text or "pg_catalog" in text.lower() or not text.isascii():
        return None  # quoted or non-ASCII names fold differently
    try:
        statements = json.loads(_parse_json(text)).get("stmts") or []
        if len(statements) != 1:
            return None
        stmt = statements[0].get("stmt", {})
        if len(stmt) != 1:
            return None
        kind, node = next(iter(stmt.items()))
        reader = _READERS.get(kind)
        return reader(node) if reader is not None else None
    except Declined:
        return None
    except Exception:  # PostgreSQL rejects it, or a tree we misread: the full path decides
        logger.debug("DML statement left to sqlglot", exc_info=True)
        return None


def _written(kind: str, op: OpKind, node: dict[str, Any], where: bool) -> Facts:
    if node["relation"].get("inh") is not True:  # false is left out of the JSON: ONLY t
        raise Declined("ONLY")
    name = relation(node["relation"])
    facts = Facts(kind=kind)
    facts.obj("table", name, Role.WRITTEN)
    facts.op(op, name, flags=("where",) if where else ())
    return facts


def _update(node: dict[str, Any]) -> Facts:
    only_keys(node, _UPDATE_KEYS)
    for item in node.get("targetList") or ():
        target = _target(item)
        if "val" not in target:
            raise Declined("SET without a value")
        plain_expression(target["val"], _A_EXPR)
    plain_expression(node.get("whereClause"), _A_EXPR)
    return _written("UPDATE", OpKind.UPDATE, node, "whereClause" in node)


def _delete(node: dict[str, Any]) -> Facts:
    only_keys(node, _DELETE_KEYS)
    plain_expression(node.get("whereClause"), _A_EXPR)
    return _written("DELETE", OpKind.DELETE, node, "whereClause" in node)


def _insert(node: dict[str, Any]) -> Facts:
    only_keys(node, _INSERT_KEYS)
    if node.get("override", "OVERRIDING_NOT_SET") != "OVERRIDING_NOT_SET":
        raise Declined("OVERRIDING")
    for item in node.get("cols") or ():
        if set(_target(item)) - {"name", "location"}:
            raise Declined("column with a subscript")
    select = node.get("selectStmt", {}).get("SelectStmt")
    if not isinstance(select, dict) or "valuesLists" not in select:
        raise Declined("INSERT without VALUES")
    only_keys(select, _VALUES_KEYS)
    if select.get("op") != "SETOP_NONE" or \
            select.get("limitOption") != "LIMIT_OPTION_DEFAULT":
        raise Declined("VALUES with a set operation or limit")
    plain_expression(select["valuesLists"], _A_EXPR)
    return _written("INSERT", OpKind.INSERT, node, False)


def _target(item: Any) -> dict[str, Any]:
    """A ResTarget of SET or of INSERT's column list: a plain column name (no ``a[1]``,
    ``a.b`` or ``(a, b) = ...``)."""
    target = item.get("ResTarget") if isinstance(item, dict) and len(item) == 1 else None
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        raise Declined("target")
    only_keys(target, _TARGET_KEYS)
    return target


_READERS = {"UpdateStmt": _update, "DeleteStmt": _delete, "InsertStmt": _insert}
