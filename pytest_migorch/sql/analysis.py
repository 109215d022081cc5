"""Per-statement analysis of a migration file: kinds, objects and roles, and a content cache.

:func:`analyse_sql` splits a file (:mod:`pytest_migorch.sql.split`) and analyses each statement
on its own, so one statement that cannot be read does not hide the others. A statement is either
*analysed* (its kind, the objects it targets with their role, and the operations the risk rules
need are known exactly) or *not analysed* with a reason (sqlglot does not structure it, it is a DO
block, it calls a function we cannot see into, it is over :data:`MAX_ANALYSED_CHARS`...).
Nothing here raises on bad SQL.

Results depend only on the file's text, so they are cached by content hash: in memory and,
optionally, in a persistent store (:class:`pytest_migorch.sql.store.SqliteStore`, in pytest's
cache directory for the plugin) so a second run does not parse anything. Results are plain JSON,
keyed by the text and by the package, sqlglot and :data:`ANALYSIS_FORMAT` versions.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pytest_migorch import __version__
from pytest_migorch.findings import Family, Rule, Severity, clip
from pytest_migorch.sql import pg_parse
from pytest_migorch.sql.analysis_cache import (
    INTERNAL_ERROR,
    AnalysisCache,
    ComputedAhead,
    PersistentStore,
)
from pytest_migorch.sql.facts import Facts, InvalidSql, NotAnalysed, ObjectRef, Op, Role
from pytest_migorch.sql.pg_create_table import create_table_facts
from pytest_migorch.sql.pg_dml import KINDS as DML_KINDS
from pytest_migorch.sql.pg_dml import dml_facts
from pytest_migorch.sql.split import (
    IgnoreComment,
    Statement,
    Token,
    split_sql_with_tokens,
    tokenize,
)
from pytest_migorch.sql.token_recognisers import recognise, statement_kind

__all__ = [
    "RULES",
    "UNTERMINATED_SQL",
    "NOT_ANALYSED",
    "INVALID_SQL",
    "StatementAnalysis",
    "SqlAnalysis",
    "PersistentStore",
    "AnalysisCache",
    "DEFAULT_CACHE",
    "analyse_sql",
    "analyse_uncached",
    "content_key",
    "ComputedAhead",
    "Computed",
    "MAX_ANALYSED_CHARS",
    "ANALYSIS_FORMAT",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the analysis changes what it produces, so stale cached results are not used.
ANALYSIS_FORMAT = 7

#: Statements longer than this (in characters) are not parsed: sqlglot's time and memory grow
#: faster than the text (a 5 MB INSERT took 15 s and 600 MB), and a statement that large is
#: data, not schema. It is reported as not analysed, with this reason.
MAX_ANALYSED_CHARS = 1_000_000

UNTERMINATED_SQL = Rule(
    code="SQL001",
    name="unterminated-sql",
    severity=Severity.ERROR,
    family=Family.SQL,
    summary="A quoted string, quoted identifier, dollar quote or block comment is never closed, "
    "so PostgreSQL rejects the file.",
    hint="Close the quote or comment that starts at the line shown.",
)
NOT_ANALYSED = Rule(
    code="SQL002",
    name="statement-not-analysed",
    severity=Severity.WARNING,
    family=Family.SQL,
    summary="A statement could not be analysed exactly (sqlglot does not structure it, it runs "
    "code such as a DO block, or it is too large to parse); its tables and risks are not "
    "checked, so the migration's risk is unknown and a protected deploy treats it as high.",
    hint="Review this statement by hand; then add `-- migorch:ignore SQL002 <why it is safe>` "
    "above it (the reason clears the unknown risk).",
)

INVALID_SQL = Rule(
    code="SQL007",
    name="invalid-sql",
    severity=Severity.ERROR,
    family=Family.SQL,
    summary="A statement is certainly rejected by PostgreSQL: its own parser (pglast) reports a "
    "syntax error, or it is a known mistake such as `DROP IF EXISTS COLUMN c` or "
    "`ALTER COLUMN c TYPE bigserial`.",
    hint="Fix the statement as the message says; the migration fails as written.",
)

RULES: tuple[Rule, ...] = (UNTERMINATED_SQL, NOT_ANALYSED, INVALID_SQL)

_WS = re.compile(r"\s+")
_INTERNAL_ERROR = INTERNAL_ERROR


@dataclass(frozen=True)
class StatementAnalysis:
    """What one statement does, or why that could not be determined."""

    index: int
    line: int
    end_line: int
    kind: str
    summary: str
    analysed: bool
    reason: str | None = None
    objects: tuple[ObjectRef, ...] = ()
    ops: tuple[Op, ...] = ()
    ignores: tuple[IgnoreComment, ...] = ()
    unterminated: str | None = None
    #: True when PostgreSQL certainly rejects the statement (``reason`` says why).
    invalid: bool = False
    #: Where PostgreSQL's parser stops, for a statement it rejects (1-based, in the file).
    error_line: int | None = None
    error_column: int | None = None

    @property
    def ignored_codes(self) -> frozenset[str]:
        return frozenset(code for ignore in self.ignores for code in ignore.codes)

    def objects_of(self, kind: str = "table", *roles: Role) -> list[ObjectRef]:
        return [o for o in self.objects if o.kind == kind and (not roles or o.role in roles)]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "line": self.line, "end_line": self.end_line,
            "kind": self.kind, "summary": self.summary, "analysed": self.analysed,
            "reason": self.reason,
            "objects": [o.to_json() for o in self.objects],
            "ops": [o.to_json() for o in self.ops],
            "ignores": [{"codes": list(i.codes), "line": i.line, "reason": i.reason}
                        for i in self.ignores],
            "unterminated": self.unterminated,
            "invalid": self.invalid,
            "error_line": self.error_line, "error_column": self.error_column,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatementAnalysis:
        return cls(
            index=data["index"], line=data["line"], end_line=data["end_line"],
            kind=data["kind"], summary=data["summary"], analysed=data["analysed"],
            reason=data.get("reason"),
            objects=tuple(ObjectRef.from_json(o) for o in data.get("objects", ())),
            ops=tuple(Op.from_json(o) for o in data.get("ops", ())),
            ignores=tuple(IgnoreComment(tuple(i["codes"]), i["line"], i.get("reason", ""))
                          for i in data.get("ignores", ())),
            unterminated=data.get("unterminated"),
            invalid=bool(data.get("invalid", False)),
            error_line=data.get("error_line"), error_column=data.get("error_column"),
        )


@dataclass(frozen=True)
class SqlAnalysis:
    """The analysis of one file's text."""

    key: str
    statements: tuple[StatementAnalysis, ...]
    orphan_ignores: tuple[IgnoreComment, ...] = ()
    unterminated_comment_line: int | None = None

    @property
    def statements_total(self) -> int:
        return len(self.statements)

    @property
    def statements_analysed(self) -> int:
        return sum(1 for s in self.statements if s.analysed)

    @property
    def not_analysed(self) -> list[tuple[str, int]]:
        """``(kind, line)`` of every statement that could not be analysed."""
        return [(s.kind, s.line) for s in self.statements if not s.analysed]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ANALYSIS_FORMAT,
            "key": self.key,
            "statements": [s.to_json() for s in self.statements],
            "orphan_ignores": [{"codes": list(i.codes), "line": i.line}
                               for i in self.orphan_ignores],
            "unterminated_comment_line": self.unterminated_comment_line,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SqlAnalysis:
        if data.get("format") != ANALYSIS_FORMAT:
            raise ValueError("analysis stored in another format")
        return cls(
            key=data["key"],
            statements=tuple(StatementAnalysis.from_json(s) for s in data["statements"]),
            orphan_ignores=tuple(IgnoreComment(tuple(i["codes"]), i["line"])
                                 for i in data.get("orphan_ignores", ())),
            unterminated_comment_line=data.get("unterminated_comment_line"),
        )


