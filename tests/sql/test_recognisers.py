"""The recognisers, one statement at a time: what each statement is said to do, exactly.

``token_recognisers`` reads the statements whose grammar is simple from tokens,
``ast_recognisers`` reads CREATE TABLE/VIEW, DML and queries from sqlglot's tree, and
``alter_table`` reads ALTER TABLE action by action. Each table below is the specification of one
of them: the statement kind, the objects with their roles and the operations with their flags.
"""

from __future__ import annotations

import pytest

from pytest_migorch.sql.alter_table import analyse_alter_table
from pytest_migorch.sql.ast_recognisers import analyse_parsed
from pytest_migorch.sql.facts import Facts, InvalidSql, NotAnalysed
from pytest_migorch.sql.split import Token, tokenize
from pytest_migorch.sql.token_recognisers import recognise, statement_kind

Obj = tuple[str, "str | None", str, str]
OpRow = tuple[str, "str | None", "str | None", "str | None", "str | None", tuple[str, ...]]


def tokens(sql: str) -> list[Token]:
    return list(tokenize(sql))


def by_tokens(sql: str) -> Facts:
    """Facts from the token recognisers, which must know the statement."""
    toks = tokens(sql)
    facts = recognise(statement_kind(toks), toks)
    assert facts is not None, f"the token recognisers do not know {sql!r}"
    return facts


def by_tree(sql: str) -> Facts:
    """Facts from sqlglot's tree (ALTER TABLE included), as the analysis asks for them."""
    toks = tokens(sql)
    kind = statement_kind(toks)
    assert recognise(kind, toks) is None, f"{sql!r} is read from tokens, not from the tree"
    return analyse_parsed(kind, sql, toks)


def objects(facts: Facts) -> list[Obj]:
    return [(o.kind, o.schema, o.name, o.role.value) for o in facts.objects]


def ops(facts: Facts) -> list[OpRow]:
    return [(o.op.value, o.schema, o.name, o.column, o.detail, o.flags) for o in facts.ops]


# --- statement_kind -----------------------------------------------------------------------------


@pytest.mark.parametrize("sql,kind", [
    ("create unique index i on t(a)", "CREATE INDEX"),
    ("CREATE OR REPLACE TEMP VIEW v AS SELECT 1", "CREATE VIEW"),
    ("create materialized view m as select 1", "CREATE MATERIALIZED VIEW"),
    ("CREATE UNLOGGED TABLE x (a int)", "CREATE TABLE"),
    ("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
     "CREATE EVENT TRIGGER"),
    ("CREATE OR REPLACE TRUSTED PROCEDURAL LANGUAGE x", "CREATE LANGUAGE"),
    ("drop foreign table x", "DROP FOREIGN TABLE"),
    ("alter table t add c int", "ALTER TABLE"),
    ("start transaction", "START TRANSACTION"),
    ("with x as (select 1) select 1", "WITH"),
    ("DO $$ BEGIN END $$", "DO"),
    ("create", "CREATE"),
    ("(select 1)", "("),
    ("", "EMPTY"),
])
def test_statement_kind_from_the_first_words(sql: str, kind: str) -> None:
    assert statement_kind(tokens(sql)) == kind


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t (a int)", "CREATE VIEW v AS SELECT 1", "INSERT INTO t VALUES (1)",
    "UPDATE t SET a = 1", "SELECT 1", "ALTER TABLE t ADD COLUMN c int", "DO $$ BEGIN END $$",
])
def test_recognise_leaves_structured_statements_to_sqlglot(sql: str) -> None:
    toks = tokens(sql)
    assert recognise(statement_kind(toks), toks) is None


# --- token recognisers: CREATE ------------------------------------------------------------------


def test_create_index_alters_its_table_and_creates_the_index() -> None:
    facts = by_tokens("CREATE INDEX idx ON t (a)")
    assert facts.kind == "CREATE INDEX"
    assert objects(facts) == [("table", None, "t", "altered"), ("index", None, "idx", "created")]
    assert ops(facts) == [("create_index", None, "t", None, "idx", ())]


