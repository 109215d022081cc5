"""A cold session analyses the SQL of its items ahead, in worker processes, as ``validate`` does.

Without cached findings, each ``sql`` and ``risk`` item analyses its migration when it runs, one
after the other on one core: for 5,000 migrations most of a cold session. Once collection is
final (after ``-k``, ``-m`` and ``--migorch-shard`` deselected what they deselect), the order
the items will ask for analyses is known, so :func:`pytest_migorch.sql.ahead.analyses_ahead`
can compute them in forked workers meanwhile; an item takes its analysis from there or, when it
is not (yet) there, analyses the text itself. The findings are the same by construction (the
same function on the same text, :mod:`pytest_migorch.sql.ahead`).

Services whose findings are cached need no analysis and are not sent. Under pytest-xdist the
workers already use the cores, and a worker does not know which items it will be given: no
look-ahead there.
"""

from __future__ import annotations

import contextlib

import pytest

from pytest_migorch.checks.migration import analysis_order
from pytest_migorch.model import Service
from pytest_migorch.project.result_cache import ServiceFindings
from pytest_migorch.pytest_plugin.collectors import MigrationCheckItem, ServicesRoot
from pytest_migorch.pytest_plugin.keys import ANALYSIS_CACHE_KEY
from pytest_migorch.sql.ahead import analyses_ahead

__all__ = ["PLUGIN_NAME", "services_to_analyse"]

PLUGIN_NAME = "migorch-lookahead"

_AHEAD_KEY = pytest.StashKey[contextlib.ExitStack]()


def services_to_analyse(items: list[pytest.Item]) -> list[Service]:
    """The services whose migration items will analyse SQL, in the order their items run:
    those without cached findings."""
    found: dict[str, Service] = {}
    for item in items:
        if not isinstance(item, MigrationCheckItem) or item.service.name in found:
            continue
        root = item.parent.parent if item.parent is not None else None
        findings = getattr(root, "service_findings", None) if isinstance(
            root, ServicesRoot) else None
        if isinstance(findings, ServiceFindings) and findings.known(item.service):
            continue
        found[item.service.name] = item.service
    return list(found.values())


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or session.config.option.collectonly:
        return
    services = services_to_analyse(session.items)
    count = sum(2 * len(service.migrations) for service in services)
    stack = contextlib.ExitStack()
    stack.enter_context(analyses_ahead(session.config.stash[ANALYSIS_CACHE_KEY],
                                       analysis_order(services), count=count))
    session.config.stash[_AHEAD_KEY] = stack


def pytest_sessionfinish(session: pytest.Session) -> None:
    stack = session.config.stash.get(_AHEAD_KEY, None)
    if stack is not None:
        del session.config.stash[_AHEAD_KEY]
        stack.close()
