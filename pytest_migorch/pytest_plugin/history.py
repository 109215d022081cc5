"""The plugin on a repository with history: show the change's findings, count the rest.

:class:`RootHistory` is built once per services root at collection (``--migorch-base``, the
baseline file, ``--migorch-all-findings``); every generated item splits its findings through it
(:meth:`MigorchItem.runtest`), so failures, warnings and every CI report (which read the shown
findings from the test reports) see the same selection. What an item held back travels on its
report (:data:`HIDDEN_ATTRIBUTE`, JSON, like the findings: it must survive pytest-xdist), and
:class:`HistoryReporter` (controller only) prints the count, names stale baseline entries and
writes the Markdown report (``--migorch-markdown``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_migorch.errors import MigorchError
from pytest_migorch.findings import Finding
from pytest_migorch.model import Project
from pytest_migorch.project.validation import load_project
from pytest_migorch.pytest_plugin.keys import ANALYSIS_CACHE_KEY, FINDINGS_ATTRIBUTE, SETTINGS_KEY
from pytest_migorch.pytest_plugin.settings import MigorchSettings
from pytest_migorch.reports.baseline import (
    BaselineEntry,
    BaselineSelection,
    Fingerprinter,
    default_baseline_path,
    load_baseline,
)
from pytest_migorch.reports.markdown import changed_migrations, render_markdown
from pytest_migorch.reports.selection import (
    ChangeSelection,
    Selection,
    Split,
    hidden_line,
    split_all,
)

__all__ = ["RootHistory", "HistoryReporter", "HIDDEN_ATTRIBUTE", "baseline_for",
           "hidden_count_line"]

#: The report attribute with what an item held back: ``[{service, migration, fingerprint}]``.
HIDDEN_ATTRIBUTE = "migorch_hidden"
REPORTER_NAME = "migorch-history-reporter"
ALL_FLAG = "--migorch-all-findings"


def baseline_for(root: Path, settings: MigorchSettings) -> Path | None:
    """The baseline a root uses: the configured one (which must exist), else
    ``migorch-baseline.json`` beside the root when present."""
    if settings.baseline_path is not None:
        return settings.baseline_path
    default = default_baseline_path(root)
    return default if default.is_file() else None


def hidden_count_line(hidden: list[dict[str, Any]], settings: MigorchSettings) -> str | None:
    """``N findings in M released migrations not shown (...)`` for what items held back."""
    if not hidden:
        return None
    migrations = {(h["service"], h["migration"]) for h in hidden if h["migration"]}
    return hidden_line(len(hidden), len(migrations),
                       what="released" if settings.base_ref else "baselined", flag=ALL_FLAG)


@dataclass
class RootHistory:
    """The selections of one services root."""

    change: ChangeSelection | None = None
    baseline: BaselineSelection | None = None

    @classmethod
    def for_project(cls, project: Project, settings: MigorchSettings) -> RootHistory:
        """Raises MigorchError for an unreadable baseline or an unusable git base."""
        if settings.all_findings:
            return cls()
        path = baseline_for(Path(project.root), settings)
        return cls(
            change=ChangeSelection.against(project, settings.base_ref)
            if settings.base_ref else None,
            baseline=BaselineSelection(load_baseline(path), Fingerprinter(Path(project.root)))
            if path is not None else None)

    @property
    def selections(self) -> list[Selection]:
        return [s for s in (self.baseline, self.change) if s is not None]

    def split(self, findings: list[Finding]) -> tuple[Split, list[dict[str, Any]]]:
        """The split, and the JSON of what it held back (with baseline fingerprints)."""
        split = split_all(findings, self.selections)
        hidden = [{"service": f.service, "migration": f.migration,
                   "fingerprint": self.baseline.fingerprint(f) if self.baseline else None}
                  for f in split.hidden]
        return split, hidden


def root_history(item: pytest.Item) -> RootHistory | None:
    """The history of the services root an item belongs to (None outside one)."""
    node: Any = item
    while node is not None:
        history = getattr(node, "history", None)
        if isinstance(history, RootHistory):
            return history
        node = node.parent
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    hidden = getattr(item, "hidden_findings", None)
    if call.when == "call" and hidden:
        setattr(report, HIDDEN_ATTRIBUTE, hidden)
    return report


@dataclass(eq=False)  # a registered plugin: pluggy keeps plugins in sets, so hashable by identity
class HistoryReporter:
    """Controller side: counts what was held back, names stale entries, writes Markdown."""

    config: pytest.Config
    hidden: list[dict[str, Any]] = field(default_factory=list)
    shown: list[Finding] = field(default_factory=list)
    deselected: int = 0
    lines: list[str] = field(default_factory=list)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.hidden.extend(getattr(report, HIDDEN_ATTRIBUTE, None) or ())
        for data in getattr(report, FINDINGS_ATTRIBUTE, None) or ():
            self.shown.append(Finding.from_json(data))

    def history_lines(self, settings: MigorchSettings) -> list[str]:
        count = hidden_count_line(self.hidden, settings)
        lines = [count] if count else []
        lines += [f"stale baseline entry in {path}: {entry.describe()} no longer occurs "
                  "(`migorch baseline --update` removes it)"
                  for path, entry in self._stale(settings)]
        return lines

    def _stale(self, settings: MigorchSettings) -> list[tuple[Path, BaselineEntry]]:
        """Baseline entries nothing matched; only for a complete run (no -k, no node ids)."""
        if settings.all_findings or self.deselected or any("::" in a for a in self.config.args):
            return []
        matched = Counter(h["fingerprint"] for h in self.hidden if h["fingerprint"])
        stale: list[tuple[Path, BaselineEntry]] = []
        for path in {p for root in settings.roots if (p := baseline_for(root, settings))}:
            try:
                entries = load_baseline(path).entries
            except MigorchError:
                continue  # reported at collection already
            for entry in entries:
                if matched[entry.fingerprint] > 0:
                    matched[entry.fingerprint] -= 1
                else:
                    stale.append((path, entry))
        return stale

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        settings = self.config.stash.get(SETTINGS_KEY, None)
        if settings is None:
            return
        self.lines = self.history_lines(settings)
        if settings.markdown_path is not None:
            self._write_markdown(session, settings, settings.markdown_path)

    def _write_markdown(self, session: pytest.Session, settings: MigorchSettings,
                        path: Path) -> None:
        changed = []
        cache = self.config.stash.get(ANALYSIS_CACHE_KEY, None)
        try:
            for root in settings.roots:
                project = load_project(root)
                if settings.base_ref:
                    keys = ChangeSelection.against(project, settings.base_ref).changed
                else:
                    keys = {(f.service or "", f.migration) for f in self.shown if f.migration}
                changed += changed_migrations(project, keys, cache)
            text = render_markdown(changed, self.shown, history=self.lines,
                                   relative_to=Path(self.config.invocation_params.dir))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (OSError, MigorchError) as exc:
            self.lines.append(f"migorch: cannot write the Markdown report to {path}: {exc}")
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        self.lines.append(f"generated migorch Markdown report: {path}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.lines:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller sees every report
        config.pluginmanager.register(HistoryReporter(config), REPORTER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin(REPORTER_NAME)
    if reporter is not None:
        config.pluginmanager.unregister(reporter, REPORTER_NAME)