def test_create_index_concurrently_carries_its_flags_and_the_table_schema() -> None:
    facts = by_tokens(
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON s.t (a) WHERE a > 0")
    assert objects(facts) == [("table", "s", "t", "altered"), ("index", "s", "idx", "created")]
    assert ops(facts) == [
        ("create_index", "s", "t", None, "idx", ("concurrently", "if_not_exists", "unique"))]


def test_create_trigger_names_trigger_and_table() -> None:
    facts = by_tokens("CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()")
    assert objects(facts) == [("trigger", None, "trg", "created"),
                              ("table", None, "t", "altered")]
    assert ops(facts) == [("create_trigger", None, "t", None, "trg", ())]


@pytest.mark.parametrize("sql,kind,obj,op", [
    ("CREATE EXTENSION IF NOT EXISTS pgcrypto", "CREATE EXTENSION",
     ("extension", None, "pgcrypto", "created"),
     ("create_extension", None, "pgcrypto", None, None, ("if_not_exists",))),
    ("CREATE TYPE mood AS ENUM ('a', 'b')", "CREATE TYPE",
     ("type", None, "mood", "created"), ("create_type", None, "mood", None, None, ())),
    ("CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
     "CREATE FUNCTION", ("function", None, "f", "created"),
     ("create_function", None, "f", None, None, ())),
    ("CREATE SEQUENCE s.seq", "CREATE SEQUENCE",
     ("sequence", "s", "seq", "created"), ("create_sequence", "s", "seq", None, None, ())),
    ("CREATE SCHEMA IF NOT EXISTS s", "CREATE SCHEMA",
     ("schema", None, "s", "created"), ("create_schema", None, "s", None, None, ())),
])
def test_create_of_a_non_table_object_creates_only_that_object(
    sql: str, kind: str, obj: Obj, op: OpRow,
) -> None:
    facts = by_tokens(sql)
    assert facts.kind == kind
    assert objects(facts) == [obj]
    assert ops(facts) == [op]


# --- token recognisers: DROP --------------------------------------------------------------------


def test_drop_table_drops_every_listed_table_with_cascade() -> None:
    facts = by_tokens("DROP TABLE a, s.b CASCADE")
    assert facts.kind == "DROP TABLE"
    assert objects(facts) == [("table", None, "a", "dropped"), ("table", "s", "b", "dropped")]
    assert ops(facts) == [("drop_table", None, "a", None, None, ("cascade",)),
                          ("drop_table", "s", "b", None, None, ("cascade",))]


@pytest.mark.parametrize("sql,obj,op", [
    ("DROP INDEX CONCURRENTLY IF EXISTS idx", ("index", None, "idx", "dropped"),
     ("drop_index", None, "idx", None, None, ("concurrently", "if_exists"))),
    ("DROP SCHEMA s CASCADE", ("schema", None, "s", "dropped"),
     ("drop_schema", None, "s", None, None, ("cascade",))),
    ("DROP VIEW v", ("view", None, "v", "dropped"), ("drop_other", None, "v", None, "view", ())),
    ("DROP FUNCTION f(int)", ("function", None, "f", "dropped"),
     ("drop_other", None, "f", None, "function", ())),
])
def test_drop_of_other_objects(sql: str, obj: Obj, op: OpRow) -> None:
    facts = by_tokens(sql)
    assert objects(facts) == [obj]
    assert ops(facts) == [op]


def test_drop_trigger_alters_the_table_it_was_on() -> None:
    facts = by_tokens("DROP TRIGGER trg ON t")
    assert objects(facts) == [("trigger", None, "trg", "dropped"),
                              ("table", None, "t", "altered")]
    assert ops(facts) == [("drop_trigger", None, "t", None, "trg", ())]


# --- token recognisers: data and maintenance ----------------------------------------------------


def test_truncate_writes_every_table() -> None:
    facts = by_tokens("TRUNCATE t, s.u RESTART IDENTITY CASCADE")
    assert objects(facts) == [("table", None, "t", "written"), ("table", "s", "u", "written")]
    assert ops(facts) == [("truncate", None, "t", None, None, ("cascade",)),
                          ("truncate", "s", "u", None, None, ("cascade",))]
    assert ops(by_tokens("TRUNCATE TABLE ONLY t")) == [("truncate", None, "t", None, None, ())]


@pytest.mark.parametrize("sql,mode,flags", [
    ("LOCK TABLE t", "access exclusive", ()),  # PostgreSQL's default mode
    ("LOCK t IN SHARE MODE NOWAIT", "share", ()),
    ("LOCK TABLE t IN ACCESS SHARE MODE", "access share", ("weak",)),
])
def test_lock_reads_the_table_and_records_the_mode(
    sql: str, mode: str, flags: tuple[str, ...],
) -> None:
    facts = by_tokens(sql)
    assert objects(facts) == [("table", None, "t", "read")]
    assert ops(facts) == [("lock", None, "t", None, mode, flags)]


def test_vacuum_has_a_statement_op_and_one_per_table() -> None:
    """The nameless op is the statement itself (VACUUM cannot run in a transaction)."""
    facts = by_tokens("VACUUM FULL t")
    assert objects(facts) == [("table", None, "t", "read")]
    assert ops(facts) == [("vacuum", None, None, None, None, ("full",)),
                          ("vacuum", None, "t", None, None, ("full",))]
    assert ops(by_tokens("VACUUM (ANALYZE) t (a)")) == [
        ("vacuum", None, None, None, None, ()), ("vacuum", None, "t", None, None, ())]
    assert ops(by_tokens("VACUUM")) == [("vacuum", None, None, None, None, ())]


def test_comment_concerns_a_table_only_for_table_and_column_comments() -> None:
    table = by_tokens("COMMENT ON TABLE t IS 'x'")
    assert objects(table) == [("table", None, "t", "altered")]
    assert ops(table) == [("comment", None, "t", None, None, ())]
    column = by_tokens("COMMENT ON COLUMN t.a IS 'x'")
    assert objects(column) == [("table", None, "t", "altered")]
    assert ops(column) == [("comment", None, "t", "a", None, ())]
    index = by_tokens("COMMENT ON INDEX i IS 'x'")
    assert objects(index) == []
    assert ops(index) == [("comment", None, None, None, None, ())]


def test_grant_and_revoke_alter_the_tables_acl_only_for_tables() -> None:
    grant = by_tokens("GRANT SELECT ON t TO r")
    assert objects(grant) == [("table", None, "t", "altered")]
    assert ops(grant) == [("grant", None, "t", None, None, ())]
    revoke = by_tokens("REVOKE ALL ON TABLE s.t FROM r")
    assert revoke.kind == "REVOKE"
    assert ops(revoke) == [("grant", "s", "t", None, None, ())]
    schema = by_tokens("GRANT USAGE ON SCHEMA s TO r")
    assert (objects(schema), ops(schema)) == ([], [])


def test_alter_sequence_alters_only_the_sequence() -> None:
    facts = by_tokens("ALTER SEQUENCE s.seq RESTART WITH 10")
    assert objects(facts) == [("sequence", "s", "seq", "altered")]
    assert ops(facts) == [("alter_sequence", "s", "seq", None, None, ())]


def test_alter_type_add_value_and_alter_index_rename() -> None:
    assert ops(by_tokens("ALTER TYPE mood ADD VALUE 'c' AFTER 'b'")) == [
        ("alter_type_add_value", None, "mood", None, None, ("ordered",))]
    rename = by_tokens("ALTER INDEX i RENAME TO j")
    assert [(o.name, o.role.value, o.new_name) for o in rename.objects] == [("i", "renamed", "j")]
    assert ops(rename) == [("rename_index", None, "i", None, "j", ())]


@pytest.mark.parametrize("sql,message", [
    ("ALTER SEQUENCE seq RENAME TO seq2", "ALTER SEQUENCE form not interpreted"),
    ("ALTER TYPE mood RENAME TO m2", "only ADD VALUE is"),
    ("ALTER INDEX i SET TABLESPACE x", "only RENAME TO is"),
])
def test_forms_the_token_recognisers_do_not_interpret_are_not_analysed(
    sql: str, message: str,
) -> None:
    with pytest.raises(NotAnalysed, match=message):
        by_tokens(sql)


@pytest.mark.parametrize("sql,kind,detail", [
    ("BEGIN", "BEGIN", "begin"),
    ("START TRANSACTION", "BEGIN", "begin"),
    ("END", "COMMIT", "commit"),
    ("ROLLBACK TO SAVEPOINT a", "ROLLBACK TO SAVEPOINT", "rollback to savepoint"),
    ("COMMIT PREPARED 'x'", "COMMIT PREPARED", "commit prepared"),
])
def test_transaction_control_is_normalised(sql: str, kind: str, detail: str) -> None:
    facts = by_tokens(sql)
    assert facts.kind == kind
    assert ops(facts) == [("transaction", None, None, None, detail, ())]


@pytest.mark.parametrize("sql,name,value", [
    ("SET lock_timeout = '5s'", "lock_timeout", "5s"),
    ("SET LOCAL statement_timeout TO 0", "statement_timeout", "0"),
    ("RESET lock_timeout", "lock_timeout", "DEFAULT"),
])
def test_settings_record_name_and_value(sql: str, name: str, value: str) -> None:
    assert ops(by_tokens(sql)) == [("set", None, name, None, value, ())]


# --- ast recognisers: CREATE TABLE and views ----------------------------------------------------


def test_create_table_with_references_reads_the_referenced_tables() -> None:
    facts = by_tree("CREATE TABLE app.users (id bigserial PRIMARY KEY, "
                    "org int REFERENCES orgs(id), name text NOT NULL)")
    assert facts.kind == "CREATE TABLE"
    assert objects(facts) == [("table", "app", "users", "created"),
                              ("table", None, "orgs", "read")]
    assert ops(facts) == [
        ("create_table", "app", "users", None, None, ()),
        ("column", "app", "users", "id", "BIGSERIAL", ("primary_key",)),
        ("column", "app", "users", "org", "INT", ("references",)),
        ("column", "app", "users", "name", "TEXT", ()),
        ("references", None, "orgs", None, None, ()),
    ]


def test_create_table_table_level_foreign_key() -> None:
    facts = by_tree("CREATE TABLE t (a int, FOREIGN KEY (a) REFERENCES s.p (id))")
    assert objects(facts) == [("table", None, "t", "created"), ("table", "s", "p", "read")]
    assert ops(facts)[-1] == ("references", "s", "p", None, None, ())


def test_create_table_as_reads_its_source() -> None:
    facts = by_tree("CREATE TABLE t2 AS SELECT * FROM t1")
    assert objects(facts) == [("table", None, "t2", "created"), ("table", None, "t1", "read")]
    assert ops(facts) == [("create_table", None, "t2", None, None, ())]


def test_create_partition_attaches_to_the_parent() -> None:
    facts = by_tree("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)")
    assert objects(facts) == [("table", None, "p1", "created"), ("table", None, "p", "altered")]
    assert ops(facts) == [("create_table", None, "p1", None, None, ()),
                          ("attach_partition", None, "p", None, None, ())]


def test_views_are_created_and_their_tables_read() -> None:
    facts = by_tree("CREATE VIEW v AS SELECT a FROM t JOIN u ON t.id = u.id")
    assert objects(facts) == [("view", None, "v", "created"), ("table", None, "t", "read"),
                              ("table", None, "u", "read")]
    assert ops(facts) == [("create_view", None, "v", None, "view", ())]
    materialized = by_tree("CREATE MATERIALIZED VIEW s.mv AS SELECT 1")
    assert objects(materialized) == [("materialized view", "s", "mv", "created")]
    assert ops(materialized) == [("create_view", "s", "mv", None, "materialized view", ())]


# --- ast recognisers: DML targets against reads -------------------------------------------------


@pytest.mark.parametrize("sql,kind,objs,op", [
    ("INSERT INTO t (a) SELECT b FROM src", "INSERT",
     [("table", None, "t", "written"), ("table", None, "src", "read")],
     ("insert", None, "t", None, None, ())),
    ("UPDATE t SET a = 1", "UPDATE", [("table", None, "t", "written")],
     ("update", None, "t", None, None, ())),
    ("UPDATE s.t SET a = o.b FROM o WHERE t.id = o.id", "UPDATE",
     [("table", "s", "t", "written"), ("table", None, "o", "read")],
     ("update", "s", "t", None, None, ("where",))),
    ("DELETE FROM t USING o WHERE t.id = o.id", "DELETE",
     [("table", None, "t", "written"), ("table", None, "o", "read")],
     ("delete", None, "t", None, None, ("where",))),
    ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "INSERT",
     [("table", None, "t", "written")], ("insert", None, "t", None, None, ())),
    ("COPY t FROM STDIN", "COPY", [("table", None, "t", "written")],
     ("copy", None, "t", None, None, ())),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", "MERGE",
     [("table", None, "t", "written"), ("table", None, "s", "read")],
     ("merge", None, "t", None, None, ())),
])
def test_dml_writes_its_target_and_reads_the_rest(
    sql: str, kind: str, objs: list[Obj], op: OpRow,
) -> None:
    facts = by_tree(sql)
    assert facts.kind == kind
    assert objects(facts) == objs
    assert ops(facts) == [op]


