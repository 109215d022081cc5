"""What a deploy will do, decided before touching anything: environments, plans and the state of
each service as its tracking rows describe it.

Everything here is pure (no database): :mod:`pytest_migorch.deploy.runner` reads the rows and hands
them over, so plans, drift and dirty-state decisions are tested without a server. The plan of each
migration (risk level, tables, estimated duration) comes from :mod:`pytest_migorch.checks.migration`
when it can analyse the SQL, else from the migration's declared metadata.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

from pytest_migorch.deploy.records import ExecutionRecord, SchemaVersion, Status, file_checksum
from pytest_migorch.deploy.step_risk import down_risk_or_none, up_risk
from pytest_migorch.errors import ConfigurationError, UsageError
from pytest_migorch.findings import display_path
from pytest_migorch.model import (
    DEFAULT_ENVIRONMENT,
    Migration,
    Project,
    RiskLevel,
    Service,
    is_protected_by_default,
)
from pytest_migorch.project.discovery import SCHEMA_COLLISION
from pytest_migorch.project.squashed import is_squashed_title, squashed_ids
from pytest_migorch.sql.execution_mode import file_execution_mode

if TYPE_CHECKING:
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = [
    "Direction",
    "PlanStep",
    "Plan",
    "Drift",
    "ServiceState",
    "resolve_environment",
    "check_environment_name",
    "check_schema_collisions",
    "is_protected",
    "plan_step",
    "base_prefix",
    "format_seconds",
]

log = logging.getLogger(__name__)

Direction = Literal["up", "down"]


# --- environments -----------------------------------------------------------------------------


def resolve_environment(
    project: Project, services: Sequence[str], requested: str | None,
    environ: Mapping[str, str] = os.environ,
) -> str:
    """The environment from ``--env`` or ``APP_ENV``, checked against every selected service.

    A service without environments.json accepts any name (it only has base migrations); with
    no name at all, only such services can run, in the implicit ``default`` environment.
    """
    name = requested or environ.get("APP_ENV") or None
    declaring = [project.services[s] for s in services if project.services[s].has_environments]
    if name is None:
        if not declaring:
            return DEFAULT_ENVIRONMENT
        declared = sorted({env for svc in declaring for env in svc.environments})
        raise UsageError(
            "no environment: pass --env NAME or set APP_ENV (declared: "
            + ", ".join(declared) + ")"
        )
    for service in declaring:
        if name not in service.environments:
            listed = ", ".join(sorted(service.environments)) or "none"
            where = display_path(service.environments_file) if service.environments_file else ""
            raise ConfigurationError(
                f"Environment not found in configuration: {name!r} is not declared in "
                f"{where or service.name} (declared: {listed})"
            )
    return name


def is_protected(project: Project, services: Iterable[str], environment: str) -> bool:
    """True when any selected service treats ``environment`` as protected (production by
    default; ``"protected": true|false`` in environments.json decides)."""
    for name in services:
        service = project.services[name]
        env = service.environments.get(environment)
        if env is not None:
            if env.protected:
                return True
        elif is_protected_by_default(environment):
            return True
    return False


#: Width of the tracking tables' ``environment`` column (SPEC section 6).
ENVIRONMENT_MAX_LENGTH = 50


def check_environment_name(name: str) -> None:
    """An environment name the tracking column cannot hold is bad usage, found before any
    connection (PostgreSQL would fail the first write half-way into a run)."""
    if len(name) > ENVIRONMENT_MAX_LENGTH:
        raise UsageError(
            f"environment name {name[:20]!r}... is {len(name)} characters long; the tracking "
            f"tables hold at most {ENVIRONMENT_MAX_LENGTH} (use a shorter --env / APP_ENV)")


def check_schema_collisions(project: Project, services: Iterable[str]) -> None:
    """Refuse when a selected service shares its schema with another service: both would
    write one set of tracking tables and one golang-migrate table. Discovery finds the
    collision (FIL018); every database command refuses on it, ``status`` included."""
    for name in services:
        for finding in project.services[name].findings:
            if finding.code == SCHEMA_COLLISION.code:
                raise ConfigurationError(
                    f"{finding.message}: they would share tracking tables, golang-migrate's "
                    "table and its lock. Rename one service directory; nothing was done.")


# --- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStep:
    """One migration to apply or roll back, with what the plan shows about it."""

    migration: Migration
    direction: Direction
    risk_level: RiskLevel | None
    declared_risk: RiskLevel | None
    reasons: tuple[str, ...]
    tables: tuple[str, ...]
    estimated_seconds: float
    estimated_duration: str
    transactional: bool
    file: Path
    #: Why the file runs outside a transaction when its SQL (not dependencies.json) decided it.
    execution: str = ""
    #: What a rollback step destroys (``DROP TABLE users destroys its data``), from its SQL.
    loses: tuple[str, ...] = ()

    @property
    def high_risk(self) -> bool:
        return self.risk_level is RiskLevel.HIGH

    @property
    def label(self) -> str:
        return f"{self.migration.service} {self.migration.id}"

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        m = self.migration
        return {
            "service": m.service,
            "migration": m.id,
            "version": m.version_text,
            "environment_only": m.environment,
            "direction": self.direction,
            "risk_level": self.risk_level.value if self.risk_level else None,
            "declared_risk_level": self.declared_risk.value if self.declared_risk else None,
            "reasons": list(self.reasons),
            "tables": list(self.tables),
            "estimated_duration": self.estimated_duration or None,
            "estimated_seconds": self.estimated_seconds,
            "transactional": self.transactional,
            "execution": self.execution or None,
            "loses": list(self.loses),
            "file": display_path(self.file, root),
        }


@dataclass
class Plan:
    """The ordered steps of one ``up`` or ``down``, shown before anything runs."""

    direction: Direction
    environment: str
    protected: bool
    steps: list[PlanStep] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(step.estimated_seconds for step in self.steps)

    @property
    def high_risk(self) -> list[PlanStep]:
        return [step for step in self.steps if step.high_risk]

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "environment": self.environment,
            "protected": self.protected,
            "steps": [step.to_json(root) for step in self.steps],
            "total_estimated_seconds": self.total_seconds,
            "total_estimated_duration": format_seconds(self.total_seconds),
            "high_risk": [f"{s.migration.service}:{s.migration.id}" for s in self.high_risk],
        }

    def render(self, root: Path | None = None) -> str:
        """The plan as people read it: one line per step, then the total."""
        if not self.steps:
            return "Nothing to do."
        verb = "apply" if self.direction == "up" else "roll back"
        lines = [f"Plan: {verb} {len(self.steps)} migration(s) in environment "
                 f"{self.environment!r}{' (protected)' if self.protected else ''}"]
        width = max(len(step.label) for step in self.steps)
        for index, step in enumerate(self.steps, 1):
            risk = step.risk_level.value if step.risk_level else "-"
            mark = "!" if step.high_risk else " "
            tables = ", ".join(step.tables) or "-"
            extra = "" if step.transactional else "  [non-transactional]"
            lines.append(
                f" {mark}{index:>3}. {step.label:<{width}}  risk {risk:<6}  est "
                f"{step.estimated_duration or '?':>6}  tables: {tables}{extra}"
            )
            for reason in step.reasons:
                lines.append(f"        - {reason}")
            if step.execution:
                lines.append(f"        - outside a transaction: {step.execution} "
                             '(declare "transactional": false to say so)')
        lines.append(f"Total estimated duration: {format_seconds(self.total_seconds)}")
        return "\n".join(lines)


def plan_step(
    migration: Migration, direction: Direction, schema: str, cache: AnalysisCache | None = None
) -> PlanStep:
    """The plan entry of a migration: the risk analysis when available, else its metadata.

    ``cache`` keeps analyses by file content (default: the process-wide in-memory cache)."""
    meta = migration.meta
    declared = meta.risk_level if meta else None
    tables: tuple[str, ...] = meta.affects_tables if meta else ()
    estimated = meta.estimated_seconds if meta else 0.0
    estimated_text = meta.estimated_duration if meta else ""
    file = migration.file_for(direction)
    assert file is not None, f"{migration.qualified_id} has no {direction} file"
    risk: RiskLevel | None = declared if direction == "up" else None
    reasons: tuple[str, ...] = ()
    loses: tuple[str, ...] = ()
    if direction == "up":
        analysed = up_risk(migration, schema, cache)
        if analysed is not None:
            risk, reasons, found_tables = analysed
            tables = found_tables or tables
    else:
        down = down_risk_or_none(migration, schema, cache)
        if down is not None:
            risk, reasons, loses = down.level, down.reasons, down.loses
    mode = file_execution_mode(migration, file)
    return PlanStep(
        migration=migration, direction=direction, risk_level=risk, declared_risk=declared,
        reasons=reasons, tables=tables, estimated_seconds=estimated,
        estimated_duration=estimated_text, transactional=mode.transactional, file=file.path,
        execution=mode.reason() if mode.derived else "", loses=loses,
    )


def format_seconds(seconds: float) -> str:
    """A Go-style duration for people: ``45s``, ``2m30s``, ``1h5m``, ``120ms``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


