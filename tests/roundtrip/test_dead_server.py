"""A throwaway server that dies mid-session (issue 12): one clear reason, no tracebacks.

The server is killed with SIGKILL, as the OOM killer or a stray ``pkill postgres`` would. What
must follow: the death is said once with the tail of the server log, every later use fails at
once with that reason (not "could not create database ... Connection refused" per test), and
stopping the server, or tearing a round-trip down, raises nothing. Skipped without local
PostgreSQL programs: only a server of our own can be killed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import write_service
from psycopg.conninfo import conninfo_to_dict

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres.binaries import find_binaries
from pytest_migorch.postgres.servers import (
    LocalServer,
    PostgresServer,
    ServerGone,
    ServerOptions,
    start_server,
    unique_database_name,
)
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip

try:
    find_binaries()
    HAVE_LOCAL = True
except ServerUnavailable:
    HAVE_LOCAL = False

pytestmark = pytest.mark.skipif(not HAVE_LOCAL, reason="no local PostgreSQL server programs")


def _kill(pid: int) -> None:
    """SIGKILL the postmaster and give its backends a moment to notice and exit."""
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    srv = start_server(ServerOptions(provider="local", cache_dir=str(tmp_path / "cache")))
    assert isinstance(srv, LocalServer)
    yield srv
    srv.stop()


def test_a_killed_server_is_said_once_then_fails_every_use_at_once(server: LocalServer) -> None:
    name = server.create_database(unique_database_name())
    runtime_dir = server.runtime_dir
    _kill(server.pid)
    with pytest.raises(ServerGone) as first:
        server.create_database(unique_database_name())
    message = str(first.value)
    assert f"postgres (pid {server.pid}) killed by signal 9" in message
    assert "postgres.log ends with:" in message and "database system is ready" in message
    for attempt in (lambda: server.drop_database(name), lambda: server.create_database("x")):
        started = time.monotonic()
        with pytest.raises(ServerGone) as later:
            attempt()
        assert time.monotonic() - started < 0.5
        assert str(later.value) == (
            f"the PostgreSQL server died earlier in this session: postgres (pid {server.pid})"
            " killed by signal 9")
    assert server.gone is not None
    server.stop()  # nothing to drop, nothing to raise
    assert server.stopped and not runtime_dir.exists()


def test_a_dsn_server_that_stops_answering_is_gone_too(tmp_path: Path) -> None:
    backing = start_server(ServerOptions(provider="local", cache_dir=str(tmp_path / "cache"),
                                         listen_tcp=True))
    assert isinstance(backing, LocalServer)
    try:
        external = start_server(ServerOptions(dsn=backing.conninfo("postgres")))
        external.create_database(unique_database_name())
        _kill(backing.pid)
        external.check_alive()  # no cheap local check for a server someone else runs...
        with pytest.raises(ServerGone, match="refuses connections") as caught:
            external.check_alive(probe=True)  # ...but asking it tells
        password = conninfo_to_dict(backing.conninfo("postgres"))["password"]
        assert str(password) not in str(caught.value)
        with pytest.raises(ServerGone, match="died earlier"):
            external.create_database(unique_database_name())
        external.stop()  # does not try to drop its databases on a dead server
    finally:
        backing.stop()


def test_a_round_trip_whose_server_dies_fails_with_the_reason(
    server: LocalServer, tmp_path: Path
) -> None:
    root = tmp_path / "services"
    write_service(root, "shop", {
        f"{i}_t{i}.{kind}.sql": f"{'CREATE' if kind == 'up' else 'DROP'} TABLE t{i}"
        + (" (id int);\n" if kind == "up" else ";\n")
        for i in (1, 2, 3) for kind in ("up", "down")
    })
    project = load_project(root)
    roundtrip = RoundTrip(server, project, ProjectGraph(project), "shop", "default")
    first, second, third = roundtrip.migrations()
    assert roundtrip.outcome(first).findings == []
    _kill(server.pid)
    with pytest.raises(ServerGone, match="killed by signal 9") as caught:
        roundtrip.outcome(second)
    assert "ends with:" in str(caught.value)
    with pytest.raises(ServerGone, match="died earlier"):
        roundtrip.outcome(third)
    roundtrip.close()  # teardown: no drop on a dead server, no error


def _dead_server_project(pytester: pytest.Pytester) -> None:
    for service, tables in (("cart", ("c1", "c2")), ("shop", ("s1", "s2", "s3"))):
        write_service(pytester.path / "services", service, {
            **{f"{i}_{t}.up.sql": f"CREATE TABLE {t} (id int);\n"
               for i, t in enumerate(tables, 1)},
            **{f"{i}_{t}.down.sql": f"DROP TABLE {t};\n" for i, t in enumerate(tables, 1)},
        })
    pytester.makeconftest('''
import os, signal, time
from pytest_migorch.pytest_plugin.collectors import SERVER_KEY

def pytest_runtest_teardown(item, nextitem):
    if item.name == "1_c1":  # the first round-trip has passed: now the server dies
        os.kill(item.config.stash[SERVER_KEY].get().pid, signal.SIGKILL)
        time.sleep(0.3)
''')


def test_the_plugin_reports_a_killed_server_once_without_tracebacks(
    pytester: pytest.Pytester,
) -> None:
    _dead_server_project(pytester)
    result = pytester.runpytest_subprocess(
        "--migorch", "services", "-m", "migorch_db", "--migorch-provider", "local",
        "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=4, errors=0)
    out = result.stdout.str()
    assert "Traceback" not in out and "psycopg" not in out
    assert "could not create database" not in out
    assert out.count("migorch: the PostgreSQL server died: postgres (pid") == 1
    assert out.count("postgres.log ends with:") == 1
    assert out.count("the PostgreSQL server died earlier in this session") == 3
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_databases_still_work_before_the_server_dies(pg_server: PostgresServer) -> None:
    """The liveness checks cost nothing while the server is up (and say nothing)."""
    name = pg_server.create_database(unique_database_name())
    pg_server.check_alive(probe=True)
    assert pg_server.gone is None
    with psycopg.connect(pg_server.conninfo(name)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pg_server.drop_database(name)
