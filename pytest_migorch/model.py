"""The data every stage shares: services, migrations, their files and their metadata.

Data flows one way: :mod:`discovery` builds :class:`Service` objects from the file system,
:mod:`config` attaches :class:`MigrationMeta` and environments from the JSON files, :mod:`graph`
resolves orders. Later stages (analysis, round-trip, runner) only read these objects.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pytest_migorch.findings import Finding

__all__ = [
    "RiskLevel",
    "MigrationFile",
    "DependencyRef",
    "MigrationMeta",
    "Migration",
    "Environment",
    "Service",
    "Project",
    "schema_name",
    "is_protected_by_default",
    "DEFAULT_ENVIRONMENT",
    "TRANSACTIONAL_BY_DEFAULT",
    "REVERSIBLE_BY_DEFAULT",
    "IDENTIFIER_MAX_BYTES",
    "texts_read_once",
    "remember_text",
    "decoded_text",
    "read_file_bytes",
]

Direction = Literal["up", "down"]

#: The environment name used when a service has no environments.json: base migrations only.
DEFAULT_ENVIRONMENT = "default"

#: A migration without a ``transactional`` / ``reversible`` entry (or without any entry) runs in
#: one transaction (unless its SQL cannot, see :mod:`pytest_migorch.sql.execution_mode`) and
#: must have a down file; every reader of the metadata uses these.
TRANSACTIONAL_BY_DEFAULT = True
REVERSIBLE_BY_DEFAULT = True

#: Environments treated as production when environments.json does not say ``"protected"``.
_PROTECTED_BY_DEFAULT = frozenset({"production", "prod"})

#: PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
IDENTIFIER_MAX_BYTES = 63


class RiskLevel(str, enum.Enum):
    """Declared or derived risk; ordered so levels can be compared."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high").index(self.value)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank >= other.rank


@dataclass(frozen=True)
class MigrationFile:
    """One ``.up`` or ``.down`` file, parsed with golang-migrate's name rule."""

    path: Path
    version: int
    version_text: str
    title: str
    direction: Direction
    extension: str
    environment: str | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def relative_name(self) -> str:
        """The name as environments.json lists it: ``development/000003_x.up.sql``."""
        return f"{self.environment}/{self.name}" if self.environment else self.name

    def read_text(self) -> str:
        """The file's SQL. Discovery already reported files that are not UTF-8.

        Inside :func:`texts_read_once` a file is read once and the same text served again."""
        memo = _texts_read
        if memo is None:
            return decoded_text(read_file_bytes(self.path))
        text = memo.get(self.path)
        if text is None:
            text = decoded_text(read_file_bytes(self.path))
            if len(text) <= TEXT_MEMO_MAX_CHARS:
                memo[self.path] = text
        return text


def decoded_text(data: bytes) -> str:
    """A file's bytes as ``Path.read_text(encoding="utf-8", errors="replace")`` reads them,
    universal newlines included (``\r\n`` and a lone ``\r`` become ``\n``), without a text
    stream: for thousands of small files the stream costs more than the decoding."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_file_bytes(path: str | Path) -> bytes:
    """The bytes of ``path`` by plain system calls: a third of what ``open()`` and its
    buffered reader cost per file, for the thousands of small files of a tree (same errors,
    same strerror). The one reader of migration files, discovery's and the fingerprint's
    (:mod:`pytest_migorch.project.sources`) as well as :meth:`MigrationFile.read_text`'s."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def remember_text(path: Path, data: bytes) -> None:
    """Inside :func:`texts_read_once`, keep the text of ``path`` whose bytes a caller has just
    read from the file system (discovery, which checks every file's content), so it is not
    read again. Only for the file system's own bytes: a git revision's are another text."""
    if _texts_read is not None and len(data) <= TEXT_MEMO_MAX_CHARS:
        _texts_read[path] = decoded_text(data)


#: Files up to this many characters are kept by :func:`texts_read_once` (bounding its memory).
TEXT_MEMO_MAX_CHARS = 64_000

_texts_read: dict[Path, str] | None = None


