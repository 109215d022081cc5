"""The stall check: an up that waits behind a reader without lock_timeout is DB014."""

from __future__ import annotations

from pathlib import Path

from test_seeding import codes, make, run

from pytest_migorch.postgres.servers import PostgresServer


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
