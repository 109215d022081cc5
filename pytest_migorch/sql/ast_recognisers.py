"""Facts from sqlglot's syntax tree, for the statements whose structure matters.

sqlglot is used where its tree carries what the rules need and token matching would not be
exact: CREATE TABLE (column constraints, references), views, DML and queries (targets, what is
read, WHERE), and the column and constraint actions of ALTER TABLE (types, NOT NULL, defaults and
how volatile they are). Each statement is parsed on its own with ``read="postgres"``.

Only node types checked here are interpreted. A generic ``exp.Command`` (sqlglot's fallback for
syntax it does not structure), a parse error or a node we do not know make the statement
:class:`~pytest_migorch.sqlfacts.NotAnalysed`: the analysis reports it instead of guessing.

ALTER TABLE is split into its actions first (top-level commas) and each action is read on its
own: the simple ones (RENAME, DROP COLUMN/CONSTRAINT, VALIDATE, OWNER, SET SCHEMA...) from
tokens, the others by parsing ``ALTER TABLE <name> <action>`` with sqlglot. That keeps one
action sqlglot does not know from hiding the others, and keeps ``RENAME a TO b`` a column
rename (sqlglot reads it as a table rename).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from pytest_migorch.sql.facts import Facts, InvalidSql, NotAnalysed, ObjectRef, Role
from pytest_migorch.sql.split import Cursor, QName, Token, split_top_level

__all__ = ["analyse_parsed"]

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
#: Functions a plain ``SELECT`` may call without hiding what the statement does.
_HARMLESS_CALLS = {
    "set_config", "current_setting", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_advisory_unlock", "pg_try_advisory_lock", "pg_try_advisory_xact_lock", "nextval",
    "currval", "setval", "pg_sleep", "version", "now", "count", "to_regclass",
}
_SERIAL_TYPES = {"SERIAL", "BIGSERIAL", "SMALLSERIAL"}


def analyse_parsed(kind: str, text: str, tokens: Sequence[Token]) -> Facts:
    """Facts for ``text`` (one statement) via sqlglot; raises NotAnalysed when not exact."""
    if kind == "ALTER TABLE":
        return _alter_table(text, tokens)
    node = _parse(text, kind)
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


def _parse(text: str, kind: str) -> exp.Expr:
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


def _dml_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Copy):
        return "COPY"
    return type(node).__name__.upper()


# --- names --------------------------------------------------------------------------------------


def _ident(node: exp.Expr | None) -> str | None:
    """The stored name of an identifier node: unquoted folds to lower case."""
    if isinstance(node, exp.Identifier):
        text = str(node.this)
        return text if node.quoted else text.lower()
    return None


def _table_name(node: exp.Expr | None) -> QName | None:
    """(schema, name) of a Table node (or a Schema wrapping one)."""
    if isinstance(node, exp.Schema):
        node = node.this
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        return None
    name = _ident(node.this)
    return (_ident(node.args.get("db")), name) if name else None


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
    name = _table_name(node.this)
    if name is None:
        raise NotAnalysed("CREATE TABLE without a table name")
    props = _properties(node)
    temporary = any(isinstance(p, exp.TemporaryProperty) for p in props)
    facts.obj("table", name, Role.CREATED)
    facts.op("create_table", name, flags=("temporary" if temporary else "",))
    for prop in props:
        if isinstance(prop, exp.PartitionedOfProperty):
            parent = _table_name(prop.this)
            if parent is not None:
                facts.obj("table", parent, Role.ALTERED)
                facts.op("attach_partition", parent)
        elif isinstance(prop, exp.InheritsProperty):
            for parent_node in prop.expressions:
                parent = _table_name(parent_node)
                if parent is not None:
                    facts.obj("table", parent, Role.READ)
    for like in node.find_all(exp.LikeProperty):
        parent = _table_name(like.this)
        if parent is not None:
            facts.obj("table", parent, Role.READ)
    for ref in node.find_all(exp.Reference):
        _reference(ref, facts)
    if node.expression is not None:
        _query(node.expression, facts)


def _reference(ref: exp.Reference, facts: Facts) -> None:
    """A REFERENCES clause: the referenced table is read (and briefly locked)."""
    target = _table_name(ref.this)
    if target is not None:
        facts.obj("table", target, Role.READ)
        facts.op("references", target)


def _create_view(node: exp.Create, facts: Facts) -> None:
    name = _table_name(node.this)
    if name is None:
        raise NotAnalysed("CREATE VIEW without a name")
    materialized = any(isinstance(p, exp.MaterializedProperty) for p in _properties(node))
    kind = "materialized view" if materialized else "view"
    facts.kind = "CREATE MATERIALIZED VIEW" if materialized else "CREATE VIEW"
    facts.obj(kind, name, Role.CREATED)
    facts.op("create_view", name, detail=kind)
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
            facts.op("set", name=(None, str(args[0].this).lower()), detail=str(args[1].this))


def _cte_names(node: exp.Expr) -> set[str]:
    names: set[str] = set()
    for cte in node.find_all(exp.CTE):
        alias = cte.args.get("alias")
        name = _ident(alias.this) if isinstance(alias, exp.TableAlias) else None
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
        created = _table_name(into.this)
        if created is not None:
            targets.add(id(into.this))
            facts.obj("table", created, Role.CREATED)
            facts.op("create_table", created)
    for table in node.find_all(exp.Table):
        if id(table) in targets or not _is_read_position(table):
            continue
        name = _table_name(table)
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
    name = _table_name(target_node)
    if name is None:
        raise NotAnalysed(f"{type(dml).__name__.upper()} target is not a table name")
    facts.obj("table", name, Role.WRITTEN)
    flags: list[str] = []
    if isinstance(dml, (exp.Update, exp.Delete)) and dml.args.get("where") is not None:
        flags.append("where")
    conflict = dml.args.get("conflict") if isinstance(dml, exp.Insert) else None
    if conflict is not None and "UPDATE" in str(conflict.args.get("action") or "").upper():
        flags.append("on_conflict_update")  # ON CONFLICT ... DO UPDATE changes existing rows
    op = "copy" if isinstance(dml, exp.Copy) else type(dml).__name__.lower()
    facts.op(op, name, flags=tuple(flags))


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


# --- ALTER TABLE --------------------------------------------------------------------------------


def _alter_table(text: str, tokens: Sequence[Token]) -> Facts:
    facts = Facts(kind="ALTER TABLE")
    cursor = Cursor(tokens)
    cursor.words("alter", "table")
    cursor.words("if", "exists")
    cursor.word("only")
    table = cursor.name()
    cursor.punct("*")
    if table is None or cursor.at_end():
        raise NotAnalysed("ALTER TABLE without a table or an action")
    header = text[tokens[0].start:tokens[cursor.pos - 1].end]
    facts.obj("table", table, Role.ALTERED)
    for action in split_top_level(tokens[cursor.pos:]):
        if not action:
            raise NotAnalysed("empty ALTER TABLE action")
        if not _token_action(table, Cursor(action), facts):
            _parsed_action(table, header + " " + text[action[0].start:action[-1].end], facts)
    return facts


def _token_action(table: QName, cur: Cursor, facts: Facts) -> bool:
    """Actions read from tokens; False when the action is left to sqlglot."""
    first, second = cur.peek(), cur.peek(1)
    assert first is not None
    word = first.value if first.kind == "word" else ""
    after = second.value if second is not None and second.kind in ("word", "punct") else ""
    if word == "rename":
        _rename(table, cur, facts)
    elif word == "drop":
        return _drop_action(table, cur, facts)
    elif word == "add":
        return _add_constraint_tokens(table, cur, facts)
    elif word == "alter":
        return _alter_column_tokens(table, cur, facts)
    elif word == "validate" and cur.words("validate", "constraint"):
        constraint = cur.name()
        _expect_end(cur, "VALIDATE CONSTRAINT")
        facts.op("validate_constraint", table, detail=constraint[1] if constraint else None)
    elif word == "set" and after == "schema":
        _set_schema(table, cur, facts)
    elif word == "set" and after in ("logged", "unlogged", "tablespace", "access"):
        facts.op("rewrite_table", table, detail="SET " + after.upper())
    elif word in _CATALOG_ACTIONS or (word == "set" and after in ("(", "without")):
        facts.op("alter_table_other", table, detail=cur.rest_text()[:60])
    elif word == "detach" and after == "partition":
        _detach_partition(table, cur, facts)
    else:
        return False
    return True


#: ALTER TABLE actions that only change the catalog (owner, row security, triggers, ...).
_CATALOG_ACTIONS = {"owner", "enable", "disable", "force", "no", "replica", "cluster", "inherit",
                    "reset"}


def _set_schema(table: QName, cur: Cursor, facts: Facts) -> None:
    cur.words("set", "schema")
    schema = cur.name()
    _expect_end(cur, "SET SCHEMA")
    if schema is None:
        raise NotAnalysed("SET SCHEMA without a schema")
    facts.objects.append(ObjectRef(kind="table", schema=table[0], name=table[1],
                                   role=Role.RENAMED, new_schema=schema[1], new_name=table[1]))
    facts.op("set_schema", table, detail=schema[1])


def _detach_partition(table: QName, cur: Cursor, facts: Facts) -> None:
    cur.words("detach", "partition")
    part = cur.name()
    concurrently = cur.word("concurrently")
    cur.word("finalize")
    _expect_end(cur, "DETACH PARTITION")
    if part is not None:
        facts.obj("table", part, Role.ALTERED)
    facts.op("detach_partition", table, flags=(concurrently,))


def _expect_end(cur: Cursor, what: str) -> None:
    if not cur.at_end():
        raise NotAnalysed(f"unexpected text after {what}: {cur.rest_text()[:40]}")


def _rename(table: QName, cur: Cursor, facts: Facts) -> None:
    """``RENAME TO new`` | ``RENAME CONSTRAINT a TO b`` | ``RENAME [COLUMN] a TO b``."""
    cur.word("rename")
    if cur.word("to"):
        new = cur.name()
        _expect_end(cur, "RENAME TO")
        if new is None:
            raise NotAnalysed("RENAME TO without a name")
        facts.objects[:] = [ObjectRef(kind="table", schema=table[0], name=table[1],
                                      role=Role.RENAMED, new_name=new[1])]
        facts.op("rename_table", table, detail=new[1])
        return
    constraint = cur.word("constraint")
    cur.word("column")
    old = cur.name()
    if not cur.word("to"):
        raise NotAnalysed("RENAME without TO")
    new = cur.name()
    _expect_end(cur, "RENAME")
    if old is None or new is None:
        raise NotAnalysed("RENAME without names")
    if constraint:
        facts.op("rename_constraint", table, detail=new[1])
    else:
        facts.op("rename_column", table, column=old[1], detail=new[1])


def _drop_action(table: QName, cur: Cursor, facts: Facts) -> bool:
    """``DROP [COLUMN] [IF EXISTS] c [CASCADE|RESTRICT]`` or ``DROP CONSTRAINT [IF EXISTS] c``."""
    cur.word("drop")
    if cur.word("constraint"):
        cur.words("if", "exists")
        name = cur.name()
        cascade = cur.word("cascade")
        cur.word("restrict")
        _expect_end(cur, "DROP CONSTRAINT")
        facts.op("drop_constraint", table, detail=name[1] if name else None, flags=(cascade,))
        return True
    if cur.is_next("not", "default", "expression", "identity"):
        return False
    cur.word("column")
    cur.words("if", "exists")
    token = cur.peek()
    if token is not None and token.is_word("column", "constraint", "if"):
        raise InvalidSql("DROP IF EXISTS COLUMN is not valid SQL: write DROP COLUMN IF EXISTS")
    column = cur.name()
    cascade = cur.word("cascade")
    cur.word("restrict")
    _expect_end(cur, "DROP COLUMN")
    if column is None:
        raise NotAnalysed("DROP COLUMN without a column")
    facts.op("drop_column", table, column=column[1], flags=(cascade,))
    return True


def _add_constraint_tokens(table: QName, cur: Cursor, facts: Facts) -> bool:
    """``ADD [CONSTRAINT n] {UNIQUE|PRIMARY KEY} USING INDEX i`` and ``ADD [CONSTRAINT n]
    CHECK (...) [NO INHERIT] [NOT VALID]`` (sqlglot does not structure them)."""
    cur.word("add")
    if cur.word("constraint"):
        cur.name()
    if cur.word("check"):
        token = cur.peek()
        if token is None or token.text != "(":
            raise NotAnalysed("CHECK without an expression")
        cur.skip_group()
        cur.words("no", "inherit")
        not_valid = cur.words("not", "valid")
        _expect_end(cur, "CHECK")
        facts.op("add_constraint", table, detail="check", flags=("not_valid" if not_valid else "",))
        return True
    kind = "unique" if cur.word("unique") else "primary_key" if cur.words("primary", "key") else ""
    if kind and cur.words("using", "index"):
        cur.name()
        cur.words("deferrable") or cur.words("not", "deferrable")
        cur.words("initially", "deferred") or cur.words("initially", "immediate")
        _expect_end(cur, "USING INDEX")
        facts.op("add_constraint", table, detail=kind, flags=("using_index",))
        return True
    return False


def _alter_column_tokens(table: QName, cur: Cursor, facts: Facts) -> bool:
    """Column actions that only change the catalog (statistics, storage, identity options);
    type, NULL and default changes go to sqlglot."""
    cur.word("alter")
    cur.word("column")
    column = cur.name()
    first, second = cur.peek(), cur.peek(1)
    if column is None or first is None:
        return False
    pair = (first.value, second.value if second is not None else "")
    if pair in _CATALOG_COLUMN_ACTIONS or first.is_word("reset") or pair == ("set", "("):
        facts.op("alter_table_other", table, column=column[1], detail=" ".join(pair))
        return True
    return False


_CATALOG_COLUMN_ACTIONS = {("set", "statistics"), ("set", "storage"), ("set", "compression"),
                           ("add", "generated"), ("set", "generated"), ("drop", "identity"),
                           ("restart", ""), ("restart", "with")}


def _parsed_action(table: QName, sql: str, facts: Facts) -> None:
    """Parse ``ALTER TABLE name <one action>`` with sqlglot and interpret the action."""
    node = _parse(sql, "ALTER TABLE")
    actions = node.args.get("actions") or []
    if not isinstance(node, exp.Alter) or len(actions) != 1 or node.args.get("options"):
        raise NotAnalysed("ALTER TABLE action not understood")
    action = actions[0]
    not_valid = bool(node.args.get("not_valid"))
    if isinstance(action, exp.ColumnDef):
        _add_column(table, action, facts)
    elif isinstance(action, exp.AlterColumn):
        _alter_column(table, action, facts)
    elif isinstance(action, exp.AddConstraint):
        for constraint in action.expressions:
            _add_constraint(table, constraint, not_valid, facts)
    else:
        raise NotAnalysed(f"ALTER TABLE action {type(action).__name__} is not interpreted")


def _add_column(table: QName, coldef: exp.ColumnDef, facts: Facts) -> None:
    column = _ident(coldef.this)
    flags: list[str] = []
    detail = None
    dtype = coldef.args.get("kind")
    if isinstance(dtype, exp.DataType) and dtype.this.name in _SERIAL_TYPES:
        flags += ["rewrite", "has_default", "not_null"]
        detail = dtype.this.name.lower()
    for constraint in coldef.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            flags.append("" if kind.args.get("allow_null") else "not_null")
        elif isinstance(kind, exp.DefaultColumnConstraint):
            flags.append("has_default")
            volatile = _volatile_call(kind.this)
            if volatile:
                flags.append("volatile_default")
                detail = volatile
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            flags += ["primary_key", "not_null"]
        elif isinstance(kind, exp.UniqueColumnConstraint):
            flags.append("unique")
        elif isinstance(kind, exp.Reference):
            flags.append("foreign_key")
            _reference(kind, facts)
        elif isinstance(kind, exp.CheckColumnConstraint):
            flags.append("check")
        elif isinstance(kind, (exp.GeneratedAsIdentityColumnConstraint,
                               exp.ComputedColumnConstraint)):
            flags += ["rewrite", "has_default"]
            detail = "identity" if isinstance(
                kind, exp.GeneratedAsIdentityColumnConstraint) else "generated stored"
        elif not isinstance(kind, (exp.CollateColumnConstraint, exp.CommentColumnConstraint)):
            raise NotAnalysed(f"column constraint {type(kind).__name__} is not interpreted")
    facts.op("add_column", table, column=column, detail=detail, flags=tuple(flags))


def _volatile_call(expr: exp.Expr | None) -> str | None:
    """The first function in a DEFAULT that makes ADD COLUMN rewrite the table, if any."""
    if expr is None:
        return None
    for func in expr.find_all(exp.Func):
        if isinstance(func, _VOLATILE_CLASSES):
            return "gen_random_uuid" if isinstance(func, exp.Uuid) else "random"
        if isinstance(func, exp.Anonymous) and str(func.name).lower() not in _NON_VOLATILE:
            return str(func.name).lower()
    return None


def _alter_column(table: QName, action: exp.AlterColumn, facts: Facts) -> None:
    column = _ident(action.this)
    args = action.args
    if args.get("dtype") is not None:
        dtype = args["dtype"]
        if isinstance(dtype, exp.DataType) and dtype.this.name in _SERIAL_TYPES:
            raise InvalidSql(f"ALTER COLUMN ... TYPE {dtype.this.name} is not valid SQL: serial "
                             "types exist only in CREATE TABLE and ADD COLUMN")
        using = args.get("using")
        facts.op("alter_column_type", table, column=column,
                 detail=args["dtype"].sql(dialect="postgres"),
                 flags=("using" if using else "",))
    elif args.get("allow_null") is False:
        facts.op("set_not_null", table, column=column)
    elif args.get("drop") and args.get("allow_null"):
        facts.op("drop_not_null", table, column=column)
    elif "default" in args and args.get("default") is not None:
        facts.op("set_default", table, column=column)
    elif args.get("drop"):
        facts.op("drop_default", table, column=column)
    else:
        raise NotAnalysed("ALTER COLUMN form is not interpreted")


def _add_constraint(table: QName, node: exp.Expr, not_valid: bool, facts: Facts) -> None:
    kinds = node.expressions if isinstance(node, exp.Constraint) else [node]
    for kind in kinds:
        if isinstance(kind, exp.ForeignKey):
            ctype = "foreign_key"
            ref = kind.args.get("reference")
            if isinstance(ref, exp.Reference):
                _reference(ref, facts)
        elif isinstance(kind, (exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)):
            ctype = "primary_key"
        elif isinstance(kind, exp.UniqueColumnConstraint):
            ctype = "unique"
        elif isinstance(kind, exp.CheckColumnConstraint):
            ctype = "check"
        elif isinstance(kind, exp.ExcludeColumnConstraint):
            ctype = "exclude"
        else:
            raise NotAnalysed(f"constraint {type(kind).__name__} is not interpreted")
        facts.op("add_constraint", table, detail=ctype, flags=("not_valid" if not_valid else "",))
