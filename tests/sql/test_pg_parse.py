"""PostgreSQL's own parser (pglast) in the SQL analysis: syntax errors, positions, tree facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from helpers import pair, write_service

from pytest_migorch.cli.main import main
from pytest_migorch.sql import pg_parse
from pytest_migorch.sql.analysis import AnalysisCache, StatementAnalysis, analyse_sql, content_key
from pytest_migorch.sql.pg_recognisers import recognise_tree
from pytest_migorch.sql.split import split_sql

pytest.importorskip("pglast")

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO.parent / "shared" / "corpora"

#: Statements sqlglot reads without complaint but PostgreSQL rejects, with PostgreSQL's message
#: and the 1-based column it points at.
SQLGLOT_ACCEPTS_POSTGRES_REJECTS = [
    ("DROP INDEX i ON t", 'syntax error at or near "ON"', 14),
    ("DROP INDEX IF NOT EXISTS i", 'syntax error at or near "NOT"', 15),
    ("ALTER TABLE t ADD COLUMN a int ADD COLUMN b int", 'syntax error at or near "ADD"', 32),
]


def statements(sql: str) -> tuple[StatementAnalysis, ...]:
    return analyse_sql(sql, AnalysisCache()).statements


def one(sql: str) -> StatementAnalysis:
    found = statements(sql)
    assert len(found) == 1, found
    return found[0]


def facts(sql: str) -> set[tuple[str, str, str]]:
    statement = one(sql)
    assert statement.analysed, statement.reason
    return {(o.kind, o.display, o.role.value) for o in statement.objects}


# --- syntax errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("sql,message,column", SQLGLOT_ACCEPTS_POSTGRES_REJECTS)
def test_statements_postgres_rejects_are_certainly_invalid(sql: str, message: str,
                                                           column: int) -> None:
    statement = one(sql)
    assert statement.invalid and not statement.analysed
    assert statement.reason == f"PostgreSQL rejects it: {message} at line 1, column {column}"
    assert (statement.error_line, statement.error_column) == (1, column)
    assert statement.objects == () and statement.ops == ()


def test_error_position_is_in_the_file_with_crlf_and_multibyte_characters() -> None:
    sql = ("-- caf\u00e9 \U0001f600\r\nCREATE TABLE t (id int);\r\n"
           "INSERT INTO t VALUES ('\u00e9\U0001f600\u00fc');  DROP INDEX i ON t;\r\n")
    bad = statements(sql)[2]
    # Line 3: "ON" is its 45th character (each of the three non-ASCII ones counts once).
    assert sql.split("\r\n")[2].index(" ON ") + 2 == 45
    assert bad.invalid and (bad.line, bad.error_line, bad.error_column) == (3, 3, 45)
    assert bad.reason == 'PostgreSQL rejects it: syntax error at or near "ON" at line 3, column 45'


def test_error_position_counts_a_lone_cr_as_a_line_break() -> None:
    sql = "SELECT 1;\rSELECT 2;\r\r  DROP INDEX IF NOT EXISTS i;"
    bad = statements(sql)[2]
    assert (bad.error_line, bad.error_column) == (4, 17)


def test_end_of_input_points_just_after_the_statement() -> None:
    bad = statements("SELECT 1;\nSELECT a FROM\n  t WHERE;\n")[1]
    assert bad.invalid
    assert bad.reason == "PostgreSQL rejects it: syntax error at end of input at line 3, column 10"


def test_a_known_mistake_keeps_its_advice_and_gains_the_position() -> None:
    bad = one("ALTER TABLE splits\n    DROP IF EXISTS COLUMN node_id")
    assert bad.invalid and "write DROP COLUMN IF EXISTS" in (bad.reason or "")
    assert 'PostgreSQL: syntax error at or near "COLUMN" at line 2, column 20' in (bad.reason or "")
    assert (bad.line, bad.error_line, bad.error_column) == (1, 2, 20)


@pytest.mark.parametrize("source,offset,expected", [
    ("abc", 0, (1, 1)), ("abc", 2, (1, 3)), ("a\nb", 2, (2, 1)), ("a\r\nb", 3, (2, 1)),
    ("a\rb", 2, (2, 1)), ("\u00e9\U0001f600x", 2, (1, 3)), ("a\r\n\r\nbc", 6, (3, 2)),
])
def test_position(source: str, offset: int, expected: tuple[int, int]) -> None:
    assert pg_parse.position(source, offset) == expected


def test_validate_reports_a_syntax_error_with_postgres_message_line_and_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_service(tmp_path, "shop", pair(
        "000001_init", up="CREATE TABLE t (id int);\nCREATE INDEX i ON t (id);\n",
        down="DROP TABLE t;\n"))
    write_service(tmp_path, "shop", pair(
        "000002_drop_index", up="SET lock_timeout = '5s';\n  DROP INDEX i ON t;\n",
        down="CREATE INDEX i ON t (id);\n"))
    code = main(["validate", "--root", str(tmp_path), "--all", "--no-cache"])
    out = capsys.readouterr().out
    assert code == 1, out
    line = next(x for x in out.splitlines() if "SQL007" in x)
    assert "000002_drop_index.up.sql:2:" in line
    assert 'PostgreSQL rejects it: syntax error at or near "ON" at line 2, column 16' in line


def test_postgres_confirms_every_syntax_error_and_its_position(fresh_db: str) -> None:
    """Ground truth: a real server rejects each statement with the same message and position."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for sql, message, column in SQLGLOT_ACCEPTS_POSTGRES_REJECTS:
            with pytest.raises(psycopg.errors.SyntaxError) as caught:
                conn.execute(sql.encode())
            assert caught.value.diag.message_primary == message
            assert caught.value.diag.statement_position == str(column)
            assert one(sql).error_column == column
        body = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELEC 1 $$"
        with pytest.raises(psycopg.errors.SyntaxError) as caught:
            conn.execute(body.encode())
        assert caught.value.diag.message_primary == 'syntax error at or near "SELEC"'
        assert one(body).invalid


