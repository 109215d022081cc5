"""Load and validate a service's ``dependencies.json`` and ``environments.json``.

Validation uses the JSON Schemas shipped in ``pytest_migorch/schemas`` (draft 2020-12), so what
users read in the schema is exactly what is enforced. Every finding names the file, the JSON path
and the line. Both files are optional (plain golang-migrate directories work on day one); their
absence is a warning.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from pytest_migorch.findings import Family, Rule, Severity, clip
from pytest_migorch.model import (
    REVERSIBLE_BY_DEFAULT,
    DependencyRef,
    Environment,
    Hook,
    Migration,
    MigrationMeta,
    RiskLevel,
    Service,
    is_protected_by_default,
)
from pytest_migorch.project import json_validity, schema_subset
from pytest_migorch.project.discovery import missing_down_finding
from pytest_migorch.project.jsonpos import (
    JsonDocument,
    JsonPath,
    JsonSyntaxError,
    format_path,
    load_json,
)
from pytest_migorch.project.sources import DISK, FileSource

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["load_service_config", "load_schema", "parse_duration", "RULES"]

E, W, C = Severity.ERROR, Severity.WARNING, Family.CONFIG

INVALID_JSON = Rule(
    "CFG001", "invalid-json", E, C,
    "The file is not valid JSON.",
    "Fix the JSON syntax at the line and column given.",
)
SCHEMA_VIOLATION = Rule(
    "CFG002", "schema-violation", E, C,
    "The file does not follow its JSON Schema.",
    "Fix the value at the JSON path given; the schemas are in pytest_migorch/schemas/.",
)
UNKNOWN_KEY = Rule(
    "CFG003", "unknown-key", E, C,
    "An object holds a key the schema does not know (often a typo that silently does nothing).",
    "Remove the key or correct its spelling.",
)
DUPLICATE_KEY = Rule(
    "CFG004", "duplicate-key", E, C,
    "A JSON object holds the same key twice; only the last value would count.",
    "Keep one entry per key.",
)
MISSING_DEPENDENCIES_FILE = Rule(
    "CFG005", "missing-dependencies-json", W, C,
    "The service has no dependencies.json: migrations run in file-name order with no metadata.",
    "Add migrations/dependencies.json with an entry per migration.",
)
MISSING_ENVIRONMENTS_FILE = Rule(
    "CFG006", "missing-environments-json", W, C,
    "The service has no environments.json: only base migrations run, in any environment.",
    "Add migrations/environments.json declaring every environment a deploy may target.",
)
ENTRY_WITHOUT_FILES = Rule(
    "CFG007", "entry-without-files", E, C,
    "dependencies.json has an entry for a version that has no migration files.",
    "Remove the entry or add the migration's files.",
)
MISSING_ENTRY = Rule(
    "CFG008", "missing-entry", E, C,
    "A migration has no entry in dependencies.json.",
    "Add an entry with description, depends_on, affects_tables, risk_level and "
    "estimated_duration.",
)
DUPLICATE_ENTRY = Rule(
    "CFG009", "duplicate-entry", E, C,
    "Two keys of dependencies.json name the same version (000001 and 1 are one version).",
    "Keep one entry per version.",
)
ENVIRONMENT_FILE_MISSING = Rule(
    "CFG010", "environment-file-missing", E, C,
    "An environment lists a migration file that does not exist.",
    "Correct the path (relative to migrations/, e.g. development/000003_seed.up.sql) or "
    "add the file.",
)
ENVIRONMENT_FILE_UNLISTED = Rule(
    "CFG011", "environment-file-unlisted", W, C,
    "A migration in an environment directory is listed by no environment, so it never runs.",
    "List its up file under the environment(s) that should run it in environments.json.",
)
ENVIRONMENT_LISTS_BASE = Rule(
    "CFG012", "environment-lists-base", W, C,
    "An environment lists a base migration, which runs in every environment anyway.",
    "Remove the entry, or move the migration into an environment directory.",
)
ENVIRONMENT_LISTS_DOWN = Rule(
    "CFG013", "environment-lists-down", E, C,
    "An environment lists a down file; environments list up files.",
    "List the .up.sql file; its down file is found automatically.",
)
IRREVERSIBLE_WITH_DOWN = Rule(
    "CFG014", "irreversible-with-down", W, C,
    'A migration marked "reversible": false has a down file, which will never run.',
    'Delete the down file or remove "reversible": false.',
)

RULES: tuple[Rule, ...] = (
    INVALID_JSON, SCHEMA_VIOLATION, UNKNOWN_KEY, DUPLICATE_KEY, MISSING_DEPENDENCIES_FILE,
    MISSING_ENVIRONMENTS_FILE, ENTRY_WITHOUT_FILES, MISSING_ENTRY, DUPLICATE_ENTRY,
    ENVIRONMENT_FILE_MISSING, ENVIRONMENT_FILE_UNLISTED, ENVIRONMENT_LISTS_BASE,
    ENVIRONMENT_LISTS_DOWN, IRREVERSIBLE_WITH_DOWN,
)

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """A shipped schema: ``"dependencies"`` or ``"environments"``."""
    text = resources.files("pytest_migorch").joinpath(f"schemas/{name}.schema.json").read_text(
        encoding="utf-8"
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=None)
def _validator(name: str) -> Validator:
    return json_validity.validator(load_schema(name))


@lru_cache(maxsize=None)
def _subset_validator(name: str) -> Callable[[Any], bool] | None:
    """The schema's checks without jsonschema (:mod:`~pytest_migorch.project.schema_subset`)."""
    return schema_subset.compile_schema(load_schema(name))


