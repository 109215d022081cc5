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

_NEWLINE = re.compile("\n")
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
#: The tokens the walk needs: a bracket, a string (with the colon after it when it is a key),
#: a number or literal (NaN and Infinity included, which json accepts). Whitespace, commas
#: and the colons of keys' values are skipped by ``finditer`` itself.
_TOKEN = re.compile(r"[{}\[\]]|" + _STRING + r'(?:[ \t\n\r]*:)?|[^ \t\n\r{}\[\]:,"]+',
                    re.DOTALL)


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
    _record_positions(text, document)
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


def _record_positions(text: str, document: JsonDocument) -> None:
    """Record the line of every value of ``text`` (which :func:`json.loads` accepted) and the
    duplicate keys, in one pass over its tokens.

    The regex engine finds the tokens (strings whole, so a brace inside one is no structure; a
    key together with its colon, which is how a key differs from a string value; commas and
    colons not at all), and only those pass through Python: a walk that called a function per
    value and a regex per gap cost more than the rest of ``load_project`` on large
    dependencies.json files. A key's path gets the line where the key stands, which is what a
    reader looks for; an array element's, where it starts. json keeps the last value of a
    duplicate key, so the lines recorded under the earlier one are forgotten.
    """
    newlines = [m.start() for m in _NEWLINE.finditer(text)]
    lines = document.lines
    line_of = bisect.bisect_left
    # One frame per open container: its path, the keys seen (an object) or the next index
    # (an array), and the path of the value to come.
    stack: list[list[Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first == "}" or first == "]":
            stack.pop()
            continue
        path: JsonPath
        if not stack:
            path = ()
            lines[path] = line_of(newlines, match.start()) + 1
        else:
            frame = stack[-1]
            if first == '"' and token[-1] == ":":  # a key
                start = match.start()
                key = _scanstring(text, start + 1)[0]
                child = frame[0] + (key,)
                seen: set[str] = frame[1]
                line = line_of(newlines, start) + 1
                if key in seen:
                    document.duplicate_keys.append((child, line))
                    for known in [p for p in lines if p[: len(child)] == child]:
                        del lines[known]
                seen.add(key)
                lines[child] = line  # its value's own line is not kept: the key's is
                frame[2] = child
                continue
            if frame[2] is None:  # an array element: a path not seen before
                path = frame[0] + (frame[1],)
                frame[1] += 1
                lines[path] = line_of(newlines, match.start()) + 1
            else:  # the value of the key just read
                path = frame[2]
        if first == "{":
            stack.append([path, set(), ""])
        elif first == "[":
            stack.append([path, 0, None])
