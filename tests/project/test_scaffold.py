"""``migorch new``: next version, files, dependencies.json entry, environments.json listing."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from helpers import UP_SQL, pair, service_files, write_service

from pytest_migorch.errors import ConfigurationError, UsageError
from pytest_migorch.project.scaffold import create_migration, next_version_text, slug
from pytest_migorch.project.validation import load_project, validate_project


def test_slug() -> None:
    assert slug("Add user e-mail (verified)") == "add_user_e_mail_verified"
    with pytest.raises(UsageError):
        slug("  --- ")


@pytest.mark.parametrize(("names", "expected"), [
    ([], "000001"),
    (["000001_a", "000002_b"], "000003"),
    (["0001_a", "0009_b"], "0010"),
    (["1_a", "27_b"], "28"),  # a service that never pads
    (["20230101120000_a", "20230102093000_b"], "20230102093001"),
])
def test_next_version_keeps_the_service_width(tmp_path: Path, names: list[str],
                                              expected: str) -> None:
    files = {}
    for name in names:
        files.update(pair(name))
    write_service(tmp_path, "svc", files)
    service = load_project(tmp_path).services["svc"]
    assert next_version_text(service) == expected


def test_new_base_migration_edits_dependencies_json_in_place(services: Path) -> None:
    deps = services / "user-service/migrations/dependencies.json"
    before = deps.read_text()
    created = create_migration(load_project(services), "user-service", "add email verified",
                               depends_on=["000001", "order-service:000002"])
    assert created.migration_id == "000006_add_email_verified"
    assert created.up == services / "user-service/migrations/000006_add_email_verified.up.sql"
    assert created.up.read_text() == "-- Add email verified\n"
    assert created.down.is_file()
    after = deps.read_text()
    # Only additions (the previous last entry's "}" gains a comma): formatting is kept.
    changes = [line for line in difflib.ndiff(before.splitlines(), after.splitlines())
               if line[:1] in "+-"]
    assert all(line.startswith("+ ") for line in changes), changes
    assert changes.count("+     },") == 1
    assert '      "depends_on": ["000001", "order-service:000002"],' in after
    assert json.loads(after)["migrations"]["000006"] == {
        "description": "Add email verified", "depends_on": ["000001", "order-service:000002"],
        "affects_tables": [], "risk_level": "low", "estimated_duration": "1s"}
    result = validate_project(load_project(services))
    assert not result.errors, [f.render() for f in result.errors]


def test_new_environment_migration_is_listed(services: Path) -> None:
    created = create_migration(load_project(services), "notification-service", "seed dev",
                               environment="development", description="Development templates")
    assert created.up.parent.name == "development"
    envs = json.loads((services / "notification-service/migrations/environments.json")
                      .read_text())
    assert envs["environments"]["development"]["migrations"] == [
        "development/000004_seed_dev.up.sql"]
    assert envs["environments"]["staging"]["migrations"] == [
        "staging/000003_staging_templates.up.sql"]
    project = load_project(services)
    assert project.services["notification-service"].migrations[4].environment == "development"
    assert not validate_project(project).errors


def test_new_refuses_bad_input(services: Path) -> None:
    project = load_project(services)
    with pytest.raises(ConfigurationError, match="Environment not found in configuration"):
        create_migration(project, "user-service", "x", environment="qa")
    with pytest.raises(UsageError, match="has no version 99"):
        create_migration(project, "user-service", "x", depends_on=["99"])
    with pytest.raises(UsageError, match="no service 'nope'"):
        create_migration(project, "user-service", "x", depends_on=["nope:1"])
    with pytest.raises(UsageError, match="unknown service"):
        create_migration(project, "nope", "x")
    assert not (services / "user-service/migrations/000006_x.up.sql").exists()


def test_new_without_json_files(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {"1_a.up.sql": UP_SQL, "1_a.down.sql": "DROP TABLE t;\n"})
    created = create_migration(load_project(tmp_path), "svc", "b")
    assert created.migration_id == "2_b" and created.changed == []
    assert "no dependencies.json" in created.notes[0]
    with pytest.raises(ConfigurationError, match="no dependencies.json"):
        create_migration(load_project(tmp_path), "svc", "c", depends_on=["1"])


def test_new_into_empty_or_unusual_json(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["dependencies.json"] = '{"migrations": {"000001": {"description": "a", ' \
        '"depends_on": [], "affects_tables": ["t"], "risk_level": "low", ' \
        '"estimated_duration": "1s"}}}'  # all on one line
    files["environments.json"] = '{"environments": {"production": {"migrations": []}}}\n'
    write_service(tmp_path, "svc", files)
    create_migration(load_project(tmp_path), "svc", "b", environment="production")
    deps = json.loads((tmp_path / "svc/migrations/dependencies.json").read_text())
    assert list(deps["migrations"]) == ["000001", "000002"]
    envs = json.loads((tmp_path / "svc/migrations/environments.json").read_text())
    assert envs["environments"]["production"]["migrations"] == ["production/000002_b.up.sql"]
    assert not validate_project(load_project(tmp_path)).errors