@contextlib.contextmanager
def texts_read_once() -> Iterator[None]:
    """While the block runs, :meth:`MigrationFile.read_text` reads each file once.

    ``migorch validate`` asks for the text of every file four or five times (its analysis, the
    schema history, its checks, its execution mode); reading them once also means every check
    sees the same contents. The result cache still compares the files' fingerprint after the
    run, so a file edited meanwhile is not cached with findings of its old text."""
    global _texts_read
    outer = _texts_read
    _texts_read = {} if outer is None else outer
    try:
        yield
    finally:
        _texts_read = outer


@dataclass(frozen=True)
class DependencyRef:
    """An entry of ``depends_on``: a version of this service or ``other-service:version``."""

    service: str
    version: int
    text: str
    #: The line of this entry in dependencies.json.
    line: int | None = field(default=None, compare=False)

    def key(self) -> tuple[str, int]:
        return (self.service, self.version)


@dataclass(frozen=True)
class MigrationMeta:
    """A migration's entry in dependencies.json, with defaults applied."""

    description: str = ""
    depends_on: tuple[DependencyRef, ...] = ()
    affects_tables: tuple[str, ...] = ()
    risk_level: RiskLevel = RiskLevel.LOW
    estimated_duration: str = ""
    estimated_seconds: float = 0.0
    #: dependencies.json's ``transactional``: None when it does not say (the SQL decides, see
    #: :mod:`pytest_migorch.sql.execution_mode`).
    transactional: bool | None = None
    reversible: bool = REVERSIBLE_BY_DEFAULT
    #: Where the entry stands in dependencies.json, for findings that concern it.
    file: Path | None = None
    line: int | None = None


@dataclass
class Migration:
    """One version of a service: its up and down files and its metadata."""

    service: str
    version: int
    version_text: str
    title: str
    environment: str | None
    up: MigrationFile | None = None
    down: MigrationFile | None = None
    meta: MigrationMeta | None = None

    @property
    def id(self) -> str:
        """``<version digits as in the file name>_<title>``, e.g. ``000001_create_users``."""
        return f"{self.version_text}_{self.title}"

    @property
    def key(self) -> tuple[str, int]:
        return (self.service, self.version)

    @property
    def qualified_id(self) -> str:
        return f"{self.service}:{self.id}"

    @property
    def transactional(self) -> bool:
        """The declared mode, the default applied when undeclared. How a file actually runs is
        :func:`pytest_migorch.sql.execution_mode.execution_mode` of it and
        :attr:`declared_transactional`."""
        declared = self.declared_transactional
        return TRANSACTIONAL_BY_DEFAULT if declared is None else declared

    @property
    def declared_transactional(self) -> bool | None:
        """dependencies.json's ``transactional``: True, False, or None when not declared."""
        return self.meta.transactional if self.meta else None

    @property
    def reversible(self) -> bool:
        """Whether the migration may be rolled back (the default without metadata)."""
        return self.meta.reversible if self.meta else REVERSIBLE_BY_DEFAULT

    def file_for(self, direction: Direction) -> MigrationFile | None:
        """The file that runs when the migration goes ``direction`` (None when it is missing).

        The one place that maps a direction to a file, so applying, planning and the round-trip
        cannot disagree about it.
        """
        return self.up if direction == "up" else self.down

    @property
    def is_base(self) -> bool:
        return self.environment is None

    @property
    def depends_on(self) -> tuple[DependencyRef, ...]:
        return self.meta.depends_on if self.meta else ()

    @property
    def main_file(self) -> MigrationFile:
        """The file that represents the migration in findings (the up file when there is one)."""
        found = self.up or self.down
        assert found is not None, "a Migration always has at least one file"
        return found


#: When a deploy hook runs (environments.json ``hooks``; docs/runner.md "Hooks").
HOOK_EVENTS = ("before_run", "after_each", "after_run",
               "before_down", "after_each_down", "after_down")


@dataclass(frozen=True)
class Hook:
    """One deploy hook: a SQL file run in the migration session, or a command (no shell).

    Paths (the SQL file, a relative command) are relative to the service directory."""

    event: str
    sql: str | None = None
    command: tuple[str, ...] = ()
    timeout: float = 300.0

    @property
    def label(self) -> str:
        return f"sql {self.sql}" if self.sql else "command " + " ".join(self.command)


