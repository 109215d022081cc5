"""The generated items (pytest_plugin/collectors.py), inspected in process through pytester.

Names and node ids say which service and migration a test checks; every item carries the
``migorch`` marker; ``reportinfo`` names the file a finding is about; a failure shows the
finding, never a Python traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import service_files, write_service

import pytest_migorch.pytest_plugin.plugin  # noqa: F401  (kept loaded across pytester runs)
from pytest_migorch.pytest_plugin.collectors import (
    MigorchItem,
    MigrationCheckItem,
    ServiceCheckItem,
)

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestExperimentalApiWarning")

NO_DB = "--migorch-no-db"


def items(pytester: pytest.Pytester) -> list[pytest.Item]:
    found, _ = pytester.inline_genitems("--migorch", "services", NO_DB, "-p", "no:python")
    return found


def test_one_service_generates_service_and_migration_items(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "services", "solo", service_files(["000001_a", "000002_b"]))
    found = items(pytester)
    assert [i.nodeid for i in found] == [
        "services/solo::config", "services/solo::files", "services/solo::graph",
        "services/solo::sql[000001_a]", "services/solo::risk[000001_a]",
        "services/solo::sql[000002_b]", "services/solo::risk[000002_b]"]
    assert [type(i).__name__ for i in found[:4]] == [
        "ServiceCheckItem", "ServiceCheckItem", "ServiceCheckItem", "MigrationCheckItem"]
    assert all(isinstance(i, MigorchItem) for i in found)
    assert all(i.get_closest_marker("migorch") is not None for i in found)
    assert not any(i.get_closest_marker("migorch_db") for i in found)  # --migorch-no-db


def test_reportinfo_names_the_file_checked(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "services", "solo", service_files(["000001_a"]))
    found = {i.name: i for i in items(pytester)}
    service_item = found["graph"]
    assert isinstance(service_item, ServiceCheckItem)
    path, line, label = service_item.reportinfo()
    assert (line, label) == (None, "migorch graph of solo")
    migration_item = found["sql[000001_a]"]
    assert isinstance(migration_item, MigrationCheckItem)
    path, line, label = migration_item.reportinfo()
    assert Path(path) == pytester.path / "services/solo/migrations/000001_a.up.sql"
    assert (line, label) == (0, "migorch sql of solo:000001_a")


def test_failure_shows_the_finding_and_no_traceback(pytester: pytest.Pytester) -> None:
    files = service_files(["000001_a"])
    files["000001_a.up.sql"] = "CREATE TABLE t (id int;\n"
    write_service(pytester.path / "services", "solo", files)
    result = pytester.runpytest("--migorch", "services", NO_DB, "-p", "no:python", "-q",
                                "-k", "sql")
    result.assert_outcomes(failed=1, deselected=4)
    text = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*_ migorch sql of solo:000001_a _*",
        "services/solo/migrations/000001_a.up.sql:1: error SQL007 PostgreSQL rejects it: "
        'syntax error at or near ";"*',
        "    hint: Fix the statement as the message says; the migration fails as written.",
    ])
    for marker in ("Traceback", "MigorchCheckFailed", "def runtest"):
        assert marker not in text


def test_a_cross_service_cycle_fails_one_graph_item(pytester: pytest.Pytester) -> None:
    """Counted once: the graph item of the cycle's first service fails, the other passes."""
    root = pytester.path / "services"
    write_service(root, "alpha", service_files({"000001_a": {"depends_on": ["beta:1"]}}))
    write_service(root, "beta", service_files({"000001_b": {"depends_on": ["alpha:1"]}}))
    result = pytester.runpytest("--migorch", "services", NO_DB, "-p", "no:python", "-q",
                                "-k", "graph")
    result.assert_outcomes(failed=1, passed=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines([
        "*_ migorch graph of alpha _*",
        "*error GRF001 Dependency cycle detected: alpha:000001 -> beta:000001 -> "
        "alpha:000001 (each depends on the next)",
    ])
