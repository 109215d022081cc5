"""``--migorch-changed-only``: round-trips for the changed services and their dependents, and
per-migration checks only where a migration can have changed (issue 14's CI scenario)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import pair, service_files, write_service

# Imported once here: pytester restores sys.modules after each in-process run.
import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401


def git(base: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(base), "-c", "user.name=t", "-c", "user.email=t@x", *args],
                   check=True, capture_output=True)


def service(ids: list[str], prefix: str, depends: dict[str, list[str]] | None = None) -> dict:
    depends = depends or {}
    files = service_files({mid: {"affects_tables": [f"{prefix}{mid[:6]}"],
                                 "depends_on": depends.get(mid, [])} for mid in ids})
    for mid in ids:
        table = f"{prefix}{mid[:6]}"
        files.update(pair(mid, up=f"CREATE TABLE {table} (id int);\n",
                          down=f"DROP TABLE {table};\n"))
    return files


@pytest.fixture
def released(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Released services a, b (whose 000002 needs a's 000001) and c; then a new migration in a."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))
    root = pytester.path / "services"
    write_service(root, "a", service(["000001_x", "000002_y"], "a"))
    write_service(root, "b", service(["000001_x", "000002_y"], "b",
                                     {"000002_y": ["a:000001"]}))
    write_service(root, "c", service(["000001_x", "000002_y"], "c"))
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "release")
    write_service(root, "a", service(["000001_x", "000002_y", "000003_z"], "a"))
    return root


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--migorch", "services", "--collect-only", "-q",
                                "-p", "no:cacheprovider", "--migorch-base", "HEAD", *args)
    assert result.ret == 0, result.stdout.str()
    return [line for line in result.outlines if "::" in line and " " not in line]


def kinds(items: list[str], service: str) -> set[str]:
    return {i.split("::")[1].split("[")[0] for i in items if i.startswith(f"services/{service}::")}


def test_round_trips_for_changed_services_and_dependents(
        released: Path, pytester: pytest.Pytester) -> None:
    items = collected(pytester, "--migorch-changed-only")
    service_level = {"config", "files", "graph", "integrity"}
    assert kinds(items, "a") == service_level | {"sql", "risk", "roundtrip"}
    # b's migrations are all released: nothing of their sql or risk items could be shown.
    assert kinds(items, "b") == service_level | {"roundtrip"}
    assert kinds(items, "c") == service_level
    assert len([i for i in items if i.startswith("services/a::sql[")]) == 3


def test_all_findings_keeps_every_static_item(released: Path, pytester: pytest.Pytester) -> None:
    items = collected(pytester, "--migorch-changed-only", "--migorch-all-findings")
    assert kinds(items, "c") == {"config", "files", "graph", "integrity", "sql", "risk"}
    assert "roundtrip" not in kinds(items, "c")
    assert len(collected(pytester)) == len(items) + 2  # without changed-only: c's round-trip


def test_an_edited_released_migration_is_still_an_error(
        released: Path, pytester: pytest.Pytester) -> None:
    (released / "c" / "migrations" / "000001_x.up.sql").write_text(
        "CREATE TABLE c000001 (id bigint);\n")
    result = pytester.runpytest("--migorch", "services", "-p", "no:cacheprovider",
                                "--migorch-base", "HEAD", "--migorch-changed-only",
                                "--migorch-no-db", "-k", "integrity")
    result.assert_outcomes(passed=2, failed=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["*services/c/migrations/000001_x.up.sql:1: error INT*"])
