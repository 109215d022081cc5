"""Throwaway PostgreSQL servers (pytest_migorch.postgres.servers and the modules under it).

The local-provider tests start real servers from the binaries on this machine (skipped when
there are none) and check what users rely on: connections work (as an unprivileged OS user when
we are root), initdb is cached, databases are cloned from templates, servers stop and leave
nothing behind, and a killed session's server is cleaned up by the next one. The failure paths
(explicit DSN that does not answer, Docker not reachable, empty bin dir) are checked for speed
and for a message that says what was tried, without a password.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from pytest_migorch.errors import DatabaseError, ServerUnavailable, UsageError
from pytest_migorch.postgres import binaries as pgbinaries
from pytest_migorch.postgres import runtime as pgruntime
from pytest_migorch.postgres import servers as pgserver
from pytest_migorch.postgres.binaries import PgBinaries, find_binaries, usual_bin_dirs
from pytest_migorch.postgres.servers import (
    PostgresServer,
    ServerOptions,
    find_docker_daemon,
    mask_dsn,
    start_server,
    unique_database_name,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

try:
    LOCAL_BINARIES: PgBinaries | None = find_binaries()
except ServerUnavailable:
    LOCAL_BINARIES = None

needs_local_pg = pytest.mark.skipif(
    LOCAL_BINARIES is None, reason="no local PostgreSQL server programs (initdb, postgres)"
)


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initdb cache private to this test module (the user's real cache stays untouched)."""
    return tmp_path_factory.mktemp("initdb-cache")


