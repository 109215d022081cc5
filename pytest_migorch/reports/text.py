"""Render findings for people (compiler-style lines, grouped per service) and for machines.

The JSON shape is documented in docs/findings.md; the CLI, the plugin and the CI reports all go
through here so a finding reads the same everywhere.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Any, Iterable

from pytest_migorch.findings import Finding, sort_findings

__all__ = ["render_text", "render_json", "summary_line"]

JSON_FORMAT_VERSION = 1


def render_text(findings: Iterable[Finding], *, relative_to: Path | None = None) -> str:
    """``path:line: severity CODE message`` lines with hints, grouped under a service header."""
    out: list[str] = []
    ordered = sort_findings(findings)
    for service, group in groupby(ordered, key=lambda f: f.service or ""):
        out.append(f"== {service or 'project'} ==")
        out.extend(f.render(relative_to) for f in group)
    return "\n".join(out)


def summary_line(findings: Iterable[Finding], services: int) -> str:
    items = list(findings)
    errors = sum(f.is_error for f in items)
    warnings = len(items) - errors
    return f"{errors} error(s), {warnings} warning(s) in {services} service(s)"


def render_json(
    findings: Iterable[Finding], *, root: Path, services: Iterable[str],
    relative_to: Path | None = None,
) -> dict[str, Any]:
    """The documented ``migorch validate --json`` document."""
    items = sort_findings(findings)
    names = sorted(services)
    errors = sum(f.is_error for f in items)
    return {
        "format_version": JSON_FORMAT_VERSION,
        "root": str(root),
        "ok": errors == 0,
        "summary": {"services": len(names), "errors": errors, "warnings": len(items) - errors},
        "services": {
            name: {
                "errors": sum(f.is_error for f in items if f.service == name),
                "warnings": sum(not f.is_error for f in items if f.service == name),
            }
            for name in names
        },
        "findings": [f.to_json(relative_to) for f in items],
    }
