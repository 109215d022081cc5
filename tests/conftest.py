"""Shared fixtures of pytest-migorch's own suite: one PostgreSQL server, one database per test.

The server comes from :mod:`pytest_migorch.postgres.servers`, the same provider chain users get
(SPEC section 7): ``MIGORCH_TEST_DATABASE_URL`` names an explicit server, which must answer;
otherwise local PostgreSQL binaries, then Docker. When none can be had, database tests are
skipped with one reason, unless ``MIGORCH_TEST_REQUIRE_DB=1`` (set it in CI) turns that into a
failure, so a green CI run always means the database tests ran.

With pytest-xdist each worker starts its own server: session fixtures are per worker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_migorch.errors import MigorchError, ServerUnavailable
from pytest_migorch.postgres.servers import (
    DSN_ENV_VAR,
    PostgresServer,
    ServerOptions,
    mask_dsn,
    start_server,
    unique_database_name,
)

REQUIRE_ENV_VAR = "MIGORCH_TEST_REQUIRE_DB"


@pytest.fixture(autouse=True)
def _inner_sessions_print_as_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest prints whole failure messages in its short summary when ``CI`` is set (as our CI
    does), so an inner pytester session's output would differ from a developer's run; tests
    that count lines of that output must see the same text everywhere."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)


@pytest.fixture(autouse=True, scope="session")
def _private_analysis_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep `migorch validate`'s analysis cache of our tests out of the user's home."""
    previous = os.environ.get("MIGORCH_CACHE_DIR")
    os.environ["MIGORCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("analysis-cache"))
    yield
    if previous is None:
        os.environ.pop("MIGORCH_CACHE_DIR", None)
    else:
        os.environ["MIGORCH_CACHE_DIR"] = previous


def _database_required() -> bool:
    return os.environ.get(REQUIRE_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session (or this xdist worker)."""
    dsn = os.environ.get(DSN_ENV_VAR) or None
    try:
        server = start_server(ServerOptions(dsn=dsn))
    except ServerUnavailable as exc:
        if dsn is not None or _database_required():
            # An explicit server that does not answer, or a required one, is an error.
            where = f" ({DSN_ENV_VAR}={mask_dsn(dsn)})" if dsn else ""
            pytest.fail(f"PostgreSQL server unavailable{where}: {exc}", pytrace=False)
        pytest.skip(f"database tests skipped: {exc}")
    except MigorchError as exc:
        pytest.fail(f"could not start a PostgreSQL server for tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_db(pg_server: PostgresServer) -> Iterator[str]:
    """The conninfo of a brand-new empty database, dropped (connections and all) afterwards."""
    name = pg_server.create_database(unique_database_name("migorch_test"))
    try:
        yield pg_server.conninfo(name)
    finally:
        pg_server.drop_database(name)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "services"


@pytest.fixture
def services(tmp_path: Path) -> Path:
    """A private copy of the example services root, free to change."""
    root = tmp_path / "services"
    shutil.copytree(EXAMPLES, root)
    return root
