"""The collectors and items the plugin generates for every services root.

``pytest --migorch services/`` turns each root into::

    services/user-service::config                             configuration of the service
    services/user-service::files                              file names, pairing, encoding
    services/user-service::graph                              dependencies, cycles, environments
    services/user-service::sql[000001_x]                      SQL vs affects_tables
    services/user-service::risk[000001_x]                     risk rules vs risk_level
    services/user-service::roundtrip[development]::000001_x   up, down, up again in PostgreSQL

Items only present what the core computed (:mod:`pytest_migorch.project.validation`,
:mod:`pytest_migorch.roundtrip.engine`); a failing item prints its findings, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from pytest_migorch.checks.custom import load_custom_checks
from pytest_migorch.checks.migration import MigrationReport, check_migration
from pytest_migorch.checks.schema_history import service_models
from pytest_migorch.checks.schema_model import SchemaModel
from pytest_migorch.errors import ConfigurationError, MigorchError, ServerUnavailable
from pytest_migorch.findings import Family, Finding, Severity
from pytest_migorch.model import Migration, Project, Service, schema_name
from pytest_migorch.project.fingerprint import fingerprint_tree
from pytest_migorch.project.result_cache import ResultCache, ServiceFindings, root_options
from pytest_migorch.project.validation import ValidationResult, load_project, validate_project
from pytest_migorch.pytest_plugin.history import RootHistory, root_history
from pytest_migorch.pytest_plugin.keys import ANALYSIS_CACHE_KEY, SERVER_KEY, SETTINGS_KEY
from pytest_migorch.pytest_plugin.settings import MigorchSettings
from pytest_migorch.reports.selection import ChangeSelection
from pytest_migorch.roundtrip.coverage import EnvironmentPlan, files_block, plan_environments
from pytest_migorch.vcs.integrity import changed_services, check_against_base, with_dependents

if TYPE_CHECKING:  # loaded when a database item runs: --migorch-no-db never needs psycopg
    from pytest_migorch.postgres.servers import PostgresServer
    from pytest_migorch.roundtrip.engine import MigrationOutcome, RoundTrip

__all__ = [
    "SETTINGS_KEY",
    "SERVER_KEY",
    "ANALYSIS_CACHE_KEY",
    "ServicesRoot",
    "MigorchItem",
    "LazyServer",
]

SERVICE_CHECKS = (Family.CONFIG, Family.FILES, Family.GRAPH)
MIGRATION_CHECKS = (Family.SQL, Family.RISK)


class LazyServer:
    """The session's throwaway PostgreSQL, started on first use and stopped at session end.

    One per session, so one per pytest-xdist worker. A failure to get one is remembered, so
    every database test reports the same single reason without retrying.
    """

    def __init__(self, settings: MigorchSettings) -> None:
        self.settings = settings
        self._server: PostgresServer | None = None
        self._error: ServerUnavailable | None = None

    def get(self) -> PostgresServer:
        if self._server is None:
            if self._error is not None:
                raise self._error
            from pytest_migorch.postgres.servers import ServerOptions, start_server

            options = ServerOptions(
                provider=self.settings.provider, dsn=self.settings.dsn,
                bin_dir=str(self.settings.pg_bindir) if self.settings.pg_bindir else None,
            )
            try:
                self._server = start_server(options)
            except ServerUnavailable as exc:
                self._error = exc
                raise
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None



def child_id(parent: pytest.Collector, name: str) -> dict[str, str]:
    """The ``nodeid`` keyword for a non-file child of ``parent`` named ``name``.

    pytest 9 matches ``--lf``/``--ff`` by parsing the ids in its cache, which reads the first
    ``[...]`` of a name as parameters (``sql[000001_x]`` is ``sql`` with params ``000001_x``).
    A node built with ``parent.id.child(name)`` keeps the bracket in its name and is never equal
    to that parse, so every failed item was "not in selected tests". Giving the id as a string
    makes pytest parse it the same way it parses its cache; on pytest 8 the string is the id.
    """
    return {"name": name, "nodeid": f"{parent.nodeid}::{name}"}


# --- collectors ---------------------------------------------------------------------------------


class ServicesRoot(pytest.Directory):
    """A services root: one child collector per service."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        settings = self.config.stash[SETTINGS_KEY]
        base = settings.base_ref
        try:
            fingerprint = fingerprint_tree(self.path)  # before reading: an edit now is a miss
            project = load_project(self.path)
            #: A team's declared check modules (shown in the ``custom`` items).
            self.custom = load_custom_checks(self.path, self.config.stash[ANALYSIS_CACHE_KEY])
            result = validate_project(
                project, strict=settings.strict, checks=[self.custom]
                + ([lambda project: check_against_base(project, base)] if base else []))
            #: What the items show and what they count (--migorch-base, the baseline file).
            self.history = RootHistory.for_project(project, settings)
        except MigorchError as exc:
            raise self.CollectError(str(exc)) from exc
        #: Each service's SQL findings, kept between runs while its files are unchanged.
        self.service_findings = ServiceFindings(ResultCache(
            self.config.stash[ANALYSIS_CACHE_KEY].store, root_options(self.path)), fingerprint)
        #: Services whose database tests run (None: all); see --migorch-changed-only.
        self.database_services: set[str] | None = None
        #: Services whose per-migration checks run (None: all). The others' migrations are all
        #: released, so --migorch-base would hide every finding of those items anyway.
        self.migration_services: set[str] | None = None
        #: Whether a migration may run differently than at the base (None: test every one).
        self.migration_changed: Callable[[Migration], bool] | None = None
        if settings.changed_only and settings.base_ref:
            changed = changed_services(project, settings.base_ref)
            self.database_services = with_dependents(project, changed)
            selection = (self.history.change
                         or ChangeSelection.against(project, settings.base_ref))
            self.migration_changed = lambda m: selection.migration_changed(m.service, m.id)
            if not settings.all_findings:
                self.migration_services = changed
        if any(f.service not in project.services for f in result.findings):
            yield ProjectItem.from_parent(self, **child_id(self, "project"), result=result)
        for _, service in sorted(project.services.items()):
            yield ServiceCollector.from_parent(
                self, path=service.migrations_dir.parent, service=service, result=result
            )

    def _recurse(self, direntry: Any) -> bool:  # pragma: no cover - never recurses
        return False


