"""The dependency graph: every GRF finding, and the resolved orders (golang-migrate's order when
nothing is declared, dependencies first across services, deterministic)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import codes, line_of, line_of_item, only, service_files, validate, write_service

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Severity
from pytest_migorch.model import Migration, Project
from pytest_migorch.project.graph import RULES, ProjectGraph
from pytest_migorch.project.validation import load_project, validate_project


def ids(migrations: list[Migration]) -> list[str]:
    return [m.qualified_id for m in migrations]


def deps_text(root: Path, service: str) -> str:
    return (root / service / "migrations" / "dependencies.json").read_text()


def graph_of(root: Path) -> ProjectGraph:
    return ProjectGraph(load_project(root))


def test_graph_rule_codes() -> None:
    assert [rule.code for rule in RULES] == [f"GRF{n:03}" for n in range(1, 8)]


def test_no_graph_findings_for_the_examples() -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "services"
    assert graph_of(root).check() == []


# --- GRF001 cycles -------------------------------------------------------------------------------


def test_cycle_with_its_full_path(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({
        "000001_a": {}, "000004_d": {"depends_on": ["000006"]},
        "000005_e": {}, "000006_f": {"depends_on": ["000004", "000001"]}}))
    result = validate(tmp_path)
    finding = only(result.findings, "GRF001")
    assert finding.severity is Severity.ERROR
    assert finding.message == ("Dependency cycle detected: 000004 -> 000006 -> 000004 (each "
                               "depends on the next)")
    assert finding.migration == "000004_d"
    assert finding.file == tmp_path / "svc" / "migrations" / "dependencies.json"
    assert finding.line == line_of_item(deps_text(tmp_path, "svc"), "000006")
    assert finding.environment is None


def test_cycle_path_follows_depends_on(tmp_path: Path) -> None:
    """1 depends on 3, 3 on 2, 2 on 1: the path reads in the depends_on direction."""
    write_service(tmp_path, "svc", service_files({
        "000001_a": {"depends_on": ["000003"]}, "000002_b": {"depends_on": ["000001"]},
        "000003_c": {"depends_on": ["000002"]}}))
    finding = only(validate(tmp_path).findings, "GRF001")
    assert "000001 -> 000003 -> 000002 -> 000001" in finding.message
    assert finding.line == line_of_item(deps_text(tmp_path, "svc"), "000003")


def test_self_dependency_is_a_cycle(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {"depends_on": ["1"]}}))
    finding = only(validate(tmp_path).findings, "GRF001")
    assert "000001 -> 000001" in finding.message


def test_cross_service_cycle(tmp_path: Path) -> None:
    write_service(tmp_path, "alpha", service_files({"000001_a": {"depends_on": ["beta:1"]}}))
    write_service(tmp_path, "beta", service_files({"000001_b": {"depends_on": ["alpha:1"]}}))
    result = validate(tmp_path)
    # One cycle, one finding: owned by its first migration in run order, naming both services.
    alpha = only(result.findings, "GRF001")
    assert "Dependency cycle detected: alpha:000001 -> beta:000001 -> alpha:000001" in \
        alpha.message
    assert (alpha.service, alpha.migration) == ("alpha", "000001_a")
    assert alpha.services == ("alpha", "beta")
    assert alpha.file == tmp_path / "alpha" / "migrations" / "dependencies.json"
    assert alpha.line == line_of(deps_text(tmp_path, "alpha"), "beta:1")
    only_beta = validate_project(result.project, services=["beta"])
    assert codes(only_beta.findings) == ["GRF001"]  # validating either service shows it
    with pytest.raises(ConfigurationError, match="Dependency cycle detected"):
        result.graph.order_all("default")


def test_every_cycle_of_a_graph_is_reported(tmp_path: Path) -> None:
    """Two separate cycles are two findings; a knot of two cycles through one migration is
    one finding naming both cycles and its members."""
    write_service(tmp_path, "svc", service_files({
        "000001_a": {"depends_on": ["2"]}, "000002_b": {"depends_on": ["1"]},
        "000003_c": {"depends_on": ["4"]}, "000004_d": {"depends_on": ["3", "5"]},
        "000005_e": {"depends_on": ["4"]}}))
    first, second = [f for f in validate(tmp_path).findings if f.code == "GRF001"]
    assert first.message == ("Dependency cycle detected: 000001 -> 000002 -> 000001 (each "
                             "depends on the next)")
    assert second.message == (
        "Dependency cycle detected: 000003 -> 000004 -> 000003 (each depends on the next); "
        "also 000005 -> 000004 -> 000005; 3 migrations depend on each other in all: 000003, "
        "000004, 000005")
    assert second.migration == "000003_c"


def test_a_large_knot_is_one_finding_with_its_members(tmp_path: Path) -> None:
    """Every migration depends on every other: exponentially many cycles, one finding."""
    versions = range(1, 13)
    write_service(tmp_path, "svc", service_files({
        f"{v:06}_m{v}": {"depends_on": [str(o) for o in versions if o != v]}
        for v in versions}))
    finding = only(validate(tmp_path).findings, "GRF001")
    assert finding.message.count(" -> ") == 10  # five short cycles, then the members
    assert "12 migrations depend on each other in all (more cycles run through them): " \
        "000001, 000002" in finding.message


def test_cycle_is_reported_once_across_environments(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(
        {"000001_a": {"depends_on": ["2"]}, "000002_b": {"depends_on": ["1"]}},
        environments={"development": [], "staging": [], "production": []}))
    assert codes(validate(tmp_path).findings).count("GRF001") == 1


def test_cycle_among_environment_migrations(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(
        {"000001_a": {}, "000002_x": {"depends_on": ["3"]}, "000003_y": {"depends_on": ["2"]}},
        env_dirs={"000002_x": "development", "000003_y": "development"},
        environments={"development": ["development/000002_x.up.sql",
                                      "development/000003_y.up.sql"], "production": []}))
    result = validate(tmp_path)
    finding = only(result.findings, "GRF001")
    assert finding.environment == "development"
    assert result.graph.order("svc", "production") == [result.project.migration("svc", 1)]
    with pytest.raises(ConfigurationError):
        result.graph.order("svc", "development")


# --- GRF002..GRF007 references -------------------------------------------------------------------


def test_unknown_same_service_dependency(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {},
                                                  "000002_b": {"depends_on": ["000009"]}}))
    finding = only(validate(tmp_path).findings, "GRF002")
    assert finding.severity is Severity.ERROR
    assert finding.migration == "000002_b"
    assert finding.line == line_of_item(deps_text(tmp_path, "svc"), "000009")
    assert "000009" in finding.message


def test_dependency_on_a_down_only_migration_is_unknown(tmp_path: Path) -> None:
    files = service_files({"000001_a": {}, "000002_b": {"depends_on": ["3"]}})
    files["000003_c.down.sql"] = "SELECT 1;"
    write_service(tmp_path, "svc", files)
    assert "GRF002" in codes(validate(tmp_path).findings)


def test_unknown_service(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {"depends_on": ["billing:1"]}}))
    finding = only(validate(tmp_path).findings, "GRF003")
    assert "'billing'" in finding.message
    assert finding.line == line_of(deps_text(tmp_path, "svc"), "billing:1")


def test_unknown_cross_service_dependency(tmp_path: Path) -> None:
    write_service(tmp_path, "users", service_files(["000001_u"]))
    write_service(tmp_path, "orders", service_files({"000001_o": {"depends_on": ["users:2"]}}))
    finding = only(validate(tmp_path).findings, "GRF004")
    assert finding.service == "orders" and finding.migration == "000001_o"
    assert finding.line == line_of(deps_text(tmp_path, "orders"), "users:2")


def test_base_depending_on_environment_only_migration(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(
        {"000001_a": {}, "000002_dev": {}, "000003_c": {"depends_on": ["000002"]}},
        env_dirs={"000002_dev": "development"},
        environments={"development": ["development/000002_dev.up.sql"], "production": []}))
    finding = only(validate(tmp_path).findings, "GRF005")
    assert finding.migration == "000003_c"
    assert finding.line == line_of_item(deps_text(tmp_path, "svc"), "000002")
    assert "development/" in finding.message


def test_base_depending_on_another_services_environment_migration(tmp_path: Path) -> None:
    write_service(tmp_path, "users", service_files(
        ["000001_u", "000002_seed"], env_dirs={"000002_seed": "development"},
        environments={"development": ["development/000002_seed.up.sql"]}))
    write_service(tmp_path, "orders", service_files({"000001_o": {"depends_on": ["users:2"]}}))
    finding = only(validate(tmp_path).findings, "GRF005")
    assert finding.service == "orders"


def test_environment_migration_depending_on_another_environments_migration(
    tmp_path: Path,
) -> None:
    write_service(tmp_path, "svc", service_files(
        {"000001_a": {}, "000002_dev": {}, "000003_stg": {"depends_on": ["000002"]}},
        env_dirs={"000002_dev": "development", "000003_stg": "staging"},
        environments={"development": ["development/000002_dev.up.sql"],
                      "staging": ["staging/000003_stg.up.sql"]}))
    finding = only(validate(tmp_path).findings, "GRF006")
    assert finding.migration == "000003_stg"
    assert finding.environment == "staging"
    assert finding.line == line_of_item(deps_text(tmp_path, "svc"), "000002")


def test_environment_migration_listed_in_both_environments_is_fine(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(
        {"000001_a": {}, "000002_dev": {}, "000003_x": {"depends_on": ["000002"]}},
        env_dirs={"000002_dev": "development", "000003_x": "development"},
        environments={"development": ["development/000002_dev.up.sql",
                                      "development/000003_x.up.sql"],
                      "staging": ["development/000002_dev.up.sql",
                                  "development/000003_x.up.sql"]}))
    assert validate(tmp_path).findings == []


def test_depends_on_later_version_is_a_warning(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {"depends_on": ["000002"]},
                                                  "000002_b": {}}))
    result = validate(tmp_path)
    finding = only(result.findings, "GRF007")
    assert finding.severity is Severity.WARNING
    assert finding.migration == "000001_a"
    assert "000002_b" in finding.message
    # The declared dependency wins over the version order.
    assert ids(result.graph.order("svc", "default")) == ["svc:000002_b", "svc:000001_a"]


# --- orders --------------------------------------------------------------------------------------


def _plain_service(root: Path, name: str, versions: list[str]) -> None:
    write_service(root, name, {f"{v}.up.sql": "SELECT 1;" for v in versions}
                  | {f"{v}.down.sql": "SELECT 1;" for v in versions})


def test_without_dependencies_json_the_order_is_golang_migrates(tmp_path: Path) -> None:
    _plain_service(tmp_path, "svc", ["10_ten", "9_nine", "000001_one", "100_hundred", "2_two"])
    graph = graph_of(tmp_path)
    assert ids(graph.order("svc", "default")) == [
        "svc:000001_one", "svc:2_two", "svc:9_nine", "svc:10_ten", "svc:100_hundred"]


def test_ties_are_broken_by_version(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({
        "000001_a": {}, "000002_b": {"depends_on": ["000001"]},
        "000003_c": {"depends_on": ["000001"]}, "000004_d": {}}))
    graph = graph_of(tmp_path)
    assert [m.version for m in graph.order("svc", "default")] == [1, 2, 3, 4]


def test_cross_service_dependencies_come_first(tmp_path: Path) -> None:
    # "aaa" sorts first by name but depends on "zzz".
    write_service(tmp_path, "aaa", service_files({"000001_a": {"depends_on": ["zzz:2"]},
                                                  "000002_b": {}}))
    write_service(tmp_path, "zzz", service_files(["000001_z", "000002_y", "000003_x"]))
    graph = graph_of(tmp_path)
    assert ids(graph.order_all("default")) == [
        "zzz:000001_z", "zzz:000002_y", "zzz:000003_x", "aaa:000001_a", "aaa:000002_b"]
    assert ids(graph.order_all("default", ["aaa"])) == [
        "zzz:000001_z", "zzz:000002_y", "aaa:000001_a", "aaa:000002_b"]
    assert ids(graph.prerequisites("aaa", "default")) == ["zzz:000001_z", "zzz:000002_y"]
    assert ids(graph.order("aaa", "default")) == ["aaa:000001_a", "aaa:000002_b"]
    assert ids(graph.order("zzz", "default")) == ["zzz:000001_z", "zzz:000002_y",
                                                   "zzz:000003_x"]
    assert graph.dependents([("zzz", 2)], "default") == {("aaa", 1)}
    assert graph.dependents([("zzz", 3), ("zzz", 2)], "default") == {("aaa", 1)}
    # aaa:1 needs zzz:2, which golang-migrate only applies after zzz:1.
    assert graph.ancestors([("aaa", 1)], "default") == {("zzz", 1), ("zzz", 2)}


def test_environment_orders(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "services"
    graph = graph_of(root)
    assert ids(graph.order("user-service", "development")) == [
        "user-service:000001_create_users", "user-service:000002_add_profiles",
        "user-service:000003_dev_test_data", "user-service:000004_add_users_email_lower_index"]
    assert ids(graph.order("user-service", "production")) == [
        "user-service:000001_create_users", "user-service:000002_add_profiles",
        "user-service:000004_add_users_email_lower_index"]
    development = ids(graph.order_all("development"))
    assert development.index("order-service:000005_dev_sample_orders") > development.index(
        "user-service:000003_dev_test_data")
    assert development.index("order-service:000001_create_orders") > development.index(
        "user-service:000001_create_users")
    assert ids(graph.prerequisites("order-service", "development")) == [
        "user-service:000001_create_users", "user-service:000002_add_profiles",
        "user-service:000003_dev_test_data"]


def test_orders_are_deterministic(tmp_path: Path) -> None:
    layout: dict[str, Any] = {
        "a": {"000001_a": {"depends_on": ["c:1"]}, "000002_a": {"depends_on": ["b:2"]}},
        "b": {"000001_b": {}, "000002_b": {"depends_on": ["c:1"]}},
        "c": {"000001_c": {}, "000002_c": {}},
    }
    orders = []
    for attempt, names in enumerate([["a", "b", "c"], ["c", "b", "a"]]):
        root = tmp_path / str(attempt)
        for name in names:  # creation order must not matter
            write_service(root, name, service_files(layout[name]))
        graph = graph_of(root)
        orders.append([ids(graph.order_all("default")) for _ in range(3)])
        shutil.rmtree(root)
    assert orders[0][0] == orders[0][1] == orders[0][2] == orders[1][0]
    order = orders[0][0]
    assert order.index("c:000001_c") < order.index("a:000001_a")
    assert order.index("b:000002_b") < order.index("a:000002_a")


# --- scale ---------------------------------------------------------------------------------------


def _chain(depth: int) -> Project:
    """One service whose every migration depends on the one before, built in memory."""
    from pytest_migorch.model import DependencyRef, MigrationFile, MigrationMeta, Service

    service = Service(name="deep", root=Path("/x"), migrations_dir=Path("/x/deep/migrations"))
    for version in range(1, depth + 1):
        up = MigrationFile(path=Path(f"/x/deep/migrations/{version:06}_m.up.sql"),
                           version=version, version_text=f"{version:06}", title="m",
                           direction="up", extension="sql", environment=None)
        deps = (DependencyRef("deep", version - 1, str(version - 1)),) if version > 1 else ()
        service.migrations[version] = Migration(
            service="deep", version=version, version_text=f"{version:06}", title="m",
            environment=None, up=up, meta=MigrationMeta(depends_on=deps))
    return Project(root=Path("/x"), services={"deep": service})


def test_a_deep_chain_resolves_in_linear_time() -> None:
    """4,000 chained migrations: one walk, not one ancestor search per migration (the
    quadratic version took over 5 s here; the linear one well under a second)."""
    import time

    graph = ProjectGraph(_chain(4000))
    started = time.perf_counter()
    order = graph.order("deep", "default")
    needed = graph.ancestors([("deep", 4000)], "default")
    assert time.perf_counter() - started < 2.0
    assert [m.version for m in order] == list(range(1, 4001))
    assert needed == {("deep", v) for v in range(1, 4000)}
    assert graph.dependents([("deep", 1)], "default") == {("deep", v) for v in range(2, 4001)}


def _subset_order(graph: ProjectGraph, environment: str, services: list[str]) -> list[str]:
    """The selection and what it needs, sorted alone: what order_all returned before it
    filtered the environment's one sort."""
    dependency_graph = graph.graph(environment)
    wanted = {key for key in dependency_graph if key[0] in services}
    nodes = wanted | graph.ancestors(wanted, environment)
    return [m.qualified_id for m in graph._sorted(dependency_graph, nodes)]


