"""``migorch report --html`` and ``--migorch-html``: what the one-file web report shows.

This module gathers the facts (no HTML here): per service and environment the migrations in
resolved order with what the runner's plan says of them (:func:`~pytest_migorch.checks.migration.
check_migration` and :func:`~pytest_migorch.checks.migration.plan_entry`), the static findings of
the one validate pipeline (:func:`~pytest_migorch.project.validation.validate_project` with the
SQL analyser, so the page and ``migorch validate`` never disagree), the dependency graph, and,
when given, the live state of a database and the outcomes of a pytest session. Both front ends
fill the same :class:`HtmlReport`; :mod:`pytest_migorch.reports.html_render` turns it into the
page, so the page looks the same whichever front end wrote it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from pytest_migorch.checks.migration import PlanEntry, check_migration, plan_entry
from pytest_migorch.errors import MigorchError
from pytest_migorch.findings import Finding
from pytest_migorch.model import Migration, Project
from pytest_migorch.project.graph import Key, ProjectGraph
from pytest_migorch.project.validation import MigrationAnalyser, ProjectCheck, validate_project
from pytest_migorch.sql.analysis import AnalysisCache

__all__ = ["HtmlReport", "MigrationView", "EnvironmentView", "ServiceView", "LiveState",
           "TestOutcome", "build_report", "attach_live", "write_report"]


@dataclass(frozen=True)
class TestOutcome:
    """One generated pytest item's result (``failed`` ones carry the failure text, which for a
    round-trip is the readable schema diff)."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    nodeid: str
    outcome: str
    service: str | None = None
    migration: str | None = None
    environment: str | None = None
    text: str = ""
    duration: float = 0.0


@dataclass(frozen=True)
class LiveState:
    """What the database says of one service (``status --json`` shape and ``list`` rows)."""

    status: dict[str, Any]
    rows: list[dict[str, Any]]


@dataclass
class MigrationView:
    """One migration with its plan line and its findings."""

    migration: Migration
    entry: PlanEntry
    findings: list[Finding] = field(default_factory=list)
    outcomes: list[TestOutcome] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)

    @property
    def risk_tokens(self) -> str:
        """The risk filter's words for this migration: its level, and ``unknown`` when the
        analysis could not see into a statement."""
        return self.entry.risk_effective.value + (" unknown" if self.entry.risk_unknown else "")


@dataclass
class EnvironmentView:
    name: str
    #: Versions of the service in resolved run order.
    order: list[int]
    #: Why the order could not be resolved (then ``order`` is by version).
    problem: str | None = None


@dataclass
class ServiceView:
    name: str
    migrations: dict[int, MigrationView]
    environments: list[EnvironmentView]
    findings: list[Finding] = field(default_factory=list)
    #: The database's view of the service in the report's live environment.
    live: LiveState | None = None


@dataclass
class HtmlReport:
    """Everything one page shows."""

    title: str
    root: Path
    services: list[ServiceView]
    nodes: list[Key]
    edges: list[tuple[Key, Key]]
    project_findings: list[Finding] = field(default_factory=list)
    live_environment: str | None = None
    live_error: str | None = None
    outcomes: list[TestOutcome] | None = None
    generated_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc)
                              .strftime("%Y-%m-%d %H:%M UTC"))

    def view(self, key: Key) -> MigrationView | None:
        for service in self.services:
            if service.name == key[0]:
                return service.migrations.get(key[1])
        return None


def _environment_views(graph: ProjectGraph, project: Project, name: str) -> list[EnvironmentView]:
    service = project.services[name]
    views = []
    for env in service.environment_names():
        try:
            order = [m.version for m in graph.order(name, env)]
            problem = None
        except MigorchError as exc:
            order = [m.version for m in service.migrations_for(env) if m.up is not None]
            problem = str(exc)
        views.append(EnvironmentView(name=env, order=order, problem=problem))
    return views


def _service_view(project: Project, graph: ProjectGraph, name: str, findings: list[Finding],
                  cache: AnalysisCache | None) -> ServiceView:
    service = project.services[name]
    envs = _environment_views(graph, project, name)
    views: dict[int, MigrationView] = {}
    for version, migration in sorted(service.migrations.items()):
        if migration.up is None:
            continue
        report = check_migration(migration, service.schema, cache)
        views[version] = MigrationView(
            migration=migration, entry=plan_entry(migration, report),
            findings=[f for f in findings if f.migration == migration.id],
            environments=[e.name for e in envs if version in e.order])
    return ServiceView(name=name, migrations=views, environments=envs,
                       findings=[f for f in findings if f.migration is None
                                 or not any(v.migration.id == f.migration
                                            for v in views.values())])


def _graph(project: Project, services: Sequence[str]) -> tuple[list[Key], list[tuple[Key, Key]]]:
    """Every migration of ``services`` and the dependencies between any two drawn ones, plus
    the migrations of other services they depend on or that depend on them."""
    wanted = set(services)
    members = {m.key: m for svc in project.services.values()
               for m in svc.migrations.values() if m.up is not None}
    shown = {key for key in members if key[0] in wanted}
    edges = set()
    for key, migration in members.items():
        for dep in migration.depends_on:
            if dep.key() in members and (key[0] in wanted or dep.service in wanted):
                edges.add((dep.key(), key))
                shown.update((key, dep.key()))
    return sorted(shown, key=lambda k: (k[0] not in wanted, k[0], k[1])), sorted(edges)


def build_report(
    project: Project,
    *,
    services: Sequence[str] | None = None,
    cache: AnalysisCache | None = None,
    analyser: MigrationAnalyser | None = None,
    strict: bool = False,
    checks: Sequence[ProjectCheck] = (),
    outcomes: Sequence[TestOutcome] | None = None,
) -> HtmlReport:
    """The static part of the page: ``migorch validate``'s findings and the runner's plan
    lines of every migration of ``services`` (default: all), in each of their environments."""
    from pytest_migorch.checks.migration import migration_analyser

    cache = cache if cache is not None else AnalysisCache()  # each file analysed once
    names = sorted(services) if services is not None else sorted(project.services)
    result = validate_project(project, strict=strict, services=names, checks=checks,
                              analyser=analyser or migration_analyser(cache))
    graph = result.graph
    views = [_service_view(project, graph, name, result.for_service(name), cache)
             for name in names]
    nodes, edges = _graph(project, names)
    report = HtmlReport(
        title="all services" if set(names) == set(project.services) else ", ".join(names),
        root=project.root, services=views, nodes=nodes, edges=edges,
        project_findings=[f for f in result.findings if f.service not in names],
        outcomes=list(outcomes) if outcomes is not None else None)
    if outcomes is not None:
        _attach_outcomes(report, outcomes)
    return report


def _attach_outcomes(report: HtmlReport, outcomes: Sequence[TestOutcome]) -> None:
    by_id = {(s.name, v.migration.id): v for s in report.services for v in s.migrations.values()}
    for outcome in outcomes:
        view = by_id.get((outcome.service or "", outcome.migration or ""))
        if view is not None:
            view.outcomes.append(outcome)


def attach_live(report: HtmlReport, environment: str, live: Sequence[LiveState]) -> None:
    """Add the database's view (``Runner.status``) of ``environment`` to the page."""
    report.live_environment = environment
    by_service = {state.status.get("service"): state for state in live}
    for service in report.services:
        service.live = by_service.get(service.name)


def write_report(report: HtmlReport, path: Path) -> None:
    """Render ``report`` and write it to ``path`` (its directory is created)."""
    from pytest_migorch.reports.html_render import render_page

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(report), encoding="utf-8")
