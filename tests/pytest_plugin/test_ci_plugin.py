"""The CI outputs end to end, through ``pytester``: a defective services tree, run as CI runs it.

Every run passes ``--migorch-no-db`` (these are the static findings) and starts from an
environment without any CI variables, so the suite behaves the same on a laptop, in GitLab and
inside GitHub Actions (where the outer job's own variables would otherwise leak in).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from report_formats import validate_codequality, validate_sarif

# Imported once here: pytester restores sys.modules after each in-process run.
import pytest_migorch.pytest_plugin.ci_hooks  # noqa: F401
import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401

USERS = "services/user-service/migrations"
ORDERS = "services/order-service/migrations"
CI_VARIABLES = ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "GITHUB_STEP_SUMMARY", "CI_PROJECT_DIR",
                "MIGORCH_TEST_DATABASE_URL")

DEPENDENCIES = """\
{
  "migrations": {
    "000001": {
      "description": "Create users",
      "depends_on": [],
      "affects_tables": ["users"],
      "risk_level": "low",
      "estimated_duration": "1s"
    },
    "000002": {
      "description": "Add profiles",
      "depends_on": [
        "000009"
      ],
      "affects_tables": ["profiles"],
      "risk_level": "low",
      "estimated_duration": "1s"
    }
  }
}
"""
ENVIRONMENTS = '{"environments": {"production": {"migrations": []}}}\n'


def _write(base: Path, relative: str, text: str) -> None:
    path = base / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Paths are relative to the git work tree when there is one: never find one above the
    # test's own directories (a temporary directory inside some checkout).
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))


@pytest.fixture
def defective(pytester: pytest.Pytester) -> pytest.Pytester:
    """user-service: an unknown dependency (dependencies.json line 13), a misnamed file and no
    environments.json (a warning); order-service is clean."""
    base = pytester.path
    _write(base, f"{USERS}/000001_create_users.up.sql", "CREATE TABLE users (id int);\n")
    _write(base, f"{USERS}/000001_create_users.down.sql", "DROP TABLE users;\n")
    _write(base, f"{USERS}/000002_add_profiles.up.sql", "CREATE TABLE profiles (id int);\n")
    _write(base, f"{USERS}/000002_add_profiles.down.sql", "DROP TABLE profiles;\n")
    _write(base, f"{USERS}/create_sessions.sql", "CREATE TABLE sessions (id int);\n")
    _write(base, f"{USERS}/dependencies.json", DEPENDENCIES)
    _write(base, f"{ORDERS}/000001_create_orders.up.sql", "CREATE TABLE orders (id int);\n")
    _write(base, f"{ORDERS}/000001_create_orders.down.sql", "DROP TABLE orders;\n")
    _write(base, f"{ORDERS}/environments.json", ENVIRONMENTS)
    _write(base, f"{ORDERS}/dependencies.json", json.dumps({"migrations": {"000001": {
        "description": "Create orders", "depends_on": [], "affects_tables": ["orders"],
        "risk_level": "low", "estimated_duration": "1s"}}}))
    return pytester


def _run(pytester: pytest.Pytester, *args: str, in_subprocess: bool = False) -> pytest.RunResult:
    argv = ("services", "--migorch", "services", "--migorch-no-db", "-p", "no:cacheprovider",
            *args)
    if in_subprocess:
        return pytester.runpytest_subprocess(*argv)
    return pytester.runpytest(*argv)


def _annotations(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith(("::error", "::warning"))]


def _dependency_line() -> int:
    return next(number for number, line in enumerate(DEPENDENCIES.splitlines(), 1)
                if '"000009"' in line)


EXPECTED_ERROR = (
    f"::error file={USERS}/dependencies.json,line={_dependency_line()},"
    "title=GRF002 unknown-dependency::000002_add_profiles depends on 000009"
)


def _unknown_dependency(annotations: list[str]) -> str:
    return next(line for line in annotations if "GRF002" in line)


def test_github_annotations_point_at_files_and_lines(
    defective: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = defective.path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(defective.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = _run(defective)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    annotations = _annotations(result)
    assert _unknown_dependency(annotations).startswith(EXPECTED_ERROR), annotations
    assert "%0Ahint: " in _unknown_dependency(annotations)
    assert any(line.startswith(
        f"::error file={USERS}/create_sessions.sql,title=FIL002 bad-file-name::") for line in
        annotations)
    assert any(line.startswith(
        f"::warning file={USERS},title=CFG006 missing-environments-json::") for line in
        annotations)
    assert len(annotations) == len(set(annotations)) == 3
    assert not any("order-service" in line for line in annotations)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n### pytest-migorch: 2 error(s), 1 warning(s)")
    assert f"{USERS}/dependencies.json:{_dependency_line()}" in text


def test_annotations_fall_back_to_the_working_directory(
    defective: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = _run(defective)
    assert _unknown_dependency(_annotations(result)).startswith(EXPECTED_ERROR)


def test_no_annotations_outside_github_actions(defective: pytest.Pytester) -> None:
    result = _run(defective)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert _annotations(result) == []


def test_no_annotations_without_migorch_roots(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert _annotations(result) == [] and not (pytester.path / "summary.md").exists()


def _reports(pytester: pytest.Pytester, *args: str,
             in_subprocess: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    result = _run(pytester, "--migorch-codequality", "reports/gl-code-quality.json",
                  "--migorch-sarif", "reports/migorch.sarif", *args, in_subprocess=in_subprocess)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    codequality = json.loads((pytester.path / "reports/gl-code-quality.json").read_text())
    sarif = json.loads((pytester.path / "reports/migorch.sarif").read_text())
    return codequality, sarif, output


def test_codequality_and_sarif_reports_validate(defective: pytest.Pytester) -> None:
    codequality, sarif, output = _reports(defective)
    assert "generated migorch Code Quality report" in output
    validate_codequality(codequality)
    validate_sarif(sarif)
    by_code = {issue["check_name"]: issue for issue in codequality}
    assert set(by_code) == {"GRF002", "FIL002", "CFG006"}
    assert by_code["GRF002"]["location"] == {"path": f"{USERS}/dependencies.json",
                                             "lines": {"begin": _dependency_line()}}
    assert by_code["GRF002"]["severity"] == "major"
    assert by_code["CFG006"]["severity"] == "minor"
    results = sarif["runs"][0]["results"]
    grf = next(r for r in results if r["ruleId"] == "GRF002")
    assert grf["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": f"{USERS}/dependencies.json", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": _dependency_line()}}


def test_reports_are_written_even_without_findings(pytester: pytest.Pytester) -> None:
    _write(pytester.path, f"{ORDERS}/000001_create_orders.up.sql", "SELECT 1;\n")
    _write(pytester.path, f"{ORDERS}/000001_create_orders.down.sql", "SELECT 1;\n")
    result = _run(pytester, "--migorch-codequality", "cq.json", "--migorch-sarif", "out.sarif",
                  "-W", "ignore")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    codequality = json.loads((pytester.path / "cq.json").read_text())
    assert {issue["check_name"] for issue in codequality} <= {"CFG005", "CFG006"}
    validate_codequality(codequality)
    validate_sarif(json.loads((pytester.path / "out.sarif").read_text()))


def test_under_xdist_the_controller_reports_once(
    defective: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under ``-n 2`` the controller writes the same reports as a serial run (which also shows
    fingerprints are stable across runs) and prints each annotation once."""
    pytest.importorskip("xdist")
    serial_codequality, serial_sarif, _ = _reports(defective)
    summary = defective.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    codequality, sarif, output = _reports(defective, "-n", "2", in_subprocess=True)
    assert codequality == serial_codequality
    assert sarif == serial_sarif
    annotations = [line for line in output.splitlines() if line.startswith("::")]
    assert len(annotations) == 3
    assert _unknown_dependency(annotations).startswith(EXPECTED_ERROR)
    assert summary.read_text(encoding="utf-8").count("### pytest-migorch") == 1


def test_edited_released_migration_is_annotated_under_migorch_base(
    defective: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's "done when": a pull request that edits a released migration is annotated on
    the edited line, and the SARIF report carries the same finding."""
    base = defective.path
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "v1"],
                 ["tag", "v1"]):
        subprocess.run(["git", "-C", str(base), *args], check=True, capture_output=True,
                       env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull,
                            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
                            "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@example.invalid"})
    _write(base, f"{ORDERS}/000001_create_orders.up.sql",
           "CREATE TABLE orders (id int);\nALTER TABLE orders ADD total int;\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(base))
    result = _run(defective, "--migorch-base", "v1", "--migorch-sarif", "out.sarif")
    assert any(line.startswith(
        f"::error file={ORDERS}/000001_create_orders.up.sql,line=2,"
        "title=INT001 edited-released-migration::") for line in _annotations(result))
    sarif = json.loads((base / "out.sarif").read_text())
    assert any(r["ruleId"] == "INT001" for r in sarif["runs"][0]["results"])
