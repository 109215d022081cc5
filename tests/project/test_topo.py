"""The run order's sort (topo.py) against networkx's, which it replaces on the hot path."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from pytest_migorch.project.topo import lexicographic_order


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
