"""A JSON file that validated with no error is not validated again while its bytes, the schema
and the code are the same (json_validity.py); a file with an error is always validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import service_files, validate, write_service

from pytest_migorch.project import json_validity


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("MIGORCH_CACHE_DIR", str(where))
    return where / "valid-json"


def _codes(root: Path) -> list[str]:
    return sorted(f.code for f in validate(root).findings)


def _deps(root: Path) -> Path:
    return root / "svc" / "migrations" / "dependencies.json"


def test_a_valid_document_is_remembered_by_its_bytes(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "tree"
    write_service(root, "svc", service_files(["000001_a"]))
    assert _codes(root) == []
    data = _deps(root).read_bytes()
    assert json_validity.known_valid("dependencies", data)
    assert not json_validity.known_valid("environments", data)  # the schema is in the key
    assert not json_validity.known_valid("dependencies", data + b" ")
    assert len(list(cache_dir.iterdir())) == 2  # dependencies.json and environments.json
    assert _codes(root) == []


def test_a_remembered_document_is_not_validated_again(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "tree"
    files = service_files(["000001_a"])
    files["dependencies.json"] = str(files["dependencies.json"]).replace(
        '"risk_level": "low"', '"risk_level": "low", "owner": "me"')
    write_service(root, "svc", files)
    assert "CFG003" in _codes(root)
    assert not json_validity.known_valid("dependencies", _deps(root).read_bytes())
    # Marked valid by hand, the same bytes are served from the memo: proof it is consulted,
    # and why only a run that found no error may write one.
    json_validity.remember_valid("dependencies", _deps(root).read_bytes())
    assert "CFG003" not in _codes(root)


def test_an_invalid_document_is_reported_every_time(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "tree"
    write_service(root, "svc", service_files(["000001_a"]))
    assert _codes(root) == []
    text = _deps(root).read_text().replace('"risk_level": "low"', '"risk_level": "extreme"')
    _deps(root).write_text(text)
    first = [f for f in validate(root).findings if f.code == "CFG002"]
    again = [f for f in validate(root).findings if f.code == "CFG002"]
    assert first and [f.message for f in again] == [f.message for f in first]
    assert "extreme" in first[0].message


def test_an_unusable_cache_directory_only_means_validating(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MIGORCH_CACHE_DIR", str(blocker))
    root = tmp_path / "tree"
    write_service(root, "svc", service_files(["000001_a"]))
    assert _codes(root) == [] and _codes(root) == []
    assert not json_validity.known_valid("dependencies", _deps(root).read_bytes())


def test_the_tool_identity_covers_every_module_and_schema_of_the_package() -> None:
    # the walk behind tool_identity (the key of every cache) skips __pycache__ and uses plain
    # strings; it must still see exactly the package's .py and .json files
    from pytest_migorch.project import result_cache

    package = result_cache._PACKAGE_DIR
    expected = {str(p.relative_to(package)) for p in package.rglob("*")
                if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    walked = [relative for relative, _ in result_cache.package_files()]
    assert set(walked) == expected and len(walked) == len(expected)
    assert "project/result_cache.py" in expected and "schemas/dependencies.schema.json" in expected
