"""Crashes, concurrency and the lock: what the runner promises when things go wrong.

The runner runs in subprocesses here (``python -m pytest_migorch``), exactly as a deploy job
runs it, so a ``kill -9`` is a real one and eight runners are eight processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import make_runner, query
from psycopg.conninfo import conninfo_to_dict

from pytest_migorch.deploy.runner import Refused
from pytest_migorch.errors import LockTimeout
from pytest_migorch.project.scaffold import create_migration
from pytest_migorch.project.validation import load_project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
ALL = ["notification-service", "order-service", "user-service"]





def _sigint_as_from_a_terminal() -> None:
    """In the runner's process before it starts: SIGINT does what it does for a command started
    from a terminal. A suite started in the background inherits an ignored SIGINT (a shell
    without job control ignores it for background commands), and so would the runner."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(root: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL") and not k.startswith("DB_")}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_migorch", *args, "--root", str(root),
         "--database-url", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=_sigint_as_from_a_terminal)


def add_slow_migration(root: Path, sql_text: str, *, transactional: bool) -> str:
    """A user-service migration 000006 whose up file is ``sql_text``."""
    created = create_migration(load_project(root), "user-service", "slow",
                               depends_on=["000001"])
    created.up.write_text(sql_text)
    created.down.write_text("SELECT 1;\n")
    deps_file = root / "user-service/migrations/dependencies.json"
    deps = json.loads(deps_file.read_text())
    deps["migrations"]["000006"]["transactional"] = transactional
    deps_file.write_text(json.dumps(deps, indent=2))
    return created.migration_id


def wait_until(predicate: Any, timeout: float = 20.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if predicate():
                return time.monotonic() - began
        except psycopg.Error:
            pass  # the tracking tables do not exist yet
        time.sleep(0.05)
    raise AssertionError("timed out")


def row(url: str, migration_id: str) -> tuple[Any, ...] | None:
    found = query(url, "SELECT status, metadata FROM user_service.migration_executions "
                       "WHERE migration_id = %s", (migration_id,))
    return found[0] if found else None


def events(url: str, migration_id: str) -> list[tuple[str, str]]:
    return [(a, s) for a, s in query(
        url, "SELECT action, status FROM user_service.migration_execution_history "
             "WHERE migration_id = %s ORDER BY id", (migration_id,))]


def kill_when_running(proc: subprocess.Popen[str], url: str, migration_id: str,
                      statements_done: int | None = None) -> dict[str, Any]:
    """kill -9 the runner once its running row is visible; how long until its session ended."""
    def running() -> bool:
        found = row(url, migration_id)
        if found is None or found[0] != "running":
            return False
        return statements_done is None or found[1].get("statements_done") == statements_done

    wait_until(running)
    metadata = row(url, migration_id)[1]  # type: ignore[index]
    pid = metadata["backend_pid"]
    assert query(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query "
                      "LIKE '%%pg_sleep%%'", (pid,)) == [(1,)]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    gone_after = wait_until(lambda: query(
        url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)) == [(0,)])
    return {"backend_pid": pid, "session_gone_after_s": gone_after}


def test_kill_during_a_transactional_migration_then_the_next_run(
        services: Path, fresh_db: str) -> None:
    migration_id = add_slow_migration(
        services, "CREATE TABLE slow_marker (id int);\nSELECT pg_sleep(30);\n",
        transactional=True)
    proc = spawn(services, fresh_db, "up", "user-service", "--env", "production")
    facts = kill_when_running(proc, fresh_db, migration_id)
    # PostgreSQL notices the dead client within client_connection_check_interval (1s).
    assert facts["session_gone_after_s"] < 5
    print("measured: session_gone_after_s =", round(facts["session_gone_after_s"], 2))
    assert row(fresh_db, migration_id)[0] == "running"  # type: ignore[index]
    assert query(fresh_db, "SELECT to_regclass('user_service.slow_marker') IS NULL") == [(True,)]
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(4, False)]

    (services / "user-service/migrations" / f"{migration_id}.up.sql").write_text(
        "CREATE TABLE slow_marker (id int);\n")
    began = time.monotonic()
    result = make_runner(services, fresh_db).up(["user-service"], "production")
    print("measured: next_run_s =", round(time.monotonic() - began, 2))
    (note,) = [n for n in result.notes if "interrupted" in n]
    assert "PostgreSQL rolled back its transaction, so nothing of it took effect" in note
    assert "it will run again" in note
    assert [o.step.migration.id for o in result.outcomes] == [migration_id]
    assert row(fresh_db, migration_id)[0] == "completed"  # type: ignore[index]
    assert events(fresh_db, migration_id) == [
        ("up", "running"), ("recover", "failed"), ("up", "running"), ("up", "completed")]
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(6, False)]


