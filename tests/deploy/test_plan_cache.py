"""A plan step's up risk kept in the analysis store (plan_cache.py): served for the same files
and tool, computed again when anything it was computed from changes, never a stale level."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import service_files, write_service

from pytest_migorch.deploy.plan_cache import step_key
from pytest_migorch.deploy.planning import plan_step
from pytest_migorch.model import RiskLevel
from pytest_migorch.project.result_cache import ResultCache
from pytest_migorch.project.validation import load_project
from pytest_migorch.sql.analysis import AnalysisCache
from pytest_migorch.sql.store import SqliteStore


def _project(root: Path, drop: str = "ALTER TABLE t DROP COLUMN x;\n") -> Path:
    files = service_files(["000001_a", "000002_b"])
    files["000001_a.up.sql"] = "CREATE TABLE t (id int, x int);\n"
    files["000002_b.up.sql"] = drop
    write_service(root, "svc", files)
    return root


def test_a_stored_step_is_served_from_the_store(tmp_path: Path) -> None:
    root = _project(tmp_path / "tree")
    with SqliteStore(tmp_path / "cache.sqlite") as store:
        migration = load_project(root).services["svc"].migrations[2]
        first = plan_step(migration, "up", "svc", AnalysisCache(store))
        assert first.risk_level is RiskLevel.HIGH and first.tables == ("t",)
        key = step_key(ResultCache(store), migration, "svc")
        stored = store.get(key)
        assert stored is not None and stored["risk"] == "high"
        # What the store holds is what a later plan shows (nothing re-derives it): an entry
        # written under the same key is served as it is.
        store.set(key, {**stored, "reasons": ["from the store"]})
        again = plan_step(migration, "up", "svc", AnalysisCache(store))
    assert again.reasons == ("from the store",) and again.risk_level is RiskLevel.HIGH


def test_a_changed_file_is_analysed_again(tmp_path: Path) -> None:
    root = _project(tmp_path / "tree")
    with SqliteStore(tmp_path / "cache.sqlite") as store:
        migration = load_project(root).services["svc"].migrations[2]
        assert plan_step(migration, "up", "svc", AnalysisCache(store)).high_risk
        _project(root, "ALTER TABLE t ADD COLUMN y int;\n")
        changed = load_project(root).services["svc"].migrations[2]
        step = plan_step(changed, "up", "svc", AnalysisCache(store))
    assert step.risk_level is RiskLevel.LOW and not step.reasons


def test_every_input_is_in_the_key(tmp_path: Path) -> None:
    root = _project(tmp_path / "tree")
    results = ResultCache(None)
    migration = load_project(root).services["svc"].migrations[2]
    key = step_key(results, migration, "svc")
    assert step_key(results, migration, "svc") == key
    assert step_key(results, migration, "other_schema") != key
    (root / "svc" / "migrations" / "000002_b.down.sql").write_text("SELECT 2;\n")
    assert step_key(results, migration, "svc") != key  # the down file too
    declared = load_project(_project(tmp_path / "high"))
    files = service_files({"000001_a": {}, "000002_b": {"risk_level": "high"}})
    files["000002_b.up.sql"] = "ALTER TABLE t DROP COLUMN x;\n"
    write_service(tmp_path / "high", "svc", files)
    high = load_project(tmp_path / "high").services["svc"].migrations[2]
    assert step_key(results, high, "svc") != step_key(
        results, declared.services["svc"].migrations[2], "svc")  # its dependencies.json entry


def test_without_a_store_nothing_is_kept(tmp_path: Path) -> None:
    root = _project(tmp_path / "tree")
    migration = load_project(root).services["svc"].migrations[2]
    assert plan_step(migration, "up", "svc", AnalysisCache()).high_risk
    assert plan_step(migration, "up", "svc").high_risk


_TRICKY = (
    "-- migorch:ignore SQL002 reviewed\nDO $$ BEGIN PERFORM 1; END $$;\n"
    "CREATE TABLE q (note text DEFAULT ';');  -- migorch:ignore RSK001, RSK002 why\n"
    "/* a comment; with a semicolon */ SELECT 'it''s';\nSELECT 'never closed\n"
)


def test_kept_statements_are_the_split_of_the_file(tmp_path: Path) -> None:
    import sys

    from pytest_migorch.deploy.plan_cache import decode_statements, encode_statements
    from pytest_migorch.sql.split import split_statements

    repository = str(Path(__file__).resolve().parents[2])
    sys.path.insert(0, repository)
    try:
        from benchmarks.generate import generate_repository
    finally:
        sys.path.remove(repository)
    generate_repository(tmp_path / "gen", services=2, migrations=30, seed=5)
    texts = [p.read_text() for p in sorted((tmp_path / "gen").rglob("*.sql"))] + [_TRICKY]
    for text in texts:
        statements = tuple(split_statements(text))
        assert decode_statements(encode_statements(statements), text) == statements
    assert any(s.ignores for s in split_statements(_TRICKY))
    assert any(s.unterminated for s in split_statements(_TRICKY))
    # an entry that does not fit the file is not used
    kept = encode_statements(tuple(split_statements(_TRICKY)))
    assert decode_statements(kept, _TRICKY[:20]) is None
    assert decode_statements(None, _TRICKY) is None


def test_a_stored_step_hands_its_statements_over_and_nothing_is_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_migorch.sql import split

    root = _project(tmp_path / "tree", "ALTER TABLE t DROP COLUMN x;\nSELECT 1;\n")
    with SqliteStore(tmp_path / "cache.sqlite") as store:
        migration = load_project(root).services["svc"].migrations[2]
        first = plan_step(migration, "up", "svc", AnalysisCache(store))
        expected = split.split_statements(migration.up.read_text())  # type: ignore[union-attr]
        split._known_statements.clear()
        split._statements.cache_clear()
        split._split_memo.cache_clear()

        def refuse(text: str) -> split.SplitResult:
            raise AssertionError("the file was split again")

        monkeypatch.setattr(split, "split_sql", refuse)
        monkeypatch.setattr(split, "_split_sql", refuse)
        again = plan_step(migration, "up", "svc", AnalysisCache(store))
        assert split.split_statements(migration.up.read_text()) == expected  # type: ignore[union-attr]
    assert again == first
