"""``migorch squash``: replay, dump, prove, then write; nothing is written unless proven.

1. :func:`~pytest_migorch.squash.selection.select_squash` picks the migrations and their
   cross-service prerequisites (refusals happen here, before any database);
2. with ``database_urls``, every listed database must be at or past the squashed version or
   not deployed at all (:mod:`pytest_migorch.squash.deployed`);
3. a throwaway database replays prerequisites and replaced migrations; its state is read and
   the dump step turns its service schema into the squashed SQL;
4. a second throwaway database runs the prerequisites, then only the squashed up file; its
   state must equal the replay's (:mod:`pytest_migorch.squash.proof`), else the differences are
   the result and nothing is written;
5. the down file is proven too: after it the state must equal the prerequisites' alone. When
   it is not, the squash is written without a down file and ``"reversible": false``;
6. unless ``dry_run``, the tree is rewritten (:mod:`pytest_migorch.squash.rewrite`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from pytest_migorch.errors import ConfigurationError, MigorchError, UsageError
from pytest_migorch.findings import Severity
from pytest_migorch.model import Project
from pytest_migorch.postgres.servers import (
    DSN_ENV_VAR,
    PostgresServer,
    ServerOptions,
    start_server,
)
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project
from pytest_migorch.squash.deployed import check_deployed
from pytest_migorch.squash.dump import DumpStep, SquashedSql, pg_dump_step
from pytest_migorch.squash.proof import DatabaseState, capture_state, compare_states
from pytest_migorch.squash.replay import (
    apply_all,
    create_schemas,
    run_squashed_sql,
    throwaway_database,
)
from pytest_migorch.squash.rewrite import SquashEntry, plan_writes, squash_entry, write_squash
from pytest_migorch.squash.selection import SquashSelection, select_squash

__all__ = ["SquashResult", "squash", "prove"]


@dataclass
class Proof:
    """What the two throwaway databases showed."""

    sql: SquashedSql
    differences: list[str]
    down_problem: str | None
    tables: list[str]


@dataclass
class SquashResult:
    """The outcome of one ``migorch squash``."""

    selection: SquashSelection
    sql: SquashedSql
    entry: SquashEntry | None
    differences: list[str]
    down_problem: str | None = None
    dry_run: bool = False
    written: list[Path] = field(default_factory=list)
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        sel = self.selection
        return {
            "ok": self.ok, "command": "squash", "service": sel.service,
            "migration": sel.migration_id, "dry_run": self.dry_run,
            "replaces": [m.id for m in sel.replaced],
            "prerequisites": [m.qualified_id for m in sel.prerequisites],
            "proof": "identical" if self.ok else "differs", "differences": self.differences,
            "reversible": self.entry.reversible if self.entry else None,
            "down_problem": self.down_problem,
            "written": [str(p) for p in self.written],
            "moved": [[str(a), str(b)] for a, b in self.moved], "notes": self.notes,
        }


def _check_static(project: Project, service: str) -> None:
    errors = [f for f in project.all_findings()
              if f.severity is Severity.ERROR and f.service in (None, service)]
    if errors:
        first = errors[0]
        raise ConfigurationError(
            f"{service}: {len(errors)} configuration error(s), e.g. {first.code} {first.message}"
            f"; run `migorch validate {service}` and fix them before squashing")


def _service_tables(state: DatabaseState, schema: str) -> list[str]:
    return sorted(name.split(".", 1)[1] for name in state.rows if name.split(".", 1)[0] == schema)


def prove(server: PostgresServer, selection: SquashSelection, dump: DumpStep,
          path: Path) -> Proof:
    """Replay, dump, and run the dump in a second database; see the module docstring."""
    services = {selection.service, *(m.service for m in selection.prerequisites)}
    with throwaway_database(server, "migorch_squash_replay") as conn:
        create_schemas(conn, services)
        apply_all(conn, selection.prerequisites)
        apply_all(conn, selection.replaced)
        expected = capture_state(conn)
        sql_text = dump(server, conn.info.dbname, selection.schema)
    tables = _service_tables(expected, selection.schema)
    with throwaway_database(server, "migorch_squash_proof") as conn:
        create_schemas(conn, services)
        apply_all(conn, selection.prerequisites)
        before = capture_state(conn)
        try:
            run_squashed_sql(conn, selection.service, sql_text.up, path)
        except MigorchError as exc:
            return Proof(sql_text, [f"the squashed file fails: {exc}"], None, tables)
        differences = compare_states(expected, capture_state(conn),
                                     default_schema=selection.schema)
        if differences:
            return Proof(sql_text, differences, None, tables)
        return Proof(sql_text, [], _prove_down(conn, selection, sql_text, before, path), tables)


def _prove_down(conn: psycopg.Connection[Any], selection: SquashSelection, sql_text: SquashedSql,
                before: DatabaseState, path: Path) -> str | None:
    """Why the down file does not restore the state before the up, or None when it does."""
    down_path = path.with_name(selection.down_name)
    try:
        run_squashed_sql(conn, selection.service, sql_text.down, down_path)
    except MigorchError as exc:
        return f"the down file fails: {exc}"
    residue = compare_states(before, capture_state(conn), default_schema=selection.schema)
    if residue:
        return "the down file does not restore the state before the up:\n" + "\n".join(residue)
    return None


def squash(
    root: Path, service: str, version: int, *, environment: str | None = None,
    dry_run: bool = False, database_urls: tuple[str, ...] = (),
    server: PostgresServer | None = None, dump: DumpStep = pg_dump_step,
) -> SquashResult:
    """Squash ``service``'s migrations up to ``version`` under ``root``; see the module docs.

    ``server`` is the PostgreSQL server for the throwaway databases (default: one started the
    way the test plugin starts one, stopped afterwards). ``dump`` makes the squashed SQL from
    the replayed database; tests inject lossy ones to show the proof catches them."""
    project = load_project(root)
    _check_static(project, service)
    graph = ProjectGraph(project)
    selection = select_squash(project, graph, service, version, environment)
    problems = check_deployed(selection, database_urls)
    if problems:
        raise UsageError("refusing to squash:\n" + "\n".join(f"  - {p}" for p in problems))
    own = server is None
    if server is None:
        # The plugin's chain: an explicit server if named, else local binaries, else Docker.
        server = start_server(ServerOptions(dsn=os.environ.get(DSN_ENV_VAR) or None))
    up_path = project.services[service].migrations_dir / selection.up_name
    try:
        proof = prove(server, selection, dump, up_path)
    finally:
        if own:
            server.stop()
    result = SquashResult(selection, proof.sql, None, proof.differences, proof.down_problem,
                          dry_run)
    if not result.ok:
        return result
    result.entry = squash_entry(selection, proof.tables, reversible=proof.down_problem is None)
    plan = plan_writes(project, selection, proof.sql, result.entry)
    result.notes.extend(plan.notes)
    result.moved = list(plan.moves)
    if dry_run:
        result.written = sorted(plan.texts)
    else:
        result.written = write_squash(plan)
    return result