def test_ctrl_c_during_a_transactional_migration_is_recorded_at_once(
        services: Path, fresh_db: str) -> None:
    # the migration and its tracking write travel as one query: Ctrl-C cancels it, the
    # runner rolls the aborted transaction back and records the interruption itself
    migration_id = add_slow_migration(
        services, "CREATE TABLE slow_marker (id int);\nSELECT pg_sleep(30);\n",
        transactional=True)
    proc = spawn(services, fresh_db, "up", "user-service", "--env", "production")
    wait_until(lambda: (row(fresh_db, migration_id) or ("",))[0] == "running")
    pid = row(fresh_db, migration_id)[1]["backend_pid"]  # type: ignore[index]
    # Ctrl-C once the runner's own session is inside pg_sleep: a cancel that reached the
    # server before the query did would be dropped (PostgreSQL cancels only a running query),
    # and a session of another test sleeping on the same server would have matched by text
    wait_until(lambda: query(fresh_db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s "
                                       "AND wait_event = 'PgSleep'", (pid,)) == [(1,)])
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    status, metadata = row(fresh_db, migration_id)  # type: ignore[misc]
    assert (status, metadata["interrupted"], metadata["dirty"]) == ("failed", True, False)
    assert query(fresh_db, "SELECT error_message FROM user_service.migration_executions "
                           "WHERE migration_id = %s", (migration_id,)) == [(
        "interrupted by the user (Ctrl-C); PostgreSQL rolled back the transaction",)]
    assert query(fresh_db, "SELECT to_regclass('user_service.slow_marker') IS NULL") == [(True,)]
    assert events(fresh_db, migration_id) == [("up", "running"), ("up", "failed")]


def test_kill_during_a_non_transactional_migration_then_the_next_run(
        services: Path, fresh_db: str) -> None:
    migration_id = add_slow_migration(
        services, "CREATE TABLE nt_marker (id int);\nSELECT pg_sleep(30);\n",
        transactional=False)
    proc = spawn(services, fresh_db, "up", "user-service", "--env", "production")
    kill_when_running(proc, fresh_db, migration_id, statements_done=1)
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(6, True)]

    run = make_runner(services, fresh_db)
    with pytest.raises(Refused, match=r"(?s)user-service is dirty: 000006_slow .*after 1 of 2 "
                                      r"statement\(s\) had completed.*"
                                      r"migorch force user-service 6 .*"
                                      r"migorch force user-service 4 "):
        run.up(["user-service"], "production")
    assert row(fresh_db, migration_id)[0] == "failed"  # type: ignore[index]
    (report,) = run.status(["user-service"], "production")
    assert report.dirty and report.has_problems
    # The first statement is in effect (nt_marker exists): the operator finishes by hand.
    assert query(fresh_db, "SELECT to_regclass('user_service.nt_marker') IS NOT NULL") \
        == [(True,)]
    run.force("user-service", 6, "production")
    assert row(fresh_db, migration_id)[0] == "completed"  # type: ignore[index]
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(6, False)]
    assert run.up(["user-service"], "production").outcomes == []
    assert [a for a, _ in events(fresh_db, migration_id)] == ["up", "recover", "force"]


