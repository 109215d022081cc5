"""The SQLite analysis store used by `migorch validate`."""

from __future__ import annotations

from pathlib import Path

from pytest_migorch.sql.analysis import AnalysisCache, analyse_sql
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
