"""The deploy runner against a real PostgreSQL: up, down, status, adoption, failures, drift.

Each test copies the example services (examples/services) into a temporary directory, so a
test may edit files, and gets a fresh empty database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import golang_migrate_applied, make_runner, query

from pytest_migorch.deploy.runner import Refused
from pytest_migorch.errors import ConfigurationError, MigrationFailed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
ALL = ["notification-service", "order-service", "user-service"]

#: What each environment runs, per service (base migrations plus the environment's own).
EXPECTED = {
    "development": {"user-service": ["000001", "000002", "000003", "000004"],
                    "order-service": ["000001", "000002", "000003", "000004", "000005"],
                    "notification-service": ["000001", "000002"]},
    "staging": {"user-service": ["000001", "000002", "000004", "000005"],
                "order-service": ["000001", "000002", "000003", "000004"],
                "notification-service": ["000001", "000002", "000003"]},
    "production": {"user-service": ["000001", "000002", "000004"],
                   "order-service": ["000001", "000002", "000003", "000004"],
                   "notification-service": ["000001", "000002"]},
}





def rows(url: str, schema: str) -> dict[str, tuple[Any, ...]]:
    """migration_id -> (status, rollback_version, error_message, metadata)."""
    found = query(url, f"SELECT migration_id, status, rollback_version, error_message, metadata "
                       f"FROM {schema}.migration_executions ORDER BY id")
    return {r[0]: r[1:] for r in found}


def statuses(url: str, schema: str) -> dict[str, str]:
    return {k: v[0] for k, v in rows(url, schema).items()}


def gm(url: str, schema: str) -> list[tuple[int, bool]]:
    return [(int(v), bool(d)) for v, d in query(
        url, f"SELECT version, dirty FROM public.{schema}_schema_migrations")]


def history(url: str, schema: str, migration: str) -> list[tuple[str, str, str | None]]:
    return [tuple(r) for r in query(  # type: ignore[misc]
        url, f"SELECT action, status, error_message FROM {schema}.migration_execution_history "
             "WHERE migration_id = %s ORDER BY id", (migration,))]


def table_exists(url: str, name: str) -> bool:
    return query(url, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_fresh_init_up_status_down_in_every_environment(
        services: Path, fresh_db: str, env: str) -> None:
    run = make_runner(services, fresh_db)
    init = run.init(ALL, env)
    assert any("created user_service.migration_executions" in n for n in init.notes)
    result = run.up(ALL, env, allow_high_risk=True)
    expected = EXPECTED[env]
    assert len(result.outcomes) == sum(map(len, expected.values()))
    assert all(o.status == "completed" for o in result.outcomes)
    for service, versions in expected.items():
        schema = service.replace("-", "_")
        recorded = statuses(fresh_db, schema)
        assert sorted(k.split("_")[0] for k in recorded) == versions
        assert set(recorded.values()) == {"completed"}
    assert gm(fresh_db, "user_service") == [(4, False)]
    assert gm(fresh_db, "order_service") == [(4, False)]
    assert gm(fresh_db, "notification_service") == [(2, False)]
    reports = run.status(ALL, env)
    assert [r.has_problems for r in reports] == [False, False, False]
    assert all(not r.state.pending for r in reports)
    assert run.up(ALL, env).outcomes == []  # nothing to do

    down = run.down("notification-service", env, version=0, confirmed=True)
    assert [o.step.migration.version for o in down.outcomes] == \
        [int(v) for v in reversed(expected["notification-service"])]
    assert {v[:2] for v in rows(fresh_db, "notification_service").values()} == \
        {("rolled_back", "0")}
    assert gm(fresh_db, "notification_service") == []  # NilVersion: empty, as golang-migrate
    assert not table_exists(fresh_db, "notification_service.templates")

    newest = expected["user-service"][-1]
    down = run.down("user-service", env, steps=1, confirmed=True)
    assert [o.step.migration.version_text for o in down.outcomes] == [newest]
    (record,) = [v for k, v in rows(fresh_db, "user_service").items() if k.startswith(newest)]
    assert record[:2] == ("rolled_back", expected["user-service"][-2])
    # 000005 is staging-only: golang-migrate's version (base migrations) stays 4.
    assert gm(fresh_db, "user_service") == [(4 if newest == "000005" else 2, False)]

    again = run.up(ALL, env)
    assert len(again.outcomes) == len(expected["notification-service"]) + 1
    assert all(r.ok for r in [again])


def test_dry_run_shows_plan_and_sql_and_changes_nothing(services: Path, fresh_db: str) -> None:
    result = make_runner(services, fresh_db).up(ALL, "production", dry_run=True)
    assert result.plan is not None and len(result.plan.steps) == 9
    assert result.plan.total_seconds == 205
    assert [s.migration.id for s in result.plan.high_risk] == ["000004_drop_legacy_status"]
    assert "CREATE TABLE users" in result.sql[0][1]
    assert query(fresh_db, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%service'") \
        == [(0,)]
    assert query(fresh_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") \
        == [(0,)]


def test_count_applies_the_first_n_pending(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    result = run.up(["user-service"], "production", count=2)
    assert [o.step.migration.id for o in result.outcomes] == ["000001_create_users",
                                                              "000002_add_profiles"]
    assert gm(fresh_db, "user_service") == [(2, False)]


def test_risk_gate_in_protected_environment(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production")
    with pytest.raises(Refused, match=r"protected .* order-service:000004_drop_legacy_status.*"
                                      r"--yes \(or --allow-high-risk\)"):
        run.up(["order-service"], "production")
    assert statuses(fresh_db, "order_service") == {}
    run.up(["order-service"], "production", allow_high_risk=True)
    assert set(statuses(fresh_db, "order_service").values()) == {"completed"}


def test_adoption_of_an_existing_golang_migrate_deployment(services: Path,
                                                           fresh_db: str) -> None:
    # golang-migrate applied 000001 and 000002 of user-service; its table says 2.
    golang_migrate_applied(services, fresh_db)
    run = make_runner(services, fresh_db)
    init = run.init(["user-service"], "production")
    assert any("adopted 2 migration(s)" in note for note in init.notes)
    recorded = rows(fresh_db, "user_service")
    assert {k: v[0] for k, v in recorded.items()} == {
        "000001_create_users": "completed", "000002_add_profiles": "completed"}
    assert all(v[3]["adopted"] is True for v in recorded.values())
    assert history(fresh_db, "user_service", "000001_create_users") == [
        ("adopt", "completed", None)]
    assert gm(fresh_db, "user_service") == [(2, False)]  # untouched
    result = run.up(["user-service"], "production")  # nothing re-run: it would fail
    assert [o.step.migration.id for o in result.outcomes] == [
        "000004_add_users_email_lower_index"]
    assert gm(fresh_db, "user_service") == [(4, False)]


def test_golang_migrate_dirty_flag_stops_with_its_advice(services: Path, fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA user_service")
        conn.execute("SET search_path TO user_service")
        conn.execute((services / "user-service/migrations/000001_create_users.up.sql")
                     .read_text())
        conn.execute("CREATE TABLE public.user_service_schema_migrations "
                     "(version bigint not null primary key, dirty boolean not null)")
        conn.execute("INSERT INTO public.user_service_schema_migrations VALUES (2, true)")
    run = make_runner(services, fresh_db)
    with pytest.raises(Refused, match=r"^Dirty database version 2\. Fix and force version\."):
        run.up(["user-service"], "production")
    assert statuses(fresh_db, "user_service") == {"000001_create_users": "completed"}
    # The operator undid 000002 by hand and says so the way golang-migrate users do.
    forced = run.force("user-service", 1, "production")
    assert any("set to version 1, clean" in c for c in forced.changes)
    assert gm(fresh_db, "user_service") == [(1, False)]
    run.up(["user-service"], "production")
    assert gm(fresh_db, "user_service") == [(4, False)]


def test_failure_halfway_is_recorded_and_the_fixed_file_applies(services: Path,
                                                                 fresh_db: str) -> None:
    up = services / "user-service/migrations/000002_add_profiles.up.sql"
    original = up.read_text()
    up.write_text(original + "\nINSERT INTO user_profiles (user_id)\nVALUES (42);\n")
    failing_line = original.count("\n") + 2
    run = make_runner(services, fresh_db)
    with pytest.raises(MigrationFailed) as caught:
        run.up(["user-service"], "production")
    message = str(caught.value)
    assert f"000002_add_profiles.up.sql:{failing_line}:" in message
    assert "violates foreign key constraint" in message and "SQLSTATE 23503" in message
    assert "Nothing of it was applied" in message
    result = caught.value.result  # type: ignore[attr-defined]
    assert [o.status for o in result.outcomes] == ["completed", "failed"]
    recorded = rows(fresh_db, "user_service")
    assert recorded["000001_create_users"][0] == "completed"
    assert recorded["000002_add_profiles"][0] == "failed"
    assert f"up.sql:{failing_line}" in recorded["000002_add_profiles"][2]
    assert gm(fresh_db, "user_service") == [(1, False)]  # rolled back with the migration
    assert not table_exists(fresh_db, "user_service.user_profiles")

    up.write_text(original)
    result = make_runner(services, fresh_db).up(["user-service"], "production")
    assert [o.step.migration.version for o in result.outcomes] == [2, 4]
    assert rows(fresh_db, "user_service")["000002_add_profiles"][:3] == ("completed", None, None)
    events = history(fresh_db, "user_service", "000002_add_profiles")
    assert [e[:2] for e in events] == [("up", "running"), ("up", "failed"), ("up", "running"),
                                       ("up", "completed")]
    assert "violates foreign key constraint" in (events[1][2] or "")  # the error is kept


def test_non_transactional_failure_leaves_dirty_flag_and_force_recovers(
        services: Path, fresh_db: str) -> None:
    up = services / "user-service/migrations/000004_add_users_email_lower_index.up.sql"
    original = up.read_text()
    up.write_text("CREATE INDEX CONCURRENTLY users_a_idx ON users (email);\n"
                  "CREATE INDEX CONCURRENTLY users_b_idx ON users (no_such_column);\n")
    run = make_runner(services, fresh_db)
    with pytest.raises(MigrationFailed, match=r"up\.sql:2: column \"no_such_column\" does "
                                              r"not exist(.|\n)*dirty flag is set(.|\n)*"
                                              r"force user-service 2 "):
        run.up(["user-service"], "production")
    assert gm(fresh_db, "user_service") == [(4, True)]
    record = rows(fresh_db, "user_service")["000004_add_users_email_lower_index"]
    assert record[0] == "failed" and record[3]["dirty"] is True
    assert record[3]["statements_done"] == 1  # the first index exists, as the row says
    assert query(fresh_db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_a_idx'") \
        == [(1,)]
    with pytest.raises(Refused, match=r"user-service is dirty(.|\n)*"
                                      r"migorch force user-service 4 (.|\n)*"
                                      r"migorch force user-service 2 "):
        run.up(["user-service"], "production")
    (report,) = run.status(["user-service"], "production")
    assert report.has_problems and report.dirty

    with psycopg.connect(fresh_db, autocommit=True) as conn:  # the manual fix
        conn.execute("DROP INDEX user_service.users_a_idx")
    run.force("user-service", 2, "production")
    assert gm(fresh_db, "user_service") == [(2, False)]
    record = rows(fresh_db, "user_service")["000004_add_users_email_lower_index"]
    assert record[0] == "failed" and record[3]["dirty"] is False
    up.write_text(original)
    run.up(["user-service"], "production")
    assert gm(fresh_db, "user_service") == [(4, False)]
    assert statuses(fresh_db, "user_service")["000004_add_users_email_lower_index"] == \
        "completed"


def test_rollback_refused_because_of_a_dependent_in_another_service(
        services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(ALL, "development")
    with pytest.raises(Refused, match=r"applied migrations depend on it: "
                                      r"order-service:000005_dev_sample_orders\..*--cascade"):
        run.down("user-service", "development", version=2)
    assert set(statuses(fresh_db, "user_service").values()) == {"completed"}
    result = run.down("user-service", "development", version=2, cascade=True)
    assert [o.step.migration.qualified_id for o in result.outcomes] == [
        "order-service:000005_dev_sample_orders",
        "user-service:000004_add_users_email_lower_index",
        "user-service:000003_dev_test_data"]
    assert rows(fresh_db, "order_service")["000005_dev_sample_orders"][:2] == \
        ("rolled_back", "000004")
    assert rows(fresh_db, "user_service")["000003_dev_test_data"][:2] == \
        ("rolled_back", "000002")
    assert gm(fresh_db, "user_service") == [(2, False)]
    assert gm(fresh_db, "order_service") == [(4, False)]


def test_irreversible_migration_refuses_to_roll_back(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(ALL, "staging")
    with pytest.raises(Refused, match=r"order-service:000004_drop_legacy_status is "
                                      r"irreversible"):
        run.down("order-service", "staging", version=2)
    assert set(statuses(fresh_db, "order_service").values()) == {"completed"}


def test_down_in_protected_environment_needs_confirmation(services: Path,
                                                          fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production")
    with pytest.raises(Refused, match="protected"):
        run.down("user-service", "production")
    assert run.down("user-service", "production", confirmed=True).outcomes[0].status == \
        "rolled_back"


def test_drift_is_reported_and_refused(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production", count=1)
    applied = services / "user-service/migrations/000001_create_users.up.sql"
    applied.write_text(applied.read_text() + "-- edited after release\n")
    run = make_runner(services, fresh_db)
    with pytest.raises(Refused, match=r"drift(.|\n)*000001_create_users\.up\.sql changed "
                                      r"since it was applied(.|\n)*--allow-drift"):
        run.up(["user-service"], "production")
    (report,) = run.status(["user-service"], "production")
    assert [d.kind for d in report.drift] == ["changed"]
    assert report.to_json()["drift"][0]["migration"] == "000001_create_users"
    assert report.has_problems
    result = run.up(["user-service"], "production", allow_drift=True)
    assert len(result.outcomes) == 2
    assert any("drift allowed" in note for note in result.notes)


def test_undeclared_environment_is_a_configuration_error(services: Path,
                                                         fresh_db: str) -> None:
    with pytest.raises(ConfigurationError, match=r"Environment not found in configuration: "
                                                 r"'qa'") as caught:
        make_runner(services, fresh_db).up(ALL, "qa")
    assert caught.value.exit_code == 2


def test_another_environment_in_the_same_database_is_refused(services: Path,
                                                            fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production")
    with pytest.raises(Exception, match="deployed in this database as environment "
                                        "'production'"):
        run.up(["user-service"], "staging")
    assert {k for k in statuses(fresh_db, "user_service")} == {
        "000001_create_users", "000002_add_profiles", "000004_add_users_email_lower_index"}


def test_missing_prerequisite_in_another_service_is_refused(services: Path,
                                                            fresh_db: str) -> None:
    with pytest.raises(Refused, match=r"order-service:000001_create_orders depends on "
                                      r"user-service:000001_create_users, which is not "
                                      r"applied(.|\n)*--all"):
        make_runner(services, fresh_db).up(["order-service"], "production", allow_high_risk=True)


def test_status_json_and_last_runs(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production", count=2)
    (report,) = run.status(["user-service"], "production")
    data = json.loads(json.dumps(report.to_json(services)))
    assert data["applied"] == ["000001_create_users", "000002_add_profiles"]
    assert data["pending"] == ["000004_add_users_email_lower_index"]
    assert data["golang_migrate"] == {"table": "public.user_service_schema_migrations",
                                      "exists": True, "version": 2, "dirty": False}
    assert [r["migration"] for r in data["last_runs"]] == ["000002_add_profiles",
                                                           "000001_create_users"]
    assert data["last_runs"][0]["estimated_seconds"] == 10.0
    assert data["ok"] is True
    rows_ = report.migration_rows(services)
    assert [r["status"] for r in rows_] == ["completed", "completed", "pending"]
    assert "pending: 000004_add_users_email_lower_index" in report.render_status()
