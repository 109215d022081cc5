"""Schema validation of the JSON files, skipped for a document already seen valid.

Validating every dependencies.json with jsonschema was a third of ``load_project`` (~36 ms
per 100-entry file, and 0.1 s to import jsonschema), paid again by every ``migorch up`` that
then had nothing to do. A document's schema errors depend on nothing but its bytes, the schema
and the validator's code, so a document that validated with no error is remembered by a digest
of exactly those: the bytes, the schema's name, jsonschema's version and
:func:`pytest_migorch.project.result_cache.tool_identity` (our version and every module and
schema file of this package, by size and time). A document with any error is never
remembered, so its findings are always jsonschema's own, exactly as clear as before.

Each remembered digest is an empty file under ``$MIGORCH_CACHE_DIR/valid-json`` (the directory
of the analysis store): creating one is atomic, concurrent runs cannot corrupt it, and any
failure to read or write it only means validating again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pytest_migorch.cache_dir import cache_directory

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.protocols import Validator

__all__ = ["known_valid", "remember_valid", "validity_dir", "validator", "ecma_regex"]

log = logging.getLogger(__name__)

_validator_identity: str | None = None


def validity_dir() -> Path:
    """Beside the analysis store, in :func:`~pytest_migorch.cache_dir.cache_directory`."""
    return cache_directory() / "valid-json"


def _identity() -> str:
    global _validator_identity
    if _validator_identity is None:
        from pytest_migorch.project.result_cache import tool_identity

        try:
            version = metadata.version("jsonschema")
        except metadata.PackageNotFoundError:
            version = "none"
        _validator_identity = f"{tool_identity()}\0jsonschema={version}"
    return _validator_identity


def _marker(schema_name: str, data: bytes) -> Path:
    digest = hashlib.sha256(f"{_identity()}\0{schema_name}\0".encode())
    digest.update(data)
    return validity_dir() / digest.hexdigest()


def known_valid(schema_name: str, data: bytes) -> bool:
    """Whether exactly ``data`` validated against ``schema_name`` with this code before."""
    try:
        return _marker(schema_name, data).is_file()
    except OSError:
        return False


def remember_valid(schema_name: str, data: bytes) -> None:
    """Remember that ``data`` has no schema error (call only after a run found none)."""
    try:
        marker = _marker(schema_name, data)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        log.debug("could not remember a valid JSON document", exc_info=True)


@lru_cache(maxsize=None)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    r"""A schema ``pattern`` as JSON Schema (ECMA-262) means it: ``$`` ends the string.

    Python's ``$`` also matches before a final newline, so with the stock validator a key
    ``"1\n"`` or a depends_on entry ``"000001\n"`` would pass ``^[0-9]+$``.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    import jsonschema

    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def validator(schema: dict[str, Any]) -> Validator:
    """A Draft 2020-12 validator of ``schema`` with ECMA-262 patterns; jsonschema is imported
    only here, when a document was not :func:`known_valid`."""
    import jsonschema

    extended = jsonschema.validators.extend(jsonschema.Draft202012Validator,
                                            {"pattern": _pattern})
    made: Validator = extended(schema)
    return made
