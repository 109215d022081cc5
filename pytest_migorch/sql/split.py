"""Split a PostgreSQL migration file into statements, the way PostgreSQL's own lexer sees it.

golang-migrate sends a whole file to the server at once, so nothing on the client side ever
splits it; we split it ourselves to analyse and report per statement. The rules follow
PostgreSQL's scanner and psql's statement splitter (``psqlscan.l``), because that is what
real migration files are written against:

- ``'...'`` strings with ``''`` escapes; ``E'...'`` strings where a backslash escapes too;
- ``"..."`` quoted identifiers with ``""`` escapes;
- dollar quotes ``$$ ... $$`` and ``$tag$ ... $tag$`` (a ``$`` inside an identifier such as
  ``a$b`` and a parameter such as ``$1`` do not start one);
- ``--`` comments to the end of the line and ``/* ... */`` comments, which nest;
- a ``;`` inside parentheses does not end a statement, and neither does one inside a
  ``BEGIN ... END`` body of ``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` (SQL-standard bodies,
  ``BEGIN ATOMIC``), exactly as psql decides;
- ``\\r\\n``, ``\\n`` and a lone ``\\r`` each end a line.

The module never raises on any input: text that cannot be lexed (an unterminated string, say)
becomes a statement that runs to the end of the file and carries an ``unterminated`` note.

It has no dependency on sqlglot: the splitter is the part that must be right on every file,
including files sqlglot cannot parse. The same tokens serve the exact token-level recognisers of
:mod:`pytest_migorch.sql.token_recognisers`, read with :mod:`pytest_migorch.sql.cursor`.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "Token",
    "IgnoreComment",
    "Statement",
    "SplitResult",
    "tokenize",
    "split_sql",
    "split_sql_with_tokens",
    "split_statements",
    "parse_ignore_comment",
    "parse_ignore",
]

#: Characters that may continue an unquoted identifier (PostgreSQL: letters, digits, _, $,
#: and any non-ASCII character).
_IDENT_START = r"A-Za-z_\u0080-\U0010ffff"
_IDENT_CONT = _IDENT_START + r"0-9$"

#: Whitespace before a token is consumed by the same match (possessively: it never gives a
#: character back to ``other``), so a match is one token and there is one match per token.
_TOKEN_SOURCE = (r"""
    [ \t\n\r\f\v\ufeff]*+
  (?:
    (?P<line_comment>--[^\n\r]*)
  | (?P<block_comment>/\*)
  | (?P<estring>[eE]')
  | (?P<string>')
  | (?P<qident>")
  | (?P<dollar>\$(?:[""" + _IDENT_START + r"""][""" + _IDENT_START + r"""0-9]*)?\$)
  | (?P<param>\$[0-9]+)
  | (?P<word>[""" + _IDENT_START + r"""][""" + _IDENT_CONT + r"""]*)
  | (?P<number>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)
  | (?P<cast>::)
  | (?P<punct>[;(),.\[\]:])
  | (?P<op>[+\-*/<>=~!@\#%^&|`?])
  | (?P<other>.)
  )
    """)


@functools.cache
def _token_re() -> re.Pattern[str]:
    """The lexer's pattern, compiled on first use: its character classes span all of
    Unicode, which costs more to compile (~10 ms) than a command that never splits SQL (an
    ``up`` with nothing to do) spends on anything else of this module."""
    return re.compile(_TOKEN_SOURCE, re.VERBOSE | re.DOTALL)


_STRING_BODY = re.compile(r"(?:[^']|'')*'", re.DOTALL)
_ESTRING_BODY = re.compile(r"(?:[^'\\]|\\.|'')*'", re.DOTALL)
_QIDENT_BODY = re.compile(r'(?:[^"]|"")*"', re.DOTALL)
_BLOCK_PARTS = re.compile(r"/\*|\*/")
_NEWLINE = re.compile(r"\r\n|\n|\r")
# Not `ignore-file` (checks/ignores.py parses that one: it applies to a whole file).
_IGNORE_RE = re.compile(r"^--\s*migorch:ignore(?![\w-])(?P<rest>.*)$", re.IGNORECASE)
_IGNORE_ITEM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s*")


class Token(NamedTuple):
    """One lexical token. ``value`` is what it means: a folded word, an unquoted identifier.

    A NamedTuple rather than a frozen dataclass: a large file has millions of tokens, and a
    tuple is built about three times faster (the lexer is the part that sees every character).
    """

    kind: str  # word, ident, string, dollar, param, number, punct, op, comment, other
    text: str
    value: str
    start: int
    end: int
    unterminated: bool = False

    def is_word(self, *words: str) -> bool:
        """True for an unquoted word equal (case-insensitively) to one of ``words``."""
        return self.kind == "word" and self.value in words


@dataclass(frozen=True)
class IgnoreComment:
    """A ``-- migorch:ignore CODE[, CODE] [reason]`` comment and the line it stands on.

    ``reason`` is the free text after the codes: a not-analysed statement counts as reviewed
    (its risk no longer unknown) only when the ignore gives one.
    """

    codes: tuple[str, ...]
    line: int
    reason: str = field(default="", compare=False)


@dataclass(frozen=True)
class Statement:
    """One statement: its text without surrounding comments or the ``;``, and where it is.

    ``start``/``end`` are offsets into the file text (``text == source[start:end]``);
    ``line``/``end_line`` are 1-based lines of its first and last character. ``ignores`` are the
    ``migorch:ignore`` comments that apply to it.
    """

    index: int
    text: str
    line: int
    end_line: int
    start: int
    end: int
    ignores: tuple[IgnoreComment, ...] = ()
    unterminated: str | None = None

    @property
    def ignored_codes(self) -> frozenset[str]:
        return frozenset(code for ignore in self.ignores for code in ignore.codes)


@dataclass(frozen=True)
class SplitResult:
    """Statements plus what belongs to none: ignore comments after the last statement."""

    statements: tuple[Statement, ...]
    orphan_ignores: tuple[IgnoreComment, ...] = ()
    unterminated_comment_line: int | None = field(default=None)


def tokenize(text: str, *, comments: bool = False) -> Iterator[Token]:
    """Lex ``text`` like PostgreSQL; never raises. Whitespace is dropped, comments on request.

    Words, punctuation and operators, most of every file, are made here; quoted and nested
    constructs (strings, dollar quotes, comments) by :func:`_finish_token`."""
    pos = 0
    length = len(text)
    match_at = _token_re().match
    while pos < length:
        match = match_at(text, pos)
        if match is None:  # only whitespace is left
            return
        kind = match.lastgroup
        assert kind is not None  # every alternative is a named group
        start, end = match.span(kind)
        if kind == "word":
            raw = text[start:end]
            yield Token("word", raw, raw.lower(), start, end)
        elif kind in _PLAIN_KINDS:
            raw = text[start:end]
            yield Token(_PLAIN_KINDS[kind], raw, raw, start, end)
        else:
            token = _finish_token(text, kind, match)
            end = token.end
            if comments or token.kind != "comment":
                yield token
        pos = end


#: Token kinds whose text is the whole match and their value (``::`` is an operator).
_PLAIN_KINDS = {"punct": "punct", "op": "op", "number": "number", "param": "param",
                "cast": "op", "other": "other"}


def _finish_token(text: str, kind: str, match: re.Match[str]) -> Token:
    """Turn a regex match into a token, scanning to the end of quoted and nested constructs."""
    start, end = match.span(kind)
    if kind == "line_comment":
        return Token("comment", text[start:end], text[start:end], start, end)
    if kind == "block_comment":
        close = _block_comment_end(text, end)
        stop = len(text) if close is None else close
        return Token("comment", text[start:stop], "", start, stop, close is None)
    if kind in ("estring", "string", "qident"):
        body = {"estring": _ESTRING_BODY, "string": _STRING_BODY, "qident": _QIDENT_BODY}[kind]
        found = body.match(text, end)
        stop = found.end() if found else len(text)
        raw = text[start:stop]
        if kind == "qident":
            value = raw[1:-1].replace('""', '"') if found else raw[1:]
            return Token("ident", raw, value, start, stop, found is None)
        return Token("string", raw, raw, start, stop, found is None)
    if kind == "dollar":
        tag = text[start:end]
        close = text.find(tag, end)
        stop = len(text) if close < 0 else close + len(tag)
        value = text[end:close] if close >= 0 else text[end:]
        return Token("dollar", text[start:stop], value, start, stop, close < 0)
    raw = text[start:end]
    if kind == "word":
        return Token("word", raw, raw.lower(), start, end)
    if kind == "cast":
        return Token("op", raw, raw, start, end)
    return Token(kind, raw, raw, start, end)


def _block_comment_end(text: str, pos: int) -> int | None:
    """End offset of a (nested) block comment whose opening ``/*`` ends at ``pos``."""
    depth = 1
    for part in _BLOCK_PARTS.finditer(text, pos):
        depth += 1 if part.group() == "/*" else -1
        if depth == 0:
            return part.end()
    return None


class _LineIndex:
    """Maps offsets to 1-based line numbers, counting CRLF, LF and lone CR as one break."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


class _FunctionBodyTracker:
    """psql's heuristic for ``BEGIN ... END`` bodies of CREATE FUNCTION/PROCEDURE.

    It looks at the first identifiers of the statement; only when they read
    ``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` are BEGIN/CASE/END counted (outside parentheses),
    and a ``;`` ends the statement only at depth zero.
    """

    _TRACKED = {"create": "c", "function": "f", "procedure": "p", "or": "o", "replace": "r"}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.marks: list[str] = []
        self.depth = 0
        self._routine = False  # _is_routine() of the marks: they change for 4 words only

    def word(self, value: str, paren_depth: int) -> None:
        if len(self.marks) < 4:
            self.marks.append(self._TRACKED.get(value, ""))
            self._routine = self._is_routine()
        if not self._routine or paren_depth:
            return
        if value == "begin":
            self.depth += 1
        elif value == "case" and self.depth >= 1:
            self.depth += 1
        elif value == "end" and self.depth > 0:
            self.depth -= 1

    def _is_routine(self) -> bool:
        m = self.marks + [""] * (4 - len(self.marks))
        if m[0] != "c":
            return False
        return m[1] in ("f", "p") or (m[1] == "o" and m[2] == "r" and m[3] in ("f", "p"))


def parse_ignore_comment(comment: str) -> tuple[str, ...] | None:
    """Codes named by a ``-- migorch:ignore A, B reason`` comment; None if it is not one."""
    parsed = parse_ignore(comment)
    return parsed[0] if parsed is not None else None


def parse_ignore(comment: str) -> tuple[tuple[str, ...], str] | None:
    """(codes, reason) of a ``-- migorch:ignore A, B reason`` comment; None if it is not one.

    Codes are comma-separated; the first item not followed by a comma ends the list, and any
    text after it is a free-form reason. Codes are upper-cased; rule names stay lower-case.
    """
    match = _IGNORE_RE.match(comment.strip())
    if match is None:
        return None
    rest = match.group("rest")
    codes: list[str] = []
    pos = 0
    while True:
        item = _IGNORE_ITEM.match(rest, pos)
        if item is None:
            break
        word = item.group(1)
        codes.append(word.upper() if re.fullmatch(r"[A-Za-z]+[0-9]+", word) else word.lower())
        pos = item.end()
        if not rest.startswith(",", pos):
            break
        pos += 1
    return tuple(codes), rest[pos:].strip()


@dataclass
class _Pending:
    """The statement being collected while scanning."""

    first: Token | None = None
    last: Token | None = None
    ignores: list[IgnoreComment] = field(default_factory=list)
    unterminated: str | None = None
    #: Its tokens, comments left out, when the caller keeps them (:func:`split_sql_with_tokens`).
    tokens: list[Token] = field(default_factory=list)


#: Files up to this many characters have their split kept (see :func:`split_sql`).
MEMO_MAX_CHARS = 64_000


def split_sql(text: str) -> SplitResult:
    """Split ``text`` into statements, attaching ``migorch:ignore`` comments to them.

    An ignore comment applies to the statement it stands inside of, to the statement whose
    line it ends (a trailing ``; -- migorch:ignore X``), or else to the next statement.

    The analysis, the execution mode, the schema replay and the baseline each need the split
    of the same file, one after the other; the result is immutable, so the splits of the last
    few hundred files (up to :data:`MEMO_MAX_CHARS` each, bounding the memory) are kept and
    a file is split once.
    """
    if len(text) > MEMO_MAX_CHARS:
        return _split_sql(text)
    return _split_memo(text)


def split_sql_with_tokens(text: str) -> tuple[SplitResult, tuple[tuple[Token, ...], ...]]:
    """:func:`split_sql`, and each statement's tokens as :func:`tokenize` lexes its text alone
    (comments left out, offsets into the statement's text).

    The analysis of a file lexes each of its statements; the splitter has just lexed them all.
    A token never depends on what follows the place it ends (the lexer has no lookahead past a
    token), and a statement's text runs from its first token's start to its last token's end,
    so the file's tokens, shifted, are exactly the statement's. The split is remembered for
    :func:`split_statements` as a worker's would be (:func:`remember_statements`)."""
    kept: list[tuple[Token, ...]] = []
    result = _split_sql(text, kept)
    if len(text) <= MEMO_MAX_CHARS:
        remember_statements(text, result.statements)
    return result, tuple(kept)


def _shifted(tokens: list[Token]) -> tuple[Token, ...]:
    """Tokens with offsets from the first one's start, as if lexed from there."""
    base = tokens[0].start
    return tuple(Token(t.kind, t.text, t.value, t.start - base, t.end - base, t.unterminated)
                 for t in tokens)


def _split_sql(text: str, kept: list[tuple[Token, ...]] | None = None) -> SplitResult:
    lines = _LineIndex(text)
    statements: list[Statement] = []
    waiting: list[IgnoreComment] = []  # ignore comments waiting for the next statement
    current = _Pending()
    body = _FunctionBodyTracker()
    paren = 0
    last_end_line: int | None = None  # line of the last finished statement's ';'
    unterminated_comment: int | None = None

    def finish() -> None:
        nonlocal current, paren, waiting
        if current.first is not None and current.last is not None:
            statements.append(_make_statement(text, lines, len(statements), current, waiting))
            waiting = []
            if kept is not None:
                kept.append(_shifted(current.tokens))
        current = _Pending()
        body.reset()
        paren = 0

    for token in tokenize(text, comments=True):
        if token.kind == "comment":
            if token.unterminated:
                unterminated_comment = lines.line(token.start)
            _route_ignore(token, lines, current, statements, waiting, last_end_line)
            continue
        if token.kind == "punct" and token.text == ";" and paren == 0 and body.depth == 0:
            had_statement = current.first is not None
            finish()
            if had_statement:
                last_end_line = lines.line(token.start)
            continue
        if current.first is None:
            current.first = token
        current.last = token
        if kept is not None:
            current.tokens.append(token)
        if token.unterminated and current.unterminated is None:
            current.unterminated = _unterminated_note(token, lines)
        if token.kind == "punct":
            paren += {"(": 1, ")": -1}.get(token.text, 0)
            paren = max(paren, 0)
        elif token.kind == "word":
            body.word(token.value, paren)
    finish()
    return SplitResult(tuple(statements), tuple(waiting), unterminated_comment)


_split_memo = functools.lru_cache(maxsize=256)(_split_sql)


def _route_ignore(
    token: Token,
    lines: _LineIndex,
    current: _Pending,
    statements: list[Statement],
    waiting: list[IgnoreComment],
    last_end_line: int | None,
) -> None:
    """Attach an ignore comment to the statement it belongs to (see :func:`split_sql`)."""
    if not token.text.startswith("--"):
        return
    parsed = parse_ignore(token.text)
    if parsed is None:
        return
    line = lines.line(token.start)
    ignore = IgnoreComment(parsed[0], line, parsed[1])
    if current.first is not None:
        current.ignores.append(ignore)
    elif statements and last_end_line == line and not waiting:
        prev = statements[-1]
        statements[-1] = Statement(
            prev.index, prev.text, prev.line, prev.end_line, prev.start, prev.end,
            prev.ignores + (ignore,), prev.unterminated,
        )
    else:
        waiting.append(ignore)


def _make_statement(
    text: str, lines: _LineIndex, index: int, pending: _Pending, waiting: list[IgnoreComment]
) -> Statement:
    assert pending.first is not None and pending.last is not None
    start, end = pending.first.start, pending.last.end
    return Statement(
        index=index,
        text=text[start:end],
        line=lines.line(start),
        end_line=lines.line(max(end - 1, start)),
        start=start,
        end=end,
        ignores=tuple(waiting) + tuple(pending.ignores),
        unterminated=pending.unterminated,
    )


def _unterminated_note(token: Token, lines: _LineIndex) -> str:
    what = {"string": "quoted string", "ident": "quoted identifier"}.get(token.kind, "token")
    if token.kind == "dollar":
        tag = token.text[1:].split("$", 1)[0]
        what = f"dollar quote ${tag}$"
    return f"unterminated {what} starting at line {lines.line(token.start)}"


def split_statements(text: str) -> list[Statement]:
    """The statements of ``text`` in file order (see :func:`split_sql` for the details).

    Remembered by text: one run asks for the statements of a file several times (its
    execution mode in the checks and in the plan, then the runner sending it), and lexing in
    Python is the expensive part. The results are immutable; the list is the caller's own."""
    found = _known_statements.get(text)
    if found is not None:
        return list(found)
    return list(_statements(text))


@functools.lru_cache(maxsize=4096)
def _statements(text: str) -> tuple[Statement, ...]:
    return split_sql(text).statements


#: Splits made in another process (:mod:`pytest_migorch.sql.ahead`), by text, most recent last.
_known_statements: OrderedDict[str, tuple[Statement, ...]] = OrderedDict()


def remember_statements(text: str, statements: tuple[Statement, ...]) -> None:
    """Keep the split of ``text`` made elsewhere (an analysis worker), so this process does not
    lex the file again; as many are kept as :func:`split_statements` remembers."""
    _known_statements[text] = statements
    _known_statements.move_to_end(text)
    while len(_known_statements) > 4096:
        _known_statements.popitem(last=False)
