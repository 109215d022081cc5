"""Local servers do not trust files other accounts could control (issue 12).

Each test starts a real server from the local binaries after planting what another user of the
machine could plant: a cached cluster set up to run a command, a cache they own or may write,
a runtime directory they created first. The server must neither run their command nor give up;
it must say what it refused. Skipped without local PostgreSQL programs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres import runtime as pgruntime
from pytest_migorch.postgres.binaries import find_binaries, server_user
from pytest_migorch.postgres.safety import UnsafeFilesWarning
from pytest_migorch.postgres.servers import LocalServer, ServerOptions, start_server

try:
    find_binaries()
    HAVE_LOCAL = True
except ServerUnavailable:
    HAVE_LOCAL = False

pytestmark = pytest.mark.skipif(not HAVE_LOCAL, reason="no local PostgreSQL server programs")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's files")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache with one entry, made by a real start; returns the cache directory."""
    root = tmp_path / "cache"
    start_server(ServerOptions(provider="local", cache_dir=str(root))).stop()
    return root


def _entry(cache: Path) -> Path:
    (entry,) = (p for p in (cache / "initdb").iterdir() if not p.name.startswith("."))
    return entry


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may write to (like /tmp), for the planted command's marker."""
    path = Path(tempfile.mkdtemp(prefix="migorch-shared-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(cache: Path) -> LocalServer:
    server = start_server(ServerOptions(provider="local", cache_dir=str(cache)))
    assert isinstance(server, LocalServer)
    return server


def _other_user() -> tuple[int, int]:
    """An unprivileged account that is not the one the server runs as (nor us)."""
    runs_as = server_user().uid
    for name in ("nobody", "daemon", "bin"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid not in (0, runs_as, os.geteuid()):
            return entry.pw_uid, entry.pw_gid
    pytest.skip("no second unprivileged account on this machine")


def test_a_cached_cluster_set_up_for_recovery_is_rebuilt_without_running_its_command(
    cache: Path, shared_dir: Path
) -> None:
    entry = _entry(cache)
    marker = shared_dir / "restore_command_ran"
    (entry / "postgresql.auto.conf").write_text(f"restore_command = 'touch {marker}; false'\n")
    (entry / "recovery.signal").write_text("")
    with pytest.warns(UserWarning, match=r"recovery\.signal"):
        server = _start(cache)
    try:
        with server.connect() as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('restore_command')"
            ).fetchone()
        assert row == (False, "")
        assert "initdb" in server.timings  # rebuilt, not copied
    finally:
        server.stop()
    assert not marker.exists()
    assert not (_entry(cache) / "recovery.signal").exists()  # the bad entry was replaced


def test_settings_in_a_cached_cluster_are_not_ours_to_start_with(
    cache: Path, shared_dir: Path
) -> None:
    entry = _entry(cache)
    marker = shared_dir / "archive_command_ran"
    (entry / "postgresql.auto.conf").write_text("work_mem = '7MB'\n")
    with (entry / "postgresql.conf").open("a") as conf:  # our own file, edited: no rebuild
        conf.write(f"restore_command = 'touch {marker}'\narchive_command = 'touch {marker}'\n")
    server = _start(cache)
    try:
        assert "copy" in server.timings
        with server.connect() as conn:
            row = conn.execute(
                "SELECT current_setting('work_mem'), current_setting('restore_command'),"
                " current_setting('archive_mode'),"
                " (SELECT source FROM pg_settings WHERE name = 'archive_command')"
            ).fetchone()
        assert row == ("4MB", "", "off", "command line")
        assert "work_mem" not in (server.data_dir / "postgresql.auto.conf").read_text()
    finally:
        server.stop()
    assert not marker.exists()


def test_a_cached_cluster_others_may_write_is_not_used(cache: Path) -> None:
    entry = _entry(cache)
    (entry / "PG_VERSION").chmod(0o666)
    with pytest.warns(UserWarning, match=r"writable by others"):
        server = _start(cache)
    server.stop()
    assert "initdb" in server.timings
    assert stat.S_IMODE((_entry(cache) / "PG_VERSION").stat().st_mode) & 0o022 == 0


@as_root
def test_a_cached_cluster_owned_by_another_user_is_not_used(cache: Path) -> None:
    uid, gid = _other_user()
    entry = _entry(cache)
    for base, dirs, files in os.walk(entry):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(base, name), uid, gid)
    os.lchown(entry, uid, gid)
    with pytest.warns(UserWarning, match=rf"owned by uid {uid}"):
        server = _start(cache)
    server.stop()
    assert "initdb" in server.timings
    assert _entry(cache).stat().st_uid == os.geteuid()


@as_root
def test_a_cache_directory_of_another_user_is_neither_used_nor_written(cache: Path) -> None:
    uid, gid = _other_user()
    os.chown(cache / "initdb", uid, gid)
    with pytest.warns(UserWarning, match=rf"owned by uid {uid}"):
        server = _start(cache)
    server.stop()
    assert "initdb" in server.timings and "cache_write" not in server.timings


@pytest.fixture
def foreign_parent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The preferred runtime parent, created first by another user."""
    uid, gid = _other_user()
    path = Path(f"/tmp/migorch-t{os.getpid()}-{time.monotonic_ns() % 10**6}")
    path.mkdir(mode=0o755)
    os.chown(path, uid, gid)
    monkeypatch.setattr(pgruntime, "default_runtime_parents", lambda: [path])
    yield path
    shutil.rmtree(path, ignore_errors=True)
    for leftover in path.parent.glob(f"{path.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@as_root
def test_a_runtime_parent_of_another_user_falls_back_to_a_private_one(
    foreign_parent: Path, tmp_path: Path
) -> None:
    with pytest.warns(UnsafeFilesWarning, match=r"instead"):
        server = _start(tmp_path / "cache")
    try:
        parent = server.runtime_dir.parent
        assert parent != foreign_parent
        assert parent.name.startswith(foreign_parent.name + "-")
        info = parent.stat()
        assert info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o711
        with server.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert list(foreign_parent.iterdir()) == []  # nothing of ours in their directory
    finally:
        server.stop()


def test_the_server_log_is_private(tmp_path: Path) -> None:
    server = _start(tmp_path / "cache")
    try:
        info = server.log_path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600
        with server.connect() as conn:  # and the server can still write it
            conn.execute("SELECT pg_catalog.pg_sleep(0)")
        assert server.log_path.stat().st_size > 0
    finally:
        server.stop()


def test_our_own_group_writable_cache_directories_are_tightened_not_rebuilt(
    cache: Path,
) -> None:
    """Under a 002 umask older versions made the cache 0775; that must not cost the cache."""
    for directory in (cache, cache / "initdb"):
        directory.chmod(0o775)
    server = _start(cache)
    server.stop()
    assert "copy" in server.timings and "initdb" not in server.timings
    for directory in (cache, cache / "initdb"):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o022 == 0
