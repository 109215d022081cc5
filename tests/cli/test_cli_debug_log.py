"""``LOG_LEVEL=debug`` shows what a person debugging a deploy needs, passwords masked: the
plan's resolution, each statement as it is sent with its time, the lock wait, adoption and
recovery decisions (a real ``migorch`` process against real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import query, service_files, write_service
from psycopg.conninfo import conninfo_to_dict

ROLE_PASSWORD = "rolepw-Sup3rSecret"
DB_PASSWORD = "dbpw-Sup3rSecret"


def migorch(root: Path, url: str, *argv: str, level: tuple[str, str] | None = ("LOG_LEVEL",
                                                                                 "debug")
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "APP_ENV", "LOG_LEVEL", "MIGORCH_LOG_LEVEL")
           and not k.startswith("DB_")}
    env.update({"DATABASE_URL": url, **(dict([level]) if level else {})})
    return subprocess.run([sys.executable, "-m", "pytest_migorch", *argv, "--root", str(root),
                           "--env", "production", "--yes"], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture
def root(tmp_path: Path, fresh_db: str) -> Path:
    role = f"migorch_dbg_{abs(hash(fresh_db)) % 10**8}"
    files = service_files(["000001_a", "000002_b", "000003_c"])
    files["000001_a.up.sql"] = "CREATE TABLE t (id int);\n"
    files["000003_c.up.sql"] = "CREATE TABLE u (id int);\n"
    files["000003_c.down.sql"] = "DROP TABLE u;\n"
    files["000002_b.up.sql"] = (f"CREATE ROLE {role} PASSWORD '{ROLE_PASSWORD}';\n"
                                f"DROP ROLE {role};\n")
    write_service(tmp_path, "svc", files)
    return tmp_path


def test_debug_log_of_an_up(root: Path, fresh_db: str) -> None:
    url = f"{fresh_db} password={DB_PASSWORD}"  # the test server may not ask for it
    done = migorch(root, url, "up", "svc", "--count", "2")
    assert done.returncode == 0, done.stderr
    log = done.stderr
    for secret in (ROLE_PASSWORD, DB_PASSWORD, conninfo_to_dict(fresh_db).get("password")):
        assert not secret or secret not in done.stdout + log
    assert "password=***" in log
    assert "PASSWORD '***'" in log
    assert "pytest_migorch.deploy.session: took service schema svc (advisory lock" in log
    assert "adoption for svc in 'production': golang-migrate's table says no version; " \
           "nothing to adopt" in log
    assert "up in environment 'production': 3 migration(s) in resolved order, 2 planned" in log
    assert "svc:000001_a                             planned as step 1 (apply)" in log
    assert "svc:000003_c                             pending but not planned (beyond --count)" \
        in log
    assert "sending 000001_a.up.sql:1: CREATE TABLE t (id int)\n" in log
    assert "done 000001_a.up.sql:1 in " in log and " ms (INTRANS)" in log
    # Every line is stamped to the millisecond, so waits can be found.
    assert all(line[:2].isdigit() and line[8] == "." for line in log.splitlines()
               if " DEBUG " in line)

    done = migorch(root, fresh_db, "down", "svc", "--steps", "1",
                   level=("MIGORCH_LOG_LEVEL", "DEBUG"))
    assert done.returncode == 0, done.stderr
    assert "down in environment 'production': 3 migration(s) in resolved order, 1 planned" \
        in done.stderr
    assert "svc:000001_a                             applied by " in done.stderr
    assert ": not chosen for rollback" in done.stderr
    assert "svc:000002_b                             planned as step 1 (roll back)" in done.stderr
    assert "svc:000003_c                             not applied" in done.stderr


def test_without_debug_nothing_is_logged(root: Path, fresh_db: str) -> None:
    done = migorch(root, fresh_db, "up", "svc", level=None)
    assert done.returncode == 0 and done.stderr == ""


def test_debug_log_of_a_recovery_decision(root: Path, fresh_db: str) -> None:
    assert migorch(root, fresh_db, "up", "svc", level=None).returncode == 0
    # What a run killed while applying 000003_c (transactional) leaves: a 'running' row whose
    # session is gone (PostgreSQL rolled its transaction back).
    query(fresh_db, "UPDATE svc.migration_executions SET status = 'running', "
                    "completed_at = NULL, metadata = metadata || '{\"backend_pid\": 2147483}' "
                    "WHERE migration_id = '000003_c' RETURNING id")
    done = migorch(root, fresh_db, "up", "svc")
    assert "recovery of svc:000003_c row 3 (backend pid 2147483 gone, transactional, " \
           "golang-migrate dirty: False): rolled_back -> failed" in done.stderr, done.stderr
