"""``--lf`` and ``--ff`` over the generated items, with pytest's cacheprovider enabled.

pytest 9 compares node ids structurally (path, names, the ``[...]`` params); a generated item
whose id is not what pytest parses back from its cache is never matched, so ``--lf`` rerun
everything. These runs use the pytest installed, the way a user runs it.
"""

from __future__ import annotations

import json

import pytest
from helpers import service_files, write_service

import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestExperimentalApiWarning")

CACHE = ("-p", "cacheprovider")
FAILING_CONFTEST = """
from pathlib import Path
from pytest_migorch.findings import Family, Rule, Severity

NO_B = Rule("TEAM001", "no-b", Severity.ERROR, Family.SQL, "No b.", "Rename b.")

def pytest_migorch_check_migration(migration, service, project):
    if migration.title == "b" and not Path("fixed").exists():
        return [NO_B.finding("b is not allowed here", file=migration.up.path, line=1,
                             service=service.name, migration=migration.id)]
    return []
"""


@pytest.fixture
def failing(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two services whose migration ``b`` fails its custom item; the first run records it."""
    for name in ("svc", "other"):
        write_service(pytester.path / "root", name, service_files(["000001_a", "000002_b"]))
    pytester.makeconftest(FAILING_CONFTEST)
    first = pytester.runpytest(*CACHE, "--migorch", "root", "--migorch-no-db")
    first.assert_outcomes(passed=2 * (3 + 2 * 2 + 1), failed=2)
    return pytester


def test_last_failed_reruns_only_the_failed_items(failing: pytest.Pytester) -> None:
    result = failing.runpytest(*CACHE, "--migorch", "root", "--migorch-no-db", "--lf", "-v")
    result.assert_outcomes(failed=2, deselected=2 * (3 + 2 * 2 + 1))
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures*"])
    result.stdout.fnmatch_lines(["root/other::custom?000002_b? FAILED*"])
    result.stdout.fnmatch_lines(["root/svc::custom?000002_b? FAILED*"])


def test_failed_first_runs_the_failed_items_first(failing: pytest.Pytester) -> None:
    result = failing.runpytest(*CACHE, "--migorch", "root", "--migorch-no-db", "--ff", "-v")
    result.assert_outcomes(failed=2, passed=2 * (3 + 2 * 2 + 1))
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures first*"])
    ran = [line.split(" ")[0] for line in result.stdout.lines if " PASSED" in line
           or " FAILED" in line and "::" in line and not line.startswith("FAILED")]
    assert ran[:2] == ["root/other::custom[000002_b]", "root/svc::custom[000002_b]"]


def test_fixed_items_leave_the_last_failed_set(failing: pytest.Pytester) -> None:
    (failing.path / "fixed").write_text("")
    result = failing.runpytest(*CACHE, "--migorch", "root", "--migorch-no-db", "--lf")
    result.assert_outcomes(passed=2, deselected=2 * (3 + 2 * 2 + 1))
    again = failing.runpytest(*CACHE, "--migorch", "root", "--migorch-no-db", "--lf")
    again.stdout.fnmatch_lines(["run-last-failure: no previously failed tests*"])


def test_last_failed_matches_round_trip_items(pytester: pytest.Pytester) -> None:
    """A round-trip item's id nests below ``roundtrip[env]``; it must match what the cache holds."""
    write_service(pytester.path / "root", "svc", service_files(["000001_a", "000002_b"]))
    failed_id = "root/svc::roundtrip[production]::000002_b"
    cache = pytester.path / ".pytest_cache" / "v" / "cache"
    cache.mkdir(parents=True)
    (cache / "lastfailed").write_text(json.dumps({failed_id: True}))
    result = pytester.runpytest(*CACHE, "--migorch", "root", "--lf", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["1/9 tests collected (8 deselected)*"])
    assert [line for line in result.stdout.lines if "::" in line] == [failed_id]