@dataclass
class Environment:
    """An environment of environments.json and the environment-only versions it adds."""

    name: str
    versions: tuple[int, ...] = ()
    protected: bool = False
    line: int | None = None
    #: Deploy hooks by event (``HOOK_EVENTS``), in declaration order.
    hooks: dict[str, tuple[Hook, ...]] = field(default_factory=dict)


@dataclass
class Service:
    """``<root>/<service>/migrations/`` with everything discovery and config found in it."""

    name: str
    root: Path
    migrations_dir: Path
    migrations: dict[int, Migration] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    dependencies_file: Path | None = None
    environments_file: Path | None = None
    #: False when dependencies.json is missing or unusable: the set runs in file-name order.
    has_metadata: bool = False
    #: False when environments.json is missing or unusable: base migrations only, any env name.
    has_environments: bool = False
    #: Versions with an entry in dependencies.json, usable or not (an entry the schema rejects
    #: has no ``meta`` but is still there: integrity must not take it for removed).
    dependency_entries: set[int] = field(default_factory=set)
    #: Every migration file discovery parsed, duplicates included (those are not in
    #: ``migrations``): what golang-migrate would see, for the released-migration comparison.
    files: list[MigrationFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: ``migrations_table`` as declared in dependencies.json (None: the default).
    declared_migrations_table: str | None = None

    @property
    def schema(self) -> str:
        return schema_name(self.name)

    @property
    def migrations_table(self) -> tuple[str, str]:
        """golang-migrate's table of this service as (schema, table): the declared one, so a
        set whose migrations touch golang-migrate's own table runs against that table, else
        ``public.<schema>_schema_migrations``. An unqualified name is in ``public``."""
        declared = self.declared_migrations_table
        if not declared:
            return "public", f"{self.schema}_schema_migrations"
        schema, _, table = declared.rpartition(".")
        return schema or "public", table

    def environment_names(self) -> list[str]:
        """Declared environments, or the implicit default one when none are declared."""
        if self.has_environments and self.environments:
            return sorted(self.environments)
        return [DEFAULT_ENVIRONMENT]

    def migrations_for(self, environment: str) -> list[Migration]:
        """Base migrations plus the environment's own, by version (not yet resolved)."""
        extra: set[int] = set()
        env = self.environments.get(environment)
        if env is not None:
            extra = set(env.versions)
        return [
            m
            for v, m in sorted(self.migrations.items())
            if m.is_base or v in extra
        ]

    def base_migrations(self) -> list[Migration]:
        return [m for _, m in sorted(self.migrations.items()) if m.is_base]


@dataclass
class Project:
    """Every service under one services root."""

    root: Path
    services: dict[str, Service] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for service in self.services.values():
            out.extend(service.findings)
        return out

    def environment_names(self) -> list[str]:
        """Every environment any service declares (the default one when none declares any)."""
        names: set[str] = set()
        for service in self.services.values():
            if service.has_environments:
                names.update(service.environments)
        return sorted(names) or [DEFAULT_ENVIRONMENT]

    def migration(self, service: str, version: int) -> Migration | None:
        svc = self.services.get(service)
        return svc.migrations.get(version) if svc else None


_SCHEMA_UNSAFE = re.compile(r"-")


def schema_name(service: str) -> str:
    """The service's PostgreSQL schema: the service name with ``-`` replaced by ``_``, as
    PostgreSQL stores it (cut to 63 bytes, never inside a UTF-8 character).

    Every front end and the runner call this, so two services that end up in one schema are
    found by comparing its results (see the configuration checks).
    """
    name = _SCHEMA_UNSAFE.sub("_", service)
    encoded = name.encode("utf-8")
    if len(encoded) <= IDENTIFIER_MAX_BYTES:
        return name
    return encoded[:IDENTIFIER_MAX_BYTES].decode("utf-8", "ignore")


def is_protected_by_default(environment: str) -> bool:
    """Whether ``environment`` is production-like when environments.json does not decide:
    ``production`` and ``prod`` in any case (``Production``, ``PROD``)."""
    return environment.casefold() in _PROTECTED_BY_DEFAULT
