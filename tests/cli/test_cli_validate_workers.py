"""``migorch validate`` analyses a large tree's SQL in worker processes and prints exactly what
it prints analysing everything in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_migorch.cli.main import main
from pytest_migorch.sql import ahead as ahead_module
from pytest_migorch.sql.analysis import Computed


def validate_json(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[int, str]:
    code = main(["validate", "--root", str(root), "--all", "--json", "--no-cache"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def test_findings_are_the_same_with_and_without_workers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # however started
    from benchmarks.generate import generate_repository

    root = generate_repository(tmp_path / "services", services=3, migrations=30, seed=3).root
    monkeypatch.setattr(ahead_module, "usable_workers", lambda: 0)
    alone = validate_json(capsys, root)

    served: list[str] = []
    take = ahead_module.AnalysesAhead.take

    def counted(self: ahead_module.AnalysesAhead, key: str) -> Computed | None:
        found = take(self, key)
        if found is not None:
            served.append(key)
        return found

    monkeypatch.setattr(ahead_module, "usable_workers", lambda: 2)
    monkeypatch.setattr(ahead_module.AnalysesAhead, "take", counted)
    shared = validate_json(capsys, root)
    assert len(served) > 100, "the workers analysed the files"
    assert shared == alone
    assert '"code": "RSK' in alone[1]  # the tree has SQL findings to compare
