"""Compare the tables the static analysis says each migration changes with PostgreSQL's account.

Usage::

    python benchmarks/static_vs_truth.py [ROOT ...] [--quiet]

Without ROOT it measures every ``<shared>/corpora/*/services`` next to the repository and the
repository's ``examples/services``. A throwaway server is started
(:func:`pytest_migorch.postgres.servers.start_server`) and each service's migrations run through
the round-trip (:class:`pytest_migorch.roundtrip.RoundTrip`) in every environment, whose probes
(:mod:`pytest_migorch.postgres.probes`: event triggers and ``pg_stat_xact`` row counters) record
which tables PostgreSQL saw each up file change. The static side is ``tables_touched`` of
:func:`pytest_migorch.checks.migration.check_migration`, given the schema model of the
migrations before it in the same order (:mod:`pytest_migorch.checks.schema_history`).

A file agrees when both sets are equal, a renamed table counting under its new name (PostgreSQL
names it so; the ``affects_tables`` cross-check accepts either). Every disagreement is printed
with the tables only one side saw, then the agreement rate per root and overall.
``--without-model`` checks each migration without the schema model, for comparison.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_migorch.checks.migration import check_migration  # noqa: E402
from pytest_migorch.model import Migration, Project, schema_name  # noqa: E402
from pytest_migorch.postgres.servers import (  # noqa: E402
    PostgresServer,
    ServerOptions,
    start_server,
)
from pytest_migorch.project.graph import ProjectGraph  # noqa: E402
from pytest_migorch.project.validation import load_project  # noqa: E402
from pytest_migorch.roundtrip.engine import RoundTrip  # noqa: E402
from pytest_migorch.sql.analysis import AnalysisCache, analyse_sql  # noqa: E402
from pytest_migorch.sql.facts import Role  # noqa: E402

try:  # the schema model; absent on revisions before it existed (for "before" numbers)
    from pytest_migorch.checks.schema_history import models_before
except ImportError:  # pragma: no cover - only on old revisions
    models_before = None  # type: ignore[assignment]


@dataclass
class Tally:
    """Files compared and the disagreements among them, for one root."""

    files: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def agreeing(self) -> int:
        return self.files - len(self.disagreements)


def default_roots() -> list[Path]:
    roots = sorted(Path("/work/shared/corpora").glob("*/services"))
    roots += sorted((REPO.parent / "shared" / "corpora").glob("*/services"))
    examples = REPO / "examples" / "services"
    if examples.is_dir():
        roots.append(examples)
    return list(dict.fromkeys(r.resolve() for r in roots))


def qualified(tables: list[str], service: str) -> set[str]:
    default = schema_name(service)
    return {t.lower() if "." in t else f"{default}.{t.lower()}" for t in tables}


def renames(migration: Migration, cache: AnalysisCache) -> dict[str, str]:
    """``schema.old`` -> ``schema.new`` for the tables the up file renames."""
    if migration.up is None:
        return {}
    default = schema_name(migration.service)
    found: dict[str, str] = {}
    for st in analyse_sql(migration.up.read_text(), cache).statements:
        for obj in st.objects_of("table", Role.RENAMED):
            old = f"{obj.schema or default}.{obj.name}"
            found[old] = f"{obj.new_schema or obj.schema or default}.{obj.new_name or obj.name}"
    return found


def final_names(tables: set[str], moved: dict[str, str]) -> set[str]:
    result = set()
    for table in tables:
        seen = {table}
        while table in moved and moved[table] not in seen:
            table = moved[table]
            seen.add(table)
        result.add(table)
    return result


def static_tables(project: Project, graph: ProjectGraph, environment: str, service: str,
                  cache: AnalysisCache, use_model: bool = True) -> dict[int, set[str]]:
    """version -> the static tables of each of ``service``'s migrations in ``environment``."""
    order = graph.order_all(environment, [service])
    models = models_before(order, cache) if models_before is not None and use_model else {}
    found: dict[int, set[str]] = {}
    for migration in order:
        if migration.service != service:
            continue
        model = models.get(migration.key)
        extra = {"model": model} if model is not None else {}
        report = check_migration(migration, schema_name(service), cache, **extra)
        found[migration.version] = final_names(qualified(report.tables_touched, service),
                                               renames(migration, cache))
    return found


def measure_root(server: PostgresServer, root: Path, tally: Tally, quiet: bool,
                 use_model: bool = True) -> None:
    project = load_project(root)
    graph = ProjectGraph(project)
    cache = AnalysisCache()
    for name, service in sorted(project.services.items()):
        for environment in service.environment_names():
            static = static_tables(project, graph, environment, name, cache, use_model)
            roundtrip = RoundTrip(server, project, graph, name, environment)
            try:
                for migration in roundtrip.migrations():
                    compare(roundtrip, migration, static, environment, tally, quiet)
            finally:
                roundtrip.close()


def compare(roundtrip: RoundTrip, migration: Migration, static: dict[int, set[str]],
            environment: str, tally: Tally, quiet: bool) -> None:
    truth = roundtrip.outcome(migration).truth
    if truth is None:  # the up failed: PostgreSQL has no account of it
        return
    tally.files += 1
    mine = static.get(migration.version, set())
    seen = truth.touched_tables
    if mine == seen:
        return
    parts = []
    if seen - mine:
        parts.append("only PostgreSQL: " + ", ".join(sorted(seen - mine)))
    if mine - seen:
        parts.append("only static: " + ", ".join(sorted(mine - seen)))
    line = f"{migration.qualified_id} [{environment}]: " + "; ".join(parts)
    tally.disagreements.append(line)
    if not quiet:
        print("  " + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--quiet", action="store_true", help="only the rates")
    parser.add_argument("--without-model", action="store_true",
                        help="check each migration without the schema model of earlier ones")
    args = parser.parse_args(argv)
    roots = args.roots or default_roots()
    server = start_server(ServerOptions(provider="local", die_with_parent=True))
    total = Tally()
    try:
        for root in roots:
            print(f"{root}:")
            tally = Tally()
            measure_root(server, root, tally, args.quiet, not args.without_model)
            print(f"  {tally.agreeing}/{tally.files} files agree")
            total.files += tally.files
            total.disagreements += tally.disagreements
    finally:
        server.stop()
    rate = 100.0 * total.agreeing / total.files if total.files else 100.0
    print(f"overall: {total.agreeing}/{total.files} files agree ({rate:.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
