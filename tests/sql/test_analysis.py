"""Per-statement analysis: kinds, objects with roles, operations, not-analysed, the cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_migorch.sql import analysis as analysis_module
from pytest_migorch.sql.analysis import (
    AnalysisCache,
    SqlAnalysis,
    StatementAnalysis,
    analyse_sql,
)

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"


def one(sql: str) -> StatementAnalysis:
    result = analyse_sql(sql, AnalysisCache())
    assert result.statements_total == 1, result.statements
    return result.statements[0]


def objects(sql: str) -> set[tuple[str, str, str]]:
    statement = one(sql)
    assert statement.analysed, statement.reason
    return {(o.kind, o.display, o.role.value) for o in statement.objects}


def ops(sql: str) -> list[tuple[str, str | None, str | None, str | None, tuple[str, ...]]]:
    statement = one(sql)
    assert statement.analysed, statement.reason
    return [(o.op, o.name, o.column, o.detail, o.flags) for o in statement.ops]


# --- kinds, objects, roles ----------------------------------------------------------------------


@pytest.mark.parametrize("sql,expected", [
    ("CREATE TABLE IF NOT EXISTS app.users (id int PRIMARY KEY, org int REFERENCES orgs(id))",
     {("table", "app.users", "created"), ("table", "orgs", "read")}),
    ("CREATE TABLE t2 AS SELECT * FROM t1 JOIN s.t3 ON true",
     {("table", "t2", "created"), ("table", "t1", "read"), ("table", "s.t3", "read")}),
    ('ALTER TABLE "MyTable" ADD COLUMN x int', {("table", '"MyTable"', "altered")}),
    ("ALTER TABLE Users RENAME TO members", {("table", "users", "renamed")}),
    ("DROP TABLE IF EXISTS a, s.b CASCADE",
     {("table", "a", "dropped"), ("table", "s.b", "dropped")}),
    ("INSERT INTO t (a) SELECT b FROM src WHERE c IN (SELECT c FROM other)",
     {("table", "t", "written"), ("table", "src", "read"), ("table", "other", "read")}),
    ("UPDATE t SET a = o.b FROM o WHERE t.id = o.id",
     {("table", "t", "written"), ("table", "o", "read")}),
    ("DELETE FROM t USING o WHERE t.id = o.id",
     {("table", "t", "written"), ("table", "o", "read")}),
    ("WITH moved AS (DELETE FROM a WHERE old RETURNING *) INSERT INTO b SELECT * FROM moved",
     {("table", "a", "written"), ("table", "b", "written")}),
    ("TRUNCATE TABLE ONLY a, b RESTART IDENTITY CASCADE",
     {("table", "a", "written"), ("table", "b", "written")}),
    ("COPY t (a, b) FROM STDIN", {("table", "t", "written")}),
    ("COPY t TO STDOUT", {("table", "t", "read")}),
    ("SELECT * FROM t", {("table", "t", "read")}),
    ("SELECT * INTO newt FROM t", {("table", "newt", "created"), ("table", "t", "read")}),
    ("CREATE VIEW v AS SELECT * FROM t", {("view", "v", "created"), ("table", "t", "read")}),
    ("CREATE MATERIALIZED VIEW mv AS SELECT * FROM t",
     {("materialized view", "mv", "created"), ("table", "t", "read")}),
])
def test_objects_and_roles(sql: str, expected: set[tuple[str, str, str]]) -> None:
    assert objects(sql) == expected


@pytest.mark.parametrize("sql,expected", [
    ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON app.users (email)",
     {("table", "app.users", "altered"), ("index", "app.users_email", "created")}),
    ("CREATE INDEX ON t (a)", {("table", "t", "altered")}),
    ("CREATE INDEX i ON ONLY t (a)", {("table", "t", "altered"), ("index", "i", "created")}),
    ("DROP INDEX CONCURRENTLY IF EXISTS s.i, j",
     {("index", "s.i", "dropped"), ("index", "j", "dropped")}),
    ("CREATE OR REPLACE TRIGGER tr BEFORE UPDATE OF a, b ON t FOR EACH ROW EXECUTE FUNCTION f()",
     {("trigger", "tr", "created"), ("table", "t", "altered")}),
    ("DROP TRIGGER IF EXISTS tr ON splits CASCADE",
     {("trigger", "tr", "dropped"), ("table", "splits", "altered")}),
    ("CREATE TYPE shard_state AS ENUM ('open', 'closed')", {("type", "shard_state", "created")}),
    ("CREATE SEQUENCE IF NOT EXISTS s.seq START 10", {("sequence", "s.seq", "created")}),
    ("CREATE SCHEMA IF NOT EXISTS audit", {("schema", "audit", "created")}),
    ("DROP SCHEMA audit CASCADE", {("schema", "audit", "dropped")}),
    ('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"', {("extension", '"uuid-ossp"', "created")}),
    ("CREATE OR REPLACE FUNCTION f(a int) RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
     {("function", "f", "created")}),
    ("DROP FUNCTION IF EXISTS f(int), g(text)",
     {("function", "f", "dropped"), ("function", "g", "dropped")}),
    ("ALTER SEQUENCE seq RESTART WITH 1", {("sequence", "seq", "altered")}),
    ("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok'", {("type", "mood", "altered")}),
    ("ALTER INDEX i RENAME TO j", {("index", "i", "renamed")}),
    ("COMMENT ON COLUMN s.t.c IS 'x'", {("table", "s.t", "altered")}),
    ("COMMENT ON CONSTRAINT c ON t IS 'x'", set()),
    ("GRANT SELECT, INSERT ON TABLE a, b TO app", {("table", "a", "altered"),
                                                  ("table", "b", "altered")}),
    ("GRANT USAGE ON SCHEMA s TO app", set()),
    ("LOCK TABLE t IN SHARE MODE", {("table", "t", "read")}),
])
def test_constraint_index_trigger_function_type_names_are_never_tables(
        sql: str, expected: set[tuple[str, str, str]]) -> None:
    assert objects(sql) == expected


def test_alter_table_rename_column_without_column_keyword_renames_a_column() -> None:
    # sqlglot reads this as a table rename; it renames column a.
    statement = one("ALTER TABLE t RENAME a TO b")
    assert {(o.display, o.role.value) for o in statement.objects} == {("t", "altered")}
    assert [(o.op, o.column, o.detail) for o in statement.ops] == [("rename_column", "a", "b")]


def test_alter_table_actions_are_read_one_by_one() -> None:
    result = ops("ALTER TABLE shards ALTER COLUMN id TYPE varchar(255),"
                 " ALTER COLUMN id SET NOT NULL, ALTER COLUMN st SET DEFAULT 'open',"
                 " DROP CONSTRAINT fk,"
                 " ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES idx (x) ON DELETE CASCADE,"
                 " ADD CHECK (x > 0) NOT VALID, DROP COLUMN IF EXISTS old CASCADE")
    assert [r[0] for r in result] == [
        "alter_column_type", "set_not_null", "set_default", "drop_constraint", "references",
        "add_constraint", "add_constraint", "drop_column"]
    assert result[5][3] == "foreign_key" and result[5][4] == ()
    assert result[6][3] == "check" and result[6][4] == ("not_valid",)
    assert result[7] == ("drop_column", "shards", "old", None, ("cascade", "if_exists"))


@pytest.mark.parametrize("sql,flags,detail", [
    ("ALTER TABLE t ADD COLUMN x int", (), None),
    ("ALTER TABLE t ADD COLUMN x int NOT NULL", ("not_null",), None),
    ("ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 0", ("has_default", "not_null"), None),
    ("ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()", ("has_default",), None),
    ("ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now() + interval '1 day'",
     ("has_default",), None),
    ("ALTER TABLE t ADD COLUMN x float DEFAULT random()",
     ("has_default", "volatile_default"), "random"),
    ("ALTER TABLE t ADD COLUMN x uuid DEFAULT gen_random_uuid()",
     ("has_default", "volatile_default"), "gen_random_uuid"),
    ("ALTER TABLE t ADD COLUMN x timestamptz DEFAULT clock_timestamp()",
     ("has_default", "volatile_default"), "clock_timestamp"),
    ("ALTER TABLE t ADD COLUMN x bigserial", ("has_default", "not_null", "rewrite"), "bigserial"),
    ("ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS (y * 2) STORED",
     ("has_default", "rewrite"), "generated stored"),
    ("ALTER TABLE t ADD x int UNIQUE REFERENCES o (id) CHECK (x > 0)",
     ("check", "foreign_key", "unique"), None),
])
def test_add_column_flags(sql: str, flags: tuple[str, ...], detail: str | None) -> None:
    add = [o for o in one(sql).ops if o.op == "add_column"][0]
    assert add.flags == flags and add.detail == detail


@pytest.mark.parametrize("sql,op,flags", [
    ("UPDATE t SET a = 1", "update", ()),
    ("UPDATE t SET a = 1 WHERE b", "update", ("where",)),
    ("DELETE FROM t", "delete", ()),
    ("INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", "insert",
     ("on_conflict_update",)),
    ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "insert", ()),
    ("SET lock_timeout = '5s'", "set", ()),
    ("SELECT set_config('lock_timeout', '5s', true)", "set", ()),
    ("VACUUM (FULL, ANALYZE) t", "vacuum", ("full",)),
    ("REINDEX TABLE CONCURRENTLY t", "reindex", ("concurrently",)),
    ("LOCK t", "lock", ()),
    ("LOCK TABLE t IN ROW EXCLUSIVE MODE", "lock", ("weak",)),
])
def test_operation_flags(sql: str, op: str, flags: tuple[str, ...]) -> None:
    found = [o for o in one(sql).ops if o.op == op and (o.name or op in ("set", "vacuum"))]
    assert found[-1].flags == flags


@pytest.mark.parametrize("sql,kind", [
    ("BEGIN", "BEGIN"), ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN"),
    ("COMMIT", "COMMIT"), ("END", "COMMIT"), ("ROLLBACK", "ROLLBACK"), ("ABORT", "ROLLBACK"),
    ("SAVEPOINT a", "SAVEPOINT"),
])
def test_transaction_control(sql: str, kind: str) -> None:
    statement = one(sql)
    assert statement.analysed and statement.kind == kind
    assert [o.op for o in statement.ops] == ["transaction"]


# --- not analysed -------------------------------------------------------------------------------


@pytest.mark.parametrize("sql,kind", [
    ("DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$", "DO"),
    ("SELECT my_migration_helper('users')", "SELECT"),
    ("CREATE POLICY p ON t USING (true)", "CREATE POLICY"),
    ("ALTER TABLE t ATTACH PARTITION p FOR VALUES FROM (1) TO (2)", "ALTER TABLE"),
    ("ALTER TABLE splits DROP IF EXISTS COLUMN node_id", "ALTER TABLE"),
    ("ALTER TABLE shards ALTER COLUMN shard_id TYPE BIGSERIAL", "ALTER TABLE"),
    ("ALTER TYPE mood RENAME VALUE 'a' TO 'b'", "ALTER TYPE"),
    ("CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING", "CREATE RULE"),
    ("SELECT 'unterminated", "SELECT"),
    ("THIS IS NOT SQL", "THIS"),
])
def test_statements_that_cannot_be_read_exactly_are_not_analysed(sql: str, kind: str) -> None:
    statement = one(sql)
    assert not statement.analysed
    assert statement.kind == kind
    assert statement.reason
    assert statement.objects == () and statement.ops == ()


def test_one_bad_statement_does_not_hide_the_others() -> None:
    result = analyse_sql("CREATE TABLE a (id int);\nGARBAGE IN, GARBAGE OUT;\nDROP TABLE b;\n",
                         AnalysisCache())
    assert [s.analysed for s in result.statements] == [True, False, True]
    assert result.not_analysed == [("GARBAGE", 2)]
    assert (result.statements_total, result.statements_analysed) == (3, 2)


# --- cache --------------------------------------------------------------------------------------


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = json.loads(json.dumps(value))  # what a JSON store would hold


SAMPLE = ("SET lock_timeout = '5s';\n-- migorch:ignore RSK003\nALTER TABLE t DROP COLUMN c;\n"
          "DO $$ BEGIN END $$;\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migorch:ignore X1\n")


def test_same_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = analysis_module.analyse_uncached
    monkeypatch.setattr(analysis_module, "analyse_uncached",
                        lambda text, key: calls.append(key) or real(text, key))
    cache = AnalysisCache()
    first = analyse_sql(SAMPLE, cache)
    second = analyse_sql(SAMPLE, cache)
    assert first is second and len(calls) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    analyse_sql(SAMPLE + "\n", cache)
    assert len(calls) == 2


def test_results_round_trip_through_a_json_store() -> None:
    store = DictStore()
    fresh = analyse_sql(SAMPLE, AnalysisCache(store))
    assert list(store.data) == [fresh.key]
    reloaded = AnalysisCache(store)
    again = analyse_sql(SAMPLE, reloaded)
    assert reloaded.store_hits == 1 and reloaded.misses == 0
    assert again == fresh
    assert SqlAnalysis.from_json(json.loads(json.dumps(fresh.to_json()))) == fresh


def test_a_corrupt_store_entry_is_analysed_again() -> None:
    store = DictStore()
    key = analyse_sql(SAMPLE, AnalysisCache(store)).key
    store.data[key] = {"format": -1}
    cache = AnalysisCache(store)
    assert analyse_sql(SAMPLE, cache).statements_total == 4
    assert cache.misses == 1



def test_memory_cache_is_bounded() -> None:
    cache = AnalysisCache(max_entries=2)
    for i in range(4):
        analyse_sql(f"SELECT {i}", cache)
    analyse_sql("SELECT 0", cache)
    assert cache.misses == 5


# --- real files ---------------------------------------------------------------------------------


def _sql_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.sql"))


@pytest.mark.skipif(not CORPORA.is_dir(), reason="shared/corpora is not next to the repository")
def test_nothing_in_the_corpora_crashes_the_analysis() -> None:
    files = _sql_files(CORPORA)
    assert files
    total = analysed = 0
    for path in files:
        result = analyse_sql(path.read_text(encoding="utf-8"), AnalysisCache())
        total += result.statements_total
        analysed += result.statements_analysed
        for statement in result.statements:
            assert statement.analysed or statement.reason, (path, statement.line)
            assert not any(s.reason and s.reason.startswith("internal error")
                           for s in result.statements), path
    assert analysed / total > 0.9


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/services not present")
def test_every_example_statement_is_analysed() -> None:
    for path in _sql_files(EXAMPLES):
        result = analyse_sql(path.read_text(encoding="utf-8"), AnalysisCache())
        assert result.not_analysed == [], path


# --- robustness ---------------------------------------------------------------------------------

_WORDS = ["CREATE", "ALTER", "DROP", "TABLE", "INDEX", "CONCURRENTLY", "IF", "EXISTS", "NOT",
          "ON", "ONLY", "t", "s.t", '"Q"', "ADD", "COLUMN", "CONSTRAINT", "RENAME", "TO", "SET",
          "DEFAULT", "NULL", "TYPE", "int", "(", ")", ",", ";", "'x'", "$$ a; $$", "UPDATE",
          "DELETE", "FROM", "WHERE", "INSERT", "INTO", "VALUES", "SELECT", "*", "TRIGGER",
          "FUNCTION", "LOCK", "VACUUM", "FULL", "TRUNCATE", "CASCADE", "GRANT", "COMMENT", "IS",
          "SCHEMA", "WITH", "AS", "BEGIN", "COMMIT", "REFERENCES", "CHECK", "UNIQUE", "USING",
          "VALID", "PRIMARY", "KEY", "SEQUENCE", "EXTENSION", "DO", "--c\n", "/* c */", "."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=25))
def test_analysis_never_raises(words: list[str]) -> None:
    result = analyse_sql(" ".join(words), AnalysisCache())
    for statement in result.statements:
        assert statement.analysed or statement.reason
        assert not (statement.reason or "").startswith("internal error"), statement


# --- bounded work (issue 12) --------------------------------------------------------------------


def test_a_statement_over_the_bound_is_not_parsed_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(*args: object) -> None:
        raise AssertionError("a statement over the bound reached sqlglot")

    monkeypatch.setattr(analysis_module, "MAX_ANALYSED_CHARS", 200)
    monkeypatch.setattr(analysis_module, "analyse_parsed", must_not_parse)
    values = ",\n".join(f"({n}, 'row {n}')" for n in range(40))
    sql = f"DROP TABLE old_seed;\nINSERT INTO seed VALUES\n{values};\n"
    result = analyse_sql(sql, AnalysisCache())
    small, large = result.statements
    assert small.analysed  # under the bound (and read from tokens)
    assert not large.analysed and large.kind == "INSERT" and large.line == 2
    assert large.reason is not None
    assert f"{len(sql.split(';')[1].strip()):,} characters long" in large.reason
    assert "over 200 characters are not parsed" in large.reason
    assert large.summary.endswith("...") and len(large.summary) == 80


def test_the_default_bound_keeps_ordinary_statements_analysed() -> None:
    body = "\n".join(f"  PERFORM {n};" for n in range(2000))
    sql = ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n" + body +
           "\nEND $$;\nALTER TABLE t ADD COLUMN c int;")
    assert len(sql) < analysis_module.MAX_ANALYSED_CHARS
    assert [s.analysed for s in analyse_sql(sql, AnalysisCache()).statements] == [True, True]
