"""Adopting pytest-migorch on a repository with history: ``migorch baseline`` and what
``migorch validate`` shows (``--base``, ``--baseline``, ``--all-findings``, ``--format``).

The selection itself lives in :mod:`pytest_migorch.reports.selection` and
:mod:`pytest_migorch.reports.baseline`; this module only turns arguments into selections and
prints what they decided. Imported when one of these commands runs, never to build the parser.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pytest_migorch.errors import UsageError
from pytest_migorch.findings import Finding
from pytest_migorch.model import Project
from pytest_migorch.reports.baseline import (
    Baseline,
    BaselineEntry,
    BaselineSelection,
    Fingerprinter,
    default_baseline_path,
    load_baseline,
    write_baseline,
)
from pytest_migorch.reports.selection import (
    ChangeSelection,
    Selection,
    Split,
    hidden_line,
    split_all,
)

__all__ = ["Shown", "select_findings", "history_lines", "cmd_baseline"]


@dataclass
class Shown:
    """What ``validate`` prints: the split, the change's migrations and stale baseline entries."""

    split: Split
    changed: set[tuple[str, str]] | None = None  # None: no git base
    stale: list[BaselineEntry] = field(default_factory=list)
    baseline: Path | None = None

    @property
    def selected(self) -> bool:
        """Whether a git base or a baseline chose what is shown."""
        return self.changed is not None or self.baseline is not None


def _baseline_path(args: argparse.Namespace, root: Path) -> Path | None:
    """``--baseline PATH`` (must exist), else ``migorch-baseline.json`` beside the root if
    present."""
    given = getattr(args, "baseline", None)
    if given is not None:
        return Path(given)
    default = default_baseline_path(root)
    return default if default.is_file() else None


def select_findings(args: argparse.Namespace, project: Project, findings: list[Finding],
                    services: list[str] | None = None) -> Shown:
    """Split ``findings`` by the git base and the baseline the arguments name.

    ``services`` are the services validated: entries of others are not stale, just not looked
    at."""
    if getattr(args, "all_findings", False):
        return Shown(Split(shown=list(findings)))
    selections: list[Selection] = []
    baseline_selection: BaselineSelection | None = None
    path = _baseline_path(args, Path(project.root))
    if path is not None:
        baseline_selection = BaselineSelection(load_baseline(path),
                                               Fingerprinter(Path(project.root)))
        selections.append(baseline_selection)
    change: ChangeSelection | None = None
    if getattr(args, "base", None):
        change = ChangeSelection.against(project, args.base)
        selections.append(change)
    split = split_all(findings, selections)
    return Shown(split=split, changed=change.changed if change is not None else None,
                 stale=[e for e in baseline_selection.stale()
                        if services is None or e.service is None or e.service in services]
                 if baseline_selection else [], baseline=path)


def history_lines(shown: Shown) -> list[str]:
    """The count of findings not shown and one line per stale baseline entry."""
    lines: list[str] = []
    if shown.split.hidden:
        what = "released" if shown.changed is not None else "baselined"
        lines.append(hidden_line(len(shown.split.hidden), len(shown.split.hidden_migrations),
                                 what=what))
    for entry in shown.stale:
        lines.append(f"stale baseline entry in {shown.baseline}: {entry.describe()} no longer "
                     "occurs (`migorch baseline --update` removes it)")
    return lines


def cmd_baseline(args: argparse.Namespace) -> int:
    """Record every current finding, or (``--update``) drop the entries that no longer occur."""
    from pytest_migorch.checks.migration import migration_analyser
    from pytest_migorch.cli.commands import _analysis_cache, root_of
    from pytest_migorch.project.validation import load_project, validate_project

    root = root_of(args)
    project = load_project(root)
    result = validate_project(project, analyser=migration_analyser(_analysis_cache(args)))
    path = Path(args.output) if args.output else default_baseline_path(root)
    if args.update:
        if not path.is_file():
            raise UsageError(f"--update: there is no baseline at {path}; run `migorch baseline` "
                             "first")
        selection = BaselineSelection(load_baseline(path), Fingerprinter(root))
        split_all(result.findings, [selection])
        stale = selection.stale()
        write_baseline(selection.without_stale())
        print(f"removed {len(stale)} stale entr{'y' if len(stale) == 1 else 'ies'} from {path}")
        for entry in stale:
            print(f"  {entry.describe()}")
        return 0
    baseline = Baseline.of(path, result.findings, relative_to=path.parent, root=root)
    write_baseline(baseline)
    print(f"recorded {len(baseline.entries)} finding(s) in {path}", file=sys.stderr)
    return 0
