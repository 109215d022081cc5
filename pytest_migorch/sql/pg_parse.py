"""PostgreSQL's own grammar over every statement, through pglast (libpg_query), no database.

sqlglot is lenient: it accepts a MySQL ``DROP INDEX i ON t`` or an ``ALTER TABLE`` with two
actions and no comma, so a file can pass ``migorch validate`` and then fail on deploy. Here each
statement is also parsed with the parser PostgreSQL itself is built from; a statement it rejects
is certainly invalid (SQL007), with PostgreSQL's message and the line and column in the file.
Statements sqlglot cannot structure get a second chance from PostgreSQL's parse tree
(:mod:`pytest_migorch.sql.pg_recognisers`), so fewer are "not analysed".

pglast ships wheels for Linux and macOS only. Where it cannot be imported, one warning is logged
(once per process) and the analysis is what it was without it; nothing else changes.

Parsing is per statement: validating with ``pglast.parser.split(..., with_parser=True)`` builds
no Python tree and costs about 5 µs a statement (1.4 ms for the 314 statements of the corpora and
examples, against 32 ms for building every tree with ``parse_sql``, per statement or per file
alike); a tree is built only for the few statements sqlglot could not analyse.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_migorch.sql.facts import Facts, NotAnalysed
from pytest_migorch.sql.pg_recognisers import (
    called_function,
    function_body_facts,
    function_name,
    recognise_tree,
)
from pytest_migorch.sql.split import Statement

if TYPE_CHECKING:
    from pytest_migorch.sql.analysis import StatementAnalysis

_pg_parser: Any
_pglast_version: str | None
try:  # pglast has wheels for Linux and macOS only; elsewhere the analysis goes on without it
    import pglast
    import pglast.parser

    _pg_parser = pglast.parser
    _pglast_version = str(pglast.__version__)
except ImportError:  # pragma: no cover - exercised in a subprocess test
    _pg_parser = None
    _pglast_version = None

__all__ = [
    "PARSER_ID",
    "PgSyntaxError",
    "available",
    "syntax_error",
    "parse_tree",
    "position",
    "refine",
]

logger = logging.getLogger(__name__)

#: Goes into the analysis cache key: results made with and without pglast must not mix.
PARSER_ID = f"pglast-{_pglast_version}" if _pg_parser is not None else "no-pglast"

MISSING_WARNING = (
    "pglast (PostgreSQL's parser) cannot be imported on this platform: SQL is not checked "
    "against PostgreSQL's grammar, so syntax errors may only show on deploy; "
    "`pip install pglast` (wheels exist for Linux and macOS) to enable the check"
)

_warned = False
_warn_lock = threading.Lock()

#: One statement's analysis, given a statement: :func:`refine` gets it from the analysis so
#: statements inside DO blocks are read exactly like top-level ones.
Analyse = Callable[[Statement], "StatementAnalysis"]


@dataclass(frozen=True)
class PgSyntaxError:
    """PostgreSQL's message for a statement it rejects, and where in the file (1-based)."""

    message: str
    line: int
    column: int


