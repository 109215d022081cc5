"""Migration templates for ``migorch new --template``: common safe patterns, filled in.

A template is a directory with a ``meta.json`` and SQL files with ``{parameter}`` placeholders.
The built-in ones live in ``project/builtin_templates/``; a team adds its own in a directory of
the same shape (``--templates-dir`` or ``[tool.migorch] templates_dir``), where a template of the
same name replaces the built-in one. ``meta.json``::

    {"description": "one line for --list-templates",
     "parameters": {"table": {"kind": "identifier", "help": "..."},
                    "index": {"kind": "identifier", "default": "{table}_{column}_idx"}},
     "migrations": [{"suffix": "", "up": "1.up.sql", "down": "1.down.sql",
                     "description": "Index {table}({column})", "transactional": false}]}

Without ``migrations`` the template is one migration from ``up.sql`` and ``down.sql``. Values are
checked against their kind before they reach any SQL: ``identifier`` (a lower-case unquoted
PostgreSQL name that is no reserved word), ``name`` (an identifier, optionally schema-qualified),
``type`` (a type name such as ``varchar(255)`` or ``timestamp with time zone``) and ``literal``
(any text, written as a SQL string literal with its quotes doubled). So user text never reaches
a migration raw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pytest_migorch.errors import ConfigurationError, UsageError
from pytest_migorch.model import IDENTIFIER_MAX_BYTES, RiskLevel

__all__ = [
    "BUILTIN_DIR", "KINDS", "Parameter", "Template", "TemplateStep", "RenderedStep",
    "available_templates", "load_template", "check_value",
]

BUILTIN_DIR = Path(__file__).with_name("builtin_templates")
KINDS = ("identifier", "name", "type", "literal")

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")
_TYPE = re.compile(r"[a-z_][a-z0-9_]*( [a-z_][a-z0-9_]*)*( ?\(\d+( ?, ?\d+)?\))?( ?\[\])?",
                   re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

#: PostgreSQL's reserved key words (and those reserved except as function or type names):
#: unquoted, they cannot name a table or column.
RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate collation column concurrently constraint create cross current_catalog current_date
current_role current_schema current_time current_timestamp current_user default deferrable desc
distinct do else end except false fetch for foreign freeze from full grant group having ilike in
initially inner intersect into is isnull join lateral leading left like limit localtime
localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
references returning right select session_user similar some symmetric system_user table
tablesample then to trailing true union unique user using variadic verbose when where window with
""".split())


@dataclass(frozen=True)
class Parameter:
    """A template parameter: ``--<name>`` on the command line (``--param name=value`` too)."""

    name: str
    kind: str
    help: str = ""
    default: str | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class TemplateStep:
    """One migration a template generates (its SQL still with placeholders)."""

    suffix: str
    up: str
    down: str | None
    description: str
    transactional: bool = True
    #: The risk_level to declare at least, whatever the analysis derives (e.g. a DROP COLUMN the
    #: template silences with an ignore comment because it is the point of the migration).
    risk_at_least: RiskLevel | None = None


@dataclass(frozen=True)
class RenderedStep:
    """One migration ready to write: SQL and metadata with every placeholder filled in."""

    suffix: str
    up: str
    down: str | None
    description: str
    transactional: bool
    risk_at_least: RiskLevel | None


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    steps: tuple[TemplateStep, ...]
    directory: Path

    def render(self, given: Mapping[str, str], fallback: str, description: str | None = None
               ) -> list[RenderedStep]:
        """Every step with the checked ``given`` values (and defaults) substituted.

        A step's description is its own from meta.json, else ``fallback`` (from the migration's
        name); ``description`` (``--description``) replaces the first step's.
        """
        values = self.values(given)
        rendered = []
        for index, step in enumerate(self.steps):
            text = self._fill(step.description, values, "meta.json") or (
                f"{fallback} ({step.suffix.replace('_', ' ')})" if step.suffix else fallback)
            if description and index == 0:
                text = description
            rendered.append(RenderedStep(
                suffix=step.suffix, up=self._fill(step.up, values, "an up file"),
                down=None if step.down is None else self._fill(step.down, values, "a down file"),
                description=text, transactional=step.transactional,
                risk_at_least=step.risk_at_least))
        return rendered

    def values(self, given: Mapping[str, str]) -> dict[str, str]:
        """The SQL text of every parameter, checked against its kind."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(given) - set(known))
        if unknown:
            options = ", ".join(p.option for p in self.parameters) or "none"
            raise UsageError(f"template {self.name!r} has no parameter "
                             f"{', '.join(unknown)} (its parameters: {options})")
        missing = [p.option for p in self.parameters if p.name not in given and p.default is None]
        if missing:
            raise UsageError(f"template {self.name!r} needs {', '.join(missing)}")
        values = {p.name: check_value(p, given[p.name]) for p in self.parameters
                  if p.name in given}
        for parameter in self.parameters:  # defaults may use the values given
            if parameter.name not in values and parameter.default is not None:
                raw = self._fill(parameter.default, values, "meta.json")
                values[parameter.name] = check_value(parameter, raw)
        return values

    def _fill(self, text: str, values: Mapping[str, str], where: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ConfigurationError(
                    f"template {self.name!r} ({self.directory}): {where} uses {{{name}}}, which "
                    "is not one of its parameters; declare it in meta.json")
            return values[name]

        return _PLACEHOLDER.sub(replace, text)


def check_value(parameter: Parameter, value: str) -> str:
    """``value`` as SQL text for ``parameter``'s kind, or a UsageError saying what is allowed."""
    option = parameter.option
    if parameter.kind == "literal":
        if "\0" in value:
            raise UsageError(f"{option}: a NUL character cannot be part of SQL text")
        return "'" + value.replace("'", "''") + "'"
    text = value.strip()
    if parameter.kind == "type":
        if not _TYPE.fullmatch(text):
            raise UsageError(f"{option} {value!r} is not a type name such as text, bigint, "
                             "varchar(255), numeric(10,2) or timestamp with time zone")
        return text
    pattern = _IDENTIFIER if parameter.kind == "identifier" else _NAME
    if not pattern.fullmatch(text):
        shape = "" if parameter.kind == "identifier" else " (or schema.name)"
        raise UsageError(f"{option} {value!r} is not a plain SQL name{shape}: use lower-case "
                         "letters, digits and _, starting with a letter or _")
    for part in text.split("."):
        if part in RESERVED:
            raise UsageError(f"{option} {value!r}: {part!r} is a reserved word in PostgreSQL; "
                             "choose another name")
        if len(part.encode()) > IDENTIFIER_MAX_BYTES:
            raise UsageError(f"{option} {value!r}: longer than PostgreSQL's "
                             f"{IDENTIFIER_MAX_BYTES} bytes; it would be cut silently")
    return text


