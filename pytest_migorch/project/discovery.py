"""Find services and their migration files, parsed exactly as golang-migrate parses them.

golang-migrate matches ``^([0-9]+)_(.*)\\.(down|up)\\.(.*)$`` against the whole file name, reads the
version as a uint64 and silently skips everything that does not match. We apply the same rule but
report what golang-migrate would skip or reject, because silent skips hide typos. Base migrations
live in ``migrations/``; each subdirectory is an environment directory whose files share the
service's single version space.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any

from pytest_migorch.errors import UsageError
from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import Migration, MigrationFile, Project, Service, remember_text
from pytest_migorch.project.sources import DISK, DiskSource, FileSource
from pytest_migorch.project.squashed import SQUASHED_DIR

__all__ = [
    "discover_project",
    "discover_service",
    "parse_migration_name",
    "missing_down_finding",
    "RULES",
    "CONFIG_FILES",
]

#: golang-migrate's rule (source/parse.go). Used with ``fullmatch``: Go's ``$`` does not accept a
#: trailing newline, Python's would.
MIGRATION_NAME = re.compile(r"([0-9]+)_(.*)\.(down|up)\.(.*)")
UINT64_MAX = 2**64 - 1
#: golang-migrate's schema_migrations.version is a ``bigint``: larger versions parse but can
#: never be recorded, so the migration can never be deployed.
BIGINT_MAX = 2**63 - 1
CONFIG_FILES = ("dependencies.json", "environments.json")

E, W, F = Severity.ERROR, Severity.WARNING, Family.FILES

NO_SERVICES = Rule(
    "FIL001", "no-services", E, F,
    "The services root holds no <service>/migrations/ directory.",
    "Point --root (or --migorch) at the directory that contains one folder per service, "
    "each with a migrations/ folder.",
)
BAD_SQL_NAME = Rule(
    "FIL002", "bad-file-name", E, F,
    "A .sql file does not follow golang-migrate's <version>_<title>.<up|down>.sql naming.",
    "Rename it to <version>_<title>.up.sql / .down.sql; golang-migrate silently skips it.",
)
UNKNOWN_FILE = Rule(
    "FIL003", "unrecognised-file", W, F,
    "A file in migrations/ is neither a migration nor one of our JSON files.",
    "Move it out of migrations/ or rename it as a migration; golang-migrate ignores it.",
)
VERSION_OVERFLOW = Rule(
    "FIL004", "version-overflow", E, F,
    "The version does not fit in an unsigned 64-bit integer.",
    "Use a smaller version number; golang-migrate cannot read this file.",
)
DUPLICATE_VERSION = Rule(
    "FIL005", "duplicate-version", E, F,
    "Two files have the same version and direction (000001 and 1 are the same version).",
    "Give one of them the next free version; golang-migrate refuses to start with duplicates.",
)
MISSING_DOWN = Rule(
    "FIL006", "missing-down", E, F,
    "An up migration has no down migration.",
    'Add the .down.sql file, or mark the migration "reversible": false in dependencies.json.',
)
MISSING_UP = Rule(
    "FIL007", "missing-up", E, F,
    "A down migration has no up migration.",
    "Add the matching .up.sql file or delete the orphaned down file.",
)
NOT_UTF8 = Rule(
    "FIL008", "not-utf8", E, F,
    "The file is not valid UTF-8.",
    "Re-save the file as UTF-8.",
)
EMPTY_FILE = Rule(
    "FIL009", "empty-file", W, F,
    "The migration file contains no SQL.",
    "Write the migration's SQL, or delete the file; golang-migrate skips empty files.",
)
BAD_EXTENSION = Rule(
    "FIL010", "unexpected-extension", E, F,
    "A migration file does not end in .sql, yet golang-migrate would run it as one.",
    "Rename it to .sql, or move it out of migrations/ (editor backups such as .sql.bak run too).",
)
TITLE_MISMATCH = Rule(
    "FIL011", "title-mismatch", W, F,
    "The up and down files of one version have different titles.",
    "Give both files the same title so the pair is obvious to readers.",
)
NESTED_DIRECTORY = Rule(
    "FIL012", "nested-directory", W, F,
    "A directory inside an environment directory is ignored.",
    "Environment migrations live directly in migrations/<environment>/.",
)
UNREADABLE = Rule(
    "FIL013", "unreadable-file", E, F,
    "The file could not be read.",
    "Check the file's permissions.",
)

NUL_BYTE = Rule(
    "FIL014", "nul-byte", E, F,
    "The SQL file contains a NUL byte; PostgreSQL would receive the SQL only up to it.",
    "Remove the NUL byte (often left by an editor or a bad encoding conversion).",
)
SYMLINK_LOOP = Rule(
    "FIL015", "symlink-loop", E, F,
    "A symbolic link in migrations/ points at itself or at a link back to it, so it cannot be "
    "read.",
    "Point the link at an existing file, or replace it with the file itself.",
)
MIGRATIONS_NOT_DIRECTORY = Rule(
    "FIL016", "migrations-not-a-directory", E, F,
    "A service's migrations path is a file, not a directory, so the service is not found.",
    "Make <service>/migrations a directory that holds the migration files.",
)
VERSION_TOO_LARGE = Rule(
    "FIL017", "version-beyond-bigint", E, F,
    "The version is 2^63 or more: golang-migrate reads it but cannot record it in its bigint "
    "version column, so the migration can never be deployed.",
    "Use a version below 9223372036854775808 (timestamps such as 20240101120000 fit).",
)
SCHEMA_COLLISION = Rule(
    "FIL018", "schema-collision", E, F,
    "Two services map to the same PostgreSQL schema (dashes become underscores, names are cut "
    "to 63 bytes), so their migrations would run in one schema.",
    "Rename one service directory so that every service has its own schema.",
)

RULES: tuple[Rule, ...] = (
    NO_SERVICES, BAD_SQL_NAME, UNKNOWN_FILE, VERSION_OVERFLOW, DUPLICATE_VERSION, MISSING_DOWN,
    MISSING_UP, NOT_UTF8, EMPTY_FILE, BAD_EXTENSION, TITLE_MISMATCH, NESTED_DIRECTORY, UNREADABLE,
    NUL_BYTE, SYMLINK_LOOP, MIGRATIONS_NOT_DIRECTORY, VERSION_TOO_LARGE, SCHEMA_COLLISION,
)


def parse_migration_name(name: str) -> tuple[str, str, str, str] | None:
    """``(version digits, title, direction, extension)`` or None, as golang-migrate parses."""
    match = MIGRATION_NAME.fullmatch(name)
    if match is None:
        return None
    version, title, direction, extension = match.groups()
    return version, title, direction, extension


def discover_project(root: Path, source: FileSource = DISK) -> Project:
    """Every ``<root>/<service>/migrations/`` directory, with its files parsed and paired.

    ``source`` is where the tree is read from: the file system, or a git revision's files.
    """
    root = Path(root)
    if not source.is_dir(root):
        raise UsageError(
            f"services root {root} does not exist or is not a directory; "
            "pass the directory that holds one folder per service"
        )
    project = Project(root=root)
    try:
        entries = [p for p in source.list_dir(root) if source.is_dir(p)]
    except OSError as exc:
        raise UsageError(f"cannot list services root {root}: {exc.strerror}") from exc
    for service_dir in entries:
        migrations_dir = service_dir / "migrations"
        if source.is_dir(migrations_dir):
            service = discover_service(root, service_dir.name, source)
            project.services[service.name] = service
        elif source.exists(migrations_dir):
            project.findings.append(MIGRATIONS_NOT_DIRECTORY.finding(
                f"{service_dir.name}/migrations is not a directory, so {service_dir.name} is "
                "not a service", file=migrations_dir,
            ))
    _check_schema_collisions(project)
    if not project.services:
        project.findings.append(
            NO_SERVICES.finding(f"no <service>/migrations/ directory under {root}", file=root)
        )
    return project


def _check_schema_collisions(project: Project) -> None:
    """Services whose schema names are equal: each gets a finding naming the others."""
    by_schema: dict[str, list[Service]] = {}
    for service in project.services.values():
        by_schema.setdefault(service.schema, []).append(service)
    for schema, services in by_schema.items():
        if len(services) < 2:
            continue
        names = sorted(s.name for s in services)
        for service in services:
            others = ", ".join(n for n in names if n != service.name)
            service.findings.append(SCHEMA_COLLISION.finding(
                f"services {' and '.join(names)} both map to schema {schema!r}; "
                f"{service.name} would share it with {others}",
                file=service.migrations_dir, service=service.name,
            ))

#: ``migrations/testdata/<version>.sql``: rows the round-trip loads before that up.
TESTDATA_DIR = "testdata"


def discover_service(root: Path, name: str, source: FileSource = DISK) -> Service:
    """Parse one service's migration files; configuration is attached later by :mod:`config`."""
    migrations_dir = root / name / "migrations"
    service = Service(name=name, root=root, migrations_dir=migrations_dir)
    files: list[MigrationFile] = []
    for entry in _list_directory(service, migrations_dir, None, source):
        if entry.name.startswith(".") or entry.name in (SQUASHED_DIR, TESTDATA_DIR):
            continue  # squashed/ keeps files for the record; testdata/ rows for the round-trip
        if source.is_dir(entry):
            files.extend(_scan_environment_dir(service, entry, source))
        elif entry.name not in CONFIG_FILES:
            parsed = _parse_file(service, entry, None, source)
            if parsed is not None:
                files.append(parsed)
    _pair_files(service, files)
    return service