def available() -> bool:
    """True when pglast can be used; the first time it cannot, log one warning."""
    global _warned
    if _pg_parser is not None:
        return True
    with _warn_lock:
        if not _warned:
            _warned = True
            logger.warning(MISSING_WARNING)
    return False


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``source``.

    CRLF, LF and a lone CR each end one line (as the splitter counts them); columns count
    characters, so a multi-byte character is one column.
    """
    offset = max(0, min(offset, len(source)))
    before = source[:offset]
    line = 1 + before.count("\n") + before.count("\r") - before.count("\r\n")
    start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return line, offset - start + 1


def syntax_error(source: str, statement: Statement) -> PgSyntaxError | None:
    """PostgreSQL's syntax error for ``statement`` (of file ``source``), or None when it parses.

    None as well when pglast is not available. An error without a cursor position (``syntax
    error at end of input``) points just after the statement's last character.
    """
    if _pg_parser is None:
        return None
    try:
        _pg_parser.split(statement.text, with_parser=True, only_slices=True)
    except _pg_parser.ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        offset = statement.start + (where if where is not None else len(statement.text))
        line, column = position(source, offset)
        return PgSyntaxError(message, line, column)
    return None


def parse_tree(text: str) -> Any:
    """The pglast tree of one statement (``RawStmt.stmt``); raises NotAnalysed when it fails."""
    if _pg_parser is None:
        raise NotAnalysed("PostgreSQL's parser (pglast) is not available")
    try:
        statements = _pg_parser.parse_sql(text)
    except _pg_parser.ParseError as exc:
        raise NotAnalysed(f"PostgreSQL cannot parse it ({exc.args[0] if exc.args else exc})") \
            from exc
    if len(statements) != 1:
        raise NotAnalysed("PostgreSQL reads it as more than one statement")
    return statements[0].stmt


def refine(source: str, statements: Sequence[Statement],
           results: Sequence[StatementAnalysis], analyse: Analyse) -> tuple[StatementAnalysis, ...]:
    """The analyses of a file's ``statements`` with PostgreSQL's parser applied.

    A statement PostgreSQL rejects becomes certainly invalid (SQL007) with its message and
    position; one that was not analysed is read from PostgreSQL's tree where that is exact,
    including ``SELECT f()`` of a function created earlier in the same file. Without pglast
    (one warning) the results come back unchanged. Never raises.
    """
    if not statements or not available():
        return tuple(results)
    functions: _Functions = {}
    return tuple(_refine_one(source, st, result, analyse, functions)
                 for st, result in zip(statements, results, strict=True))


#: Functions created so far in the file: name -> (schema, what a call does or why unknown).
_Functions = dict[str, tuple[str | None, Facts | str]]


def _refine_one(source: str, statement: Statement, result: StatementAnalysis,
                analyse: Analyse, functions: _Functions) -> StatementAnalysis:
    if statement.unterminated:
        return result
    try:
        error = syntax_error(source, statement)
        if error is not None:
            return _invalid(result, error)
        if result.analysed and result.kind in ("CREATE FUNCTION", "CREATE PROCEDURE"):
            error = _remember_function(source, statement, analyse, functions)
            if error is not None:
                return _invalid(result, error)
        if result.analysed or result.invalid:
            return result
        tree = parse_tree(statement.text)
        facts = _call(tree, functions) or recognise_tree(tree, statement, analyse)
    except NotAnalysed as exc:  # PostgreSQL's tree says more exactly why
        return dataclasses.replace(result, reason=str(exc))
    except Exception as exc:  # a bug of ours must not stop the analysis of the file
        logger.warning("internal error reading statement at line %s with PostgreSQL's parser",
                       statement.line, exc_info=True)
        return dataclasses.replace(result, reason=f"{result.reason}; internal error "
                                   f"({type(exc).__name__})")
    if facts is None:
        return result
    return dataclasses.replace(result, kind=facts.kind, analysed=True, reason=None,
                               objects=tuple(dict.fromkeys(facts.objects)), ops=tuple(facts.ops))


def _remember_function(source: str, statement: Statement, analyse: Analyse,
                       functions: _Functions) -> PgSyntaxError | None:
    """Record what calling the function ``statement`` creates would do; return the syntax
    error of its SQL body, which PostgreSQL rejects at CREATE time (``check_function_bodies``
    is on by default)."""
    tree = parse_tree(statement.text)
    name = function_name(tree)
    if name is None:
        return None
    error = _sql_body_error(source, statement, tree)
    if error is not None:
        return error
    body: Facts | str
    try:
        body = function_body_facts(tree, statement, analyse)
    except NotAnalysed as exc:
        body = str(exc)
    functions[name[1]] = (name[0], body)
    return None


def _sql_body_error(source: str, statement: Statement, tree: Any) -> PgSyntaxError | None:
    """PostgreSQL's syntax error in the ``AS '...'`` body of a LANGUAGE sql function."""
    options = {d.defname: d for d in tree.options or ()}
    language = getattr(getattr(options.get("language"), "arg", None), "sval", "sql")
    body_option = options.get("as")
    if str(language).lower() != "sql" or body_option is None:
        return None
    body = body_option.arg[0].sval if isinstance(body_option.arg, tuple) else ""
    try:
        _pg_parser.split(body, with_parser=True, only_slices=True)
    except _pg_parser.ParseError as exc:
        where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else len(body)
        location = getattr(body_option, "arg_location", None) or 0
        start = statement.text.find(body, location)  # a body with '' escapes is not found
        offset = statement.start + (start + where if start >= 0 else location)
        line, column = position(source, offset)
        return PgSyntaxError(f"{exc.args[0]} (in the function body)", line, column)
    return None


def _call(tree: Any, functions: _Functions) -> Facts | None:
    """Facts of ``SELECT f(...)`` / ``CALL f(...)`` of a function created earlier in the file."""
    name = called_function(tree)
    if name is None or name[1] not in functions:
        return None
    schema, body = functions[name[1]]
    if name[0] is not None and schema is not None and name[0] != schema:
        return None
    kind = "CALL" if type(tree).__name__ == "CallStmt" else "SELECT"
    if isinstance(body, str):
        raise NotAnalysed(f"calls {name[1]}() (created above), whose body cannot be read "
                          f"exactly: {body}")
    return Facts(kind=kind, objects=list(body.objects), ops=list(body.ops))


def _invalid(result: StatementAnalysis, error: PgSyntaxError) -> StatementAnalysis:
    """``result`` marked certainly invalid at ``error``'s place, keeping a more specific reason
    the analysis already had (``DROP IF EXISTS COLUMN``: write ``DROP COLUMN IF EXISTS``)."""
    where = f"line {error.line}, column {error.column}"
    if result.invalid and result.reason:
        reason = f"{result.reason} (PostgreSQL: {error.message} at {where})"
    else:
        reason = f"PostgreSQL rejects it: {error.message} at {where}"
    return dataclasses.replace(result, analysed=False, invalid=True, reason=reason, objects=(),
                               ops=(), error_line=error.line, error_column=error.column)
