"""Plain INSERT ... VALUES, UPDATE and DELETE read from PostgreSQL's tree give exactly sqlglot's
facts, and every statement the fast path declines is still read by sqlglot."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_migorch.sql.analysis import analyse_sql
from pytest_migorch.sql.ast_recognisers import analyse_parsed
from pytest_migorch.sql.facts import Facts, Role
from pytest_migorch.sql.pg_dml import KINDS, dml_facts
from pytest_migorch.sql.split import split_sql, tokenize
from pytest_migorch.sql.token_recognisers import statement_kind

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"

STATEMENTS = [
    "UPDATE t SET a = NULL WHERE a = 'legacy'",
    "UPDATE s.t SET a = 'x', b = b + 1\nWHERE a IS NULL AND created_at < '2024-01-01'",
    "UPDATE t SET a = now(), b = lower(c), d = 'x'::text WHERE e IN (1, 2) OR NOT f",
    "UPDATE t SET a = 1",
    "update T set A = -1.5 where B <> true",
    "DELETE FROM t WHERE a = 'x'",
    "DELETE FROM s.t",
    "DELETE FROM t WHERE name LIKE 'seed-%' OR name NOT ILIKE 'x_' OR c NOT LIKE 'a'",
    "DELETE FROM t WHERE a IS NOT NULL AND (b > 2 OR c <= 3)",
    "INSERT INTO t (a, b) VALUES (1, 'x'), (2, now())",
    "INSERT INTO s.t VALUES (1, NULL, true, '{}'::jsonb)",
    "insert into T (A) values (gen_random_uuid())",
]

#: Shapes the fast path leaves to sqlglot, and a fact only a full reading has.
DECLINED = [
    ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", ("u", Role.READ)),
    ("UPDATE t SET a = (SELECT max(b) FROM u)", ("u", Role.READ)),
    ("UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u)", ("u", Role.READ)),
    ("DELETE FROM t USING u WHERE t.id = u.id", ("u", Role.READ)),
    ("DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", ("u", Role.READ)),
    ("INSERT INTO t (a) SELECT a FROM u", ("u", Role.READ)),
    ("WITH x AS (SELECT a FROM u) INSERT INTO t (a) SELECT a FROM x", ("u", Role.READ)),
    ('UPDATE "T" SET a = 1', ("T", Role.WRITTEN)),
    ("UPDATE t AS x SET a = 1", ("t", Role.WRITTEN)),
    ("UPDATE ONLY t SET a = 1", ("t", Role.WRITTEN)),
    ("UPDATE t SET a = 1 RETURNING a", ("t", Role.WRITTEN)),
    ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a",
     ("t", Role.WRITTEN)),
    ("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING", ("t", Role.WRITTEN)),
    ("INSERT INTO t DEFAULT VALUES", ("t", Role.WRITTEN)),
    ("UPDATE t SET a = DEFAULT", ("t", Role.WRITTEN)),
]


def sqlglot_facts(text: str) -> Facts:
    tokens = list(tokenize(text))
    return analyse_parsed(statement_kind(tokens), text, tokens)


@pytest.mark.parametrize("text", STATEMENTS)
def test_plain_statements_give_sqlglots_facts(text: str) -> None:
    fast = dml_facts(text)
    assert fast is not None and fast == sqlglot_facts(text)


@pytest.mark.parametrize(("text", "fact"), DECLINED)
def test_other_shapes_are_left_to_sqlglot(text: str, fact: tuple[str, Role]) -> None:
    assert dml_facts(text) is None
    statement = analyse_sql(text + ";\n").statements[0]
    assert statement.analysed
    assert fact in {(o.name, o.role) for o in statement.objects}


def test_a_statement_postgresql_rejects_is_left_to_the_full_path() -> None:
    assert dml_facts("UPDATE t SET a = WHERE b") is None
    assert not analyse_sql("UPDATE t SET a = WHERE b;\n").statements[0].analysed


def test_every_dml_statement_of_the_trees_reads_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # however started
    from benchmarks.generate import generate_repository

    generated = generate_repository(tmp_path / "services", services=4, migrations=60, seed=5)
    files = [*EXAMPLES.rglob("*.sql"), *generated.root.rglob("*.sql"),
             *CORPORA.glob("*/services/**/*.sql")]
    fast = 0
    for path in files:
        for statement in split_sql(path.read_text(errors="replace")).statements:
            if statement_kind(list(tokenize(statement.text))) not in KINDS:
                continue
            got = dml_facts(statement.text)
            if got is not None:
                fast += 1
                assert got == sqlglot_facts(statement.text), f"{path}:{statement.line}"
    assert fast >= 30
