"""``-- migorch:ignore`` comments: which findings they silence, and which silence nothing.

A migration's checks (:mod:`pytest_migorch.checks.migration`) ask one :class:`Silencer` per
migration whether a code is silenced at a statement; it remembers every use, so that afterwards
:meth:`Silencer.unused` can report each comment (or code in one) that silenced nothing
(``SQL005``): a stale ignore hides the next real finding at that statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.sql.analysis import SqlAnalysis, StatementAnalysis

__all__ = ["UNUSED_IGNORE", "RULES", "Silencer", "silenceable"]

UNUSED_IGNORE = Rule(
    code="SQL005", name="unused-ignore", severity=Severity.WARNING, family=Family.SQL,
    summary="A `-- migorch:ignore` comment silences nothing: no such finding at the statement "
    "after it, or the code is not a SQL or risk rule.",
    hint="Remove the comment or fix the code in it.",
)

RULES: tuple[Rule, ...] = (UNUSED_IGNORE,)


def silenceable(rules: Iterable[Rule]) -> dict[str, str]:
    """What an ignore comment may name (a code or a rule name) -> the rule's code."""
    return {key: rule.code for rule in rules for key in (rule.code, rule.name)}


class Silencer:
    """Applies ignore comments and remembers which codes were used, per file and statement."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known
        self.used: set[tuple[str, int, str]] = set()

    def silenced(self, file_key: str, statement: StatementAnalysis, code: str) -> bool:
        if code in self.codes(statement):
            self.used.add((file_key, statement.index, code))
            return True
        return False

    def codes(self, statement: StatementAnalysis) -> set[str]:
        """The rule codes the statement's ignore comments name (rule names resolved)."""
        return {self.known.get(c, c) for c in statement.ignored_codes}

    def unused(self, file_key: str, analysis: SqlAnalysis, file: Path,
               where: dict[str, Any], risk_checked: bool) -> list[Finding]:
        findings: list[Finding] = []
        for statement in analysis.statements:
            for ignore in statement.ignores:
                idle = [c for c in ignore.codes
                        if (file_key, statement.index, self.known.get(c, "")) not in self.used]
                if idle or not ignore.codes:
                    findings.append(UNUSED_IGNORE.finding(
                        self._message(idle, risk_checked), file=file, line=ignore.line, **where))
        for ignore in analysis.orphan_ignores:
            findings.append(UNUSED_IGNORE.finding(
                "`-- migorch:ignore` stands after the last statement and applies to none",
                file=file, line=ignore.line, **where))
        return findings

    def _message(self, idle: list[str], risk_checked: bool) -> str:
        if not idle:
            return "`-- migorch:ignore` names no code"
        unknown = [c for c in idle if c not in self.known]
        text = f"`-- migorch:ignore {', '.join(idle)}` silences nothing at this statement"
        if unknown:
            text += f" ({', '.join(unknown)}: not a SQL or risk rule)"
        elif not risk_checked and any(self.known[c].startswith("RSK") for c in idle):
            text += " (risk rules are checked on up files only)"
        return text