@pytest.fixture
def runtime_parent() -> Iterator[Path]:
    """A private parent for runtime dirs, so a test sees exactly the dirs it made.

    Beside the default parents (short path, traversable by the server user), not in tmp_path,
    whose 0700 parents the unprivileged server user could not enter.
    """
    path = pgruntime.default_runtime_parents()[0].parent / f"migorch-t{os.getpid()}"
    path = path.with_name(f"{path.name}-{time.monotonic_ns() % 10**6}")
    yield path
    pgruntime.cleanup_stale_servers(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(cache_dir: Path) -> Iterator[PostgresServer]:
    if LOCAL_BINARIES is None:
        pytest.skip("no local PostgreSQL server programs (initdb, postgres)")
    srv = start_server(ServerOptions(provider="local", cache_dir=str(cache_dir)))
    yield srv
    srv.stop()


def _silent_listener() -> socket.socket:
    """A TCP socket that accepts connections (backlog) and never answers: the worst case."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("\nUid:")[1].split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent is as good as dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


_CHILD_SCRIPT = """
import json, sys, time
from pytest_migorch.postgres.servers import ServerOptions, start_server
parent, cache, die_with_parent, mode = sys.argv[1:5]
server = start_server(ServerOptions(provider="local", runtime_parent=parent or None,
                                    cache_dir=cache, die_with_parent=die_with_parent == "1"))
print(json.dumps({"pid": server.pid, "runtime_dir": str(server.runtime_dir),
                  "timings": server.timings}), flush=True)
if mode == "wait":
    time.sleep(600)
server.stop()
"""


def _spawn_child(
    parent: Path | None, cache: Path, *, die_with_parent: bool, mode: str
) -> subprocess.Popen[str]:
    """Another Python process that starts a server (a second pytest session, or xdist worker)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    args = [str(parent or ""), str(cache), "1" if die_with_parent else "0", mode]
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_child(child: subprocess.Popen[str]) -> dict[str, object]:
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait(10)
        assert child.stderr is not None
        pytest.fail(f"child could not start a server: {child.stderr.read()[-2000:]}")
    return dict(json.loads(line))


def _kill9(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    for stream in (child.stdout, child.stderr):
        if stream is not None:
            stream.close()


# --------------------------------------------------------------------------------------------
# Local servers


@needs_local_pg
def test_local_server_accepts_connections_as_unprivileged_user(server: PostgresServer) -> None:
    assert isinstance(server, pgserver.LocalServer)
    assert server.provider == "local"
    assert server.version >= 100000
    with psycopg.connect(server.conninfo("postgres")) as conn:
        row = conn.execute(
            "SELECT current_user, current_setting('fsync'), current_setting('listen_addresses'),"
            " current_setting('server_version_num')::int"
        ).fetchone()
    assert row == ("postgres", "off", "", server.version)

    expected_uid = os.geteuid() if os.geteuid() != 0 else pgbinaries.server_user().uid
    assert expected_uid != 0
    if sys.platform.startswith("linux"):
        assert _uid_of(server.pid) == expected_uid
    data = server.data_dir.stat()
    assert stat.S_IMODE(data.st_mode) == 0o700
    assert data.st_uid == expected_uid
    socket_file = server.socket_dir / ".s.PGSQL.5432"
    assert socket_file.exists()
    assert len(str(socket_file)) < 104
    assert server.runtime_dir.parent.name == f"migorch-{os.geteuid()}"
    assert "password" not in server.describe()
    assert str(server.pid) in server.describe()


@needs_local_pg
def test_initdb_result_is_cached_and_reused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    options = ServerOptions(provider="local", cache_dir=str(cache))
    cold = start_server(options)
    cold.stop()
    assert isinstance(cold, pgserver.LocalServer)
    assert "initdb" in cold.timings
    entries = list((cache / "initdb").iterdir())
    assert len(entries) == 1
    assert LOCAL_BINARIES is not None
    assert entries[0].name.startswith(f"pg{LOCAL_BINARIES.major_version}-")
    assert (entries[0] / "PG_VERSION").is_file()

    warm = start_server(options)
    try:
        assert isinstance(warm, pgserver.LocalServer)
        assert "initdb" not in warm.timings
        assert "copy" in warm.timings
        assert warm.timings["total"] < cold.timings["total"]
        with warm.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        warm.stop()
    assert list((cache / "initdb").iterdir()) == entries  # reused, not rebuilt


@needs_local_pg
def test_two_servers_in_parallel_do_not_collide(cache_dir: Path) -> None:
    options = ServerOptions(provider="local", cache_dir=str(cache_dir))
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: start_server(options), range(2))
    try:
        assert isinstance(first, pgserver.LocalServer)
        assert isinstance(second, pgserver.LocalServer)
        assert first.runtime_dir != second.runtime_dir
        assert first.socket_dir != second.socket_dir
        assert first.pid != second.pid
        with first.connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE only_in_first (id int)")
        with second.connect() as conn:
            assert conn.execute("SELECT to_regclass('only_in_first')").fetchone() == (None,)
    finally:
        first.stop()
        second.stop()


@needs_local_pg
def test_parallel_processes_racing_on_an_empty_cache(tmp_path: Path) -> None:
    """Two xdist workers on a machine without cache: both start, one cache entry survives."""
    cache = tmp_path / "cache"
    children = [_spawn_child(None, cache, die_with_parent=True, mode="stop") for _ in range(2)]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err[-2000:]
        outputs.append(json.loads(out))
    assert outputs[0]["runtime_dir"] != outputs[1]["runtime_dir"]
    names = sorted(p.name for p in (cache / "initdb").iterdir())
    assert len(names) == 1 and not names[0].startswith(".tmp")
    for output in outputs:
        assert not Path(str(output["runtime_dir"])).exists()


@needs_local_pg
def test_tcp_server_needs_its_password(cache_dir: Path) -> None:
    srv = start_server(ServerOptions(provider="local", cache_dir=str(cache_dir), listen_tcp=True))
    try:
        assert isinstance(srv, pgserver.LocalServer)
        assert "host=127.0.0.1" in srv.conninfo("postgres")
        with srv.connect() as conn:
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone() == (
                "127.0.0.1",
            )
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                host="127.0.0.1",
                port=srv.port,
                user="postgres",
                password="guess",
                dbname="postgres",
                sslmode="disable",
                connect_timeout=5,
            ).close()
        assert "password" not in srv.describe()
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------------
# Databases


