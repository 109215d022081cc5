"""Which environment tests which migration (:mod:`pytest_migorch.roundtrip.coverage`), against
its definition: a migration is tested in the first environment where its whole resolved prefix
(every file applied up to and including it) occurs, and covers the later ones with that prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.coverage import plan_environments

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"


def by_definition(graph: ProjectGraph, service: str, environments: list[str]
                  ) -> dict[str, tuple[list[int], dict[int, tuple[str, ...]]]]:
    owners: dict[tuple[object, ...], tuple[str, int]] = {}
    out: dict[str, tuple[list[int], dict[int, tuple[str, ...]]]] = {e: ([], {}) for e in environments}
    for environment in environments:
        order = graph.order_all(environment, [service])
        mine = {m.key for m in graph.order(service, environment)}
        for index, migration in enumerate(order):
            if migration.key not in mine:
                continue
            prefix = tuple((m.service, m.version, str(m.main_file.path))
                           for m in order[:index + 1])
            if prefix not in owners:
                owners[prefix] = (environment, migration.version)
                out[environment][0].append(migration.version)
                continue
            owner, version = owners[prefix]
            covers = out[owner][1]
            covers[version] = (*covers.get(version, (owner,)), environment)
    return out


def projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    monkeypatch.syspath_prepend(str(EXAMPLES.parents[1]))  # the repository: benchmarks/
    from benchmarks import generate

    generated = tmp_path / "generated"
    generate.generate_repository(generated, services=6, migrations=12, seed=3)
    return [EXAMPLES, generated]


@pytest.mark.parametrize("which", [0, 1], ids=["examples", "generated"])
def test_each_migration_is_tested_where_its_prefix_first_occurs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: int) -> None:
    project = load_project(projects(tmp_path, monkeypatch)[which])
    graph = ProjectGraph(project)
    shared = 0
    for name, service in project.services.items():
        environments = service.environment_names()
        plans = plan_environments(graph, name, environments)
        expected = by_definition(graph, name, environments)
        for environment in environments:
            plan = plans[environment]
            assert plan.error is None
            assert ([m.version for m in plan.tested], plan.covers) == expected[environment]
            shared += len(plan.covers)
    assert shared > 0  # some migration is tested once for several environments
