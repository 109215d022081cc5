"""JSON loading that remembers where every value stands.

Python's :mod:`json` gives values but no positions, and configuration findings must name the line
of the offending entry. :func:`load_json` parses with :mod:`json` (so syntax errors carry its exact
line and column) and then walks the already-valid text once more to map every JSON path to the
line where its value starts. The walk also notices duplicate keys, which :mod:`json` silently
resolves by keeping the last one.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Union

__all__ = ["JsonDocument", "JsonSyntaxError", "load_json", "JsonPath", "format_path"]

JsonPath = tuple[Union[str, int], ...]

#: The json module's own string scanner (not in typeshed): same escapes, same end offsets.
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE_CHARS = " \t\n\r"
_NEWLINE = re.compile("\n")
_NUMBER_OR_LITERAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")


class JsonSyntaxError(ValueError):
    """Malformed JSON, with the 1-based line and column :mod:`json` reported."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.reason = message
        self.line = line
        self.column = column


@dataclass
class JsonDocument:
    """A parsed JSON value with the line of every path and the duplicate keys found."""

    value: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[JsonPath, int]] = field(default_factory=list)

    def line_of(self, path: JsonPath) -> int:
        """Line of the deepest known prefix of ``path`` (1 for the document itself)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def load_json(text: str) -> JsonDocument:
    """Parse ``text``; raise :class:`JsonSyntaxError` with line and column when it is malformed."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(exc.msg, exc.lineno, exc.colno) from exc
    except RecursionError as exc:
        raise JsonSyntaxError("document nested too deeply", 1, 1) from exc
    except ValueError as exc:
        # json raises a plain ValueError for an integer longer than Python's digit limit
        # (sys.get_int_max_str_digits()); point at the longest run of digits.
        runs = list(re.finditer(r"[0-9]+", text))
        index = max(runs, key=lambda m: m.end() - m.start()).start() if runs else 0
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        raise JsonSyntaxError("number with too many digits", line, column) from exc
    document = JsonDocument(value)
    _PositionWalker(text, document).walk()
    return document


def format_path(path: JsonPath) -> str:
    """A JSON path as users read it: ``$.migrations["000001"].risk_level``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


class _PositionWalker:
    """Walks text that :func:`json.loads` accepted, recording the line of each value."""

    def __init__(self, text: str, document: JsonDocument) -> None:
        self.text = text
        self.document = document
        # Found by the regex engine, not a Python loop over every character: on the
        # dependencies.json files of a large tree this walk is most of ``load_project``.
        self.newlines = [m.start() for m in _NEWLINE.finditer(text)]

    def line_at(self, index: int) -> int:
        """1 + the newlines before ``index`` (a binary search, in C)."""
        return bisect.bisect_left(self.newlines, index) + 1

    def skip(self, index: int) -> int:
        text = self.text
        if index >= len(text) or text[index] not in _WHITESPACE_CHARS:
            return index  # most calls: already at a token
        match = _WHITESPACE.match(text, index)
        return match.end() if match else index

    def walk(self) -> None:
        try:
            self.value(self.skip(0), ())
        except RecursionError:
            # json.loads accepted it, so only very deep nesting ends up here; positions
            # are a convenience, the value itself is intact.
            pass

    def value(self, index: int, path: JsonPath) -> int:
        self.document.lines.setdefault(path, self.line_at(index))
        char = self.text[index]
        if char == "{":
            return self.object(index + 1, path)
        if char == "[":
            return self.array(index + 1, path)
        if char == '"':
            return _scanstring(self.text, index + 1)[1]
        match = _NUMBER_OR_LITERAL.match(self.text, index)
        if match is None:  # NaN / Infinity, which json accepts
            literal = re.match(r"-?(?:NaN|Infinity)", self.text[index:])
            return index + (literal.end() if literal else 1)
        return match.end()

    def object(self, index: int, path: JsonPath) -> int:
        seen: set[str] = set()
        index = self.skip(index)
        if self.text[index] == "}":
            return index + 1
        while True:
            key_start = index
            key, index = _scanstring(self.text, index + 1)
            child = path + (key,)
            if key in seen:
                self.document.duplicate_keys.append((child, self.line_at(key_start)))
                # json keeps the last value of a duplicate key: forget the earlier one's lines.
                lines = self.document.lines
                for known in [p for p in lines if p[: len(child)] == child]:
                    del lines[known]
            seen.add(key)
            index = self.skip(self.skip(index) + 1)  # past ':'
            index = self.value(index, child)
            # A key's line is where the key stands, which is what a reader looks for.
            self.document.lines[child] = self.line_at(key_start)
            index = self.skip(index)
            if self.text[index] == "}":
                return index + 1
            index = self.skip(index + 1)  # past ','

    def array(self, index: int, path: JsonPath) -> int:
        index = self.skip(index)
        if self.text[index] == "]":
            return index + 1
        position = 0
        while True:
            index = self.value(index, path + (position,))
            position += 1
            index = self.skip(index)
            if self.text[index] == "]":
                return index + 1
            index = self.skip(index + 1)
