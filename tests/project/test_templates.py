"""``migorch new --template``: every built-in template passes the round-trip and ``migorch
validate`` as generated; parameters are checked before they reach SQL; team templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_migorch.cli.main import main
from pytest_migorch.errors import UsageError
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.templates import Parameter, available_templates, check_value
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.engine import RoundTrip

BUILTIN = ["add-column", "add-foreign-key", "add-index", "create-table", "rename-column"]


def fresh_service(root: Path, name: str = "shop") -> Path:
    """A service with empty dependencies.json and environments.json, as a team starts one."""
    migrations = root / name / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "dependencies.json").write_text('{\n  "migrations": {}\n}\n')
    (migrations / "environments.json").write_text(
        '{\n  "environments": {\n    "production": {"migrations": []}\n  }\n}\n')
    return migrations


def new(root: Path, *args: str) -> int:
    return main(["new", "--root", str(root), "shop", *args])


def entries(migrations: Path) -> dict[str, Any]:
    return dict(json.loads((migrations / "dependencies.json").read_text())["migrations"])


#: Per template: what it builds on (after a create-table), then its own command line.
CASES: dict[str, tuple[list[list[str]], list[str]]] = {
    "create-table": ([], ["create_users", "--table", "users"]),
    "add-column": ([["create_orders", "--template", "create-table", "--table", "orders"]],
                   ["add_user", "--table", "orders", "--column", "user_id", "--type", "bigint",
                    "--value", "0", "--depends-on", "000001"]),
    "add-index": ([["create_orders", "--template", "create-table", "--table", "orders"]],
                  ["index_created", "--table", "orders", "--column", "created_at",
                   "--depends-on", "000001"]),
    "add-foreign-key": (
        [["create_users", "--template", "create-table", "--table", "users"],
         ["create_orders", "--template", "create-table", "--table", "orders"],
         ["add_user", "--template", "add-column", "--table", "orders", "--column", "user_id",
          "--type", "bigint", "--value", "1", "--depends-on", "000002"]],
        ["orders_user_fk", "--table", "orders", "--column", "user_id",
         "--references", "users", "--depends-on", "000001", "000006"]),
    "rename-column": ([["create_orders", "--template", "create-table", "--table", "orders"]],
                      ["rename_created", "--table", "orders", "--column", "created_at",
                       "--to", "placed_at", "--type", "timestamptz", "--depends-on", "000001"]),
}


@pytest.mark.parametrize("template", BUILTIN)
def test_template_round_trips_and_validates_clean_as_generated(
        template: str, tmp_path: Path, pg_server: PostgresServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    before, own = CASES[template]
    for args in before:
        assert new(root, *args) == 0
    assert new(root, *own[:1], "--template", template, *own[1:]) == 0
    capsys.readouterr()
    assert main(["validate", "--root", str(root), "--strict"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "0 error(s), 0 warning(s)" in err
    project = load_project(root)
    roundtrip = RoundTrip(pg_server, project, ProjectGraph(project), "shop", "production")
    try:
        outcomes = roundtrip.run_all()
    finally:
        roundtrip.close()
    assert len(outcomes) == len(entries(migrations))
    assert [(o.migration.id, f.render()) for o in outcomes for f in o.findings] == []


def test_add_column_writes_four_chained_migrations_with_derived_metadata(
        tmp_path: Path) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    assert new(root, "create_orders", "--template", "create-table", "--table", "orders") == 0
    assert new(root, "add_note", "--template", "add-column", "--table", "orders", "--column",
               "note", "--type", "text", "--value", "it's new", "--depends-on", "000001") == 0
    found = entries(migrations)
    assert list(found) == ["000001", "000002", "000003", "000004", "000005"]
    assert [found[v]["depends_on"] for v in ("000002", "000003", "000004", "000005")] == [
        ["000001"], ["000002"], ["000003"], ["000004"]]
    # The backfill changes existing rows: the analysis says medium; the others are catalog-only.
    assert [found[v]["risk_level"] for v in found] == ["low", "low", "medium", "low", "low"]
    assert all(found[v]["affects_tables"] == ["orders"] for v in found)
    backfill = (migrations / "000003_add_note_backfill.up.sql").read_text()
    assert "UPDATE orders SET note = 'it''s new' WHERE note IS NULL;" in backfill
    assert "NOT VALID" in (migrations / "000004_add_note_check_not_null.up.sql").read_text()
    last = (migrations / "000005_add_note_set_not_null.up.sql").read_text()
    assert last.index("VALIDATE CONSTRAINT") < last.index("SET NOT NULL")


def test_add_index_is_non_transactional_and_rename_contract_irreversible(
        tmp_path: Path) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    new(root, "create_orders", "--template", "create-table", "--table", "orders")
    new(root, "index_created", "--template", "add-index", "--table", "orders", "--column",
        "created_at")
    new(root, "rename", "--template", "rename-column", "--table", "orders", "--column",
        "created_at", "--to", "placed_at", "--type", "timestamptz")
    found = entries(migrations)
    assert found["000002"]["transactional"] is False
    assert "CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);" in (
        migrations / "000002_index_created.up.sql").read_text()
    assert found["000005"]["reversible"] is False and found["000005"]["risk_level"] == "high"
    assert not (migrations / "000005_rename_contract.down.sql").exists()
    # the backfill is its own migration, out of the expand's ACCESS EXCLUSIVE lock (DB015)
    assert "UPDATE orders SET" not in (migrations / "000003_rename.up.sql").read_text()
    assert "UPDATE orders SET placed_at" in (migrations / "000004_rename_backfill.up.sql"
                                            ).read_text()


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("identifier", "users", "users"),
    ("name", "user_service.users", "user_service.users"),
    ("type", "varchar(255)", "varchar(255)"),
    ("type", "timestamp with time zone", "timestamp with time zone"),
    ("type", "numeric(10, 2)", "numeric(10, 2)"),
    ("literal", "O'Brien; DROP TABLE x", "'O''Brien; DROP TABLE x'"),
])
def test_values_become_sql_text_of_their_kind(kind: str, value: str, expected: str) -> None:
    assert check_value(Parameter("p", kind), value) == expected


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("identifier", "users; DROP TABLE x", "not a plain SQL name"),
    ("identifier", 'us"ers', "not a plain SQL name"),
    ("identifier", "Users", "not a plain SQL name"),
    ("identifier", "user", "reserved word"),
    ("identifier", "a" * 64, "63 bytes"),
    ("name", "a.b.c", "not a plain SQL name"),
    ("type", "int); DROP TABLE x; --", "not a type name"),
])
def test_unsafe_values_are_refused_before_any_sql(kind: str, value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_value(Parameter("p", kind), value)


def test_bad_parameters_exit_2_with_what_to_do(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    assert new(root, "x", "--template", "add-index", "--table", "orders") == 2
    assert "template 'add-index' needs --column" in capsys.readouterr().err
    assert new(root, "x", "--template", "add-index", "--table", "orders", "--column", "a",
               "--to", "b") == 2
    assert "has no parameter to" in capsys.readouterr().err
    assert new(root, "x", "--template", "nope") == 2
    assert "unknown template 'nope'" in capsys.readouterr().err
    assert new(root, "x", "--table", "orders") == 2
    assert "--table needs --template" in capsys.readouterr().err
    assert new(root, "x", "--template", "create-table", "--table", "drop table") == 2
    assert sorted(p.name for p in migrations.iterdir()) == ["dependencies.json",
                                                            "environments.json"]
    assert entries(migrations) == {}


def test_list_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "--root", str(tmp_path), "--list-templates"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name, template in available_templates().items():
        assert f"{name:<15}  {template.description}" in lines
    assert main(["new", "--list-templates", "--json", "--root", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)["templates"]
    assert [t["name"] for t in listed] == BUILTIN
    assert {"name": "table", "option": "--table", "kind": "identifier", "required": True,
            "help": "the new table"} in listed[BUILTIN.index("create-table")]["parameters"]


def team_template(directory: Path, name: str = "add-audit", up: str | None = None) -> Path:
    path = directory / name
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps({
        "description": "our audit column",
        "parameters": {"table": {"kind": "identifier"},
                       "who": {"kind": "identifier", "default": "{table}_by"}}}))
    (path / "up.sql").write_text(
        up or "SET lock_timeout = '5s';\nALTER TABLE {table} ADD COLUMN {who} text;\n")
    (path / "down.sql").write_text("SET lock_timeout = '5s';\nALTER TABLE {table} DROP COLUMN "
                                   "{who};\n")
    return path


def test_team_template_from_pyproject_with_its_own_parameter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    team_template(tmp_path / "migration-templates")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.migorch]\ntemplates_dir = "migration-templates"\n')
    new(root, "create_orders", "--template", "create-table", "--table", "orders")
    assert new(root, "audit", "--template", "add-audit", "--table", "orders",
               "--param", "who=changed_by", "--depends-on", "000001") == 0
    assert (migrations / "000002_audit.up.sql").read_text().endswith(
        "ALTER TABLE orders ADD COLUMN changed_by text;\n")
    assert entries(migrations)["000002"]["affects_tables"] == ["orders"]
    capsys.readouterr()
    assert main(["validate", "--root", str(root), "--strict"]) == 0
    assert main(["new", "--root", str(root), "--list-templates"]) == 0
    assert "add-audit        our audit column" in capsys.readouterr().out


def test_team_template_metadata_comes_from_the_analysis(tmp_path: Path) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    new(root, "create_orders", "--template", "create-table", "--table", "orders")
    team_template(tmp_path / "t", "drop-it", up="DROP TABLE {table};\n")
    assert new(root, "drop", "--template", "drop-it", "--templates-dir", str(tmp_path / "t"),
               "--table", "orders") == 0
    assert entries(migrations)["000002"]["risk_level"] == "high"
    assert entries(migrations)["000002"]["affects_tables"] == ["orders"]


def test_a_placeholder_without_a_parameter_names_the_template(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "services"
    fresh_service(root)
    team_template(tmp_path / "t", up="ALTER TABLE {table} ADD COLUMN {colum} text;\n")
    assert new(root, "x", "--template", "add-audit", "--templates-dir", str(tmp_path / "t"),
               "--table", "orders") == 2
    err = capsys.readouterr().err
    assert "template 'add-audit'" in err and "{colum}" in err and "meta.json" in err


def test_a_broken_meta_json_names_the_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "services"
    fresh_service(root)
    path = team_template(tmp_path / "t")
    (path / "meta.json").write_text('{"description": "x", "parameters": {"t": {"kind": "sql"}}}')
    assert new(root, "--list-templates", "--templates-dir", str(tmp_path / "t")) == 2
    err = capsys.readouterr().err
    assert str(path / "meta.json") in err and "kind 'sql'" in err


def test_template_for_an_environment_lists_every_migration(tmp_path: Path) -> None:
    root = tmp_path / "services"
    migrations = fresh_service(root)
    (migrations / "environments.json").write_text(
        '{\n  "environments": {\n    "development": {"migrations": []}\n  }\n}\n')
    assert new(root, "create_seed", "--template", "create-table", "--table", "seed") == 0
    assert new(root, "seed_value", "--env", "development", "--template", "add-column",
               "--table", "seed", "--column", "v", "--type", "int", "--value", "1",
               "--depends-on", "000001") == 0
    listed = json.loads((migrations / "environments.json").read_text())
    assert listed["environments"]["development"]["migrations"] == [
        "development/000002_seed_value.up.sql", "development/000003_seed_value_backfill.up.sql",
        "development/000004_seed_value_check_not_null.up.sql",
        "development/000005_seed_value_set_not_null.up.sql"]
    assert main(["validate", "--root", str(root), "--strict"]) == 0
