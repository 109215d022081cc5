"""Output failures never stop or hide a deploy (issue 12): ``migorch up | head -1``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_migorch.cli.main import main
from pytest_migorch.cli.output import GuardedStream


def slow_first_migrations(services: Path) -> None:
    """Every service's first migration takes a moment, so output follows the reader's exit."""
    for up in services.glob("*/migrations/000001_*.up.sql"):
        up.write_text(up.read_text(encoding="utf-8") + "\nSELECT pg_sleep(0.4);\n",
                      encoding="utf-8")


def pending_per_service(capsys: pytest.CaptureFixture[str], *common: str) -> dict[str, list[str]]:
    capsys.readouterr()
    code = main(["status", "--all", "--json", *common])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    return {s["service"]: s["pending"] for s in doc["services"]}


def up_read_by_head(common: list[str]) -> tuple[int, bytes, str]:
    """``migorch up --all ... | head -1``: the pipe's reader closes it after the first line."""
    with subprocess.Popen([sys.executable, "-m", "pytest_migorch", "up", "--all", *common],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        return process.wait(timeout=120), first, stderr


def test_up_keeps_applying_after_its_reader_goes_away(
    services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    slow_first_migrations(services)
    common = ["--root", str(services), "--database-url", fresh_db, "--env", "staging"]
    code, first, stderr = up_read_by_head(common)
    assert first.strip()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "output to stdout was lost" in stderr
    pending = pending_per_service(capsys, *common)
    assert pending and all(p == [] for p in pending.values()), pending


def test_a_failing_deploy_still_exits_1_when_its_output_is_lost(
    services: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    slow_first_migrations(services)
    broken = services / "user-service" / "migrations" / "000002_add_profiles.up.sql"
    broken.write_text("CREATE TABLE user_profiles (id int REFERENCES no_such_table (id));\n")
    common = ["--root", str(services), "--database-url", fresh_db, "--env", "staging"]
    code, _, stderr = up_read_by_head(common)
    assert code == 1, stderr
    assert "no_such_table" in stderr


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_guarded_stream_swallows_output_failures_once() -> None:
    guarded = GuardedStream(ClosedPipe())
    assert guarded.write("lost\n") == 5
    guarded.flush()
    assert isinstance(guarded.failure, BrokenPipeError)
    closed = io.StringIO()
    closed.close()
    guarded = GuardedStream(closed)
    guarded.write("x")
    assert isinstance(guarded.failure, ValueError)


def test_a_dirty_refusal_prints_each_recovery_command_once(
    tmp_path: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = tmp_path / "services" / "shop" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "000001_items.up.sql").write_text("CREATE TABLE items (id int);\n")
    (migrations / "000001_items.down.sql").write_text("DROP TABLE items;\n")
    (migrations / "000002_idx.up.sql").write_text(
        "CREATE INDEX CONCURRENTLY items_id ON items (id);\n"
        "CREATE INDEX CONCURRENTLY items_x ON items (nope);\n")
    (migrations / "000002_idx.down.sql").write_text("DROP INDEX CONCURRENTLY items_id;\n")
    entry = {"description": "x", "affects_tables": ["items"], "risk_level": "low",
             "estimated_duration": "1s"}
    (migrations / "dependencies.json").write_text(json.dumps({"migrations": {
        "000001": {**entry, "depends_on": []},
        "000002": {**entry, "depends_on": ["000001"], "transactional": False}}}))
    common = ["up", "shop", "--root", str(tmp_path / "services"), "--database-url", fresh_db]
    assert main(common) == 1  # the second statement fails: the service is left dirty
    first = capsys.readouterr().err
    assert first.count("migorch force shop 2 ") == 1 and first.count("migorch force shop 1 ") == 1
    assert main(common) == 1  # refused: dirty
    err = capsys.readouterr().err
    assert "shop is dirty" in err and 'column "nope" does not exist' in err
    assert err.count("migorch force shop 2 ") == 1, err
    assert err.count("migorch force shop 1 ") == 1, err
