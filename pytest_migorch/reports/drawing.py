"""``migorch graph``: the dependency graph as Graphviz dot or Mermaid text.

An edge ``a -> b`` means *b depends on a* (a runs first), so arrows follow execution order.
Each service is a cluster (dot) or subgraph (Mermaid). Environment-only migrations are dashed
and say their environment; high-risk ones are red. Drawing one service also shows, outside its
cluster, the migrations of other services it depends on or that depend on it, so a reviewer
sees what a rollback or a deploy of that service touches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

from pytest_migorch.model import Migration, Project, RiskLevel
from pytest_migorch.project.graph import Key, ProjectGraph

__all__ = ["GraphDrawing", "build_drawing", "to_dot", "to_mermaid", "FORMATS"]

Format = Literal["dot", "mermaid"]
FORMATS: tuple[str, ...] = ("dot", "mermaid")


@dataclass
class GraphDrawing:
    """The nodes and edges to draw, independent of the output format."""

    title: str
    nodes: list[Migration] = field(default_factory=list)
    edges: list[tuple[Key, Key]] = field(default_factory=list)
    focus: set[str] = field(default_factory=set)
    environment: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "nodes": [{"id": _key_text(m.key), "service": m.service, "migration": m.id,
                       "environment_only": m.environment,
                       "risk_level": m.meta.risk_level.value if m.meta else None}
                      for m in self.nodes],
            "edges": [{"from": _key_text(a), "to": _key_text(b)} for a, b in self.edges],
        }


def _key_text(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def build_drawing(project: Project, services: Sequence[str],
                  environment: str | None = None) -> GraphDrawing:
    """What to draw for ``services`` in ``environment`` (every migration when None)."""
    wanted = set(services)
    if environment is not None:
        members = ProjectGraph(project).environment_members(environment)
    else:
        members = {m.key: m for svc in project.services.values()
                   for m in svc.migrations.values() if m.up is not None}
    edges: list[tuple[Key, Key]] = []
    shown: dict[Key, Migration] = {}
    for key, migration in sorted(members.items()):
        for dep in migration.depends_on:
            if dep.key() not in members:
                continue
            if key[0] in wanted or dep.service in wanted:
                edges.append((dep.key(), key))
                shown[key] = migration
                shown[dep.key()] = members[dep.key()]
        if key[0] in wanted:
            shown[key] = migration
    order = sorted(shown, key=lambda k: (k[0] not in wanted, k[0], k[1]))
    title = "all services" if wanted == set(project.services) else ", ".join(sorted(wanted))
    return GraphDrawing(title=title, nodes=[shown[k] for k in order], edges=sorted(set(edges)),
                        focus=wanted, environment=environment)


def _label(migration: Migration) -> list[str]:
    lines = [migration.id]
    meta = migration.meta
    if meta is not None:
        lines.append(f"risk {meta.risk_level.value}"
                     + (f", {meta.estimated_duration}" if meta.estimated_duration else ""))
    if migration.environment:
        lines.append(f"({migration.environment} only)")
    return lines


def _high(migration: Migration) -> bool:
    return migration.meta is not None and migration.meta.risk_level is RiskLevel.HIGH


def _dot_escape(text: str) -> str:
    """Text for inside a dot double-quoted string."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dot_quote(text: str) -> str:
    return f'"{_dot_escape(text)}"'


def to_dot(drawing: GraphDrawing) -> str:
    """Graphviz dot: ``dot -Tsvg`` renders it."""
    lines = ["digraph migrations {",
             f"  label={_dot_quote('migrations: ' + drawing.title + _env_suffix(drawing))};",
             "  rankdir=LR;",
             '  node [shape=box, style="rounded", fontname="Helvetica"];']
    by_service: dict[str, list[Migration]] = {}
    for migration in drawing.nodes:
        by_service.setdefault(migration.service, []).append(migration)
    for index, (service, migrations) in enumerate(by_service.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_dot_quote(service)};")
        if service not in drawing.focus:
            lines.append('    style="dashed"; color="grey";')
        for migration in migrations:
            label = "\\n".join(_dot_escape(part) for part in _label(migration))
            attrs = [f'label="{label}"']
            styles = ["rounded"] + (["dashed"] if migration.environment else [])
            attrs.append(f'style="{",".join(styles)}"')
            if _high(migration):
                attrs.append('color="red"')
            lines.append(f"    {_dot_quote(_key_text(migration.key))} [{', '.join(attrs)}];")
        lines.append("  }")
    for a, b in drawing.edges:
        lines.append(f"  {_dot_quote(_key_text(a))} -> {_dot_quote(_key_text(b))};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _env_suffix(drawing: GraphDrawing) -> str:
    return f" ({drawing.environment})" if drawing.environment else ""


_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _mermaid_id(key: Key) -> str:
    return "m_" + _MERMAID_UNSAFE.sub("_", key[0]) + f"_{key[1]}"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(drawing: GraphDrawing) -> str:
    """A Mermaid flowchart, e.g. for a Markdown file or a pull request comment."""
    lines = ["flowchart LR"]
    by_service: dict[str, list[Migration]] = {}
    for migration in drawing.nodes:
        by_service.setdefault(migration.service, []).append(migration)
    high, env_only = [], []
    for index, (service, migrations) in enumerate(by_service.items()):
        lines.append(f'  subgraph s{index}["{_mermaid_text(service)}"]')
        for migration in migrations:
            label = "<br/>".join(_mermaid_text(part) for part in _label(migration))
            lines.append(f'    {_mermaid_id(migration.key)}["{label}"]')
            if _high(migration):
                high.append(_mermaid_id(migration.key))
            if migration.environment:
                env_only.append(_mermaid_id(migration.key))
        lines.append("  end")
    for a, b in drawing.edges:
        lines.append(f"  {_mermaid_id(a)} --> {_mermaid_id(b)}")
    if high:
        lines.append("  classDef high stroke:#c00,stroke-width:2px;")
        lines.append(f"  class {','.join(high)} high;")
    if env_only:
        lines.append("  classDef envonly stroke-dasharray: 5 5;")
        lines.append(f"  class {','.join(env_only)} envonly;")
    return "\n".join(lines) + "\n"


def render(drawing: GraphDrawing, fmt: str) -> str:
    """``dot`` or ``mermaid`` text of a drawing."""
    if fmt == "mermaid":
        return to_mermaid(drawing)
    return to_dot(drawing)
