"""The HTML report as one self-contained page: inline CSS, inline SVG and a little script.

Every piece of user text (service names, file names, SQL in messages, failure text) goes through
:func:`_e`, so a service called ``<script>`` is shown, never run. Filter values are written as
percent-encoded words (:func:`_token`) so that any name can be matched by the script exactly.
The graph is drawn from :func:`pytest_migorch.reports.html_layout.layered_layout`; each node is a
plain link to its migration, which works with scripts off.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from pytest_migorch.project.graph import Key
from pytest_migorch.reports.html import (
    HtmlReport,
)
from pytest_migorch.reports.html_layout import NODE_HEIGHT, NODE_WIDTH, layered_layout
from pytest_migorch.reports.html_parts import (
    anchor,
    badge,
    e,
    finding_items,
    outcome_text,
    token,
    tokens,
)
from pytest_migorch.reports.html_service import service_section
from pytest_migorch.reports.html_template import SCRIPT, STYLE

__all__ = ["render_page"]

RISKS = ("high", "medium", "low", "unknown")


def render_page(report: HtmlReport) -> str:
    """The whole page."""
    body = [_header(report), _filters(report), _summary(report), _project_findings(report),
            _graph_section(report), _tests_section(report)]
    body += [service_section(report, service) for service in report.services]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>migorch report: {e(report.title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(part for part in body if part)
            + f"\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n")


def _header(report: HtmlReport) -> str:
    live = (f" &middot; live state of environment <b>{e(report.live_environment)}</b>"
            if report.live_environment else "")
    if report.live_error:
        live += f' &middot; <b>live state unavailable: {e(report.live_error)}</b>'
    return (f"<header><h1>migorch report: {e(report.title)}</h1>"
            f"<p>root <code>{e(report.root)}</code> &middot; generated "
            f"{e(report.generated_at)}{live}</p></header>\n<main>")


def _options(values: Sequence[str], everything: str) -> str:
    rows = [f'<option value="">{e(everything)}</option>']
    rows += [f'<option value="{e(token(v))}">{e(v)}</option>' for v in values]
    return "".join(rows)


def _filters(report: HtmlReport) -> str:
    services = [s.name for s in report.services]
    envs = sorted({e.name for s in report.services for e in s.environments})
    return ('<section><form id="filters" hidden onsubmit="return false">'
            f'<label>Service<select name="service">{_options(services, "all")}</select></label>'
            f'<label>Environment<select name="env">{_options(envs, "all")}</select></label>'
            f'<label>Risk<select name="risk">{_options(RISKS, "any")}</select></label>'
            '<span id="shown-count" class="muted"></span></form>'
            '<noscript><p class="muted">Scripts are off: everything is shown.</p></noscript>'
            "</section>")


def _summary(report: HtmlReport) -> str:
    views = [v for s in report.services for v in s.migrations.values()]
    findings = [f for s in report.services for f in s.findings] + report.project_findings
    findings += [f for v in views for f in v.findings]
    risks = Counter(v.entry.risk_effective.value for v in views)
    items = [f"{len(report.services)} service(s)", f"{len(views)} migration(s)",
             "risk: " + ", ".join(f"{risks[r]} {r}" for r in ("high", "medium", "low")),
             f"{sum(f.is_error for f in findings)} error(s), "
             f"{sum(not f.is_error for f in findings)} warning(s)"]
    if report.outcomes is not None:
        outcomes = Counter(o.outcome for o in report.outcomes)
        items.append("tests: " + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))
    return ('<section><h2>Summary</h2><ul class="summary">'
            + "".join(f"<li>{e(item)}</li>" for item in items) + "</ul></section>")


def _project_findings(report: HtmlReport) -> str:
    if not report.project_findings:
        return ""
    return ("<section><h2>Project findings</h2>"
            + finding_items(report.project_findings, report.root) + "</section>")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _node_svg(report: HtmlReport, key: Key, x: int, y: int) -> str:
    view = report.view(key)
    focus = {s.name for s in report.services}
    classes = ["node"]
    label, risk = str(key[1]), ""
    if view is not None:
        label, risk = view.migration.id, view.entry.risk_effective.value
        classes.append(f"risk-{risk}")
        if view.entry.risk_unknown:
            classes.append("unknown")
        if view.migration.environment:
            classes.append("env-only")
    if key[0] not in focus:
        classes.append("other")
    tip = f"{key[0]}:{label}" + (f" (risk {risk})" if risk else "")
    href = f"#{anchor(key)}" if view is not None else ""
    dim = (f' data-dim data-service="{tokens([key[0]])}" '
           f'data-env="{tokens(view.environments)}" '
           f'data-risk="{tokens(view.risk_tokens.split())}"' if view is not None else "")
    return (f'<a href="{e(href)}" class="node-link"><g class="{" ".join(classes)}" '
            f'data-key="{e(tip)}"{dim} transform="translate({x},{y})">'
            f"<title>{e(tip)}</title>"
            f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="5"></rect>'
            f'<text class="service" x="8" y="16">{e(_clip(key[0], 30))}</text>'
            f'<text x="8" y="34">{e(_clip(label, 27))}</text></g></a>')


def _edge_svg(a: tuple[int, int], b: tuple[int, int], bends: Sequence[tuple[int, int]],
              cross: bool) -> str:
    """A curve from the right of ``a`` to the left of ``b``, running straight through the
    bend slots of the layers in between (where no node is)."""
    half = NODE_HEIGHT // 2
    x, y = a[0] + NODE_WIDTH, a[1] + half
    path = [f"M{x},{y}"]
    for bx, by in [*bends, (b[0] - 4, b[1])]:
        mid = (x + bx) // 2
        path.append(f"C{mid},{y} {mid},{by + half} {bx},{by + half}")
        x, y = bx, by + half
        if (bx, by) in bends:
            x = bx + NODE_WIDTH
            path.append(f"L{x},{y}")
    cls = "edge cross" if cross else "edge"
    marker = "arrow-cross" if cross else "arrow"
    return f'<path class="{cls}" d="{" ".join(path)}" marker-end="url(#{marker})"></path>'


def _graph_section(report: HtmlReport) -> str:
    if not report.nodes:
        return '<section><h2>Dependency graph</h2><p class="muted">No migrations.</p></section>'
    layout = layered_layout(report.nodes, report.edges)
    pos = {key: layout.position[key] for key in report.nodes}
    edges = [_edge_svg(pos[a], pos[b], layout.routes.get((a, b), []), a[0] != b[0])
             for a, b in report.edges]
    nodes = [_node_svg(report, key, *pos[key]) for key in report.nodes]
    markers = "".join(
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"></path>'
        "</marker>" for name, color in (("arrow", "#9aa1ad"), ("arrow-cross", "#1565c0")))
    return ("<section><h2>Dependency graph</h2>"
            '<p class="legend muted"><span>an arrow a &rarr; b: b depends on a</span>'
            '<span style="color:#1565c0">dashed blue: across services</span>'
            "<span>red border: high risk; purple: risk unknown; dashed border: "
            "environment-only</span>"
            "<span>click a migration for its details</span></p>"
            f'<div class="graph"><svg xmlns="http://www.w3.org/2000/svg" id="graph" '
            f'width="{layout.width}" height="{layout.height}" '
            f'viewBox="0 0 {layout.width} {layout.height}" role="img" '
            f'aria-label="dependency graph"><defs>{markers}</defs>'
            + "".join(edges) + "".join(nodes) + "</svg></div></section>")


def _tests_section(report: HtmlReport) -> str:
    if report.outcomes is None:
        return ""
    problems = [o for o in report.outcomes if o.outcome == "failed"]
    every = "".join(
        f'<tr data-filter data-service="{tokens([o.service] if o.service else [])}">'
        f"<td>{badge(o.outcome, f'out-{o.outcome}')}</td><td><code>{e(o.nodeid)}</code></td>"
        f"<td>{o.duration:.2f}s</td></tr>" for o in report.outcomes)
    failed = ("<h3>Failures</h3><ul>" + "".join(outcome_text(o) for o in problems) + "</ul>"
              if problems else '<p class="muted">No test failed.</p>')
    return ("<section id=\"tests\"><h2>Generated tests</h2>" + failed
            + f"<details><summary>All {len(report.outcomes)} test(s)</summary><table>"
            "<tr><th>outcome</th><th>test</th><th>duration</th></tr>"
            + every + "</table></details></section>")
