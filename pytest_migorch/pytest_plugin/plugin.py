"""The pytest plugin: options, hooks and fixtures. Nothing else lives here.

``pytest --migorch services/`` (or the ini option ``migorch_paths``) adds each root to the
collection; :mod:`pytest_migorch.pytest_plugin.collectors` turns it into generated tests, and every
check is computed by the core (:mod:`pytest_migorch.project.validation`,
:mod:`pytest_migorch.roundtrip.engine`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pytest_migorch.errors import MigorchError, ServerUnavailable, UsageError
from pytest_migorch.findings import Finding, sort_findings
from pytest_migorch.postgres.servers import PostgresServer, unique_database_name
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.pytest_plugin import hookspecs
from pytest_migorch.pytest_plugin.collectors import (
    ANALYSIS_CACHE_KEY,
    SERVER_KEY,
    SETTINGS_KEY,
    LazyServer,
    MigorchItem,
    ServicesRoot,
)
from pytest_migorch.pytest_plugin.settings import DSN_ENV_VAR, PROVIDERS, MigorchSettings
from pytest_migorch.roundtrip.engine import apply_migrations
from pytest_migorch.sql.analysis import AnalysisCache
from pytest_migorch.sql.store import SqliteStore
from pytest_migorch.vcs.integrity import verify_base_ref

pytest_plugins = ["pytest_migorch.pytest_plugin.ci_hooks"]

#: The report attribute that carries an item's findings (as JSON, so it survives the trip from
#: pytest-xdist workers to the controller, where the CI reports are written).
FINDINGS_ATTRIBUTE = "migorch_findings"


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
    group.addoption("--migorch-strict-column-order", action="store_true",
                    dest="migorch_strict_column_order", default=None,
                    help="a down that leaves a table's columns in another order is an error "
                    "(DB010), not a warning")
    parser.addini("migorch_strict_column_order", type="bool", default=False,
                  help="column order left changed by a down is an error (DB010)")
    group.addoption("--migorch-dsn", dest="migorch_dsn", metavar="URL", default=None,
                    help=f"PostgreSQL server for database tests (or ${DSN_ENV_VAR})")
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
        strict_column_order=bool(_option(config, "migorch_strict_column_order")),
        dsn=_option(config, "migorch_dsn") or os.environ.get(DSN_ENV_VAR) or None,
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
    config.addinivalue_line("markers", "migorch_db: a generated test that needs PostgreSQL")
    config.addinivalue_line(
        "markers", "xdist_group(name): keep tests together under pytest-xdist --dist loadgroup")
    settings = build_settings(config)
    if settings.changed_only and not settings.base_ref:
        raise pytest.UsageError("--migorch-changed-only needs --migorch-base REF")
    if settings.base_ref:
        for root in settings.roots:
            try:
                verify_base_ref(root, settings.base_ref)
            except MigorchError as exc:
                raise pytest.UsageError(str(exc)) from exc
    config.stash[SETTINGS_KEY] = settings
    config.stash[SERVER_KEY] = LazyServer(settings)
    config.stash[ANALYSIS_CACHE_KEY] = AnalysisCache(_analysis_store(config))
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
) -> Iterator[None]:
    report = yield
    if isinstance(item, MigorchItem) and call.when == "call":
        setattr(report, FINDINGS_ATTRIBUTE, [f.to_json() for f in item.reported_findings])
    return report


def reported_findings(terminalreporter: Any) -> list[Finding]:
    """Every finding of the generated items, read from their reports.

    Reports are what reaches the controller of a pytest-xdist run, so this sees the findings
    of every worker; duplicates (the same finding from two items) are dropped."""
    seen: dict[tuple[object, ...], Finding] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for data in getattr(report, FINDINGS_ATTRIBUTE, None) or ():
                finding = Finding.from_json(data)
                seen.setdefault((finding.code, finding.file, finding.line, finding.message,
                                 finding.environment), finding)
    return list(seen.values())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    warnings = [f for f in reported_findings(terminalreporter) if not f.is_error]
    if not warnings:
        return
    terminalreporter.section("migorch warnings")
    for finding in sort_findings(warnings):
        terminalreporter.line(finding.render())


def _analysis_store(config: pytest.Config) -> SqliteStore | None:
    """SQL analyses kept between runs in pytest's cache directory (``.pytest_cache``), in one
    SQLite file rather than one JSON file per analysis, which for thousands of migrations is
    several times faster to read and write. None under ``-p no:cacheprovider``."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    return SqliteStore(Path(cache.mkdir("migorch")) / "analysis.sqlite")


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(SERVER_KEY, None)
    if server is not None:
        server.stop()
    analyses = config.stash.get(ANALYSIS_CACHE_KEY, None)
    store = getattr(analyses, "store", None)
    if isinstance(store, SqliteStore):
        store.close()


# --- fixtures for users' own tests --------------------------------------------------------------


@pytest.fixture(scope="session")
def migorch_server(pytestconfig: pytest.Config) -> PostgresServer:
    """The session's throwaway PostgreSQL (the same one the generated round-trips use)."""
    try:
        return pytestconfig.stash[SERVER_KEY].get()
    except ServerUnavailable as exc:
        if pytestconfig.stash[SETTINGS_KEY].require_db:
            raise
        pytest.skip(f"no PostgreSQL for database tests: {exc}")


@pytest.fixture
def migorch_database(
    migorch_server: PostgresServer, pytestconfig: pytest.Config
) -> Iterator[Callable[..., str]]:
    """A factory of fresh databases with a service's migrations applied.

    ``migorch_database("user-service", up_to=2, environment="development", root=...)`` returns
    the conninfo of a new database where the service's migrations up to version 2 (and the
    migrations of other services they need) are applied. ``root`` defaults to the first
    ``--migorch`` root. Every database is dropped after the test.
    """
    created: list[str] = []
    settings = pytestconfig.stash[SETTINGS_KEY]

    def make(service: str, *, up_to: int | None = None, environment: str | None = None,
             root: str | Path | None = None) -> str:
        if root is None:
            if not settings.roots:
                raise UsageError("migorch_database needs root= or a --migorch root")
            root = settings.roots[0]
        project = load_project(Path(root))
        if service not in project.services:
            raise UsageError(f"unknown service {service!r} under {root}")
        env = environment or project.services[service].environment_names()[0]
        name = migorch_server.create_database(unique_database_name("migorch_fx"))
        created.append(name)
        apply_migrations(migorch_server, name, project, ProjectGraph(project), service, env,
                         up_to=up_to)
        return migorch_server.conninfo(name)

    yield make
    for name in created:
        migorch_server.drop_database(name)