class Computed(NamedTuple):
    """An analysis computed in another process, and its stored form (:func:`~pytest_migorch.
    sql.store.encode` of :meth:`SqlAnalysis.to_json`), so this process need not encode it."""

    analysis: SqlAnalysis
    document: str


def content_key(text: str) -> str:
    """The cache key of a file's text: it changes with the text, sqlglot, our format and our
    version, so an upgrade never serves facts (or internal errors) of an older analysis.

    Kept for texts up to :data:`KEY_MEMO_MAX_CHARS`: a run asks for a file's key several times."""
    tool = (f"migorch-{__version__}/sql-{ANALYSIS_FORMAT}/sqlglot-{_sqlglot_version()}/"
            f"{pg_parse.PARSER_ID}\0")
    if len(text) > KEY_MEMO_MAX_CHARS:
        return _content_key(tool, text)
    return _content_key_memo(tool, text)


#: Texts up to this many characters have their key kept (bounding the memory it holds).
KEY_MEMO_MAX_CHARS = 64_000


def _content_key(tool: str, text: str) -> str:
    digest = hashlib.sha256()
    digest.update(tool.encode())
    digest.update(text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


_content_key_memo = functools.lru_cache(maxsize=4096)(_content_key)


@functools.cache
def _sqlglot_version() -> str:
    """sqlglot's version from its installed metadata rather than by importing it: a run whose
    analyses are all cached (a deploy after ``migorch validate``) never imports sqlglot."""
    try:
        return importlib.metadata.version("sqlglot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


#: The process-wide cache used when :func:`analyse_sql` is not given one.
DEFAULT_CACHE = AnalysisCache()


def analyse_sql(text: str, cache: AnalysisCache | None = None) -> SqlAnalysis:
    """Analyse a file's SQL, statement by statement; served from ``cache`` when seen before.

    Without ``cache`` the process-wide :data:`DEFAULT_CACHE` is used. Never raises on bad SQL.
    """
    cache = cache if cache is not None else DEFAULT_CACHE
    key = content_key(text)
    found = cache.get(key)
    if found is not None:
        return found
    cache.misses += 1
    analysis = analyse_uncached(text, key)
    cache.put(analysis)
    return analysis


def analyse_uncached(text: str, key: str) -> SqlAnalysis:
    """The analysis of ``text`` under ``key`` (its :func:`content_key`), no cache involved: what
    :func:`analyse_sql` computes on a miss, and what analysis workers run."""
    split, tokens = split_sql_with_tokens(text)
    return SqlAnalysis(
        key=key,
        statements=pg_parse.refine(text, split.statements,
                                   [analyse_statement(s, t) for s, t in
                                    zip(split.statements, tokens, strict=True)],
                                   analyse_statement),
        orphan_ignores=split.orphan_ignores,
        unterminated_comment_line=split.unterminated_comment_line,
    )


def analyse_parsed(kind: str, text: str, tokens: Sequence[Token]) -> Facts:
    """sqlglot's analysis of a statement the token recognisers do not read, imported on first
    use: a run whose analyses are all cached never loads sqlglot."""
    from pytest_migorch.sql.ast_recognisers import analyse_parsed as parsed

    return parsed(kind, text, tokens)


def analyse_statement(statement: Statement, tokens: Sequence[Token] | None = None
                      ) -> StatementAnalysis:
    """Analyse one statement: token-level recognisers first, then sqlglot; never raises.

    ``tokens``: the statement's tokens when the splitter kept them
    (:func:`~pytest_migorch.sql.split.split_sql_with_tokens`), else it is lexed here."""
    if len(statement.text) > MAX_ANALYSED_CHARS:
        return _too_large(statement)
    tokens = list(tokens) if tokens is not None else list(tokenize(statement.text))
    kind = statement_kind(tokens)
    if statement.unterminated:
        return _result(statement, kind, reason=statement.unterminated)
    try:
        facts = recognise(kind, tokens)
        if facts is None and kind == "CREATE TABLE":  # most of them, from PostgreSQL's tree
            facts = create_table_facts(statement.text)
        elif facts is None and kind in DML_KINDS:  # plain data fixes, the same way
            facts = dml_facts(statement.text)
        if facts is None:
            facts = analyse_parsed(kind, statement.text, tokens)
    except NotAnalysed as exc:
        return _result(statement, kind, reason=str(exc), invalid=isinstance(exc, InvalidSql))
    except Exception as exc:  # a bug of ours must not stop the analysis of the other statements
        logger.warning("internal error analysing statement at line %s", statement.line,
                       exc_info=True)
        return _result(statement, kind, reason=f"{_INTERNAL_ERROR} ({type(exc).__name__})")
    return _result(statement, facts.kind, objects=_unique(facts.objects), ops=tuple(facts.ops))


def _too_large(statement: Statement) -> StatementAnalysis:
    """A statement over :data:`MAX_ANALYSED_CHARS`: named by its first words, not parsed."""
    kind = statement_kind(list(itertools.islice(tokenize(statement.text), 8)))
    reason = statement.unterminated or (
        f"it is {len(statement.text):,} characters long; statements over "
        f"{MAX_ANALYSED_CHARS:,} characters are not parsed, to bound the work per statement")
    return _result(statement, kind, reason=reason)


def _result(statement: Statement, kind: str, *, reason: str | None = None,
            objects: tuple[ObjectRef, ...] = (), ops: tuple[Op, ...] = (),
            invalid: bool = False) -> StatementAnalysis:
    """The analysis of ``statement``: analysed unless a ``reason`` says why not."""
    return StatementAnalysis(
        index=statement.index, line=statement.line, end_line=statement.end_line, kind=kind,
        summary=_summary(statement.text), analysed=reason is None, reason=reason,
        objects=objects, ops=ops, ignores=statement.ignores, unterminated=statement.unterminated,
        invalid=invalid)


def _unique(objects: list[ObjectRef]) -> tuple[ObjectRef, ...]:
    return tuple(dict.fromkeys(objects))


def _summary(text: str, limit: int = 80) -> str:
    flat = _WS.sub(" ", text[: limit * 8]).strip()  # a summary never needs a 50 MB regex pass
    if len(text) <= limit * 8:
        return clip(flat, limit)
    return flat[: limit - 3] + "..."  # the text went on past what was read
