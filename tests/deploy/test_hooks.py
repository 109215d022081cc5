"""environments.json hooks against a real PostgreSQL: SQL hooks in the migration session,
commands without a shell, failures, records, ``--dry-run`` and ``--no-hooks``."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from helpers import dependencies_json, entry, make_runner, query, write_service

from pytest_migorch.deploy.hooks import HookFailed
from pytest_migorch.project.validation import load_project

NOTIFY = "#!/bin/sh\necho \"$MIGORCH_ACTION $MIGORCH_SERVICE $MIGORCH_MIGRATION " \
         "$MIGORCH_ENV\" >> \"$(dirname \"$0\")/calls.txt\"\n" \
         "psql -q -c 'SELECT 1' \"$MIGORCH_DATABASE_URL\" >/dev/null || exit 3\n"


def service(root: Path, hooks: dict[str, Any]) -> Path:
    files = {"000001_a.up.sql": "CREATE TABLE a (id int);\n",
             "000001_a.down.sql": "DROP TABLE a;\n",
             "000002_b.up.sql": "CREATE TABLE b (id int);\n",
             "000002_b.down.sql": "DROP TABLE b;\n",
             "dependencies.json": dependencies_json({"000001": entry(), "000002": entry(
                 depends_on=["000001"])}),
             "environments.json": json.dumps({"environments": {"staging": {
                 "migrations": [], "hooks": hooks}}}, indent=2)}
    write_service(root, "svc", files)
    directory = root / "svc"
    (directory / "hooks").mkdir()
    (directory / "hooks" / "log.sql").write_text(
        "CREATE TABLE IF NOT EXISTS hook_log (t text);\nINSERT INTO hook_log VALUES ('ran');\n")
    script = directory / "notify.sh"
    script.write_text(NOTIFY.replace("psql", "/usr/lib/postgresql/15/bin/psql"))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory


def hook_runs(url: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT event, hook, action, migration_id, status, exit_code, "
                      "duration_ms >= 0 FROM svc.migration_hook_runs ORDER BY id")


def test_hooks_run_around_up_and_down_and_are_recorded(tmp_path: Path, fresh_db: str) -> None:
    directory = service(tmp_path, {"before_run": [{"sql": "hooks/log.sql"}],
                                   "after_each": [{"command": ["./notify.sh"]}],
                                   "after_down": [{"command": ["./notify.sh"], "timeout": 20}]})
    run = make_runner(tmp_path, fresh_db)
    run.up(["svc"], "staging")
    # The SQL hook ran in the service's schema (search_path), before the migrations.
    assert query(fresh_db, "SELECT t FROM svc.hook_log") == [("ran",)]
    assert (directory / "calls.txt").read_text().splitlines() == [
        "up svc 000001_a staging", "up svc 000002_b staging"]
    run.down("svc", "staging")
    assert (directory / "calls.txt").read_text().splitlines()[-1] == "down svc  staging"
    assert hook_runs(fresh_db) == [
        ("before_run", "sql hooks/log.sql", "up", None, "completed", 0, True),
        ("after_each", "command ./notify.sh", "up", "000001_a", "completed", 0, True),
        ("after_each", "command ./notify.sh", "up", "000002_b", "completed", 0, True),
        ("after_down", "command ./notify.sh", "down", None, "completed", 0, True)]
    # The SPEC's history has no hook rows: two per up and two for the one rollback.
    assert query(fresh_db, "SELECT count(*) FROM svc.migration_execution_history") == [(6,)]


def test_a_failing_before_hook_applies_nothing(tmp_path: Path, fresh_db: str) -> None:
    service(tmp_path, {"before_run": [{"command": ["false"]}]})
    with pytest.raises(HookFailed, match=r"svc: before_run hook command false failed: "
                                         r"exit status 1"):
        make_runner(tmp_path, fresh_db).up(["svc"], "staging")
    assert query(fresh_db, "SELECT count(*) FROM svc.migration_executions") == [(0,)]
    assert hook_runs(fresh_db) == [("before_run", "command false", "up", None, "failed", 1,
                                    True)]


def test_a_failing_after_each_hook_stops_after_that_migration(tmp_path: Path,
                                                              fresh_db: str) -> None:
    service(tmp_path, {"after_each": [{"command": ["sleep", "5"], "timeout": 0.5}]})
    with pytest.raises(HookFailed, match=r"after 000001_a failed: timed out after 0.5s"):
        make_runner(tmp_path, fresh_db).up(["svc"], "staging")
    assert query(fresh_db, "SELECT migration_id, status FROM svc.migration_executions") == [
        ("000001_a", "completed")]


def test_dry_run_lists_hooks_and_no_hooks_skips_them_with_a_warning(
        tmp_path: Path, fresh_db: str) -> None:
    directory = service(tmp_path, {"after_each": [{"command": ["./notify.sh"]}]})
    run = make_runner(tmp_path, fresh_db)
    dry = run.up(["svc"], "staging", dry_run=True)
    assert "hook after_each svc: command ./notify.sh" in dry.notes
    run.run_hooks = False
    result = run.up(["svc"], "staging")
    assert any(n.startswith("warning: --no-hooks: 1 hook(s) skipped") for n in result.notes)
    assert not (directory / "calls.txt").exists()


def test_hooks_are_loaded_from_environments_json_and_the_schema_rejects_bad_ones(
        tmp_path: Path) -> None:
    service(tmp_path, {"after_run": [{"command": ["./notify.sh", "--flag"], "timeout": 5}]})
    env = load_project(tmp_path).services["svc"].environments["staging"]
    hook = env.hooks["after_run"][0]
    assert (hook.command, hook.timeout, hook.sql) == (("./notify.sh", "--flag"), 5.0, None)
    bad = tmp_path / "bad"
    service(bad, {"after_run": [{"sql": "x.sql", "command": ["y"]}], "sometimes": []})
    findings = load_project(bad).services["svc"].findings
    assert findings and any("environments.json" in str(f.file) for f in findings)
