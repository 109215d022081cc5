"""Small pieces of the HTML report that every part of the page uses.

:func:`e` is the one escape: every piece of user text (service names, file names, SQL in
messages, failure text) goes through it, so a service called ``<script>`` is shown, never run.
Filter values are percent-encoded words (:func:`token`) so that any name, spaces included, is
matched by the page's script exactly.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

from pytest_migorch.findings import Finding
from pytest_migorch.project.graph import Key
from pytest_migorch.reports.html import MigrationView, TestOutcome

__all__ = ["e", "token", "tokens", "id_part", "anchor", "badge", "risk_badge", "finding_items",
           "outcome_text"]

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def token(text: str) -> str:
    """A filter word: percent-encoded like the script's ``encodeURIComponent``."""
    return quote(text, safe="!~*'()")


def tokens(values: Iterable[str]) -> str:
    return e(" ".join(token(v) for v in values))


def id_part(text: str) -> str:
    return _ID_UNSAFE.sub(lambda m: f"_{ord(m.group()):x}", text)


def anchor(key: Key) -> str:
    """The element id of a migration's details (the graph's nodes link to it)."""
    return f"m-{id_part(key[0])}-{key[1]}"


def badge(text: str, cls: str) -> str:
    return f'<span class="badge {cls}">{e(text)}</span>'


def risk_badge(view: MigrationView) -> str:
    entry = view.entry
    out = badge(entry.risk_effective.value, f"risk-{entry.risk_effective.value}")
    if entry.risk_unknown:
        out += " " + badge("unknown", "risk-unknown")
    return out


def finding_items(findings: Sequence[Finding], root: Path) -> str:
    if not findings:
        return '<p class="muted">No findings.</p>'
    rows = []
    for f in findings:
        sev = f.severity.value
        text = (f"<li>{badge(sev, f'sev-{sev}')} <b>{e(f.code)}</b> {e(f.name)} "
                f"<code>{e(f.location(root))}</code><br>{e(f.message)}")
        if f.hint:
            text += f'<br><span class="muted">hint: {e(f.hint)}</span>'
        if f.details:
            text += f"<pre>{e(f.details)}</pre>"
        rows.append(text + "</li>")
    return '<ul class="findings">' + "".join(rows) + "</ul>"


def outcome_text(o: TestOutcome) -> str:
    where = f" ({o.environment})" if o.environment else ""
    head = f"{badge(o.outcome, f'out-{o.outcome}')} <code>{e(o.nodeid)}</code>{e(where)}"
    if o.text and o.outcome != "passed":
        return f"<li>{head}<pre>{e(o.text)}</pre></li>"
    return f"<li>{head}</li>"
