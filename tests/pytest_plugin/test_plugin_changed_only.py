"""``--migorch-changed-only``: round-trips only from the first changed migration of each order
(the history before it is applied, not tested), and per-migration checks only where a migration
can have changed (issue 14's CI scenario)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import pair, service_files, write_service

# Imported once here: pytester restores sys.modules after each in-process run.
import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401
from pytest_migorch.postgres.servers.base import PostgresServer


def git(base: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(base), "-c", "user.name=t", "-c", "user.email=t@x", *args],
                   check=True, capture_output=True)


def service(ids: list[str], prefix: str, depends: dict[str, list[str]] | None = None) -> dict:
    depends = depends or {}
    files = service_files({mid: {"affects_tables": [f"{prefix}{mid[:6]}"],
                                 "depends_on": depends.get(mid, [])} for mid in ids})
    for mid in ids:
        table = f"{prefix}{mid[:6]}"
        files.update(pair(mid, up=f"CREATE TABLE {table} (id int);\n",
                          down=f"DROP TABLE {table};\n"))
    return files


@pytest.fixture
def released(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Released services a, b (whose 000002 needs a's 000001) and c; then a new migration in a."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))
    root = pytester.path / "services"
    write_service(root, "a", service(["000001_x", "000002_y"], "a"))
    write_service(root, "b", service(["000001_x", "000002_y"], "b",
                                     {"000002_y": ["a:000001"]}))
    write_service(root, "c", service(["000001_x", "000002_y"], "c"))
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "release")
    write_service(root, "a", service(["000001_x", "000002_y", "000003_z"], "a"))
    return root


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--migorch", "services", "--collect-only", "-q",
                                "-p", "no:cacheprovider", "--migorch-base", "HEAD", *args)
    assert result.ret == 0, result.stdout.str()
    return [line for line in result.outlines if "::" in line and " " not in line]


def kinds(items: list[str], service: str) -> set[str]:
    return {i.split("::")[1].split("[")[0] for i in items if i.startswith(f"services/{service}::")}


def round_trips(items: list[str]) -> list[str]:
    return [i.split("::", 1)[1] for i in items if "::roundtrip[" in i]


def test_only_the_change_and_what_follows_it_is_round_tripped(
        released: Path, pytester: pytest.Pytester) -> None:
    items = collected(pytester, "--migorch-changed-only")
    service_level = {"config", "files", "graph", "integrity"}
    assert kinds(items, "a") == service_level | {"sql", "risk", "roundtrip"}
    # b's migrations are all released, and none of its orders holds a's new migration.
    assert kinds(items, "b") == service_level
    assert kinds(items, "c") == service_level
    assert len([i for i in items if i.startswith("services/a::sql[")]) == 3
    # a's released 000001 and 000002 ran so at the base: applied on the way, not tested.
    assert round_trips(items) == ["roundtrip[production]::000003_z"]


def test_an_edited_released_migration_retests_every_order_it_reaches(
        released: Path, pytester: pytest.Pytester) -> None:
    (released / "a" / "migrations" / "000001_x.up.sql").write_text(
        "CREATE TABLE a000001 (id bigint);\n")
    tested = round_trips(collected(pytester, "--migorch-changed-only"))
    assert {"roundtrip[production]::000001_x", "roundtrip[production]::000002_y",
            "roundtrip[production]::000003_z"} <= set(tested)
    assert tested.count("roundtrip[production]::000002_y") == 2  # a's and b's (after a:000001)
    assert "roundtrip[production]::000001_x" in tested


@pytest.mark.parametrize("change", ["environments", "deleted", "setting"])
def test_a_change_no_migration_accounts_for_retests_the_whole_service(
        released: Path, pytester: pytest.Pytester, change: str) -> None:
    migrations = released / "c" / "migrations"
    if change == "environments":
        (migrations / "environments.json").write_text(
            '{"environments": {"staging": {"migrations": []}}}\n')
    elif change == "deleted":  # a released migration withdrawn, files and entry
        for suffix in ("up", "down"):
            (migrations / f"000002_y.{suffix}.sql").unlink()
        document = json.loads((migrations / "dependencies.json").read_text())
        del document["migrations"]["000002"]
        (migrations / "dependencies.json").write_text(json.dumps(document))
    else:
        text = (migrations / "dependencies.json").read_text()
        (migrations / "dependencies.json").write_text(
            text.replace("{", '{"migrations_table": "c_versions", ', 1))
    tested = [i for i in collected(pytester, "--migorch-changed-only")
              if i.startswith("services/c::roundtrip[")]
    assert [i.rsplit("::", 1)[1] for i in tested][:1] == ["000001_x"], tested


def test_history_is_applied_before_the_change_is_tested(
        released: Path, pytester: pytest.Pytester, pg_server: PostgresServer) -> None:
    """The new migration needs the released ones' tables: it passes only if they were applied."""
    migrations = released / "a" / "migrations"
    (migrations / "000003_z.up.sql").write_text("ALTER TABLE a000002 ADD COLUMN z int;\n")
    (migrations / "000003_z.down.sql").write_text("ALTER TABLE a000002 DROP COLUMN z;\n")
    text = (migrations / "dependencies.json").read_text()
    (migrations / "dependencies.json").write_text(text.replace('"a000003"', '"a000002"'))
    result = pytester.runpytest("--migorch", "services", "-p", "no:cacheprovider",
                                "--migorch-base", "HEAD", "--migorch-changed-only",
                                "--migorch-provider", "dsn", "--migorch-dsn",
                                pg_server.admin_conninfo, "-k", "roundtrip", "-v")
    result.assert_outcomes(passed=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["*services/a::roundtrip?production?::000003_z PASSED*"])


def test_all_findings_keeps_every_static_item(released: Path, pytester: pytest.Pytester) -> None:
    items = collected(pytester, "--migorch-changed-only", "--migorch-all-findings")
    assert kinds(items, "c") == {"config", "files", "graph", "integrity", "sql", "risk"}
    assert "roundtrip" not in kinds(items, "c")
    # Without changed-only: the round-trips of c, of b and of a's released migrations.
    assert len(collected(pytester)) == len(items) + 6


def test_an_edited_released_migration_is_still_an_error(
        released: Path, pytester: pytest.Pytester) -> None:
    (released / "c" / "migrations" / "000001_x.up.sql").write_text(
        "CREATE TABLE c000001 (id bigint);\n")
    result = pytester.runpytest("--migorch", "services", "-p", "no:cacheprovider",
                                "--migorch-base", "HEAD", "--migorch-changed-only",
                                "--migorch-no-db", "-k", "integrity")
    result.assert_outcomes(passed=2, failed=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["*services/c/migrations/000001_x.up.sql:1: error INT*"])
