"""The Applier (deploy/applying.py) on a real database: the order in which it commits.

docs/runner.md, "Transactions, failures and crashes", is the contract: a transactional step
commits its ``running`` row before the SQL, then the SQL, the row and golang-migrate's row in one
transaction; a non-transactional step commits the ``running`` row together with golang-migrate's
dirty flag first, counts the statements done after each one, and clears the flag with the row.

The tests drive one :class:`Applier` on one :class:`Session` as the runner does, and look at the
database from a second connection. Where a test must see the state *while* a step runs, the
migration waits on an advisory lock the test holds, in a thread of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import dependencies_json, entry, environments_json, make_runner, query, write_service

from pytest_migorch.deploy.applying import Applier, StepOutcome
from pytest_migorch.deploy.planning import ServiceState, plan_step
from pytest_migorch.deploy.records import file_checksum
from pytest_migorch.deploy.session import Session
from pytest_migorch.errors import MigrationFailed
from pytest_migorch.model import Migration
from pytest_migorch.postgres.connection import connect, resolve_settings
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project

SERVICE = "shop"
SCHEMA = "shop"
ENV = "production"
RUNNER_ID = "tester@ci"
WAIT_KEY = 424242  # the advisory lock a migration waits on while the test looks


def write_shop(root: Path, second_up: str, *, second_down: str = "DROP TABLE u;\n",
               transactional: bool = True, first_down: str = "DROP TABLE t;\n") -> None:
    """Service ``shop``: 000001_a creates ``t``; 000002_b runs ``second_up``."""
    extra: dict[str, Any] = {} if transactional else {"transactional": False}
    write_service(root, SERVICE, {
        "000001_a.up.sql": "CREATE TABLE t (id int);\n",
        "000001_a.down.sql": first_down,
        "000002_b.up.sql": second_up,
        "000002_b.down.sql": second_down,
        "dependencies.json": dependencies_json({
            "1": entry(affects_tables=["t"]),
            "2": entry(depends_on=["1"], affects_tables=["u"], **extra),
        }),
        "environments.json": environments_json({ENV: []}),
    })


@dataclass
class Harness:
    """One session and applier on ``url``, and the service's state as the runner reads it."""

    root: Path
    url: str
    session: Session
    applier: Applier
    state: ServiceState

    @property
    def migrations(self) -> dict[str, Migration]:
        return {m.id: m for m in self.state.order}

    def up(self, migration_id: str) -> StepOutcome:
        step = plan_step(self.migrations[migration_id], "up", SCHEMA)
        return self.applier.apply_up(self.state, step)

    def down(self, migration_id: str, rollback_version: str) -> StepOutcome:
        step = plan_step(self.migrations[migration_id], "down", SCHEMA)
        return self.applier.apply_down(self.state, step, rollback_version)

    def row(self, migration_id: str) -> tuple[Any, ...]:
        """(status, executed_by, error_message, rollback_version, metadata, completed?)."""
        found = query(self.url, "SELECT status, executed_by, error_message, rollback_version, "
                                "metadata, completed_at IS NOT NULL FROM "
                                "shop.migration_executions WHERE migration_id = %s",
                      (migration_id,))
        assert len(found) == 1, found
        return tuple(found[0])

    def golang_migrate(self) -> list[tuple[int, bool]]:
        return [(int(v), bool(d)) for v, d in
                query(self.url, "SELECT version, dirty FROM public.shop_schema_migrations")]

    def history(self, migration_id: str) -> list[tuple[str, str]]:
        return [(str(a), str(s)) for a, s in query(
            self.url, "SELECT action, status FROM shop.migration_execution_history "
                      "WHERE migration_id = %s ORDER BY id", (migration_id,))]

    def tables(self) -> list[str]:
        return [str(r[0]) for r in query(
            self.url, "SELECT tablename FROM pg_tables WHERE schemaname = 'shop' "
                      "AND tablename NOT LIKE 'migration_%' ORDER BY 1")]


