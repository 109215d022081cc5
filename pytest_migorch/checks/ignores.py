"""``-- migorch:ignore`` comments: which findings they silence, and which silence nothing.

Two kinds exist: ``-- migorch:ignore CODE reason`` silences ``CODE`` at one statement (parsed
with the statements, :func:`pytest_migorch.sql.split.parse_ignore`), and
``-- migorch:ignore-file CODE reason`` at the top of a file silences ``CODE`` in the whole file
(parsed here, :func:`file_ignores`), for a historical file that breaks one rule everywhere.

A migration's checks (:mod:`pytest_migorch.checks.migration`) ask one :class:`Silencer` per
migration whether a code is silenced at a statement; it remembers every use, so that afterwards
:meth:`Silencer.unused` can report each comment (or code in one) that silenced nothing
(``SQL005``): a stale ignore hides the next real finding at that statement. An ignore without a
reason is a warning too (``SQL009``, :meth:`Silencer.reasonless`): the next reader must learn why
the rule does not apply without asking the author.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.sql.analysis import SqlAnalysis, StatementAnalysis
from pytest_migorch.sql.split import IgnoreComment, parse_ignore

__all__ = ["UNUSED_IGNORE", "IGNORE_WITHOUT_REASON", "RULES", "Silencer", "silenceable",
           "file_ignores", "ROUND_TRIP_SILENCEABLE"]

#: The codes an ignore comment in an up file silences in the round-trip, which the static
#: checks neither run nor judge: whether such an ignore silences anything is known only in the
#: database (``pytest_migorch.roundtrip.data_checks.SILENCEABLE``, which a test keeps equal).
ROUND_TRIP_SILENCEABLE = frozenset({"DB011", "DB012", "DB013", "DB014", "DB015"})
#: Every round-trip code: the others (DB001 to DB010) no comment silences.
_ROUND_TRIP_CODE = re.compile(r"^DB\d{3}$")

UNUSED_IGNORE = Rule(
    code="SQL005", name="unused-ignore", severity=Severity.WARNING, family=Family.SQL,
    summary="A `-- migorch:ignore` comment silences nothing: no such finding at the statement "
    "after it, or the code is not a SQL or risk rule.",
    hint="Remove the comment or fix the code in it.",
)

IGNORE_WITHOUT_REASON = Rule(
    code="SQL009", name="ignore-without-reason", severity=Severity.WARNING, family=Family.SQL,
    summary="A `-- migorch:ignore` or `-- migorch:ignore-file` comment gives no reason after "
    "its codes.",
    hint="Say why the rule does not apply, e.g. `-- migorch:ignore RSK003 unused since v2.3`.",
)

RULES: tuple[Rule, ...] = (UNUSED_IGNORE, IGNORE_WITHOUT_REASON)

_FILE_IGNORE = re.compile(r"^--\s*migorch:ignore-file(?![\w-])(?P<rest>.*)$", re.IGNORECASE)
#: ``Silencer.used`` records a file-wide use under this statement index.
_WHOLE_FILE = -1


def file_ignores(text: str) -> list[IgnoreComment]:
    """Every ``-- migorch:ignore-file CODE[, CODE] [reason]`` line of ``text`` (1-based lines).

    Whether one stands at the top (before the first statement) is decided by the caller, which
    knows where the first statement is.
    """
    found: list[IgnoreComment] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FILE_IGNORE.match(line.strip())
        if match is not None:
            parsed = parse_ignore("-- migorch:ignore" + match.group("rest"))
            if parsed is not None:
                found.append(IgnoreComment(parsed[0], number, parsed[1]))
    return found


def silenceable(rules: Iterable[Rule]) -> dict[str, str]:
    """What an ignore comment may name (a code or a rule name) -> the rule's code."""
    return {key: rule.code for rule in rules for key in (rule.code, rule.name)}


