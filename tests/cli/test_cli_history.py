"""Adopting migorch on a repository with history: ``validate --base`` and the baseline file show
the findings of the change and count the rest (issue 13)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import dependencies_json, entry, pair, service_files, write_service

from pytest_migorch.cli.main import main

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"
SVIX = CORPORA / "svix__svix-webhooks" / "services"
HIDDEN = re.compile(r"^(\d+) findings? in (\d+) (released|baselined) migrations? not shown "
                    r"\(--all-findings shows them\)$", re.MULTILINE)
FINDING = re.compile(r"^\S+: (?:error|warning) [A-Z]{3}\d{3} ", re.MULTILINE)
DROP_UP = "ALTER TABLE t DROP COLUMN c;\n"
DROP_DOWN = "ALTER TABLE t ADD COLUMN c int;\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example",
                    *args], check=True, capture_output=True)


def commit_all(repo: Path) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "release")


def history_project(tmp_path: Path) -> Path:
    """A released service whose two migrations both have a finding (a dropped column)."""
    root = tmp_path / "services"
    files = service_files({"000001_a": {}, "000002_b": {"risk_level": "high"}})
    files.update(pair("000002_b", up=DROP_UP, down=DROP_DOWN))
    write_service(root, "svc", files)
    commit_all(tmp_path)
    return root


def add_migration(root: Path, migration_id: str, up: str = DROP_UP,
                  **overrides: object) -> None:
    migrations = root / "svc" / "migrations"
    deps = json.loads((migrations / "dependencies.json").read_text())["migrations"]
    deps[migration_id.split("_")[0]] = entry(**overrides)  # type: ignore[arg-type]
    write_service(root, "svc", {**pair(migration_id, up=up, down=DROP_DOWN),
                                "dependencies.json": dependencies_json(deps)})


def migrations_named(out: str) -> set[str]:
    return set(re.findall(r"migrations/(\d+_\w+)\.(?:up|down)\.sql", out))


def test_base_shows_only_the_new_migration_and_counts_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    _, all_out, _ = run(capsys, "validate", "--root", str(root))
    assert migrations_named(all_out) == {"000002_b"}
    add_migration(root, "000003_c", risk_level="low")
    code, out, err = run(capsys, "validate", "--root", str(root), "--base", "HEAD")
    assert migrations_named(out) == {"000003_c"}
    assert "RSK003" in out
    assert code == 1  # the new migration declares low but drops a column: RSK028
    match = HIDDEN.search(err)
    assert match is not None and match[2] == "1" and match[3] == "released"
    code, out, _ = run(capsys, "validate", "--root", str(root), "--base", "HEAD",
                       "--all-findings")
    assert migrations_named(out) == {"000002_b", "000003_c"}


def test_integrity_findings_and_edited_migrations_are_always_shown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    up = root / "svc" / "migrations" / "000002_b.up.sql"
    up.write_text("-- edited\n" + DROP_UP)
    code, out, err = run(capsys, "validate", "--root", str(root), "--base", "HEAD")
    assert "INT001" in out and "RSK003" in out  # the edited migration is part of the change
    assert code == 1
    assert HIDDEN.search(err) is None  # 000001_a has no findings: nothing held back


def test_a_changed_config_entry_is_shown(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    deps_path = root / "svc" / "migrations" / "dependencies.json"
    deps = json.loads(deps_path.read_text())["migrations"]
    deps["000001"]["affects_tables"] = ["t", "ghost"]
    deps_path.write_text(dependencies_json(deps))
    code, out, err = run(capsys, "validate", "--root", str(root), "--base", "HEAD")
    assert "SQL004" in out and "ghost" in out  # declared but not touched: shown
    assert "RSK003" not in out  # 000002_b did not change
    assert HIDDEN.search(err) is not None


def test_json_counts_what_is_not_shown(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    _, out, _ = run(capsys, "validate", "--root", str(root), "--base", "HEAD", "--json")
    document = json.loads(out)
    assert document["findings"] == []
    assert document["not_shown"]["migrations"] == 1
    assert document["not_shown"]["findings"] >= 1


def test_baseline_then_validate_shows_only_new_findings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    code, _, err = run(capsys, "baseline", "--root", str(root))
    assert code == 0
    baseline = tmp_path / "migorch-baseline.json"
    assert baseline.is_file() and str(baseline) in err
    code, out, err = run(capsys, "validate", "--root", str(root))
    assert (code, out) == (0, "")
    assert HIDDEN.search(err)[3] == "baselined"  # type: ignore[index]
    # Unrelated edits (a comment above the statement) change no fingerprint.
    up = root / "svc" / "migrations" / "000002_b.up.sql"
    up.write_text("-- reviewed in 2023\n\n" + DROP_UP)
    assert run(capsys, "validate", "--root", str(root))[:2] == (0, "")
    add_migration(root, "000003_c", risk_level="high")
    code, out, _ = run(capsys, "validate", "--root", str(root))
    assert migrations_named(out) == {"000003_c"} and "RSK003" in out


def test_stale_entries_are_named_and_update_removes_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    run(capsys, "baseline", "--root", str(root))
    baseline = tmp_path / "migorch-baseline.json"
    recorded = len(json.loads(baseline.read_text())["findings"])
    (root / "svc" / "migrations" / "000002_b.up.sql").write_text("ALTER TABLE t ADD x int;\n")
    code, out, err = run(capsys, "validate", "--root", str(root))
    stale = [line for line in err.splitlines() if line.startswith("stale baseline entry")]
    assert stale and all("000002_b" in line for line in stale)
    assert "RSK003" in " ".join(stale)
    code, out, _ = run(capsys, "baseline", "--root", str(root), "--update")
    assert code == 0 and f"removed {len(stale)} stale" in out
    assert len(json.loads(baseline.read_text())["findings"]) == recorded - len(stale)
    _, _, err = run(capsys, "validate", "--root", str(root))
    assert "stale" not in err


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"format": "sarif"}), "is not a migorch baseline"),
    (json.dumps({"format": "migorch-baseline", "version": 99, "findings": []}),
     "baseline version 99"),
    (json.dumps({"format": "migorch-baseline", "version": 1, "findings": [{"code": 1}]}),
     "finding 1 needs"),
    (b"\xff\xfe", "is not valid JSON"),
])
def test_a_corrupt_or_foreign_baseline_is_an_error_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes,
        message: str) -> None:
    root = history_project(tmp_path)
    baseline = tmp_path / "migorch-baseline.json"
    if isinstance(content, bytes):
        baseline.write_bytes(content)
    else:
        baseline.write_text(content)
    code, out, err = run(capsys, "validate", "--root", str(root))
    assert code == 2
    assert str(baseline) in err and message in err


def test_a_named_baseline_that_is_missing_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    code, _, err = run(capsys, "validate", "--root", str(root), "--baseline",
                       str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json" in err
    code, _, err = run(capsys, "baseline", "--root", str(root), "--update")
    assert code == 2 and "migorch baseline" in err


def test_validating_one_service_calls_no_entry_of_another_stale(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    other = service_files({"000001_a": {"risk_level": "high"}})
    other.update(pair("000001_a", up="CREATE TABLE t (c int);\n" + DROP_UP, down=DROP_DOWN))
    write_service(root, "other", other)
    run(capsys, "baseline", "--root", str(root))
    code, out, err = run(capsys, "validate", "--root", str(root), "svc")
    assert (code, out) == (0, "") and "stale" not in err
    (root / "svc" / "migrations" / "000002_b.up.sql").write_text("ALTER TABLE t ADD x int;\n")
    _, _, err = run(capsys, "validate", "--root", str(root), "svc")
    assert "svc:000002_b" in err and "other:000001_a" not in err


def test_baseline_output_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = history_project(tmp_path)
    target = tmp_path / "ci" / "known.json"
    assert run(capsys, "baseline", "--root", str(root), "--output", str(target))[0] == 0
    assert not (tmp_path / "migorch-baseline.json").exists()
    code, out, _ = run(capsys, "validate", "--root", str(root), "--baseline", str(target))
    assert (code, out) == (0, "")


def copy_svix(tmp_path: Path) -> Path:
    root = tmp_path / "services"
    shutil.copytree(SVIX, root)
    commit_all(tmp_path)
    return root


def add_svix_migration(root: Path, name: str, up: str, down: str) -> None:
    migrations = root / "svix-server" / "migrations"
    (migrations / f"{name}.up.sql").write_text(up)
    (migrations / f"{name}.down.sql").write_text(down)


@pytest.mark.skipif(not SVIX.is_dir(), reason="../shared/corpora is not present")
def test_real_history_with_base_and_then_a_baseline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_svix(tmp_path)
    _, before, _ = run(capsys, "validate", "--root", str(root))
    history = len(FINDING.findall(before))
    add_svix_migration(root, "20990101000000_drop_uid",
                       "ALTER TABLE application DROP COLUMN uid;\n",
                       "ALTER TABLE application ADD COLUMN uid text;\n")
    code, out, err = run(capsys, "validate", "--root", str(root), "--base", "HEAD")
    assert migrations_named(out) == {"20990101000000_drop_uid"}
    assert "RSK003" in out
    match = HIDDEN.search(err)
    assert match is not None and history >= 10
    assert int(match[1]) == history  # every historical finding is counted, none printed
    # Without a git base: record everything, then nothing is shown ...
    commit_all(tmp_path)
    assert run(capsys, "baseline", "--root", str(root))[0] == 0
    code, out, err = run(capsys, "validate", "--root", str(root))
    assert (code, out) == (0, "")
    assert HIDDEN.search(err) is not None
    # ... until a new DROP COLUMN migration.
    add_svix_migration(root, "20990202000000_drop_description",
                       "ALTER TABLE endpoint DROP COLUMN description;\n",
                       "ALTER TABLE endpoint ADD COLUMN description text;\n")
    code, out, _ = run(capsys, "validate", "--root", str(root))
    assert migrations_named(out) == {"20990202000000_drop_description"}
    assert "RSK003" in out and "DROP COLUMN endpoint.description" in out