@needs_local_pg
@pytest.mark.parametrize("strategy", [None, "WAL_LOG", "FILE_COPY"])
def test_create_database_from_template_copies_its_tables(
    server: PostgresServer, strategy: str | None
) -> None:
    template = server.create_database(unique_database_name("tpl"))
    with server.connect(template, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)")
        conn.execute("INSERT INTO users VALUES (1, 'a@example.com')")
    copy = unique_database_name("copy")
    assert server.create_database(copy, template=template, strategy=strategy) == copy
    with server.connect(copy) as conn:
        assert conn.execute("SELECT id, email FROM users").fetchall() == [(1, "a@example.com")]
    server.drop_database(copy)
    server.drop_database(template)
    with server.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname IN (%s, %s)", (copy, template)
        ).fetchone()
    assert left == (0,)


@needs_local_pg
def test_database_names_are_identifiers_not_sql(server: PostgresServer) -> None:
    odd = 'Mixed "quoted"; DROP DATABASE postgres; --'
    server.create_database(odd)
    with server.connect(odd) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (odd,)
    server.drop_database(odd)
    with server.connect() as conn:  # postgres still exists, and the odd one is gone
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (odd,)
        ).fetchone() == (0,)


@needs_local_pg
def test_drop_database_disconnects_sessions_and_errors_are_ours(server: PostgresServer) -> None:
    name = server.create_database(unique_database_name())
    conn = server.connect(name)
    try:
        server.drop_database(name)  # with an open session (WITH (FORCE) on PG13+)
    finally:
        conn.close()
    server.drop_database(name)  # already gone: no error
    with pytest.raises(DatabaseError, match="does not exist"):
        server.create_database(unique_database_name(), template="no_such_template")
    with pytest.raises(UsageError, match="strategy"):
        server.create_database(unique_database_name(), strategy="TELEPORT")


def test_unique_database_names() -> None:
    names = {unique_database_name("Some-Prefix") for _ in range(200)}
    assert len(names) == 200
    for name in names:
        assert name.startswith("some_prefix_") and name == name.lower()
        assert len(name.encode()) <= 63
    assert len(unique_database_name("x" * 200).encode()) <= 63


# --------------------------------------------------------------------------------------------
# Stopping and cleaning up


@needs_local_pg
def test_stop_ends_the_process_and_removes_the_runtime_dir(cache_dir: Path) -> None:
    srv = start_server(ServerOptions(provider="local", cache_dir=str(cache_dir)))
    assert isinstance(srv, pgserver.LocalServer)
    pid, runtime_dir = srv.pid, srv.runtime_dir
    assert _alive(pid) and runtime_dir.is_dir()
    srv.stop()
    assert not _alive(pid)
    assert not runtime_dir.exists()
    assert srv.stopped
    srv.stop()  # idempotent
    with pytest.raises(DatabaseError, match="stopped"):
        srv.create_database(unique_database_name())


@needs_local_pg
def test_server_of_a_killed_session_is_cleaned_up_by_the_next_start(
    cache_dir: Path, runtime_parent: Path
) -> None:
    # A session killed with SIGKILL (and, to be sure the scan does the work, without the
    # die-with-parent safety net): its postmaster and runtime dir stay behind.
    child = _spawn_child(runtime_parent, cache_dir, die_with_parent=False, mode="wait")
    try:
        info = _read_child(child)
    finally:
        _kill9(child)
    orphan_pid = int(str(info["pid"]))
    orphan_dir = Path(str(info["runtime_dir"]))
    assert orphan_dir.parent == runtime_parent
    assert _alive(orphan_pid) and orphan_dir.is_dir()

    options = ServerOptions(
        provider="local", cache_dir=str(cache_dir), runtime_parent=str(runtime_parent)
    )
    alive = start_server(options)  # the scan must spare a live sibling...
    nxt = start_server(options)  # ...which this second start proves
    try:
        assert _wait_until(lambda: not _alive(orphan_pid), 5)
        assert not orphan_dir.exists()
        assert isinstance(alive, pgserver.LocalServer)
        assert isinstance(nxt, pgserver.LocalServer)
        with alive.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert sorted(runtime_parent.iterdir()) == sorted([alive.runtime_dir, nxt.runtime_dir])
    finally:
        alive.stop()
        nxt.stop()


