"""A loaded :class:`~pytest_migorch.model.Project` as plain JSON values, and back.

The project cache (:mod:`pytest_migorch.project.load_cache`) keeps a loaded tree between runs
as JSON (never pickle: a cache file is data another process wrote, and decoding JSON cannot run
code). Every field of every model class is written, so the decoded project is equal to the one
a fresh load builds, field for field, the fields equality ignores (a dependency's line, a
finding's details) included; ``tests/project/test_load_cache.py`` checks both, and that the
tables here name every field of the dataclasses.

Paths below the root are stored relative to it and rebuilt as ``root / relative``, which is how
discovery builds them, so the same project read through another spelling of the root (a
relative one) gets that spelling's paths, as a fresh load would. Building paths is most of the
decoding time, so each distinct path is built once (every migration's entry names the same
dependencies.json), and a migration's up and down files are stored as positions in its
service's ``files`` (the same objects, as discovery leaves them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_migorch.findings import Family, Finding, Severity
from pytest_migorch.model import (
    DependencyRef,
    Environment,
    Hook,
    Migration,
    MigrationFile,
    MigrationMeta,
    Project,
    RiskLevel,
    Service,
)

__all__ = ["encode_project", "decode_project", "ENCODED_FIELDS"]

#: The fields each encoder writes, by class: a test compares them with the dataclasses', so a
#: field added to the model without a codec entry fails there instead of being lost silently.
ENCODED_FIELDS: dict[type, tuple[str, ...]] = {
    Project: ("root", "services", "findings"),
    Service: ("name", "root", "migrations_dir", "migrations", "environments",
              "dependencies_file", "environments_file", "has_metadata", "has_environments",
              "dependency_entries", "files", "findings", "declared_migrations_table"),
    Migration: ("service", "version", "version_text", "title", "environment", "up", "down",
                "meta"),
    MigrationFile: ("path", "version", "version_text", "title", "direction", "extension",
                    "environment"),
    MigrationMeta: ("description", "depends_on", "affects_tables", "risk_level",
                    "estimated_duration", "estimated_seconds", "transactional", "reversible",
                    "file", "line"),
    DependencyRef: ("service", "version", "text", "line"),
    Environment: ("name", "versions", "protected", "line", "hooks"),
    Hook: ("event", "sql", "command", "timeout"),
    Finding: ("code", "name", "severity", "family", "message", "hint", "file", "line",
              "service", "migration", "environment", "details", "services"),
}


class _Paths:
    """Paths relative to the root (``r`` + relative text) or as they are (``a`` + text)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = str(root) + os.sep
        self._built: dict[str, Path] = {}

    def encode(self, path: Path | None) -> str | None:
        if path is None:
            return None
        text = str(path)
        if text.startswith(self.prefix):
            return "r" + text[len(self.prefix):]
        if text == str(self.root):
            return "r"
        return "a" + text

    def decode(self, text: str | None) -> Path | None:
        if text is None:
            return None
        built = self._built.get(text)
        if built is None:
            if text[0] == "r":
                built = self.root / text[1:] if len(text) > 1 else self.root
            else:
                built = Path(text[1:])
            self._built[text] = built
        return built

    def required(self, text: str) -> Path:
        path = self.decode(text)
        assert path is not None
        return path


def encode_project(project: Project) -> dict[str, Any]:
    """``project`` as JSON values (see :func:`decode_project`)."""
    paths = _Paths(project.root)
    return {
        "services": [_encode_service(service, paths) for service in project.services.values()],
        "findings": [_encode_finding(f, paths) for f in project.findings],
    }


def decode_project(data: dict[str, Any], root: Path) -> Project:
    """The project :func:`encode_project` wrote, its paths rebuilt under ``root``."""
    paths = _Paths(root)
    project = Project(root=root, findings=[_decode_finding(f, paths) for f in data["findings"]])
    for item in data["services"]:
        service = _decode_service(item, paths)
        project.services[service.name] = service
    return project


# --- services ---------------------------------------------------------------------------------


def _encode_service(service: Service, paths: _Paths) -> dict[str, Any]:
    positions = {id(f): index for index, f in enumerate(service.files)}
    return {
        "name": service.name, "root": paths.encode(service.root),
        "migrations_dir": paths.encode(service.migrations_dir),
        "migrations": [_encode_migration(m, paths, positions)
                       for m in service.migrations.values()],
        "environments": [_encode_environment(e) for e in service.environments.values()],
        "dependencies_file": paths.encode(service.dependencies_file),
        "environments_file": paths.encode(service.environments_file),
        "has_metadata": service.has_metadata, "has_environments": service.has_environments,
        "dependency_entries": sorted(service.dependency_entries),
        "files": [_encode_file(f, paths) for f in service.files],
        "findings": [_encode_finding(f, paths) for f in service.findings],
        "declared_migrations_table": service.declared_migrations_table,
    }


