"""JSON loading with positions: lines of nested paths, duplicate keys, syntax errors."""

from __future__ import annotations

import json
import sys

import pytest

from pytest_migorch.project.jsonpos import JsonSyntaxError, format_path, load_json

DOCUMENT = """{
  "migrations": {
    "000001": {
      "description": "Create users",
      "depends_on": [
        "000002",
        "other:3"
      ],
      "risk_level":
        "low"
    },
    "empty": {}, "list": []
  }
}
"""


def test_value_is_what_json_gives() -> None:
    assert load_json(DOCUMENT).value == json.loads(DOCUMENT)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((), 1),
        (("migrations",), 2),
        (("migrations", "000001"), 3),
        (("migrations", "000001", "description"), 4),
        (("migrations", "000001", "depends_on"), 5),
        (("migrations", "000001", "depends_on", 0), 6),
        (("migrations", "000001", "depends_on", 1), 7),
        (("migrations", "000001", "risk_level"), 9),  # the key's line, not the value's
        (("migrations", "empty"), 12),
        (("migrations", "list"), 12),
    ],
)
def test_lines_of_nested_paths(path: tuple[str | int, ...], line: int) -> None:
    document = load_json(DOCUMENT)
    assert document.lines[path] == line
    assert document.line_of(path) == line


def test_line_of_unknown_path_falls_back_to_the_deepest_known_prefix() -> None:
    document = load_json(DOCUMENT)
    assert document.line_of(("migrations", "000001", "depends_on", 7)) == 5
    assert document.line_of(("migrations", "000001", "nope", "deeper")) == 3
    assert document.line_of(("nothing",)) == 1


def test_no_duplicate_keys_in_a_clean_document() -> None:
    assert load_json(DOCUMENT).duplicate_keys == []


def test_duplicate_keys_at_every_level() -> None:
    text = '{\n "a": 1,\n "b": {\n  "c": 1,\n  "c": 2\n },\n "a": 3\n}\n'
    document = load_json(text)
    assert document.duplicate_keys == [(("b", "c"), 5), (("a",), 7)]
    assert document.value == {"a": 3, "b": {"c": 2}}
    # json keeps the last value, and so do the lines.
    assert document.line_of(("a",)) == 7
    assert document.line_of(("b", "c")) == 5


def test_lines_under_a_duplicate_key_are_those_of_the_kept_value() -> None:
    text = '{\n "x": [\n  1,\n  2\n ],\n "x": [\n  3\n ]\n}\n'
    document = load_json(text)
    assert document.value == {"x": [3]}
    assert document.line_of(("x", 0)) == 7
    assert ("x", 1) not in document.lines  # belonged to the discarded value


def test_keys_with_escapes_and_unicode() -> None:
    text = '{"a\\"b": {\n"\\u00e9t\\u00e9": [true, null, -1.5e3, "x\\n"]}}'
    document = load_json(text)
    assert document.lines[('a"b', "été", 3)] == 2


def test_nan_and_infinity_are_walked() -> None:
    document = load_json('[NaN,\n-Infinity,\n Infinity, 1]')
    assert document.lines[(3,)] == 3


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("", 1, 1),
        ("   \n", 2, 1),
        ('{\n  "a": 1,\n  "b": ,\n}', 3, 8),
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3),
        ('{"a": 1}\n{"b": 2}', 2, 1),
        ('{\n  "a": 1,\n}', 3, 1),
        ('{"a": [1, 2}', 1, 12),
        ('{"a": "unterminated', 1, 7),
        ("\ufeff{}", 1, 1),
    ],
)
def test_syntax_errors_carry_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(JsonSyntaxError) as caught:
        load_json(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(caught.value)
    assert caught.value.reason


def test_number_longer_than_pythons_digit_limit() -> None:
    digits = "7" * (sys.get_int_max_str_digits() + 1)
    with pytest.raises(JsonSyntaxError) as caught:
        load_json('{\n  "a": 1,\n    "b": ' + digits + "\n}")
    assert (caught.value.line, caught.value.column) == (3, 10)


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    depth = 100_000
    with pytest.raises(JsonSyntaxError):
        load_json("[" * depth + "]" * depth)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "$"),
        (("migrations", "000001", "risk_level"), '$.migrations["000001"].risk_level'),
        (("migrations", "abc_1", "depends_on", 0), "$.migrations.abc_1.depends_on[0]"),
        (("environments", "my env"), '$.environments["my env"]'),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text
