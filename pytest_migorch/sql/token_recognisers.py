"""Statements recognised exactly from their tokens, because their grammar is simple.

DROP, CREATE INDEX, CREATE TRIGGER, SET, LOCK, TRUNCATE, VACUUM, GRANT... sqlglot either does not
structure these or structures them in ways that are easy to misread (``DROP SCHEMA s`` as a table
with only a ``db``), so :func:`recognise` reads them with :class:`~pytest_migorch.sql.cursor.
Cursor` and records :mod:`pytest_migorch.sql.facts`. Anything else goes to
:mod:`pytest_migorch.sql.ast_recognisers`.

A recogniser returns ``None`` when the statement is not one it knows, and raises
:class:`~pytest_migorch.sql.facts.NotAnalysed` when it knows the statement but cannot tell
exactly what it does. Facts are never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pytest_migorch.sql.cursor import Cursor, QName
from pytest_migorch.sql.facts import Facts, NotAnalysed, ObjectRef, OpKind, Role
from pytest_migorch.sql.split import Token

__all__ = ["statement_kind", "recognise"]

# --- statement kinds ----------------------------------------------------------------------------

_CREATE_MODIFIERS = {"or", "replace", "temp", "temporary", "unlogged", "global", "local", "unique",
                     "recursive", "trusted", "procedural", "constraint", "default"}
_TWO_WORD_OBJECTS = {("materialized", "view"), ("foreign", "table"), ("event", "trigger"),
                     ("text", "search"), ("access", "method"), ("user", "mapping"),
                     ("operator", "class"), ("operator", "family"), ("foreign", "data")}


def statement_kind(tokens: Sequence[Token]) -> str:
    """A short kind such as ``CREATE TABLE``, ``ALTER SEQUENCE``, ``DO`` from the first words."""
    words = [t.value for t in tokens[:8] if t.kind == "word"]
    if not words or tokens[0].kind != "word":
        return tokens[0].text.upper()[:20] if tokens else "EMPTY"
    verb = words[0]
    if verb in ("create", "alter", "drop"):
        rest = words[1:]
        if verb == "create":
            while rest and rest[0] in _CREATE_MODIFIERS:
                rest = rest[1:]
        if len(rest) >= 2 and (rest[0], rest[1]) in _TWO_WORD_OBJECTS:
            return f"{verb} {rest[0]} {rest[1]}".upper()
        return f"{verb} {rest[0]}".upper() if rest else verb.upper()
    if verb == "start" and len(words) > 1:
        return "START TRANSACTION"
    return verb.upper()


# --- token-level recognisers --------------------------------------------------------------------

_TX_WORDS = {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"}
_LOCK_WEAK_MODES = {"access share", "row share", "row exclusive", "share update exclusive"}
_DROP_KINDS = {
    "TABLE": "table", "VIEW": "view", "MATERIALIZED VIEW": "materialized view",
    "INDEX": "index", "SEQUENCE": "sequence", "TYPE": "type", "DOMAIN": "domain",
    "FUNCTION": "function", "PROCEDURE": "procedure", "ROUTINE": "function",
    "TRIGGER": "trigger", "SCHEMA": "schema", "EXTENSION": "extension",
    "FOREIGN TABLE": "table", "POLICY": "policy", "RULE": "rule", "AGGREGATE": "function",
    "DATABASE": "database",
}
_CREATE_SIMPLE = {"CREATE SEQUENCE": "sequence", "CREATE TYPE": "type", "CREATE DOMAIN": "domain",
                  "CREATE EXTENSION": "extension", "CREATE FUNCTION": "function",
                  "CREATE PROCEDURE": "procedure", "CREATE SCHEMA": "schema",
                  "CREATE AGGREGATE": "function"}
_CREATE_OPS = {"sequence": OpKind.CREATE_SEQUENCE, "type": OpKind.CREATE_TYPE,
               "domain": OpKind.CREATE_DOMAIN, "extension": OpKind.CREATE_EXTENSION,
               "function": OpKind.CREATE_FUNCTION, "procedure": OpKind.CREATE_PROCEDURE,
               "schema": OpKind.CREATE_SCHEMA}
_DROP_OPS = {"table": OpKind.DROP_TABLE, "index": OpKind.DROP_INDEX,
             "schema": OpKind.DROP_SCHEMA, "trigger": OpKind.DROP_TRIGGER}
_RENAME_OPS = {"index": OpKind.RENAME_INDEX, "view": OpKind.RENAME_VIEW,
               "materialized view": OpKind.RENAME_MATERIALIZED_VIEW}
_GRANT_NON_TABLE = {"schema", "sequence", "function", "procedure", "routine", "database", "domain",
                    "type", "language", "large", "foreign", "tablespace", "all", "parameter"}


def recognise(kind: str, tokens: Sequence[Token]) -> Facts | None:
    """Facts for statements recognised from tokens alone, or None to let sqlglot try."""
    handler = _RECOGNISERS.get(kind)
    if handler is None:
        if kind in _CREATE_SIMPLE:
            handler = _create_simple
        elif kind.startswith("DROP "):
            handler = _drop
        elif tokens and tokens[0].is_word(*_TX_WORDS):
            handler = _transaction
        else:
            return None
    facts = Facts(kind=kind)
    handler(Cursor(tokens), facts)
    return facts


def _transaction(cursor: Cursor, facts: Facts) -> None:
    word = cursor.word(*_TX_WORDS) or "?"
    if word == "start":
        cursor.word("transaction")
        word = "begin"
    if word == "end":
        word = "commit"
    if word == "abort":
        word = "rollback"
    if word in ("commit", "rollback") and cursor.word("prepared"):
        word += " prepared"
    if word == "rollback" and cursor.words("to"):
        word = "rollback to savepoint"
    facts.kind = word.upper() if word not in ("begin",) else "BEGIN"
    facts.op(OpKind.TRANSACTION, detail=word)


def _set(cursor: Cursor, facts: Facts) -> None:
    """``SET [SESSION|LOCAL] name {TO|=} value`` and ``RESET name``."""
    verb = cursor.word("set", "reset")
    cursor.word("session", "local")
    token = cursor.next()
    if token is None or token.kind not in ("word", "ident"):
        raise NotAnalysed("SET without a parameter name")
    name = token.value
    if verb == "reset":
        facts.op(OpKind.SET, name=(None, name), detail="DEFAULT")
        return
    cursor.word("to") or cursor.punct("=")
    value = " ".join(t.value.strip("'") if t.kind == "string" else t.text
                     for t in cursor.tokens[cursor.pos:])
    facts.op(OpKind.SET, name=(None, name), detail=value)


def _create_index(cursor: Cursor, facts: Facts) -> None:
    """``CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON [ONLY] table ...``."""
    cursor.word("create")
    unique = cursor.word("unique")
    cursor.word("index")
    concurrently = cursor.word("concurrently")
    if_not_exists = "if_not_exists" if cursor.words("if", "not", "exists") else ""
    index = None if cursor.is_next("on") else cursor.name()
    if not cursor.word("on"):
        raise NotAnalysed("CREATE INDEX without ON")
    cursor.word("only")
    table = cursor.name()
    if table is None:
        raise NotAnalysed("CREATE INDEX without a table name")
    index_name = index[1] if index else None
    facts.obj("table", table, Role.ALTERED)
    if index_name:
        facts.obj("index", (table[0], index_name), Role.CREATED)
    facts.op(OpKind.CREATE_INDEX, table, detail=index_name,
             flags=(concurrently, unique, if_not_exists))


def _create_trigger(cursor: Cursor, facts: Facts) -> None:
    """``CREATE [OR REPLACE] [CONSTRAINT] TRIGGER name ... ON table ...``."""
    while cursor.word("create", "or", "replace", "constraint"):
        pass
    cursor.word("trigger")
    trigger = cursor.name()
    while (token := cursor.next()) is not None and not token.is_word("on"):
        pass
    table = cursor.name()
    if trigger is None or table is None:
        raise NotAnalysed("CREATE TRIGGER without a name or table")
    facts.obj("trigger", (table[0], trigger[1]), Role.CREATED)
    facts.obj("table", table, Role.ALTERED)
    facts.op(OpKind.CREATE_TRIGGER, table, detail=trigger[1])


def _create_simple(cursor: Cursor, facts: Facts) -> None:
    """CREATE of a non-table object whose name follows the kind: only that object is created."""
    object_kind = _CREATE_SIMPLE[facts.kind]
    while cursor.word("create", "or", "replace", "trusted", "procedural"):
        pass
    cursor.next()  # the kind word
    if_not_exists = "if_not_exists" if cursor.words("if", "not", "exists") else ""
    if object_kind == "schema":
        _create_schema(cursor, facts)
        return
    name = cursor.name()
    if name is None:
        raise NotAnalysed(f"{facts.kind} without a name")
    facts.obj(object_kind, name, Role.CREATED)
    check = object_kind == "domain" and any(t.is_word("check") for t in cursor.tokens[cursor.pos:])
    facts.op(_CREATE_OPS[object_kind], name, flags=(if_not_exists, "check" if check else ""))


def _create_schema(cursor: Cursor, facts: Facts) -> None:
    """``CREATE SCHEMA [IF NOT EXISTS] {name [AUTHORIZATION role] | AUTHORIZATION role}``."""
    name = None if cursor.word("authorization") else cursor.name()
    role = cursor.name() if name is None or cursor.word("authorization") else None
    schema = name[1] if name is not None else role[1] if role is not None else None
    if schema is None or not cursor.at_end():
        raise NotAnalysed("CREATE SCHEMA with schema elements or without a name")
    facts.objects.append(ObjectRef(kind="schema", name=schema, role=Role.CREATED))
    facts.op(OpKind.CREATE_SCHEMA, (None, schema))


def _drop(cursor: Cursor, facts: Facts) -> None:
    """``DROP kind [CONCURRENTLY] [IF EXISTS] name [, ...] [ON table] [CASCADE|RESTRICT]``."""
    label = facts.kind[len("DROP "):]
    object_kind = _DROP_KINDS.get(label)
    if object_kind is None:
        raise NotAnalysed(f"DROP {label} is not interpreted")
    cursor.word("drop")
    for _ in label.split():
        cursor.next()
    concurrently = cursor.word("concurrently")
    if_exists = "if_exists" if cursor.words("if", "exists") else ""
    names = _name_list(cursor, allow_args=object_kind in ("function", "procedure"))
    table = None
    if object_kind in ("trigger", "policy", "rule"):
        if not cursor.word("on") or (table := cursor.name()) is None:
            raise NotAnalysed(f"DROP {label} without ON table")
    cascade = cursor.word("cascade")
    cursor.word("restrict")
    if not cursor.at_end() or not names:
        raise NotAnalysed(f"unexpected text in DROP {label}: {cursor.rest_text()[:40]}")
    for name in names:
        if table is not None:
            facts.obj(object_kind, (table[0], name[1]), Role.DROPPED)
        elif object_kind == "schema":
            facts.objects.append(ObjectRef(kind="schema", name=name[1], role=Role.DROPPED))
        else:
            facts.obj(object_kind, name, Role.DROPPED)
        op_kind = _DROP_OPS.get(object_kind, OpKind.DROP_OTHER)
        target = (None, name[1]) if object_kind == "schema" else name
        detail = object_kind if op_kind is OpKind.DROP_OTHER else name[1] if table else None
        facts.op(op_kind, table or target, detail=detail,
                 flags=(concurrently, cascade, if_exists))
    if table is not None:
        facts.obj("table", table, Role.ALTERED)


def _name_list(cursor: Cursor, *, allow_args: bool) -> list[QName]:
    names: list[QName] = []
    while (name := cursor.name()) is not None:
        names.append(name)
        token = cursor.peek()
        if allow_args and token is not None and token.text == "(":
            cursor.skip_group()
        if not cursor.punct(","):
            break
    return names


def _table_list(cursor: Cursor) -> list[QName]:
    """``[ONLY] name [*] [, ...]``, as TRUNCATE and LOCK take it."""
    tables: list[QName] = []
    while True:
        cursor.word("only")
        name = cursor.name()
        if name is None:
            return tables
        tables.append(name)
        cursor.punct("*")
        if not cursor.punct(","):
            return tables


def _truncate(cursor: Cursor, facts: Facts) -> None:
    """``TRUNCATE [TABLE] [ONLY] name [*] [, ...] [RESTART|CONTINUE IDENTITY] [CASCADE]``."""
    cursor.word("truncate")
    cursor.word("table")
    tables = _table_list(cursor)
    cursor.word("restart", "continue") and cursor.word("identity")
    cascade = cursor.word("cascade")
    cursor.word("restrict")
    if not tables or not cursor.at_end():
        raise NotAnalysed("unexpected text in TRUNCATE")
    for table in tables:
        facts.obj("table", table, Role.WRITTEN)
        facts.op(OpKind.TRUNCATE, table, flags=(cascade,))


def _lock(cursor: Cursor, facts: Facts) -> None:
    """``LOCK [TABLE] [ONLY] name [, ...] [IN mode MODE] [NOWAIT]``; the default mode is
    ACCESS EXCLUSIVE."""
    cursor.word("lock")
    cursor.word("table")
    tables = _table_list(cursor)
    mode = "access exclusive"
    if cursor.word("in"):
        parts = []
        while (token := cursor.next()) is not None and not token.is_word("mode"):
            parts.append(token.value)
        mode = " ".join(parts)
    cursor.word("nowait")
    if not tables or not cursor.at_end():
        raise NotAnalysed("unexpected text in LOCK")
    for table in tables:
        facts.obj("table", table, Role.READ)
        weak = "weak" if mode in _LOCK_WEAK_MODES else ""
        facts.op(OpKind.LOCK, table, detail=mode, flags=(weak,))


def _vacuum(cursor: Cursor, facts: Facts) -> None:
    """``VACUUM [FULL] [FREEZE] [VERBOSE] [ANALYZE] [(options)] [table [(columns)], ...]``."""
    cursor.word("vacuum")
    full = False
    token = cursor.peek()
    if token is not None and token.text == "(":
        start = cursor.pos
        cursor.skip_group()
        options = cursor.tokens[start:cursor.pos]
        full = any(t.is_word("full") for t in options) and not any(
            t.is_word("false", "off") for t in options)
    while (word := cursor.word("full", "freeze", "verbose", "analyze", "analyse")) is not None:
        full = full or word == "full"
    tables = _name_list_with_columns(cursor)
    facts.op(OpKind.VACUUM, flags=("full" if full else "",))
    for table in tables:
        facts.obj("table", table, Role.READ)
        facts.op(OpKind.VACUUM, table, flags=("full" if full else "",))


def _name_list_with_columns(cursor: Cursor) -> list[QName]:
    names: list[QName] = []
    while (name := cursor.name()) is not None:
        names.append(name)
        token = cursor.peek()
        if token is not None and token.text == "(":
            cursor.skip_group()
        if not cursor.punct(","):
            break
    if not cursor.at_end():
        raise NotAnalysed("unexpected text after the table list")
    return names


def _cluster(cursor: Cursor, facts: Facts) -> None:
    """``CLUSTER [VERBOSE] [table [USING index]]``."""
    cursor.word("cluster")
    cursor.word("verbose")
    table = cursor.name()
    if cursor.word("using"):
        cursor.name()
    if not cursor.at_end():
        raise NotAnalysed("unexpected text in CLUSTER")
    if table is not None:
        facts.obj("table", table, Role.ALTERED)
    facts.op(OpKind.CLUSTER, table)


def _reindex(cursor: Cursor, facts: Facts) -> None:
    """``REINDEX [(options)] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} [CONCURRENTLY] name``."""
    cursor.word("reindex")
    token = cursor.peek()
    if token is not None and token.text == "(":
        cursor.skip_group()
    what = cursor.word("index", "table", "schema", "database", "system")
    concurrently = cursor.word("concurrently")
    name = cursor.name()
    if what is None or not cursor.at_end():
        raise NotAnalysed("unexpected text in REINDEX")
    if what == "table" and name is not None:
        facts.obj("table", name, Role.ALTERED)
    facts.op(OpKind.REINDEX, name, detail=what, flags=(concurrently,))


def _analyze(cursor: Cursor, facts: Facts) -> None:
    """``ANALYZE [VERBOSE] [table [(columns)], ...]``: reads, updates statistics only."""
    cursor.word("analyze", "analyse")
    token = cursor.peek()
    if token is not None and token.text == "(":
        cursor.skip_group()
    cursor.word("verbose")
    for table in _name_list_with_columns(cursor):
        facts.obj("table", table, Role.READ)


def _comment(cursor: Cursor, facts: Facts) -> None:
    """``COMMENT ON kind name IS ...``: only TABLE and COLUMN comments concern a table."""
    cursor.word("comment")
    cursor.word("on")
    if cursor.word("table"):
        table = cursor.name()
        if table is not None:
            facts.obj("table", table, Role.ALTERED)
            facts.op(OpKind.COMMENT, table)
        return
    if cursor.word("column"):
        parts: list[str] = []
        while (token := cursor.next()) is not None and token.kind in ("word", "ident"):
            parts.append(token.value)
            if not cursor.punct("."):
                break
        if len(parts) < 2:
            raise NotAnalysed("COMMENT ON COLUMN without a table")
        table = (parts[-3] if len(parts) >= 3 else None, parts[-2])
        facts.obj("table", table, Role.ALTERED)
        facts.op(OpKind.COMMENT, table, column=parts[-1])
        return
    facts.op(OpKind.COMMENT)


def _grant(cursor: Cursor, facts: Facts) -> None:
    """``GRANT|REVOKE privileges ON [TABLE] names TO|FROM roles``: changes the tables' ACLs."""
    tokens = cursor.tokens
    on = next((i for i, t in enumerate(tokens) if t.is_word("on")), None)
    if on is None:
        return  # a role membership grant: no object
    cursor.pos = on + 1
    token = cursor.peek()
    if token is not None and token.is_word(*_GRANT_NON_TABLE):
        return
    cursor.word("table")
    for name in _name_list(cursor, allow_args=False):
        facts.obj("table", name, Role.ALTERED)
        facts.op(OpKind.GRANT, name)


