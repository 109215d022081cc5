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
from pytest_migorch.sql.execution_mode import ExecutionMode
from pytest_migorch.sql.facts import OpKind

__all__ = ["OWN_TRANSACTION", "UNCLOSED_TRANSACTION", "RUNS_OUTSIDE_TRANSACTION",
           "GOLANG_MIGRATE_FAILS", "RULES", "transaction_findings"]

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

RUNS_OUTSIDE_TRANSACTION = Rule(
    code="SQL011", name="runs-outside-transaction", severity=Severity.WARNING, family=Family.SQL,
    summary="dependencies.json does not declare \"transactional\", and the file cannot run in "
    "one transaction (a lone statement that cannot run in a transaction block, or transaction "
    "control of its own): it runs statement by statement as golang-migrate runs it, with the "
    "dirty flag set until it completes.",
    hint="Declare \"transactional\": false for the migration in dependencies.json.",
)

GOLANG_MIGRATE_FAILS = Rule(
    code="SQL012", name="no-transaction-statement-in-transaction", severity=Severity.ERROR,
    family=Family.SQL,
    summary="The file has a statement PostgreSQL refuses inside a transaction block (CREATE "
    "INDEX CONCURRENTLY, VACUUM, ...) but runs in one: golang-migrate sends a file of several "
    "statements as one implicit transaction, and a declared \"transactional\": true runs it in "
    "migorch's.",
    hint="Put the statement in a migration of its own, or declare \"transactional\": false.",
)

RULES: tuple[Rule, ...] = (OWN_TRANSACTION, UNCLOSED_TRANSACTION, RUNS_OUTSIDE_TRANSACTION,
                           GOLANG_MIGRATE_FAILS)


def transaction_findings(analysis: SqlAnalysis, path: Path, migration: Migration,
                         silencer: Silencer, where: dict[str, Any],
                         mode: ExecutionMode | None = None) -> list[Finding]:
    """SQL006 (files run in a transaction only), SQL008, SQL011 and SQL012 of one file.

    ``mode`` is the file's :func:`~pytest_migorch.sql.execution_mode.execution_mode`."""
    findings: list[Finding] = []
    transactional = mode.transactional if mode is not None else migration.transactional
    if transactional:
        findings += _transaction_control(analysis, path, migration, silencer, where)
    findings += _unclosed(analysis, path, silencer, where)
    if mode is not None:
        findings += _mode_findings(mode, path, where)
    return findings


def _mode_findings(mode: ExecutionMode, path: Path, where: dict[str, Any]) -> list[Finding]:
    """SQL011 when the SQL made the file run outside a transaction; SQL012 (down files and
    statements RSK010 does not see) where it runs in one but cannot."""
    if mode.derived:
        first = (mode.control[0] if mode.control else mode.no_transaction[0][0])
        return [RUNS_OUTSIDE_TRANSACTION.finding(
            f"the file runs outside a transaction: {mode.reason()}; declare "
            "\"transactional\": false in dependencies.json to say so",
            file=path, line=first.line, **where)]
    if not mode.transactional or not mode.no_transaction:
        return []
    is_down = path.name.endswith(".down.sql")
    missed = [(s, n) for s, n in mode.no_transaction
              if is_down or "CONCURRENTLY" not in n and n != "VACUUM"]
    if not missed:
        return []  # RSK010 reports it on the up file, with the risk rules
    statement, name = missed[0]
    runs = ("golang-migrate runs this file of several statements as one implicit transaction"
            if mode.declared is None else "it is declared \"transactional\": true")
    return [GOLANG_MIGRATE_FAILS.finding(
        f"{name} cannot run inside a transaction block (line {statement.line}): {runs}",
        file=path, line=statement.line, **where)]


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
