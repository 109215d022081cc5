"""The static pipeline: discover files, load configuration, resolve the graph, analyse the SQL.

Both front ends call this module: ``migorch validate`` prints the findings, the pytest plugin turns
them into one item per service, check and migration. Nothing here needs a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from pytest_migorch.findings import Finding, sort_findings
from pytest_migorch.model import Migration, Project, Service
from pytest_migorch.project.config import load_service_config
from pytest_migorch.project.discovery import discover_project
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.sources import DISK, FileSource, ListedDisk

__all__ = [
    "load_project", "load_project_in_steps", "validate_project", "ValidationResult",
    "MigrationAnalyser", "ProjectCheck",
]

#: Analyses one migration's SQL and returns its findings (see
#: :mod:`pytest_migorch.checks.migration`).
MigrationAnalyser = Callable[[Service, Migration], list[Finding]]

#: A whole-project check from a higher layer, e.g. released-migration integrity against
#: ``--base`` (:func:`pytest_migorch.vcs.integrity.check_against_base`). Passed in, so this
#: layer needs neither git nor the SQL analyser, and both front ends get the same findings.
ProjectCheck = Callable[[Project], list[Finding]]


@dataclass
class ValidationResult:
    """All findings of a project, and the graph that later stages reuse."""

    project: Project
    graph: ProjectGraph
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_error]

    def for_service(self, service: str) -> list[Finding]:
        return [f for f in self.findings if f.service == service]


def load_project(root: Path, source: FileSource = DISK) -> Project:
    """Discover every service under ``root`` and attach its configuration.

    ``source`` reads the tree (default: the file system, through a :class:`ListedDisk` for
    this load; integrity passes a git revision's).
    """
    project, configure = load_project_in_steps(root, source)
    configure()
    return project


def load_project_in_steps(root: Path, source: FileSource = DISK
                          ) -> tuple[Project, Callable[[], None]]:
    """:func:`load_project` in two steps: the services and their files are discovered now, their
    configuration (dependencies.json, environments.json) is attached when the returned function
    is called. The files to analyse are known after the first step, so ``migorch validate``
    starts its analysis workers in between and they work while the JSON files are read."""
    if source is DISK:
        source = ListedDisk()
    project = discover_project(Path(root), source)
    chosen = source

    def configure() -> None:
        for service in project.services.values():
            load_service_config(service, chosen)

    return project, configure


def validate_project(
    project: Project,
    *,
    analyser: MigrationAnalyser | None = None,
    strict: bool = False,
    services: list[str] | None = None,
    checks: Sequence[ProjectCheck] = (),
    graph: ProjectGraph | None = None,
) -> ValidationResult:
    """Every static finding of ``project`` (limited to ``services`` when given).

    The one validate pipeline: ``migorch validate`` and the pytest plugin both call it.
    ``analyser`` adds the SQL findings of each migration; without it only files, configuration
    and graph are checked. ``checks`` add whole-project findings (integrity against a base
    revision); they are filtered and escalated like the rest. ``strict`` turns warnings into
    errors, including the warnings about missing JSON files. ``graph``: the project's graph
    when the caller has one already (the runner orders with it next), else a new one.
    """
    graph = graph if graph is not None and graph.project is project else ProjectGraph(project)
    findings = project.all_findings() + graph.check()
    for check in checks:
        findings.extend(check(project))
    if analyser is not None:
        for service in project.services.values():
            if services is not None and service.name not in services:
                continue
            for migration in service.migrations.values():
                if migration.up is not None:
                    findings.extend(analyser(service, migration))
    if services is not None:
        wanted = set(services)
        findings = [f for f in findings if f.service is None or f.service in wanted
                    or wanted.intersection(f.services)]
    if strict:
        findings = [f.escalated() for f in findings]
    return ValidationResult(project=project, graph=graph, findings=sort_findings(findings))

