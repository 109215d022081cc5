"""A pytest plugin for :mod:`benchmarks.ci_scenario`: where one CI job's time goes.

Loaded with ``-p benchmarks.ci_timing`` (pytest-xdist loads it in every worker too). Each
process writes ``$MIGORCH_CI_TIMING_DIR/<name>.json`` at exit, times on the wall clock
(``time.time()``, so the controller's and the workers' marks line up):

- ``loaded``: when pytest imported this plugin (Python start-up and pytest's imports before);
- ``collection``: ``[start, end]`` of pytest's collection (workers and single processes);
- ``server``: seconds spent starting the throwaway PostgreSQL (inside the first round-trip);
- ``roundtrip`` / ``static``: summed setup + call + teardown seconds of the round-trip items
  and of the other generated items, as the process that ran them measured them;
- ``first_report`` / ``last_report``: when the first and last item reports arrived;
- ``reports``: seconds of the session-end hooks (JUnit, SARIF, Code Quality, summaries);
- ``server_stop``: seconds spent stopping the server at the end;
- ``shard``: the ``--migorch-shard`` summary (items, groups, expected seconds) of a worker.

Nothing here changes what runs: the server start is timed by wrapping the function the plugin
calls, the rest by hooks that only read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ENV_DIR = "MIGORCH_CI_TIMING_DIR"
_LOADED = time.time()
_marks: dict[str, Any] = {"loaded": _LOADED, "server": 0.0, "roundtrip": 0.0, "static": 0.0,
                          "items": 0, "reports": 0.0, "server_stop": 0.0}


def _timed(function: Callable[..., Any], mark: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _marks[mark] += time.perf_counter() - began

    return wrapper


def pytest_configure(config: pytest.Config) -> None:
    _marks["name"] = getattr(config, "workerinput", {}).get("workerid", "controller")
    try:
        from pytest_migorch.postgres import servers
        from pytest_migorch.pytest_plugin import collectors
    except ImportError:  # pragma: no cover - the benchmark always has the plugin
        return
    # The plugin imports start_server when it first needs a server (no psycopg under
    # --migorch-no-db), so the function is timed where that import finds it.
    servers.start_server = _timed(servers.start_server, "server")  # type: ignore
    collectors.LazyServer.stop = _timed(collectors.LazyServer.stop, "server_stop")  # type: ignore


def pytest_collection_finish(session: pytest.Session) -> None:
    selector = session.config.pluginmanager.get_plugin("migorch-sharding")
    if selector is not None:
        _marks["shard"] = selector.summary


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    began = time.time()
    try:
        return (yield)
    finally:
        _marks["collection"] = [began, time.time()]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    now = time.time()
    _marks.setdefault("first_report", now)
    _marks["last_report"] = now
    if report.when == "call":
        _marks["items"] += 1
    kind = "roundtrip" if "::roundtrip[" in report.nodeid else "static"
    _marks[kind] += float(report.duration)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    began = time.perf_counter()
    try:
        return (yield)
    finally:
        _marks["reports"] += time.perf_counter() - began


@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter: Any) -> Iterator[None]:
    began = time.perf_counter()
    try:
        return (yield)
    finally:
        _marks["reports"] += time.perf_counter() - began


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return
    _marks["end"] = time.time()
    path = Path(directory) / f"{_marks.get('name', 'controller')}-{os.getpid()}.json"
    path.write_text(json.dumps(_marks), encoding="utf-8")
