"""The runner never applies twice, never says "done" when nothing was applied, never hangs.

Each test reproduces, on a real PostgreSQL, a way a deploy went wrong, and checks what the
runner does now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from helpers import make_runner, query
from psycopg.conninfo import conninfo_to_dict

from pytest_migorch.deploy.applying import NullReporter, Session
from pytest_migorch.deploy.runner import Refused
from pytest_migorch.deploy.tracking import Tracking
from pytest_migorch.errors import LockTimeout
from pytest_migorch.postgres.connection import connect, resolve_settings


def spellings(conninfo: str) -> tuple[str, str]:
    """One database as two URLs: the name in the path, and in ``?dbname=``."""
    params = conninfo_to_dict(conninfo)
    user = quote(str(params.get("user", "postgres")), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    rest = {k: str(v) for k, v in params.items()
            if k in ("host", "port", "sslmode")}
    host = ""
    if not str(rest.get("host", "/")).startswith("/"):
        host = rest.pop("host")
    path_url = f"postgres://{auth}@{host}/{params['dbname']}?{urlencode(rest)}"
    query_url = f"postgres://{auth}@{host}?{urlencode({**rest, 'dbname': params['dbname']})}"
    return path_url, query_url


def test_two_spellings_of_one_url_take_the_same_lock(services: Path, fresh_db: str) -> None:
    path_url, query_url = spellings(fresh_db)
    first = Session(connect(resolve_settings(path_url, {})), resolve_settings(path_url, {}))
    try:
        assert query(path_url, "SELECT 1") == [(1,)] == query(query_url, "SELECT 1")
        first.lock(["user_service"], 1.0, NullReporter())
        with pytest.raises(LockTimeout, match="can't acquire database lock"):
            make_runner(services, query_url, lock_timeout=0.3).up(["user-service"],
                                                                   "production")
        assert query(fresh_db, "SELECT count(*) FROM pg_namespace "
                               "WHERE nspname = 'user_service'") == [(0,)]
    finally:
        first.close()
    make_runner(services, query_url).up(["user-service"], "production", count=1)


def test_a_running_row_of_a_live_backend_is_never_recovered(services: Path,
                                                            fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production", count=1)
    with psycopg.connect(fresh_db, autocommit=True) as live:
        pid = live.info.backend_pid
        tracking = Tracking(live, "user_service")
        tracking.start(migration_id="000002_add_profiles", migration_version="000002",
                       environment="production", action="up", executed_by="ci@other",
                       checksum=None, dependencies=[],
                       metadata={"action": "up", "transactional": True, "backend_pid": pid})
        with pytest.raises(Refused, match=rf"being run right now .*pid {pid}"):
            run.up(["user-service"], "production")
        found: list[Any] = query(fresh_db, "SELECT status, error_message FROM "
                                           "user_service.migration_executions "
                                           "WHERE migration_version = '000002'")
        assert found == [("running", None)]
