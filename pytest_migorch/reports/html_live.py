"""The database's part of the HTML report: the live state of one service (``--database-url``).

It shows what ``migorch status`` and ``migorch list`` print (their JSON shapes, from
:class:`~pytest_migorch.deploy.status.ServiceReport`): applied, pending, failed, drift, dirty, the
lock holder, each migration's state, and the last runs with their duration against the estimate
(a run slower than its estimate is marked).
"""

from __future__ import annotations

from typing import Sequence

from pytest_migorch.deploy.planning import format_seconds
from pytest_migorch.reports.html import LiveState
from pytest_migorch.reports.html_parts import badge, e, id_part

__all__ = ["live_section"]


def live_section(live: LiveState) -> str:
    status = live.status
    counts = (f"applied {len(status.get('applied', []))}, pending "
              f"{len(status.get('pending', []))}, failed {len(status.get('failed', []))}, "
              f"drift {len(status.get('drift', []))}")
    lines = [f"<p>{e(counts)}" + ("" if status.get("initialised") else
                                    ' &middot; <span class="problem">not initialised</span>')
             + "</p>"]
    if status.get("dirty"):
        lines.append(f'<p class="problem">DIRTY: {e(status["dirty"])}</p>')
    if status.get("lock_holder"):
        lines.append(f"<p>lock held by {e(status['lock_holder'])}</p>")
    for item in status.get("drift", []):
        lines.append(f'<p class="problem">drift: {e(item.get("message", item))}</p>')
    for item in status.get("failed", []):
        lines.append(f'<p class="problem">failed: {e(item.get("migration"))}</p>'
                     f"<pre>{e(item.get('error') or '')}</pre>")
    return ("<h3>Live state</h3>" + "".join(lines) + _state_table(live)
            + _runs_table(status.get("last_runs", [])))


def _state_table(live: LiveState) -> str:
    rows = []
    for row in live.rows:
        state = str(row.get("status"))
        took = row.get("duration_ms")
        rows.append(f"<tr><td><code>{e(row.get('migration'))}</code></td>"
                    f"<td>{badge(state, f'st-{id_part(state)}')}</td>"
                    f"<td>{e(row.get('applied_at') or '-')}</td>"
                    f"<td>{e(format_seconds(took / 1000) if took is not None else '-')}</td>"
                    f"<td>{e(row.get('estimated_duration') or '-')}</td>"
                    f"<td>{e(row.get('drift') or '')}</td></tr>")
    return ("<table><tr><th>migration</th><th>state</th><th>applied at</th><th>took</th>"
            "<th>estimate</th><th>drift</th></tr>" + "".join(rows) + "</table>")


def _runs_table(runs: Sequence[dict[str, object]]) -> str:
    if not runs:
        return '<p class="muted">No runs recorded yet.</p>'
    rows = []
    for run in runs:
        took, estimate = run.get("duration_ms"), run.get("estimated_seconds")
        took_text = format_seconds(float(took) / 1000) if isinstance(took, (int, float)) else "-"
        est_text = format_seconds(float(estimate)) if isinstance(estimate, (int, float)) else "-"
        over = (isinstance(took, (int, float)) and isinstance(estimate, (int, float))
                and estimate > 0 and took / 1000 > estimate)
        took_cell = '<td class="problem">' if over else "<td>"
        rows.append(f"<tr><td>{e(run.get('started_at') or '-')}</td><td>{e(run.get('action'))}"
                    f"</td><td><code>{e(run.get('migration'))}</code></td>"
                    f"<td>{e(run.get('status'))}</td>"
                    f"{took_cell}{e(took_text)}</td>"
                    f"<td>{e(est_text)}</td></tr>")
    return ("<h4>Last runs</h4><table><tr><th>started</th><th>action</th><th>migration</th>"
            "<th>status</th><th>took</th><th>estimate</th></tr>" + "".join(rows) + "</table>")