@pytest.fixture
def harness_for(tmp_path: Path, fresh_db: str) -> Iterator[Callable[..., Harness]]:
    """Write the service with the given second migration, init it, open the applier's session."""
    sessions: list[Session] = []

    def build(second_up: str, **kwargs: Any) -> Harness:
        root = tmp_path / "services"
        write_shop(root, second_up, **kwargs)
        make_runner(root, fresh_db).init([SERVICE], ENV)
        project = load_project(root)
        settings = resolve_settings(fresh_db, {})
        session = Session(connect(settings), settings, 15.0)
        sessions.append(session)
        tracking = session.tracking(SCHEMA)
        state = ServiceState.build(
            project.services[SERVICE], ENV, ProjectGraph(project).order(SERVICE, ENV),
            tracking.is_initialised(), tracking.read_schema_version(), tracking.records())
        return Harness(root, fresh_db, session, Applier(session, project.root, RUNNER_ID), state)

    yield build
    for session in sessions:
        session.close()


def while_waiting(harness: Harness, run: Callable[[], Any],
                  look: Callable[[], None]) -> Any:
    """Run ``run`` in a thread while the test holds WAIT_KEY; call ``look`` once the
    migration waits for it, then let it finish and return its result (or raise its error)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = run()
        except BaseException as exc:  # handed back to the test below
            result["error"] = exc

    with psycopg.connect(harness.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (WAIT_KEY,))
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not query(harness.url, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND objid = %s AND NOT granted", (WAIT_KEY,)):
            assert thread.is_alive(), result
            assert time.monotonic() < deadline, "the migration never waited for the lock"
            time.sleep(0.05)
        try:
            look()
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (WAIT_KEY,))
            thread.join(20)
    if "error" in result:
        raise result["error"]
    return result["value"]


# --- transactional up ---------------------------------------------------------------------------


def test_transactional_up_commits_sql_row_and_golang_migrate_row(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\n")
    outcome = h.up("000001_a")
    assert (outcome.status, outcome.error) == ("completed", None)
    status, executed_by, error, rollback, metadata, completed = h.row("000001_a")
    assert (status, executed_by, error, rollback, completed) == (
        "completed", RUNNER_ID, None, None, True)
    assert metadata["action"] == "up"
    assert metadata["dirty"] is False
    assert metadata["transactional"] is True
    assert metadata["file"] == "shop/migrations/000001_a.up.sql"
    assert metadata["backend_pid"] == h.session.conn.info.backend_pid
    assert query(h.url, "SELECT checksum FROM shop.migration_executions") == [
        (file_checksum(h.migrations["000001_a"].main_file.path),)]
    assert h.golang_migrate() == [(1, False)]
    assert h.tables() == ["t"]
    assert h.history("000001_a") == [("up", "running"), ("up", "completed")]
    # the state the next step plans from took the row in without reading it back
    assert [m.id for m in h.state.applied] == ["000001_a"]
    assert [m.id for m in h.state.pending] == ["000002_b"]


def test_transactional_running_row_is_committed_before_the_sql_runs(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for(f"SELECT pg_advisory_xact_lock({WAIT_KEY});\nCREATE TABLE u (id int);\n")
    h.up("000001_a")

    def look() -> None:
        # another session sees the row: it was committed before the migration's SQL
        status, executed_by, _, _, metadata, completed = h.row("000002_b")
        assert (status, executed_by, completed) == ("running", RUNNER_ID, False)
        assert metadata["dirty"] is False
        # golang-migrate's row commits with the SQL, so it still says version 1
        assert h.golang_migrate() == [(1, False)]
        assert h.tables() == ["t"]

    outcome = while_waiting(h, lambda: h.up("000002_b"), look)
    assert outcome.status == "completed"
    assert h.row("000002_b")[0] == "completed"
    assert h.golang_migrate() == [(2, False)]
    assert h.tables() == ["t", "u"]


def test_transactional_failure_leaves_nothing_and_records_failed(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\nINSERT INTO missing VALUES (1);\n")
    h.up("000001_a")
    with pytest.raises(MigrationFailed) as caught:
        h.up("000002_b")
    message = str(caught.value)
    assert message == (
        "migration shop:000002_b failed at services/shop/migrations/000002_b.up.sql:2: "
        'relation "missing" does not exist (SQLSTATE 42P01)\n'
        "Nothing of it was applied: its transaction was rolled back.")
    status, _, error, _, metadata, completed = h.row("000002_b")
    assert (status, error, completed) == ("failed", message, True)
    assert metadata["dirty"] is False
    assert h.tables() == ["t"]  # u was rolled back with the failing statement
    assert h.golang_migrate() == [(1, False)]
    assert h.history("000002_b") == [("up", "running"), ("up", "failed")]


# --- non-transactional up -----------------------------------------------------------------------


def test_non_transactional_row_and_dirty_flag_commit_first_and_progress_is_counted(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\n"
                    f"SELECT pg_advisory_lock({WAIT_KEY});\n"
                    f"SELECT pg_advisory_unlock({WAIT_KEY});\n", transactional=False)
    h.up("000001_a")

    def look() -> None:
        status, _, _, _, metadata, completed = h.row("000002_b")
        assert (status, completed) == ("running", False)
        assert metadata["dirty"] is True
        assert metadata["transactional"] is False
        # one statement done (line 1), the second one is waiting
        assert (metadata["statements_done"], metadata["statements_total"],
                metadata["last_line"]) == (1, 3, 1)
        # golang-migrate's dirty flag is set before the statements run, as golang-migrate does
        assert h.golang_migrate() == [(2, True)]
        assert h.tables() == ["t", "u"]  # autocommit: the first statement is in effect

    outcome = while_waiting(h, lambda: h.up("000002_b"), look)
    assert outcome.status == "completed"
    status, _, error, _, metadata, completed = h.row("000002_b")
    assert (status, error, completed) == ("completed", None, True)
    assert (metadata["dirty"], metadata["statements_done"], metadata["last_line"]) == (
        False, 3, 3)
    assert h.golang_migrate() == [(2, False)]


def test_non_transactional_failure_keeps_what_ran_and_the_dirty_flag(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\nINSERT INTO missing VALUES (1);\n"
                    "CREATE TABLE never (id int);\n", transactional=False)
    h.up("000001_a")
    with pytest.raises(MigrationFailed) as caught:
        h.up("000002_b")
    message = str(caught.value)
    assert message.startswith(
        "migration shop:000002_b failed at services/shop/migrations/000002_b.up.sql:2: "
        'relation "missing" does not exist (SQLSTATE 42P01)\n'
        "It is not transactional: the statements before the failing one are in effect and "
        "golang-migrate's dirty flag is set.")
    assert message.endswith(
        "\n  migorch force shop 2   # it is now fully applied"
        "\n  migorch force shop 1   # it is fully undone (it runs again)")
    status, _, error, _, metadata, completed = h.row("000002_b")
    assert (status, error, completed) == ("failed", message, True)
    assert (metadata["dirty"], metadata["statements_done"], metadata["statements_total"]) == (
        True, 1, 3)
    assert h.tables() == ["t", "u"]
    assert h.golang_migrate() == [(2, True)]


def test_non_transactional_block_left_open_is_rolled_back_and_fails(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\nBEGIN;\nCREATE TABLE v (id int);\n",
                    transactional=False)
    h.up("000001_a")
    with pytest.raises(MigrationFailed, match=r"000002_b\.up\.sql:2"):
        h.up("000002_b")
    status, _, _, _, metadata, _ = h.row("000002_b")
    assert (status, metadata["dirty"], metadata["statements_done"]) == ("failed", True, 1)
    assert h.tables() == ["t", "u"]  # v was inside the open block: rolled back
    assert h.golang_migrate() == [(2, True)]


# --- down ---------------------------------------------------------------------------------------


def test_transactional_down_rolls_back_and_rewrites_golang_migrate(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\n")
    h.up("000001_a")
    h.up("000002_b")
    outcome = h.down("000002_b", "1")
    assert outcome.status == "rolled_back"
    status, executed_by, error, rollback, metadata, completed = h.row("000002_b")
    assert (status, executed_by, error, rollback, completed) == (
        "rolled_back", RUNNER_ID, None, "1", True)
    assert metadata["action"] == "down"
    assert metadata["down_file"] == "shop/migrations/000002_b.down.sql"
    assert h.tables() == ["t"]
    assert h.golang_migrate() == [(1, False)]
    assert h.history("000002_b") == [("up", "running"), ("up", "completed"),
                                     ("down", "running"), ("down", "rolled_back")]
    assert [m.id for m in h.state.pending] == ["000002_b"]
    # rolling back the last one leaves golang-migrate's table empty (NilVersion)
    h.down("000001_a", "-1")
    assert h.golang_migrate() == []
    assert h.tables() == []


def test_failed_down_leaves_the_migration_applied(
    harness_for: Callable[..., Harness],
) -> None:
    h = harness_for("CREATE TABLE u (id int);\n", second_down="DROP TABLE nothing_here;\n")
    h.up("000001_a")
    h.up("000002_b")
    with pytest.raises(MigrationFailed) as caught:
        h.down("000002_b", "1")
    assert str(caught.value) == (
        "rollback of shop:000002_b failed at services/shop/migrations/000002_b.down.sql:1: "
        'table "nothing_here" does not exist (SQLSTATE 42P01)\n'
        "Nothing was rolled back: the transaction was rolled back.")
    status, _, error, rollback, metadata, _ = h.row("000002_b")
    assert (status, error, rollback) == ("completed", str(caught.value), None)
    assert metadata["action"] == "down"
    assert h.tables() == ["t", "u"]
    assert h.golang_migrate() == [(2, False)]


# --- StepOutcome --------------------------------------------------------------------------------


def test_step_outcome_json(harness_for: Callable[..., Harness]) -> None:
    h = harness_for("CREATE TABLE u (id int);\n")
    step = plan_step(h.migrations["000001_a"], "up", SCHEMA)
    assert StepOutcome(step, "failed", 1.2345, "boom").to_json() == {
        "service": "shop", "migration": "000001_a", "direction": "up", "status": "failed",
        "duration_ms": 1234, "estimated_seconds": 1.0, "error": "boom"}


def test_metadata_file_is_the_resolved_path_relative_to_the_root(tmp_path: Path) -> None:
    """Directories are resolved once per run; each file is still resolved as a whole would
    resolve it (a linked file, a linked directory, a file outside the root)."""
    root = tmp_path / "services"
    real = root / "shop" / "migrations"
    real.mkdir(parents=True)
    (real / "000001_a.up.sql").write_text("SELECT 1;\n")
    (real / "000002_b.up.sql").symlink_to(real / "000001_a.up.sql")
    (root / "alias").symlink_to(root / "shop", target_is_directory=True)
    outside = tmp_path / "elsewhere.sql"
    outside.write_text("SELECT 1;\n")
    sibling = tmp_path / "services-old" / "a.up.sql"  # shares the root's name as a prefix
    sibling.parent.mkdir()
    sibling.write_text("SELECT 1;\n")
    applier = Applier(Any, root, RUNNER_ID)  # type: ignore[arg-type]  # no session needed
    for path in (real / "000001_a.up.sql", real / "000002_b.up.sql",
                 root / "alias" / "migrations" / "000001_a.up.sql",
                 root / "alias" / "migrations" / "000002_b.up.sql", outside, sibling):
        try:
            expected = str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            expected = str(path)
        assert applier._shown(path) == expected, path
    assert applier._shown(real / "000002_b.up.sql") == "shop/migrations/000001_a.up.sql"
