"""Smoke tests of the benchmark generator and of the baselines' scripts (nothing is timed here).

The benchmarks themselves (``python -m benchmarks.run``) are too slow for the suite; these tests
make sure the repositories they measure are valid and reproducible, so a benchmark never
measures the error path.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from pytest_migorch.cli.main import main as migorch
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def generate(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks.generate``, importable however pytest was started."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import generate as module

    return module


@pytest.fixture
def run(generate: ModuleType) -> ModuleType:
    from benchmarks import run as module

    return module


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_tiny_repository_validates_without_errors(
    generate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "services"
    repo = generate.generate_repository(root, services=2, migrations=5, seed=0)
    assert repo.migration_count == 10
    assert sorted(p.name for p in root.iterdir()) == ["order-service", "user-service"]

    code = migorch(["validate", "--root", str(root), "--all", "--json"])
    document = json.loads(capsys.readouterr().out)
    errors = [f for f in document["findings"] if f["severity"] == "error"]
    assert errors == []
    assert code == 0


def test_generator_is_deterministic(generate: ModuleType, tmp_path: Path) -> None:
    first = generate.generate_repository(tmp_path / "a", services=2, migrations=5, seed=7)
    second = generate.generate_repository(tmp_path / "b", services=2, migrations=5, seed=7)
    other = generate.generate_repository(tmp_path / "c", services=2, migrations=5, seed=8)
    assert _files(first.root) == _files(second.root)
    assert _files(first.root) != _files(other.root)


def test_a_service_does_not_depend_on_the_number_of_services(generate: ModuleType) -> None:
    small = generate.generate_services(2, 20, seed=3)
    large = generate.generate_services(6, 20, seed=3)
    assert [m.up for m in small[1].migrations] == [m.up for m in large[1].migrations]


def test_repositories_are_realistic(generate: ModuleType) -> None:
    services = generate.generate_services(6, 60, seed=0)
    kinds = Counter(m.kind for s in services for m in s.migrations)
    assert set(kinds) == {k for k, _ in generate._KINDS} | {"create_table"}
    migrations = [m for s in services for m in s.migrations]
    assert any(":" in dep for m in migrations for dep in m.meta["depends_on"])
    assert any(m.environment == "development" for m in migrations)
    assert any(m.environment == "staging" for m in migrations)
    for m in migrations:
        concurrent = "CONCURRENTLY" in m.up
        assert m.transactional is not concurrent
        assert (m.down is None) is (not m.reversible)
        for dep in m.meta["depends_on"]:
            if ":" not in dep:
                assert int(dep) < m.version  # same-service dependencies point backwards


def test_baseline_scripts_cover_every_migration(
    run: ModuleType, generate: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "services"
    generate.generate_repository(root, services=3, migrations=8, seed=1)
    project = load_project(root)
    graph = ProjectGraph(project)
    order = graph.order_all("development")
    assert len(order) == sum(
        1 for s in project.services.values() for m in s.migrations.values()
        if m.environment in (None, "development"))

    script = tmp_path / "up.sql"
    run.up_psql_script(order, script)
    text = script.read_text()
    assert text.count("\\i ") == len(order)
    assert text.count("BEGIN;") == sum(1 for m in order if m.transactional)

    dbmate = tmp_path / "dbmate"
    run.write_dbmate_copy(order, dbmate)
    copies = sorted(dbmate.iterdir())
    assert len(copies) == len(order) + 1  # plus the schemas
    for copy, migration in zip(copies[1:], order):
        head = copy.read_text().splitlines()[0]
        expected = "-- migrate:up" if migration.transactional else \
            "-- migrate:up transaction:false"
        assert head == expected, copy.name

    service = sorted(project.services)[-1]
    own = run.roundtrip_psql_script(project, graph, service, "development",
                                    tmp_path / "rt.sql")
    assert own == len(graph.order(service, "development"))


def test_benchmark_names_and_quick_defaults(run: ModuleType, tmp_path: Path) -> None:
    config = run.parse_args(["--quick", "--only", "server", "--workdir", str(tmp_path)])
    assert config.only == ("server",)
    assert (config.runs, config.services, config.migrations) == (3, 10, 50)
    assert config.keep  # a work directory the user named is never removed
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "nonsense"])


def test_ci_scenario_repository_selects_the_change(generate: ModuleType, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI scenario's repository: a released base, a branch changing the given services,
    and --migorch-changed-only selecting their round-trips and per-migration checks."""
    from benchmarks import ci_scenario

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    names = generate.service_names(3)
    ci_scenario.build_repository(repo, 3, 4, [names[2]], seed=0)
    selected = ci_scenario.collected(repo)
    assert selected["services"] == [names[2]]  # the last service: nothing depends on it
    assert selected["roundtrip_items"] > 0 and selected["groups"] >= 1
    # Service-level checks for all three, sql and risk for the changed one's 5 migrations.
    assert selected["items"] == 3 * 4 + 2 * 5 + selected["roundtrip_items"]


def test_ci_scenario_phases_add_up(generate: ModuleType) -> None:
    from benchmarks.ci_scenario import phases

    marks = [{"name": "t0", "t0": 100.0},
             {"name": "controller", "loaded": 101.0, "last_report": 120.0, "reports": 0.5},
             {"name": "gw0", "collection": [104.0, 106.0], "server": 1.0, "roundtrip": 9.0,
              "static": 2.0, "server_stop": 0.2},
             {"name": "gw1", "collection": [104.5, 107.0], "server": 1.5, "roundtrip": 8.0,
              "static": 1.0}]
    result = phases(marks, 100.0, wall=25.0)
    assert result["start-up"] == 1.0
    assert result["workers up + collection"] == 6.0
    assert result["collection (slowest worker)"] == 2.5
    assert result["tests"] == 13.0
    assert result["server start (sum)"] == 2.5 and result["round-trip (sum)"] == 14.5
    assert result["static (sum)"] == 3.0 and result["reports + exit"] == 5.0
    assert result["server stop (sum)"] == pytest.approx(0.2)


def test_ci_timing_plugin_times_a_real_session(tmp_path: Path) -> None:
    """The scenario's timing plugin wraps what the plugin really calls: a session on the
    examples with round-trips records the server start, not an INTERNALERROR."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "timing").mkdir()
    env = {**os.environ, "MIGORCH_CI_TIMING_DIR": str(tmp_path / "timing")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "benchmarks.ci_timing", "--migorch", "examples/services", "--migorch-require-db",
         "-k", "user-service", "--rootdir", str(tmp_path), "-c", os.devnull],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [written] = (tmp_path / "timing").glob("controller*.json")
    marks = json.loads(written.read_text())
    assert marks["server"] > 0 and marks["roundtrip"] > 0 and marks["items"] > 0
