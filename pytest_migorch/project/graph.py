"""The dependency graph of every migration, per environment, and the orders resolved from it.

Nodes are ``(service, version)`` keys; an edge ``a -> b`` means b depends on a. Each environment
has its own graph: all base migrations of every service plus the environment-only migrations that
environment lists. Orders are topological and break ties by version, so a set without declared
dependencies runs in file-name order, exactly as golang-migrate runs it. Across services, a
migration runs after everything it depends on, in whichever service that is.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Family, Finding, Rule, Severity, clip
from pytest_migorch.model import Migration, Project
from pytest_migorch.project.topo import DependencyGraph, lexicographic_order

if TYPE_CHECKING:
    from pytest_migorch.project.cycles import Knot

__all__ = ["ProjectGraph", "RULES", "Key", "CYCLE_DETECTED"]

Key = tuple[str, int]
E, W, G = Severity.ERROR, Severity.WARNING, Family.GRAPH

CYCLE = Rule(
    "GRF001", "dependency-cycle", E, G,
    "Migrations depend on each other in a cycle, so no order can satisfy them.",
    "Remove one depends_on entry of the cycle.",
)
UNKNOWN_DEPENDENCY = Rule(
    "GRF002", "unknown-dependency", E, G,
    "depends_on names a version that this service does not have.",
    "Correct the version, or add the migration it should depend on.",
)
UNKNOWN_SERVICE = Rule(
    "GRF003", "unknown-service", E, G,
    "depends_on names a service that does not exist under the same services root.",
    "Correct the service name (the directory name under the services root).",
)
UNKNOWN_CROSS_SERVICE = Rule(
    "GRF004", "unknown-cross-service-dependency", E, G,
    "depends_on names a version that the other service does not have.",
    "Correct the version of the other service's migration.",
)
BASE_ON_ENVIRONMENT = Rule(
    "GRF005", "base-depends-on-environment", E, G,
    "A base migration depends on an environment-only migration; every other environment breaks.",
    "Make the dependency a base migration, or move the dependent into that environment.",
)
NOT_IN_ENVIRONMENT = Rule(
    "GRF006", "dependency-not-in-environment", E, G,
    "An environment migration depends on a migration that its environment does not run.",
    "List the dependency in the same environment, or remove the dependency.",
)
OUT_OF_ORDER = Rule(
    "GRF007", "depends-on-later-version", W, G,
    "A migration depends on a higher version of its own service; plain golang-migrate would run "
    "them in the other order.",
    "Renumber the migrations so that dependencies have lower versions.",
)

#: The design's words, which users search for; the detail follows them.
CYCLE_DETECTED = "Dependency cycle detected"

RULES: tuple[Rule, ...] = (
    CYCLE, UNKNOWN_DEPENDENCY, UNKNOWN_SERVICE, UNKNOWN_CROSS_SERVICE, BASE_ON_ENVIRONMENT,
    NOT_IN_ENVIRONMENT, OUT_OF_ORDER,
)


class ProjectGraph:
    """Graphs and resolved orders of one project; graphs are built once per environment, and
    each order once per environment and selection (a deploy asks for every service's order
    again each time it reads that service's state)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._graphs: dict[str, DependencyGraph[Key]] = {}
        self._previous: dict[str, dict[Key, Key]] = {}
        self._orders: dict[tuple[str, frozenset[str] | None], list[Migration]] = {}
        self._full: dict[str, list[Migration] | None] = {}

    # --- building ---------------------------------------------------------------------------

    def environment_members(self, environment: str) -> dict[Key, Migration]:
        """Every migration that runs in ``environment``, in every service."""
        members: dict[Key, Migration] = {}
        for service in self.project.services.values():
            for migration in service.migrations_for(environment):
                if migration.up is not None:
                    members[migration.key] = migration
        return members

    def graph(self, environment: str) -> DependencyGraph[Key]:
        """The dependency graph of ``environment`` (edges only between its members)."""
        graph = self._graphs.get(environment)
        if graph is None:
            members = self.environment_members(environment)
            graph = DependencyGraph()
            graph.add_nodes_from(members)
            for key, migration in members.items():
                for dep in migration.depends_on:
                    if dep.key() in members:
                        graph.add_edge(dep.key(), key)
            self._graphs[environment] = graph
        return graph

    @cached_property
    def _service_rank(self) -> dict[str, int]:
        """Services ordered by their cross-service dependencies (ties by name).

        Without a cycle between services each is its own component and the order is
        :func:`lexicographic_order`'s; networkx's condensation is needed only with one."""
        services: DependencyGraph[str] = DependencyGraph()
        services.add_nodes_from(self.project.services)
        for service in self.project.services.values():
            for migration in service.migrations.values():
                for dep in migration.depends_on:
                    if dep.service != service.name and dep.service in self.project.services:
                        services.add_edge(dep.service, service.name)
        order = lexicographic_order(set(services), services.pred, services.succ, str)
        if order is not None:
            return {name: rank for rank, name in enumerate(order)}
        return _condensed_rank(services.to_networkx(), list(self.project.services))

    def _sort_key(self, key: Key) -> tuple[int, int, str]:
        service, version = key
        return (self._service_rank.get(service, 0), version, service)

    # --- checks -----------------------------------------------------------------------------

    def check(self) -> list[Finding]:
        """Every graph finding: unknown references, environment misuse, cycles."""
        findings = self._check_references()
        seen_cycles: set[frozenset[Key]] = set()
        for environment in self.project.environment_names():
            findings.extend(self._check_environment(environment))
            findings.extend(self._check_cycles(environment, seen_cycles))
        return findings

    def _check_references(self) -> list[Finding]:
        findings: list[Finding] = []
        for service in self.project.services.values():
            for migration in service.migrations.values():
                for dep in migration.depends_on:
                    finding = self._reference_finding(migration, dep.service, dep.version,
                                                      dep.text, dep.line)
                    if finding is not None:
                        findings.append(finding)
        return findings

    def _reference_finding(
        self, migration: Migration, service: str, version: int, text: str, line: int | None
    ) -> Finding | None:
        meta = migration.meta
        where: dict[str, Any] = {
            "file": meta.file if meta else None, "line": line, "service": migration.service,
            "migration": migration.id, "environment": migration.environment,
        }
        other = self.project.services.get(service)
        if other is None:
            return UNKNOWN_SERVICE.finding(
                f"{migration.id} depends on {clip(text, 60)}, but there is no service "
                f"{clip(service, 60)!r} under {self.project.root}", **where)
        target = other.migrations.get(version)
        if target is None or target.up is None:
            rule = UNKNOWN_DEPENDENCY if service == migration.service else UNKNOWN_CROSS_SERVICE
            digits = text.rpartition(":")[2]  # as written: the number may not fit in uint64
            return rule.finding(
                f"{migration.id} depends on {clip(text, 60)}, but {service} has no migration with "
                f"version {clip(digits, 60)}", **where)
        if migration.is_base and not target.is_base:
            return BASE_ON_ENVIRONMENT.finding(
                f"base migration {migration.id} depends on {target.qualified_id}, which only "
                f"runs in environment directory {target.environment}/", **where)
        if service == migration.service and version > migration.version:
            return OUT_OF_ORDER.finding(
                f"{migration.id} depends on the later version {target.id}", **where)
        return None

    def _check_environment(self, environment: str) -> list[Finding]:
        """Environment migrations whose (environment-only) dependency this environment lacks."""
        findings = []
        members = self.environment_members(environment)
        for migration in members.values():
            if migration.is_base:
                continue  # base -> environment is reported once, environment-independently
            for dep in migration.depends_on:
                target = self.project.migration(dep.service, dep.version)
                if target is None or target.up is None or dep.key() in members:
                    continue
                findings.append(NOT_IN_ENVIRONMENT.finding(
                    f"{migration.id} runs in environment {environment!r} and depends on "
                    f"{target.qualified_id}, which {environment!r} does not run",
                    file=migration.meta.file if migration.meta else None, line=dep.line,
                    service=migration.service, migration=migration.id, environment=environment,
                ))
        return findings

    def _check_cycles(self, environment: str, seen: set[frozenset[Key]]) -> list[Finding]:
        """One finding per knot of migrations that depend on each other (a strongly connected
        component), not one per service on it nor one per cycle: each is one thing to fix.
        Owned by the knot's first migration in run order; ``services`` names every service on
        it, so validating any one of them still shows it."""
        graph = self.graph(environment)
        if self._full_order(environment) is not None:
            return []  # acyclic, self-dependencies included: no knot, and no networkx import
        from pytest_migorch.project.cycles import knots

        findings = []
        found: list[Knot[Key]] = knots(graph.to_networkx(), self._sort_key)
        for knot in found:
            nodes = frozenset(knot.members)
            if nodes in seen:
                continue
            seen.add(nodes)
            findings.append(self._cycle_finding(knot, environment))
        return findings

    def _cycle_finding(self, knot: Knot[Key], environment: str) -> Finding:
        """``cycle[i]`` depends on ``cycle[i + 1]`` (and the last on the first)."""
        members = list(knot.members)
        services = sorted({service for service, _ in members})
        qualify = len(services) > 1
        cycles = [list(cycle) for cycle in knot.cycles]
        texts = [self._path_text(cycle + [cycle[0]], qualify) for cycle in cycles]
        message = f"{CYCLE_DETECTED}: {texts[0]} (each depends on the next)"
        if len(texts) > 1:
            message += "; also " + "; ".join(texts[1:])
        if len(cycles) > 1 or not knot.complete:
            listed = ", ".join(self._label(key, qualify=qualify) for key in members[:20])
            more = f" and {len(members) - 20} more" if len(members) > 20 else ""
            message += (f"; {len(members)} migrations depend on each other in all"
                        f"{'' if knot.complete else ' (more cycles run through them)'}: "
                        f"{listed}{more}")
        path = cycles[0]
        first = self.project.migration(*path[0])
        assert first is not None
        meta = first.meta
        # The line of the depends_on entry that closes the cycle at the first migration.
        following = path[1] if len(path) > 1 else path[0]
        line = next((dep.line for dep in first.depends_on if dep.key() == following),
                    meta.line if meta else None)
        finding = CYCLE.finding(
            message, file=meta.file if meta else None, line=line,
            service=first.service, migration=first.id,
            environment=None if first.is_base else environment,
        )
        return replace(finding, services=tuple(services)) if qualify else finding

    def _path_text(self, path: list[Key], qualify: bool) -> str:
        """``a -> b -> a``; a very long cycle keeps its ends (where it closes) and says how
        many migrations it skips, so one finding stays readable at 20,000 migrations."""
        labels = [self._label(key, qualify=qualify) for key in path]
        if len(labels) > 16:
            labels = labels[:8] + [f"... {len(labels) - 14} more ..."] + labels[-6:]
        return " -> ".join(labels)

    def _label(self, key: Key, *, qualify: bool) -> str:
        migration = self.project.migration(*key)
        text = migration.version_text if migration else str(key[1])
        return f"{key[0]}:{text}" if qualify else text

    # --- orders -----------------------------------------------------------------------------

    def _sorted(self, graph: DependencyGraph[Key], nodes: set[Key] | None = None) -> list[Migration]:
        """``nodes`` (default: all) of ``graph`` in run order (:mod:`.topo`)."""
        keys = lexicographic_order(set(graph) if nodes is None else nodes, graph.pred,
                                   graph.succ, self._sort_key)
        if keys is None:
            raise ConfigurationError(
                f"{CYCLE_DETECTED}: the migrations cannot be ordered because their "
                "dependencies form a cycle; run `migorch validate` to see it"
            )
        return [self.project.services[s].migrations[v] for s, v in keys]

    def _full_order(self, environment: str) -> list[Migration] | None:
        """Every migration of ``environment`` in run order, sorted once per environment (the
        cycle check, the plan and each service's state all ask); None with a cycle."""
        if environment not in self._full:
            graph = self.graph(environment)
            keys = lexicographic_order(set(graph), graph.pred, graph.succ, self._sort_key)
            self._full[environment] = None if keys is None else [
                self.project.services[s].migrations[v] for s, v in keys]
        return self._full[environment]

    def order_all(self, environment: str, services: Iterable[str] | None = None) -> list[Migration]:
        """Every migration of ``services`` (default: all) in ``environment``, in run order,
        with the migrations of other services they need placed before them.

        The selection and what it needs are closed under dependencies, so the sort of those
        nodes alone picks them in the order the sort of the whole graph does (a node outside
        never makes one inside ready): an acyclic environment is sorted once and filtered.
        With a cycle somewhere, the selection is sorted alone (it may still be orderable)."""
        selection = None if services is None else frozenset(services)
        if selection is not None and selection >= self.project.services.keys():
            selection = None
        order = self._orders.get((environment, selection))
        if order is None:
            graph = self.graph(environment)
            full = self._full_order(environment)
            if selection is None:
                order = full if full is not None else self._sorted(graph)
            else:
                wanted = {key for key in graph if key[0] in selection}
                nodes = wanted | self.ancestors(wanted, environment)
                order = [m for m in full if m.key in nodes] if full is not None else \
                    self._sorted(graph, nodes)
            self._orders[(environment, selection)] = order
        return list(order)  # the caller's to change

    def order(self, service: str, environment: str) -> list[Migration]:
        """One service's migrations in ``environment``, in run order (every one of them is in
        its selection, so the whole environment's order, filtered, when there is one)."""
        full = self._full_order(environment)
        if full is not None:
            return [m for m in full if m.service == service]
        return [m for m in self.order_all(environment, [service]) if m.service == service]

    def prerequisites(self, service: str, environment: str) -> list[Migration]:
        """Migrations of other services that ``service`` needs first, in run order."""
        return [m for m in self.order_all(environment, [service]) if m.service != service]

    def ancestors(self, keys: Iterable[Key], environment: str) -> set[Key]:
        """Every migration that one of ``keys`` needs, directly or not.

        That is its declared dependencies and, because golang-migrate applies a service's
        migrations in version order, the lower versions (in ``environment``) of the service of
        each migration needed: another service's ``000003`` cannot run without its ``000001``.
        One walk over the graph: the next lower version stands for all lower ones (it needs
        them in turn), so each migration and each edge is visited once, however deep the chain.
        """
        graph = self.graph(environment)
        previous = self._previous_versions(environment)
        todo = [key for key in keys if key in graph]
        seen = set(todo)
        out: set[Key] = set()
        while todo:
            key = todo.pop()
            needed = list(graph.predecessors(key))
            lower = previous.get(key)
            if lower is not None:
                needed.append(lower)
            for other in needed:
                out.add(other)
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return out

    def _previous_versions(self, environment: str) -> dict[Key, Key]:
        """``{key: the same service's next lower version in environment}``, built once."""
        previous = self._previous.get(environment)
        if previous is None:
            by_service: dict[str, list[int]] = {}
            for service, version in self.graph(environment):
                by_service.setdefault(service, []).append(version)
            previous = {}
            for service, versions in by_service.items():
                versions.sort()
                for lower, higher in zip(versions, versions[1:]):
                    previous[(service, higher)] = (service, lower)
            self._previous[environment] = previous
        return previous

    def dependents(self, keys: Iterable[Key], environment: str) -> set[Key]:
        """Every migration (any service) that depends, directly or not, on one of ``keys``.

        One walk from all of ``keys`` at once, not one per key: linear in the graph's size.
        """
        graph = self.graph(environment)
        start = set(keys)
        todo = [key for key in start if key in graph]
        seen = set(todo)
        while todo:
            for child in graph.successors(todo.pop()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen - start


def _condensed_rank(services: Any, names: list[str]) -> dict[str, int]:
    """Services ranked by the order of their strongly connected components (ties by the
    smallest name in each), for service graphs with a cycle."""
    import networkx as nx

    condensed = nx.condensation(services)
    members = condensed.graph["mapping"]
    component_name = {c: min(n for n, comp in members.items() if comp == c)
                      for c in condensed.nodes}
    order = nx.lexicographical_topological_sort(condensed, key=lambda c: component_name[c])
    rank_of_component = {component: rank for rank, component in enumerate(order)}
    return {name: rank_of_component[members[name]] for name in names}
