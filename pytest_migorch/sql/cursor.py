"""Reading a statement's tokens: qualified names, a small cursor, top-level lists.

The token-level recognisers (:mod:`pytest_migorch.sql.token_recognisers`,
:mod:`pytest_migorch.sql.alter_table`) walk the tokens of :mod:`pytest_migorch.sql.split` with
:class:`Cursor`; names come back as PostgreSQL stores them (:data:`QName`), and
:func:`display_name` quotes them back where PostgreSQL would need it. Kept apart from the splitter,
which must be right on every file and has no business knowing about names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from pytest_migorch.sql.split import Token, tokenize

__all__ = ["QName", "Cursor", "display_name", "parse_qualified_name", "split_top_level"]

#: A possibly schema-qualified name: ``(schema or None, name)`` as PostgreSQL stores them
#: (unquoted identifiers folded to lower case, quoted ones as written).
QName = tuple[str | None, str]

_SIMPLE_IDENT = re.compile(r"[a-z_][a-z0-9_$]*")


@functools.lru_cache(maxsize=8192)
def display_name(schema: str | None, name: str) -> str:
    """``schema.name`` with quotes where PostgreSQL would need them (kept per name: the rules
    ask for the same few table names again and again)."""
    parts = [p for p in (schema, name) if p is not None]
    return ".".join(p if _SIMPLE_IDENT.fullmatch(p) else '"' + p.replace('"', '""') + '"'
                    for p in parts)


class Cursor:
    """A read position over a statement's tokens, with the few moves recognisers need."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = list(tokens)
        self.pos = 0

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def next(self) -> Token | None:
        token = self.peek()
        if token is not None:
            self.pos += 1
        return token

    def word(self, *words: str) -> str | None:
        """Consume and return the next token if it is one of ``words`` (unquoted)."""
        token = self.peek()
        if token is not None and token.is_word(*words):
            self.pos += 1
            return token.value
        return None

    def is_next(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.is_word(*words)

    def words(self, *sequence: str) -> bool:
        """Consume ``sequence`` of words if it comes next, else consume nothing."""
        for ahead, word in enumerate(sequence):
            token = self.peek(ahead)
            if token is None or not token.is_word(word):
                return False
        self.pos += len(sequence)
        return True

    def punct(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind in ("punct", "op") and token.text == text:
            self.pos += 1
            return True
        return False

    def name(self) -> QName | None:
        """A possibly schema-qualified name; ``(schema, name)`` or None if none comes next."""
        parts: list[str] = []
        while True:
            token = self.peek()
            if token is None or token.kind not in ("word", "ident"):
                break
            parts.append(token.value)
            self.pos += 1
            if not self.punct("."):
                break
        if not parts:
            return None
        if len(parts) > 3:  # PostgreSQL rejects it too ("too many dotted names")
            return None
        return (parts[-2] if len(parts) >= 2 else None, parts[-1])

    def skip_group(self) -> None:
        """Skip a parenthesised group starting at the current ``(``."""
        depth = 0
        while (token := self.next()) is not None:
            if token.kind == "punct" and token.text in "([":
                depth += 1
            elif token.kind == "punct" and token.text in ")]":
                depth -= 1
                if depth <= 0:
                    return

    def rest_text(self) -> str:
        return " ".join(t.text for t in self.tokens[self.pos:])


def parse_qualified_name(text: str) -> QName | None:
    """Parse a declared table name such as ``users``, ``svc.users`` or ``"Users"``."""
    cursor = Cursor(list(tokenize(text)))
    name = cursor.name()
    return name if name is not None and cursor.at_end() else None


def split_top_level(tokens: Sequence[Token], separator: str = ",") -> list[list[Token]]:
    """Split tokens at ``separator`` outside parentheses and brackets."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "([":
            depth += 1
        elif token.kind == "punct" and token.text in ")]":
            depth = max(depth - 1, 0)
        if depth == 0 and token.kind == "punct" and token.text == separator:
            parts.append([])
            continue
        parts[-1].append(token)
    return parts
