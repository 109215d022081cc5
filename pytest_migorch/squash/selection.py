"""Which migrations a squash replaces, what must run before them, and what the result is named.

Pure: it reads the project and its graph, never a database, so every refusal here happens
before a server is started. The replay and the proof both follow this selection, so they cannot
disagree about what the squashed file stands for.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_migorch.errors import UsageError
from pytest_migorch.model import Migration, Project, schema_name
from pytest_migorch.project.graph import ProjectGraph

__all__ = ["BASE_ONLY", "SquashSelection", "select_squash"]

#: An environment name no service declares: its graph holds base migrations only, so a squash
#: without ``--env`` replays neither its own nor other services' environment migrations.
BASE_ONLY = "\x00migorch-squash-base-only"


@dataclass(frozen=True)
class SquashSelection:
    """The migrations of one service that one squash replaces, in run order."""

    service: str
    version: int
    #: The environment whose migrations are folded in (None: base migrations only).
    environment: str | None
    #: The graph environment the replay resolves in.
    graph_environment: str
    replaced: tuple[Migration, ...]
    #: Migrations of other services the replaced ones need, in run order.
    prerequisites: tuple[Migration, ...]

    @property
    def schema(self) -> str:
        return schema_name(self.service)

    @property
    def top(self) -> Migration:
        """The replaced migration with the highest version: it lends the squash its version."""
        return max(self.replaced, key=lambda m: m.version)

    @property
    def version_text(self) -> str:
        return self.top.version_text

    @property
    def migration_id(self) -> str:
        return f"{self.version_text}_squashed_{len(self.replaced)}"

    @property
    def up_name(self) -> str:
        return f"{self.migration_id}.up.sql"

    @property
    def down_name(self) -> str:
        return f"{self.migration_id}.down.sql"


def select_squash(
    project: Project, graph: ProjectGraph, service: str, version: int,
    environment: str | None = None,
) -> SquashSelection:
    """The squash of ``service``'s migrations up to ``version``; refuses what cannot be squashed.

    Refused: an unknown service or environment, a ``version`` that is no migration of the
    set, fewer than two migrations (nothing to gain), a replaced migration that needs a later
    one of its own service, and a prerequisite of another service that itself needs a replaced
    migration (the squashed file could not run in one piece between them)."""
    svc = project.services.get(service)
    if svc is None:
        known = ", ".join(sorted(project.services)) or "none"
        raise UsageError(f"unknown service {service!r}; services under the root: {known}")
    if environment is not None and environment not in svc.environments:
        raise UsageError(f"{service}: environment {environment!r} not found in configuration "
                         f"(declared: {', '.join(sorted(svc.environments)) or 'none'})")
    graph_env = environment if environment is not None else BASE_ONLY
    members = [m for m in svc.migrations_for(graph_env) if m.up is not None]
    replaced = [m for m in members if m.version <= version]
    if version not in {m.version for m in replaced}:
        raise UsageError(
            f"{service}: --to {version} is not a migration of "
            f"{'environment ' + repr(environment) if environment else 'the base set'}; "
            f"choose one of {', '.join(m.version_text for m in members) or 'none'}")
    if len(replaced) < 2:
        raise UsageError(f"{service}: only {len(replaced)} migration up to {version}; "
                         "a squash needs at least two")
    wanted = {m.key for m in replaced}
    needed = graph.ancestors(wanted, graph_env)
    later = sorted(k[1] for k in needed if k[0] == service and k not in wanted)
    if later:
        raise UsageError(f"{service}: migrations up to {version} depend on later version(s) "
                         f"{', '.join(map(str, later))}; squash up to the highest of them")
    order = graph.order_all(graph_env, [service])
    prerequisites = [m for m in order if m.key in needed and m.service != service]
    for prerequisite in prerequisites:
        inside = graph.ancestors([prerequisite.key], graph_env) & wanted
        if inside:
            raise UsageError(
                f"{service}: {prerequisite.qualified_id} needs "
                f"{', '.join(sorted(svc.migrations[v].qualified_id for _, v in inside))}, "
                "which the squash replaces, "
                "and is needed by another migration it replaces: the squashed file cannot run "
                "in one piece; squash up to a lower version")
    run_order = [m for m in order if m.key in wanted]
    return SquashSelection(service, version, environment, graph_env, tuple(run_order),
                           tuple(prerequisites))
