"""``migorch squash`` against a real PostgreSQL: the examples, a generated set, the lossy dumps
the proof must catch, and the squashed trees' round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import dependencies_json, entry, environments_json, query, write_service

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres.binaries import find_binaries
from pytest_migorch.postgres.servers import PostgresServer, unique_database_name
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project, validate_project
from pytest_migorch.roundtrip.applying import apply_migrations
from pytest_migorch.roundtrip.engine import RoundTrip
from pytest_migorch.squash import SquashedSql, pg_dump_step, squash

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(pg_server: PostgresServer) -> PostgresServer:
    """The session's server, when a pg_dump to dump it with is at hand."""
    try:
        find_binaries()
    except ServerUnavailable as exc:
        pytest.skip(f"no pg_dump next to the server programs: {exc}")
    return pg_server


def files_of(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


def round_trip_is_clean(server: PostgresServer, root: Path, service: str, env: str) -> None:
    """Every migration of ``service`` in ``env`` passes up/down/up on the tree as it is now."""
    project = load_project(root)
    trip = RoundTrip(server, project, ProjectGraph(project), service, env)
    try:
        outcomes = trip.run_all()
    finally:
        trip.close()
    assert outcomes, f"no migration of {service} in {env}"
    failures = [f"{o.migration.id}: {[str(f.message) for f in o.findings]}"
                for o in outcomes if o.failed]
    assert failures == []


def test_squash_of_the_examples_is_proven_and_the_tree_still_round_trips(
        services: Path, server: PostgresServer) -> None:
    result = squash(services, "user-service", 4, server=server)
    assert result.ok, result.differences
    migrations = services / "user-service" / "migrations"
    assert (migrations / "000004_squashed_3.up.sql").is_file()
    assert (migrations / "000004_squashed_3.down.sql").is_file()
    assert sorted(p.name for p in (migrations / "squashed").iterdir()) == [
        "000001_create_users.down.sql", "000001_create_users.up.sql",
        "000002_add_profiles.down.sql", "000002_add_profiles.up.sql",
        "000004_add_users_email_lower_index.down.sql",
        "000004_add_users_email_lower_index.up.sql"]
    assert not (migrations / "000001_create_users.up.sql").exists()
    own = json.loads((migrations / "dependencies.json").read_text())["migrations"]
    assert sorted(own) == ["000003", "000004", "000005"]
    assert own["000004"]["affects_tables"] == ["user_profiles", "users"]
    assert "reversible" not in own["000004"]
    assert own["000003"]["depends_on"] == ["000004"]  # development seeds now follow the squash
    assert own["000005"]["depends_on"] == ["000004"]
    orders = json.loads((services / "order-service/migrations/dependencies.json").read_text())
    assert orders["migrations"]["000001"]["depends_on"] == ["user-service:000004"]
    assert any("development/000003_dev_test_data.up.sql stays" in n for n in result.notes)

    project = load_project(services)
    assert validate_project(project).errors == []
    for env in ("production", "development", "staging"):
        round_trip_is_clean(server, services, "user-service", env)
    round_trip_is_clean(server, services, "order-service", "development")
    name = server.create_database(unique_database_name("squashed_apply"))
    try:
        applied = apply_migrations(server, name, project, ProjectGraph(project),
                                   "notification-service", "staging")
        assert "user-service:000004_squashed_3" in [m.qualified_id for m in applied]
        url = server.conninfo(name)
        assert query(url, "SELECT obj_description('user_service.user_profiles'::regclass)") \
            == [("Optional public profile of a user",)]
    finally:
        server.drop_database(name)


def test_dry_run_proves_and_writes_nothing(services: Path, server: PostgresServer) -> None:
    before = files_of(services)
    result = squash(services, "order-service", 4, server=server, dry_run=True)
    assert result.ok and result.dry_run
    assert files_of(services) == before
    assert services / "order-service/migrations/000004_squashed_4.up.sql" in result.written
    assert "CREATE TRIGGER orders_touch_updated_at" in result.sql.up


SEEDED = {
    "000001_create_plans.up.sql":
        "CREATE TABLE plans (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
        "INSERT INTO plans (name) VALUES ('free'), ('pro'), ('team');\n",
    "000001_create_plans.down.sql": "DROP TABLE plans;\n",
    "000002_plan_details.up.sql":
        "COMMENT ON TABLE plans IS 'What a customer can buy';\n"
        "COMMENT ON COLUMN plans.name IS 'Shown on the invoice';\n"
        "GRANT SELECT ON plans TO PUBLIC;\n"
        "DELETE FROM plans WHERE name = 'team';\n"
        "SELECT nextval('plans_id_seq');\n"
        "DO $$ BEGIN EXECUTE 'CREATE TABLE audit_' || 'log (id int PRIMARY KEY, at text)'; "
        "INSERT INTO audit_log VALUES (1, 'seeded'); END $$;\n",
    "000002_plan_details.down.sql":
        "DROP TABLE audit_log;\nREVOKE SELECT ON plans FROM PUBLIC;\n"
        "COMMENT ON COLUMN plans.name IS NULL;\nCOMMENT ON TABLE plans IS NULL;\n"
        "INSERT INTO plans (name) VALUES ('team');\n",
    "000003_later.up.sql": "ALTER TABLE plans ADD COLUMN price_cents BIGINT;\n",
    "000003_later.down.sql": "ALTER TABLE plans DROP COLUMN price_cents;\n",
}


def seeded_root(tmp_path: Path) -> Path:
    root = tmp_path / "services"
    deps = {"000001": entry(affects_tables=["plans"]),
            "000002": entry(depends_on=["000001"], affects_tables=["plans", "audit_log"],
                            risk_level="medium"),
            "000003": entry(depends_on=["000002"], affects_tables=["plans"])}
    write_service(root, "billing", {**SEEDED, "dependencies.json": dependencies_json(deps),
                                    "environments.json": environments_json({"production": []})})
    return root


def test_seed_rows_grants_comments_sequences_and_do_blocks_survive(
        tmp_path: Path, server: PostgresServer) -> None:
    root = seeded_root(tmp_path)
    result = squash(root, "billing", 2, server=server)
    assert result.ok, result.differences
    up = result.sql.up
    assert "INSERT INTO billing.plans VALUES (1, 'free');" in up
    assert "'team'" not in up  # deleted again by 000002
    assert "INSERT INTO billing.audit_log VALUES (1, 'seeded');" in up
    assert "COMMENT ON COLUMN billing.plans.name IS 'Shown on the invoice';" in up
    assert "GRANT SELECT ON TABLE billing.plans TO PUBLIC;" in up
    assert "SELECT pg_catalog.setval('billing.plans_id_seq', 4, true);" in up
    deps = json.loads((root / "billing/migrations/dependencies.json").read_text())
    assert deps["migrations"]["000003"]["depends_on"] == ["000002"]
    assert deps["migrations"]["000002"]["affects_tables"] == ["audit_log", "plans"]
    round_trip_is_clean(server, root, "billing", "production")


def _lossy(drop: str):  # type: ignore[no-untyped-def]
    """A dump step that loses the lines containing ``drop``, as a hand-made squash might."""
    def dump(server: PostgresServer, dbname: str, schema: str) -> SquashedSql:
        real = pg_dump_step(server, dbname, schema)
        kept = [line for line in real.up.splitlines() if drop not in line]
        assert len(kept) < len(real.up.splitlines()), f"{drop!r} is not in the dump"
        return SquashedSql("\n".join(kept) + "\n", real.down)
    return dump


@pytest.mark.parametrize("drop, expected", [
    ("VALUES (2, 'pro')", "rows of billing.plans: 2 after the migrations, 1 after the squashed"),
    ("'Shown on the invoice'", "column plans.name changed: comment Shown on the invoice -> none"),
    ("GRANT SELECT", "privileges of relation billing.plans"),
    ("setval('billing.plans_id_seq'", "sequence billing.plans_id_seq"),
    ("(1, 'seeded')", "rows of billing.audit_log"),
])
def test_the_proof_catches_a_lossy_squash_and_nothing_is_written(
        tmp_path: Path, server: PostgresServer, drop: str, expected: str) -> None:
    root = seeded_root(tmp_path)
    before = files_of(root)
    result = squash(root, "billing", 2, server=server, dump=_lossy(drop))
    assert not result.ok
    assert expected in "\n".join(result.differences)
    assert files_of(root) == before


def test_a_squashed_file_that_fails_is_reported_not_raised(
        tmp_path: Path, server: PostgresServer) -> None:
    def broken(server: PostgresServer, dbname: str, schema: str) -> SquashedSql:
        return SquashedSql("CREATE TABLE billing.plans (id int);\nSELECT 1/0;\n", "")
    root = seeded_root(tmp_path)
    result = squash(root, "billing", 2, server=server, dump=broken)
    assert not result.ok
    assert "the squashed file fails" in result.differences[0]
    assert "division by zero" in result.differences[0]


def test_a_down_that_leaves_residue_means_reversible_false(
        tmp_path: Path, server: PostgresServer) -> None:
    def no_drops(server: PostgresServer, dbname: str, schema: str) -> SquashedSql:
        real = pg_dump_step(server, dbname, schema)
        return SquashedSql(real.up, "DROP TABLE billing.audit_log;\n")
    root = seeded_root(tmp_path)
    result = squash(root, "billing", 2, server=server, dump=no_drops)
    assert result.ok and result.down_problem is not None
    assert "does not restore" in result.down_problem
    migrations = root / "billing/migrations"
    assert not (migrations / "000002_squashed_2.down.sql").exists()
    deps = json.loads((migrations / "dependencies.json").read_text())
    assert deps["migrations"]["000002"]["reversible"] is False
    assert validate_project(load_project(root)).errors == []


def test_a_generated_set_squashes_with_its_cross_service_prerequisites(
        tmp_path: Path, server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import generate

    root = tmp_path / "generated"
    generate.generate_repository(root, services=3, migrations=12, seed=3)
    project = load_project(root)
    service = sorted(project.services)[-1]  # the last one references earlier services
    base = [m.version for m in project.services[service].base_migrations()]
    top = base[len(base) * 2 // 3]
    result = squash(root, service, top, server=server)
    assert result.ok, result.differences
    assert len(result.selection.replaced) >= 2
    after = load_project(root)
    assert validate_project(after).errors == []
    for env in after.services[service].environment_names():
        round_trip_is_clean(server, root, service, env)


def test_cli_squash_dry_run_and_bad_version(services: Path, server: PostgresServer,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_migorch.cli.main import main

    monkeypatch.setattr("pytest_migorch.squash.squasher.start_server", lambda options: server)
    monkeypatch.setattr(server, "stop", lambda: None)
    before = files_of(services)
    code = main(["squash", "user-service", "--to", "4", "--root", str(services), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "proof: identical" in out and "would write" in out
    assert "--- 000004_squashed_3.up.sql ---" in out
    assert files_of(services) == before
    code = main(["squash", "user-service", "--to", "3", "--root", str(services), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert json.loads(out)["ok"] is False and "not a migration of the base set" in err
    assert "Traceback" not in err



def test_env_folds_that_environments_migrations_into_the_squash(
        services: Path, server: PostgresServer) -> None:
    result = squash(services, "user-service", 4, environment="development", server=server)
    assert result.ok, result.differences
    assert result.selection.migration_id == "000004_squashed_4"
    assert "alice@example.test" in result.sql.up  # the development seed rows are in it
    migrations = services / "user-service/migrations"
    assert (migrations / "squashed/000003_dev_test_data.up.sql").is_file()
    assert not (migrations / "development/000003_dev_test_data.up.sql").exists()
    environments = json.loads((migrations / "environments.json").read_text())["environments"]
    assert environments["development"]["migrations"] == []
    orders = json.loads((services / "order-service/migrations/dependencies.json").read_text())
    assert orders["migrations"]["000005"]["depends_on"] == ["000001", "user-service:000004"]
    assert validate_project(load_project(services)).errors == []
    round_trip_is_clean(server, services, "order-service", "development")


def test_cli_lists_a_long_squash_briefly(tmp_path: Path, server: PostgresServer,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_migorch.cli.main import main

    root = tmp_path / "services"
    files: dict[str, str] = {}
    for n in range(1, 9):
        files[f"{n:06d}_t{n}.up.sql"] = f"CREATE TABLE t{n} (id int);\n"
        files[f"{n:06d}_t{n}.down.sql"] = f"DROP TABLE t{n};\n"
    write_service(root, "many", files)
    monkeypatch.setattr("pytest_migorch.squash.squasher.start_server", lambda options: server)
    monkeypatch.setattr(server, "stop", lambda: None)
    assert main(["squash", "many", "--to", "8", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("many: 000008_squashed_8 replaces 000001_t1, 000002_t2, "
                                   "000003_t3, ... 3 more ..., 000007_t7, 000008_t8")
    assert (root / "many/migrations/000008_squashed_8.up.sql").is_file()