def _scan_environment_dir(
    service: Service, directory: Path, source: FileSource
) -> list[MigrationFile]:
    files = []
    for entry in _list_directory(service, directory, directory.name, source):
        if entry.name.startswith("."):
            continue
        if source.is_dir(entry):
            service.findings.append(NESTED_DIRECTORY.finding(
                f"directory {entry.name}/ inside environment directory {directory.name}/ "
                "is ignored",
                file=entry, service=service.name, environment=directory.name,
            ))
            continue
        parsed = _parse_file(service, entry, directory.name, source)
        if parsed is not None:
            files.append(parsed)
    return files


def _list_directory(
    service: Service, directory: Path, environment: str | None, source: FileSource
) -> list[Path]:
    """The entries of ``directory``, sorted; an unreadable directory is reported, not raised."""
    try:
        return source.list_dir(directory)
    except OSError as exc:
        service.findings.append(UNREADABLE.finding(
            f"cannot list {directory.name}/: {exc.strerror}", file=directory,
            service=service.name, environment=environment,
            hint="Check the directory's permissions.",
        ))
        return []


def _parse_file(
    service: Service, path: Path, environment: str | None, source: FileSource
) -> MigrationFile | None:
    """Parse a name and check the content; report and return None for unusable files."""
    parsed = parse_migration_name(path.name)
    if parsed is None:
        rule = BAD_SQL_NAME if path.name.lower().endswith(".sql") else UNKNOWN_FILE
        service.findings.append(rule.finding(
            f"{path.name} does not match <version>_<title>.<up|down>.sql",
            file=path, service=service.name, environment=environment,
        ))
        return None
    digits, title, direction, extension = parsed
    version = int(digits)
    migration_id = f"{digits}_{title}"
    if version > UINT64_MAX:
        service.findings.append(VERSION_OVERFLOW.finding(
            f"version {digits} of {path.name} is larger than 18446744073709551615",
            file=path, service=service.name, migration=migration_id, environment=environment,
        ))
        return None
    if version > BIGINT_MAX:
        service.findings.append(VERSION_TOO_LARGE.finding(
            f"version {digits} of {path.name} is larger than {BIGINT_MAX}, the largest version "
            "golang-migrate's schema_migrations table can record",
            file=path, service=service.name, migration=migration_id, environment=environment,
        ))
        return None
    if extension != "sql":
        service.findings.append(BAD_EXTENSION.finding(
            f"{path.name} has extension .{extension}; golang-migrate would run it as "
            f"the {direction} migration of version {digits}",
            file=path, service=service.name, migration=migration_id, environment=environment,
        ))
        return None
    if not _content_is_usable(service, path, migration_id, environment, source):
        return None
    return MigrationFile(
        path=path, version=version, version_text=digits, title=title,
        direction="up" if direction == "up" else "down", extension=extension,
        environment=environment,
    )