def test_the_cache_key_depends_on_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    before = content_key("SELECT 1")
    monkeypatch.setattr(pg_parse, "PARSER_ID", "no-pglast")
    assert content_key("SELECT 1") != before


# --- facts from PostgreSQL's tree ---------------------------------------------------------------


def test_do_block_facts_are_those_of_its_static_statements() -> None:
    sql = textwrap.dedent("""\
        DO $$
        DECLARE n int;
        BEGIN
            IF EXISTS (SELECT * FROM pg_tables WHERE tablename = 'old') THEN
                DROP TABLE app.old;
            END IF;
            n := (SELECT count(*) FROM src);
            UPDATE users SET active = true WHERE id > n;
            INSERT INTO audit SELECT * FROM src;
        END $$""")
    assert facts(sql) == {("table", "pg_tables", "read"), ("table", "app.old", "dropped"),
                          ("table", "src", "read"), ("table", "users", "written"),
                          ("table", "audit", "written")}
    assert [op.op for op in one(sql).ops] == ["drop_table", "update", "insert"]


def test_a_do_block_statement_reaches_the_risk_rules() -> None:
    statement = one("DO $$ BEGIN ALTER TABLE t ALTER COLUMN c SET NOT NULL; END $$")
    assert statement.kind == "DO" and [op.op for op in statement.ops] == ["set_not_null"]


@pytest.mark.parametrize("sql,reason", [
    ("DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$", "dynamic SQL (EXECUTE)"),
    ("DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; END $$",
     "dynamic SQL (EXECUTE)"),
    ("DO $$ BEGIN PERFORM my_helper('users'); END $$", "calls my_helper()"),
    ("DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; END $$", "PL/pgSQL COMMIT"),
    ("DO $$ BEGIN CALL p(); END $$", "PL/pgSQL CALL"),
    ("DO $$ DECLARE n int := my_counter(); BEGIN END $$", "calls my_counter()"),
    ("DO LANGUAGE plpython3u $$ plpy.execute('DROP TABLE t') $$", "DO block in plpython3u"),
    ("DO $$ BEGIN IF true THEN END $$", "PL/pgSQL parser cannot read the body"),
])
def test_do_blocks_that_cannot_be_read_exactly_stay_not_analysed(sql: str, reason: str) -> None:
    statement = one(sql)
    assert not statement.analysed and not statement.invalid
    assert statement.kind == "DO" and reason in (statement.reason or "")
    assert statement.objects == () and statement.ops == ()


