"""The generated database tests end to end: pytest runs the plugin in a subprocess.

Inner sessions use the suite's own server (``--migorch-dsn``, see :func:`dsn`) instead of each
starting one; only :func:`test_the_provider_chain_starts_a_server_of_its_own` goes through the
provider chain. Sessions that only collect run in process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import hypothesis.internal.observability  # noqa: F401
import pytest

# Imported here because pytester restores sys.modules after each in-process run: without these
# imports every in-process run would import the plugin's core (and hypothesis' hook) again.
import pytest_migorch.pytest_plugin.session  # noqa: F401
from pytest_migorch.postgres.servers import PostgresServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"


@pytest.fixture
def examples(pytester: pytest.Pytester) -> Path:
    target = pytester.path / "services"
    shutil.copytree(EXAMPLES, target)
    return target


@pytest.fixture
def dsn(pg_server: PostgresServer) -> tuple[str, ...]:
    """Options that point an inner session at the suite's server (tests/conftest.py)."""
    return ("--migorch-provider", "dsn", "--migorch-dsn", pg_server.admin_conninfo)


def test_round_trip_items_pass_on_the_examples(
    pytester: pytest.Pytester, examples: Path, dsn: tuple[str, ...]
) -> None:
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db", "-v",
                                           *dsn)
    # 18, not 31 (one per environment): a migration whose resolved order up to it is the same
    # in several environments is tested once, in the first of them (roundtrip.coverage).
    result.assert_outcomes(passed=18)
    assert ("services/order-service::roundtrip[development]::000005_dev_sample_orders PASSED"
            in result.stdout.str())


def test_the_provider_chain_starts_a_server_of_its_own(pytester: pytest.Pytester) -> None:
    """The one inner session without ``--migorch-dsn``: it finds (starts) its own PostgreSQL;
    a broken down migration fails its item with the finding."""
    migrations = pytester.path / "services" / "shop" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "1_items.up.sql").write_text("CREATE TABLE items (id int);\n")
    (migrations / "1_items.down.sql").write_text("-- nothing\n\nDROP TABLE itemz;\n")
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*1_items.down.sql:3: error DB002 down of 1_items failed: table \"itemz\" does not exist*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_database_items_skip_with_one_reason_without_a_server(
    pytester: pytest.Pytester, examples: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    result = pytester.runpytest_inprocess(
        "--migorch", "services", "-m", "migorch_db", "--migorch-provider", "local",
        "--migorch-pg-bindir", str(empty), "-rs",
    )
    result.assert_outcomes(skipped=18)  # one item per migration and distinct order
    result.stdout.fnmatch_lines(["*no PostgreSQL for migration round-trips*"])


def test_require_db_turns_the_skip_into_a_failure(
    pytester: pytest.Pytester, examples: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    result = pytester.runpytest_inprocess(
        "--migorch", "services", "-m", "migorch_db", "--migorch-provider", "local",
        "--migorch-pg-bindir", str(empty), "--migorch-require-db", "-k", "user-service",
    )
    result.assert_outcomes(failed=6)  # one item per migration and distinct order


def test_no_db_generates_only_static_items(pytester: pytest.Pytester, examples: Path) -> None:
    result = pytester.runpytest_inprocess("--migorch", "services", "--migorch-no-db",
                                          "--collect-only", "-q")
    assert "roundtrip" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*services/user-service::config*"])


def test_env_option_limits_round_trips(pytester: pytest.Pytester, examples: Path) -> None:
    result = pytester.runpytest_inprocess("--migorch", "services", "--migorch-env", "staging",
                                          "--collect-only", "-q", "-m", "migorch_db")
    out = result.stdout.str()
    assert "roundtrip[staging]" in out
    assert "roundtrip[development]" not in out and "roundtrip[production]" not in out


def test_users_fixture_gives_a_database_with_migrations_applied(
    pytester: pytest.Pytester, examples: Path, dsn: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_mine="""
        import psycopg

        def test_orders_exist(migorch_database):
            conninfo = migorch_database("order-service", up_to=2, environment="development")
            with psycopg.connect(conninfo) as conn:
                tables = {r[0] for r in conn.execute(
                    "SELECT schemaname || '.' || tablename FROM pg_tables"
                    " WHERE schemaname LIKE '%_service'")}
            assert tables == {"user_service.users", "order_service.orders",
                              "order_service.order_items"}
    """)
    result = pytester.runpytest_subprocess("--migorch", "services", "test_mine.py",
                                           "-p", "no:cacheprovider", "-k", "test_orders_exist",
                                           *dsn)
    result.assert_outcomes(passed=1)


def test_round_trips_run_under_xdist(
    pytester: pytest.Pytester, examples: Path, dsn: tuple[str, ...]
) -> None:
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db",
                                           "-n", "2", "--dist", "loadgroup", *dsn)
    # 18, not 31 (one per environment): a migration whose resolved order up to it is the same
    # in several environments is tested once, in the first of them (roundtrip.coverage).
    result.assert_outcomes(passed=18)
