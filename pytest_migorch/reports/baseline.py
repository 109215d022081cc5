"""The baseline file: the findings a project already had when it adopted pytest-migorch.

Without a git base (a first adoption, a release branch, a local run) the history still must not
drown the change. ``migorch baseline`` records every current finding in
``migorch-baseline.json``; later runs report only findings that are not in it and count the rest.

A finding is recorded by a fingerprint that survives unrelated edits: its code, service,
migration, environment and file name, the text of the statement it is about (whitespace
collapsed) and its message with numbers blanked, never its line. Adding a comment above a
statement or a migration elsewhere changes no fingerprint; editing the statement does, so the
edited statement is checked again. The same fingerprint may occur several times (two identical
statements); the file records each occurrence, and each recorded occurrence hides one.

A recorded finding that no longer occurs is *stale*: it is named once, and
``migorch baseline --update`` rewrites the file without it (and without adding anything new).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Finding, display_path, sort_findings
from pytest_migorch.reports.selection import ALWAYS_SHOWN

if TYPE_CHECKING:  # the splitter is loaded when a finding is fingerprinted, not to print
    from pytest_migorch.sql.split import Statement

__all__ = [
    "BASELINE_FILE", "BASELINE_FORMAT", "BaselineEntry", "Baseline", "BaselineSelection",
    "Fingerprinter", "default_baseline_path", "load_baseline", "write_baseline",
]

BASELINE_FILE = "migorch-baseline.json"
BASELINE_FORMAT = "migorch-baseline"
BASELINE_VERSION = 1

_NUMBER = re.compile(r"\b\d+\b")


def default_baseline_path(root: Path) -> Path:
    """``migorch-baseline.json`` beside the services root (``services/`` -> ``./``)."""
    return Path(root).resolve().parent / BASELINE_FILE


@dataclass(frozen=True)
class BaselineEntry:
    """One recorded occurrence; the fields besides ``fingerprint`` are for the reviewer."""

    fingerprint: str
    code: str
    service: str | None = None
    migration: str | None = None
    file: str | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "code": self.code, "service": self.service,
                "migration": self.migration, "file": self.file, "message": self.message}

    def describe(self) -> str:
        where = ":".join(part for part in (self.service, self.migration) if part) or "project"
        return f"{self.code} {where}: {self.message}"


class Fingerprinter:
    """Computes fingerprints, reading (and splitting) each SQL file once.

    ``root`` is the services root: its directory is removed from messages (a symbolic link's
    target, say), so a baseline written on a laptop holds in CI's checkout elsewhere.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._statements: dict[Path, list[Statement]] = {}
        self._anchors: list[str] = []
        if root is not None:
            top = Path(root).parent
            self._anchors = sorted({str(top), str(top.resolve())}, key=len, reverse=True)

    def _message(self, message: str) -> str:
        for anchor in self._anchors:
            message = message.replace(anchor, "")
        return _NUMBER.sub("#", message)

    def __call__(self, finding: Finding) -> str:
        statement = self._statement(finding)
        parts = [finding.code, finding.service or "", finding.migration or "",
                 finding.environment or "", finding.file.name if finding.file else "",
                 " ".join(statement.text.split()) if statement is not None else "",
                 self._message(finding.message)]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]

    def _statement(self, finding: Finding) -> Statement | None:
        if finding.file is None or finding.line is None or finding.file.suffix != ".sql":
            return None
        statements = self._statements.get(finding.file)
        if statements is None:
            try:
                text = finding.file.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            from pytest_migorch.sql.split import split_statements

            statements = self._statements[finding.file] = split_statements(text)
        for statement in statements:
            if statement.line <= finding.line <= statement.end_line:
                return statement
        return None

    def entry(self, finding: Finding, relative_to: Path | None = None) -> BaselineEntry:
        return BaselineEntry(
            fingerprint=self(finding), code=finding.code, service=finding.service,
            migration=finding.migration,
            file=display_path(finding.file, relative_to) if finding.file else None,
            message=finding.message)