# --- loading ------------------------------------------------------------------------------------


def available_templates(extra: Path | None = None) -> dict[str, Template]:
    """The built-in templates, and those of ``extra`` (which replace built-ins of their name)."""
    found = _templates_in(BUILTIN_DIR)
    if extra is not None:
        if not extra.is_dir():
            raise ConfigurationError(f"templates directory {extra} does not exist")
        found.update(_templates_in(extra))
    return dict(sorted(found.items()))


def _templates_in(directory: Path) -> dict[str, Template]:
    return {path.name: load_template(path) for path in sorted(directory.iterdir())
            if (path / "meta.json").is_file()}


def load_template(directory: Path) -> Template:
    """One template directory, or a ConfigurationError naming the file and what is wrong."""
    meta_file = directory / "meta.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"{meta_file}: not readable as JSON: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("description"), str):
        raise ConfigurationError(f'{meta_file}: needs an object with a "description" string')
    raw_parameters = meta.get("parameters", {})
    if not isinstance(raw_parameters, dict):
        raise ConfigurationError(f'{meta_file}: "parameters" must be an object')
    parameters = tuple(_parameter(meta_file, name, spec) for name, spec in raw_parameters.items())
    raw_steps = meta.get("migrations", [{"suffix": "", "up": "up.sql", "down": "down.sql",
                                         "optional_down": True}])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigurationError(f'{meta_file}: "migrations" must be a non-empty list')
    steps = tuple(_step(directory, meta_file, spec) for spec in raw_steps)
    return Template(directory.name, meta["description"], parameters, steps, directory)


def _parameter(meta_file: Path, name: Any, spec: Any) -> Parameter:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or not isinstance(spec, dict):
        raise ConfigurationError(f"{meta_file}: parameter {name!r} needs a lower-case name and an "
                                 'object such as {"kind": "identifier"}')
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ConfigurationError(f"{meta_file}: parameter {name!r} has kind {kind!r}; use one "
                                 f"of {', '.join(KINDS)}")
    default = spec.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigurationError(f"{meta_file}: the default of {name!r} must be a string")
    return Parameter(name, kind, str(spec.get("help", "")), default)


def _step(directory: Path, meta_file: Path, spec: Any) -> TemplateStep:
    if not isinstance(spec, dict) or not isinstance(spec.get("up"), str):
        raise ConfigurationError(f'{meta_file}: each migration needs "up" (a file name)')
    suffix = spec.get("suffix", "")
    if not isinstance(suffix, str) or (suffix and not _IDENTIFIER.fullmatch(suffix)):
        raise ConfigurationError(f"{meta_file}: suffix {suffix!r} must be lower-case words "
                                 "joined by _")
    risk = spec.get("risk_at_least")
    if risk is not None and risk not in {level.value for level in RiskLevel}:
        raise ConfigurationError(f"{meta_file}: risk_at_least {risk!r} is not low, medium or "
                                 "high")
    down_name = spec.get("down")
    down = None
    if isinstance(down_name, str):
        down_path = directory / down_name
        if down_path.is_file() or not spec.get("optional_down"):
            down = _read(down_path)
    return TemplateStep(
        suffix=suffix, up=_read(directory / spec["up"]), down=down,
        description=str(spec.get("description", "")),
        transactional=spec.get("transactional", True) is not False,
        risk_at_least=RiskLevel(risk) if risk else None)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"template file {path} cannot be read: {exc}") from exc