class Silencer:
    """Applies ignore comments and remembers which codes were used, per file and statement."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known
        self.used: set[tuple[str, int, str]] = set()
        #: ``ignore-file`` comments at the top of each file, and those below its first statement.
        self.file_wide: dict[str, list[IgnoreComment]] = {}
        self.misplaced: dict[str, list[IgnoreComment]] = {}

    def read_file_ignores(self, file_key: str, text: str, analysis: SqlAnalysis) -> None:
        """Register the ``ignore-file`` comments of one file (those at its top apply)."""
        first = analysis.statements[0].line if analysis.statements else None
        for ignore in file_ignores(text):
            above = first is None or ignore.line < first
            (self.file_wide if above else self.misplaced).setdefault(file_key, []).append(ignore)

    def silenced(self, file_key: str, statement: StatementAnalysis, code: str) -> bool:
        if code in self.codes(statement):
            self.used.add((file_key, statement.index, code))
            return True
        if code in {self.known.get(c, c) for i in self.file_wide.get(file_key, ())
                    for c in i.codes}:
            self.used.add((file_key, _WHOLE_FILE, code))
            return True
        return False

    def reasonless(self, file_key: str, analysis: SqlAnalysis, file: Path,
                   where: dict[str, Any]) -> list[Finding]:
        """``SQL009`` for each ignore that names codes but gives no reason (one that names
        no code is already ``SQL005``)."""
        comments = [*self.file_wide.get(file_key, ()), *analysis.orphan_ignores,
                    *(i for st in analysis.statements for i in st.ignores)]
        return [IGNORE_WITHOUT_REASON.finding(
                    f"`-- migorch:ignore{'-file' if i in self.file_wide.get(file_key, ()) else ''}"
                    f" {', '.join(i.codes)}` gives no reason", file=file, line=i.line, **where)
                for i in sorted(set(comments), key=lambda i: i.line)
                if i.codes and not i.reason]

    def codes(self, statement: StatementAnalysis) -> set[str]:
        """The rule codes the statement's ignore comments name (rule names resolved)."""
        return {self.known.get(c, c) for c in statement.ignored_codes}

    def unused(self, file_key: str, analysis: SqlAnalysis, file: Path,
               where: dict[str, Any], risk_checked: bool) -> list[Finding]:
        findings: list[Finding] = []
        for statement in analysis.statements:
            for ignore in statement.ignores:
                idle = [c for c in ignore.codes if c not in ROUND_TRIP_SILENCEABLE
                        and (file_key, statement.index, self.known.get(c, "")) not in self.used]
                if idle or not ignore.codes:
                    findings.append(UNUSED_IGNORE.finding(
                        self._message(idle, risk_checked), file=file, line=ignore.line, **where))
        for ignore in analysis.orphan_ignores:
            findings.append(UNUSED_IGNORE.finding(
                "`-- migorch:ignore` stands after the last statement and applies to none",
                file=file, line=ignore.line, **where))
        return findings + self._unused_file_wide(file_key, file, where, risk_checked)

    def _unused_file_wide(self, file_key: str, file: Path, where: dict[str, Any],
                          risk_checked: bool) -> list[Finding]:
        findings: list[Finding] = []
        for ignore in self.file_wide.get(file_key, ()):
            idle = [c for c in ignore.codes if c not in ROUND_TRIP_SILENCEABLE
                    and (file_key, _WHOLE_FILE, self.known.get(c, "")) not in self.used]
            if idle or not ignore.codes:
                message = self._message(idle, risk_checked).replace(
                    "migorch:ignore", "migorch:ignore-file").replace("at this statement",
                                                                     "in this file")
                findings.append(UNUSED_IGNORE.finding(message, file=file, line=ignore.line,
                                                      **where))
        for ignore in self.misplaced.get(file_key, ()):
            findings.append(UNUSED_IGNORE.finding(
                "`-- migorch:ignore-file` stands below the first statement and applies to "
                "nothing; move it to the top of the file", file=file, line=ignore.line,
                **where))
        return findings

    def _message(self, idle: list[str], risk_checked: bool) -> str:
        if not idle:
            return "`-- migorch:ignore` names no code"
        unknown = [c for c in idle if c not in self.known and not _ROUND_TRIP_CODE.match(c)]
        fixed = [c for c in idle if _ROUND_TRIP_CODE.match(c)]
        text = f"`-- migorch:ignore {', '.join(idle)}` silences nothing at this statement"
        if fixed:
            text += (f" ({', '.join(fixed)}: a round-trip finding no comment silences; only "
                     f"{', '.join(sorted(ROUND_TRIP_SILENCEABLE))} can be)")
        if unknown:
            text += f" ({', '.join(unknown)}: not a SQL or risk rule)"
        elif not risk_checked and any(self.known[c].startswith("RSK") for c in idle):
            text += " (risk rules are checked on up files only)"
        return text