@dataclass
class Baseline:
    """The recorded occurrences of one baseline file."""

    path: Path
    entries: list[BaselineEntry] = field(default_factory=list)

    @classmethod
    def of(cls, path: Path, findings: Iterable[Finding], relative_to: Path | None = None,
           root: Path | None = None) -> Baseline:
        """A baseline recording every finding a baseline may hide (``root``: the services
        root, see :class:`Fingerprinter`)."""
        fingerprint = Fingerprinter(root)
        return cls(path, [fingerprint.entry(f, relative_to) for f in sort_findings(findings)
                          if f.family not in ALWAYS_SHOWN])

    def to_json(self) -> dict[str, Any]:
        entries = sorted(self.entries, key=lambda e: (e.service or "", e.migration or "",
                                                      e.code, e.fingerprint))
        return {"format": BASELINE_FORMAT, "version": BASELINE_VERSION,
                "comment": "Findings recorded by `migorch baseline`; they are counted, not "
                "shown. Remove entries as you fix them (`migorch baseline --update`).",
                "findings": [e.to_json() for e in entries]}


def write_baseline(baseline: Baseline) -> None:
    """Write ``baseline`` (sorted, one entry per occurrence, so diffs review well)."""
    text = json.dumps(baseline.to_json(), indent=2) + "\n"
    try:
        baseline.path.parent.mkdir(parents=True, exist_ok=True)
        baseline.path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the baseline {baseline.path}: {exc.strerror}") from exc


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; a missing, corrupt or foreign file is a ConfigurationError that
    names it and says what to do (never silently ignored: that would show the whole history)."""
    redo = "regenerate it with `migorch baseline` or point --baseline at the right file"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the baseline {path}: {exc.strerror}") from exc
    except ValueError as exc:  # JSON and UTF-8 errors alike
        raise ConfigurationError(f"{path} is not valid JSON ({exc}); {redo}") from exc
    if not isinstance(document, dict) or document.get("format") != BASELINE_FORMAT:
        raise ConfigurationError(
            f"{path} is not a migorch baseline (no \"format\": \"{BASELINE_FORMAT}\"); {redo}")
    if document.get("version") != BASELINE_VERSION:
        raise ConfigurationError(
            f"{path} has baseline version {document.get('version')!r}, this migorch reads "
            f"version {BASELINE_VERSION}; {redo}")
    rows = document.get("findings")
    if not isinstance(rows, list):
        raise ConfigurationError(f"{path}: \"findings\" must be a list; {redo}")
    entries: list[BaselineEntry] = []
    for number, row in enumerate(rows, start=1):
        if (not isinstance(row, dict) or not isinstance(row.get("fingerprint"), str)
                or not isinstance(row.get("code"), str)):
            raise ConfigurationError(
                f"{path}: finding {number} needs a \"fingerprint\" and a \"code\" string; {redo}")
        entries.append(BaselineEntry(
            fingerprint=row["fingerprint"], code=row["code"], service=_text(row, "service"),
            migration=_text(row, "migration"), file=_text(row, "file"),
            message=str(row.get("message") or "")))
    return Baseline(path, entries)


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) else None


class BaselineSelection:
    """Hides one current finding per recorded occurrence; what is left over is stale."""

    def __init__(self, baseline: Baseline, fingerprinter: Fingerprinter | None = None) -> None:
        self.baseline = baseline
        self.fingerprint = fingerprinter or Fingerprinter()
        self._left = Counter(e.fingerprint for e in baseline.entries)

    def shows(self, finding: Finding) -> bool:
        if finding.family in ALWAYS_SHOWN:
            return True
        key = self.fingerprint(finding)
        if self._left[key] > 0:
            self._left[key] -= 1
            return False
        return True

    def stale(self) -> list[BaselineEntry]:
        """Recorded occurrences no finding matched (call after every finding was seen)."""
        left = Counter(self._left)
        stale: list[BaselineEntry] = []
        for entry in self.baseline.entries:
            if left[entry.fingerprint] > 0:
                left[entry.fingerprint] -= 1
                stale.append(entry)
        return stale

    def without_stale(self) -> Baseline:
        """The baseline with its stale occurrences removed (``migorch baseline --update``)."""
        gone = Counter(e.fingerprint for e in self.stale())
        kept: list[BaselineEntry] = []
        for entry in self.baseline.entries:
            if gone[entry.fingerprint] > 0:
                gone[entry.fingerprint] -= 1
            else:
                kept.append(entry)
        return Baseline(self.baseline.path, kept)