def _content_is_usable(
    service: Service, path: Path, migration_id: str, environment: str | None, source: FileSource
) -> bool:
    """Report unreadable, non-UTF-8 and empty files. Empty files are still migrations."""
    where: dict[str, Any] = {"file": path, "service": service.name, "migration": migration_id,
             "environment": environment}
    broken = _broken_link(path, source)
    if broken is not None:
        rule, message = broken
        service.findings.append(rule.finding(
            message, hint="Point the link at an existing file, or replace it with the file.",
            **where))
        return False
    try:
        data = source.read_bytes(path)
    except OSError as exc:
        service.findings.append(UNREADABLE.finding(f"cannot read {path.name}: {exc.strerror}",
                                                   **where))
        return False
    nul = data.find(b"\0")
    if nul >= 0:
        service.findings.append(NUL_BYTE.finding(
            f"{path.name} has a NUL byte at offset {nul}; PostgreSQL would receive only the SQL "
            "before it", line=data[:nul].count(b"\n") + 1, **where,
        ))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        service.findings.append(NOT_UTF8.finding(
            f"{path.name} is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            line=line, **where,
        ))
        # Still the migration's file (golang-migrate runs its bytes): dropping it would add a
        # second, misleading finding (missing up or missing down) for the same defect.
        return True
    if not text.strip():
        service.findings.append(EMPTY_FILE.finding(f"{path.name} is empty", **where))
    if isinstance(source, DiskSource):
        remember_text(path, data)  # the analysis reads it next (inside texts_read_once)
    return True


