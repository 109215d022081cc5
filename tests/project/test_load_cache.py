"""The project cache (project/load_cache.py, project/project_codec.py): a kept project is the
one a fresh load builds, and any change the load could see makes the next run load again."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from pytest_migorch.model import (
    DependencyRef,
    Environment,
    Hook,
    Migration,
    MigrationFile,
    MigrationMeta,
    Project,
    Service,
)
from pytest_migorch.findings import Finding
from pytest_migorch.project import load_cache, validation
from pytest_migorch.project.load_cache import known_checksum, load_project_cached
from pytest_migorch.project.project_codec import ENCODED_FIELDS, decode_project, encode_project
from pytest_migorch.project.validation import load_project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "services"
    shutil.copytree(EXAMPLES, root)
    return root


@pytest.fixture
def not_racy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trees written by the test are seconds old at most: trust them (the racy rule has its
    own test)."""
    monkeypatch.setattr(load_cache, "RACY_SECONDS", 0.0)


def _no_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Project:
        raise AssertionError("the tree was loaded instead of served from the cache")

    monkeypatch.setattr(validation, "load_project", refuse)


def _cache_files() -> list[Path]:
    return sorted(load_cache.projects_dir().glob("*.json"))


def test_the_codec_names_every_field_of_the_model() -> None:
    for cls in (Project, Service, Migration, MigrationFile, MigrationMeta, DependencyRef,
                Environment, Hook, Finding):
        assert set(ENCODED_FIELDS[cls]) == {f.name for f in dataclasses.fields(cls)}, cls


def _generated(tmp_path: Path) -> Path:
    sys.path.insert(0, str(REPOSITORY))
    try:
        from benchmarks.generate import generate_repository
    finally:
        sys.path.remove(str(REPOSITORY))
    root = tmp_path / "generated" / "services"
    generate_repository(root, services=3, migrations=12, seed=3)
    return root


def test_decoded_project_equals_a_fresh_load(tree: Path, tmp_path: Path) -> None:
    broken = tree / "user-service/migrations/dependencies.json"
    for root in (tree, _generated(tmp_path)):
        fresh = load_project(root)
        decoded = decode_project(json.loads(json.dumps(encode_project(fresh))), root)
        assert decoded == fresh
        # the fields equality leaves out (lines of dependencies, details) as well
        assert encode_project(decoded) == encode_project(fresh)
    broken.write_text(broken.read_text()[:-40])  # findings with lines and files
    fresh = load_project(tree)
    assert fresh.all_findings()
    decoded = decode_project(json.loads(json.dumps(encode_project(fresh))), tree)
    assert decoded == fresh and decoded.all_findings() == fresh.all_findings()


def test_an_unchanged_tree_is_served_from_the_cache(tree: Path, not_racy: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = load_project(tree)
    assert load_project_cached(tree) == fresh  # loads and keeps it
    _no_load(monkeypatch)
    assert load_project_cached(tree) == fresh
    assert encode_project(load_project_cached(tree)) == encode_project(fresh)


def _same_size_edit(path: Path) -> None:
    """Change one byte, keeping the size and the modification time: only ctime tells."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] = ord("X") if data[-2] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("change", ["edit_sql", "edit_json", "add_file", "remove_file",
                                    "rename_file", "add_service", "replace_dir_by_file"])
def test_any_change_loads_the_tree_again(tree: Path, not_racy: None, change: str) -> None:
    load_project_cached(tree)
    migrations = tree / "user-service/migrations"
    if change == "edit_sql":
        _same_size_edit(migrations / "000002_add_profiles.up.sql")
    elif change == "edit_json":
        _same_size_edit(migrations / "dependencies.json")
    elif change == "add_file":
        (migrations / "000009_more.up.sql").write_text("SELECT 1;\n")
    elif change == "remove_file":
        (migrations / "000002_add_profiles.down.sql").unlink()
    elif change == "rename_file":
        (migrations / "000002_add_profiles.up.sql").rename(
            migrations / "000002_add_profile.up.sql")
    elif change == "add_service":
        (tree / "audit-service/migrations").mkdir(parents=True)
        (tree / "audit-service/migrations/000001_a.up.sql").write_text("SELECT 1;\n")
    else:
        shutil.rmtree(tree / "notification-service/migrations")
        (tree / "notification-service/migrations").write_text("not a directory\n")
    fresh = load_project(tree)
    served = load_project_cached(tree)
    assert served == fresh
    assert encode_project(served) == encode_project(fresh)


def test_a_file_modified_within_the_racy_window_is_never_cached(tree: Path) -> None:
    # a tree just written: a change in the same timestamp tick would keep its stat
    before = _cache_files()
    load_project_cached(tree)
    assert _cache_files() == before


def test_a_tree_with_a_symbolic_link_is_never_cached(tree: Path, not_racy: None) -> None:
    migrations = tree / "user-service/migrations"
    target = migrations / "000002_add_profiles.up.sql"
    shared = tree.parent / "shared.sql"
    shutil.move(target, shared)
    target.symlink_to(shared)
    before = _cache_files()
    assert load_project_cached(tree) == load_project(tree)
    assert _cache_files() == before


def test_a_malformed_cache_file_only_means_loading(tree: Path, not_racy: None) -> None:
    load_project_cached(tree)
    written = [p for p in _cache_files() if json.loads(p.read_text())["root"] == str(tree)]
    assert len(written) == 1
    for content in ("{not json", "[]", json.dumps({**json.loads(written[0].read_text()),
                                                  "project": {"services": [{"x": 1}]}})):
        written[0].write_text(content)
        assert load_project_cached(tree) == load_project(tree)


def test_kept_checksums_are_served_only_while_the_stat_is_unchanged(
        tree: Path, not_racy: None) -> None:
    up = tree / "user-service/migrations/000002_add_profiles.up.sql"
    load_project_cached(tree)
    import hashlib

    assert known_checksum(up) == hashlib.sha256(up.read_bytes()).hexdigest()
    _same_size_edit(up)
    assert known_checksum(up) is None
