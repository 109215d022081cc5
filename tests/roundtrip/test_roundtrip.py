"""The up/down/up round-trip against a real PostgreSQL: every kind of defect, reported precisely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import dependencies_json, entry, environments_json, write_service

from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.coverage import plan_environments
from pytest_migorch.roundtrip.applying import apply_migrations
from pytest_migorch.roundtrip.engine import RoundTrip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"


def run(server: PostgresServer, root: Path, service: str, environment: str = "default",
        **options: Any):
    project = load_project(root)
    roundtrip = RoundTrip(server, project, ProjectGraph(project), service, environment,
                          **options)
    try:
        return {o.migration.version: o for o in roundtrip.run_all()}
    finally:
        roundtrip.close()


def codes(outcome) -> list[str]:
    return [f.code for f in outcome.findings]


def test_examples_round_trip_cleanly_in_every_environment(pg_server: PostgresServer) -> None:
    project = load_project(EXAMPLES)
    graph = ProjectGraph(project)
    for name, service in project.services.items():
        for environment in service.environment_names():
            roundtrip = RoundTrip(pg_server, project, graph, name, environment)
            try:
                for outcome in roundtrip.run_all():
                    assert outcome.findings == [], (name, environment, outcome.findings)
            finally:
                roundtrip.close()


def test_irreversible_migration_skips_down_and_says_so(pg_server: PostgresServer) -> None:
    project = load_project(EXAMPLES)
    roundtrip = RoundTrip(pg_server, project, ProjectGraph(project), "order-service", "production")
    try:
        outcome = roundtrip.outcome(project.services["order-service"].migrations[4])
    finally:
        roundtrip.close()
    assert outcome.findings == []
    assert any('"reversible": false' in note for note in outcome.notes)
    assert "down" not in outcome.timings


def test_down_leaving_a_column_behind_is_reported(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "accounts", {
        "000001_create.up.sql": "CREATE TABLE accounts (id int PRIMARY KEY);",
        "000001_create.down.sql": "DROP TABLE accounts;",
        "000002_nickname.up.sql": "ALTER TABLE accounts ADD COLUMN nickname text;",
        "000002_nickname.down.sql": "SELECT 1;",
        "000003_next.up.sql": "SET lock_timeout = '50ms';\nALTER TABLE accounts ADD COLUMN email text;",
        "000003_next.down.sql": "ALTER TABLE accounts DROP COLUMN email;",
    })
    outcomes = run(pg_server, tmp_path, "accounts")
    assert codes(outcomes[2]) == ["DB003"]
    finding = outcomes[2].findings[0]
    assert "column accounts.accounts.nickname is still there" in finding.message
    assert finding.file is not None and finding.file.name == "000002_nickname.down.sql"
    assert finding.migration == "000002_nickname"
    # The next migration is tested from the state it expects: no cascade.
    assert outcomes[1].findings == [] and outcomes[3].findings == []


def test_down_leaving_a_sequence_behind_is_reported(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "billing", {
        "1_seq.up.sql": "CREATE SEQUENCE invoice_numbers START 1000;",
        "1_seq.down.sql": "-- forgot to drop it\nSELECT 1;",
    })
    outcomes = run(pg_server, tmp_path, "billing")
    assert codes(outcomes[1]) == ["DB003"]
    assert "sequence billing.invoice_numbers is still there" in outcomes[1].findings[0].message


def test_failing_down_reports_postgres_message_file_and_line(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "shop", {
        "1_items.up.sql": "CREATE TABLE items (id int);\nCREATE INDEX items_id ON items (id);\n",
        "1_items.down.sql":
            "DROP INDEX items_id;\n\nDROP INDEX does_not_exist;\nDROP TABLE items;\n",
        "2_more.up.sql": "SET lock_timeout = '50ms';\nALTER TABLE items ADD COLUMN name text;",
        "2_more.down.sql": "ALTER TABLE items DROP COLUMN name;",
    })
    outcomes = run(pg_server, tmp_path, "shop")
    finding = outcomes[1].findings[0]
    assert finding.code == "DB002"
    assert finding.line == 3
    assert finding.file is not None and finding.file.name == "1_items.down.sql"
    assert 'index "does_not_exist" does not exist' in finding.message
    assert outcomes[2].findings == []


def test_failing_up_reports_line_inside_the_statement(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "shop", {
        "1_items.up.sql": "-- header\nCREATE TABLE items (\n    id int,\n    name txet\n);\n",
        "1_items.down.sql": "DROP TABLE items;",
        "2_other.up.sql": "CREATE TABLE other (id int);",
        "2_other.down.sql": "DROP TABLE other;",
    })
    outcomes = run(pg_server, tmp_path, "shop")
    finding = outcomes[1].findings[0]
    assert (finding.code, finding.line) == ("DB001", 4)
    assert 'type "txet" does not exist' in finding.message
    # 2 does not depend on 1 (no metadata), so it is still tested, from a clean state.
    assert outcomes[2].findings == []


def test_dependent_of_a_failed_up_is_not_tested(pg_server: PostgresServer, tmp_path: Path) -> None:
    deps = dependencies_json({"1": entry(affects_tables=["a"]),
                              "2": entry(depends_on=["1"], affects_tables=["a"])})
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int;",
        "1_a.down.sql": "DROP TABLE a;",
        "2_b.up.sql": "ALTER TABLE a ADD COLUMN b int;",
        "2_b.down.sql": "ALTER TABLE a DROP COLUMN b;",
        "dependencies.json": deps,
    })
    outcomes = run(pg_server, tmp_path, "svc")
    assert codes(outcomes[1]) == ["DB001"]
    assert codes(outcomes[2]) == ["DB006"]
    assert "1 failed" in outcomes[2].findings[0].message


def test_failing_reup_is_reported(pg_server: PostgresServer, tmp_path: Path) -> None:
    # The down leaves data behind, which no schema snapshot sees; the second up trips over it.
    write_service(tmp_path, "svc", {
        "1_t.up.sql": "CREATE TABLE t (id int PRIMARY KEY);",
        "1_t.down.sql": "DROP TABLE t;",
        "2_seed.up.sql": "INSERT INTO t VALUES (1);",
        "2_seed.down.sql": "SELECT 1;",
    })
    outcomes = run(pg_server, tmp_path, "svc")
    finding = outcomes[2].findings[0]
    assert finding.code == "DB004"
    assert finding.line == 1
    assert "duplicate key value violates unique constraint" in finding.message


def test_non_transactional_migration_runs_outside_a_transaction(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    deps = dependencies_json({"1": entry(), "2": entry(depends_on=["1"], transactional=False)})
    write_service(tmp_path, "svc", {
        "1_t.up.sql": "CREATE TABLE t (id int);",
        "1_t.down.sql": "DROP TABLE t;",
        "2_i.up.sql": "CREATE INDEX CONCURRENTLY t_id ON t (id);",
        "2_i.down.sql": "DROP INDEX CONCURRENTLY t_id;",
        "dependencies.json": deps,
    })
    outcomes = run(pg_server, tmp_path, "svc")
    assert outcomes[2].findings == []


def test_locks_exceeding_declared_risk_are_reported(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    deps = dependencies_json({"1": entry(), "2": entry(depends_on=["1"])})
    write_service(tmp_path, "svc", {
        "1_t.up.sql": "CREATE TABLE t (id int);",
        "1_t.down.sql": "DROP TABLE t;",
        "2_i.up.sql": "CREATE INDEX t_id ON t (id);",
        "2_i.down.sql": "DROP INDEX t_id;",
        "dependencies.json": deps,
    })
    outcomes = run(pg_server, tmp_path, "svc")
    assert codes(outcomes[2]) == ["DB007"]
    assert "SHARE" in outcomes[2].findings[0].message
    assert outcomes[1].findings == []  # a table created in the same migration is exempt


def test_ground_truth_catches_a_table_hidden_in_a_do_block(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    deps = dependencies_json({"1": entry()})
    write_service(tmp_path, "svc", {
        "1_t.up.sql": "CREATE TABLE t (id int);\n"
                      "DO $$ BEGIN EXECUTE 'CREATE TABLE hidden (id int)'; END $$;",
        "1_t.down.sql": "DROP TABLE hidden; DROP TABLE t;",
        "dependencies.json": deps,
    })
    outcomes = run(pg_server, tmp_path, "svc")
    assert codes(outcomes[1]) == ["DB008"]
    assert "svc.hidden" in outcomes[1].findings[0].message


def test_cross_service_prerequisites_are_applied_first(pg_server: PostgresServer) -> None:
    project = load_project(EXAMPLES)
    roundtrip = RoundTrip(pg_server, project, ProjectGraph(project), "notification-service",
                          "staging")
    try:
        outcomes = roundtrip.run_all()
    finally:
        roundtrip.close()
    assert [o.migration.id for o in outcomes] == [
        "000001_create_templates", "000002_create_notifications", "000003_staging_templates"]
    assert all(o.findings == [] for o in outcomes)


def test_apply_migrations_up_to_a_version(pg_server: PostgresServer) -> None:
    project = load_project(EXAMPLES)
    name = pg_server.create_database("migorch_apply_up_to")
    try:
        applied = apply_migrations(pg_server, name, project, ProjectGraph(project),
                                   "order-service", "development", up_to=1)
        assert [m.qualified_id for m in applied] == [
            "user-service:000001_create_users", "order-service:000001_create_orders"]
    finally:
        pg_server.drop_database(name)


CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"


@pytest.mark.skipif(not CORPORA.is_dir(), reason="../shared/corpora is not present")
@pytest.mark.parametrize(("root", "failing_downs"), [
    ("svix__svix-webhooks/services", {"20220428190104_message_expiration"}),
    ("quickwit-oss__quickwit/services",
     {"14_update-shard-id", "19_add-split-node-id-field", "20_add-shard-doc-mapping-uid-field"}),
])
def test_real_migration_sets_report_their_broken_downs(
    pg_server: PostgresServer, root: str, failing_downs: set[str]
) -> None:
    """The corpora README lists the downs psql cannot apply; each is reported with its line."""
    project = load_project(CORPORA / root)
    (service,) = project.services
    roundtrip = RoundTrip(pg_server, project, ProjectGraph(project), service, "default")
    try:
        outcomes = roundtrip.run_all()
    finally:
        roundtrip.close()
    down_failures = {o.migration.id: f for o in outcomes for f in o.findings if f.code == "DB002"}
    assert set(down_failures) == failing_downs
    for finding in down_failures.values():
        assert finding.line is not None and finding.file is not None
        assert finding.file.name.endswith(".down.sql")


REORDERING_DOWN = {
    "1_create.up.sql": "CREATE TABLE people (id int PRIMARY KEY, nick text, age int);",
    "1_create.down.sql": "DROP TABLE people;",
    # -- migorch:ignore DB012: re-adding the dropped column cannot bring its values back
    "2_drop_nick.up.sql": "-- migorch:ignore DB012 the nicks are not kept\n"
                          "SET lock_timeout = '50ms';\nALTER TABLE people DROP COLUMN nick;",
    "2_drop_nick.down.sql": "ALTER TABLE people ADD COLUMN nick text;",
    "3_next.up.sql": "SET lock_timeout = '50ms';\nALTER TABLE people ADD COLUMN email text;",
    "3_next.down.sql": "ALTER TABLE people DROP COLUMN email;",
}


def test_a_down_that_only_reorders_columns_is_a_warning(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "people", REORDERING_DOWN)
    outcomes = run(pg_server, tmp_path, "people")
    (finding,) = outcomes[2].findings
    assert (finding.code, finding.severity.value) == ("DB010", "warning")
    assert "people.people" in finding.message and "SELECT *" in finding.message
    assert finding.file is not None and finding.file.name == "2_drop_nick.down.sql"
    assert "column order (id, nick, age) -> (id, age, nick)" in (finding.details or "")
    assert "reup" in outcomes[2].timings  # the down counts as clean: re-up was tested
    assert outcomes[3].findings == []


def test_strict_column_order_makes_a_reordering_an_error(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "people", REORDERING_DOWN)
    outcomes = run(pg_server, tmp_path, "people", strict_column_order=True)
    (finding,) = outcomes[2].findings
    assert (finding.code, finding.severity.value) == ("DB010", "error")


def test_a_real_residue_next_to_a_reordering_is_still_an_error(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "people", {
        **REORDERING_DOWN,
        "2_drop_nick.down.sql": "ALTER TABLE people ADD COLUMN nick text DEFAULT 'x';",
    })
    outcomes = run(pg_server, tmp_path, "people")
    (finding,) = outcomes[2].findings
    assert finding.code == "DB003"
    assert "column people.people.nick changed: default none -> 'x'::text" in finding.message
    assert "column order" not in finding.message
    assert "column order (id, nick, age) -> (id, age, nick)" in (finding.details or "")


def test_primary_key_column_order_stays_significant(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "pairs", {
        "1_create.up.sql": "CREATE TABLE pairs (a int, b int, CONSTRAINT pairs_pkey "
                           "PRIMARY KEY (a, b));",
        "1_create.down.sql": "DROP TABLE pairs;",
        "2_swap.up.sql": "ALTER TABLE pairs ADD COLUMN c int;",
        "2_swap.down.sql": "ALTER TABLE pairs DROP COLUMN c; ALTER TABLE pairs DROP CONSTRAINT "
                           "pairs_pkey; ALTER TABLE pairs ADD CONSTRAINT pairs_pkey "
                           "PRIMARY KEY (b, a);",
    })
    outcomes = run(pg_server, tmp_path, "pairs")
    assert codes(outcomes[2]) == ["DB003"]
    assert "PRIMARY KEY (a, b) -> PRIMARY KEY (b, a)" in outcomes[2].findings[0].message


def test_without_depends_on_a_failing_up_after_a_failed_one_is_a_consequence(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int;",
        "1_a.down.sql": "DROP TABLE a;",
        "2_b.up.sql": "ALTER TABLE a ADD COLUMN b int;",
        "2_b.down.sql": "ALTER TABLE a DROP COLUMN b;",
        "3_c.up.sql": "CREATE TABLE c (id int);",
        "3_c.down.sql": "DROP TABLE c;",
        "4_d.up.sql": "CREATE TABLE d (id txet);",
        "4_d.down.sql": "DROP TABLE d;",
    })
    outcomes = run(pg_server, tmp_path, "svc")
    assert codes(outcomes[1]) == ["DB001"]
    (finding,) = outcomes[2].findings
    assert finding.code == "DB006"
    assert 'relation "a" does not exist' in finding.message
    assert "an earlier migration failed (svc:1_a up failed)" in finding.message
    assert "no depends_on" in finding.message
    assert finding.file is not None and finding.file.name == "2_b.up.sql" and finding.line == 1
    assert outcomes[3].findings == []  # still passes: tested normally
    # Every earlier failure counts in golang-migrate's order, even with no object in common.
    assert codes(outcomes[4]) == ["DB006"]


def test_with_depends_on_only_a_failure_that_creates_the_missing_object_explains(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    deps = dependencies_json({
        "1": entry(affects_tables=["a"]), "2": entry(affects_tables=["a"]),
        "3": entry(affects_tables=["c"]), "4": entry(depends_on=["3"], affects_tables=["d"]),
    })
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int, x txt);",
        "1_a.down.sql": "DROP TABLE a;",
        "2_b.up.sql": "ALTER TABLE a ADD COLUMN b int;",
        "2_b.down.sql": "ALTER TABLE a DROP COLUMN b;",
        "3_c.up.sql": "CREATE TABLE c (id int);",
        "3_c.down.sql": "DROP TABLE c;",
        "4_d.up.sql": "CREATE TABLE d (id txet);",
        "4_d.down.sql": "DROP TABLE d;",
        "dependencies.json": deps,
    })
    outcomes = run(pg_server, tmp_path, "svc")
    assert codes(outcomes[1]) == ["DB001"]
    (finding,) = outcomes[2].findings
    assert finding.code == "DB006"
    assert "an earlier migration failed (svc:1_a up failed)" in finding.message
    assert "1_a creates relation a, which the failing statement needs" in finding.message
    assert outcomes[3].findings == []
    assert codes(outcomes[4]) == ["DB001"]  # its own defect: type "txet"


def test_a_base_migration_is_tested_once_for_the_environments_it_shares(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int);",
        "1_a.down.sql": "SELECT 1;",
        "2_b.up.sql": "CREATE TABLE b (id int);",
        "2_b.down.sql": "DROP TABLE b;",
        # -1: no generated row has it, so the down deletes only the up's row (DB012 else)
        "development/3_seed.up.sql": "INSERT INTO a VALUES (-1);",
        "development/3_seed.down.sql": "DELETE FROM a WHERE id = -1;",
        "environments.json": environments_json({
            "development": ["development/3_seed.up.sql"], "production": [], "staging": []}),
    })
    project = load_project(tmp_path)
    graph = ProjectGraph(project)
    plans = plan_environments(graph, "svc", ["development", "production", "staging"])
    assert [m.version for m in plans["development"].tested] == [1, 2, 3]
    assert plans["production"].tested == [] and plans["staging"].tested == []
    assert plans["development"].covers[1] == ("development", "production", "staging")
    roundtrip = RoundTrip(pg_server, project, graph, "svc", "development",
                          plan=plans["development"])
    try:
        outcomes = {o.migration.version: o for o in roundtrip.run_all()}
    finally:
        roundtrip.close()
    (finding,) = outcomes[1].findings
    assert finding.code == "DB003"
    assert finding.environment == "development, production, staging"
    assert "the same in environments development, production, staging" in finding.message
    assert outcomes[2].findings == [] and outcomes[3].findings == []


def test_a_migration_tested_elsewhere_is_only_applied(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int);",
        "1_a.down.sql": "SELECT 1;",
        "development/2_seed.up.sql": "INSERT INTO a VALUES (1);",
        "development/2_seed.down.sql": "DELETE FROM a;",
        "3_b.up.sql": "SET lock_timeout = '50ms';\nALTER TABLE a ADD COLUMN b int;",
        "3_b.down.sql": "ALTER TABLE a DROP COLUMN b;",
        "environments.json": environments_json({
            "development": ["development/2_seed.up.sql"], "production": []}),
    })
    project = load_project(tmp_path)
    graph = ProjectGraph(project)
    plans = plan_environments(graph, "svc", ["development", "production"])
    assert [m.version for m in plans["production"].tested] == [3]  # its order up to 3 differs
    roundtrip = RoundTrip(pg_server, project, graph, "svc", "production",
                          plan=plans["production"])
    try:
        assert [m.version for m in roundtrip.migrations()] == [3]
        (outcome,) = roundtrip.run_all()
    finally:
        roundtrip.close()
    assert outcome.findings == [] and outcome.truth is not None


def test_depends_on_in_any_environment_makes_the_set_declared_in_all(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    deps = dependencies_json({"1": entry(affects_tables=["a"]), "2": entry(affects_tables=["d"]),
                              "3": entry(depends_on=["2"], affects_tables=["d"])})
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int, x txt);",
        "1_a.down.sql": "DROP TABLE a;",
        "2_d.up.sql": "CREATE TABLE d (id txet);",
        "2_d.down.sql": "DROP TABLE d;",
        "development/3_seed.up.sql": "INSERT INTO d VALUES (1);",
        "development/3_seed.down.sql": "DELETE FROM d;",
        "dependencies.json": deps,
        "environments.json": environments_json({
            "development": ["development/3_seed.up.sql"], "production": []}),
    })
    # 2's failure is its own (type "txet"), in production as in development.
    assert codes(run(pg_server, tmp_path, "svc", "production")[2]) == ["DB001"]
    assert codes(run(pg_server, tmp_path, "svc", "development")[2]) == ["DB001"]


def test_a_down_failing_for_want_of_what_a_failed_migration_creates_is_a_consequence(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int, x txt);",
        "1_a.down.sql": "DROP TABLE a;",
        "2_swapped.up.sql": "DROP INDEX IF EXISTS a_idx;",
        "2_swapped.down.sql": "CREATE INDEX a_idx ON a (id);",
        "3_own.up.sql": "CREATE TABLE c (id int);",
        "3_own.down.sql": "DROP TABLE cc;",
    })
    outcomes = run(pg_server, tmp_path, "svc")
    (finding,) = outcomes[2].findings
    assert finding.code == "DB006"
    assert finding.message.startswith('down of 2_swapped failed: relation "a" does not exist')
    assert "1_a creates relation a" in finding.message
    assert finding.file is not None and finding.file.name == "2_swapped.down.sql"
    assert codes(outcomes[3]) == ["DB002"]  # a down's own defect stays DB002
