"""Facts of ALTER TABLE, read one action at a time.

ALTER TABLE is split into its actions first (top-level commas) and each action is read on its
own: the simple ones (RENAME, DROP COLUMN/CONSTRAINT, VALIDATE, OWNER, SET SCHEMA...) from
tokens, the others by parsing ``ALTER TABLE <name> <action>`` with sqlglot. That keeps one
action sqlglot does not know from hiding the others, and keeps ``RENAME a TO b`` a column
rename (sqlglot reads it as a table rename). It is the statement most migrations consist of and
the one most risk rules look at, hence a module of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from pytest_migorch.sql.cursor import Cursor, QName, split_top_level
from pytest_migorch.sql.facts import Facts, InvalidSql, NotAnalysed, ObjectRef, OpKind, Role
from pytest_migorch.sql.split import Token
from pytest_migorch.sql.sqlglot_nodes import (
    SERIAL_TYPES,
    column_op,
    ident,
    parse_statement,
    reference,
    volatile_call,
)

__all__ = ["analyse_alter_table"]


def analyse_alter_table(text: str, tokens: Sequence[Token]) -> Facts:
    """Facts of an ALTER TABLE statement; raises NotAnalysed when an action is not exact."""
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
        facts.op(OpKind.VALIDATE_CONSTRAINT, table, detail=constraint[1] if constraint else None)
    elif word == "set" and after == "schema":
        _set_schema(table, cur, facts)
    elif word == "set" and after in ("logged", "unlogged", "tablespace", "access"):
        facts.op(OpKind.REWRITE_TABLE, table, detail="SET " + after.upper())
    elif word in _CATALOG_ACTIONS or (word == "set" and after in ("(", "without")):
        facts.op(OpKind.ALTER_TABLE_OTHER, table, detail=cur.rest_text()[:60])
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
    facts.op(OpKind.SET_SCHEMA, table, detail=schema[1])


def _detach_partition(table: QName, cur: Cursor, facts: Facts) -> None:
    cur.words("detach", "partition")
    part = cur.name()
    concurrently = cur.word("concurrently")
    cur.word("finalize")
    _expect_end(cur, "DETACH PARTITION")
    if part is not None:
        facts.obj("table", part, Role.ALTERED)
    facts.op(OpKind.DETACH_PARTITION, table, flags=(concurrently,))


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
        facts.op(OpKind.RENAME_TABLE, table, detail=new[1])
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
        facts.op(OpKind.RENAME_CONSTRAINT, table, detail=new[1])
    else:
        facts.op(OpKind.RENAME_COLUMN, table, column=old[1], detail=new[1])


def _drop_action(table: QName, cur: Cursor, facts: Facts) -> bool:
    """``DROP [COLUMN] [IF EXISTS] c [CASCADE|RESTRICT]`` or ``DROP CONSTRAINT [IF EXISTS] c``."""
    cur.word("drop")
    if cur.word("constraint"):
        if_exists = "if_exists" if cur.words("if", "exists") else ""
        name = cur.name()
        cascade = cur.word("cascade")
        cur.word("restrict")
        _expect_end(cur, "DROP CONSTRAINT")
        facts.op(OpKind.DROP_CONSTRAINT, table, detail=name[1] if name else None,
                 flags=(cascade, if_exists))
        return True
    if cur.is_next("not", "default", "expression", "identity"):
        return False
    cur.word("column")
    column_if_exists = cur.words("if", "exists")
    token = cur.peek()
    if token is not None and token.is_word("column", "constraint", "if"):
        raise InvalidSql("DROP IF EXISTS COLUMN is not valid SQL: write DROP COLUMN IF EXISTS")
    column = cur.name()
    cascade = cur.word("cascade")
    cur.word("restrict")
    _expect_end(cur, "DROP COLUMN")
    if column is None:
        raise NotAnalysed("DROP COLUMN without a column")
    facts.op(OpKind.DROP_COLUMN, table, column=column[1],
             flags=(cascade, "if_exists" if column_if_exists else ""))
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
        facts.op(OpKind.ADD_CONSTRAINT, table, detail="check",
                 flags=("not_valid" if not_valid else "",))
        return True
    kind = "unique" if cur.word("unique") else "primary_key" if cur.words("primary", "key") else ""
    if kind and cur.words("using", "index"):
        cur.name()
        cur.words("deferrable") or cur.words("not", "deferrable")
        cur.words("initially", "deferred") or cur.words("initially", "immediate")
        _expect_end(cur, "USING INDEX")
        facts.op(OpKind.ADD_CONSTRAINT, table, detail=kind, flags=("using_index",))
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
        facts.op(OpKind.ALTER_TABLE_OTHER, table, column=column[1], detail=" ".join(pair))
        return True
    return False


_CATALOG_COLUMN_ACTIONS = {("set", "statistics"), ("set", "storage"), ("set", "compression"),
                           ("add", "generated"), ("set", "generated"), ("drop", "identity"),
                           ("restart", ""), ("restart", "with")}


def _parsed_action(table: QName, sql: str, facts: Facts) -> None:
    """Parse ``ALTER TABLE name <one action>`` with sqlglot and interpret the action."""
    node = parse_statement(sql, "ALTER TABLE")
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
    column = ident(coldef.this)
    flags: list[str] = []
    detail = None
    dtype = coldef.args.get("kind")
    if isinstance(dtype, exp.DataType) and dtype.this.name in SERIAL_TYPES:
        flags += ["rewrite", "has_default", "not_null"]
        detail = dtype.this.name.lower()
    for constraint in coldef.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            flags.append("" if kind.args.get("allow_null") else "not_null")
        elif isinstance(kind, exp.DefaultColumnConstraint):
            flags.append("has_default")
            volatile = volatile_call(kind.this)
            if volatile:
                flags.append("volatile_default")
                detail = volatile
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            flags += ["primary_key", "not_null"]
        elif isinstance(kind, exp.UniqueColumnConstraint):
            flags.append("unique")
        elif isinstance(kind, exp.Reference):
            flags.append("foreign_key")
            reference(kind, facts)
        elif isinstance(kind, exp.CheckColumnConstraint):
            flags.append("check")
        elif isinstance(kind, (exp.GeneratedAsIdentityColumnConstraint,
                               exp.ComputedColumnConstraint)):
            flags += ["rewrite", "has_default"]
            detail = "identity" if isinstance(
                kind, exp.GeneratedAsIdentityColumnConstraint) else "generated stored"
        elif not isinstance(kind, (exp.CollateColumnConstraint, exp.CommentColumnConstraint)):
            raise NotAnalysed(f"column constraint {type(kind).__name__} is not interpreted")
    if coldef.args.get("exists"):
        flags.append("if_not_exists")
    facts.op(OpKind.ADD_COLUMN, table, column=column, detail=detail, flags=tuple(flags))
    column_op(table, coldef, facts)


def _alter_column(table: QName, action: exp.AlterColumn, facts: Facts) -> None:
    column = ident(action.this)
    args = action.args
    if args.get("dtype") is not None:
        dtype = args["dtype"]
        if isinstance(dtype, exp.DataType) and dtype.this.name in SERIAL_TYPES:
            raise InvalidSql(f"ALTER COLUMN ... TYPE {dtype.this.name} is not valid SQL: serial "
                             "types exist only in CREATE TABLE and ADD COLUMN")
        using = args.get("using")
        facts.op(OpKind.ALTER_COLUMN_TYPE, table, column=column,
                 detail=args["dtype"].sql(dialect="postgres"),
                 flags=("using" if using else "",))
    elif args.get("allow_null") is False:
        facts.op(OpKind.SET_NOT_NULL, table, column=column)
    elif args.get("drop") and args.get("allow_null"):
        facts.op(OpKind.DROP_NOT_NULL, table, column=column)
    elif "default" in args and args.get("default") is not None:
        facts.op(OpKind.SET_DEFAULT, table, column=column)
    elif args.get("drop"):
        facts.op(OpKind.DROP_DEFAULT, table, column=column)
    else:
        raise NotAnalysed("ALTER COLUMN form is not interpreted")


def _add_constraint(table: QName, node: exp.Expr, not_valid: bool, facts: Facts) -> None:
    kinds = node.expressions if isinstance(node, exp.Constraint) else [node]
    for kind in kinds:
        if isinstance(kind, exp.ForeignKey):
            ctype = "foreign_key"
            ref = kind.args.get("reference")
            if isinstance(ref, exp.Reference):
                reference(ref, facts)
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
        facts.op(OpKind.ADD_CONSTRAINT, table, detail=ctype,
                 flags=("not_valid" if not_valid else "",))
