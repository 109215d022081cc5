"""The parts of a squash that need no database: post-processing pg_dump's text, choosing what
is squashed, and rewriting dependencies.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_migorch.errors import UsageError
from pytest_migorch.project.discovery import discover_project
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.squashed import squashed_ids
from pytest_migorch.project.validation import load_project
from pytest_migorch.squash.dump import clean_dump
from pytest_migorch.squash.rewrite import format_duration, rewrite_references
from pytest_migorch.squash.selection import select_squash

DUMP = """--
-- PostgreSQL database dump
--

\\restrict abc123

SET statement_timeout = 0;
SET lock_timeout = 0;
SET transaction_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

ALTER TABLE IF EXISTS ONLY app.items DROP CONSTRAINT IF EXISTS items_pkey;
DROP TABLE IF EXISTS app.items;
DROP SCHEMA IF EXISTS app;
--
-- Name: app; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA app;

SET default_tablespace = '';

CREATE TABLE app.items (
    id bigint NOT NULL
);

COMMENT ON TABLE app.items IS 'things';

INSERT INTO app.items VALUES (1);

SELECT pg_catalog.setval('app.items_id_seq', 7, true);

GRANT SELECT ON TABLE app.items TO PUBLIC;

--
-- PostgreSQL database dump complete
--

\\unrestrict abc123
"""


def test_clean_dump_keeps_a_plain_sql_file_golang_migrate_can_run() -> None:
    result = clean_dump(DUMP, "app")
    assert "\\" not in result.up and "\\" not in result.down  # no psql meta-commands
    assert "CREATE SCHEMA" not in result.up  # the runner creates the service schema
    assert "transaction_timeout" not in result.up and "set_config" not in result.up
    assert "default_tablespace" not in result.up
    lines = result.up.splitlines()
    assert "SET check_function_bodies = false;" in lines
    assert lines[-1] == "RESET check_function_bodies;"
    for kept in ("CREATE TABLE app.items (", "COMMENT ON TABLE app.items IS 'things';",
                 "INSERT INTO app.items VALUES (1);",
                 "SELECT pg_catalog.setval('app.items_id_seq', 7, true);",
                 "GRANT SELECT ON TABLE app.items TO PUBLIC;"):
        assert kept in lines
    assert "dump complete" not in result.up


def test_clean_dump_down_drops_the_objects_but_not_the_schema() -> None:
    down = clean_dump(DUMP, "app").down.splitlines()
    assert down[1:] == ["ALTER TABLE IF EXISTS ONLY app.items DROP CONSTRAINT IF EXISTS "
                        "items_pkey;", "DROP TABLE IF EXISTS app.items;"]


def test_clean_dump_without_the_schema_is_an_error() -> None:
    with pytest.raises(Exception, match="no CREATE SCHEMA app"):
        clean_dump("SET x = 1;\n", "app")


def test_format_duration_is_a_go_duration() -> None:
    assert [format_duration(s) for s in (0, 45, 135, 3600, 3725)] == \
        ["1s", "45s", "2m15s", "1h", "1h2m5s"]


def test_references_to_replaced_versions_point_at_the_squash() -> None:
    document = {"migrations": {
        "000005": {"depends_on": ["000001", "000004", "user-service:000002", "other:000002"]}}}
    own = rewrite_references(document, own=True, service="user-service", replaced={1, 2, 4},
                             top="000004")
    assert own["migrations"]["000005"]["depends_on"] == \
        ["000004", "user-service:000004", "other:000002"]
    other = rewrite_references(document, own=False, service="user-service",
                               replaced={1, 2, 4}, top="000004")
    assert other["migrations"]["000005"]["depends_on"] == \
        ["000001", "000004", "user-service:000004", "other:000002"]
    assert document["migrations"]["000005"]["depends_on"][0] == "000001"  # input untouched


def test_selection_of_the_examples(services: Path) -> None:
    project = load_project(services)
    graph = ProjectGraph(project)
    user = select_squash(project, graph, "user-service", 4)
    assert [m.id for m in user.replaced] == ["000001_create_users", "000002_add_profiles",
                                             "000004_add_users_email_lower_index"]
    assert user.migration_id == "000004_squashed_3" and user.prerequisites == ()
    dev = select_squash(project, graph, "user-service", 4, "development")
    assert [m.version for m in dev.replaced] == [1, 2, 3, 4]
    notification = select_squash(project, graph, "notification-service", 2)
    assert [m.qualified_id for m in notification.prerequisites] == \
        ["user-service:000001_create_users", "order-service:000001_create_orders"]


@pytest.mark.parametrize("args, message", [
    (("nope", 2, None), "unknown service 'nope'"),
    (("user-service", 3, None), "--to 3 is not a migration of the base set"),
    (("user-service", 1, None), "a squash needs at least two"),
    (("user-service", 4, "qa"), "environment 'qa' not found in configuration"),
])
def test_selection_refuses_with_a_reason(services: Path, args: tuple[str, int, str | None],
                                         message: str) -> None:
    project = load_project(services)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        select_squash(project, ProjectGraph(project), *args)


def test_discovery_ignores_the_squashed_directory(services: Path) -> None:
    migrations = services / "user-service" / "migrations"
    kept = migrations / "squashed"
    kept.mkdir()
    (kept / "000001_old.up.sql").write_text("SELECT 1;\n")
    (kept / "notes.txt").write_text("not a migration\n")
    service = discover_project(services).services["user-service"]
    assert not [f for f in service.findings if "squashed" in str(f.file)]
    assert all(file.path.parent != kept for file in service.files)
    assert squashed_ids(migrations) == {"000001_old": 1}


def test_a_prerequisite_that_needs_a_replaced_migration_is_refused(tmp_path: Path) -> None:
    from helpers import dependencies_json, entry, write_service

    root = tmp_path / "services"
    pair = {"000001_a.up.sql": "SELECT 1;\n", "000001_a.down.sql": "SELECT 1;\n",
            "000002_b.up.sql": "SELECT 1;\n", "000002_b.down.sql": "SELECT 1;\n"}
    write_service(root, "alpha", {**pair, "dependencies.json": dependencies_json({
        "000001": entry(), "000002": entry(depends_on=["000001", "beta:000001"])})})
    write_service(root, "beta", {
        "000001_c.up.sql": "SELECT 1;\n", "000001_c.down.sql": "SELECT 1;\n",
        "dependencies.json": dependencies_json({"000001": entry(depends_on=["alpha:000001"])})})
    project = load_project(root)
    with pytest.raises(UsageError, match=r"beta:000001_c needs alpha:000001_a, which the squash "
                                         r"replaces(.|\n)*cannot run in one piece"):
        select_squash(project, ProjectGraph(project), "alpha", 2)
