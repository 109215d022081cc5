"""``--migorch-html PATH``: the HTML report of a pytest session, written once at its end.

Registered by :func:`pytest_migorch.pytest_plugin.session.activate` only when the option is
given. Like the Code Quality and SARIF reports (:mod:`~pytest_migorch.pytest_plugin.ci_hooks`)
it learns each generated test's outcome from its test report, the one channel that also works
under pytest-xdist: the items run in the workers, which put the item's service, migration and
environment on the report (``migorch_item``, plain JSON); only the controller sees every
report, so the writer is registered there alone and writes the page once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_migorch.errors import MigorchError
from pytest_migorch.pytest_plugin.collectors import MigorchItem
from pytest_migorch.pytest_plugin.keys import ANALYSIS_CACHE_KEY, SETTINGS_KEY
from pytest_migorch.reports.html import TestOutcome

__all__ = ["HtmlWriter", "ITEM_ATTRIBUTE", "page_paths"]

PLUGIN_NAME = "migorch-html-hooks"
WRITER_NAME = "migorch-html-writer"
#: The report attribute naming the generated item's service, migration and environment.
ITEM_ATTRIBUTE = "migorch_item"
#: Worse outcomes replace better ones when an item reports several phases.
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    report = yield
    if isinstance(item, MigorchItem):
        service = getattr(item, "service", None)
        migration = getattr(item, "migration", None)
        setattr(report, ITEM_ATTRIBUTE, {
            "root": str(item.result.project.root),
            "service": getattr(service, "name", None),
            "migration": getattr(migration, "id", None),
            "environment": getattr(item, "environment", None),
        })
    return report


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its reports reach the controller, which writes the page
    config.pluginmanager.register(HtmlWriter(config), WRITER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    writer = config.pluginmanager.get_plugin(WRITER_NAME)
    if writer is not None:
        config.pluginmanager.unregister(writer, WRITER_NAME)


def page_paths(path: Path, roots: tuple[Path, ...]) -> list[tuple[Path, Path]]:
    """One page per services root: the first at ``path``, any other next to it, named after
    its root (``report.html``, ``report-other-services.html``)."""
    out = [(roots[0], path)] if roots else []
    for index, root in enumerate(roots[1:], start=2):
        out.append((root, path.with_name(f"{path.stem}-{root.name or index}{path.suffix}")))
    return out


class HtmlWriter:
    """Collects every generated test's outcome and writes the page at the end of the session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: dict[str, TestOutcome] = {}
        #: The services root of each outcome's item, so each page shows only its own tests.
        self.roots: dict[str, str] = {}
        self.written: list[Path] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        where = getattr(report, ITEM_ATTRIBUTE, None)
        if not isinstance(where, dict):
            return
        if report.when != "call" and report.passed:
            return
        outcome = report.outcome if report.when == "call" or report.skipped else "error"
        previous = self.outcomes.get(report.nodeid)
        if previous is not None and _RANK[previous.outcome] >= _RANK[outcome]:
            return
        self.outcomes[report.nodeid] = TestOutcome(
            nodeid=report.nodeid, outcome=outcome, service=where.get("service"),
            migration=where.get("migration"), environment=where.get("environment"),
            text=report.longreprtext if not report.passed else "",
            duration=float(getattr(report, "duration", 0.0) or 0.0))
        self.roots[report.nodeid] = str(where.get("root"))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        settings = self.config.stash.get(SETTINGS_KEY, None)
        if settings is None or settings.html_path is None:
            return
        for root, path in page_paths(settings.html_path, settings.roots):
            try:
                self._write(root, path, strict=settings.strict)
            except (MigorchError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                self._line(f"migorch: cannot write the HTML report to {path}: {reason}")
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
                continue
            self.written.append(path)

    def _write(self, root: Path, path: Path, *, strict: bool) -> None:
        from pytest_migorch.project.validation import load_project
        from pytest_migorch.reports.html import build_report, write_report

        project = load_project(root)
        mine = [o for o in self.outcomes.values()
                if self.roots.get(o.nodeid) == str(project.root)]
        report = build_report(project, strict=strict, outcomes=mine,
                              cache=self.config.stash.get(ANALYSIS_CACHE_KEY, None))
        write_report(report, path)

    def _line(self, text: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(text, red=True)
        else:
            print(text, flush=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for path in self.written:
            terminalreporter.write_sep("-", f"generated migorch HTML report: {path}")
