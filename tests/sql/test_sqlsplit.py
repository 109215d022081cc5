"""The statement splitter: PostgreSQL's lexical rules, line numbers, ignore comments."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_migorch.sql.split import (
    IgnoreComment,
    parse_ignore_comment,
    split_sql,
    split_sql_with_tokens,
    split_statements,
    tokenize,
)


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_plain_statements_keep_their_lines() -> None:
    sql = "CREATE TABLE a (id int);\n\nALTER TABLE a\n  ADD COLUMN b int;\nSELECT 1"
    statements = split_statements(sql)
    assert [s.text for s in statements] == [
        "CREATE TABLE a (id int)", "ALTER TABLE a\n  ADD COLUMN b int", "SELECT 1"]
    assert [(s.line, s.end_line) for s in statements] == [(1, 1), (3, 4), (5, 5)]
    assert [s.index for s in statements] == [0, 1, 2]


def test_semicolons_inside_quotes_do_not_split() -> None:
    sql = "SELECT 'a;b', 'it''s;', \"we;ird\"\"x\", E'\\';x' FROM t; SELECT 2;"
    assert texts(sql) == ["SELECT 'a;b', 'it''s;', \"we;ird\"\"x\", E'\\';x' FROM t", "SELECT 2"]


def test_backslash_does_not_escape_in_standard_strings() -> None:
    # With standard_conforming_strings (the default) '\' is a complete string.
    assert texts("SELECT '\\'; SELECT 2") == ["SELECT '\\'", "SELECT 2"]


def test_dollar_quoted_function_body_is_one_statement() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  x := 'a;b';\n  RETURN NEW;\nEND;\n"
        "$$ LANGUAGE plpgsql;\n"
        "CREATE FUNCTION g() RETURNS int AS $fn$ SELECT 1; $$ still inside $$; $fn$ LANGUAGE sql;\n"
        "DO $do$ BEGIN PERFORM 1; END $do$;"
    )
    statements = split_statements(sql)
    assert len(statements) == 3
    assert statements[0].text.endswith("LANGUAGE plpgsql")
    assert (statements[0].line, statements[0].end_line) == (1, 6)
    assert statements[1].line == 7 and "still inside" in statements[1].text
    assert statements[2].text.startswith("DO $do$")


def test_dollar_in_identifiers_and_parameters_does_not_quote() -> None:
    assert texts("SELECT a$b$ FROM t WHERE x = $1; SELECT 2") == [
        "SELECT a$b$ FROM t WHERE x = $1", "SELECT 2"]


def test_comments_are_skipped_and_block_comments_nest() -> None:
    sql = ("-- a; comment\nSELECT 1 /* x; /* nested; */ still; */ + 2; -- trailing;\n"
           "/* ; */ SELECT 3")
    statements = split_statements(sql)
    assert [s.text for s in statements] == [
        "SELECT 1 /* x; /* nested; */ still; */ + 2", "SELECT 3"]
    assert statements[0].line == 2 and statements[1].line == 3


def test_sql_standard_function_body_begin_atomic() -> None:
    sql = ("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
           "  SELECT CASE WHEN true THEN 1 END;\n  SELECT 2;\nEND;\nSELECT 3;")
    assert len(texts(sql)) == 2
    assert texts(sql)[1] == "SELECT 3"


def test_begin_commit_in_a_file_are_statements() -> None:
    assert texts("BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n") == [
        "BEGIN", "CREATE TABLE a (id int)", "COMMIT"]


def test_semicolon_inside_parentheses_does_not_split() -> None:
    # psql's rule: a ';' at parenthesis depth > 0 never ends a statement.
    assert len(texts("SELECT (1; 2); SELECT 3")) == 2


def test_crlf_and_lone_cr_line_endings() -> None:
    sql = "SELECT 1;\r\nSELECT\r\n 2;\rSELECT 3;"
    statements = split_statements(sql)
    assert [(s.line, s.end_line) for s in statements] == [(1, 1), (2, 3), (4, 4)]
    assert statements[1].text == "SELECT\r\n 2"


def test_empty_statements_and_comment_only_files() -> None:
    assert texts(";;  ;\n-- nothing\n/* here */") == []
    assert texts("") == []


def test_unterminated_constructs_are_reported_not_raised() -> None:
    result = split_sql("SELECT 1;\nSELECT 'open;\nSELECT 2;")
    assert len(result.statements) == 2
    assert result.statements[1].unterminated == "unterminated quoted string starting at line 2"
    assert split_sql("SELECT $x$ never closed").statements[0].unterminated is not None
    assert split_sql("SELECT 1; /* open").unterminated_comment_line == 1


def test_ignore_comments_attach_to_the_next_statement() -> None:
    sql = ("-- migorch:ignore RSK003, rsk004 dropping is fine\n"
           "-- another comment\n\n"
           "ALTER TABLE t DROP COLUMN c;\n"
           "ALTER TABLE t DROP COLUMN d; -- migorch:ignore RSK003\n"
           "SELECT 1;\n"
           "-- migorch:ignore SQL002\n")
    result = split_sql(sql)
    first, second, third = result.statements
    assert first.ignores == (IgnoreComment(("RSK003", "RSK004"), 1),)
    assert second.ignores == (IgnoreComment(("RSK003",), 5),)
    assert third.ignores == ()
    assert result.orphan_ignores == (IgnoreComment(("SQL002",), 7),)


def test_ignore_comment_inside_a_statement_applies_to_it() -> None:
    sql = "ALTER TABLE t\n  -- migorch:ignore RSK005\n  ALTER COLUMN c SET NOT NULL;"
    assert split_statements(sql)[0].ignored_codes == {"RSK005"}


@pytest.mark.parametrize("comment,codes", [
    ("-- migorch:ignore RSK001", ("RSK001",)),
    ("--migorch:ignore rsk001,SQL002", ("RSK001", "SQL002")),
    ("-- migorch:ignore RSK001 because the table is empty", ("RSK001",)),
    ("-- migorch:ignore drop-column, RSK002: reason", ("drop-column", "RSK002")),
    ("-- migorch:ignore", ()),
    ("-- nothing to see", None),
    ("-- migorch:ignored RSK001", None),
])
def test_parse_ignore_comment(comment: str, codes: tuple[str, ...] | None) -> None:
    assert parse_ignore_comment(comment) == codes


def test_tokens_fold_unquoted_and_unescape_quoted_identifiers() -> None:
    tokens = list(tokenize('Users "My""Table" $$x$$ 1.5e3 ::'))
    assert [(t.kind, t.value) for t in tokens] == [
        ("word", "users"), ("ident", 'My"Table'), ("dollar", "x"), ("number", "1.5e3"),
        ("op", "::")]


def test_whitespace_between_and_after_tokens_is_never_a_token() -> None:
    """The lexer takes the whitespace before a token in the same match, possessively: trailing
    whitespace, or whitespace alone, must not come back as an ``other`` token."""
    assert list(tokenize(" \t\n\r\f\v\ufeff")) == []
    tokens = list(tokenize("  a\n\t$t$ x $t$ \r\n ( -- c\n  ", comments=True))
    assert [(t.kind, t.text, t.start, t.end) for t in tokens] == [
        ("word", "a", 2, 3), ("dollar", "$t$ x $t$", 5, 14), ("punct", "(", 18, 19),
        ("comment", "-- c", 20, 24)]
    assert tokens[1].value == " x "


# --- properties -------------------------------------------------------------------------------

_PG_SPACE = " \t\n\r\f\v\ufeff"  # what PostgreSQL's lexer skips (plus a BOM)


def _assert_invariants(sql: str) -> None:
    statements = split_statements(sql)
    previous_end = 0
    previous_line = 0
    for statement in statements:
        assert sql[statement.start:statement.end] == statement.text
        assert statement.text
        if statement.unterminated is None:  # an open quote runs to the end, spaces included
            assert statement.text == statement.text.strip(_PG_SPACE)
        assert statement.start >= previous_end
        assert previous_line <= statement.line <= statement.end_line
        prefix = sql[:statement.start]
        assert statement.line == len(re.findall(r"\r\n|\n|\r", prefix)) + 1
        gap = sql[previous_end:statement.start]
        assert all(t.kind == "comment" or t.text == ";" for t in tokenize(gap, comments=True))
        previous_end, previous_line = statement.end, statement.end_line
    tail = sql[previous_end:]
    assert all(t.kind == "comment" or t.text == ";" for t in tokenize(tail, comments=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab$'\";-/*()\n\r \\eE1_")), max_size=80))
def test_random_text_never_raises_and_spans_cover_the_text(sql: str) -> None:
    _assert_invariants(sql)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_unicode_never_raises(sql: str) -> None:
    _assert_invariants(sql)


def _assert_kept_tokens_are_the_statements_own(sql: str) -> None:
    """The tokens the splitter keeps for the analysis are what lexing each statement alone
    gives (the analysis uses them instead of lexing again), and the split is split_sql's."""
    split, kept = split_sql_with_tokens(sql)
    assert split == split_sql(sql)
    assert [list(tokens) for tokens in kept] == [list(tokenize(s.text))
                                                 for s in split.statements]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(
    list("ab$'\";-/*()\n\r \\eE1_.:+U&") + ["::", "$a$", "--", "/*", "*/", "1e5", "begin",
                                              "end", "create function ", "case "]),
    max_size=40).map("".join))
