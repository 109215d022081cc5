"""A team's own checks, declared once and run by every front end.

Until a team's conventions ran only as pytest hooks, the same tree was red in CI and green in
``migorch validate``, the pre-commit hook and the deploy runner. Check modules are now declared
in ``[tool.migorch] checks = ["myteam.migration_checks"]`` (the pyproject.toml above the services
root; its directory is importable) and/or under the entry point group ``pytest_migorch.checks``.
A module defines either or both of these plain functions (no pytest needed)::

    def check_service(service: Service) -> list[Finding]: ...
    def check_migration(service: Service, migration: Migration) -> list[Finding]: ...

:func:`load_custom_checks` turns them into one ``ProjectCheck`` for
:func:`pytest_migorch.project.validation.validate_project`, so every front end filters,
escalates and reports the findings the same way. They belong to the ``custom`` check family;
a ``-- migorch:ignore CODE`` comment silences a finding on the statement it precedes, as for the
built-in rules. A module that cannot be imported is a configuration error naming it; a check
that raises becomes a CUS001 finding naming it, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Family, Finding, Rule, Severity, clip
from pytest_migorch.model import Migration, Project, Service
from pytest_migorch.project.pyproject import find_tool_settings
from pytest_migorch.project.validation import MigrationAnalyser

if TYPE_CHECKING:  # the SQL analysis is imported when a check runs: the deploy runner loads
    # custom checks on every start, most often to find none
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = [
    "ENTRY_POINT_GROUP", "CHECK_FAILED", "RULES", "CheckModule", "CustomChecks",
    "load_custom_checks",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "pytest_migorch.checks"

CHECK_FAILED = Rule(
    code="CUS001", name="custom-check-failed", severity=Severity.ERROR, family=Family.CUSTOM,
    summary="A team's check function raised an exception or returned something other than a "
    "list of findings.",
    hint="Fix the check module (run it on this service to see the error); the check is not "
    "skipped, so the tree stays red until it runs.",
)
RULES: tuple[Rule, ...] = (CHECK_FAILED,)

#: The codes an SQL005 message names as idle: "`-- migorch:ignore A, B` silences nothing...".
_IDLE_CODES = re.compile(r"`-- migorch:ignore ([^`]+)` silences nothing")

ServiceCheck = Callable[[Service], Any]
MigrationCheck = Callable[[Service, Migration], Any]


@dataclass(frozen=True)
class CheckModule:
    """One declared check module and the functions it provides."""

    name: str
    origin: str
    check_service: ServiceCheck | None = None
    check_migration: MigrationCheck | None = None

    @classmethod
    def from_object(cls, name: str, origin: str, obj: Any) -> CheckModule:
        service = getattr(obj, "check_service", None)
        migration = getattr(obj, "check_migration", None)
        if not callable(service) and not callable(migration):
            raise ConfigurationError(
                f"custom check module {name!r} ({origin}) defines neither check_service(service) "
                "nor check_migration(service, migration)")
        return cls(name, origin, service if callable(service) else None,
                   migration if callable(migration) else None)


class CustomChecks:
    """Every declared check module; calling it on a project returns their findings."""

    def __init__(self, modules: list[CheckModule], cache: AnalysisCache | None = None) -> None:
        self.modules = modules
        self.cache = cache
        #: Codes of ignore comments that silenced a custom finding, by (file, comment line).
        self.used_ignores: dict[tuple[str, int], set[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.modules)

    def __call__(self, project: Project) -> list[Finding]:
        findings: list[Finding] = []
        for _, service in sorted(project.services.items()):
            findings.extend(self.for_service(service))
            for _, migration in sorted(service.migrations.items()):
                if migration.up is not None:
                    findings.extend(self.for_migration(service, migration))
        return findings

    def for_service(self, service: Service) -> list[Finding]:
        found: list[Finding] = []
        for module in self.modules:
            if module.check_service is not None:
                found += self._run(module, module.check_service, (service,), service, None)
        return found

    def for_migration(self, service: Service, migration: Migration) -> list[Finding]:
        found: list[Finding] = []
        for module in self.modules:
            if module.check_migration is not None:
                found += self._run(module, module.check_migration, (service, migration),
                                   service, migration)
        return self._unsilenced(found, migration)

    def _run(self, module: CheckModule, check: Callable[..., Any], args: tuple[Any, ...],
             service: Service, migration: Migration | None) -> list[Finding]:
        function = getattr(check, "__name__", "check")
        where: dict[str, Any] = {
                 "service": service.name, "migration": migration.id if migration else None,
                 "file": migration.main_file.path if migration else service.migrations_dir}
        try:
            result = check(*args)
        except Exception as exc:  # a team's bug must name the module, not end the run
            log.debug("custom check %s.%s raised", module.name, function, exc_info=True)
            return [CHECK_FAILED.finding(
                f"{module.name}.{function} raised {type(exc).__name__}: {clip(str(exc), 300)}",
                **where)]
        if result is None:
            return []
        if not isinstance(result, (list, tuple)) or not all(isinstance(f, Finding)
                                                            for f in result):
            return [CHECK_FAILED.finding(
                f"{module.name}.{function} returned {type(result).__name__}, not a list of "
                "Finding", **where)]
        return [replace(f, family=Family.CUSTOM, service=f.service or service.name,
                        migration=f.migration or where["migration"]) for f in result]

    def _unsilenced(self, findings: list[Finding], migration: Migration) -> list[Finding]:
        """``findings`` without those a ``-- migorch:ignore`` comment silences."""
        if not findings:
            return findings
        kept = []
        for finding in findings:
            file = next((f for f in (migration.up, migration.down)
                         if f is not None and finding.file is not None
                         and f.path == finding.file), None)
            if file is None or finding.line is None:
                kept.append(finding)
                continue
            from pytest_migorch.sql.analysis import analyse_sql

            analysis = analyse_sql(file.read_text(), self.cache)
            statement = next((s for s in analysis.statements
                              if s.line <= finding.line <= s.end_line), None)
            if statement is None or not ({finding.code, finding.name}
                                         & statement.ignored_codes):
                kept.append(finding)
                continue
            for ignore in statement.ignores:
                used = {finding.code, finding.name} & set(ignore.codes)
                self.used_ignores.setdefault((str(file.path), ignore.line), set()).update(used)
        return kept

    def without_used_ignores(self, findings: list[Finding]) -> list[Finding]:
        """``findings`` without the SQL005 (unused ignore) of comments that only name codes
        which silenced a custom finding: the built-in analysis does not know a team's codes.

        Call it after the custom checks ran (``validate_project`` runs project checks first).
        """
        from pytest_migorch.checks.migration import UNUSED_IGNORE

        kept = []
        for finding in findings:
            if finding.code == UNUSED_IGNORE.code and finding.file is not None and finding.line:
                match = _IDLE_CODES.search(finding.message)
                used = self.used_ignores.get((str(finding.file), finding.line), set())
                if match and {c.strip() for c in match.group(1).split(",")} <= used:
                    continue
            kept.append(finding)
        return kept

    def analyser(self, base: MigrationAnalyser) -> MigrationAnalyser:
        """``base`` (the SQL analysis) with :meth:`without_used_ignores` applied."""

        def analyse(service: Service, migration: Migration) -> list[Finding]:
            return self.without_used_ignores(base(service, migration))

        return analyse


def load_custom_checks(root: Path, cache: AnalysisCache | None = None) -> CustomChecks:
    """The check modules of ``[tool.migorch] checks`` above ``root`` and of the entry points."""
    settings = find_tool_settings(root)
    modules: list[CheckModule] = []
    if settings.checks:
        assert settings.file is not None
        origin = f"{settings.file} [tool.migorch] checks"
        for name in settings.checks:
            obj = _import(name, origin, settings.file.parent)
            modules.append(CheckModule.from_object(name, origin, obj))
    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {point.name!r} of group {ENTRY_POINT_GROUP}"
        try:
            obj = point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"custom check module {point.value!r} ({origin}) failed to import: "
                f"{type(exc).__name__}: {exc}") from exc
        modules.append(CheckModule.from_object(point.value, origin, obj))
    return CustomChecks(modules, cache)


def _import(name: str, origin: str, directory: Path) -> ModuleType:
    """Import ``name`` with the pyproject.toml's directory importable (a repository's own code)."""
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ConfigurationError(
            f"custom check module {name!r} ({origin}) failed to import: "
            f"{type(exc).__name__}: {exc}; make it importable from {directory} or install it"
        ) from exc
