"""Deploy hooks: SQL files and commands that environments.json asks to run around a deploy.

A release often needs a step that is not a migration: grants after new tables, refreshing a
materialized view, telling a chat channel. Hooks run at fixed points (``before_run``,
``after_each``, ``after_run`` and the ``*_down`` equivalents), per service and environment:

- a SQL hook runs on the connection that runs the migrations, with the service's clean session
  settings (``search_path`` to its schema), statement by statement;
- a command runs without a shell, in the service directory, with a timeout (300 s unless the
  hook says), and gets ``MIGORCH_SERVICE``, ``MIGORCH_ENV``, ``MIGORCH_MIGRATION``,
  ``MIGORCH_ACTION`` and ``MIGORCH_DATABASE_URL`` in its environment. The URL carries the
  password (the command must connect); nothing migorch prints does (``settings.display``, and
  the command's own output is masked before it is shown).

Every hook run is a row of ``<schema>.migration_hook_runs``: the history table's ``action``
column is constrained to the SPEC's five values and its rows describe one migration each, so
hook runs get their own append-only table instead of bending that one.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pytest_migorch.deploy.session import Session
from pytest_migorch.errors import MigrationFailed
from pytest_migorch.model import Hook, Project
from pytest_migorch.postgres.connection import ConnectionSettings, mask_secret
from pytest_migorch.postgres.statements import run_sql_text

__all__ = ["HookFailed", "HookRunner", "HOOK_RUNS_TABLE", "database_url"]

HOOK_RUNS_TABLE = "migration_hook_runs"
_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    id BIGSERIAL PRIMARY KEY,
    environment VARCHAR(50) NOT NULL,
    event VARCHAR(20) NOT NULL,
    hook TEXT NOT NULL,
    action VARCHAR(20) NOT NULL,
    migration_id VARCHAR(255),
    status VARCHAR(20) NOT NULL CHECK (status IN ('completed', 'failed')),
    exit_code INTEGER,
    duration_ms BIGINT NOT NULL,
    error_message TEXT,
    executed_by VARCHAR(255),
    recorded_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
)"""
_OUTPUT_SHOWN = 2000


class HookFailed(MigrationFailed):
    """A hook failed: a before-hook stops the run before anything is applied, an after-hook
    after the migration it followed (whose state is recorded): exit 1."""


@dataclass
class HookRunner:
    """Runs one environment's hooks for the services of a run."""

    project: Project
    environment: str
    settings: ConnectionSettings
    executed_by: str
    enabled: bool = True

    def hooks(self, service: str, event: str) -> tuple[Hook, ...]:
        env = self.project.services[service].environments.get(self.environment)
        return env.hooks.get(event, ()) if env is not None else ()

    def describe(self, services: list[str], events: tuple[str, ...]) -> list[str]:
        """What ``--dry-run`` (and ``--no-hooks``) lists: one line per declared hook."""
        return [f"hook {event} {name}: {hook.label}"
                for name in services for event in events for hook in self.hooks(name, event)]

    def run(self, session: Session, service: str, event: str, action: str,
            migration: str | None = None) -> None:
        """Run the hooks of ``event``; record each; raise :class:`HookFailed` on the first
        that fails."""
        if not self.enabled:
            return
        schema = self.project.services[service].schema
        for hook in self.hooks(service, event):
            began = time.monotonic()
            exit_code, error = self._run_one(session, service, hook, action, migration)
            self._record(session, schema, hook, action, migration, exit_code, error,
                         time.monotonic() - began)
            if error is not None:
                where = f" after {migration}" if migration else ""
                raise HookFailed(f"{service}: {event} hook {hook.label}{where} failed: {error}")

    def _run_one(self, session: Session, service: str, hook: Hook, action: str,
                 migration: str | None) -> tuple[int | None, str | None]:
        directory = self.project.services[service].migrations_dir.parent
        if hook.sql is not None:
            path = directory / hook.sql
            if not path.is_file():
                return None, f"{path} does not exist (hook paths are relative to {directory})"
            session.conn.execute(session.migration_settings(
                self.project.services[service].schema))
            try:
                run_sql_text(session.conn, path.read_text(encoding="utf-8"), path=path,
                             in_transaction=False)
            except MigrationFailed as exc:
                return None, str(exc)
            return 0, None
        env = {**os.environ, "MIGORCH_SERVICE": service, "MIGORCH_ENV": self.environment,
               "MIGORCH_MIGRATION": migration or "", "MIGORCH_ACTION": action,
               "MIGORCH_DATABASE_URL": database_url(self.settings)}
        return self._command(hook, directory, env)

    def _command(self, hook: Hook, directory: Path,
                 env: Mapping[str, str]) -> tuple[int | None, str | None]:
        argv = list(hook.command)
        if argv[0].startswith("./") or argv[0].startswith("../"):
            argv[0] = str(directory / argv[0])
        try:
            done = subprocess.run(argv, cwd=directory, env=dict(env), capture_output=True,
                                  text=True, timeout=hook.timeout, check=False)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {hook.timeout:g}s (set \"timeout\" on the hook)"
        except OSError as exc:
            return None, f"cannot run {argv[0]}: {exc.strerror or exc}"
        if done.returncode != 0:
            output = mask_secret((done.stderr or done.stdout).strip()[-_OUTPUT_SHOWN:],
                                 self.settings.password)
            return done.returncode, f"exit status {done.returncode}" + (
                f": {output}" if output else "")
        return 0, None

    def _record(self, session: Session, schema: str, hook: Hook, action: str,
                migration: str | None, exit_code: int | None, error: str | None,
                seconds: float) -> None:
        table = sql.Identifier(schema, HOOK_RUNS_TABLE)
        with session.conn.transaction():
            if session.guard is not None:
                session.conn.execute(session.guard)
            session.conn.execute(sql.SQL(_DDL).format(table=table))
            session.conn.execute(
                sql.SQL("INSERT INTO {} (environment, event, hook, action, migration_id, "
                        "status, exit_code, duration_ms, error_message, executed_by) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)").format(table),
                (self.environment, hook.event, hook.label, action, migration,
                 "failed" if error else "completed", exit_code, round(seconds * 1000), error,
                 self.executed_by))


def database_url(settings: ConnectionSettings) -> str:
    """The connection as a ``postgresql://`` URL for a hook command (with the password: the
    command has to log in; it is only ever put in the command's environment)."""
    params: dict[str, Any] = conninfo_to_dict(settings.conninfo)
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user
                                                                          else "")
    host = quote(str(params.pop("host", "")), safe="")
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "")), safe="")
    query = "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}"
                     for k, v in params.items())
    return (f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{dbname}"
            + (f"?{query}" if query else ""))
