"""The schema model: what a migration changes, given what the service's earlier ones created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import write_service

from pytest_migorch.checks.migration import MigrationReport, check_migration, migration_analyser
from pytest_migorch.checks.schema_history import models_before, service_models
from pytest_migorch.checks.schema_model import SchemaModel
from pytest_migorch.model import Service
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.validation import load_project
from pytest_migorch.sql.schema_facts import schema_details

SERVICE = "user-service"
SCHEMA = "user_service"


def service(tmp_path: Path, *ups: str, tables: dict[int, list[str]] | None = None) -> Service:
    """``user-service`` with one migration per up text (000001, 000002, ...)."""
    files: dict[str, str] = {f"{n:06d}_m{n}.up.sql": text for n, text in enumerate(ups, 1)}
    if tables is not None:
        entries = {f"{n:06d}": {"description": "m", "depends_on": [], "affects_tables": t,
                                "risk_level": "high", "estimated_duration": "1s"}
                   for n, t in tables.items()}
        files["dependencies.json"] = json.dumps({"migrations": entries}, indent=2)
    write_service(tmp_path, SERVICE, files)
    return load_project(tmp_path).services[SERVICE]


def last_report(svc: Service) -> MigrationReport:
    """The report of the service's last migration, with the model of the ones before it."""
    models = service_models(svc)
    last = svc.migrations[max(svc.migrations)]
    return check_migration(last, SCHEMA, model=models[last.key])


def touched(svc: Service) -> list[str]:
    return sorted(last_report(svc).tables_touched)


def test_drop_index_changes_the_table_it_was_created_on(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE users (id int);\nCREATE INDEX users_id ON users (id);\n",
                  "DROP INDEX users_id;\n")
    assert touched(svc) == ["users"]


def test_renamed_index_is_followed_to_its_table(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE users (id int);\nCREATE INDEX a ON users (id);\n",
                  "ALTER INDEX a RENAME TO b;\n", "DROP INDEX b;\n")
    assert touched(svc) == ["users"]
    assert sorted(check_migration(svc.migrations[2], SCHEMA,
                                  model=service_models(svc)[svc.migrations[2].key])
                  .tables_touched) == ["users"]


def test_table_rename_moves_its_indexes(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE a (id int);\nCREATE INDEX a_id ON a (id);\n",
                  "ALTER TABLE a RENAME TO b;\n", "DROP INDEX a_id;\n")
    assert touched(svc) == ["b"]


@pytest.mark.parametrize("create", [
    "CREATE TABLE orders (id serial PRIMARY KEY);",
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY);",
    "CREATE TABLE orders (id int);\nCREATE SEQUENCE orders_id_seq OWNED BY orders.id;",
    "CREATE TABLE orders (id int);\nCREATE SEQUENCE orders_id_seq;\n"
    "ALTER SEQUENCE orders_id_seq OWNED BY orders.id;",
])
def test_alter_sequence_changes_the_owning_table(tmp_path: Path, create: str) -> None:
    svc = service(tmp_path, create + "\n", "ALTER SEQUENCE orders_id_seq RESTART WITH 100;\n")
    assert touched(svc) == ["orders"]


