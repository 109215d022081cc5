"""CI output of the pytest plugin: GitHub annotations and job summary, Code Quality and SARIF.

Registered by :func:`pytest_migorch.pytest_plugin.session.activate` (only in sessions that use
pytest-migorch); hooks only, the formats
live in :mod:`pytest_migorch.reports.ci`. Findings arrive on test reports (``migorch_findings``, as
JSON) because that is the one channel that also works under pytest-xdist: items run in the workers,
and only the controller sees every report. So the reporter is registered on the controller alone and
writes each file once, at the end of the session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_migorch.catalogue import all_rules
from pytest_migorch.findings import Finding, Rule
from pytest_migorch.pytest_plugin.history import HIDDEN_ATTRIBUTE, hidden_count_line
from pytest_migorch.pytest_plugin.keys import FINDINGS_ATTRIBUTE, SETTINGS_KEY
from pytest_migorch.reports.ci import (
    codequality_report,
    github_annotations,
    github_step_summary,
    repository_root,
    sarif_report,
    with_fallback_locations,
)
from pytest_migorch.vcs.integrity import RULES as INTEGRITY_RULES

__all__ = ["CiReporter", "rules_for_reports"]

PLUGIN_NAME = "migorch-ci-hooks"
REPORTER_NAME = "migorch-ci-reporter"


def rules_for_reports() -> list[Rule]:
    """The catalogue, plus the integrity rules in case the catalogue does not list them."""
    rules = list(all_rules())
    known = {rule.code for rule in rules}
    return rules + [rule for rule in INTEGRITY_RULES if rule.code not in known]


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its reports reach the controller, which writes everything
    config.pluginmanager.register(CiReporter(config), REPORTER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin(REPORTER_NAME)
    if reporter is not None:
        config.pluginmanager.unregister(reporter, REPORTER_NAME)


class CiReporter:
    """Collects the findings of every generated test and writes the CI outputs at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.findings: list[Finding] = []
        self.written: list[tuple[str, Path]] = []
        self.annotations: list[str] = []
        #: What the items held back as history (--migorch-base, the baseline): counted only.
        self.hidden: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for data in getattr(report, FINDINGS_ATTRIBUTE, None) or ():
            self.findings.append(Finding.from_json(data))
        self.hidden.extend(getattr(report, HIDDEN_ATTRIBUTE, None) or ())

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        settings = self.config.stash.get(SETTINGS_KEY, None)
        if settings is None:
            return
        findings = with_fallback_locations(self.findings, settings.roots)
        invocation_dir = Path(self.config.invocation_params.dir)
        wanted = settings.codequality_path or settings.sarif_path
        root = repository_root(invocation_dir) if wanted else invocation_dir
        if settings.codequality_path is not None:
            self._write(session, "Code Quality report", settings.codequality_path,
                        codequality_report(findings, root))
        if settings.sarif_path is not None:
            self._write(session, "SARIF report", settings.sarif_path,
                        sarif_report(findings, rules_for_reports(), root=root))
        if os.environ.get("GITHUB_ACTIONS") == "true" and settings.roots:
            self._github(findings, invocation_dir, hidden_count_line(self.hidden, settings))

    def _write(self, session: pytest.Session, what: str, path: Path, document: Any) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self._line(f"migorch: cannot write the {what} to {path}: {exc.strerror}", red=True)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        self.written.append((what, path))

    def _github(self, findings: list[Finding], invocation_dir: Path,
                history: str | None = None) -> None:
        """Workflow commands for stdout (GitHub turns them into annotations on the diff) and a
        Markdown table for the job summary page."""
        workspace = Path(os.environ.get("GITHUB_WORKSPACE") or repository_root(invocation_dir))
        self.annotations = github_annotations(findings, workspace=workspace)
        if self.config.pluginmanager.get_plugin("terminalreporter") is None:
            for annotation in self.annotations:  # -p no:terminal: they must still reach stdout
                print(annotation, flush=True)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            try:
                with open(summary_file, "a", encoding="utf-8") as stream:
                    stream.write(github_step_summary(findings, workspace=workspace))
                    if history:
                        stream.write(f"\n_{history}_\n")
            except OSError as exc:
                self._line(f"migorch: cannot append to $GITHUB_STEP_SUMMARY ({summary_file}): "
                           f"{exc.strerror}", red=True)

    def _line(self, text: str, **markup: bool) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(text, **markup)
        else:
            print(text, flush=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.annotations:
            # A section of its own: a workflow command only counts at the start of a line.
            terminalreporter.section("migorch GitHub annotations", sep="-")
            for annotation in self.annotations:
                terminalreporter.line(annotation)
        for what, path in self.written:
            terminalreporter.write_sep("-", f"generated migorch {what}: {path}")
