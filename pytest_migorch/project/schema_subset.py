"""An exact yes/no validator for the JSON Schema keywords our two schemas use, without jsonschema.

A cold ``migorch validate`` spent about half of ``load_project`` in jsonschema (~5 ms per
100-entry dependencies.json, and 80 ms to import it): its validator walks every keyword of every
entry through generic machinery built to report errors. Almost every document is valid, and for a
valid one no error is reported, so all that work only answers "valid?". :func:`compile_schema`
turns a schema into plain closures that answer exactly that, for the Draft 2020-12 keywords in
:data:`KEYWORDS`; a schema with any other keyword is not compiled (None), so a new keyword in a
schema can never be skipped silently.

It is only ever a shortcut to "no errors": a document it does not call valid is validated by
jsonschema, whose errors are the findings (:func:`pytest_migorch.project.config._read_document`).
Where matching jsonschema exactly would take more than a few lines (``uniqueItems`` over values
other than strings, ``enum`` of values other than strings) it answers "not valid", which only
sends the document to jsonschema. ``tests/project/test_schema_subset.py`` compares the two on
valid and broken documents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pytest_migorch.project.json_validity import ecma_regex

__all__ = ["compile_schema", "certainly_valid", "KEYWORDS"]

#: Answers whether one JSON value satisfies a (sub)schema.
Check = Callable[[Any], bool]

#: Keywords that only describe: no effect on validity.
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$defs", "default",
                          "$comment", "examples"})
#: Keywords this module validates; any other makes :func:`compile_schema` return None.
KEYWORDS = frozenset({"type", "required", "properties", "additionalProperties", "propertyNames",
                      "pattern", "minLength", "maxLength", "items", "uniqueItems", "minItems",
                      "minProperties", "enum", "oneOf", "exclusiveMinimum", "$ref"})

_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and math.isfinite(v) and v.is_integer()),
}


def certainly_valid(check: Check | None, value: Any) -> bool:
    """Whether ``check`` (from :func:`compile_schema`) calls ``value`` valid. False when there is
    no check, or for a document too deeply nested to walk: jsonschema then says what is wrong."""
    try:
        return check is not None and check(value)
    except RecursionError:
        return False


class _Unsupported(Exception):
    """The schema uses something this module does not validate exactly."""


def compile_schema(schema: dict[str, Any]) -> Check | None:
    """A function telling whether a document is valid against ``schema`` (exactly as jsonschema
    would say it has no error, or False when unsure), or None when ``schema`` uses a keyword
    or form outside :data:`KEYWORDS`."""
    refs: dict[str, Check] = {}
    try:
        check = _Compiler(schema, refs).compile(schema)
    except _Unsupported:
        return None
    return check


class _Compiler:
    def __init__(self, root: dict[str, Any], refs: dict[str, Check]) -> None:
        self.root = root
        self.refs = refs

    def compile(self, schema: Any) -> Check:
        if not isinstance(schema, dict):
            raise _Unsupported("boolean or malformed schema")
        unknown = set(schema) - KEYWORDS - _ANNOTATIONS
        if unknown:
            raise _Unsupported(", ".join(sorted(unknown)))
        checks = [_KEYWORD_MAKERS[name](self, value) for name, value in schema.items()
                  if name in _KEYWORD_MAKERS]
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self._object_members(schema))
        return lambda value: all(check(value) for check in checks)

    def _object_members(self, schema: dict[str, Any]) -> Check:
        """``properties`` and ``additionalProperties`` together: what is not a named property
        is additional (the schemas use no ``patternProperties``)."""
        named = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        extra_schema = schema.get("additionalProperties", True)
        extra: Check | None
        if extra_schema is True:
            extra = None
        elif extra_schema is False:
            extra = _never
        else:
            extra = self.compile(extra_schema)

        def members(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                check = named.get(key, extra)
                if check is not None and not check(item):
                    return False
            return True

        return members

    def ref(self, target: Any) -> Check:
        if not isinstance(target, str) or not target.startswith("#/$defs/") \
                or "/" in target[len("#/$defs/"):]:
            raise _Unsupported(f"$ref {target!r}")
        if target not in self.refs:
            definition = self.root.get("$defs", {}).get(target[len("#/$defs/"):])
            if definition is None:
                raise _Unsupported(f"unresolved $ref {target!r}")
            compiled: list[Check] = []
            self.refs[target] = lambda value: compiled[0](value)  # recursion-safe
            compiled.append(self.compile(definition))
        return self.refs[target]


def _never(value: Any) -> bool:
    return False


def _type(compiler: _Compiler, names: Any) -> Check:
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or any(name not in _TYPES for name in names):
        raise _Unsupported(f"type {names!r}")
    tests = [_TYPES[name] for name in names]
    return lambda value: any(test(value) for test in tests)


def _required(compiler: _Compiler, keys: Any) -> Check:
    wanted = tuple(keys)
    return lambda value: not isinstance(value, dict) or all(key in value for key in wanted)


def _property_names(compiler: _Compiler, sub: Any) -> Check:
    check = compiler.compile(sub)
    return lambda value: not isinstance(value, dict) or all(check(key) for key in value)


def _pattern(compiler: _Compiler, pattern: Any) -> Check:
    search = ecma_regex(pattern).search
    return lambda value: not isinstance(value, str) or search(value) is not None


def _min_length(compiler: _Compiler, limit: Any) -> Check:
    return lambda value: not isinstance(value, str) or len(value) >= limit


def _max_length(compiler: _Compiler, limit: Any) -> Check:
    return lambda value: not isinstance(value, str) or len(value) <= limit


def _items(compiler: _Compiler, sub: Any) -> Check:
    check = compiler.compile(sub)
    return lambda value: not isinstance(value, list) or all(check(item) for item in value)


def _unique_items(compiler: _Compiler, unique: Any) -> Check:
    if unique is not True:
        return lambda value: True

    def distinct(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        # Strings compare as jsonschema compares them; anything else is left to jsonschema.
        return all(isinstance(item, str) for item in value) and len(set(value)) == len(value)

    return distinct


def _min_items(compiler: _Compiler, limit: Any) -> Check:
    return lambda value: not isinstance(value, list) or len(value) >= limit


def _min_properties(compiler: _Compiler, limit: Any) -> Check:
    return lambda value: not isinstance(value, dict) or len(value) >= limit


def _enum(compiler: _Compiler, options: Any) -> Check:
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise _Unsupported("enum of values other than strings")
    allowed = frozenset(options)
    return lambda value: isinstance(value, str) and value in allowed


def _one_of(compiler: _Compiler, subs: Any) -> Check:
    checks = [compiler.compile(sub) for sub in subs]
    return lambda value: sum(1 for check in checks if check(value)) == 1


def _exclusive_minimum(compiler: _Compiler, limit: Any) -> Check:
    number = _TYPES["number"]
    # As jsonschema: an error only when ``value <= limit`` (so NaN, which json accepts, passes).
    return lambda value: not number(value) or not value <= limit


_KEYWORD_MAKERS: dict[str, Callable[[_Compiler, Any], Check]] = {
    "type": _type, "required": _required, "propertyNames": _property_names,
    "pattern": _pattern, "minLength": _min_length, "maxLength": _max_length, "items": _items,
    "uniqueItems": _unique_items, "minItems": _min_items, "minProperties": _min_properties,
    "enum": _enum, "oneOf": _one_of, "exclusiveMinimum": _exclusive_minimum,
    "$ref": _Compiler.ref,
}
