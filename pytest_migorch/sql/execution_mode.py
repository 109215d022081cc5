"""How a migration file runs: in our transaction, or the way golang-migrate runs it.

golang-migrate's PostgreSQL driver sends a whole file as ONE simple-query message. PostgreSQL
then runs a file of one statement outside any transaction block (so a lone ``CREATE INDEX
CONCURRENTLY`` works), a file of several statements as one implicit transaction (so the same
statement there fails: "cannot run inside a transaction block"), and a file's own
``BEGIN; ... COMMIT;`` blocks as written. migorch runs a transactional migration inside the
transaction that also records it, which is safer, but must not turn a file golang-migrate applies
cleanly into a failure.

This module is the ONE decision the round-trip, the runner, the plan and the static checks use:
:func:`execution_mode`. When dependencies.json declares ``"transactional"`` that is the mode.
When it does not, a file with a statement that cannot run in a transaction (alone in the file),
or with transaction control of its own (beyond one BEGIN/COMMIT around the whole file, which we
drop), runs statement by statement outside our transaction, honouring its own BEGIN/COMMIT,
with golang-migrate's dirty flag set around it. It is pure (no psycopg): it reads the text only.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

from pytest_migorch.model import Migration, MigrationFile
from pytest_migorch.sql.split import Statement, split_statements

__all__ = ["ExecutionMode", "execution_mode", "SqlMode", "sql_mode", "remember_sql_mode",
           "file_execution_mode", "no_transaction_reason", "is_transaction_control",
           "own_transaction_control", "drop_wrapper"]

_BEGIN = re.compile(r"(?is)\s*(BEGIN|START\s+TRANSACTION)(\s+(WORK|TRANSACTION)\b.*)?\s*")
_COMMIT = re.compile(r"(?is)\s*(COMMIT|END)(\s+(WORK|TRANSACTION))?\s*")
_TRANSACTION_CONTROL = re.compile(
    r"(?is)\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|"
    r"PREPARE\s+TRANSACTION|COMMIT\s+PREPARED|ROLLBACK\s+PREPARED)\b"
)
_W = r"\s+"
#: Statements PostgreSQL refuses inside a transaction block, with the name its error uses.
#: ``ALTER TYPE ... ADD VALUE`` is not here: since PostgreSQL 12 it runs in a transaction.
_NO_TRANSACTION: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(r"(?is)\s*" + pattern), name) for pattern, name in (
        (rf"CREATE{_W}(UNIQUE{_W})?INDEX{_W}CONCURRENTLY\b", "CREATE INDEX CONCURRENTLY"),
        (rf"DROP{_W}INDEX{_W}CONCURRENTLY\b", "DROP INDEX CONCURRENTLY"),
        (rf"REINDEX\b(\s*\([^)]*\))?{_W}\w+{_W}CONCURRENTLY\b", "REINDEX CONCURRENTLY"),
        (rf"REINDEX\b(\s*\([^)]*\))?{_W}(SYSTEM|DATABASE)\b", "REINDEX DATABASE"),
        (rf"ALTER{_W}TABLE\b.*\bDETACH{_W}PARTITION\b.*\bCONCURRENTLY\s*$",
         "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"),
        (r"VACUUM\b", "VACUUM"),
        (rf"CREATE{_W}DATABASE\b", "CREATE DATABASE"),
        (rf"DROP{_W}DATABASE\b", "DROP DATABASE"),
        (rf"CREATE{_W}TABLESPACE\b", "CREATE TABLESPACE"),
        (rf"DROP{_W}TABLESPACE\b", "DROP TABLESPACE"),
        (rf"ALTER{_W}SYSTEM\b", "ALTER SYSTEM"),
        (r"CLUSTER\s*$", "CLUSTER"),
    ))


@dataclass(frozen=True)
class ExecutionMode:
    """How one file runs, and why.

    ``transactional`` is the effective mode: True runs the file inside our transaction (with
    the tracking rows); False runs it statement by statement outside it, golang-migrate's dirty
    flag set before and cleared after. ``declared`` is dependencies.json's value (None when it
    does not say). ``no_transaction`` and ``control`` are the statements that decided it.
    """

    transactional: bool
    declared: bool | None
    statements: int
    no_transaction: tuple[tuple[Statement, str], ...] = ()
    control: tuple[Statement, ...] = ()

    @property
    def derived(self) -> bool:
        """True when the SQL, not dependencies.json, made the file run outside a transaction."""
        return self.declared is None and not self.transactional

    @property
    def golang_migrate_fails(self) -> bool:
        """golang-migrate runs the file as one implicit transaction, so a statement that
        cannot run in one fails there (and in our transaction as well)."""
        return bool(self.no_transaction) and self.transactional and self.declared is None

    def reason(self) -> str:
        """Why the file runs outside a transaction, for the plan and findings."""
        if self.transactional:
            return "runs in one transaction"
        if not self.derived:
            return 'declared "transactional": false'
        if self.control:
            first = self.control[0]
            return (f"its own transaction control ({_keyword(first)} at line {first.line}) "
                    "runs as written, as golang-migrate runs it")
        statement, name = self.no_transaction[0]
        return (f"{name} at line {statement.line} cannot run inside a transaction block; "
                "alone in the file it runs outside one, as golang-migrate runs it")


@functools.lru_cache(maxsize=2048)
def execution_mode(text: str, declared: bool | None) -> ExecutionMode:
    """The execution mode of a file with SQL ``text`` whose migration declares ``declared``.

    Kept per (text, declared) for the process: the plan, the checks and the step that applies
    a file each ask (four splits of every file of an ``up --all``), and the answer, frozen all
    the way down, depends on nothing else."""
    found = sql_mode(text)
    if declared is not None:
        transactional = declared
    else:
        lone = found.statements == 1 and bool(found.no_transaction)
        transactional = not (lone or found.control)
    return ExecutionMode(transactional=transactional, declared=declared,
                         statements=found.statements, no_transaction=found.no_transaction,
                         control=found.control)


class SqlMode(NamedTuple):
    """What a file's SQL alone says of how it runs (:func:`execution_mode` adds the declared)."""

    statements: int
    no_transaction: tuple[tuple[Statement, str], ...]
    control: tuple[Statement, ...]


