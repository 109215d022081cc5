"""Facts from sqlglot's syntax tree, for the statements whose structure matters.

sqlglot is used where its tree carries what the rules need and token matching would not be
exact: CREATE TABLE (column constraints, references), views, DML and queries (targets, what is
read, WHERE), and the column and constraint actions of ALTER TABLE (types, NOT NULL, defaults and
how volatile they are). Each statement is parsed on its own with ``read="postgres"``.

Only node types checked here are interpreted. A generic ``exp.Command`` (sqlglot's fallback for
syntax it does not structure), a parse error or a node we do not know make the statement
:class:`~pytest_migorch.sql.facts.NotAnalysed`: the analysis reports it instead of guessing.

ALTER TABLE, which is read action by action, has a module of its own:
:mod:`pytest_migorch.sql.alter_table`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from pytest_migorch.sql.alter_table import analyse_alter_table
from pytest_migorch.sql.cursor import QName
from pytest_migorch.sql.facts import Facts, NotAnalysed, OpKind, Role
from pytest_migorch.sql.split import Token
from pytest_migorch.sql.sqlglot_nodes import (
    column_op,
    ident,
    parse_statement,
    reference,
    table_name,
)

__all__ = ["analyse_parsed"]

#: Functions a plain ``SELECT`` may call without hiding what the statement does.
_HARMLESS_CALLS = {
    "set_config", "current_setting", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_advisory_unlock", "pg_try_advisory_lock", "pg_try_advisory_xact_lock", "nextval",
    "currval", "setval", "pg_sleep", "version", "now", "count", "to_regclass",
}
def analyse_parsed(kind: str, text: str, tokens: Sequence[Token]) -> Facts:
    """Facts for ``text`` (one statement) via sqlglot; raises NotAnalysed when not exact."""
    if kind == "ALTER TABLE":
        return analyse_alter_table(text, tokens)
    node = parse_statement(text, kind)
    facts = Facts(kind=kind)
    if isinstance(node, exp.Create):
        _create(node, facts)
    elif isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy)):
        facts.kind = _dml_kind(node)
        _query(node, facts)
    elif isinstance(node, exp.Query):
        facts.kind = "SELECT"
        _check_calls(node)
        _set_config_calls(node, facts)
        _query(node, facts)
    else:
        raise NotAnalysed(f"sqlglot reads it as {type(node).__name__}, which is not interpreted")
    return facts


def _dml_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Copy):
        return "COPY"
    return type(node).__name__.upper()


# --- names --------------------------------------------------------------------------------------


# --- CREATE -------------------------------------------------------------------------------------


def _create(node: exp.Create, facts: Facts) -> None:
    create_kind = str(node.args.get("kind") or "").upper()
    if create_kind == "TABLE":
        _create_table(node, facts)
    elif create_kind == "VIEW":
        _create_view(node, facts)
    else:
        raise NotAnalysed(f"CREATE {create_kind} is not interpreted")


def _properties(node: exp.Create) -> list[exp.Expr]:
    props = node.args.get("properties")
    return list(props.expressions) if props is not None else []


def _create_table(node: exp.Create, facts: Facts) -> None:
    name = table_name(node.this)
    if name is None:
        raise NotAnalysed("CREATE TABLE without a table name")
    props = _properties(node)
    temporary = any(isinstance(p, exp.TemporaryProperty) for p in props)
    facts.obj("table", name, Role.CREATED)
    facts.op(OpKind.CREATE_TABLE, name, flags=("temporary" if temporary else "",
                                               "if_not_exists" if node.args.get("exists") else ""))
    _columns(name, node, facts)
    for prop in props:
        if isinstance(prop, exp.PartitionedOfProperty):
            parent = table_name(prop.this)
            if parent is not None:
                facts.obj("table", parent, Role.ALTERED)
                facts.op(OpKind.ATTACH_PARTITION, parent)
        elif isinstance(prop, exp.InheritsProperty):
            for parent_node in prop.expressions:
                parent = table_name(parent_node)
                if parent is not None:
                    facts.obj("table", parent, Role.READ)
    for like in node.find_all(exp.LikeProperty):
        parent = table_name(like.this)
        if parent is not None:
            facts.obj("table", parent, Role.READ)
    for ref in node.find_all(exp.Reference):
        reference(ref, facts)
    if node.expression is not None:
        _query(node.expression, facts)


def _columns(name: QName, node: exp.Create, facts: Facts) -> None:
    """COLUMN facts of a CREATE TABLE, a table-level PRIMARY KEY (a, b) marking its columns,
    named (``CONSTRAINT t_pk PRIMARY KEY (a)``) or not."""
    if not isinstance(node.this, exp.Schema):
        return
    keys = {ident(col) for element in node.this.expressions
            for pk in _table_primary_keys(element) for col in pk.find_all(exp.Identifier)}
    for coldef in node.this.expressions:
        if isinstance(coldef, exp.ColumnDef):
            column_op(name, coldef, facts, primary_key=ident(coldef.this) in keys)


def _table_primary_keys(element: exp.Expression) -> list[exp.PrimaryKey]:
    """The PRIMARY KEY of a table element: bare, or inside ``CONSTRAINT name ...``."""
    if isinstance(element, exp.PrimaryKey):
        return [element]
    if isinstance(element, exp.Constraint):
        return [e for e in element.expressions if isinstance(e, exp.PrimaryKey)]
    return []


def _create_view(node: exp.Create, facts: Facts) -> None:
    name = table_name(node.this)
    if name is None:
        raise NotAnalysed("CREATE VIEW without a name")
    materialized = any(isinstance(p, exp.MaterializedProperty) for p in _properties(node))
    kind = "materialized view" if materialized else "view"
    facts.kind = "CREATE MATERIALIZED VIEW" if materialized else "CREATE VIEW"
    facts.obj(kind, name, Role.CREATED)
    facts.op(OpKind.CREATE_VIEW, name, detail=kind)
    if node.expression is not None:
        _query(node.expression, facts)


# --- DML and queries ----------------------------------------------------------------------------


def _check_calls(node: exp.Expr) -> None:
    """A SELECT that calls a function we cannot see into may do anything (DDL, writes)."""
    for call in node.find_all(exp.Anonymous):
        name = str(call.name).lower()
        if name not in _HARMLESS_CALLS:
            raise NotAnalysed(f"calls {name}(), whose effects static analysis cannot see")


def _set_config_calls(node: exp.Expr, facts: Facts) -> None:
    """``SELECT set_config('lock_timeout', '5s', false)`` sets a parameter like SET does."""
    for call in node.find_all(exp.Anonymous):
        args = call.expressions
        if str(call.name).lower() == "set_config" and len(args) >= 2 and all(
                isinstance(a, exp.Literal) and a.is_string for a in args[:2]):
            facts.op(OpKind.SET, name=(None, str(args[0].this).lower()), detail=str(args[1].this))


def _cte_names(node: exp.Expr) -> set[str]:
    names: set[str] = set()
    for cte in node.find_all(exp.CTE):
        alias = cte.args.get("alias")
        name = ident(alias.this) if isinstance(alias, exp.TableAlias) else None
        if name:
            names.add(name)
    return names


def _query(node: exp.Expr, facts: Facts) -> None:
    """Writes (INSERT/UPDATE/DELETE/MERGE/COPY FROM, also inside CTEs) and reads of a query."""
    ctes = _cte_names(node)
    targets: set[int] = set()
    for dml in node.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy):
        target_node = _dml_target(dml)
        if target_node is None:
            continue
        targets.add(id(target_node if not isinstance(target_node, exp.Schema)
                       else target_node.this))
        _write(dml, target_node, facts)
    into = node.args.get("into") if isinstance(node, exp.Select) else None
    if into is not None:
        created = table_name(into.this)
        if created is not None:
            targets.add(id(into.this))
            facts.obj("table", created, Role.CREATED)
            facts.op(OpKind.CREATE_TABLE, created)
    for table in node.find_all(exp.Table):
        if id(table) in targets or not _is_read_position(table):
            continue
        name = table_name(table)
        if name is None or (name[0] is None and name[1] in ctes):
            continue
        facts.obj("table", name, Role.READ)


def _dml_target(node: exp.Expr) -> exp.Expr | None:
    target: exp.Expr | None = None
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        target = node.this
    elif isinstance(node, exp.Copy) and node.args.get("kind"):  # COPY ... FROM: rows come in
        target = node.this
    return target


def _write(dml: exp.Expr, target_node: exp.Expr, facts: Facts) -> None:
    name = table_name(target_node)
    if name is None:
        raise NotAnalysed(f"{type(dml).__name__.upper()} target is not a table name")
    facts.obj("table", name, Role.WRITTEN)
    flags: list[str] = []
    if isinstance(dml, (exp.Update, exp.Delete)) and dml.args.get("where") is not None:
        flags.append("where")
    conflict = dml.args.get("conflict") if isinstance(dml, exp.Insert) else None
    if conflict is not None and "UPDATE" in str(conflict.args.get("action") or "").upper():
        flags.append("on_conflict_update")  # ON CONFLICT ... DO UPDATE changes existing rows
    facts.op(_DML_OPS[type(dml)], name, flags=tuple(flags))


_DML_OPS: dict[type[exp.Expr], OpKind] = {
    exp.Insert: OpKind.INSERT, exp.Update: OpKind.UPDATE, exp.Delete: OpKind.DELETE,
    exp.Merge: OpKind.MERGE, exp.Copy: OpKind.COPY,
}


def _is_read_position(table: exp.Table) -> bool:
    """Tables in FROM/JOIN/USING (and COPY's own table, for COPY TO) are read."""
    parent = table.parent
    if isinstance(parent, exp.Schema):
        parent = parent.parent
    if isinstance(parent, (exp.From, exp.Join)):
        return True
    if isinstance(parent, (exp.Delete, exp.Merge)) and table.arg_key == "using":
        return True
    return isinstance(parent, exp.Copy) and not parent.args.get("kind")