@needs_local_pg
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_postmaster_dies_with_its_killed_parent(cache_dir: Path, runtime_parent: Path) -> None:
    child = _spawn_child(runtime_parent, cache_dir, die_with_parent=True, mode="wait")
    try:
        info = _read_child(child)
    finally:
        _kill9(child)
    assert _wait_until(lambda: not _alive(int(str(info["pid"]))), 5)


# --------------------------------------------------------------------------------------------
# Explicit servers


@pytest.mark.parametrize("provider", ["auto", "dsn"])
def test_explicit_dsn_that_refuses_fails_fast_without_password(provider: str) -> None:
    dsn = f"postgresql://tester:s3cret-pw@127.0.0.1:{_closed_port()}/app"
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as caught:
        start_server(ServerOptions(provider=provider, dsn=dsn))
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert "tester:***@127.0.0.1" in message
    assert "Docker" not in message  # no fall-through to other providers


def test_explicit_dsn_that_never_answers_times_out() -> None:
    listener = _silent_listener()
    try:
        port = listener.getsockname()[1]
        dsn = f"host=127.0.0.1 port={port} user=u password='pw with space' dbname=x"
        started = time.monotonic()
        with pytest.raises(ServerUnavailable) as caught:
            start_server(ServerOptions(dsn=dsn, connect_timeout=2))
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert 1.5 < elapsed < 5
    assert "pw with space" not in str(caught.value)
    assert "password=***" in str(caught.value)


@needs_local_pg
def test_explicit_dsn_of_a_live_server(cache_dir: Path) -> None:
    backing = start_server(
        ServerOptions(provider="local", cache_dir=str(cache_dir), listen_tcp=True)
    )
    try:
        external = start_server(ServerOptions(dsn=backing.conninfo("postgres")))
        assert external.provider == "dsn"
        assert external.version == backing.version
        assert "password=***" in external.describe()
        name = external.create_database(unique_database_name())
        with external.connect(name) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
        external.stop()  # not ours to stop; but it drops the databases it left behind
        with backing.connect() as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
            ).fetchone() == (0,)
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        backing.stop()


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://alice:hunter2@db:5432/app", "hunter2"),
        ("postgres://alice:p%40ss:w@db/app?sslmode=require", "p%40ss:w"),
        ("postgresql://db/app?user=alice&password=hunter2&sslmode=require", "hunter2"),
        ("host=db user=alice password=hunter2 dbname=app", "hunter2"),
        ("host=db password = 'two words' dbname=app", "two words"),
    ],
)
def test_mask_dsn_hides_passwords(dsn: str, secret: str) -> None:
    masked = mask_dsn(dsn)
    assert secret not in masked
    assert "***" in masked
    assert "db" in masked


def test_mask_dsn_keeps_dsn_without_password() -> None:
    assert mask_dsn("postgresql://alice@db:5432/app") == "postgresql://alice@db:5432/app"


def test_options_are_validated() -> None:
    with pytest.raises(UsageError, match="unknown server provider"):
        ServerOptions(provider="cloud")
    with pytest.raises(UsageError, match="needs a DSN"):
        ServerOptions(provider="dsn")
    with pytest.raises(UsageError, match="positive"):
        ServerOptions(docker_timeout=0)


# --------------------------------------------------------------------------------------------
# Docker


def test_docker_unreachable_is_decided_within_three_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = _silent_listener()  # accepts, never answers: a hung daemon
    try:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(ServerUnavailable, match="no Docker daemon answered"):
            start_server(ServerOptions(provider="docker"))
        assert time.monotonic() - started < 3
    finally:
        listener.close()
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    started = time.monotonic()
    probe = find_docker_daemon()
    assert time.monotonic() - started < 0.5
    assert not probe.reachable
    assert "unix:///nonexistent/docker.sock" in probe.tried[0]


