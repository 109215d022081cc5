"""``migorch new``: the next migration's up and down files and its metadata entry.

The version is the service's highest version plus one, zero-padded to the width the service
already uses (6 for a service without migrations; no padding for a service that never pads).
The entry goes into dependencies.json, and with ``--env`` the up file is listed under the
environment in environments.json. Both JSON files are edited in place, as text, so a team's
formatting and key order survive and the diff is only the new entry; the result is parsed back
and compared with what was meant, and a file is rewritten whole only if that check fails.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from pytest_migorch.errors import ConfigurationError, UsageError
from pytest_migorch.model import (
    Migration,
    MigrationFile,
    MigrationMeta,
    Project,
    RiskLevel,
    Service,
)
from pytest_migorch.project.templates import Template

__all__ = [
    "NewMigration", "Derived", "Deriver", "create_migration", "create_from_template",
    "next_version_text", "slug",
]

log = logging.getLogger(__name__)

DEFAULT_WIDTH = 6
_DEP_PATTERN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*:)?[0-9]+")


@dataclass
class NewMigration:
    """What ``new`` created or changed."""

    service: str
    version: str
    migration_id: str
    up: Path
    #: None for an irreversible migration (a template step without a down file).
    down: Path | None
    changed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "version": self.version,
                "migration": self.migration_id, "up": str(self.up),
                "down": str(self.down) if self.down else None,
                "changed": [str(p) for p in self.changed], "notes": self.notes}


def slug(name: str) -> str:
    """A file-name title: lower case words joined by ``_``."""
    text = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not text:
        raise UsageError(f"{name!r} is not usable as a migration name; use words such as "
                         "add_user_email")
    return text


def next_version_text(service: Service) -> str:
    """The next version, padded like the existing ones (golang-migrate's ``create -seq``)."""
    texts = [m.version_text for m in service.migrations.values()]
    if not texts:
        return f"{1:0{DEFAULT_WIDTH}d}"
    following = max(int(t) for t in texts) + 1
    padded = [len(t) for t in texts if t.startswith("0") and len(t) > 1]
    width = max(padded) if padded else 0
    return f"{following:0{width}d}"


#: Derives a new migration's tables and risk level from its SQL (the real analysis, passed in
#: by a higher layer: :func:`pytest_migorch.checks.scaffolding.metadata_deriver`).
Deriver = Callable[[Service, Migration], "Derived"]


@dataclass(frozen=True)
class Derived:
    """What the analysis says about a new migration's up file."""

    affects_tables: tuple[str, ...]
    risk_level: RiskLevel


@dataclass(frozen=True)
class _Planned:
    """One migration to write."""

    title: str
    up: str
    down: str | None
    description: str
    transactional: bool = True
    risk_at_least: RiskLevel | None = None
    from_template: bool = False


def create_migration(
    project: Project,
    service_name: str,
    name: str,
    *,
    environment: str | None = None,
    depends_on: Sequence[str] = (),
    description: str | None = None,
) -> NewMigration:
    """A blank migration pair and its entry (to fill in)."""
    title = slug(name)
    text = description or title.replace("_", " ").capitalize()
    planned = _Planned(title, f"-- {text}\n", f"-- Undo: {text}\n", text)
    return _create(project, service_name, [planned], environment, depends_on, None)[0]


def create_from_template(
    project: Project,
    service_name: str,
    name: str,
    template: Template,
    values: Mapping[str, str],
    *,
    derive: Deriver | None,
    environment: str | None = None,
    depends_on: Sequence[str] = (),
    description: str | None = None,
) -> list[NewMigration]:
    """The migrations of ``template``, each depending on the one before it.

    Their entries say what the analysis (``derive``) finds in the SQL: affects_tables and
    risk_level (at least the template's ``risk_at_least``), and ``transactional``/``reversible``
    where the template needs them.
    """
    title = slug(name)
    fallback = title.replace("_", " ").capitalize()
    steps = template.render(values, fallback, description)
    planned = [_Planned(f"{title}_{step.suffix}" if step.suffix else title, step.up, step.down,
                        step.description, step.transactional, step.risk_at_least, True)
               for step in steps]
    return _create(project, service_name, planned, environment, depends_on, derive)


def _create(project: Project, service_name: str, planned: list[_Planned],
            environment: str | None, depends_on: Sequence[str],
            derive: Deriver | None) -> list[NewMigration]:
    service = project.services.get(service_name)
    if service is None:
        known = ", ".join(sorted(project.services)) or "none"
        raise UsageError(f"unknown service {service_name!r}; services under the root: {known}")
    _check_dependencies(project, service, depends_on)
    directory = _directory(service, environment)
    first = next_version_text(service)
    versions = [f"{int(first) + i:0{len(first) if first.startswith('0') else 0}d}"
                for i in range(len(planned))]
    ids = [f"{version}_{step.title}" for version, step in zip(versions, planned)]
    for migration_id, step in zip(ids, planned):
        for suffix in (".up.sql", ".down.sql") if step.down is not None else (".up.sql",):
            if (directory / f"{migration_id}{suffix}").exists():
                raise UsageError(f"{directory / (migration_id + suffix)} already exists")
    if service.dependencies_file is None and (depends_on or len(planned) > 1):
        raise ConfigurationError(f"{service_name} has no dependencies.json to record "
                                 "depends_on in; create it first")
    derived = [_derive(service, step, version, environment, derive)
               for version, step in zip(versions, planned)]
    results = []
    previous: Sequence[str] = depends_on
    for version, migration_id, step, found in zip(versions, ids, planned, derived):
        results.append(_write(service, directory, environment, version, migration_id, step,
                              found, previous))
        previous = [version]
    return results


def _directory(service: Service, environment: str | None) -> Path:
    if environment is None:
        return service.migrations_dir
    if not service.has_environments or service.environments_file is None:
        raise ConfigurationError(
            f"{service.name} has no usable migrations/environments.json; create it and "
            f"declare {environment!r} before adding environment migrations")
    if environment not in service.environments:
        declared = ", ".join(sorted(service.environments)) or "none"
        raise ConfigurationError(
            f"Environment not found in configuration: {environment!r} is not declared in "
            f"{service.environments_file} (declared: {declared})")
    return service.migrations_dir / environment


def _derive(service: Service, step: _Planned, version: str, environment: str | None,
            derive: Deriver | None) -> Derived | None:
    """The analysis of ``step``'s up file, written to a scratch directory first."""
    if derive is None or not step.from_template:
        return None
    with tempfile.TemporaryDirectory(prefix="migorch-new-") as scratch:
        path = Path(scratch) / f"{version}_{step.title}.up.sql"
        path.write_text(step.up, encoding="utf-8")
        up = MigrationFile(path, int(version), version, step.title, "up", "sql", environment)
        migration = Migration(service.name, int(version), version, step.title, environment,
                              up=up, meta=MigrationMeta(transactional=step.transactional,
                                                        reversible=step.down is not None))
        found = derive(service, migration)
    level = found.risk_level
    if step.risk_at_least is not None and step.risk_at_least > level:
        level = step.risk_at_least
    return Derived(found.affects_tables, level)


def _write(service: Service, directory: Path, environment: str | None, version: str,
           migration_id: str, step: _Planned, found: Derived | None,
           depends_on: Sequence[str]) -> NewMigration:
    up = directory / f"{migration_id}.up.sql"
    down = directory / f"{migration_id}.down.sql"
    result = NewMigration(service.name, version, migration_id, up,
                          down if step.down is not None else None)
    if service.dependencies_file is not None:
        entry: dict[str, Any] = {
            "description": step.description, "depends_on": list(depends_on),
            "affects_tables": list(found.affects_tables) if found else [],
            "risk_level": found.risk_level.value if found else "low",
            "estimated_duration": "1s"}
        if not step.transactional:
            entry["transactional"] = False
        if step.down is None:
            entry["reversible"] = False
        _insert(service.dependencies_file, ("migrations",), version, entry)
        result.changed.append(service.dependencies_file)
        result.notes.append(
            f"added {version} to {service.dependencies_file.name}: " + (
                "check estimated_duration" if found else
                "fill in affects_tables, risk_level and estimated_duration"))
    else:
        result.notes.append(f"{service.name} has no dependencies.json; no metadata written")
    if environment is not None:
        assert service.environments_file is not None
        _insert(service.environments_file, ("environments", environment, "migrations"), None,
                f"{environment}/{up.name}")
        result.changed.append(service.environments_file)
    directory.mkdir(parents=True, exist_ok=True)
    up.write_text(step.up, encoding="utf-8")
    if step.down is not None:
        down.write_text(step.down, encoding="utf-8")
    return result


def _check_dependencies(project: Project, service: Service, depends_on: Sequence[str]) -> None:
    for entry in depends_on:
        if not _DEP_PATTERN.fullmatch(entry):
            raise UsageError(f"--depends-on {entry!r}: use a version (000001) or "
                             "service:version")
        other, _, version = entry.rpartition(":")
        target = project.services.get(other) if other else service
        if target is None:
            raise UsageError(f"--depends-on {entry!r}: no service {other!r}")
        if int(version) not in target.migrations:
            raise UsageError(f"--depends-on {entry!r}: {target.name} has no version {version}")


# --- editing JSON as text ---------------------------------------------------------------------

PathPart = Union[str, int]
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")


def _insert(path: Path, where: tuple[PathPart, ...], key: str | None, value: Any) -> None:
    """Add ``key: value`` to the object (or ``value`` to the array) at ``where`` in a file."""
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    container = document
    for part in where:
        container = container[part]
    if key is None:
        container.append(value)
    else:
        container[key] = value
    try:
        new_text = _insert_text(text, where, key, value)
        if json.loads(new_text) != document:
            raise ValueError("round trip mismatch")
    except (ValueError, KeyError, IndexError) as exc:
        log.debug("rewriting %s whole: %s", path, exc)
        new_text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.write_text(new_text, encoding="utf-8")


def _insert_text(text: str, where: tuple[PathPart, ...], key: str | None, value: Any) -> str:
    open_at, close_at = _locate(text, where)
    inner = text[open_at + 1:close_at]
    line_start = text.rfind("\n", 0, open_at) + 1
    base_indent = text[line_start:_indent_end(text, line_start)]
    if inner.strip():
        first = open_at + 1 + (len(inner) - len(inner.lstrip()))
        multiline = "\n" in text[open_at:first]
        indent = text[text.rfind("\n", 0, first) + 1:first] if multiline else ""
        last = open_at + 1 + len(inner.rstrip())
        rendered = _render(key, value, indent)
        glue = f",\n{indent}" if multiline else ", "
        return text[:last] + glue + rendered + text[last:]
    if key is None:
        return text[:open_at + 1] + json.dumps(value, ensure_ascii=False) + text[close_at:]
    indent = base_indent + "  "
    rendered = _render(key, value, indent)
    return text[:open_at + 1] + f"\n{indent}{rendered}\n{base_indent}" + text[close_at:]


def _indent_end(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _render(key: str | None, value: Any, indent: str) -> str:
    body = _dumps(value).replace("\n", "\n" + indent)
    return body if key is None else f"{json.dumps(key)}: {body}"


def _dumps(value: Any, level: int = 0) -> str:
    """JSON with two-space indentation and lists of scalars on one line, like our examples."""
    if isinstance(value, dict) and value:
        pad = "  " * (level + 1)
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        pad = "  " * (level + 1)
        return "[\n" + ",\n".join(pad + _dumps(v, level + 1) for v in value) + "\n" \
            + "  " * level + "]"
    return json.dumps(value, ensure_ascii=False)


def _ws(text: str, pos: int) -> int:
    """Offset of the first non-whitespace character at or after ``pos``."""
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def _locate(text: str, where: tuple[PathPart, ...]) -> tuple[int, int]:
    """Offsets of the opening and closing bracket of the container at ``where``."""
    pos = _ws(text, 0)
    for part in where:
        pos = _child(text, pos, part)
    if text[pos] not in "[{":
        raise ValueError("not a container")
    return pos, _skip(text, pos) - 1


def _child(text: str, pos: int, part: PathPart) -> int:
    """Offset of the value of ``part`` in the container starting at ``pos``."""
    opener = text[pos]
    pos = _ws(text, pos + 1)
    index = 0
    while text[pos] not in "]}":
        if opener == "{":
            name, pos = scanstring(text, pos + 1)
            pos = _ws(text, pos)
            pos = _ws(text, pos + 1)  # after ':'
            if name == part:
                return pos
        elif index == part:
            return pos
        pos = _ws(text, _skip(text, pos))
        if text[pos] == ",":
            pos = _ws(text, pos + 1)
        index += 1
    raise KeyError(part)


def _skip(text: str, pos: int) -> int:
    """Offset just after the JSON value starting at ``pos``."""
    char = text[pos]
    if char == '"':
        return int(scanstring(text, pos + 1)[1])
    if char in "[{":
        closer = "]" if char == "[" else "}"
        pos = _ws(text, pos + 1)
        while text[pos] != closer:
            if char == "{":
                pos = scanstring(text, pos + 1)[1]
                pos = _ws(text, pos)
                pos = _ws(text, pos + 1)
            pos = _ws(text, _skip(text, pos))
            if text[pos] == ",":
                pos = _ws(text, pos + 1)
        return pos + 1
    match = _SCALAR.match(text, pos)
    if match is None:
        raise ValueError(f"unexpected character at offset {pos}")
    return match.end()
