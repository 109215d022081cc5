"""A cold session analyses its items' SQL ahead in worker processes and shows exactly what it
shows analysing everything in one process; a warm one starts no workers."""

from __future__ import annotations

from pathlib import Path

import pytest

# Imported here, before any in-process session: pytester drops the modules a session imported
# when it ends, and a patch on a module imported again would not reach the next session.
from pytest_migorch.pytest_plugin import session  # noqa: F401
from pytest_migorch.sql import ahead as ahead_module
from pytest_migorch.sql.analysis import Computed

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestExperimentalApiWarning")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys the workers' analyses were taken for."""
    taken: list[str] = []
    take = ahead_module.AnalysesAhead.take

    def counted(self: ahead_module.AnalysesAhead, key: str) -> Computed | None:
        found = take(self, key)
        if found is not None:
            taken.append(key)
        return found

    monkeypatch.setattr(ahead_module.AnalysesAhead, "take", counted)
    return taken


def generated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, seed: int) -> Path:
    """A generated tree of 3 services x 40 migrations (one service's 80 files are enough to
    start workers, :data:`~pytest_migorch.sql.ahead.MIN_FILES`)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))  # however started
    from benchmarks.generate import generate_repository

    return generate_repository(pytester.path / "services", services=3, migrations=40,
                               seed=seed).root


def outcome(pytester: pytest.Pytester, root: Path, *extra: str,
            subprocess: bool = False) -> tuple[int, list[str]]:
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    result = run("--migorch", str(root), "--migorch-no-db", "-rA", "-p", "no:randomly", *extra)
    lines = [line for line in result.outlines
             if line.startswith(("PASSED", "FAILED", "ERROR")) or "RSK" in line]
    return int(result.ret), lines


def test_items_take_the_analyses_computed_ahead_and_report_the_same(
        pytester: pytest.Pytester, served: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = generated(pytester, monkeypatch, seed=21)
    monkeypatch.setattr(ahead_module, "usable_workers", lambda: 2)
    shared = outcome(pytester, root, "-p", "no:cacheprovider")
    assert len(served) > 100, "the workers analysed the files"
    # the same session in a process of its own, every analysis made in it
    alone = outcome(pytester, root, "-p", "no:cacheprovider", "-p", "no:migorch-lookahead",
                    subprocess=True)
    assert shared == alone
    assert any("RSK" in line for line in alone[1])  # there are SQL findings to compare


def test_a_deselected_service_is_not_analysed_ahead(
        pytester: pytest.Pytester, served: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = generated(pytester, monkeypatch, seed=22)
    monkeypatch.setattr(ahead_module, "usable_workers", lambda: 2)
    sent: list[int] = []
    close = ahead_module.AnalysesAhead.close

    def closing(self: ahead_module.AnalysesAhead) -> None:
        sent.append(len(self._sent))
        close(self)

    monkeypatch.setattr(ahead_module.AnalysesAhead, "close", closing)
    first = sorted(p.name for p in root.iterdir() if p.is_dir())[0]
    outcome(pytester, root, "-p", "no:cacheprovider", "-k", first)
    # the one selected service's 40 up and 40 down files at most, not the tree's 240
    assert served and sent and 0 < sent[0] <= 80


def test_a_warm_session_starts_no_workers(
        pytester: pytest.Pytester, served: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = generated(pytester, monkeypatch, seed=23)
    monkeypatch.setattr(ahead_module, "usable_workers", lambda: 2)
    cold = outcome(pytester, root)
    assert served
    started: list[int] = []
    real = ahead_module.AnalysesAhead.__init__

    def init(self: ahead_module.AnalysesAhead, *args: object, **kwargs: object) -> None:
        started.append(1)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ahead_module.AnalysesAhead, "__init__", init)
    assert outcome(pytester, root) == cold
    assert started == []
