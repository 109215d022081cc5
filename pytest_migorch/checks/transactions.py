"""Transaction control in a migration file: what the runner refuses, and what never closes.

migorch runs a transactional migration inside the transaction that also records its version, so
a file may not control that transaction itself (``SQL006``) beyond one BEGIN/COMMIT around the
whole file, which the runner drops. Independently of that, a file that opens a transaction and
never closes it (``BEGIN; INSERT ...;`` with no COMMIT or ROLLBACK, ``SQL008``) leaves the
session inside an open transaction: golang-migrate's own runner then records the version while
the work is still uncommitted and lost when the connection closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_migorch.checks.ignores import Silencer
from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import Migration
from pytest_migorch.sql.analysis import SqlAnalysis, StatementAnalysis
from pytest_migorch.sql.facts import OpKind

__all__ = ["OWN_TRANSACTION", "UNCLOSED_TRANSACTION", "RULES", "transaction_findings"]

OWN_TRANSACTION = Rule(
    code="SQL006", name="transaction-control-in-transaction", severity=Severity.ERROR,
    family=Family.SQL,
    summary="A transactional migration controls the transaction itself (COMMIT, ROLLBACK, "
    "SAVEPOINT... other than one BEGIN/COMMIT around the whole file): migorch runs it inside "
    "the transaction that also records it, and refuses such a file.",
    hint="Remove the transaction control, or mark the migration \"transactional\": false in "
    "dependencies.json.",
)

UNCLOSED_TRANSACTION = Rule(
    code="SQL008", name="unclosed-transaction", severity=Severity.ERROR, family=Family.SQL,
    summary="The file opens a transaction (BEGIN or START TRANSACTION) that no later COMMIT or "
    "ROLLBACK closes: the work stays uncommitted and is lost when the connection closes.",
    hint="End the transaction with COMMIT at the end of the file, or remove the BEGIN.",
)

RULES: tuple[Rule, ...] = (OWN_TRANSACTION, UNCLOSED_TRANSACTION)


def transaction_findings(analysis: SqlAnalysis, path: Path, migration: Migration,
                         silencer: Silencer, where: dict[str, Any]) -> list[Finding]:
    """SQL006 (transactional migrations only) and SQL008 of one file."""
    findings: list[Finding] = []
    if migration.transactional:
        findings += _transaction_control(analysis, path, migration, silencer, where)
    findings += _unclosed(analysis, path, silencer, where)
    return findings


def _unclosed(analysis: SqlAnalysis, path: Path, silencer: Silencer,
              where: dict[str, Any]) -> list[Finding]:
    """SQL008 at the BEGIN that is still open when the file ends."""
    opened: StatementAnalysis | None = None
    for statement in analysis.statements:
        detail = _tx_detail(statement)
        if detail == "begin" and opened is None:
            opened = statement
        elif detail in ("commit", "rollback"):
            opened = None
    if opened is None or silencer.silenced(str(path), opened, UNCLOSED_TRANSACTION.code):
        return []
    return [UNCLOSED_TRANSACTION.finding(
        f"{opened.kind} at line {opened.line} opens a transaction that no COMMIT or ROLLBACK "
        "after it closes", file=path, line=opened.line, **where)]


def _transaction_control(analysis: SqlAnalysis, path: Path, migration: Migration,
                         silencer: Silencer, where: dict[str, Any]) -> list[Finding]:
    """SQL006: transaction control the runner cannot honour in a transactional migration.

    Like the runner, a BEGIN as the first statement (and then a COMMIT as the last) is a
    wrapper that is simply dropped; any other transaction control is refused.
    """
    statements = analysis.statements
    control = [s for s in statements if any(op.op is OpKind.TRANSACTION for op in s.ops)]
    wrapper: set[int] = set()
    if statements and _tx_detail(statements[0]) == "begin":
        wrapper.add(statements[0].index)
        if len(statements) > 1 and _tx_detail(statements[-1]) == "commit":
            wrapper.add(statements[-1].index)
    offending = [s for s in control if s.index not in wrapper
                 and not silencer.silenced(str(path), s, OWN_TRANSACTION.code)]
    if not offending:
        return []
    first = offending[0]
    severity = None if migration.meta is not None else Severity.WARNING
    return [OWN_TRANSACTION.finding(
        f"{first.kind} at line {first.line} controls the transaction inside a transactional "
        "migration; the runner refuses it (only a BEGIN/COMMIT around the whole file is "
        "dropped)", file=path, line=first.line, severity=severity, **where)]


def _tx_detail(statement: StatementAnalysis) -> str | None:
    return next((op.detail for op in statement.ops if op.op is OpKind.TRANSACTION), None)
