"""The pytest plugin end to end, through ``pytester``: generated items, failures that show the
finding instead of a traceback, selection, markers, JUnit XML, pytest-xdist, ini options, hooks.

Every run passes ``--migorch-no-db``: these are the static checks (issue 2); the database
round-trips have their own tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import hypothesis.internal.observability  # noqa: F401
import pytest
from helpers import BadInput, bad_inputs, line_of_item, pair, service_files, write_service

# Imported here because pytester restores sys.modules after each in-process run: without these
# imports (the plugin, the core it loads for --migorch, hypothesis' summary hook) every run would
# re-import them (~1 s each).
import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestExperimentalApiWarning")

BASIC_ITEMS = [
    "services/orders::config",
    "services/orders::files",
    "services/orders::graph",
    "services/orders::sql[000001_create_orders]",
    "services/orders::risk[000001_create_orders]",
    "services/users::config",
    "services/users::files",
    "services/users::graph",
    "services/users::sql[000001_create_users]",
    "services/users::risk[000001_create_users]",
    "services/users::sql[000002_add_email]",
    "services/users::risk[000002_add_email]",
    "services/users::sql[000003_seed]",
    "services/users::risk[000003_seed]",
]
OWN_TEST = "test_own.py::test_own_code_still_runs"
OWN_TEST_SOURCE = """
def test_own_code_still_runs():
    assert sum([1, 2]) == 3
"""

NO_DB = "--migorch-no-db"


@pytest.fixture
def basic(pytester: pytest.Pytester) -> pytest.Pytester:
    """The example project: two services and one ordinary test file of the project's own."""
    pytester.copy_example("migorch_basic")
    pytester.makepyfile(test_own=OWN_TEST_SOURCE)
    return pytester


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and " " not in line]


def assert_no_traceback(result: pytest.RunResult) -> None:
    text = result.stdout.str() + result.stderr.str()
    for marker in ("Traceback", "def runtest", "MigorchCheckFailed", "raise ", "_pytest"):
        assert marker not in text, f"{marker!r} in output:\n{text}"


def test_generated_item_names(basic: pytest.Pytester) -> None:
    result = basic.runpytest("--migorch", "services", NO_DB, "--collect-only", "-q")
    assert result.ret == 0
    assert collected(result) == BASIC_ITEMS + [OWN_TEST]


def test_generated_items_pass_beside_the_projects_own_tests(basic: pytest.Pytester) -> None:
    result = basic.runpytest("--migorch", "services", NO_DB, "-v")
    result.assert_outcomes(passed=len(BASIC_ITEMS) + 1)
    result.stdout.fnmatch_lines(["services/users::graph PASSED*", f"{OWN_TEST} PASSED*"])


def test_root_given_twice_is_collected_once(basic: pytest.Pytester) -> None:
    result = basic.runpytest("services", "--migorch", "services", "--migorch", "./services",
                             NO_DB, "--collect-only", "-q")
    assert collected(result) == BASIC_ITEMS


def test_keyword_selection(basic: pytest.Pytester) -> None:
    result = basic.runpytest("--migorch", "services", NO_DB, "-k", "users and files", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["services/users::files PASSED*"])
    result = basic.runpytest("--migorch", "services", NO_DB, "-k", "sql and 000002", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["services/users::sql?000002_add_email? PASSED*"])


def test_marker_selection(basic: pytest.Pytester) -> None:
    result = basic.runpytest("--migorch", "services", NO_DB, "-m", "migorch")
    result.assert_outcomes(passed=len(BASIC_ITEMS), deselected=1)
    result = basic.runpytest("--migorch", "services", NO_DB, "-m", "not migorch",
                             "--strict-markers")
    result.assert_outcomes(passed=1, deselected=len(BASIC_ITEMS))