def test_filtered_orders_equal_each_selection_sorted_alone(tmp_path: Path) -> None:
    import sys

    repository = str(Path(__file__).resolve().parents[2])
    sys.path.insert(0, repository)
    try:
        from benchmarks.generate import generate_repository
    finally:
        sys.path.remove(repository)
    root = tmp_path / "services"
    generate_repository(root, services=6, migrations=25, seed=7)
    project = load_project(root)
    names = sorted(project.services)
    for environment in project.environment_names():
        graph = ProjectGraph(project)
        selections = [[n] for n in names] + [names[:3], names[2:5], names]
        for selection in selections:
            got = [m.qualified_id for m in graph.order_all(environment, selection)]
            assert got == _subset_order(graph, environment, selection), selection
        for name in names:
            assert [m.qualified_id for m in graph.order(name, environment)] == [
                m for m in _subset_order(graph, environment, [name])
                if m.startswith(f"{name}:")]


def test_a_cycle_in_one_service_leaves_the_others_orderable(tmp_path: Path) -> None:
    write_service(tmp_path, "alpha", service_files({"000001_a": {"depends_on": ["2"]},
                                                    "000002_b": {"depends_on": ["1"]}}))
    write_service(tmp_path, "beta", service_files({"000001_c": {}, "000002_d": {}}))
    graph = graph_of(tmp_path)
    assert ids(graph.order("beta", "production")) == ["beta:000001_c", "beta:000002_d"]
    assert ids(graph.order_all("production", ["beta"])) == ["beta:000001_c", "beta:000002_d"]
    with pytest.raises(ConfigurationError):
        graph.order_all("production")
    with pytest.raises(ConfigurationError):
        graph.order("alpha", "production")