def test_kept_tokens_match_lexing_each_statement(sql: str) -> None:
    _assert_kept_tokens_are_the_statements_own(sql)


def test_kept_tokens_on_the_example_files() -> None:
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.sql"))
    assert files
    for path in files:
        _assert_kept_tokens_are_the_statements_own(path.read_text(encoding="utf-8"))


_fragment = st.one_of(
    st.sampled_from(["SELECT 1", "CREATE TABLE t (a int, b text)", "UPDATE t SET a = 2",
                     "DROP INDEX i", "INSERT INTO t VALUES (1, 'x')"]),
    st.builds(lambda s: "SELECT '" + s.replace("'", "''") + "'", st.text(max_size=10)),
    st.builds(lambda s: "SELECT $q$" + s.replace("$q$", "") + "$q$",
              st.text(alphabet="ab;$'\n", max_size=10)),
    st.builds(lambda s: "SELECT 1 /* " + s + " */ + 2",
              st.text(alphabet="ab;'\n", max_size=10)),
    st.builds(lambda s: 'SELECT "' + s.replace('"', '""') + '"',
              st.text(alphabet="ab;'\"", min_size=1, max_size=10)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_fragment, max_size=6),
       st.sampled_from([";\n", ";\r\n", "; -- c;\n", ";\n\n/* x; */ "]))
def test_joined_statements_split_back(fragments: list[str], separator: str) -> None:
    sql = separator.join(fragments) + (";" if fragments else "")
    assert texts(sql) == fragments
    _assert_invariants(sql)
    # Line numbers strictly increase between statements that start on different lines.
    lines = [s.line for s in split_statements(sql)]
    assert lines == sorted(lines)