def _alter_sequence(cursor: Cursor, facts: Facts) -> None:
    """``ALTER SEQUENCE [IF EXISTS] name options``: the sequence only (renames are not handled)."""
    cursor.words("alter", "sequence")
    cursor.words("if", "exists")
    name = cursor.name()
    if name is None or cursor.word("rename") or cursor.words("set", "schema"):
        raise NotAnalysed("ALTER SEQUENCE form not interpreted")
    facts.obj("sequence", name, Role.ALTERED)
    facts.op(OpKind.ALTER_SEQUENCE, name)


def _alter_type(cursor: Cursor, facts: Facts) -> None:
    """``ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'v' [BEFORE|AFTER 'w']`` only."""
    cursor.words("alter", "type")
    name = cursor.name()
    if name is None or not cursor.words("add", "value"):
        raise NotAnalysed("ALTER TYPE form not interpreted (only ADD VALUE is)")
    facts.obj("type", name, Role.ALTERED)
    ordered = any(t.is_word("before", "after") for t in cursor.tokens[cursor.pos:])
    facts.op(OpKind.ALTER_TYPE_ADD_VALUE, name, flags=("ordered" if ordered else "",))


def _alter_rename_only(cursor: Cursor, facts: Facts) -> None:
    """``ALTER INDEX|VIEW|MATERIALIZED VIEW [IF EXISTS] name RENAME TO new``; other forms of
    these statements are not interpreted."""
    object_kind = facts.kind[len("ALTER "):].lower()
    cursor.word("alter")
    for _ in object_kind.split():
        cursor.next()
    cursor.words("if", "exists")
    name = cursor.name()
    if name is None or not cursor.words("rename", "to"):
        raise NotAnalysed(f"{facts.kind} form not interpreted (only RENAME TO is)")
    new = cursor.name()
    if new is None or not cursor.at_end():
        raise NotAnalysed(f"unexpected text in {facts.kind}")
    facts.obj(object_kind, name, Role.RENAMED, new_name=new[1])
    facts.op(_RENAME_OPS[object_kind], name, detail=new[1])


_RECOGNISERS: dict[str, Callable[[Cursor, Facts], Any]] = {
    "ALTER INDEX": _alter_rename_only,
    "ALTER VIEW": _alter_rename_only,
    "ALTER MATERIALIZED VIEW": _alter_rename_only,
    "SET": _set,
    "RESET": _set,
    "CREATE INDEX": _create_index,
    "CREATE TRIGGER": _create_trigger,
    "TRUNCATE": _truncate,
    "LOCK": _lock,
    "VACUUM": _vacuum,
    "CLUSTER": _cluster,
    "REINDEX": _reindex,
    "ANALYZE": _analyze,
    "ANALYSE": _analyze,
    "COMMENT": _comment,
    "GRANT": _grant,
    "REVOKE": _grant,
    "ALTER SEQUENCE": _alter_sequence,
    "ALTER TYPE": _alter_type,
}
