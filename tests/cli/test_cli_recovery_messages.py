"""Messages of a dirty state through ``migorch`` print their recovery commands once, in text
and JSON, for ``up``, ``down``, ``status`` and ``force`` (real PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import service_files, write_service

from pytest_migorch.cli.main import main

FORCE_APPLIED = "migorch force svc 2   # it is now fully applied"
FORCE_UNDONE = "migorch force svc 1   # it is fully undone (it runs again)"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL", "MIGORCH_LOG_LEVEL", "MIGORCH_ROOT"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def once(text: str) -> bool:
    """Both recovery commands, each exactly once."""
    return text.count(FORCE_APPLIED) == 1 and text.count(FORCE_UNDONE) == 1


def dirty_service(tmp_path: Path) -> Path:
    """svc: 000001 creates t; 000002 (non-transactional) builds one index, then fails."""
    files = service_files({"000001_a": {}, "000002_b": {"transactional": False}})
    files["000001_a.up.sql"] = "CREATE TABLE t (id int);\n"
    files["000002_b.up.sql"] = ("CREATE INDEX CONCURRENTLY t_id ON t (id);\n"
                                "CREATE INDEX CONCURRENTLY nope ON missing (id);\n")
    files["000002_b.down.sql"] = "DROP INDEX CONCURRENTLY IF EXISTS t_id;\n"
    write_service(tmp_path, "svc", files)
    return tmp_path


def test_dirty_state_prints_each_recovery_command_once(
        tmp_path: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["svc", "--root", str(dirty_service(tmp_path)), "--database-url", fresh_db,
              "--env", "production"]
    code, out, err = run(capsys, "up", *common)  # fails half-way: dirty
    assert code == 1 and once(out + err) and "[2/2] failed svc 000002_b" in out

    code, out, err = run(capsys, "status", *common)
    assert code == 1 and once(out + err)
    assert "DIRTY: 000002_b did not finish" in out and "failed: 000002_b" in out
    code, out, _ = run(capsys, "--json", "status", *common)
    service: dict[str, Any] = json.loads(out)["services"][0]
    assert code == 1 and once(out)
    assert service["recovery"] == [FORCE_APPLIED, FORCE_UNDONE]
    assert "record which with `migorch force`" in service["dirty"]
    code, out, _ = run(capsys, "--json", "list", *common)
    assert code == 0 and "migorch force svc" not in out  # the error, without stale commands

    for command in (["up"], ["down", "--yes"]):  # refused while dirty
        code, out, err = run(capsys, *command, *common)
        assert code == 1 and once(out + err) and "svc is dirty" in err
        code, out, err = run(capsys, "--json", *command, *common)
        assert code == 1 and once(out) and once(err)  # one JSON document, one error line

    code, out, err = run(capsys, "force", "svc", "1", *common[1:])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines == sorted(set(lines), key=lines.index)  # no line twice
    assert "changed: 000002_b: recorded as not applied" in lines

    code, out, _ = run(capsys, "--json", "up", *common)  # runs again, fails again
    document = json.loads(out)
    assert code == 1 and once(out) and once(document["error"])
    assert FORCE_UNDONE not in document["results"][-1]["error"]

    run(capsys, "force", "svc", "1", *common[1:])
    code, out, _ = run(capsys, "--json", "status", *common)
    service = json.loads(out)["services"][0]
    assert service["dirty"] is None and service["recovery"] == []
    assert "migorch force svc" not in out  # forced: the recorded commands are stale