def test_select_reads_and_set_config_is_a_setting() -> None:
    select = by_tree("SELECT * FROM t")
    assert (objects(select), ops(select)) == ([("table", None, "t", "read")], [])
    setting = by_tree("SELECT set_config('search_path', 'app', false)")
    assert ops(setting) == [("set", None, "search_path", None, "app", ())]


def test_select_of_an_unknown_function_is_not_analysed() -> None:
    with pytest.raises(NotAnalysed, match=r"calls my_func\(\)"):
        by_tree("SELECT my_func()")


# --- alter_table --------------------------------------------------------------------------------


def alter(sql: str) -> list[OpRow]:
    """The operations of one ALTER TABLE on ``t``, which is its only (altered) object."""
    facts = analyse_alter_table(sql, tokens(sql))
    assert facts.kind == "ALTER TABLE"
    assert facts.objects[0].role.value == "altered"
    return ops(facts)


@pytest.mark.parametrize("action,expected", [
    ("ADD COLUMN c int", [("add_column", None, "t", "c", None, ()),
                          ("column", None, "t", "c", "INT", ())]),
    ("ADD COLUMN c int NOT NULL DEFAULT 0",
     [("add_column", None, "t", "c", None, ("has_default", "not_null")),
      ("column", None, "t", "c", "INT", ())]),
    ("ADD COLUMN c timestamptz DEFAULT now()",  # stable default: no rewrite
     [("add_column", None, "t", "c", None, ("has_default",)),
      ("column", None, "t", "c", "TIMESTAMPTZ", ())]),
    ("ADD COLUMN c uuid DEFAULT gen_random_uuid()",
     [("add_column", None, "t", "c", "gen_random_uuid", ("has_default", "volatile_default")),
      ("column", None, "t", "c", "UUID", ())]),
    ("ADD COLUMN c bigserial",
     [("add_column", None, "t", "c", "bigserial", ("has_default", "not_null", "rewrite")),
      ("column", None, "t", "c", "BIGSERIAL", ())]),
])
def test_add_column(action: str, expected: list[OpRow]) -> None:
    assert alter(f"ALTER TABLE t {action}") == expected