class ServiceCollector(pytest.Directory):
    """One service: its service-level checks, per-migration checks and round-trips."""

    def __init__(self, *, service: Service, result: ValidationResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.result = result
        self._reports: dict[int, MigrationReport] = {}
        self._models: dict[tuple[str, int], SchemaModel] | None = None
        self._index: dict[tuple[str | None, Family], list[Finding]] | None = None

    def report(self, migration: Migration) -> MigrationReport:
        """The SQL analysis of one migration, computed once for its sql and risk items."""
        found = self._reports.get(migration.version)
        if found is None:
            cache = self.config.stash[ANALYSIS_CACHE_KEY]
            if self._models is None:
                self._models = service_models(self.service, cache)
            found = check_migration(migration, self.service.schema, cache,
                                    model=self._models.get(migration.key))
            self._reports[migration.version] = found
        return found

    def analysed(self, migration: Migration) -> list[Finding]:
        """The SQL findings of ``migration`` (its report's), cached per service by content."""
        def compute() -> list[Finding]:
            report = self.report(migration)
            return report.findings + report.comment_findings

        results = getattr(self.parent, "service_findings", None)
        if not isinstance(results, ServiceFindings):
            return compute()
        return results.findings(self.service, migration, compute)

    def static_findings(self, migration_id: str | None, family: Family) -> list[Finding]:
        """This service's findings of the project's validation for one migration and family,
        indexed once: each of thousands of items scanning every finding was quadratic."""
        if self._index is None:
            self._index = {}
            for f in self.result.findings:
                if f.service == self.service.name:
                    self._index.setdefault((f.migration, f.family), []).append(f)
        return self._index.get((migration_id, family), [])

    def static_tables(self, migration: Migration) -> set[str]:
        """Tables the static analysis says ``migration`` changes, as ``schema.table``."""
        default = schema_name(migration.service)
        return {t.lower() if "." in t else f"{default}.{t.lower()}"
                for t in self.report(migration).tables_touched}

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        settings: MigorchSettings = self.config.stash[SETTINGS_KEY]
        common = {"service": self.service, "result": self.result}
        families = SERVICE_CHECKS + ((Family.INTEGRITY,) if settings.base_ref else ())
        for family in families:
            yield ServiceCheckItem.from_parent(self, **child_id(self, family.value), family=family,
                                               **common)
        declared = bool(getattr(self.parent, "custom", None))
        if declared or self.ihook.pytest_migorch_check_service.get_hookimpls():
            yield CustomServiceItem.from_parent(self, **child_id(self, "custom"), **common)
        has_custom = declared or bool(self.ihook.pytest_migorch_check_migration.get_hookimpls())
        checked = getattr(self.parent, "migration_services", None)
        for _, migration in sorted(self.service.migrations.items()):
            if migration.up is None or checked is not None and self.service.name not in checked:
                continue
            for family in MIGRATION_CHECKS:
                yield MigrationCheckItem.from_parent(
                    self, **child_id(self, f"{family.value}[{migration.id}]"), family=family,
                    migration=migration, **common)
            if has_custom:
                yield CustomMigrationItem.from_parent(
                    self, **child_id(self, f"custom[{migration.id}]"), migration=migration,
                    **common)
        if settings.no_db:
            return
        wanted = getattr(self.parent, "database_services", None)
        if wanted is not None and self.service.name not in wanted:
            return
        environments = [e for e in self.service.environment_names()
                        if settings.wants_environment(e)]
        blocked = files_block(self.result.findings, self.service.name)
        if blocked is not None and environments:
            yield RoundTripBlockedItem.from_parent(
                self, **child_id(self, "roundtrip"), reason=blocked,
                environment=", ".join(environments), **common)
            return
        plans = plan_environments(self.result.graph, self.service.name, environments,
                                  changed=getattr(self.parent, "migration_changed", None))
        for environment in environments:
            if plans[environment].error is None and not plans[environment].tested:
                continue  # all history (--migorch-changed-only): tested at the base
            yield RoundTripCollector.from_parent(
                self, **child_id(self, f"roundtrip[{environment}]"), environment=environment,
                plan=plans[environment], **common)


class RoundTripCollector(pytest.Collector):
    """The round-trip of one service in one environment: one item per migration, in order.

    The items share one :class:`~pytest_migorch.roundtrip.RoundTrip`, which runs lazily up to
    the migration each item asks for. With pytest-xdist, ``--dist loadscope`` (or
    ``loadgroup``) keeps an environment's items on one worker, so the work is done once.
    """

    def __init__(self, *, service: Service, result: ValidationResult, environment: str,
                 plan: EnvironmentPlan, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.result = result
        self.environment = environment
        #: Which migrations are tested here (the others are tested in an earlier environment
        #: with the same resolved order up to them, and reported once there).
        self.plan = plan
        self._roundtrip: RoundTrip | None = None

    def collect(self) -> Iterator[pytest.Item]:
        common = {"service": self.service, "result": self.result, "environment": self.environment}
        if self.plan.error is not None:
            yield RoundTripBlockedItem.from_parent(self, **child_id(self, "order"),
                                                   reason=self.plan.error,
                                                   **common)
            return
        group = pytest.mark.xdist_group(f"migorch:{self.service.name}:{self.environment}")
        for migration in self.plan.tested:
            item = RoundTripItem.from_parent(self, **child_id(self, migration.id),
                                             migration=migration,
                                             **common)
            item.add_marker(group)
            yield item

    def roundtrip(self, server: PostgresServer) -> RoundTrip:
        if self._roundtrip is None:
            from pytest_migorch.roundtrip.engine import RoundTrip

            service_collector = self.parent
            assert isinstance(service_collector, ServiceCollector)
            self._roundtrip = RoundTrip(
                server, self.result.project, self.result.graph, self.service.name,
                self.environment, static_tables=service_collector.static_tables,
                strict_column_order=self.config.stash[SETTINGS_KEY].strict_column_order,
                plan=self.plan, seed_data=self.config.stash[SETTINGS_KEY].seed_data)
        return self._roundtrip

    def teardown(self) -> None:
        if self._roundtrip is not None:
            self._roundtrip.close()
            self._roundtrip = None


# --- items --------------------------------------------------------------------------------------


class MigorchCheckFailed(Exception):
    """Raised by a generated item whose check found errors; rendered without a traceback."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(f"{len(findings)} finding(s)")
        self.findings = findings


class MigorchItem(pytest.Item):
    """Base of every generated item: reports findings, never a Python traceback."""

    def __init__(self, *, result: ValidationResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.reported_findings: list[Finding] = []
        self.hidden_findings: list[dict[str, Any]] = []
        self.add_marker(pytest.mark.migorch)

    @property
    def settings(self) -> MigorchSettings:
        return self.config.stash[SETTINGS_KEY]

    def findings(self) -> list[Finding]:
        raise NotImplementedError

    def runtest(self) -> None:
        findings = self.findings()
        history = root_history(self)
        if history is not None:
            split, self.hidden_findings = history.split(findings)
            findings = split.shown
        if self.settings.strict:
            findings = [f.escalated() for f in findings]
        self.reported_findings = findings
        errors = [f for f in findings if f.severity is Severity.ERROR]
        if errors:
            raise MigorchCheckFailed(errors)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, MigorchCheckFailed):
            return "\n".join(f.render() for f in excinfo.value.findings)
        if isinstance(excinfo.value, MigorchError):
            return f"migorch: {excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"migorch {self.name}"


class ProjectItem(MigorchItem):
    """Findings about the root itself (e.g. no services found)."""

    def findings(self) -> list[Finding]:
        services = self.result.project.services
        return [f for f in self.result.findings if f.service not in services]


class ServiceCheckItem(MigorchItem):
    """One service-level check family (config, files, graph) of one service."""

    def __init__(self, *, family: Family, service: Service, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.family = family
        self.service = service

    def findings(self) -> list[Finding]:
        return [f for f in self.result.findings
                if f.service == self.service.name and f.family is self.family]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"migorch {self.family.value} of {self.service.name}"


class MigrationCheckItem(MigorchItem):
    """One per-migration check family (sql, risk) of one migration."""

    def __init__(self, *, family: Family, service: Service, migration: Migration,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.family = family
        self.service = service
        self.migration = migration

    def findings(self) -> list[Finding]:
        parent = self.parent
        assert isinstance(parent, ServiceCollector)
        analysed = parent.analysed(self.migration)
        custom = getattr(parent.parent, "custom", None)
        if custom:
            analysed = custom.without_used_ignores(analysed)
        return parent.static_findings(self.migration.id, self.family) + [
            f for f in analysed if f.service == self.service.name
            and f.migration == self.migration.id and f.family is self.family]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return (self.migration.main_file.path, 0,
                f"migorch {self.family.value} of {self.service.name}:{self.migration.id}")


class CustomServiceItem(MigorchItem):
    """Findings that conftest files and plugins add through ``pytest_migorch_check_service``."""

    def __init__(self, *, service: Service, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service

    def findings(self) -> list[Finding]:
        results = self.ihook.pytest_migorch_check_service(
            service=self.service, project=self.result.project)
        declared = [f for f in self.result.findings if f.family is Family.CUSTOM
                    and f.service == self.service.name and f.migration is None]
        return declared + [f for result in results if result for f in result]


class CustomMigrationItem(MigorchItem):
    """Findings that conftest files and plugins add through ``pytest_migorch_check_migration``."""

    def __init__(self, *, service: Service, migration: Migration, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.migration = migration

    def findings(self) -> list[Finding]:
        results = self.ihook.pytest_migorch_check_migration(
            migration=self.migration, service=self.service, project=self.result.project)
        declared = [f for f in self.result.findings if f.family is Family.CUSTOM
                    and f.service == self.service.name and f.migration == self.migration.id]
        return declared + [f for result in results if result for f in result]


class DatabaseItem(MigorchItem):
    """An item that needs the session's PostgreSQL: skipped (or failed) without one."""

    def __init__(self, *, service: Service, environment: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.environment = environment
        self.add_marker(pytest.mark.migorch_db)

    def server(self) -> PostgresServer:
        try:
            return self.config.stash[SERVER_KEY].get()
        except ServerUnavailable as exc:
            if self.settings.require_db:
                raise
            pytest.skip(f"no PostgreSQL for migration round-trips: {exc}")


class RoundTripItem(DatabaseItem):
    """Up, down and up again of one migration, from the state it expects."""

    def __init__(self, *, migration: Migration, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.migration = migration

    def findings(self) -> list[Finding]:
        parent = self.parent
        assert isinstance(parent, RoundTripCollector)
        outcome: MigrationOutcome = parent.roundtrip(self.server()).outcome(self.migration)
        lines = list(outcome.notes)
        if outcome.timings:
            lines.append("timings: " + ", ".join(
                f"{step} {seconds * 1000:.1f} ms" for step, seconds in outcome.timings.items()))
        if lines:
            self.add_report_section("call", "migorch", "\n".join(lines))
        return outcome.findings

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return (self.migration.main_file.path, 0,
                f"migorch round-trip of {self.service.name}:{self.migration.id} "
                f"in {self.environment}")


class RoundTripBlockedItem(DatabaseItem):
    """Stands for a round-trip that cannot run at all (its order cannot be resolved)."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        raise ConfigurationError(
            f"the round-trip of {self.service.name} in {self.environment} cannot run: "
            f"{self.reason}")


def project_of(item: pytest.Item) -> Project | None:
    """The project a generated item belongs to (for fixtures and other plugins)."""
    result = getattr(item, "result", None)
    return result.project if isinstance(result, ValidationResult) else None