class _FakeDockerDaemon:
    """A unix socket answering ``/_ping`` with a fixed status line, in a thread."""

    def __init__(self, path: Path, status: bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.status = status
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(1024)
            conn.sendall(self.status + b"\r\nContent-Length: 2\r\n\r\nOK")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(2)


@pytest.mark.parametrize(
    ("status", "reachable"), [(b"HTTP/1.1 200 OK", True), (b"HTTP/1.1 500 Oops", False)]
)
def test_docker_probe_reads_the_ping_answer(tmp_path: Path, status: bytes, reachable: bool) -> None:
    path = tmp_path / "docker.sock"
    daemon = _FakeDockerDaemon(path, status)
    try:
        probe = find_docker_daemon(1.0, environ={"DOCKER_HOST": f"unix://{path}"})
    finally:
        daemon.close()
    assert probe.reachable is reachable
    if not reachable:
        assert "500" in probe.tried[0]


def test_docker_reachable_without_testcontainers_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("testcontainers") is not None:
        pytest.skip("testcontainers is installed")
    path = tmp_path / "docker.sock"
    daemon = _FakeDockerDaemon(path, b"HTTP/1.1 200 OK")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    try:
        with pytest.raises(ServerUnavailable, match="testcontainers is not installed"):
            start_server(ServerOptions(provider="docker"))
    finally:
        daemon.close()


# --------------------------------------------------------------------------------------------
# Finding binaries and the chain's messages


def test_forced_local_with_empty_bin_dir_is_a_clear_error(tmp_path: Path) -> None:
    for provider in ("local", "auto"):  # an explicit bin dir never falls through
        with pytest.raises(ServerUnavailable) as caught:
            start_server(ServerOptions(provider=provider, bin_dir=str(tmp_path)))
        message = str(caught.value)
        assert str(tmp_path) in message
        assert "initdb" in message and "postgres" in message
        assert "Docker" not in message


def test_nothing_available_gives_one_reason_listing_what_was_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_binaries(bin_dir: object = None) -> PgBinaries:
        raise ServerUnavailable("no PostgreSQL server programs (initdb, postgres) found; tried X")

    monkeypatch.setattr(pgbinaries, "find_binaries", no_binaries)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(ServerUnavailable) as caught:
        start_server()
    message = str(caught.value)
    assert "local PostgreSQL: no PostgreSQL server programs" in message
    assert "Docker: no Docker daemon answered" in message
    assert pgserver.DSN_ENV_VAR in message


@pytest.mark.skipif(
    not Path("/usr/lib/postgresql").is_dir(), reason="no Debian-style PostgreSQL install"
)
def test_usual_locations_find_the_debian_install() -> None:
    found = usual_bin_dirs()
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in p.parent.name.split(".")],
    )
    assert found and found[0] == debian[-1]
    binaries = find_binaries(search_path="", use_pg_config=False)
    assert binaries.found_by == "usual locations"
    assert binaries.bin_dir == debian[-1]
    assert binaries.major_version == int(debian[-1].parent.name.split(".")[0])


def test_usual_locations_prefer_the_newest_version(tmp_path: Path) -> None:
    for version in ("9.6", "15", "10", "16beta"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        for program in ("initdb", "postgres"):
            (bin_dir / program).write_text("#!/bin/sh\n")
            (bin_dir / program).chmod(0o755)
    (tmp_path / "17" / "bin").mkdir(parents=True)  # no programs: not a candidate
    found = usual_bin_dirs((f"{tmp_path}/*/bin",))
    assert [p.parent.name for p in found] == ["16beta", "15", "10", "9.6"]


def test_find_binaries_follows_path_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real" / "bin"
    real.mkdir(parents=True)
    for program in ("initdb", "postgres"):
        (real / program).write_text("#!/bin/sh\n")
        (real / program).chmod(0o755)
    on_path = tmp_path / "on_path"
    on_path.mkdir()
    (on_path / "initdb").symlink_to(real / "initdb")  # only initdb is linked
    found = find_binaries(search_path=str(on_path), use_pg_config=False, patterns=())
    assert found.bin_dir == real and found.found_by == "PATH"
    with pytest.raises(ServerUnavailable, match=r"tried PATH"):
        find_binaries(search_path=str(tmp_path / "nowhere"), use_pg_config=False, patterns=())