def test_a_conftest_elsewhere_in_the_tree_does_not_break_the_session(
        basic: pytest.Pytester) -> None:
    """From a repository's root, its tests' conftest.py does not apply to the services root, so
    pytest computes a hook subset without it, which needs every registered plugin (our
    reporters included) to be hashable: the README's command crashed with INTERNALERROR here."""
    (basic.path / "tests").mkdir()
    (basic.path / "tests" / "conftest.py").write_text("")
    result = basic.runpytest("--migorch", "services", "-m", "migorch", "--migorch-no-db",
                             "-p", "no:cacheprovider")
    assert result.ret == 0
    assert "INTERNALERROR" not in result.stdout.str()
    assert result.parseoutcomes()["passed"] > 0


def test_ini_option_sets_the_roots(basic: pytest.Pytester) -> None:
    basic.makeini("[pytest]\nmigorch_paths = services\nmigorch_no_db = true\n")
    result = basic.runpytest("-q")
    result.assert_outcomes(passed=len(BASIC_ITEMS) + 1)


def test_ini_root_is_relative_to_the_ini_file(basic: pytest.Pytester) -> None:
    basic.makeini("[pytest]\nmigorch_paths = services\n")
    sub = basic.mkdir("sub")
    result = basic.runpytest(str(sub), NO_DB, "--collect-only", "-q")
    assert collected(result) == BASIC_ITEMS


def test_command_line_root_wins_over_the_ini(basic: pytest.Pytester) -> None:
    write_service(basic.path / "other", "solo", service_files(["000001_a"]))
    basic.makeini("[pytest]\nmigorch_paths = services\n")
    result = basic.runpytest("--migorch", "other", NO_DB, "--collect-only", "-q", "-p",
                             "no:python")
    assert collected(result) == ["other/solo::config", "other/solo::files", "other/solo::graph",
                                 "other/solo::sql[000001_a]", "other/solo::risk[000001_a]"]


def test_junitxml_reports_the_generated_items(basic: pytest.Pytester) -> None:
    write_service(basic.path / "services", "broken", {**pair("1_a"), "1_b.up.sql": "SELECT 1;"})
    report = basic.path / "report.xml"
    result = basic.runpytest("--migorch", "services", NO_DB, f"--junitxml={report}")
    result.assert_outcomes(passed=len(BASIC_ITEMS) + 1 + 4, failed=1)
    cases = ET.parse(report).getroot().iter("testcase")
    by_name = {(case.get("classname"), case.get("name")): case for case in cases}
    assert ("services.users", "sql[000001_create_users]") in by_name
    assert ("services.orders", "graph") in by_name
    failure = by_name[("services.broken", "files")].find("failure")
    assert failure is not None
    assert "error FIL005" in (failure.get("message", "") + (failure.text or ""))
    assert "services/broken/migrations/1_b.up.sql" in (failure.text or "")


def test_xdist_runs_the_generated_items(basic: pytest.Pytester) -> None:
    write_service(basic.path / "services", "broken", {**pair("1_a"), "1_b.up.sql": "SELECT 1;"})
    result = basic.runpytest_subprocess("--migorch", "services", NO_DB, "-n", "2", "-p",
                                        "xdist", "-rf")
    result.assert_outcomes(passed=len(BASIC_ITEMS) + 1 + 4, failed=1)
    result.stdout.fnmatch_lines([
        "*services/broken/migrations/1_b.up.sql: error FIL005 1_b.up.sql has the same version*",
        "*hint: Give one of them the next free version*",
        "FAILED services/broken::files*",
    ])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("case", bad_inputs(), ids=lambda case: case.id)
def test_failing_item_shows_the_finding_not_a_traceback(
    pytester: pytest.Pytester, case: BadInput
) -> None:
    write_service(pytester.path / "root", "svc", case.files)
    args = ["--migorch", "root", NO_DB, "-rf"]
    if case.severity == "warning":
        args.append("--migorch-strict")
    result = pytester.runpytest(*args)
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 1
    path = f"root/svc/migrations/{case.file}"
    location = f"{path}:{case.line}" if case.line else path
    result.stdout.fnmatch_lines([
        f"*_ migorch {case.check} of svc _*",
        f"{location}: error {case.code} *",
        "    hint: *",
        f"FAILED root/svc::{case.check}*",
    ])
    assert_no_traceback(result)


