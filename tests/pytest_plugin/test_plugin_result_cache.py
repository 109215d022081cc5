"""The plugin keeps each service's SQL findings in pytest's cache while the service's files are
unchanged, and a warm session shows what a cold one shows: an edit always reaches the items."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers import pair, service_files, write_service

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestExperimentalApiWarning")

NO_DB = "--migorch-no-db"
RISKY = "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;\nDROP TABLE t;\n"


def result_keys(root: Path) -> list[str]:
    store = root / ".pytest_cache" / "d" / "migorch" / "analysis.sqlite"
    with sqlite3.connect(store) as conn:
        return [k for (k,) in conn.execute("SELECT key FROM analysis WHERE key LIKE 'result:%'")]


def outcome(pytester: pytest.Pytester, *extra: str) -> tuple[int, list[str]]:
    result = pytester.runpytest("--migorch", "services", NO_DB, "-rA", "-p", "no:randomly",
                                *extra)
    lines = [line for line in result.outlines
             if line.startswith(("PASSED", "FAILED", "services/")) or "RSK" in line]
    return int(result.ret), lines


def test_a_warm_session_shows_what_a_cold_one_shows(pytester: pytest.Pytester) -> None:
    files = service_files(["000001_a", "000002_b"])
    files.update(pair("000002_b", up=RISKY))
    write_service(pytester.path / "services", "solo", files)
    write_service(pytester.path / "services", "other", service_files(["000001_x"]))
    cold = outcome(pytester)
    assert any("RSK" in line for line in cold[1])
    assert len(result_keys(pytester.path)) == 2  # one entry per service
    assert outcome(pytester) == cold
    assert outcome(pytester, "--cache-clear") == cold


def test_an_edit_reaches_the_items_of_a_warm_session(pytester: pytest.Pytester) -> None:
    root = pytester.path / "services"
    write_service(root, "solo", service_files(["000001_a", "000002_b"]))
    write_service(root, "other", service_files(["000001_x"]))
    assert outcome(pytester)[0] == 0
    write_service(root, "solo", pair("000002_b", up="CREATE TABLE t (id int;\n"))  # invalid
    code, lines = outcome(pytester)
    assert code == 1 and "FAILED services/solo::sql[000002_b]" in "\n".join(lines)
    assert outcome(pytester)[0] == 1  # warm, still failing
    write_service(root, "solo", pair("000002_b"))
    assert outcome(pytester)[0] == 0