_VERSION = re.compile(r"[0-9]+")
#: Versions with more significant digits than this do not fit in uint64, so no file has them.
_UINT64_DIGITS = 20


def _version_number(digits: str) -> int:
    """The version of an ASCII digit string, without tripping Python's int digit limit.

    Larger than uint64 (so matching no migration) when the number is too long for golang-migrate.
    """
    significant = digits.lstrip("0") or "0"
    if len(significant) > _UINT64_DIGITS:
        return 2**64 + len(significant)
    return int(significant)


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as ``2m30s``; 0.0 when it is not one."""
    if not text or _DURATION_PART.sub("", text):
        return 0.0
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def load_service_config(service: Service, source: FileSource = DISK) -> None:
    """Attach environments and metadata to ``service``, appending findings to it.

    ``source`` is where the JSON files are read from (the file system, or a git revision).
    """
    _load_environments(service, source)
    _load_dependencies(service, source)
    _check_missing_downs(service)


# --- shared helpers ---------------------------------------------------------------------------


def _read_document(
    service: Service, path: Path, schema_name: str, source: FileSource
) -> tuple[JsonDocument | None, set[JsonPath]]:
    """Parse and schema-validate one JSON file.

    Returns the document (None when it is unusable as a whole) and the JSON paths where the
    schema found errors, so entries can be judged without validating them a second time."""
    try:
        data = source.read_bytes(path)
    except OSError as exc:
        service.findings.append(INVALID_JSON.finding(
            f"cannot read {path.name}: {exc.strerror}", file=path, service=service.name,
            hint="Check the file's permissions.",
        ))
        return None, set()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        service.findings.append(INVALID_JSON.finding(
            f"{path.name} is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            file=path, line=data[: exc.start].count(b"\n") + 1, service=service.name,
            hint="Re-save the file as UTF-8.",
        ))
        return None, set()
    try:
        document = load_json(text)
    except JsonSyntaxError as exc:
        service.findings.append(INVALID_JSON.finding(
            f"{path.name} is not valid JSON: {exc.reason} at line {exc.line}, column {exc.column}",
            file=path, line=exc.line, service=service.name,
        ))
        return None, set()
    for key_path, line in document.duplicate_keys:
        service.findings.append(DUPLICATE_KEY.finding(
            f"{format_path(key_path)} appears more than once in {path.name}",
            file=path, line=line, service=service.name,
            migration=_migration_of_path(service, key_path) if schema_name == "dependencies"
            else None,
        ))
    if json_validity.known_valid(schema_name, data):
        return document, set()
    if schema_subset.certainly_valid(_subset_validator(schema_name), document.value):
        json_validity.remember_valid(schema_name, data)
        return document, set()
    errors = _report_schema_errors(service, path, document, schema_name)
    if not errors:
        json_validity.remember_valid(schema_name, data)
    return document, errors


def _report_schema_errors(
    service: Service, path: Path, document: JsonDocument, schema_name: str
) -> set[JsonPath]:
    """Report every schema violation; return the paths where they are."""
    try:
        errors = sorted(_validator(schema_name).iter_errors(document.value),
                        key=lambda e: (list(map(str, e.absolute_path)), e.message))
    except RecursionError:
        service.findings.append(SCHEMA_VIOLATION.finding(
            f"{path.name} is nested too deeply to be checked against its schema",
            file=path, line=1, service=service.name,
        ))
        return {()}
    error_paths: set[JsonPath] = set()
    for error in errors:
        where: JsonPath = tuple(error.absolute_path)
        error_paths.add(where)
        if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
            # A bad key: point at the key itself rather than at the object holding it.
            service.findings.append(SCHEMA_VIOLATION.finding(
                f"key {format_path(where + (error.instance,))} in {path.name}: "
                f"{_short(error.message)}",
                file=path, line=document.line_of(where + (error.instance,)),
                service=service.name,
                migration=_migration_of_path(service, where) if schema_name == "dependencies"
                else None,
            ))
            continue
        migration = _migration_of_path(service, where) if schema_name == "dependencies" else None
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - known):
                key_path = where + (key,)
                service.findings.append(UNKNOWN_KEY.finding(
                    f"unknown key {key!r} at {format_path(where)} in {path.name}",
                    file=path, line=document.line_of(key_path), service=service.name,
                    migration=migration,
                ))
            continue
        service.findings.append(SCHEMA_VIOLATION.finding(
            f"{format_path(where)} in {path.name}: {_short(error.message)}",
            file=path, line=document.line_of(where), service=service.name, migration=migration,
        ))
    return error_paths


def _short(message: str, limit: int = 200) -> str:
    return clip(message, limit)


def _migration_of_path(service: Service, path: JsonPath) -> str | None:
    """The migration id a dependencies.json path belongs to, when it names a known version."""
    if (len(path) >= 2 and path[0] == "migrations" and isinstance(path[1], str)
            and _VERSION.fullmatch(path[1])):
        migration = service.migrations.get(_version_number(path[1]))
        return migration.id if migration else path[1]
    return None


def _entry_is_valid(entry: JsonPath, error_paths: set[JsonPath]) -> bool:
    """True when the schema check found nothing at or below ``entry`` (nor at the root)."""
    return () not in error_paths and not any(
        path[: len(entry)] == entry for path in error_paths if len(path) >= len(entry))


# --- environments.json ------------------------------------------------------------------------


def _load_environments(service: Service, source: FileSource) -> None:
    path = service.migrations_dir / "environments.json"
    listed: set[int] = set()
    if not source.is_file(path):
        service.findings.append(MISSING_ENVIRONMENTS_FILE.finding(
            f"{service.name} has no migrations/environments.json", file=service.migrations_dir,
            service=service.name,
        ))
    else:
        service.environments_file = path
        document, error_paths = _read_document(service, path, "environments", source)
        value = document.value if document is not None else None
        environments = value.get("environments") if isinstance(value, dict) else None
        if document is not None and isinstance(environments, dict):
            service.has_environments = True
            for name, body in environments.items():
                if not _entry_is_valid(("environments", name), error_paths):
                    continue  # already reported by the schema check
                env = _build_environment(service, path, document, name, body)
                service.environments[name] = env
                listed.update(env.versions)
    _report_unlisted_environment_files(service, listed)


def _build_environment(
    service: Service, path: Path, document: JsonDocument, name: str, body: dict[str, Any]
) -> Environment:
    by_relative: dict[str, Migration] = {}
    for migration in service.migrations.values():
        for file in (migration.up, migration.down):
            if file is not None:
                by_relative[file.relative_name] = migration
    versions: list[int] = []
    for index, entry in enumerate(body["migrations"]):
        line = document.line_of(("environments", name, "migrations", index))
        relative = entry.replace("\\", "/").removeprefix("./")
        listed = by_relative.get(relative)
        if listed is None:
            service.findings.append(ENVIRONMENT_FILE_MISSING.finding(
                f"environment {name!r} lists {entry}, which does not exist in "
                f"{service.name}/migrations/",
                file=path, line=line, service=service.name, environment=name,
            ))
            continue
        if listed.down is not None and listed.down.relative_name == relative:
            service.findings.append(ENVIRONMENT_LISTS_DOWN.finding(
                f"environment {name!r} lists the down file {entry}",
                file=path, line=line, service=service.name, migration=listed.id,
                environment=name,
            ))
            continue
        if listed.is_base:
            service.findings.append(ENVIRONMENT_LISTS_BASE.finding(
                f"environment {name!r} lists base migration {entry}",
                file=path, line=line, service=service.name, migration=listed.id,
                environment=name,
            ))
            continue
        versions.append(listed.version)
    protected = body.get("protected", is_protected_by_default(name))
    return Environment(
        name=name, versions=tuple(sorted(set(versions))), protected=bool(protected),
        line=document.line_of(("environments", name)), hooks=_hooks(body.get("hooks", {})),
    )


def _hooks(body: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[Hook, ...]]:
    """The ``hooks`` of one environment (the schema has checked their shape)."""
    return {event: tuple(Hook(event, item.get("sql"), tuple(item.get("command", ())),
                              float(item.get("timeout", 300))) for item in items)
            for event, items in body.items()}


def _report_unlisted_environment_files(service: Service, listed: set[int]) -> None:
    for migration in service.migrations.values():
        if migration.is_base or migration.version in listed:
            continue
        file = migration.main_file
        service.findings.append(ENVIRONMENT_FILE_UNLISTED.finding(
            f"{file.relative_name} is in environment directory {migration.environment}/ "
            "but no environment in environments.json lists it",
            file=file.path, service=service.name, migration=migration.id,
            environment=migration.environment,
        ))


# --- dependencies.json ------------------------------------------------------------------------


def _load_dependencies(service: Service, source: FileSource) -> None:
    path = service.migrations_dir / "dependencies.json"
    if not source.is_file(path):
        service.findings.append(MISSING_DEPENDENCIES_FILE.finding(
            f"{service.name} has no migrations/dependencies.json; migrations run in "
            "file-name order without metadata",
            file=service.migrations_dir, service=service.name,
        ))
        return
    service.dependencies_file = path
    document, error_paths = _read_document(service, path, "dependencies", source)
    usable = document is not None and isinstance(document.value, dict)
    entries = document.value.get("migrations") if usable else None  # type: ignore[union-attr]
    if document is None or not isinstance(entries, dict):
        return
    service.has_metadata = True
    if ("migrations_table",) not in error_paths:  # a bad value is the schema's finding
        service.declared_migrations_table = document.value.get("migrations_table")
    seen: dict[str, str] = {}  # version without leading zeros -> key as written
    for key, body in entries.items():
        if not _VERSION.fullmatch(key):
            continue  # reported by the schema (propertyNames)
        version = _version_number(key)
        number = key.lstrip("0") or "0"
        line = document.line_of(("migrations", key))
        if number in seen:
            service.findings.append(DUPLICATE_ENTRY.finding(
                f"dependencies.json keys {seen[number]!r} and {key!r} are the same version",
                file=path, line=line, service=service.name,
            ))
            continue
        seen[number] = key
        service.dependency_entries.add(version)
        migration = service.migrations.get(version)
        if migration is None:
            service.findings.append(ENTRY_WITHOUT_FILES.finding(
                f"dependencies.json has an entry for version {key}, but "
                f"{service.name}/migrations/ has no file with that version",
                file=path, line=line, service=service.name, migration=key,
            ))
            continue
        if _entry_is_valid(("migrations", key), error_paths):
            migration.meta = _build_meta(service, path, document, key, body)
    for migration in service.migrations.values():
        if str(migration.version) not in seen:
            service.findings.append(MISSING_ENTRY.finding(
                f"migration {migration.id} has no entry in dependencies.json",
                file=migration.main_file.path, service=service.name, migration=migration.id,
                environment=migration.environment,
            ))


def _build_meta(
    service: Service, path: Path, document: JsonDocument, key: str, body: dict[str, Any]
) -> MigrationMeta:
    depends_on = []
    for index, text in enumerate(body["depends_on"]):
        other, _, version = text.rpartition(":")
        depends_on.append(DependencyRef(
            service=other or service.name, version=_version_number(version), text=text,
            line=document.line_of(("migrations", key, "depends_on", index)),
        ))
    return MigrationMeta(
        description=body["description"],
        depends_on=tuple(depends_on),
        affects_tables=tuple(body["affects_tables"]),
        risk_level=RiskLevel(body["risk_level"]),
        estimated_duration=body["estimated_duration"],
        estimated_seconds=parse_duration(body["estimated_duration"]),
        transactional=body.get("transactional"),
        reversible=body.get("reversible", REVERSIBLE_BY_DEFAULT),
        file=path,
        line=document.line_of(("migrations", key)),
    )


def _check_missing_downs(service: Service) -> None:
    for migration in service.migrations.values():
        if migration.up is None:
            continue
        if migration.down is None:
            if migration.meta is not None and not migration.meta.reversible:
                continue
            if service.has_metadata and migration.meta is None:
                continue  # the missing or invalid entry is the problem to fix first
            service.findings.append(
                missing_down_finding(service, migration, with_metadata=service.has_metadata)
            )
        elif migration.meta is not None and not migration.meta.reversible:
            service.findings.append(IRREVERSIBLE_WITH_DOWN.finding(
                f"{migration.id} is marked \"reversible\": false but has "
                f"{migration.down.relative_name}",
                file=migration.meta.file, line=migration.meta.line, service=service.name,
                migration=migration.id,
            ))