def test_a_migration_item_fails_with_its_own_finding(pytester: pytest.Pytester) -> None:
    """Findings of one migration fail that migration's items only (custom check)."""
    write_service(pytester.path / "root", "svc", service_files(["000001_a", "000002_b"]))
    pytester.makeconftest("""
from pytest_migorch.findings import Family, Rule, Severity

NO_B = Rule("TEAM001", "no-b", Severity.ERROR, Family.SQL, "No b.", "Rename b.")

def pytest_migorch_check_migration(migration, service, project):
    if migration.title == "b":
        return [NO_B.finding("b is not allowed here", file=migration.up.path, line=1,
                             service=service.name, migration=migration.id)]
    return []
""")
    result = pytester.runpytest("--migorch", "root", NO_DB, "-v", "-rf")
    result.assert_outcomes(passed=3 + 2 * 2 + 1, failed=1)
    result.stdout.fnmatch_lines([
        "root/svc::custom?000001_a? PASSED*",
        "root/svc::custom?000002_b? FAILED*",
        "root/svc/migrations/000002_b.up.sql:1: error TEAM001 b is not allowed here",
        "    hint: Rename b.",
    ])
    assert_no_traceback(result)


def test_custom_service_hook(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "root", "svc", service_files(["000001_a"]))
    pytester.makeconftest("""
from pytest_migorch.findings import Family, Rule, Severity

OWNER = Rule("TEAM002", "owner", Severity.ERROR, Family.CONFIG, "No owner.", "Add OWNERS.")

def pytest_migorch_check_service(service, project):
    return [OWNER.finding(f"{service.name} has no OWNERS file", service=service.name)]
""")
    result = pytester.runpytest("--migorch", "root", NO_DB, "-v")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["root/svc::custom FAILED*", "svc: error TEAM002 *"])


def test_strict_option_fails_on_warnings(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "root", "svc", pair("000001_a"))  # no JSON files
    result = pytester.runpytest("--migorch", "root", NO_DB)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*migorch warnings*", "*warning CFG005*"])
    result = pytester.runpytest("--migorch", "root", NO_DB, "--migorch-strict")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["root/svc/migrations: error CFG005 *",
                                 "root/svc/migrations: error CFG006 *"])


def test_strict_ini_option(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "root", "svc", pair("000001_a"))
    pytester.makeini("[pytest]\nmigorch_strict = true\nmigorch_no_db = true\n")
    pytester.runpytest("--migorch", "root").assert_outcomes(passed=4, failed=1)
    pytester.makeini("[pytest]\nmigorch_strict = false\nmigorch_no_db = true\n")
    pytester.runpytest("--migorch", "root").assert_outcomes(passed=5)


def test_root_without_services_fails_a_project_item(pytester: pytest.Pytester) -> None:
    (pytester.path / "empty").mkdir()
    result = pytester.runpytest("--migorch", "empty", NO_DB, "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["empty::project FAILED*", "empty: error FIL001 *"])


def test_missing_root_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--migorch", "nowhere", NO_DB)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere*not a directory*"])


def test_cross_service_findings_name_the_dependent_service(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "root", "users", service_files(["000001_u"]))
    files = service_files({"000001_o": {"depends_on": ["users:000009"]}})
    write_service(pytester.path / "root", "orders", files)
    line = line_of_item(str(files["dependencies.json"]), "users:000009")
    result = pytester.runpytest("--migorch", "root", NO_DB, "-v")
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines([
        "root/orders::graph FAILED*",
        f"root/orders/migrations/dependencies.json:{line}: error GRF004 000001_o depends on "
        "users:000009, but users has no migration with version 000009",
    ])


def test_warnings_summary_under_xdist(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "root", "svc", pair("000001_a"))  # no JSON files
    result = pytester.runpytest_subprocess("--migorch", "root", NO_DB, "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*migorch warnings*", "*warning CFG005*"])
