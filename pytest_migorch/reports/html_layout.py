"""A layered drawing of the dependency graph, computed here so the HTML report needs no Graphviz.

The classic recipe (Sugiyama): every migration goes into the layer after its deepest dependency
(longest-path layering, so a migration is always right of what it needs), then the migrations
of each layer are reordered by the mean position of their neighbours in the layer before (and,
sweeping back, after), which removes most edge crossings. The best order any sweep found is
kept. Pure and deterministic: the same graph always gives the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Hashable, Sequence, TypeVar, cast

__all__ = ["Layout", "layered_layout", "crossings", "NODE_WIDTH", "NODE_HEIGHT"]

N = TypeVar("N", bound=Hashable)

NODE_WIDTH = 190
NODE_HEIGHT = 46
LAYER_GAP = 70
ROW_GAP = 18
MARGIN = 12
SWEEPS = 8
#: Columns of the grid of nodes without edges (at least; more when the drawing is wider).
GRID_COLUMNS = 5


@dataclass
class Layout(Generic[N]):
    """Where each node goes: its layer, its rank in the layer and its top-left corner."""

    layers: list[list[N]]
    position: dict[N, tuple[int, int]]
    #: The top-left corners of the slots a long edge passes through, left to right.
    routes: dict[tuple[N, N], list[tuple[int, int]]]
    width: int
    height: int


def _layers(nodes: Sequence[N], edges: Sequence[tuple[N, N]]) -> dict[N, int]:
    """Longest-path layering. Nodes left in a cycle (a validation error elsewhere) are placed
    after everything else in input order, so the page still draws."""
    preds: dict[N, list[N]] = {n: [] for n in nodes}
    succs: dict[N, list[N]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in preds and b in preds and a != b:
            preds[b].append(a)
            succs[a].append(b)
    waiting = {n: len(preds[n]) for n in nodes}
    ready = [n for n in nodes if waiting[n] == 0]
    layer: dict[N, int] = {}
    while ready:
        node = ready.pop(0)
        layer[node] = max((layer[p] + 1 for p in preds[node] if p in layer), default=0)
        for succ in succs[node]:
            waiting[succ] -= 1
            if waiting[succ] == 0:
                ready.append(succ)
    last = max(layer.values(), default=-1)
    for node in nodes:
        if node not in layer:
            last += 1
            layer[node] = last
    return layer


def crossings(layers: Sequence[Sequence[N]], edges: Sequence[tuple[N, N]]) -> int:
    """How many pairs of edges between adjacent layers cross (long edges count per layer gap
    by their end points, which is enough to compare two orders of the same graph)."""
    rank = {n: (i, j) for i, layer in enumerate(layers) for j, n in enumerate(layer)}
    spans: dict[int, list[tuple[int, int]]] = {}
    for a, b in edges:
        if a in rank and b in rank and rank[a][0] < rank[b][0]:
            spans.setdefault(rank[a][0], []).append((rank[a][1], rank[b][1]))
    total = 0
    for pairs in spans.values():
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1:]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _reorder(layer: list[N], neighbours: dict[N, list[N]], index: dict[N, int]) -> list[N]:
    """Sort ``layer`` by the mean index of each node's neighbours; a node without neighbours
    keeps its place (stable sort on its current index)."""
    def barycentre(node: N) -> float:
        near = [index[n] for n in neighbours[node] if n in index]
        return sum(near) / len(near) if near else float(index[node])
    return sorted(layer, key=lambda n: (barycentre(n), index[n]))


def _sweep(layers: list[list[N]], preds: dict[N, list[N]], succs: dict[N, list[N]],
           downward: bool) -> list[list[N]]:
    out = [list(layer) for layer in layers]
    order = range(1, len(out)) if downward else range(len(out) - 2, -1, -1)
    for i in order:
        fixed = out[i - 1] if downward else out[i + 1]
        index = {n: j for j, n in enumerate(fixed)}
        index.update({n: j for j, n in enumerate(out[i]) if n not in index})
        out[i] = _reorder(out[i], preds if downward else succs, index)
    return out


@dataclass(frozen=True)
class _Bend:
    """A slot that an edge spanning several layers passes through, so that it runs between the
    nodes of the layers it crosses instead of through them."""

    edge: tuple[Hashable, Hashable]
    layer: int


def _split_long_edges(nodes: Sequence[N], edges: Sequence[tuple[N, N]], layer_of: dict[N, int]
                      ) -> tuple[list[list[Hashable]], list[tuple[Hashable, Hashable]]]:
    """The layers with a bend slot per crossed layer, and the edges cut into one-layer hops."""
    count = max(layer_of.values(), default=-1) + 1
    layers: list[list[Hashable]] = [[] for _ in range(count)]
    for node in nodes:
        layers[layer_of[node]].append(node)
    hops: list[tuple[Hashable, Hashable]] = []
    for a, b in edges:
        if a not in layer_of or b not in layer_of or layer_of[a] >= layer_of[b]:
            continue
        previous: Hashable = a
        for layer in range(layer_of[a] + 1, layer_of[b]):
            bend = _Bend((a, b), layer)
            layers[layer].append(bend)
            hops.append((previous, bend))
            previous = bend
        hops.append((previous, b))
    return layers, hops


def _grid(nodes: Sequence[Hashable], columns: int, top: int) -> dict[Hashable, tuple[int, int]]:
    """Slots in reading order, ``columns`` wide, starting at ``top``."""
    out = {}
    for index, node in enumerate(nodes):
        row, column = divmod(index, columns)
        out[node] = (MARGIN + column * (NODE_WIDTH + LAYER_GAP),
                     top + row * (NODE_HEIGHT + ROW_GAP))
    return out


def layered_layout(nodes: Sequence[N], edges: Sequence[tuple[N, N]]) -> Layout[N]:
    """Layers left to right in dependency order; crossings reduced by barycentre sweeps.

    Nodes without any edge (a service without dependencies.json, say) would all land in the
    first layer, one tall column; they go in a grid below the drawing instead. ``layers`` lists
    the connected nodes only.
    """
    known = set(nodes)
    linked = {n for edge in edges if edge[0] != edge[1] and set(edge) <= known for n in edge}
    connected = [n for n in nodes if n in linked]
    layer_of = _layers(connected, edges)
    layers, hops = _split_long_edges(connected, edges, layer_of)
    preds: dict[Hashable, list[Hashable]] = {n: [] for layer in layers for n in layer}
    succs: dict[Hashable, list[Hashable]] = {n: [] for layer in layers for n in layer}
    for a, b in hops:
        preds[b].append(a)
        succs[a].append(b)
    best, best_crossings = layers, crossings(layers, hops)
    current = layers
    for sweep in range(SWEEPS):
        current = _sweep(current, preds, succs, downward=sweep % 2 == 0)
        found = crossings(current, hops)
        if found < best_crossings:
            best, best_crossings = current, found
    slots = {
        node: (MARGIN + i * (NODE_WIDTH + LAYER_GAP), MARGIN + j * (NODE_HEIGHT + ROW_GAP))
        for i, layer in enumerate(best) for j, node in enumerate(layer)
    }
    routes: dict[tuple[N, N], list[tuple[int, int]]] = {}
    for node, slot in slots.items():
        if isinstance(node, _Bend):
            routes.setdefault(cast(tuple[N, N], node.edge), []).append(slot)
    rows = max((len(layer) for layer in best), default=0)
    top = MARGIN + rows * (NODE_HEIGHT + ROW_GAP)
    columns = max(len(best), GRID_COLUMNS)
    lonely = [n for n in nodes if n not in linked]
    slots.update(_grid(lonely, columns, top))
    rows += -(-len(lonely) // columns)
    used = max(len(best), min(len(lonely), columns), 1)
    width = 2 * MARGIN + used * (NODE_WIDTH + LAYER_GAP) - LAYER_GAP
    height = 2 * MARGIN + max(rows, 1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    return Layout(layers=[[n for n in layer if n in known] for layer in best],
                  position={n: slots[n] for n in nodes}, routes=routes,
                  width=width, height=height)