def sql_mode(text: str) -> SqlMode:
    """:class:`SqlMode` of ``text``: from an analysis worker (:func:`remember_sql_mode`), or
    computed here."""
    known = _known_modes.get(text)
    return known if known is not None else _sql_mode(text)


@functools.lru_cache(maxsize=2048)
def _sql_mode(text: str) -> SqlMode:
    statements = [s for s in split_statements(text) if s.text.strip()]
    no_transaction = tuple((s, name) for s in statements
                           if (name := no_transaction_reason(s.text)) is not None)
    return SqlMode(len(statements), no_transaction, own_transaction_control(statements))


#: Modes computed in another process (:mod:`pytest_migorch.sql.ahead`), most recent last.
_known_modes: OrderedDict[str, SqlMode] = OrderedDict()


def remember_sql_mode(text: str, mode: SqlMode) -> None:
    """Keep the :class:`SqlMode` of ``text`` made elsewhere (as many as the splits kept)."""
    _known_modes[text] = mode
    _known_modes.move_to_end(text)
    while len(_known_modes) > 4096:
        _known_modes.popitem(last=False)


def file_execution_mode(migration: Migration, file: MigrationFile) -> ExecutionMode:
    """The execution mode of one of ``migration``'s files (up and down may differ)."""
    return execution_mode(file.read_text(), migration.declared_transactional)


def no_transaction_reason(text: str) -> str | None:
    """The name of the statement PostgreSQL refuses in a transaction block, or None."""
    return next((name for pattern, name in _NO_TRANSACTION if pattern.match(text)), None)


def is_transaction_control(text: str) -> bool:
    return _TRANSACTION_CONTROL.match(text) is not None


def own_transaction_control(statements: list[Statement]) -> tuple[Statement, ...]:
    """Transaction control other than one BEGIN first and (then) one COMMIT last: a wrapper
    around the whole file is dropped when we provide the transaction, anything else is not."""
    return tuple(s for s in drop_wrapper(statements) if is_transaction_control(s.text))


def drop_wrapper(statements: list[Statement]) -> list[Statement]:
    """The statements without a BEGIN first and (then) a COMMIT last."""
    if statements and _BEGIN.fullmatch(statements[0].text):
        statements = statements[1:]
        if statements and _COMMIT.fullmatch(statements[-1].text):
            statements = statements[:-1]
    return statements


def _keyword(statement: Statement) -> str:
    return statement.text.split()[0].upper()