def test_eight_runners_at_once_apply_every_migration_exactly_once(
        services: Path, fresh_db: str) -> None:
    began = time.monotonic()
    procs = [spawn(services, fresh_db, "--json", "up", "--all", "--env", "development")
             for _ in range(8)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    print("measured: eight_runners_s =", round(time.monotonic() - began, 2))
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    documents = [json.loads(out) for out, _ in outputs]
    applied = [r["migration"] for d in documents for r in d["results"]]
    assert len(applied) == 11  # one runner applied everything; the others found nothing to do
    for schema, count in (("user_service", 4), ("order_service", 5),
                          ("notification_service", 2)):
        done = query(fresh_db, f"SELECT migration_id, count(*) FILTER (WHERE action = 'up' AND "
                               f"status = 'completed'), count(*) FROM "
                               f"{schema}.migration_execution_history GROUP BY 1")
        assert len(done) == count
        assert all(c == 1 and total == 2 for _, c, total in done), done


def test_lock_held_under_golang_migrate_key_makes_the_runner_wait_then_give_up(
        services: Path, fresh_db: str) -> None:
    dbname = conninfo_to_dict(fresh_db)["dbname"]
    # golang-migrate's key for public.user_service_schema_migrations, computed independently.
    key = zlib.crc32(f"public\0user_service_schema_migrations\0/{dbname}".encode()) \
        * 1486364155 % 2**32
    with psycopg.connect(fresh_db, autocommit=True, application_name="golang-migrate") as gm:
        gm.execute("SELECT pg_advisory_lock(%s)", (key,))
        began = time.monotonic()
        with pytest.raises(LockTimeout, match=r"can't acquire database lock .*within 0\.5s.*"
                                              r"held by pid \d+ \(golang-migrate"):
            make_runner(services, fresh_db, lock_timeout=0.5).up(["user-service"], "production")
        assert 0.4 < time.monotonic() - began < 5
        assert query(fresh_db, "SELECT count(*) FROM pg_namespace WHERE nspname = "
                               "'user_service'") == [(0,)]
        proc = spawn(services, fresh_db, "up", "user-service", "--env", "production",
                     "--lock-timeout", "10")
        time.sleep(0.5)
        assert proc.poll() is None  # waiting for the lock
        gm.execute("SELECT pg_advisory_unlock(%s)", (key,))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "completed user-service 000004_add_users_email_lower_index" in out


def test_non_transactional_run_killed_after_its_last_statement_is_recorded_as_applied(
        services: Path, fresh_db: str) -> None:
    """Killed between the last statement and the final bookkeeping: every statement is in
    effect (each was committed, then counted), so the next run records it and goes on."""
    from pytest_migorch.deploy.tracking import Tracking

    migration_id = add_slow_migration(services, "CREATE TABLE a6 (id int);\n"
                                                "CREATE TABLE b6 (id int);\n",
                                      transactional=False)
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production", count=3)
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # what the dead run left
        conn.execute("CREATE TABLE user_service.a6 (id int)")
        conn.execute("CREATE TABLE user_service.b6 (id int)")
        tracking = Tracking(conn, "user_service")
        tracking.start(migration_id=migration_id, migration_version="000006",
                       environment="production", action="up", executed_by="ci@dead",
                       checksum=None, dependencies=["000001"],
                       metadata={"action": "up", "transactional": False, "dirty": True,
                                 "statements_total": 2, "statements_done": 2,
                                 "backend_pid": 1})
        tracking.write_schema_version(6, True)
    result = run.up(["user-service"], "production")
    assert result.outcomes == []
    (note,) = [n for n in result.notes if "interrupted" in n]
    assert "after all 2 statement(s)" in note and "recorded as applied" in note
    assert row(fresh_db, migration_id)[0] == "completed"  # type: ignore[index]
    assert query(fresh_db, "SELECT version, dirty FROM public.user_service_schema_migrations") \
        == [(6, False)]
