"""The pytest plugin: options, the collectors that generate migration tests, and their items.

Only hooks, collectors and items live here; every check is computed by the core
(:mod:`pytest_migorch.validation` and friends). ``pytest --migorch services/`` (or the ini option
``migorch_paths``) adds each root to the collection and turns it into::

    services/user-service::config              configuration of the service
    services/user-service::files               file names, pairing, encoding
    services/user-service::graph               dependencies, cycles, environments
    services/user-service::sql[000001_x]       what the SQL touches vs affects_tables
    services/user-service::risk[000001_x]      risk rules vs the declared risk_level
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import hookspecs
from .errors import MigorchError
from .findings import Family, Finding, Severity
from .model import Migration, Project, Service
from .settings import DSN_ENVIRONMENT_VARIABLE, PROVIDERS, MigorchSettings
from .validation import ValidationResult, load_project, validate_project

SETTINGS_KEY = pytest.StashKey[MigorchSettings]()
#: The report attribute that carries an item's findings (as JSON, so it survives the trip from
#: pytest-xdist workers to the controller, where the CI reports are written).
FINDINGS_ATTRIBUTE = "migorch_findings"
WARNINGS_KEY = pytest.StashKey[list[Finding]]()

SERVICE_CHECKS = (Family.CONFIG, Family.FILES, Family.GRAPH)
MIGRATION_CHECKS = (Family.SQL, Family.RISK)


# --- options ------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("migorch", "database migrations (pytest-migorch)")
    group.addoption(
        "--migorch", action="append", dest="migorch_paths", metavar="ROOT", default=None,
        help="generate migration tests for every service under ROOT (repeatable)",
    )
    parser.addini("migorch_paths", type="paths", default=[],
                  help="services roots to test when --migorch is not given")
    group.addoption("--migorch-no-db", action="store_true", dest="migorch_no_db", default=None,
                    help="run only the static checks; start no database")
    parser.addini("migorch_no_db", type="bool", default=False,
                  help="run only the static migration checks")
    group.addoption("--migorch-env", action="append", dest="migorch_envs", metavar="NAME",
                    default=None, help="limit database tests to this environment (repeatable)")
    parser.addini("migorch_envs", type="linelist", default=[],
                  help="environments to test (default: all)")
    group.addoption("--migorch-strict", action="store_true", dest="migorch_strict", default=None,
                    help="warnings fail the migration checks too")
    parser.addini("migorch_strict", type="bool", default=False,
                  help="warnings fail the migration checks too")
    group.addoption("--migorch-dsn", dest="migorch_dsn", metavar="URL", default=None,
                    help=f"PostgreSQL server for database tests (or ${DSN_ENVIRONMENT_VARIABLE})")
    parser.addini("migorch_dsn", type="string", default="",
                  help="PostgreSQL server for database tests")
    group.addoption("--migorch-provider", dest="migorch_provider", choices=PROVIDERS,
                    default=None, help="force how the test PostgreSQL is found (default: auto)")
    parser.addini("migorch_provider", type="string", default="auto",
                  help="auto, dsn, local or docker")
    group.addoption("--migorch-pg-bindir", dest="migorch_pg_bindir", metavar="DIR", default=None,
                    help="directory with PostgreSQL's initdb and postgres binaries")
    parser.addini("migorch_pg_bindir", type="string", default="",
                  help="directory with PostgreSQL's initdb and postgres binaries")
    group.addoption("--migorch-require-db", action="store_true", dest="migorch_require_db",
                    default=None, help="fail database tests instead of skipping them when no "
                    "PostgreSQL can be had")
    parser.addini("migorch_require_db", type="bool", default=False,
                  help="fail instead of skip when no PostgreSQL can be had")
    group.addoption("--migorch-base", dest="migorch_base", metavar="REF", default=None,
                    help="git revision of the last release: editing or deleting a migration "
                    "that existed there is an error")
    parser.addini("migorch_base", type="string", default="",
                  help="git revision to check released migrations against")
    group.addoption("--migorch-changed-only", action="store_true", dest="migorch_changed_only",
                    default=None, help="with --migorch-base: database tests only for changed "
                    "services and the services that depend on them")
    parser.addini("migorch_changed_only", type="bool", default=False,
                  help="database tests only for changed services")
    group.addoption("--migorch-codequality", dest="migorch_codequality", metavar="PATH",
                    default=None, help="write a GitLab Code Quality report of all findings")
    parser.addini("migorch_codequality", type="string", default="",
                  help="path of the GitLab Code Quality report")
    group.addoption("--migorch-sarif", dest="migorch_sarif", metavar="PATH", default=None,
                    help="write a SARIF 2.1.0 report of all findings")
    parser.addini("migorch_sarif", type="string", default="",
                  help="path of the SARIF report")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def _option(config: pytest.Config, name: str) -> Any:
    """Command line first, then the ini file."""
    value = config.getoption(name)
    return config.getini(name) if value is None else value


def build_settings(config: pytest.Config) -> MigorchSettings:
    """Resolve command line, ini and environment into one frozen settings object."""
    cli_roots = config.getoption("migorch_paths")
    if cli_roots:
        roots = tuple(Path(config.invocation_params.dir, r).resolve() for r in cli_roots)
    else:
        roots = tuple(Path(p).resolve() for p in config.getini("migorch_paths"))
    provider = _option(config, "migorch_provider") or "auto"
    if provider not in PROVIDERS:
        raise pytest.UsageError(
            f"migorch_provider = {provider!r} is not one of {', '.join(PROVIDERS)}"
        )
    for root in roots:
        if not root.is_dir():
            raise pytest.UsageError(f"--migorch {root}: not a directory")
    bindir = _option(config, "migorch_pg_bindir")
    codequality = _option(config, "migorch_codequality")
    sarif = _option(config, "migorch_sarif")
    return MigorchSettings(
        roots=roots,
        no_db=bool(_option(config, "migorch_no_db")),
        environments=tuple(_option(config, "migorch_envs") or ()),
        strict=bool(_option(config, "migorch_strict")),
        dsn=_option(config, "migorch_dsn") or os.environ.get(DSN_ENVIRONMENT_VARIABLE) or None,
        provider=provider,
        pg_bindir=Path(bindir) if bindir else None,
        require_db=bool(_option(config, "migorch_require_db")),
        base_ref=_option(config, "migorch_base") or None,
        changed_only=bool(_option(config, "migorch_changed_only")),
        codequality_path=Path(config.invocation_params.dir, codequality) if codequality else None,
        sarif_path=Path(config.invocation_params.dir, sarif) if sarif else None,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "migorch: a test generated by pytest-migorch")
    settings = build_settings(config)
    config.stash[SETTINGS_KEY] = settings
    config.stash[WARNINGS_KEY] = []
    # Roots become collection arguments, so `pytest --migorch services/` needs no path of its
    # own; pytest deduplicates a root that is also reached from another argument.
    present = {Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
               for arg in config.args}
    for root in settings.roots:
        if root not in present:
            config.args.append(str(root))


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash.get(SETTINGS_KEY, None)
    if settings is not None and path.resolve() in settings.roots:
        return ServicesRoot.from_parent(parent, path=path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:  # type: ignore[misc]
    report = yield
    if isinstance(item, MigorchItem) and call.when == "call":
        setattr(report, FINDINGS_ATTRIBUTE, [f.to_json() for f in item.reported_findings])
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    warnings = config.stash.get(WARNINGS_KEY, [])
    if not warnings:
        return
    terminalreporter.section("migorch warnings")
    for finding in warnings:
        terminalreporter.line(finding.render())


# --- collectors ---------------------------------------------------------------------------------


class ServicesRoot(pytest.Directory):
    """A services root: one child collector per service."""

    def collect(self) -> Iterator[pytest.Collector]:
        settings = self.config.stash[SETTINGS_KEY]
        try:
            project = load_project(self.path)
        except MigorchError as exc:
            raise self.CollectError(str(exc)) from exc
        self.result = validate_project(project, strict=settings.strict)
        for finding in self.result.findings:
            if finding.service is None:
                yield from [ProjectItem.from_parent(self, name="project", result=self.result)]
                break
        for name, service in sorted(project.services.items()):
            yield ServiceCollector.from_parent(
                self, path=service.migrations_dir.parent, service=service, result=self.result
            )

    def _recurse(self, direntry: Any) -> bool:  # pragma: no cover - never recurses
        return False


class ServiceCollector(pytest.Directory):
    """One service: its service-level checks and its per-migration checks."""

    def __init__(self, *, service: Service, result: ValidationResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.result = result

    def collect(self) -> Iterator[pytest.Item]:
        for family in SERVICE_CHECKS:
            yield ServiceCheckItem.from_parent(
                self, name=family.value, family=family, service=self.service, result=self.result
            )
        if self.ihook.pytest_migorch_check_service.get_hookimpls():
            yield CustomServiceItem.from_parent(self, name="custom", service=self.service,
                                                result=self.result)
        has_custom = bool(self.ihook.pytest_migorch_check_migration.get_hookimpls())
        for _, migration in sorted(self.service.migrations.items()):
            if migration.up is None:
                continue
            for family in MIGRATION_CHECKS:
                yield MigrationCheckItem.from_parent(
                    self, name=f"{family.value}[{migration.id}]", family=family,
                    service=self.service, migration=migration, result=self.result,
                )
            if has_custom:
                yield CustomMigrationItem.from_parent(
                    self, name=f"custom[{migration.id}]", service=self.service,
                    migration=migration, result=self.result,
                )


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
        self.add_marker(pytest.mark.migorch)

    @property
    def settings(self) -> MigorchSettings:
        return self.config.stash[SETTINGS_KEY]

    def findings(self) -> list[Finding]:
        raise NotImplementedError

    def runtest(self) -> None:
        findings = self.findings()
        if self.settings.strict:
            findings = [f.escalated() for f in findings]
        errors = [f for f in findings if f.severity is Severity.ERROR]
        self.config.stash[WARNINGS_KEY].extend(f for f in findings if not f.is_error)
        self.reported_findings = findings
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
        return [f for f in self.result.findings if f.service is None]


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
        return [f for f in self.result.findings
                if f.service == self.service.name and f.migration == self.migration.id
                and f.family is self.family]

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
        return [f for result in results if result for f in result]


class CustomMigrationItem(MigorchItem):
    """Findings that conftest files and plugins add through ``pytest_migorch_check_migration``."""

    def __init__(self, *, service: Service, migration: Migration, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.migration = migration

    def findings(self) -> list[Finding]:
        results = self.ihook.pytest_migorch_check_migration(
            migration=self.migration, service=self.service, project=self.result.project)
        return [f for result in results if result for f in result]


def project_of(item: pytest.Item) -> Project | None:
    """The project a generated item belongs to (for fixtures and other plugins)."""
    result = getattr(item, "result", None)
    return result.project if isinstance(result, ValidationResult) else None