def _broken_link(path: Path, source: FileSource) -> tuple[Rule, str] | None:
    """Why the symbolic link ``path`` cannot be followed, or None when it can (or is none).

    Checked before reading, so the finding says "link" rather than an errno, and no later
    stage ever tries to resolve the link (which raises ``RuntimeError: Symlink loop``).
    """
    problem = source.link_problem(path)
    if problem is None:
        return None
    code, target = problem
    if code == errno.ELOOP:
        return SYMLINK_LOOP, f"{path.name} is a symbolic link that loops (to {target})"
    return UNREADABLE, f"{path.name} is a symbolic link to {target}, which does not exist"


def _pair_files(service: Service, files: list[MigrationFile]) -> None:
    """Group files into migrations by version; report duplicates and unpaired files."""
    service.files = sorted(files, key=lambda f: f.relative_name)
    by_slot: dict[tuple[int, str], MigrationFile] = {}
    for file in sorted(files, key=lambda f: (f.version, f.direction, f.relative_name)):
        slot = (file.version, file.direction)
        first = by_slot.get(slot)
        if first is not None:
            service.findings.append(DUPLICATE_VERSION.finding(
                f"{file.relative_name} has the same version ({file.version}) and direction "
                f"as {first.relative_name}",
                file=file.path, service=service.name,
                migration=f"{file.version_text}_{file.title}", environment=file.environment,
            ))
            continue
        by_slot[slot] = file
    for (version, direction), file in sorted(by_slot.items()):
        migration = service.migrations.get(version)
        if migration is None:
            migration = Migration(
                service=service.name, version=version, version_text=file.version_text,
                title=file.title, environment=file.environment,
            )
            service.migrations[version] = migration
        if direction == "up":
            migration.up = file
            # The up file names the migration: its id uses the up file's digits and title,
            # and its directory says whether it is a base or an environment migration.
            migration.version_text, migration.title = file.version_text, file.title
            migration.environment = file.environment
        else:
            migration.down = file
    for migration in service.migrations.values():
        _check_pair(service, migration)


def _check_pair(service: Service, migration: Migration) -> None:
    up, down = migration.up, migration.down
    if up and down:
        if up.environment != down.environment:
            service.findings.append(DUPLICATE_VERSION.finding(
                f"the up file {up.relative_name} and the down file {down.relative_name} of "
                f"version {migration.version} are in different directories",
                file=down.path, service=service.name, migration=migration.id,
                hint="Keep a migration's up and down files in the same directory.",
            ))
        if up.title != down.title:
            service.findings.append(TITLE_MISMATCH.finding(
                f"{up.relative_name} and {down.relative_name} have different titles",
                file=down.path, service=service.name, migration=migration.id,
                environment=migration.environment,
            ))
    elif down and not up:
        service.findings.append(MISSING_UP.finding(
            f"{down.relative_name} has no matching up file", file=down.path,
            service=service.name, migration=migration.id, environment=migration.environment,
        ))
    # A missing down is judged in config.py: it depends on "reversible" in dependencies.json.


def missing_down_finding(service: Service, migration: Migration, *, with_metadata: bool) -> Finding:
    """The missing-down finding: an error when metadata says reversible, else a warning."""
    assert migration.up is not None
    hint = MISSING_DOWN.hint
    severity = Severity.ERROR if with_metadata else Severity.WARNING
    if not with_metadata:
        hint = ("Add the .down.sql file, or add dependencies.json and mark the migration "
                '"reversible": false.')
    return MISSING_DOWN.finding(
        f"{migration.up.relative_name} has no down file", file=migration.up.path,
        service=service.name, migration=migration.id, environment=migration.environment,
        hint=hint, severity=severity,
    )