def test_unowned_sequence_changes_no_table(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE SEQUENCE counter;\n", "ALTER SEQUENCE counter RESTART;\n")
    assert touched(svc) == []


def test_truncate_cascade_empties_referencing_tables(tmp_path: Path) -> None:
    svc = service(
        tmp_path,
        "CREATE TABLE users (id int PRIMARY KEY);\n"
        "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users (id));\n"
        "CREATE TABLE items (id int, order_id int, "
        "CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES orders (id));\n",
        "TRUNCATE users CASCADE;\n")
    assert touched(svc) == ["items", "orders", "users"]


def test_truncate_without_cascade_is_only_the_table(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE users (id int PRIMARY KEY);\n"
                  "CREATE TABLE orders (user_id int REFERENCES users (id));\n",
                  "TRUNCATE orders;\n")
    assert touched(svc) == ["orders"]


def test_create_if_not_exists_of_an_existing_table_changes_nothing(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE kv (k text);\n",
                  "CREATE TABLE IF NOT EXISTS kv (k text);\n"
                  "CREATE INDEX IF NOT EXISTS kv_k ON kv (k);\n")
    assert touched(svc) == ["kv"]  # the index is new
    svc2 = service(tmp_path / "b", "CREATE TABLE kv (k text);\nCREATE INDEX kv_k ON kv (k);\n",
                   "CREATE TABLE IF NOT EXISTS kv (k text);\n"
                   "CREATE INDEX IF NOT EXISTS kv_k ON kv (k);\n")
    assert touched(svc2) == []


def test_drop_if_exists_of_a_table_that_never_existed_changes_nothing(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE kept (id int);\n",
                  "DROP TABLE IF EXISTS legacy;\nALTER TABLE IF EXISTS legacy ADD COLUMN x int;\n")
    assert touched(svc) == []


def test_conditional_drop_in_a_do_block_of_a_table_that_never_existed(tmp_path: Path) -> None:
    svc = service(tmp_path, "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_tables WHERE tablename = "
                  "'old') THEN DROP TABLE old; END IF; END $$;\nCREATE TABLE new (id int);\n")
    assert touched(svc) == ["new"]


def test_without_the_earlier_migrations_nothing_is_assumed_absent(tmp_path: Path) -> None:
    svc = service(tmp_path, "DROP TABLE IF EXISTS legacy;\n")
    migration = svc.migrations[1]
    assert check_migration(migration, SCHEMA).tables_touched == ["legacy"]


def test_a_statement_that_cannot_be_analysed_makes_absence_unknown(tmp_path: Path) -> None:
    svc = service(tmp_path, "SELECT make_tables();\n", "DROP TABLE IF EXISTS legacy;\n")
    assert touched(svc) == ["legacy"]


def test_dropping_a_foreign_key_changes_the_referenced_table(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE users (id int PRIMARY KEY);\n"
                  "CREATE TABLE orders (user_id int REFERENCES users (id));\n",
                  "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;\n")
    assert touched(svc) == ["orders", "users"]


def test_dropping_a_table_with_a_foreign_key_changes_the_referenced_table(
        tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE users (id int PRIMARY KEY);\n"
                  "CREATE TABLE orders (user_id int REFERENCES users (id));\n",
                  "DROP TABLE orders;\n")
    assert touched(svc) == ["orders", "users"]


def test_risk_rules_apply_to_create_if_not_exists_of_an_existing_table(tmp_path: Path) -> None:
    later = "CREATE TABLE IF NOT EXISTS kv (k text);\nALTER TABLE kv DROP COLUMN k;\n"
    svc = service(tmp_path, "CREATE TABLE kv (k text);\n", later)
    assert "RSK003" in [f.code for f in last_report(svc).fired]
    fresh = service(tmp_path / "fresh", later)
    assert "RSK003" not in [f.code for f in last_report(fresh).fired]


def test_declared_table_of_a_dropped_index_is_not_reported_untouched(tmp_path: Path) -> None:
    svc = service(tmp_path, "CREATE TABLE users (id int);\nCREATE INDEX users_id ON users (id);\n",
                  "DROP INDEX users_id;\n", tables={1: ["users"], 2: ["users"]})
    findings = migration_analyser()(svc, svc.migrations[2])
    assert [f.code for f in findings if f.code in ("SQL003", "SQL004")] == []


def test_models_before_replays_other_services_in_order(tmp_path: Path) -> None:
    write_service(tmp_path, "billing", {"000001_a.up.sql": "CREATE TABLE invoices (id int);\n"})
    write_service(tmp_path, SERVICE,
                  {"000001_b.up.sql": "CREATE INDEX i ON billing.invoices (id);\n"})
    project = load_project(tmp_path)
    order = [project.services["billing"].migrations[1], project.services[SERVICE].migrations[1]]
    models = models_before(order)
    assert models[order[1].key].tables == {("billing", "invoices")}
    assert models[order[0].key].tables == set()


def test_model_copy_is_independent() -> None:
    model = SchemaModel(tables={("s", "a")})
    clone = model.copy()
    clone.tables.add(("s", "b"))
    assert model.tables == {("s", "a")}


def test_schema_details_read_foreign_keys_and_sequences() -> None:
    detail = schema_details("CREATE TABLE IF NOT EXISTS s.t (id serial, u int REFERENCES u)")
    assert detail.if_not_exists
    assert detail.owned_sequences == ((("s", "t_id_seq"), ("s", "t")),)
    assert detail.foreign_keys == (("t_u_fkey", (None, "u")),)
    assert schema_details("not sql at all").table is None


# --- against PostgreSQL: the static tables equal what the probes saw ---------------------------

REPO = Path(__file__).resolve().parents[2]

#: One migration per case of the model, each after the schema the ones before it built.
AGREEMENT_CASES = (
    "CREATE TABLE users (id serial PRIMARY KEY, email text);\n"
    "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users (id));\n"
    "CREATE TABLE items (order_id int REFERENCES orders (id));\n"
    "CREATE INDEX users_email ON users (email);\nCREATE INDEX orders_user ON orders (user_id);\n"
    "CREATE TABLE kv (k text);\n"
    "INSERT INTO users (email) VALUES ('a');\nINSERT INTO orders VALUES (1, 1);\n"
    "INSERT INTO items VALUES (1);\n",
    "DROP INDEX users_email;\n",
    "ALTER SEQUENCE users_id_seq RESTART WITH 100;\n",
    "ALTER INDEX orders_user RENAME TO orders_by_user;\n",
    "DROP INDEX orders_by_user;\n",
    "CREATE TABLE IF NOT EXISTS kv (k text);\nDROP TABLE IF EXISTS legacy;\n"
    "ALTER TABLE IF EXISTS legacy ADD COLUMN x int;\n",
    "ALTER TABLE items DROP CONSTRAINT items_order_id_fkey;\n",
    "ALTER TABLE items ADD CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES orders (id);\n",
    "TRUNCATE users CASCADE;\n",
    "ALTER TABLE kv RENAME TO settings;\nCREATE INDEX settings_k ON settings (k);\n",
)


@pytest.fixture
def static_vs_truth(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``benchmarks.static_vs_truth``, importable however pytest was started."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import static_vs_truth as module

    return module


def test_static_tables_agree_with_postgresql(tmp_path: Path, pg_server: PostgresServer,
                                             static_vs_truth: Any) -> None:
    service(tmp_path, *AGREEMENT_CASES)
    tally = static_vs_truth.Tally()
    static_vs_truth.measure_root(pg_server, tmp_path, tally, quiet=True)
    assert tally.files == len(AGREEMENT_CASES)
    assert tally.disagreements == []
    without = static_vs_truth.Tally()
    static_vs_truth.measure_root(pg_server, tmp_path, without, quiet=True, use_model=False)
    assert [line.split(":")[1].split(" ")[0] for line in without.disagreements] == [
        "000002_m2", "000003_m3", "000004_m4", "000005_m5", "000006_m6", "000007_m7",
        "000009_m9"]
