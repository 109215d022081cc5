"""Database commands served a cached project (project/load_cache.py) still see every change:
an applied file edited without changing its size or modification time is drift."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_migorch.cli.main import main
from pytest_migorch.model import Project
from pytest_migorch.project import load_cache, validation


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_drift_is_seen_through_the_cache(services: Path, fresh_db: str,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_cache, "RACY_SECONDS", 0.0)
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    common = ["--root", str(services), "--env", "staging"]
    code, out, _ = run(capsys, "up", "user-service", *common)
    assert code == 0 and "Done: applied" in out
    loads = []
    real_load = validation.load_project

    def counting(*args: object, **kwargs: object) -> Project:
        loads.append(args)
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(validation, "load_project", counting)
    code, out, _ = run(capsys, "up", "user-service", *common)
    assert code == 0 and "Nothing to do." in out and loads == []  # served from the cache

    edited = services / "user-service/migrations/000002_add_profiles.up.sql"
    before = edited.stat()
    data = bytearray(edited.read_bytes())
    data[-2] = ord("X") if data[-2] != ord("X") else ord("Y")
    edited.write_bytes(bytes(data))
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime

    code, out, _ = run(capsys, "status", "user-service", *common)
    assert code == 1 and "000002_add_profiles.up.sql changed since it was applied" in out
    code, _, err = run(capsys, "up", "user-service", *common)
    assert code == 1 and "--allow-drift" in err
    assert loads  # the edit made the tree load again
