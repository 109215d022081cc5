"""Facts from PostgreSQL's own parse tree (pglast), for statements sqlglot cannot structure.

Only statements whose tree says exactly what they do are read here, in the facts vocabulary of
:mod:`pytest_migorch.sql.facts`: ``DO`` blocks (their PL/pgSQL body, parsed with PostgreSQL's
PL/pgSQL parser), ``CREATE|REFRESH MATERIALIZED VIEW``, ``ALTER SEQUENCE|VIEW|MATERIALIZED
VIEW|INDEX ... RENAME TO|SET SCHEMA``, ``CREATE EXTENSION`` and ``ALTER TYPE ... ADD VALUE``,
and what calling a function does, from its SQL or PL/pgSQL body (:func:`function_body_facts`).
:func:`recognise_tree` returns None for any other statement (it stays "not analysed", with the
reason sqlglot gave) and raises :class:`NotAnalysed` when it knows the statement but what it does
cannot be told, such as a ``DO`` block that runs dynamic SQL (``EXECUTE``).

Static SQL inside a ``DO`` block is read by the same analysis as a top-level statement (the
``analyse`` callback), so the block's facts are the union of its statements' facts, and one
statement in it that cannot be analysed leaves the whole block not analysed. Conditional
statements count as if they ran: what a migration may do is what it must declare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pytest_migorch.sql.facts import Facts, NotAnalysed, ObjectRef, OpKind, Role
from pytest_migorch.sql.split import Statement, split_sql

if TYPE_CHECKING:
    from pytest_migorch.sql.analysis import StatementAnalysis

_ast: Any
_pg_parser: Any
try:  # see pytest_migorch.sql.pg_parse: without pglast nothing here is called
    import pglast.ast
    import pglast.parser

    _ast = pglast.ast
    _pg_parser = pglast.parser
except ImportError:  # pragma: no cover - exercised in a subprocess test
    _ast = None
    _pg_parser = None

__all__ = ["recognise_tree", "plpgsql_facts", "function_name", "function_body_facts",
           "called_function"]

Analyse = Callable[[Statement], "StatementAnalysis"]
QName = tuple[str | None, str]

#: PL/pgSQL statements that do nothing to the database by themselves; their expressions (and
#: nested statements) are still read.
_PLPGSQL_PLAIN = {
    "PLpgSQL_stmt_block", "PLpgSQL_stmt_if", "PLpgSQL_stmt_case", "PLpgSQL_stmt_loop",
    "PLpgSQL_stmt_while", "PLpgSQL_stmt_fori", "PLpgSQL_stmt_fors", "PLpgSQL_stmt_foreach_a",
    "PLpgSQL_stmt_exit", "PLpgSQL_stmt_return", "PLpgSQL_stmt_raise", "PLpgSQL_stmt_assert",
    "PLpgSQL_stmt_execsql", "PLpgSQL_stmt_perform", "PLpgSQL_stmt_assign",
    "PLpgSQL_stmt_getdiag",
}
_PLPGSQL_DYNAMIC = {"PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"}
#: ``PLpgSQL_expr.parseMode``: 0 a whole statement, 2 an expression, 3-5 an assignment.
_ASSIGNMENT = re.compile(r"^\s*(?:[^:=]|:(?!=))+?(?::=|=)\s*", re.S)
#: relkind of RenameStmt / AlterObjectSchemaStmt targets read here.
_RELATION_KINDS = {"OBJECT_SEQUENCE": "sequence", "OBJECT_VIEW": "view",
                   "OBJECT_MATVIEW": "materialized view", "OBJECT_INDEX": "index"}
#: The operation a RENAME / SET SCHEMA of each relation kind is to the risk rules. A sequence's
#: are sequence changes; PostgreSQL has no ALTER INDEX ... SET SCHEMA (an index lives with its
#: table), so that entry is only there to keep the tables total.
_RENAME_OPS = {"sequence": OpKind.ALTER_SEQUENCE, "view": OpKind.RENAME_VIEW,
               "materialized view": OpKind.RENAME_MATERIALIZED_VIEW, "index": OpKind.RENAME_INDEX}
_SET_SCHEMA_OPS = {"sequence": OpKind.ALTER_SEQUENCE, "view": OpKind.SET_SCHEMA,
                   "materialized view": OpKind.SET_SCHEMA, "index": OpKind.SET_SCHEMA}


def recognise_tree(node: Any, statement: Statement, analyse: Analyse) -> Facts | None:
    """Facts for one statement from its pglast tree, or None when it is not one read here."""
    if _ast is None:
        return None
    if isinstance(node, _ast.DoStmt):
        return _do(node, statement, analyse)
    if isinstance(node, _ast.RefreshMatViewStmt):
        return _refresh(node)
    if isinstance(node, _ast.CreateTableAsStmt) and _enum(node.objtype) == "OBJECT_MATVIEW":
        return _create_matview(node)
    if isinstance(node, (_ast.RenameStmt, _ast.AlterObjectSchemaStmt)):
        return _rename_or_move(node)
    if isinstance(node, _ast.CreateExtensionStmt):
        facts = Facts(kind="CREATE EXTENSION")
        facts.objects.append(ObjectRef(kind="extension", name=node.extname, role=Role.CREATED))
        facts.op(OpKind.CREATE_EXTENSION, (None, node.extname))
        return facts
    if isinstance(node, _ast.AlterEnumStmt) and node.oldVal is None:
        name = _qname([s.sval for s in node.typeName])
        facts = Facts(kind="ALTER TYPE")
        facts.obj("type", name, Role.ALTERED)
        facts.op(OpKind.ALTER_TYPE_ADD_VALUE, name)
        return facts
    return None


def _enum(value: Any) -> str:
    return str(getattr(value, "name", value))


def _qname(parts: list[str]) -> QName:
    """(schema, name) from a name list; names in a pglast tree are already folded."""
    return (parts[-2] if len(parts) >= 2 else None, parts[-1])


def _range_var(node: Any) -> QName:
    return (node.schemaname, node.relname)


def _refresh(node: Any) -> Facts:
    """``REFRESH MATERIALIZED VIEW [CONCURRENTLY] name [WITH [NO] DATA]``: its rows are
    replaced, so the view is written."""
    facts = Facts(kind="REFRESH MATERIALIZED VIEW")
    name = _range_var(node.relation)
    facts.obj("materialized view", name, Role.WRITTEN)
    facts.op(OpKind.REFRESH_MATERIALIZED_VIEW, name,
             flags=("concurrently" if node.concurrent else "",
                    "no_data" if node.skipData else ""))
    return facts


def _create_matview(node: Any) -> Facts:
    """``CREATE MATERIALIZED VIEW name AS query``: the view is created, its query's tables are
    read (names of the query's own CTEs excluded)."""
    facts = Facts(kind="CREATE MATERIALIZED VIEW")
    name = _range_var(node.into.rel)
    facts.obj("materialized view", name, Role.CREATED)
    facts.op(OpKind.CREATE_VIEW, name, detail="materialized view")
    for table in _relations_read(node.query):
        facts.obj("table", table, Role.READ)
    return facts


def _relations_read(node: Any) -> list[QName]:
    """Every relation a query names, outside of names its WITH clauses define."""
    ctes = {c.ctename for c in _walk(node) if isinstance(c, _ast.CommonTableExpr)}
    found = [_range_var(r) for r in _walk(node) if isinstance(r, _ast.RangeVar)]
    return [n for n in dict.fromkeys(found) if n[0] is not None or n[1] not in ctes]


def _walk(node: Any) -> Iterator[Any]:
    """Every pglast node under ``node`` (itself included)."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
        return
    if not isinstance(node, _ast.Node):
        return
    yield node
    for attr in getattr(type(node), "__slots__", ()):
        yield from _walk(getattr(node, attr, None))


def _rename_or_move(node: Any) -> Facts | None:
    """``ALTER SEQUENCE|VIEW|MATERIALIZED VIEW|INDEX name RENAME TO new | SET SCHEMA s``."""
    is_rename = isinstance(node, _ast.RenameStmt)
    object_kind = _RELATION_KINDS.get(_enum(node.renameType if is_rename else node.objectType))
    if object_kind is None or node.relation is None:
        return None
    if is_rename and node.subname is not None:
        return None  # a column or constraint rename: not read here
    name = _range_var(node.relation)
    facts = Facts(kind=f"ALTER {object_kind.upper()}")
    if is_rename:
        facts.obj(object_kind, name, Role.RENAMED, new_name=node.newname)
        facts.op(_RENAME_OPS[object_kind], name, detail=node.newname)
    else:
        facts.obj(object_kind, name, Role.RENAMED, new_schema=node.newschema)
        facts.op(_SET_SCHEMA_OPS[object_kind], name, detail=node.newschema)
    return facts


# --- DO blocks ----------------------------------------------------------------------------------


def _do(node: Any, statement: Statement, analyse: Analyse) -> Facts:
    """``DO [LANGUAGE plpgsql] $$ body $$``: the facts of the static SQL in the body."""
    options = {d.defname: d.arg.sval for d in node.args or ()}
    language = options.get("language", "plpgsql").lower()
    if language != "plpgsql":
        raise NotAnalysed(f"a DO block in {language} cannot be read")
    body = options.get("as", "")
    tag = "$migorch$"
    while tag in body:
        tag = tag[:-1] + "_$"
    wrapper = (f"CREATE FUNCTION pg_temp.migorch_do() RETURNS void LANGUAGE plpgsql "
               f"AS {tag}{body}{tag}")
    return plpgsql_facts(wrapper, statement, analyse, kind="DO")


def plpgsql_facts(create_function: str, statement: Statement, analyse: Analyse, *,
                  kind: str) -> Facts:
    """Facts of the PL/pgSQL body of ``create_function`` (a CREATE FUNCTION statement's text)
    as if it ran: the union of what its statements do.

    Raises NotAnalysed when the body does not parse, runs dynamic SQL or holds a statement
    that cannot be analysed exactly.
    """
    if _pg_parser is None:
        raise NotAnalysed("PostgreSQL's parser (pglast) is not available")
    try:
        tree = json.loads(_pg_parser.parse_plpgsql_json(create_function))
    except _pg_parser.ParseError as exc:
        raise NotAnalysed(f"PostgreSQL's PL/pgSQL parser cannot read the body ({exc.args[0]})") \
            from exc
    facts = Facts(kind=kind)
    for expr, within in _expressions(tree):
        _add_expression(expr, within, statement, analyse, facts)
    return facts


# --- function bodies and calls ------------------------------------------------------------------


def function_name(node: Any) -> QName | None:
    """The name a ``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` defines, or None for another
    statement."""
    if _ast is None or not isinstance(node, _ast.CreateFunctionStmt):
        return None
    return _qname([s.sval for s in node.funcname])


def function_body_facts(node: Any, statement: Statement, analyse: Analyse) -> Facts:
    """What calling the function ``node`` (a CreateFunctionStmt) does: its body's facts.

    SQL bodies (``AS '...'`` or ``BEGIN ATOMIC``) and PL/pgSQL bodies are read; a function
    with its own ``SET`` (``search_path`` changes what names mean) or in another language is
    NotAnalysed.
    """
    options = {d.defname: d.arg for d in node.options or ()}
    if "set" in options:
        raise NotAnalysed("it sets its own configuration (SET), which changes what names mean")
    language = str(getattr(options.get("language"), "sval", "sql")).lower()
    if language == "plpgsql":
        return plpgsql_facts(statement.text, statement, analyse, kind="SELECT")
    if language != "sql":
        raise NotAnalysed(f"its body is in {language}")
    if node.sql_body is not None:
        raise NotAnalysed("a BEGIN ATOMIC body is not read")
    body = options.get("as")
    text = body[0].sval if isinstance(body, tuple) and body else ""
    facts = Facts(kind="SELECT")
    for inner in split_sql(text).statements:
        _add_expression({"query": inner.text}, "PLpgSQL_stmt_execsql", statement, analyse, facts)
    return facts


def called_function(node: Any) -> QName | None:
    """The function a ``SELECT f(constants)`` or ``CALL p(constants)`` calls, else None."""
    if _ast is None:
        return None
    if isinstance(node, _ast.CallStmt):
        call = node.funccall
    elif (isinstance(node, _ast.SelectStmt) and node.targetList is not None
          and len(node.targetList) == 1 and node.fromClause is None
          and node.whereClause is None and node.withClause is None):
        call = node.targetList[0].val
    else:
        return None
    if not isinstance(call, _ast.FuncCall) or call.over is not None:
        return None
    if any(not _is_constant(arg) for arg in call.args or ()):
        return None
    return _qname([s.sval for s in call.funcname])


def _is_constant(node: Any) -> bool:
    while isinstance(node, _ast.TypeCast):
        node = node.arg
    return isinstance(node, _ast.A_Const)


def _expressions(node: Any, within: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Each ``PLpgSQL_expr`` of a PL/pgSQL tree with the statement type holding it; raises
    NotAnalysed at dynamic SQL or a statement type not read here."""
    if isinstance(node, list):
        for item in node:
            yield from _expressions(item, within)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "PLpgSQL_expr":
            yield value, within
            continue
        if key in _PLPGSQL_DYNAMIC:
            raise NotAnalysed("runs dynamic SQL (EXECUTE), which static analysis cannot see")
        if key.startswith("PLpgSQL_stmt_"):
            if key not in _PLPGSQL_PLAIN:
                raise NotAnalysed(f"PL/pgSQL {key[len('PLpgSQL_stmt_'):].upper()} is not "
                                  "interpreted")
            yield from _expressions(value, key)
        else:  # variables' DEFAULT expressions (under "datums") are read too
            yield from _expressions(value, within)


def _add_expression(expr: dict[str, Any], within: str, statement: Statement,
                    analyse: Analyse, facts: Facts) -> None:
    """Analyse one embedded query or expression as a statement of its own, and add its facts."""
    query = str(expr.get("query", ""))
    mode = int(expr.get("parseMode", 0))
    if mode >= 3:
        query = "SELECT " + _ASSIGNMENT.sub("", query, count=1)
    elif mode != 0:
        query = "SELECT " + query
    inner = Statement(index=statement.index, text=query, line=statement.line,
                      end_line=statement.end_line, start=statement.start, end=statement.end)
    result = analyse(inner)
    if not result.analysed:
        what = "a statement" if within == "PLpgSQL_stmt_execsql" else "an expression"
        raise NotAnalysed(f"{what} in the body is not analysed ({_short(query)}: {result.reason})")
    facts.objects.extend(result.objects)
    facts.ops.extend(result.ops)


def _short(text: str, limit: int = 50) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
