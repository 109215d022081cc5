"""The run order's sort (topo.py) against networkx's, which it replaces on the hot path."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest
from helpers import service_files, write_service

from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.topo import lexicographic_order
from pytest_migorch.project.validation import load_project


@pytest.mark.parametrize("seed", range(20))
def test_the_order_is_networkx_lexicographical_order(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(1, 60)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(count))
    for _ in range(rng.randint(0, count * 2)):
        a, b = sorted(rng.sample(range(count), 2)) if count > 1 else (0, 0)
        if a != b:
            graph.add_edge(a, b)  # low to high: acyclic
    key = {n: (rng.randint(0, 3), -n) for n in graph}.__getitem__
    expected = list(nx.lexicographical_topological_sort(graph, key=key))
    assert lexicographic_order(set(graph), graph.pred, graph.succ, key) == expected
    part = {n for n in graph if rng.random() < 0.6}
    expected_part = list(nx.lexicographical_topological_sort(graph.subgraph(part), key=key))
    assert lexicographic_order(part, graph.pred, graph.succ, key) == expected_part


def test_a_cycle_has_no_order() -> None:
    graph = nx.DiGraph([(1, 2), (2, 3), (3, 2), (0, 1)])
    assert lexicographic_order(set(graph), graph.pred, graph.succ, lambda n: n) is None
    # outside the nodes asked for, the cycle does not matter
    assert lexicographic_order({0, 1}, graph.pred, graph.succ, lambda n: n) == [0, 1]


def test_the_dependency_graph_walks_as_networkx_does() -> None:
    from pytest_migorch.project.topo import DependencyGraph

    ours: DependencyGraph[int] = DependencyGraph()
    ours.add_nodes_from([3, 1, 2])
    for edge in [(1, 2), (1, 3), (2, 3), (4, 4)]:
        ours.add_edge(*edge)
    theirs = ours.to_networkx()
    assert list(ours) == list(theirs) == [3, 1, 2, 4] and len(ours) == 4
    for node in ours:
        assert list(ours.successors(node)) == list(theirs.successors(node))
        assert list(ours.predecessors(node)) == list(theirs.predecessors(node))
    assert ours.has_edge(4, 4) and not ours.has_edge(3, 1) and 5 not in ours


def test_a_cycle_between_services_still_ranks_them(tmp_path: Path) -> None:
    files_a = service_files({"000001_a": {}, "000002_b": {"depends_on": ["b-service:000001"]}})
    files_b = service_files({"000001_a": {"depends_on": ["a-service:000001"]},
                             "000002_b": {"depends_on": ["a-service:000002"]}})
    write_service(tmp_path, "a-service", files_a)
    write_service(tmp_path, "b-service", files_b)
    order = ProjectGraph(load_project(tmp_path)).order_all("production")
    assert [m.qualified_id for m in order] == [
        "a-service:000001_a", "b-service:000001_a", "a-service:000002_b", "b-service:000002_b"]
