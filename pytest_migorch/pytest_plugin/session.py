"""The plugin's hooks for a session that uses pytest-migorch, loaded only then.

:mod:`pytest_migorch.pytest_plugin.plugin` (the ``pytest11`` entry point) calls :func:`activate`
from ``pytest_configure`` when ``--migorch`` or ``migorch_paths`` is given, so a pytest session
that does not use us never imports the core (sqlglot, networkx, psycopg, jsonschema).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_migorch.errors import MigorchError
from pytest_migorch.findings import Finding, sort_findings
from pytest_migorch.pytest_plugin import ci_hooks, history, html_hooks, lookahead, sharding
from pytest_migorch.pytest_plugin.collectors import LazyServer, MigorchItem, ServicesRoot
from pytest_migorch.pytest_plugin.keys import (
    ANALYSIS_CACHE_KEY,
    FINDINGS_ATTRIBUTE,
    SERVER_KEY,
    SETTINGS_KEY,
)
from pytest_migorch.sql.analysis import AnalysisCache
from pytest_migorch.sql.store import SqliteStore
from pytest_migorch.vcs.integrity import verify_base_ref

__all__ = ["activate", "ensure_active", "reported_findings"]

PLUGIN_NAME = "migorch-session"


def activate(config: pytest.Config) -> None:
    """Check the settings against the repository, set up the session's server and analyses,
    register this module's hooks and the CI reporter, and add the roots to the collection."""
    settings = config.stash[SETTINGS_KEY]
    if settings.base_ref:
        for root in settings.roots:
            try:
                verify_base_ref(root, settings.base_ref)
            except MigorchError as exc:
                raise pytest.UsageError(str(exc)) from exc
    config.stash[SERVER_KEY] = LazyServer(settings)
    config.stash[ANALYSIS_CACHE_KEY] = AnalysisCache(_analysis_store(config))
    config.pluginmanager.register(sys.modules[__name__], PLUGIN_NAME)
    config.pluginmanager.register(ci_hooks, ci_hooks.PLUGIN_NAME)
    config.pluginmanager.register(history, "migorch-history")
    config.pluginmanager.register(lookahead, lookahead.PLUGIN_NAME)
    if settings.html_path is not None:
        config.pluginmanager.register(html_hooks, html_hooks.PLUGIN_NAME)
    sharding.register(config, settings.shard)
    # Roots become collection arguments, so `pytest --migorch services/` needs no path of its
    # own; pytest deduplicates a root that is also reached from another argument.
    present = {Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
               for arg in config.args}
    for root in settings.roots:
        if root not in present:
            config.args.append(str(root))


def ensure_active(config: pytest.Config) -> None:
    """For the fixtures: a session without roots activates the core on first use."""
    if SERVER_KEY not in config.stash:
        activate(config)


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
