"""The SQLite analysis store used by `migorch validate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_migorch.sql import analysis as analysis_module
from pytest_migorch.sql.analysis import AnalysisCache, analyse_sql, content_key
from pytest_migorch.sql.store import SqliteStore, default_cache_path


def test_results_survive_the_process(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "analysis.sqlite"
    with SqliteStore(path) as store:
        store.set("k", {"a": [1, 2]})
    with SqliteStore(path) as store:
        assert store.get("k") == {"a": [1, 2]}
        assert store.get("missing") is None


def test_analysis_is_read_back_from_the_store(tmp_path: Path) -> None:
    path = tmp_path / "analysis.sqlite"
    sql = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);"
    with SqliteStore(path) as store:
        first = analyse_sql(sql, AnalysisCache(store))
    with SqliteStore(path) as store:
        assert store.get(first.key) is not None
        again = analyse_sql(sql, AnalysisCache(store))
    assert again.to_json() == first.to_json()


def test_an_unusable_file_turns_the_store_off_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "analysis.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    store = SqliteStore(path)
    store.set("k", {"a": 1})
    assert store.get("k") is None
    store.close()


def test_default_path_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIGORCH_CACHE_DIR", str(tmp_path))
    assert default_cache_path() == tmp_path / "analysis.sqlite"
    monkeypatch.delenv("MIGORCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "pytest-migorch" / "analysis.sqlite"


def test_a_second_process_writes_while_the_first_still_has_the_store_open(
        tmp_path: Path) -> None:
    """Each write is its own short transaction: an open store in one process (a long pytest
    run) neither blocks another process's writes nor hides its own committed entries."""
    path = tmp_path / "analysis.sqlite"
    first = SqliteStore(path)
    first.set("from-first", {"n": 1})
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from pytest_migorch.sql.store import SqliteStore\n"
        "start = time.monotonic()\n"
        "with SqliteStore(Path(sys.argv[1])) as store:\n"
        "    store.set('from-second', {'n': 2})\n"
        "    seen = store.get('from-first')\n"
        "print(json.dumps({'seconds': time.monotonic() - start, 'seen': seen}))\n")
    try:
        done = subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                              capture_output=True, text=True, timeout=60)
        result = json.loads(done.stdout)
        assert result["seen"] == {"n": 1}
        assert result["seconds"] < 1.5  # the old store made it wait out its 2 s timeout
        assert first.get("from-second") == {"n": 2}
        first.set("after", {"n": 3})
    finally:
        first.close()
    with SqliteStore(path) as store:
        assert [store.get(k) for k in ("from-first", "from-second", "after")] == [
            {"n": 1}, {"n": 2}, {"n": 3}]


def test_values_over_the_bound_are_not_stored(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "analysis.sqlite", max_value_bytes=100) as store:
        store.set("small", {"a": "x" * 10})
        store.set("large", {"a": "x" * 200})
        assert store.get("small") == {"a": "x" * 10}
        assert store.get("large") is None


def test_the_cache_key_changes_with_the_package_version_and_format(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sql = "CREATE TABLE t (id int);"
    key = content_key(sql)
    monkeypatch.setattr(analysis_module, "__version__", "99.0.0")
    upgraded = content_key(sql)
    monkeypatch.setattr(analysis_module, "ANALYSIS_FORMAT", 999)
    assert len({key, upgraded, content_key(sql)}) == 3


def test_an_upgrade_does_not_read_the_older_versions_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "analysis.sqlite"
    sql = "CREATE TABLE t (id int);"
    with SqliteStore(path) as store:
        analyse_sql(sql, AnalysisCache(store))
    monkeypatch.setattr(analysis_module, "__version__", "99.0.0")
    with SqliteStore(path) as store:
        cache = AnalysisCache(store)
        analyse_sql(sql, cache)
    assert (cache.store_hits, cache.misses) == (0, 1)


def test_internal_errors_are_not_persisted(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(analysis_module, "analyse_parsed", broken)
    path = tmp_path / "analysis.sqlite"
    with SqliteStore(path) as store:
        result = analyse_sql("INSERT INTO t SELECT * FROM u;", AnalysisCache(store))
        assert result.statements[0].reason == "internal error (RuntimeError)"
        assert store.get(result.key) is None


def test_batched_writes_are_read_back_and_reach_the_file_by_batch_and_on_close(
        tmp_path: Path) -> None:
    path = tmp_path / "analysis.sqlite"
    store = SqliteStore(path, batch_size=3)
    store.set("a", {"n": 1})
    store.set("b", {"n": 2})
    assert store.get("a") == {"n": 1}  # served while it waits
    with SqliteStore(path) as other:
        assert other.get("a") is None  # not written yet
        store.set("c", {"n": 3})  # the third entry writes the batch
        assert [other.get(k) for k in "abc"] == [{"n": 1}, {"n": 2}, {"n": 3}]
        store.set("d", {"n": 4})
        store.close()
        assert other.get("d") == {"n": 4}
