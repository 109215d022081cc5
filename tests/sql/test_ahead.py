"""Analyses computed ahead in worker processes are the analyses this process would compute, and
anything wrong with the workers leaves the work to this process instead of losing it."""

from __future__ import annotations

import os

import pytest

from pytest_migorch.sql import ahead as ahead_module
from pytest_migorch.sql.ahead import AnalysesAhead, analyses_ahead
from pytest_migorch.sql.analysis import (
    AnalysisCache,
    SqlAnalysis,
    analyse_sql,
    analyse_uncached,
    content_key,
)
from pytest_migorch.sql import split as split_module
from pytest_migorch.sql.split import split_statements
from pytest_migorch.sql.store import encode

#: Statements of every path of the analysis: token recognisers, sqlglot, PostgreSQL's tree
#: (a DO block), a syntax error, an unterminated quote, ignore comments.
PIECES = [
    "SET lock_timeout = '5s';\nCREATE TABLE t{n} (id bigserial PRIMARY KEY, a varchar(20),"
    " r int REFERENCES p (id));\n",
    "-- migorch:ignore RSK003 reviewed\nALTER TABLE t{n} DROP COLUMN c, ADD COLUMN d int NOT NULL"
    " DEFAULT random();\n",
    "DO $$ BEGIN UPDATE t{n} SET a = 1; END $$;\nCREATE INDEX CONCURRENTLY i{n} ON t{n} (a);\n",
    "INSERT INTO t{n} (a) SELECT a FROM s ON CONFLICT (a) DO UPDATE SET a = excluded.a;\n",
    "ALTER TABLE t{n} ADD COLUMN a int b int;\nDROP INDEX i{n} ON t{n};\n",
    "CREATE VIEW v{n} AS SELECT * FROM t{n} JOIN u ON u.id = t{n}.id;\nSELECT 'open\n",
]


def texts(count: int) -> list[str]:
    return [PIECES[n % len(PIECES)].format(n=n) for n in range(count)]


def keyed(items: list[str]) -> list[tuple[str, str]]:
    return [(content_key(text), text) for text in items]


def _die(text: str, key: str) -> SqlAnalysis:
    """An analysis whose worker dies: what a crash in the parser looks like from here."""
    os._exit(3)


def test_analyses_from_the_workers_are_those_computed_here() -> None:
    items = keyed(texts(20))
    with AnalysesAhead(items, analyse_uncached, workers=2, chunk_files=3) as ahead:
        assert ahead.active
        for key, text in items:
            got = ahead.take(key)
            assert got is not None, "every text sent comes back from a worker"
            assert got.analysis == analyse_uncached(text, key)
            assert got.document == encode(got.analysis.to_json())


def test_the_split_a_worker_made_is_the_split_made_here() -> None:
    items = keyed([text + "\n-- worker split\n" for text in texts(6)])
    with AnalysesAhead(items, analyse_uncached, workers=2, chunk_files=2) as ahead:
        for key, _ in items:
            ahead.take(key)
    for _, text in items:
        assert split_module._known_statements[text] == split_module._split_sql(text).statements
        assert split_statements(text) == list(split_module._split_sql(text).statements)


def test_a_dead_worker_leaves_the_analysis_to_this_process() -> None:
    items = keyed(texts(8))
    cache = AnalysisCache()
    with AnalysesAhead(items, _die, workers=2, chunk_files=2) as ahead:
        cache.ahead = ahead
        for key, text in items:
            assert analyse_sql(text, cache) == analyse_uncached(text, key)
        assert not ahead.active


def test_texts_the_cache_holds_are_not_sent_and_unknown_keys_do_not_wait() -> None:
    items = keyed(texts(6))
    held = items[0][0]
    with AnalysesAhead(items, analyse_uncached, workers=2, chunk_files=2,
                       needed=lambda key: key != held) as ahead:
        assert ahead.take(held) is None
        assert ahead.take(content_key("SELECT 1;")) is None
        assert all(ahead.take(key) is not None for key, _ in items[1:])


def test_few_files_or_one_core_start_no_workers() -> None:
    cache = AnalysisCache()
    with analyses_ahead(cache, iter(texts(3)), count=3, workers=2) as few:
        assert few is None and cache.ahead is None
    with analyses_ahead(cache, iter(texts(80)), count=80, workers=0) as single:
        assert single is None
    with analyses_ahead(cache, iter(texts(80)), count=80, workers=2) as many:
        assert many is not None and cache.ahead is many
    assert cache.ahead is None


def test_usable_workers_needs_two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead_module.os, "sched_getaffinity", lambda pid: {0})
    assert ahead_module.usable_workers() == 0
    monkeypatch.setattr(ahead_module.os, "sched_getaffinity", lambda pid: {0, 1})
    assert ahead_module.usable_workers() == 2
    monkeypatch.setattr(ahead_module.sys, "platform", "darwin")
    assert ahead_module.usable_workers() == 0


def test_the_parent_receives_modes_and_schema_details_and_does_not_compute_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks' per-text work (execution mode, schema details) comes back with the analysis:
    the parent, the critical path, then computes neither, and gets what it would have."""
    from pytest_migorch.sql import execution_mode as mode_module
    from pytest_migorch.sql import schema_facts

    items = keyed([text + f"-- {os.getpid()} fresh\n" for text in texts(12)])
    expected = {text: (mode_module._sql_mode.__wrapped__(text),
                       schema_facts._file_details.__wrapped__(
                           text, len(analyse_uncached(text, key).statements)))
                for key, text in items}
    with AnalysesAhead(items, analyse_uncached, workers=2, chunk_files=3) as ahead:
        assert ahead.active  # the workers are forked: what is patched now is the parent's

        def computed_here(*args: object) -> None:
            raise AssertionError("computed in the parent")

        monkeypatch.setattr(mode_module, "_sql_mode", computed_here)
        monkeypatch.setattr(schema_facts, "_file_details", computed_here)
        for key, text in items:
            got = ahead.take(key)
            assert got is not None
            mode, details = expected[text]
            assert mode_module.sql_mode(text) == mode
            assert schema_facts.file_details(text, len(got.analysis.statements)) == details
