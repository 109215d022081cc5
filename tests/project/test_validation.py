"""The one validate pipeline both front ends call: project checks passed in from higher layers
are filtered by service and escalated by ``strict`` like every other finding."""

from __future__ import annotations

from pathlib import Path

from helpers import pair, write_service

from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import Project
from pytest_migorch.project.validation import load_project, validate_project

RELEASED = Rule("INT999", "test-only", Severity.WARNING, Family.INTEGRITY, "A test rule.", "None.")


def _released(project: Project) -> list[Finding]:
    return [RELEASED.finding(f"about {name}", service=name) for name in sorted(project.services)]


def test_project_checks_join_the_findings(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_service(tmp_path, name, pair("000001_x"))
    result = validate_project(load_project(tmp_path), checks=[_released])
    assert [(f.service, f.severity) for f in result.findings if f.code == "INT999"] == [
        ("a", Severity.WARNING), ("b", Severity.WARNING)]


def test_project_checks_are_filtered_and_escalated(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_service(tmp_path, name, pair("000001_x"))
    result = validate_project(load_project(tmp_path), checks=[_released], services=["b"],
                              strict=True)
    assert [(f.service, f.severity) for f in result.findings if f.code == "INT999"] == [
        ("b", Severity.ERROR)]
    assert result.errors
