"""Graph resolution at scale: orders and ancestor queries of very deep and very wide sets.

    python -m benchmarks.graph_scale [--deep 5000] [--wide 20000]

"deep" is one service whose every migration depends on the one before (a chain); "wide" is
20 services of equal size, each migration of a service depending on the same version of the
previous service. The projects are built in memory (no files, no SQL), so the numbers are the
graph's own cost: what ``migorch up`` and the round-trip pay before touching a database.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

from pytest_migorch.model import (
    DependencyRef,
    Migration,
    MigrationFile,
    MigrationMeta,
    Project,
    Service,
)
from pytest_migorch.project.graph import ProjectGraph


def _migration(service: str, version: int, deps: tuple[DependencyRef, ...]) -> Migration:
    digits = f"{version:06}"
    up = MigrationFile(path=Path(f"/x/{service}/{digits}_m.up.sql"), version=version,
                       version_text=digits, title="m", direction="up", extension="sql",
                       environment=None)
    return Migration(service=service, version=version, version_text=digits, title="m",
                     environment=None, up=up, meta=MigrationMeta(depends_on=deps))


def deep_project(depth: int) -> Project:
    """One service, each migration depending on the previous one."""
    service = Service(name="deep", root=Path("/x"), migrations_dir=Path("/x/deep/migrations"))
    for version in range(1, depth + 1):
        deps = (DependencyRef("deep", version - 1, str(version - 1)),) if version > 1 else ()
        service.migrations[version] = _migration("deep", version, deps)
    return Project(root=Path("/x"), services={"deep": service})


def wide_project(total: int, services: int = 20) -> Project:
    """``services`` services of ``total // services`` migrations, chained across services."""
    project = Project(root=Path("/x"))
    per_service = total // services
    for index in range(services):
        name = f"svc{index:02}"
        service = Service(name=name, root=Path("/x"), migrations_dir=Path(f"/x/{name}/m"))
        for version in range(1, per_service + 1):
            deps: tuple[DependencyRef, ...] = ()
            if index:
                previous = f"svc{index - 1:02}"
                deps = (DependencyRef(previous, version, f"{previous}:{version}"),)
            service.migrations[version] = _migration(name, version, deps)
        project.services[name] = service
    return project


def _timed(label: str, action: Callable[[], object]) -> None:
    started = time.perf_counter()
    action()
    print(f"{label:<48} {time.perf_counter() - started:8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deep", type=int, default=5000)
    parser.add_argument("--wide", type=int, default=20000)
    args = parser.parse_args()
    deep = deep_project(args.deep)
    graph = ProjectGraph(deep)
    _timed(f"deep {args.deep}: check", graph.check)
    _timed(f"deep {args.deep}: order(service)", lambda: graph.order("deep", "default"))
    last = [("deep", args.deep)]
    _timed(f"deep {args.deep}: ancestors(newest)", lambda: graph.ancestors(last, "default"))
    wide = wide_project(args.wide)
    graph = ProjectGraph(wide)
    _timed(f"wide {args.wide}: check", graph.check)
    _timed(f"wide {args.wide}: order_all()", lambda: graph.order_all("default"))
    _timed(f"wide {args.wide}: order(last service)", lambda: graph.order("svc19", "default"))
    every = [m.key for m in graph.order_all("default")]
    _timed(f"wide {args.wide}: dependents(all)", lambda: graph.dependents(every, "default"))


if __name__ == "__main__":
    main()
