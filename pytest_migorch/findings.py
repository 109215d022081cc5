"""The one findings model for everything pytest-migorch reports.

A :class:`Rule` is a catalogue entry: a stable code, a short name, a severity, the check family it
belongs to and a hint that says what to do. A :class:`Finding` is one occurrence of a rule at a
place (file and line, service, migration, environment). Every front end (the ``migorch`` CLI, the
pytest items, the CI reports) renders the same findings, so a problem reads the same everywhere.

Rules are defined next to the code that detects them (each module exposes ``RULES``);
:mod:`pytest_migorch.catalogue` collects them for documentation and lookup.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "Severity", "Family", "Rule", "Finding", "sort_findings", "has_errors", "clip",
]


class Severity(str, enum.Enum):
    """How bad a finding is: errors fail checks, warnings inform (and fail under ``--strict``)."""

    ERROR = "error"
    WARNING = "warning"


class Family(str, enum.Enum):
    """The check family of a rule; each becomes its own generated pytest item."""

    CONFIG = "config"
    FILES = "files"
    GRAPH = "graph"
    SQL = "sql"
    RISK = "risk"
    DATABASE = "database"
    INTEGRITY = "integrity"
    #: A team's own checks (:mod:`pytest_migorch.checks.custom`, the pytest hooks).
    CUSTOM = "custom"


@dataclass(frozen=True)
class Rule:
    """A catalogue entry. ``summary`` says what is wrong in general; ``hint`` what to do."""

    code: str
    name: str
    severity: Severity
    family: Family
    summary: str
    hint: str

    def finding(
        self,
        message: str,
        *,
        file: Path | None = None,
        line: int | None = None,
        service: str | None = None,
        migration: str | None = None,
        environment: str | None = None,
        hint: str | None = None,
        severity: Severity | None = None,
        details: str | None = None,
    ) -> Finding:
        """Create a finding of this rule at a place; ``hint`` overrides the generic one."""
        return Finding(
            code=self.code,
            name=self.name,
            severity=severity or self.severity,
            family=self.family,
            message=message,
            hint=hint if hint is not None else self.hint,
            file=file,
            line=line,
            service=service,
            migration=migration,
            environment=environment,
            details=details,
        )


@dataclass(frozen=True)
class Finding:
    """One problem at one place. ``details`` holds extra text such as a schema diff."""

    code: str
    name: str
    severity: Severity
    family: Family
    message: str
    hint: str
    file: Path | None = None
    line: int | None = None
    service: str | None = None
    migration: str | None = None
    environment: str | None = None
    details: str | None = field(default=None, compare=False)
    #: Every service the finding concerns when that is more than its own (a cycle across
    #: services): validating any of them shows it, and it is still one finding.
    services: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self, relative_to: Path | None = None) -> str:
        """``path:line`` as a compiler prints it (path relative to ``relative_to`` when inside)."""
        if self.file is None:
            return self.service or "<project>"
        path = display_path(self.file, relative_to)
        return f"{path}:{self.line}" if self.line else path

    def render(self, relative_to: Path | None = None) -> str:
        """One compiler-style line plus the hint: ``path:line: CODE message``."""
        text = f"{self.location(relative_to)}: {self.severity.value} {self.code} {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        if self.details:
            text += "\n" + "\n".join("    " + line for line in self.details.splitlines())
        return text

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The documented JSON shape of a finding (see docs/findings.md)."""
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "check": self.family.value,
            "service": self.service,
            "migration": self.migration,
            "environment": self.environment,
            "file": display_path(self.file, relative_to) if self.file else None,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        """The inverse of :meth:`to_json` (used to carry findings between processes)."""
        return cls(
            code=data["code"], name=data["name"], severity=Severity(data["severity"]),
            family=Family(data["check"]), message=data["message"], hint=data["hint"],
            file=Path(data["file"]) if data.get("file") else None, line=data.get("line"),
            service=data.get("service"), migration=data.get("migration"),
            environment=data.get("environment"), details=data.get("details"),
        )

    def escalated(self) -> Finding:
        """The same finding as an error (``--strict`` turns warnings into errors)."""
        return replace(self, severity=Severity.ERROR)


def resolve_location(path: Path) -> Path:
    """``path`` resolved; for a link that loops or dangles, only its directory is resolved.

    A finding may be about such a link; resolving the link itself would raise (``RuntimeError:
    Symlink loop``) or name a target that does not exist instead of the file.
    """
    if path.is_symlink() and not path.exists():
        return path.parent.resolve() / path.name
    return path.resolve()


def display_path(path: Path, relative_to: Path | None = None) -> str:
    """A path relative to ``relative_to`` (or the working directory) when it lies inside it."""
    base = relative_to or Path.cwd()
    try:
        return str(resolve_location(path).relative_to(base.resolve()))
    except ValueError:
        return str(path)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Deterministic order: by service, file, line, then code."""
    return sorted(
        findings,
        key=lambda f: (f.service or "", str(f.file or ""), f.line or 0, f.code, f.message),
    )


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.is_error for f in findings)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut.

    Findings quote user input (a depends_on entry, a schema error, a statement); a runaway value
    must not turn one line of a report into a page.
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."
