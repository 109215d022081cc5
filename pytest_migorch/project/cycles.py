"""The cycles of a dependency graph, reported so that each can be fixed, at any graph size.

Listing every simple cycle is exponential (a dense knot of n migrations has more than n!
cycles), so a knot is reported as what it is: one strongly connected component, found in linear
time, with a few cycles through it that together pass through each of its members (up to
:data:`MAX_CYCLES`), and the members themselves. Each cycle is a shortest way back to where it
starts (breadth-first), so the text stays short and each cycle names depends_on entries a
person can remove.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Iterable, TypeVar

import networkx as nx

__all__ = ["Knot", "knots", "MAX_CYCLES"]

#: Cycles reported per strongly connected component; the rest are named by their members.
MAX_CYCLES = 5

N = TypeVar("N", bound=Hashable)


@dataclass(frozen=True)
class Knot(Generic[N]):
    """A set of migrations that depend on each other, directly or not.

    ``cycles[i]`` is a path in the depends_on direction: each element depends on the next and
    the last on the first. ``complete`` is False when :data:`MAX_CYCLES` cycles did not pass
    through every member."""

    members: tuple[N, ...]
    cycles: tuple[tuple[N, ...], ...]
    complete: bool


def knots(graph: nx.DiGraph, sort_key: Callable[[N], Any]) -> list[Knot[N]]:
    """Every strongly connected component of ``graph`` with a cycle (a self-dependency
    included), members sorted by ``sort_key``, its cycles starting at its first member.

    Edges run from a dependency to its dependent, as in
    :class:`~pytest_migorch.project.graph.ProjectGraph`."""
    out = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (node,) = component
            if not graph.has_edge(node, node):
                continue
        members: list[N] = sorted(component, key=sort_key)
        out.append(_knot(graph, members, set(component)))
    return sorted(out, key=lambda knot: sort_key(knot.members[0]))


def _knot(graph: nx.DiGraph, members: list[N], inside: set[N]) -> Knot[N]:
    cycles: list[tuple[N, ...]] = []
    covered: set[N] = set()
    for start in members:
        if start in covered:
            continue
        if len(cycles) == MAX_CYCLES:
            return Knot(tuple(members), tuple(cycles), complete=False)
        cycle = _cycle_through(graph, start, inside)
        cycles.append(cycle)
        covered.update(cycle)
    return Knot(tuple(members), tuple(cycles), complete=True)


def _cycle_through(graph: nx.DiGraph, start: N, inside: set[N]) -> tuple[N, ...]:
    """A shortest cycle through ``start`` in the depends_on direction: ``start`` depends on
    the second element, ..., the last depends on ``start``. One breadth-first walk over what
    ``start`` depends on, inside its component (where a way back always exists)."""
    if graph.has_edge(start, start):
        return (start,)
    closing = set(_within(graph.successors(start), inside))  # they depend on start
    parent: dict[N, N] = {}
    seen = {start}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        for dependency in _within(graph.predecessors(node), inside):
            if dependency in seen:
                continue
            seen.add(dependency)
            parent[dependency] = node
            if dependency in closing:
                path = [dependency]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return tuple(reversed(path))
            todo.append(dependency)
    raise AssertionError(f"{start!r} is in a strongly connected component without a cycle")


def _within(nodes: Iterable[N], inside: set[N]) -> Iterable[N]:
    return (node for node in nodes if node in inside)