def test_add_column_with_a_reference_reads_the_referenced_table() -> None:
    sql = "ALTER TABLE t ADD COLUMN IF NOT EXISTS c int REFERENCES u(id)"
    facts = analyse_alter_table(sql, tokens(sql))
    assert objects(facts) == [("table", None, "t", "altered"), ("table", None, "u", "read")]
    assert ops(facts) == [("references", None, "u", None, None, ()),
                          ("add_column", None, "t", "c", None, ("foreign_key", "if_not_exists")),
                          ("column", None, "t", "c", "INT", ("references",))]


@pytest.mark.parametrize("action,expected", [
    ("DROP COLUMN c", ("drop_column", None, "t", "c", None, ())),
    ("DROP COLUMN IF EXISTS c CASCADE",
     ("drop_column", None, "t", "c", None, ("cascade", "if_exists"))),
    ("ALTER COLUMN c TYPE bigint", ("alter_column_type", None, "t", "c", "BIGINT", ())),
    ("ALTER COLUMN c TYPE bigint USING c::bigint",
     ("alter_column_type", None, "t", "c", "BIGINT", ("using",))),
    ("ALTER COLUMN c SET NOT NULL", ("set_not_null", None, "t", "c", None, ())),
    ("ALTER COLUMN c DROP NOT NULL", ("drop_not_null", None, "t", "c", None, ())),
    ("ALTER c SET DEFAULT 1", ("set_default", None, "t", "c", None, ())),
    ("ALTER COLUMN c DROP DEFAULT", ("drop_default", None, "t", "c", None, ())),
    ("ALTER COLUMN c SET STATISTICS 100",
     ("alter_table_other", None, "t", "c", "set statistics", ())),
    ("ADD CONSTRAINT ck CHECK (c > 0)", ("add_constraint", None, "t", None, "check", ())),
    ("ADD CONSTRAINT uq UNIQUE (c)", ("add_constraint", None, "t", None, "unique", ())),
    ("ADD PRIMARY KEY (id)", ("add_constraint", None, "t", None, "primary_key", ())),
    ("ADD CONSTRAINT uq UNIQUE USING INDEX idx",
     ("add_constraint", None, "t", None, "unique", ("using_index",))),
    ("VALIDATE CONSTRAINT fk", ("validate_constraint", None, "t", None, "fk", ())),
    ("DROP CONSTRAINT IF EXISTS fk", ("drop_constraint", None, "t", None, "fk", ("if_exists",))),
    ("RENAME COLUMN a TO b", ("rename_column", None, "t", "a", "b", ())),
    ("RENAME a TO b", ("rename_column", None, "t", "a", "b", ())),  # not a table rename
    ("RENAME CONSTRAINT c1 TO c2", ("rename_constraint", None, "t", None, "c2", ())),
    ("OWNER TO bob", ("alter_table_other", None, "t", None, "OWNER TO bob", ())),
    ("SET LOGGED", ("rewrite_table", None, "t", None, "SET LOGGED", ())),
])
def test_single_actions(action: str, expected: OpRow) -> None:
    assert alter(f"ALTER TABLE t {action}") == [expected]