@pytest.mark.parametrize("sql,expected", [
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY s.mv",
     {("materialized view", "s.mv", "written")}),
    ("ALTER SEQUENCE s.seq RENAME TO seq2", {("sequence", "s.seq", "renamed")}),
    ("ALTER SEQUENCE IF EXISTS seq SET SCHEMA other", {("sequence", "seq", "renamed")}),
    ("ALTER MATERIALIZED VIEW mv SET SCHEMA archive",
     {("materialized view", "mv", "renamed")}),
    ("ALTER VIEW v SET SCHEMA archive", {("view", "v", "renamed")}),
])
def test_statements_sqlglot_does_not_structure_are_read_from_postgres_tree(
        sql: str, expected: set[tuple[str, str, str]]) -> None:
    assert facts(sql) == expected


def test_refresh_and_moves_carry_their_operations() -> None:
    refresh = one("REFRESH MATERIALIZED VIEW CONCURRENTLY mv WITH NO DATA")
    assert [(o.op, o.name, o.flags) for o in refresh.ops] == [
        ("refresh_materialized_view", "mv", ("concurrently", "no_data"))]
    moved = one("ALTER MATERIALIZED VIEW mv SET SCHEMA archive")
    assert moved.objects[0].new_schema == "archive"
    assert [(o.op, o.detail) for o in moved.ops] == [("set_schema", "archive")]
    renamed = one("ALTER SEQUENCE seq RENAME TO seq2")
    assert renamed.objects[0].new_name == "seq2"


def _tree_facts(sql: str) -> set[tuple[str, str, str]]:
    statement = split_sql(sql).statements[0]
    found = recognise_tree(pg_parse.parse_tree(statement.text), statement,
                           lambda s: statements(s.text)[0])
    assert found is not None
    return {(o.kind, o.display, o.role.value) for o in found.objects}


@pytest.mark.parametrize("sql,expected", [
    ('CREATE MATERIALIZED VIEW s.mv AS WITH c AS (SELECT id FROM s.t) '
     'SELECT * FROM c JOIN "U" ON true WITH NO DATA',
     {("materialized view", "s.mv", "created"), ("table", "s.t", "read"),
      ("table", '"U"', "read")}),
    ('CREATE EXTENSION IF NOT EXISTS "uuid-ossp" SCHEMA public',
     {("extension", '"uuid-ossp"', "created")}),
    ("ALTER TYPE s.Mood ADD VALUE IF NOT EXISTS 'x' AFTER 'y'", {("type", "s.mood", "altered")}),
])
def test_postgres_tree_reads_the_statements_the_task_names(
        sql: str, expected: set[tuple[str, str, str]]) -> None:
    """These are read from tokens first; PostgreSQL's tree reads them the same way."""
    assert _tree_facts(sql) == expected


def test_statements_not_read_from_the_tree_keep_their_reason() -> None:
    statement = one("CREATE POLICY p ON t USING (true)")
    assert not statement.analysed and statement.reason and not statement.invalid


# --- function bodies ----------------------------------------------------------------------------

FUNCTIONS = textwrap.dedent("""\
    CREATE FUNCTION backfill(n int) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE users SET active = true WHERE id > n;
    END $$;
    SELECT backfill(10);
    CREATE PROCEDURE purge() LANGUAGE sql AS $$ DELETE FROM t WHERE x; INSERT INTO u SELECT 1 $$;
    CALL purge();
    CREATE FUNCTION dyn(_tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN EXECUTE format('DROP TRIGGER IF EXISTS x ON %s', _tbl); END $$;
    SELECT dyn('users');
    SELECT not_created_here();
    CREATE FUNCTION pathy() RETURNS void LANGUAGE sql SET search_path = other AS $$
    DELETE FROM t $$;
    SELECT pathy();
    """)