# --- state of a service -----------------------------------------------------------------------


def base_prefix(base_versions: Iterable[int], applied: Iterable[int]) -> int:
    """golang-migrate's version: the highest base version up to which every base version is
    applied, or -1 (NilVersion) when the first one is not."""
    done = set(applied)
    version = -1
    for candidate in sorted(base_versions):
        if candidate not in done:
            break
        version = candidate
    return version


@dataclass(frozen=True)
class Drift:
    """An applied migration whose file changed, was renamed or disappeared since."""

    migration_id: str
    version: str
    kind: Literal["changed", "renamed", "missing"]
    message: str
    file: Path | None = None
    recorded_checksum: str | None = None
    current_checksum: str | None = None

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        return {
            "migration": self.migration_id, "version": self.version, "kind": self.kind,
            "message": self.message,
            "file": display_path(self.file, root) if self.file else None,
            "recorded_checksum": self.recorded_checksum,
            "current_checksum": self.current_checksum,
        }


@dataclass
class ServiceState:
    """One service in one environment as the database records it, against its files.

    Rows are matched to migrations by version (a version is unique in a service), so a file
    renamed after it was applied still counts as applied, and shows as drift.
    """

    service: Service
    environment: str
    order: list[Migration]
    initialised: bool
    schema_version: SchemaVersion
    records: list[ExecutionRecord]
    other_environments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._base: list[int] | None = None
        self._index()

    def _index(self) -> None:
        """Index the rows by version and by id once, so each later lookup is O(1)."""
        self.by_version: dict[int, ExecutionRecord] = {r.version: r for r in self.records}
        self._positions = {r.id: i for i, r in enumerate(self.records)}
        # Ids a `migorch squash` replaced (kept in migrations/squashed/), and the squashed
        # migrations that replaced them, lowest first.
        self._replaced = squashed_ids(self.service.migrations_dir)
        self._squashes = [m for m in self.order if is_squashed_title(m.title)]

    @classmethod
    def build(
        cls, service: Service, environment: str, order: list[Migration], initialised: bool,
        schema_version: SchemaVersion, all_records: list[ExecutionRecord],
    ) -> ServiceState:
        mine = [r for r in all_records if r.environment == environment]
        others = sorted({r.environment for r in all_records
                         if r.environment != environment and r.status == Status.COMPLETED})
        return cls(service, environment, order, initialised, schema_version, mine, others)

    @property
    def schema(self) -> str:
        return self.service.schema

    def refresh(self, all_records: list[ExecutionRecord], schema_version: SchemaVersion) -> None:
        """Replace the rows with what the database now holds (after a step)."""
        self.records = [r for r in all_records if r.environment == self.environment]
        self._index()
        self.schema_version = schema_version

    def replace_record(self, record: ExecutionRecord, schema_version: SchemaVersion) -> None:
        """Take in one row that a step wrote (and golang-migrate's version after it)."""
        if record.environment == self.environment:
            # In place, O(1) per step: rebuilding the list and index after every step made a
            # run of n migrations quadratic.
            position = self._positions.get(record.id)
            if position is not None:
                self.records[position] = record
            else:  # a new row: its id is the highest yet, so id order holds
                self._positions[record.id] = len(self.records)
                self.records.append(record)
            self.by_version[record.version] = record
        self.schema_version = schema_version

    def record(self, migration: Migration) -> ExecutionRecord | None:
        return self.by_version.get(migration.version)

    def is_applied(self, migration: Migration) -> bool:
        """Applied, or being (or interrupted while being) rolled back: still applied."""
        record = self.record(migration)
        return record is not None and record.counts_as_applied

    def applied_versions(self) -> set[int]:
        return {r.version for r in self.records if r.counts_as_applied}

    @property
    def applied(self) -> list[Migration]:
        return [m for m in self.order if self.is_applied(m)]

    @property
    def pending(self) -> list[Migration]:
        return [m for m in self.order if not self.is_applied(m)]

    @property
    def failed(self) -> list[ExecutionRecord]:
        return [r for r in self.records if r.status == Status.FAILED]

    @property
    def running(self) -> list[ExecutionRecord]:
        return [r for r in self.records if r.status == Status.RUNNING]

    @property
    def dirty_records(self) -> list[ExecutionRecord]:
        """Rows of non-transactional runs that stopped half-way (the dirty flag's cause)."""
        return [r for r in self.records
                if r.dirty and r.status in (Status.FAILED, Status.RUNNING)]

    def prefix(self, applied: Iterable[int] | None = None) -> int:
        """golang-migrate's version for ``applied`` (default: what is recorded)."""
        if self._base is None:  # once per state, not once per step
            self._base = sorted(m.version for m in self.service.base_migrations()
                                if m.up is not None)
        return base_prefix(self._base, self.applied_versions() if applied is None else applied)

    def squashed_into(self, record: ExecutionRecord) -> Migration | None:
        """The squashed migration that now stands for the migration ``record`` applied, when a
        squash replaced it (its file is in ``migrations/squashed/``); None otherwise."""
        if self._replaced.get(record.migration_id) != record.version:
            return None
        return next((m for m in self._squashes if m.version >= record.version), None)

    def partial_squashes(self) -> list[tuple[Migration, list[str]]]:
        """Squashed migrations not applied although some migrations they replaced are: running
        one would create its objects over a partial schema."""
        out = []
        for squash in self._squashes:
            if self.is_applied(squash):
                continue
            done = [r.migration_id for r in self.records if r.status == "completed"
                    and self.squashed_into(r) is squash]
            if done:
                out.append((squash, done))
        return out

    def drift(self) -> list[Drift]:
        """Applied files that changed, were renamed, or are gone (not those a squash
        replaced: the squashed migration stands for them)."""
        out: list[Drift] = []
        known = {m.version: m for m in self.order}
        for record in self.records:
            if record.status != Status.COMPLETED or self.squashed_into(record) is not None:
                continue
            migration = known.get(record.version)
            if migration is None or migration.up is None:
                out.append(Drift(
                    record.migration_id, record.migration_version, "missing",
                    f"{record.migration_id} is applied but its up file is no longer in "
                    f"{self.service.name}/migrations/ for environment {self.environment!r}",
                    recorded_checksum=record.checksum,
                ))
                continue
            current = file_checksum(migration.up.path)
            if record.migration_id != migration.id:
                out.append(Drift(
                    record.migration_id, record.migration_version, "renamed",
                    f"{record.migration_id} was applied under that name; the file is now "
                    f"{migration.up.relative_name}",
                    migration.up.path, record.checksum, current,
                ))
            elif record.checksum and record.checksum != current:
                out.append(Drift(
                    record.migration_id, record.migration_version, "changed",
                    f"{migration.up.relative_name} changed since it was applied "
                    f"(sha256 {record.checksum[:12]} then, {current[:12]} now)",
                    migration.up.path, record.checksum, current,
                ))
        return out