def _decode_service(data: dict[str, Any], paths: _Paths) -> Service:
    files = [_decode_file(f, paths) for f in data["files"]]
    service = Service(
        name=data["name"], root=paths.required(data["root"]),
        migrations_dir=paths.required(data["migrations_dir"]),
        dependencies_file=paths.decode(data["dependencies_file"]),
        environments_file=paths.decode(data["environments_file"]),
        has_metadata=data["has_metadata"], has_environments=data["has_environments"],
        dependency_entries=set(data["dependency_entries"]),
        files=files, findings=[_decode_finding(f, paths) for f in data["findings"]],
        declared_migrations_table=data["declared_migrations_table"],
    )
    for item in data["migrations"]:
        migration = _decode_migration(item, paths, files)
        service.migrations[migration.version] = migration
    for item in data["environments"]:
        environment = _decode_environment(item)
        service.environments[environment.name] = environment
    return service


def _encode_environment(environment: Environment) -> dict[str, Any]:
    return {"name": environment.name, "versions": list(environment.versions),
            "protected": environment.protected, "line": environment.line,
            "hooks": [[event, [[h.event, h.sql, list(h.command), h.timeout] for h in hooks]]
                      for event, hooks in environment.hooks.items()]}


def _decode_environment(data: dict[str, Any]) -> Environment:
    return Environment(
        name=data["name"], versions=tuple(data["versions"]), protected=data["protected"],
        line=data["line"],
        hooks={event: tuple(Hook(event=e, sql=s, command=tuple(c), timeout=t)
                            for e, s, c, t in hooks)
               for event, hooks in data["hooks"]})


# --- migrations -------------------------------------------------------------------------------


def _encode_migration(migration: Migration, paths: _Paths,
                      positions: dict[int, int]) -> list[Any]:
    meta = migration.meta

    def file(found: MigrationFile | None) -> int | list[Any] | None:
        """The file's position in the service's ``files`` (the same object), else itself."""
        if found is None:
            return None
        position = positions.get(id(found))
        return position if position is not None else _encode_file(found, paths)

    return [migration.service, migration.version, migration.version_text, migration.title,
            migration.environment, file(migration.up), file(migration.down),
            None if meta is None else [
                meta.description,
                [[d.service, d.version, d.text, d.line] for d in meta.depends_on],
                list(meta.affects_tables), meta.risk_level.value, meta.estimated_duration,
                meta.estimated_seconds, meta.transactional, meta.reversible,
                paths.encode(meta.file), meta.line]]


def _decode_migration(data: list[Any], paths: _Paths, files: list[MigrationFile]) -> Migration:
    service, version, version_text, title, environment, up, down, meta = data

    def file(item: int | list[Any] | None) -> MigrationFile | None:
        if item is None:
            return None
        return files[item] if isinstance(item, int) else _decode_file(item, paths)

    return Migration(
        service=service, version=version, version_text=version_text, title=title,
        environment=environment, up=file(up), down=file(down),
        meta=None if meta is None else _decode_meta(meta, paths))


def _decode_meta(data: list[Any], paths: _Paths) -> MigrationMeta:
    (description, depends_on, affects_tables, risk_level, estimated_duration,
     estimated_seconds, transactional, reversible, file, line) = data
    return MigrationMeta(
        description=description,
        depends_on=tuple(DependencyRef(service=s, version=v, text=t, line=n)
                         for s, v, t, n in depends_on),
        affects_tables=tuple(affects_tables), risk_level=RiskLevel(risk_level),
        estimated_duration=estimated_duration, estimated_seconds=estimated_seconds,
        transactional=transactional, reversible=reversible, file=paths.decode(file),
        line=line)


def _encode_file(file: MigrationFile, paths: _Paths) -> list[Any]:
    return [paths.encode(file.path), file.version, file.version_text, file.title,
            file.direction, file.extension, file.environment]


def _decode_file(data: list[Any], paths: _Paths) -> MigrationFile:
    path, version, version_text, title, direction, extension, environment = data
    return MigrationFile(path=paths.required(path), version=version, version_text=version_text,
                         title=title, direction=direction, extension=extension,
                         environment=environment)


# --- findings ---------------------------------------------------------------------------------


def _encode_finding(finding: Finding, paths: _Paths) -> list[Any]:
    return [finding.code, finding.name, finding.severity.value, finding.family.value,
            finding.message, finding.hint, paths.encode(finding.file), finding.line,
            finding.service, finding.migration, finding.environment, finding.details,
            list(finding.services)]


def _decode_finding(data: list[Any], paths: _Paths) -> Finding:
    (code, name, severity, family, message, hint, file, line, service, migration, environment,
     details, services) = data
    return Finding(code=code, name=name, severity=Severity(severity), family=Family(family),
                   message=message, hint=hint, file=paths.decode(file), line=line,
                   service=service, migration=migration, environment=environment,
                   details=details, services=tuple(services))
