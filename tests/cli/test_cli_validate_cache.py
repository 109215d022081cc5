"""``migorch validate`` serves whole results from its cache, and never a stale one: a warm run
loads no pipeline, and editing a file, the configuration, an ignore comment, the baseline or the
options changes what the next warm run prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import entry, dependencies_json, pair, service_files, write_service

from pytest_migorch.checks.custom import ENTRY_POINT_GROUP
from pytest_migorch.cli.main import main
from pytest_migorch.cli.validate_cache import CUSTOM_CHECKS_GROUP

RISKY = "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;\nDROP TABLE t;\n"

#: A fresh interpreter runs ``migorch validate`` in-process and says which modules it loaded.
LOADED = """
import json, sys
from pytest_migorch.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "services"
    files = service_files(["000001_a", "000002_b"])
    files.update(pair("000002_b", up=RISKY))
    write_service(root, "a-service", files)
    write_service(root, "b-service", service_files(["000001_x"]))
    return root


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("MIGORCH_CACHE_DIR", str(path))
    return path


def validate(capsys: pytest.CaptureFixture[str], root: Path, *extra: str
             ) -> tuple[int, str, str]:
    return run(capsys, "validate", "--root", str(root), "--all", *extra)


def test_a_warm_run_prints_what_the_cold_run_printed(
        tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(tmp_path)
    cold = validate(capsys, root)
    assert "RSK" in cold[1] and cold[0] == 1  # the tree has findings worth caching
    assert validate(capsys, root) == cold
    assert validate(capsys, root, "--json") == validate(capsys, root, "--no-cache", "--json")


def test_a_warm_run_loads_no_pipeline(tmp_path: Path, cache_dir: Path) -> None:
    root = tree(tmp_path)

    def modules() -> tuple[int, list[str]]:
        done = subprocess.run([sys.executable, "-c", LOADED, "validate", "--root", str(root),
                               "--all"], capture_output=True, text=True, check=False)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        return report["exit"], report["modules"]

    cold_exit, cold = modules()
    warm_exit, warm = modules()
    assert cold_exit == warm_exit == 1
    assert "pytest_migorch.project.validation" in cold and "sqlglot" in cold
    heavy = [m for m in warm if m.split(".")[0] in ("sqlglot", "pglast", "jsonschema",
                                                   "networkx", "psycopg")
             or m in ("pytest_migorch.project.validation", "pytest_migorch.checks.migration")]
    assert heavy == []


@pytest.mark.parametrize("edit", ["sql", "ignore", "config", "new-file", "other-service"])
def test_an_edit_changes_the_warm_output(tmp_path: Path, cache_dir: Path, edit: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(tmp_path)
    migrations = root / "a-service" / "migrations"
    before = validate(capsys, root)
    assert validate(capsys, root) == before  # warm
    up = migrations / "000002_b.up.sql"
    if edit == "sql":
        up.write_text("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;\n")
    elif edit == "ignore":
        up.write_text("-- migorch:ignore RSK002 reviewed: the table is empty\n" + RISKY)
    elif edit == "config":
        document = json.loads((migrations / "dependencies.json").read_text())
        document["migrations"]["000002"]["risk_level"] = "high"
        (migrations / "dependencies.json").write_text(json.dumps(document))
    elif edit == "new-file":
        (migrations / "notes.txt").write_text("not a migration\n")
    else:
        write_service(root, "b-service", pair("000001_x", up="DROP TABLE t;\n"))
    after = validate(capsys, root)
    assert after != before
    assert after == validate(capsys, root, "--no-cache")  # what a cold run prints


def test_options_are_part_of_the_key(tmp_path: Path, cache_dir: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(tmp_path)
    plain = validate(capsys, root)
    strict = validate(capsys, root, "--strict")
    assert strict != plain and strict == validate(capsys, root, "--strict", "--no-cache")
    one = run(capsys, "validate", "--root", str(root), "b-service")
    assert one != plain and "in 1 service(s)" in one[2]
    assert validate(capsys, root) == plain


def test_an_edited_baseline_changes_the_warm_output(tmp_path: Path, cache_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(tmp_path)
    run(capsys, "baseline", "--root", str(root))
    baselined = validate(capsys, root)
    assert "baselined" in baselined[2] and baselined[0] == 0
    baseline = tmp_path / "migorch-baseline.json"
    document = json.loads(baseline.read_text())
    document["findings"] = document["findings"][1:]
    baseline.write_text(json.dumps(document))
    assert validate(capsys, root) != baselined
    baseline.unlink()
    assert validate(capsys, root) == validate(capsys, root, "--no-cache")


def test_the_same_relative_root_from_another_directory_is_another_tree(
        tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    tree(first)
    write_service(second / "services", "c-service", service_files(["000001_c"]))
    monkeypatch.chdir(first)
    one = run(capsys, "validate", "--root", "services", "--all")
    monkeypatch.chdir(second)
    two = run(capsys, "validate", "--root", "services", "--all")
    assert one != two and "in 1 service(s)" in two[2]


def test_custom_checks_turn_the_cache_off(tmp_path: Path, cache_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert CUSTOM_CHECKS_GROUP == ENTRY_POINT_GROUP
    root = tree(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.migorch]\nchecks = ["team_checks"]\n')
    check = tmp_path / "team_checks.py"
    check.write_text("def check_service(service):\n    return []\n")
    validate(capsys, root)
    check.write_text(
        "from pytest_migorch.findings import Family, Rule, Severity\n"
        "RULE = Rule('TEAM01', 'team', Severity.ERROR, Family.CUSTOM, 'x', 'y')\n"
        "def check_service(service):\n"
        "    return [RULE.finding('team rule', service=service.name)]\n")
    sys.modules.pop("team_checks", None)
    code, out, _ = validate(capsys, root)
    assert "TEAM01" in out and code == 1
    sys.modules.pop("team_checks", None)


def test_per_service_entries_serve_a_run_after_one_service_changed(
        tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After an edit to b-service the run is a miss, but a-service's findings come from its
    own entry: the same as a cold run prints."""
    root = tree(tmp_path)
    validate(capsys, root)
    migrations = root / "b-service" / "migrations"
    document = {"000001": entry(risk_level="high")}
    (migrations / "dependencies.json").write_text(dependencies_json(document))
    assert validate(capsys, root) == validate(capsys, root, "--no-cache")
