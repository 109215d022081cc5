"""``migorch up --all --jobs N`` against a real PostgreSQL: independent services side by side,
dependencies waited for, failures stopping new work, and still exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import dependencies_json, entry, environments_json, make_runner, query, write_service

from pytest_migorch.cli.main import main
from pytest_migorch.errors import MigrationFailed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
SLEEP = "SELECT pg_sleep(1);\nCREATE TABLE t (id int);\n"


def service(root: Path, name: str, ups: dict[str, str],
            depends: dict[str, list[str]] | None = None) -> None:
    """A service whose migrations (``{"000001_a": up_sql}``) run in environment staging."""
    files: dict[str, str] = {}
    entries = {}
    for migration_id, up in ups.items():
        files[f"{migration_id}.up.sql"] = up
        files[f"{migration_id}.down.sql"] = "SELECT 1;\n"
        version = migration_id.split("_", 1)[0]
        entries[version] = entry(depends_on=(depends or {}).get(version, []))
    files["dependencies.json"] = dependencies_json(entries)
    files["environments.json"] = environments_json({"staging": []})
    write_service(root, name, files)


def statuses(url: str, schema: str) -> dict[str, str]:
    return dict(query(url, f"SELECT migration_id, status FROM {schema}.migration_executions"))  # type: ignore[arg-type]


def test_four_independent_services_take_about_a_quarter_of_the_time(
        tmp_path: Path, fresh_db: str) -> None:
    timings = {}
    for jobs, prefix in ((1, "one"), (4, "four")):
        root = tmp_path / prefix
        names = [f"{prefix}-{n}" for n in range(4)]
        for name in names:
            service(root, name, {"000001_sleep": SLEEP})
        began = time.monotonic()
        result = make_runner(root, fresh_db).up(names, "staging", jobs=jobs)
        timings[jobs] = time.monotonic() - began
        assert sorted(o.status for o in result.outcomes) == ["completed"] * 4
        for name in names:
            schema = name.replace("-", "_")
            assert statuses(fresh_db, schema) == {"000001_sleep": "completed"}
            assert query(fresh_db, f"SELECT version, dirty FROM public.{schema}_schema_migrations"
                         ) == [(1, False)]
    ratio = timings[4] / timings[1]
    print(f"measured: jobs1_s = {timings[1]:.2f} jobs4_s = {timings[4]:.2f} ratio = {ratio:.2f}")
    assert ratio < 0.6


def test_a_migration_waits_for_what_it_depends_on_in_another_service(
        tmp_path: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "services"
    service(root, "base", {"000001_slow": "SELECT pg_sleep(1);\nCREATE TABLE t (id int);\n"
                                          "INSERT INTO t VALUES (7);\n"})
    # Fails unless base's table is committed when it starts.
    service(root, "reader", {"000001_copy": "CREATE TABLE t AS SELECT id FROM base.t;\n"},
            {"000001": ["base:000001"]})
    service(root, "other", {"000001_slow": SLEEP})
    code = main(["--root", str(root), "--json", "up", "--all", "--jobs", "3",
                 "--env", "staging", "--database-url", fresh_db])
    body = json.loads(capsys.readouterr().out)
    assert code == 0, body
    assert sorted(r["status"] for r in body["results"]) == ["completed"] * 3
    times = body["service_timings"]
    assert times["reader"]["started"] >= times["base"]["finished"]
    assert times["other"]["started"] < times["base"]["finished"]  # ran side by side
    assert set(times["base"]) == {"seconds", "started", "finished"}
    assert query(fresh_db, "SELECT id FROM reader.t") == [(7,)]


def test_a_failure_stops_new_work_and_running_ones_finish_and_are_recorded(
        tmp_path: Path, fresh_db: str) -> None:
    root = tmp_path / "services"
    service(root, "slow", {"000001_slow": SLEEP})
    service(root, "broken", {"000001_bad": "SELECT pg_sleep(0.2);\nSELECT no_such_column;\n",
                             "000002_next": "CREATE TABLE t (id int);\n"})
    service(root, "later", {"000001_after": "CREATE TABLE t (id int);\n"},
            {"000001": ["broken:000001"]})
    run = make_runner(root, fresh_db)
    with pytest.raises(MigrationFailed) as caught:
        run.up(["broken", "later", "slow"], "staging", jobs=3)
    message = str(caught.value)
    assert "broken 000001_bad failed" in message and "no_such_column" in message
    assert "completed: slow 000001_slow" in message
    assert "never started: broken 000002_next, later 000001_after" in message
    assert statuses(fresh_db, "slow") == {"000001_slow": "completed"}
    assert statuses(fresh_db, "broken") == {"000001_bad": "failed"}
    assert statuses(fresh_db, "later") == {}
    outcomes = {o.step.label: o.status for o in caught.value.result.outcomes}  # type: ignore[attr-defined]
    assert outcomes == {"slow 000001_slow": "completed", "broken 000001_bad": "failed"}


def test_jobs_must_be_positive(tmp_path: Path, fresh_db: str) -> None:
    root = tmp_path / "services"
    service(root, "one", {"000001_a": "CREATE TABLE t (id int);\n"})
    with pytest.raises(Exception, match="--jobs must be at least 1"):
        make_runner(root, fresh_db).up(["one"], "staging", jobs=0)


def spawn(root: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL") and not k.startswith("DB_")}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_migorch", *args, "--root", str(root),
         "--database-url", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_eight_parallel_runners_at_once_apply_every_migration_exactly_once(
        services: Path, fresh_db: str) -> None:
    procs = [spawn(services, fresh_db, "--json", "up", "--all", "--jobs", "4",
                   "--env", "development") for _ in range(8)]
    outputs = [proc.communicate(timeout=90) for proc in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    documents: list[dict[str, Any]] = [json.loads(out) for out, _ in outputs]
    assert len([r for d in documents for r in d["results"]]) == 11
    for schema, count in (("user_service", 4), ("order_service", 5),
                          ("notification_service", 2)):
        done = query(fresh_db, f"SELECT migration_id, count(*) FILTER (WHERE action = 'up' AND "
                               f"status = 'completed'), count(*) FROM "
                               f"{schema}.migration_execution_history GROUP BY 1")
        assert len(done) == count
        assert all(c == 1 and total == 2 for _, c, total in done), done


def test_a_concurrent_index_build_runs_alone_so_no_migration_deadlocks_with_it(
        tmp_path: Path, fresh_db: str) -> None:
    """CREATE INDEX CONCURRENTLY waits for every older transaction while it holds a lock on
    its table; a foreign key to that table taken meanwhile by another service's migration
    waits for the build: PostgreSQL cancels one of them ("deadlock detected") and an INVALID
    index or a failed migration is left. So a step outside a transaction runs alone."""
    root = tmp_path / "services"
    write_service(root, "shop", {
        # Rows, so the build lasts long enough for the other migration to start during it.
        "000001_items.up.sql": "CREATE TABLE items (id int PRIMARY KEY, name text);\n"
                               "INSERT INTO items SELECT g, md5(g::text) "
                               "FROM generate_series(1, 300000) g;\n",
        "000001_items.down.sql": "DROP TABLE items;\n",
        "000002_index.up.sql": "CREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n",
        "000002_index.down.sql": "DROP INDEX CONCURRENTLY items_name_idx;\n",
        "dependencies.json": dependencies_json({
            "000001": entry(affects_tables=["items"]),
            "000002": entry(affects_tables=["items"], transactional=False)}),
        "environments.json": environments_json({"staging": []}),
    })
    # Takes its snapshot, then (while the build waits for it) a lock on shop.items.
    service(root, "orders", {"000001_orders": "SELECT pg_sleep(1);\nCREATE TABLE orders "
                                              "(item int REFERENCES shop.items (id));\n"},
            {"000001": ["shop:000001"]})
    code = main(["--root", str(root), "--json", "up", "--all", "--jobs", "2",
                 "--env", "staging", "--database-url", fresh_db])
    assert code == 0
    assert statuses(fresh_db, "shop") == {"000001_items": "completed", "000002_index": "completed"}
    assert statuses(fresh_db, "orders") == {"000001_orders": "completed"}
    assert query(fresh_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                           "'shop.items_name_idx'::regclass") == [(True,)]


def test_a_step_outside_a_transaction_never_shares_the_database() -> None:
    from pytest_migorch.deploy.parallel import may_start

    class Step:
        def __init__(self, transactional: bool) -> None:
            self.transactional = transactional

    inside, outside = Step(True), Step(False)
    assert may_start(outside, []) and may_start(inside, [])  # type: ignore[arg-type]
    assert may_start(inside, [inside])  # type: ignore[list-item, arg-type]
    assert not may_start(outside, [inside])  # type: ignore[list-item, arg-type]
    assert not may_start(inside, [outside])  # type: ignore[list-item, arg-type]
