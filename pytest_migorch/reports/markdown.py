"""A short Markdown report of a change, for one pull request (merge request) comment.

Reviewers read the plan of each new or changed migration (risk and the rules that raised it,
tables, estimate, whether it runs in a transaction) and its findings with ``file:line``; the
history is one counted line. The first line is an HTML comment (:data:`MARKER`) by which the CI
templates find their earlier comment and update it instead of adding one per push.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from pytest_migorch.checks.migration import PlanEntry, check_migration, plan_entry
from pytest_migorch.findings import Finding, sort_findings
from pytest_migorch.model import Migration, Project
from pytest_migorch.reports.selection import MigrationKey
from pytest_migorch.sql.analysis import AnalysisCache

__all__ = ["MARKER", "ChangedMigration", "changed_migrations", "render_markdown"]

#: Identifies the report's comment on a pull request (the templates search for it).
MARKER = "<!-- pytest-migorch report -->"
#: A comment is read, not scrolled: more findings than this are counted instead.
FINDINGS_SHOWN = 50


@dataclass(frozen=True)
class ChangedMigration:
    """A migration of the change and its plan line."""

    migration: Migration
    plan: PlanEntry


def changed_migrations(project: Project, keys: Iterable[MigrationKey],
                       cache: AnalysisCache | None = None) -> list[ChangedMigration]:
    """The plan entries of the migrations named by ``keys`` that exist (in file order)."""
    wanted = set(keys)
    found: list[ChangedMigration] = []
    for name, service in sorted(project.services.items()):
        for _, migration in sorted(service.migrations.items()):
            if (name, migration.id) in wanted and migration.up is not None:
                report = check_migration(migration, service.schema, cache)
                found.append(ChangedMigration(migration, plan_entry(migration, report)))
    return found


def _cell(text: str) -> str:
    """Table cell text: HTML-escaped, pipes and newlines kept from breaking the row."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _risk(plan: PlanEntry) -> str:
    declared = f"declared {plan.risk_declared.value}" if plan.risk_declared else "not declared"
    text = f"**{plan.risk_effective.value}** ({declared})"
    return text + ", unknown: treated as high" if plan.risk_unknown else text


def _plan_row(changed: ChangedMigration) -> str:
    plan = changed.plan
    rules = ", ".join(f"{code} {name} (line {line})" for code, name, line in plan.rules_fired)
    cells = [
        f"`{changed.migration.qualified_id}`", _risk(plan), _cell(rules or "-"),
        _cell(", ".join(plan.tables) or "-"), _cell(plan.estimated_duration or "unknown"),
        "yes" if changed.migration.transactional else "**no**",
    ]
    return "| " + " | ".join(cells) + " |"


def _finding_line(finding: Finding, relative_to: Path | None) -> str:
    icon = "❌" if finding.is_error else "⚠️"
    return (f"- {icon} **{finding.severity.value}** `{finding.code}` {finding.name} at "
            f"`{finding.location(relative_to)}`: {_cell(finding.message)}")


def render_markdown(changed: Sequence[ChangedMigration], findings: Iterable[Finding], *,
                    history: Sequence[str] = (), relative_to: Path | None = None) -> str:
    """The report: the plan table, the findings shown, then ``history`` lines (the counts of
    findings not shown, stale baseline entries)."""
    shown = sort_findings(findings)
    errors = sum(f.is_error for f in shown)
    verdict = "✅ no findings" if not shown else (
        f"{'❌' if errors else '⚠️'} {errors} error(s), {len(shown) - errors} warning(s)")
    out = [MARKER, "## pytest-migorch", "",
           f"{len(changed)} new or changed migration(s): {verdict}", ""]
    if changed:
        out += ["| Migration | Risk | Rules | Tables | Estimate | Transactional |",
                "| --- | --- | --- | --- | --- | --- |"]
        out += [_plan_row(c) for c in changed]
        out.append("")
    out += _finding_sections(changed, shown[:FINDINGS_SHOWN], relative_to)
    if len(shown) > FINDINGS_SHOWN:
        out += [f"… and {len(shown) - FINDINGS_SHOWN} more finding(s): see the job log.", ""]
    out += [f"_{_cell(line)}_" for line in history]
    return "\n".join(out).rstrip() + "\n"


def _finding_sections(changed: Sequence[ChangedMigration], shown: Sequence[Finding],
                      relative_to: Path | None) -> list[str]:
    """One section per changed migration with findings, then the findings of no such one."""
    out: list[str] = []
    rest = list(shown)
    for item in changed:
        key = (item.migration.service, item.migration.id)
        own = [f for f in rest if (f.service, f.migration) == key]
        if own:
            out += [f"### `{item.migration.qualified_id}`", ""]
            out += [_finding_line(f, relative_to) for f in own] + [""]
            rest = [f for f in rest if f not in own]
    if rest:
        out += ["### Other findings" if out else "### Findings", ""]
        out += [_finding_line(f, relative_to) for f in rest] + [""]
    return out
