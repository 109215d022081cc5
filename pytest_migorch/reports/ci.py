"""Findings in the formats CI systems read, so failures show up where the change is.

- GitHub Actions: workflow commands (``::error file=...,line=...,title=...::message``) become
  annotations on the lines of the pull request diff; a Markdown table goes to the job summary.
- GitLab: a Code Quality report (``artifacts:reports:codequality``) shows findings in the merge
  request widget and the diff.
- SARIF 2.1.0 for GitHub code scanning (and any other SARIF consumer).

Every format is built from the same :class:`~pytest_migorch.findings.Finding` objects, with paths
relative to the repository root, and every machine format carries the same fingerprint, so a finding
keeps its identity across runs (GitLab and GitHub use it to tell "new" from "fixed"). Nothing here
imports pytest; :mod:`pytest_migorch.pytest_plugin.ci_hooks` only calls these functions.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from pytest_migorch import __version__
from pytest_migorch.errors import MigorchError
from pytest_migorch.findings import (
    Family,
    Finding,
    Rule,
    Severity,
    resolve_location,
    sort_findings,
)
from pytest_migorch.vcs.git import GitRepository

__all__ = [
    "github_annotation",
    "github_annotations",
    "github_step_summary",
    "codequality_severity",
    "codequality_report",
    "sarif_report",
    "fingerprints",
    "repository_root",
    "with_fallback_locations",
    "escape_data",
    "escape_property",
    "SARIF_SCHEMA",
    "TOOL_NAME",
    "INFORMATION_URI",
]

TOOL_NAME = "pytest-migorch"
INFORMATION_URI = "https://pypi.org/project/pytest-migorch/"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
#: GitHub shows this many error and this many warning annotations of one step.
ANNOTATIONS_SHOWN = 10
#: GitHub caps a step summary at 1 MiB; a table this long is not read anyway.
SUMMARY_MAX_ROWS = 500
#: Errors that can break databases that are already deployed, not only this change.
CRITICAL_FAMILIES = frozenset({Family.INTEGRITY, Family.DATABASE})


# --- paths --------------------------------------------------------------------------------------


def repository_root(start: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where CI paths are relative to: the checkout (``GITHUB_WORKSPACE``, ``CI_PROJECT_DIR``),
    else the git work tree holding ``start``, else ``start`` itself."""
    env = os.environ if environ is None else environ
    for name in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        if env.get(name):
            return Path(env[name])
    try:
        return GitRepository.containing(start).toplevel
    except MigorchError:  # not a git work tree, or no git: a plain directory works too
        return start


