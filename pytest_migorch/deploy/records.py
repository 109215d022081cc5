"""What a tracking row says, as plain values: statuses, actions and the row types.

Pure (no database, no psycopg): planning, recovery decisions and status reports work on these
values, so they are tested without a server. The strings are the ones the SPEC's ``CHECK``
constraints allow; the enums are ``str`` subclasses, so a row read back compares equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pytest_migorch.project.load_cache import known_checksum

__all__ = ["TextEnum", "Status", "Action", "ExecutionRecord", "HistoryRecord", "SchemaVersion",
           "STATUSES", "ACTIONS", "file_checksum"]


class TextEnum(str, Enum):
    """A ``str`` enum that prints as its value on every supported Python (``enum.StrEnum``
    is 3.11+; the package supports 3.10)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def file_checksum(path: Path) -> str:
    """sha256 (hex) of a migration file's bytes: the ``checksum`` column, what drift compares.

    A file the project cache hashed when it loaded the tree, and whose stat has not changed
    since, is not read again (:func:`~pytest_migorch.project.load_cache.known_checksum`)."""
    return known_checksum(path) or hashlib.sha256(path.read_bytes()).hexdigest()


class Status(TextEnum):
    """The ``status`` column of both tracking tables."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class Action(TextEnum):
    """What a history row records: a migration run up or down, adopted from golang-migrate's
    table, resolved by ``force``, or an interrupted run found and resolved by the next one."""

    UP = "up"
    DOWN = "down"
    ADOPT = "adopt"
    FORCE = "force"
    RECOVER = "recover"


STATUSES = tuple(s.value for s in Status)
ACTIONS = tuple(a.value for a in Action)


@dataclass(frozen=True)
class ExecutionRecord:
    """One row of ``migration_executions``."""

    id: int
    migration_id: str
    migration_version: str
    environment: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    executed_by: str | None
    checksum: str | None
    dependencies: Any
    metadata: dict[str, Any]
    error_message: str | None
    rollback_version: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def version(self) -> int:
        return int(self.migration_version) if self.migration_version.isdigit() else -1

    @property
    def dirty(self) -> bool:
        """True when this row is the reason golang-migrate's dirty flag is set."""
        return bool(self.metadata.get("dirty"))

    @property
    def action(self) -> str:
        return str(self.metadata.get("action", Action.UP))

    @property
    def transactional(self) -> bool:
        return bool(self.metadata.get("transactional", True))

    @property
    def backend_pid(self) -> int | None:
        pid = self.metadata.get("backend_pid")
        return int(pid) if isinstance(pid, int) else None

    @property
    def counts_as_applied(self) -> bool:
        """Whether the migration's effects are in the database as far as planning goes:
        completed, or a rollback still running (or interrupted): until a rollback finishes,
        the migration is still applied."""
        return self.status == Status.COMPLETED or (
            self.status == Status.RUNNING and self.action == Action.DOWN)


@dataclass(frozen=True)
class HistoryRecord:
    """One row of the append-only history."""

    id: int
    execution_id: int
    migration_id: str
    migration_version: str
    environment: str
    action: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    executed_by: str | None
    checksum: str | None
    error_message: str | None
    rollback_version: str | None
    metadata: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class SchemaVersion:
    """golang-migrate's view: ``version`` is -1 (NilVersion) when its table is empty or absent."""

    version: int = -1
    dirty: bool = False
    exists: bool = False

    def describe(self) -> str:
        if not self.exists:
            return "no table"
        if self.version < 0 and not self.dirty:
            return "no version"
        return f"{self.version}{' (dirty)' if self.dirty else ''}"