def test_foreign_key_not_valid_reads_the_referenced_table() -> None:
    sql = "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES u (id) NOT VALID"
    facts = analyse_alter_table(sql, tokens(sql))
    assert objects(facts) == [("table", None, "t", "altered"), ("table", None, "u", "read")]
    assert ops(facts) == [("references", None, "u", None, None, ()),
                          ("add_constraint", None, "t", None, "foreign_key", ("not_valid",))]


def test_rename_table_names_the_new_name() -> None:
    sql = "ALTER TABLE t RENAME TO u"
    facts = analyse_alter_table(sql, tokens(sql))
    assert [(o.name, o.role.value, o.new_name) for o in facts.objects] == [("t", "renamed", "u")]
    assert ops(facts) == [("rename_table", None, "t", None, "u", ())]


def test_set_schema_moves_the_table() -> None:
    sql = "ALTER TABLE t SET SCHEMA archive"
    facts = analyse_alter_table(sql, tokens(sql))
    assert [(o.name, o.role.value, o.new_name, o.new_schema) for o in facts.objects] == [
        ("t", "altered", None, None), ("t", "renamed", "t", "archive")]
    assert ops(facts) == [("set_schema", None, "t", None, "archive", ())]


def test_detach_partition_alters_parent_and_partition() -> None:
    sql = "ALTER TABLE s.p DETACH PARTITION s.p1"
    facts = analyse_alter_table(sql, tokens(sql))
    assert objects(facts) == [("table", "s", "p", "altered"), ("table", "s", "p1", "altered")]
    assert ops(facts) == [("detach_partition", "s", "p", None, None, ())]
    assert alter("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY") == [
        ("detach_partition", None, "p", None, None, ("concurrently",))]


def test_several_actions_are_read_one_by_one() -> None:
    assert alter("ALTER TABLE IF EXISTS ONLY t ADD COLUMN a int, DROP COLUMN b") == [
        ("add_column", None, "t", "a", None, ()), ("column", None, "t", "a", "INT", ()),
        ("drop_column", None, "t", "b", None, ())]


def test_drop_if_exists_column_is_invalid_sql() -> None:
    with pytest.raises(InvalidSql, match="write DROP COLUMN IF EXISTS"):
        alter("ALTER TABLE t DROP IF EXISTS COLUMN c")


@pytest.mark.parametrize("sql,message", [
    ("ALTER TABLE t", "without a table or an action"),
    ("ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)", "sqlglot does not structure"),
])
def test_alter_table_it_cannot_read_exactly_is_not_analysed(sql: str, message: str) -> None:
    with pytest.raises(NotAnalysed, match=message):
        alter(sql)