def _relative(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` with forward slashes, or None when it lies outside."""
    try:
        relative = resolve_location(path).relative_to(root.resolve())
    except ValueError:
        return None
    return relative.as_posix() or "."


def _display(path: Path, root: Path) -> str:
    return _relative(path, root) or resolve_location(path).as_posix()


def with_fallback_locations(findings: Iterable[Finding], roots: Sequence[Path]) -> list[Finding]:
    """Give findings without a file one: their service's ``migrations/`` directory, else the
    first services root. Code scanning rejects results without a location."""
    out: list[Finding] = []
    for finding in findings:
        if finding.file is None and roots:
            place = roots[0]
            for root in roots:
                candidate = root / (finding.service or "") / "migrations"
                if finding.service and candidate.is_dir():
                    place = candidate
                    break
            finding = replace(finding, file=place)
        out.append(finding)
    return out


# --- fingerprints -------------------------------------------------------------------------------

_POSITION = re.compile(r"\s*\(?\b(?:at )?line \d+(?:,? column \d+)?\)?")


def _identity(finding: Finding, root: Path) -> str:
    """What makes a finding the same finding in another run: its file, code, service,
    migration, environment and message, without anything that moves when unrelated lines or
    the checkout directory change (absolute paths, line and column numbers)."""
    message = finding.message
    for prefix in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
        message = message.replace(prefix + os.sep, "").replace(prefix, ".")
    message = " ".join(_POSITION.sub("", message).split())
    path = _display(finding.file, root) if finding.file else ""
    parts = (path, finding.code, finding.service or "", finding.migration or "",
             finding.environment or "", message)
    return "\0".join(parts)


def fingerprints(findings: Sequence[Finding], root: Path) -> list[str]:
    """A sha256 per finding: stable across runs and checkouts, unique within the list.

    Findings that normalise to the same identity (say, the same problem on two lines) get the
    occurrence number mixed in, counted in the order of ``findings`` (callers sort them), so
    the first keeps the plain fingerprint and the others stay distinct and reproducible.
    """
    seen: Counter[str] = Counter()
    out: list[str] = []
    for finding in findings:
        identity = _identity(finding, root)
        seen[identity] += 1
        if seen[identity] > 1:
            identity += f"\0#{seen[identity]}"
        out.append(hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest())
    return out


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted, with exact repeats dropped (a finding reported by two items counts once)."""
    return list(dict.fromkeys(sort_findings(findings)))


def _text(finding: Finding, *, details: bool = True) -> str:
    text = finding.message
    if finding.hint:
        text += f"\nhint: {finding.hint}"
    if details and finding.details:
        text += "\n" + finding.details[:4000]
    return text


# --- GitHub Actions -----------------------------------------------------------------------------


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as @actions/core does (``%``, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: the message escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(finding: Finding, *, workspace: Path | None = None) -> str:
    """``::error file=...,line=...,title=...::message`` for one finding.

    ``file`` is relative to ``workspace`` (default ``$GITHUB_WORKSPACE``, else the working
    directory), which is how GitHub maps annotations onto the files of the diff.
    """
    root = workspace or Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    command = "error" if finding.is_error else "warning"
    properties: list[tuple[str, str]] = []
    if finding.file is not None:
        properties.append(("file", _display(finding.file, root)))
        if finding.line:
            properties.append(("line", str(finding.line)))
    properties.append(("title", f"{finding.code} {finding.name}"))
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties)
    return f"::{command} {rendered}::{escape_data(_text(finding))}"


def github_annotations(findings: Iterable[Finding], *, workspace: Path | None = None) -> list[str]:
    """One annotation per finding, errors first, without repeats; plus a notice when GitHub
    will not show them all (it shows the first 10 errors and 10 warnings of a step)."""
    ordered = sorted(_ordered(findings), key=lambda f: not f.is_error)
    lines = list(dict.fromkeys(github_annotation(f, workspace=workspace) for f in ordered))
    errors = sum(line.startswith("::error") for line in lines)
    hidden = max(0, errors - ANNOTATIONS_SHOWN) + max(0, len(lines) - errors - ANNOTATIONS_SHOWN)
    if hidden:
        lines.append(f"::notice title={TOOL_NAME}::{hidden} more finding(s) than GitHub shows "
                     "as annotations; the job summary lists all of them")
    return lines


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (HTML would swallow ``<version>``)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\r", "").replace(
        "\n", "<br>")


def github_step_summary(findings: Iterable[Finding], *, workspace: Path | None = None) -> str:
    """A Markdown report for ``$GITHUB_STEP_SUMMARY``: counts, then one table row per finding."""
    root = workspace or Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    ordered = sorted(_ordered(findings), key=lambda f: not f.is_error)
    errors = sum(f.is_error for f in ordered)
    warnings = len(ordered) - errors
    lines = [f"### {TOOL_NAME}: {errors} error(s), {warnings} warning(s)", ""]
    if not ordered:
        lines.append("No findings: every migration check passed.")
        return "\n".join(lines) + "\n"
    lines += ["| | Code | Service | Where | Problem | What to do |",
              "|---|---|---|---|---|---|"]
    for finding in ordered[:SUMMARY_MAX_ROWS]:
        mark = "❌ error" if finding.is_error else "⚠️ warning"
        where = _display(finding.file, root) if finding.file else ""
        if where and finding.line:
            where += f":{finding.line}"
        migration = f" / {finding.migration}" if finding.migration else ""
        lines.append(
            f"| {mark} | `{finding.code}` {_cell(finding.name)} "
            f"| {_cell((finding.service or '') + migration)} | {_cell(where)} "
            f"| {_cell(finding.message)} | {_cell(finding.hint)} |"
        )
    if len(ordered) > SUMMARY_MAX_ROWS:
        rest = len(ordered) - SUMMARY_MAX_ROWS
        lines += ["", f"… and {rest} more finding(s); see the job log."]
    return "\n".join(lines) + "\n"


# --- GitLab Code Quality ------------------------------------------------------------------------


def codequality_severity(finding: Finding) -> str:
    """``critical`` for errors that concern deployed databases (integrity, database round
    trip), ``major`` for other errors, ``minor`` for warnings."""
    if not finding.is_error:
        return "minor"
    return "critical" if finding.family in CRITICAL_FAMILIES else "major"


def codequality_report(findings: Iterable[Finding], root: Path) -> list[dict[str, Any]]:
    """A GitLab Code Quality report (a Code Climate issue list) with repository-relative paths.

    Findings without a file point at the repository root (``.``); give them a place with
    :func:`with_fallback_locations` first.
    """
    ordered = _ordered(findings)
    report = []
    for finding, fingerprint in zip(ordered, fingerprints(ordered, root)):
        report.append({
            "type": "issue",
            "check_name": finding.code,
            "description": f"{finding.code} {finding.name}: {finding.message}",
            "content": {"body": finding.hint},
            "categories": ["Bug Risk"],
            "fingerprint": fingerprint,
            "severity": codequality_severity(finding),
            "location": {
                "path": _display(finding.file, root) if finding.file else ".",
                "lines": {"begin": finding.line or 1},
            },
        })
    return report


# --- SARIF 2.1.0 --------------------------------------------------------------------------------


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.summary} {rule.hint}".strip()},
        "help": {"text": rule.hint or rule.summary},
        "defaultConfiguration": {"level": _level(rule.severity)},
        "properties": {
            "tags": ["migrations", rule.family.value],
            "problem.severity": _level(rule.severity),
        },
    }


def _artifact_uri(path: Path, root: Path) -> dict[str, str]:
    relative = _relative(path, root)
    if relative is None:
        return {"uri": resolve_location(path).as_uri()}
    return {"uri": quote(relative, safe="/"), "uriBaseId": "%SRCROOT%"}


def sarif_report(
    findings: Iterable[Finding], rules: Iterable[Rule], *, root: Path | None = None,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: the rule catalogue and one result per finding.

    ``rules`` is normally :func:`pytest_migorch.catalogue.all_rules`; codes a finding uses that
    the catalogue lacks (a conftest's own checks) get a rule made from the finding, since
    every ``ruleId`` should resolve. URIs are relative to ``root`` (the repository root).
    """
    base = root or Path.cwd()
    ordered = _ordered(findings)
    catalogue: dict[str, dict[str, Any]] = {}
    for rule in rules:
        catalogue.setdefault(rule.code, _sarif_rule(rule))
    for finding in ordered:
        if finding.code not in catalogue:
            catalogue[finding.code] = _sarif_rule(Rule(
                finding.code, finding.name, finding.severity, finding.family,
                finding.name, finding.hint,
            ))
    index = {code: position for position, code in enumerate(catalogue)}
    results = []
    for finding, fingerprint in zip(ordered, fingerprints(ordered, base)):
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": _level(finding.severity),
            "message": {"text": _text(finding)},
            "partialFingerprints": {"migorchFindingHash/v1": fingerprint},
            "properties": {key: value for key, value in (
                ("service", finding.service), ("migration", finding.migration),
                ("environment", finding.environment)) if value},
        }
        if finding.file is not None:
            location: dict[str, Any] = {"artifactLocation": _artifact_uri(finding.file, base)}
            if finding.line:
                location["region"] = {"startLine": finding.line}
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "informationUri": INFORMATION_URI,
                "version": __version__,
                "semanticVersion": __version__,
                "rules": list(catalogue.values()),
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