def test_a_call_of_a_function_created_above_does_what_its_body_does() -> None:
    found = statements(FUNCTIONS)
    by_line = {st.line: st for st in found}
    assert by_line[1].kind == "CREATE FUNCTION" and by_line[1].analysed
    call = by_line[5]
    assert call.analysed and {(o.display, o.role.value) for o in call.objects} == {
        ("users", "written")}
    assert [op.op for op in call.ops] == ["update"]
    procedure = by_line[7]
    assert procedure.kind == "CALL" and procedure.analysed
    assert {(o.display, o.role.value) for o in procedure.objects} == {("t", "written"),
                                                                      ("u", "written")}


@pytest.mark.parametrize("line,reason", [
    (10, "calls dyn() (created above), whose body cannot be read exactly: runs dynamic SQL"),
    (11, "calls not_created_here()"),
    (14, "sets its own configuration (SET)"),
])
def test_calls_whose_body_cannot_be_read_stay_not_analysed(line: int, reason: str) -> None:
    call = {st.line: st for st in statements(FUNCTIONS)}[line]
    assert not call.analysed and reason in (call.reason or "")


def test_a_syntax_error_in_a_sql_function_body_is_invalid() -> None:
    found = statements("SELECT 1;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n"
                       "  SELECT 1;\n  SELEC 1 $$;\n")
    bad = found[1]
    assert bad.invalid and (bad.line, bad.error_line, bad.error_column) == (2, 4, 3)
    assert 'syntax error at or near "SELEC" (in the function body)' in (bad.reason or "")


# --- the corpora: nothing PostgreSQL would not confirm ------------------------------------------


def test_corpora_get_no_syntax_error_beyond_the_known_broken_downs() -> None:
    if not CORPORA.is_dir():
        pytest.skip("shared corpora not present")
    invalid = set()
    for path in sorted(CORPORA.glob("*/services/*/migrations/*.sql")):
        for st in statements(path.read_text(encoding="utf-8")):
            if st.invalid:
                invalid.add((path.name, st.line))
    # shared/corpora/README.md: quickwit downs 14, 19 and 20 fail on PostgreSQL, nothing else.
    assert invalid == {("14_update-shard-id.down.sql", 1),
                       ("19_add-split-node-id-field.down.sql", 3),
                       ("20_add-shard-doc-mapping-uid-field.down.sql", 1)}


# --- without pglast -----------------------------------------------------------------------------

_BLOCK_PGLAST = "import sys; sys.modules['pglast'] = None; sys.modules['pglast.parser'] = None; "


def _run_without_pglast(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", _BLOCK_PGLAST + code, *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_without_pglast_the_analysis_warns_once_and_goes_on() -> None:
    code = textwrap.dedent("""
        import json, logging
        logging.basicConfig()
        from pytest_migorch.sql.analysis import AnalysisCache, analyse_sql
        out = []
        for sql in ("DROP INDEX i ON t", "REFRESH MATERIALIZED VIEW mv", "CREATE TABLE t (id int)"):
            st = analyse_sql(sql, AnalysisCache()).statements[0]
            out.append([st.analysed, st.invalid])
        print(json.dumps(out))
    """)
    done = _run_without_pglast(code)
    assert done.returncode == 0, done.stderr
    # As before pglast: DROP INDEX ... ON only "not analysed", REFRESH not analysed.
    assert json.loads(done.stdout) == [[False, False], [False, False], [True, False]]
    assert done.stderr.count("pglast") >= 1
    assert done.stderr.count(pg_parse.MISSING_WARNING) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_without_pglast_validate_warns_once_and_works(tmp_path: Path) -> None:
    write_service(tmp_path, "shop", pair("000001_init", up="CREATE TABLE a (id int);\n"))
    write_service(tmp_path, "shop", pair("000002_more", up="CREATE TABLE b (id int);\n",
                                         down="DROP TABLE b;\n"))
    code = ("import sys; from pytest_migorch.cli.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = _run_without_pglast(code, "validate", "--root", str(tmp_path), "--all", "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("pglast (PostgreSQL's parser) cannot be imported") == 1, done.stderr
    assert "Traceback" not in done.stderr
