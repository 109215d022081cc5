"""One service's part of the HTML report: its environments' run orders and its migrations.

Each environment is a table of the service's migrations in resolved run order, one line each
(what ``migorch up`` would print in its plan); each migration then has one details block,
whatever the number of environments it runs in, that the graph and the tables link to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pytest_migorch.model import Migration
from pytest_migorch.reports.html import HtmlReport, MigrationView, ServiceView, TestOutcome
from pytest_migorch.reports.html_live import live_section
from pytest_migorch.reports.html_parts import (
    anchor,
    badge,
    e,
    finding_items,
    id_part,
    outcome_text,
    risk_badge,
    tokens,
)

__all__ = ["service_section"]


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _risk_cell(view: MigrationView) -> str:
    entry = view.entry
    declared = entry.risk_declared.value if entry.risk_declared else "undeclared"
    rules = " ".join(f"{code}@{line}" for code, _, line in entry.rules_fired)
    return (f"{risk_badge(view)}<br><span class=\"muted\">declared {e(declared)}, "
            f"derived {e(entry.risk_derived.value)}</span>"
            + (f"<br><code>{e(rules)}</code>" if rules else ""))


def _outcome_badges(outcomes: Sequence[TestOutcome]) -> str:
    return " ".join(badge(o.outcome, f"out-{o.outcome}") for o in outcomes) or "-"


def _row(view: MigrationView, position: int, service: str, env: str) -> str:
    m, entry = view.migration, view.entry
    errors = sum(f.is_error for f in view.findings)
    warnings = len(view.findings) - errors
    desc = m.meta.description if m.meta else ""
    return (f'<tr class="migration-row" data-filter data-service="{tokens([service])}" '
            f'data-env="{tokens([env])}" data-risk="{tokens(view.risk_tokens.split())}">'
            f"<td>{position}</td>"
            f'<td><a href="#{e(anchor(m.key))}"><code>{e(m.id)}</code></a>'
            + (f' <span class="muted">({e(m.environment)} only)</span>'
               if m.environment else "")
            + f"</td><td>{e(desc)}</td><td>{_risk_cell(view)}</td>"
            f"<td>{e(', '.join(entry.tables) or '-')}</td>"
            f"<td>{e(entry.estimated_duration or '-')}</td>"
            f"<td>{_yes_no(m.transactional)}</td><td>{_yes_no(m.reversible)}</td>"
            f"<td>{errors} error(s), {warnings} warning(s)</td>"
            f"<td>{_outcome_badges(view.outcomes)}</td></tr>")


def _environment_table(service: ServiceView, env_index: int) -> str:
    env = service.environments[env_index]
    rows = [_row(service.migrations[v], i, service.name, env.name)
            for i, v in enumerate(env.order, start=1) if v in service.migrations]
    problem = f'<p class="problem">{e(env.problem)}</p>' if env.problem else ""
    return (f'<div class="environment" data-filter data-service="{tokens([service.name])}" '
            f'data-env="{tokens([env.name])}"><h3>Environment {e(env.name)}: '
            f"{len(rows)} migration(s) in run order</h3>{problem}"
            "<table><tr><th>#</th><th>migration</th><th>description</th><th>risk</th>"
            "<th>tables</th><th>estimate</th><th>transactional</th><th>reversible</th>"
            "<th>findings</th><th>tests</th></tr>" + "".join(rows) + "</table></div>")


def _depends(m: Migration, report: HtmlReport) -> str:
    links = []
    for dep in m.depends_on:
        target = report.view(dep.key())
        text = f"<code>{e(dep.text)}</code>"
        links.append(f'<a href="#{e(anchor(dep.key()))}">{text}</a>' if target else text)
    return ", ".join(links) or "-"


def _files(m: Migration, root: Path) -> str:
    from pytest_migorch.findings import display_path

    paths = [display_path(f.path, root) for f in (m.up, m.down) if f is not None]
    return ", ".join(f"<code>{e(p)}</code>" for p in paths)


def _details(view: MigrationView, report: HtmlReport, service: str) -> str:
    m, entry = view.migration, view.entry
    facts = [("description", e(m.meta.description if m.meta else "(no dependencies.json "
                                  "entry)")),
             ("environments", e(", ".join(view.environments) or "none")),
             ("depends on", _depends(m, report)),
             ("risk", _risk_cell(view)),
             ("tables", e(", ".join(entry.tables) or "-")),
             ("estimate", e(entry.estimated_duration or "unknown")),
             ("transactional", _yes_no(m.transactional)), ("reversible", _yes_no(m.reversible)),
             ("files", _files(m, report.root))]
    facts += [("risk unknown", e(reason)) for reason in entry.unknown_reasons]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    tests = ""
    if view.outcomes:
        tests = ("<h4>Tests</h4><ul>" + "".join(outcome_text(o) for o in view.outcomes)
                 + "</ul>")
    return (f'<article class="migration" id="{e(anchor(m.key))}" data-filter '
            f'data-service="{tokens([service])}" data-env="{tokens(view.environments)}" '
            f'data-risk="{tokens(view.risk_tokens.split())}">'
            f"<h4><code>{e(m.id)}</code> {risk_badge(view)}</h4>"
            f"<table>{table}</table><h4>Findings</h4>"
            + finding_items(view.findings, report.root) + tests + "</article>")


def service_section(report: HtmlReport, service: ServiceView) -> str:
    """A service: its findings, its live state, its run orders and its migrations."""
    parts = [f'<section class="service" id="svc-{id_part(service.name)}" data-filter '
             f'data-service="{tokens([service.name])}"><h2>{e(service.name)}</h2>']
    if service.findings:
        parts.append("<h3>Service findings</h3>"
                     + finding_items(service.findings, report.root))
    if service.live is not None:
        parts.append(live_section(service.live))
    elif report.live_environment:
        parts.append('<p class="muted">No live state for this service.</p>')
    parts += [_environment_table(service, i) for i in range(len(service.environments))]
    parts.append("<h3>Migrations</h3>")
    parts += [_details(view, report, service.name) for view in service.migrations.values()]
    return "".join(parts) + "</section>"
