"""The one place sqlglot parses a statement, and the node readers every recogniser shares.

:func:`parse_statement` parses one statement with ``read="postgres"`` and turns every way sqlglot
can fail (parse errors, odd exceptions, its generic ``exp.Command`` fallback) into
:class:`~pytest_migorch.sql.facts.NotAnalysed`, so no recogniser has to. The readers below turn
identifier and table nodes into names as PostgreSQL stores them, and decide whether a DEFAULT
calls a volatile function. Used by :mod:`pytest_migorch.sql.ast_recognisers` and
:mod:`pytest_migorch.sql.alter_table`.
"""

from __future__ import annotations

import logging

import sqlglot
from sqlglot import exp

from pytest_migorch.sql.cursor import QName
from pytest_migorch.sql.facts import Facts, NotAnalysed, OpKind, Role

__all__ = ["SERIAL_TYPES", "parse_statement", "ident", "table_name", "reference",
           "volatile_call", "column_op"]

logger = logging.getLogger(__name__)


class _DropCommandFallbackWarnings(logging.Filter):
    """sqlglot logs a warning for every statement it turns into a Command; we report those
    statements ourselves (as not analysed), so the warning would only be noise on stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_DropCommandFallbackWarnings())

#: Functions known not to be VOLATILE (or harmless in a DEFAULT). Anything else that sqlglot
#: does not model is treated as volatile, as PostgreSQL does for functions declared without a
#: volatility.
_NON_VOLATILE = {
    "now", "statement_timestamp", "transaction_timestamp", "current_setting", "to_timestamp",
    "to_date", "to_char", "make_interval", "make_date", "make_timestamp", "make_timestamptz",
    "timezone", "date_trunc", "jsonb_build_object", "json_build_object", "jsonb_build_array",
    "json_build_array", "array_fill", "current_database", "current_schema", "current_user",
    "session_user", "inet_client_addr", "pg_backend_pid", "localtimestamp", "localtime",
    "current_date", "current_time", "current_timestamp", "nullif", "concat", "format",
    "replace", "btrim", "ltrim", "rtrim", "lpad", "rpad", "md5", "encode", "decode",
}


_VOLATILE_CLASSES: tuple[type[exp.Expr], ...] = (exp.Rand, exp.Uuid)


SERIAL_TYPES = {"SERIAL", "BIGSERIAL", "SMALLSERIAL"}


def parse_statement(text: str, kind: str) -> exp.Expr:
    """The sqlglot tree of one statement; raises NotAnalysed when it has no exact structure."""
    try:
        node = sqlglot.parse_one(text, read="postgres")
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotAnalysed(f"sqlglot cannot parse it ({first[:120]})") from exc
    except Exception as exc:  # sqlglot may raise anything on odd input; never crash on it
        logger.debug("sqlglot failed on %r", text[:200], exc_info=True)
        raise NotAnalysed(f"sqlglot failed on it ({type(exc).__name__})") from exc
    if node is None or isinstance(node, (exp.Command, exp.Block)):
        raise NotAnalysed(f"sqlglot does not structure {kind}")
    return node


def ident(node: exp.Expr | None) -> str | None:
    """The stored name of an identifier node: unquoted folds to lower case."""
    if isinstance(node, exp.Identifier):
        text = str(node.this)
        return text if node.quoted else text.lower()
    return None


def table_name(node: exp.Expr | None) -> QName | None:
    """(schema, name) of a Table node (or a Schema wrapping one)."""
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        return None
    name = ident(node.this)
    return (ident(node.args.get("db")), name) if name else None


def reference(ref: exp.Reference, facts: Facts) -> None:
    """A REFERENCES clause: the referenced table is read (and briefly locked)."""
    target = table_name(ref.this)
    if target is not None:
        facts.obj("table", target, Role.READ)
        facts.op(OpKind.REFERENCES, target)


def volatile_call(expr: exp.Expr | None) -> str | None:
    """The first function in a DEFAULT that makes ADD COLUMN rewrite the table, if any."""
    if expr is None:
        return None
    for func in expr.find_all(exp.Func):
        if isinstance(func, _VOLATILE_CLASSES):
            return "gen_random_uuid" if isinstance(func, exp.Uuid) else "random"
        if isinstance(func, exp.Anonymous) and str(func.name).lower() not in _NON_VOLATILE:
            return str(func.name).lower()
    return None


def column_op(table: QName, coldef: exp.ColumnDef, facts: Facts, *,
              primary_key: bool = False) -> None:
    """A COLUMN fact: the column's declared type and whether it is a key (for the type-choice
    rules, which care about the columns that grow with the table, like its primary key)."""
    column = ident(coldef.this)
    dtype = coldef.args.get("kind")
    if column is None or not isinstance(dtype, exp.DataType):
        return
    flags = ["primary_key" if primary_key else ""]
    for constraint in coldef.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.PrimaryKeyColumnConstraint):
            flags.append("primary_key")
        elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
            flags.append("identity")
        elif isinstance(kind, exp.Reference):
            flags.append("references")
    facts.op(OpKind.COLUMN, table, column=column, detail=dtype.sql(dialect="postgres"),
             flags=tuple(flags))
