"""The stall check: an up that waits behind a reader without lock_timeout is DB014."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import psycopg
import pytest
from test_seeding import codes, make, run

from pytest_migorch.model import MigrationFile
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.roundtrip import lock_probe
from pytest_migorch.roundtrip.lock_probe import probe_lock_wait


def test_locking_up_without_lock_timeout_would_stall(pg_server: PostgresServer,
                                                     tmp_path: Path) -> None:
    root = make(tmp_path, "ALTER TABLE child ADD COLUMN note text;",
                "ALTER TABLE child DROP COLUMN note;")
    outcome = run(pg_server, root)[2]
    stall = [f for f in outcome.findings if f.code == "DB014"]  # type: ignore[attr-defined]
    assert len(stall) == 1
    assert "stall all traffic" in stall[0].message and "lock_timeout" in stall[0].message
    assert "ALTER TABLE child ADD COLUMN note text" in stall[0].message
    assert stall[0].line == 1


def test_locking_up_with_lock_timeout_fails_fast_and_is_safe(pg_server: PostgresServer,
                                                             tmp_path: Path) -> None:
    root = make(tmp_path, "SET lock_timeout = '100ms';\nALTER TABLE child ADD COLUMN note text;",
                "ALTER TABLE child DROP COLUMN note;")
    assert codes(run(pg_server, root)[2]) == []


def test_a_long_own_lock_timeout_is_proven_without_waiting_for_it(pg_server: PostgresServer,
                                                                  tmp_path: Path) -> None:
    # The file allows itself 30 s; the probe runs its SET with a tiny value, so the proof
    # (55P03 under the file's own timeout) costs milliseconds, not 30 s.
    root = make(tmp_path, "SET lock_timeout TO '30s';\nALTER TABLE child ADD COLUMN note text;",
                "ALTER TABLE child DROP COLUMN note;")
    started = time.perf_counter()
    outcome = run(pg_server, root)[2]
    assert codes(outcome) == []
    assert time.perf_counter() - started < 15


@pytest.mark.parametrize("up", [
    "SET lock_timeout = 0;\nALTER TABLE child ADD COLUMN note text;",
    "ALTER TABLE child ADD COLUMN note text;\nSET lock_timeout = '2s';",
])
def test_no_lock_timeout_in_effect_at_the_locking_statement_would_stall(
        pg_server: PostgresServer, tmp_path: Path, up: str) -> None:
    root = make(tmp_path, up, "ALTER TABLE child DROP COLUMN note;")
    (stall,) = [f for f in run(pg_server, root)[2].findings  # type: ignore[attr-defined]
                if f.code == "DB014"]
    assert "ALTER TABLE child ADD COLUMN note text" in stall.message
    assert stall.line == (2 if up.startswith("SET") else 1)


def test_a_lock_timeout_set_another_way_is_watched_until_it_fires(pg_server: PostgresServer,
                                                                  tmp_path: Path) -> None:
    root = make(tmp_path, "SELECT set_config('lock_timeout', '100ms', false);\n"
                "ALTER TABLE child ADD COLUMN note text;", "ALTER TABLE child DROP COLUMN note;")
    assert "DB014" not in codes(run(pg_server, root)[2])


def test_the_probe_reuses_its_sessions_and_resets_the_migrators_settings(
        fresh_db: str, tmp_path: Path) -> None:
    # A connection costs more than a probe: the blocker and the migrator of a round-trip's
    # database are reused, and a probe's lock_timeout does not outlive it.
    path = tmp_path / "000002_change.up.sql"
    path.write_text("ALTER TABLE t ADD COLUMN note text;")
    up = MigrationFile(path, 2, "000002", "change", "up", "sql", None)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA svc; CREATE TABLE svc.t (id int)")
        first = probe_lock_wait(conn, up, "svc", ["svc.t"])
        sessions = list(lock_probe._SESSIONS[conn])
        second = probe_lock_wait(conn, up, "svc", ["svc.t"])
        assert first is not None and second is not None  # the same stall, both times
        assert lock_probe._SESSIONS[conn] == sessions
        migrator = sessions[1]
        assert migrator.execute("SHOW lock_timeout").fetchone() == ("200ms",)
        lock_probe._sessions(conn)
        assert migrator.execute("SHOW lock_timeout").fetchone() == ("0",)
    del conn
    gc.collect()
    assert all(s.closed for s in sessions)  # closed with the round-trip's connection
