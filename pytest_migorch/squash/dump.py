"""The squashed migration's SQL: ``pg_dump`` of the service schema, made fit for golang-migrate.

``pg_dump`` is what a user trusts to reproduce a schema: it knows every object kind, orders
them by dependency, and writes grants, comments, rows and sequence positions. What it writes is
meant for psql, so the output is post-processed into a plain SQL file that golang-migrate (one
multi-statement exec) and the runner can run:

- psql meta-commands (``\\restrict``, ``\\connect``) are removed;
- the ``SET`` prologue goes (it would outlive the migration on golang-migrate's connection, and
  a newer pg_dump writes settings an older server rejects); only ``check_function_bodies =
  false`` stays, because pg_dump creates functions before the tables their bodies name, and it
  is reset at the end;
- ``CREATE SCHEMA`` goes: the runner creates the service schema before any migration runs;
- rows are written as ``INSERT`` statements (``COPY ... FROM stdin`` is psql-only).

The down file is pg_dump's own ``--clean`` section (every object dropped in reverse dependency
order, ``IF EXISTS``) without the ``DROP SCHEMA``: the schema also holds the runner's tracking
tables, which must survive a rollback.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Callable

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_migorch.errors import MigorchError
from pytest_migorch.postgres.binaries import child_env, find_binaries
from pytest_migorch.postgres.connection import mask_secret
from pytest_migorch.postgres.servers import PostgresServer

__all__ = ["DumpStep", "SquashedSql", "clean_dump", "pg_dump_step"]

DUMP_TIMEOUT = 600.0

_KEEP_SETTING = "SET check_function_bodies = false;"
_SET_LINE = re.compile(r"^(SET\s+\w+\s*(=|TO)\s*.*;|SELECT pg_catalog\.set_config\(.*\);)$")


@dataclass(frozen=True)
class SquashedSql:
    """The text of the squashed up file and of its down file."""

    up: str
    down: str


#: Produces the squashed SQL from the replayed database ``(server, dbname, schema)``. The
#: default runs pg_dump; tests inject a lossy one to show that the proof catches it.
DumpStep = Callable[[PostgresServer, str, str], SquashedSql]


def pg_dump_step(server: PostgresServer, dbname: str, schema: str) -> SquashedSql:
    """Dump ``schema`` of ``dbname`` with the pg_dump next to the server programs."""
    pg_dump = find_binaries().bin_dir / "pg_dump"
    # The password goes through the environment, never the command line (visible in ps).
    params = conninfo_to_dict(server.conninfo(dbname))
    env = child_env()
    password = params.pop("password", None)
    secret = str(password) if password else None
    if secret:
        env["PGPASSWORD"] = secret
    conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    command = [str(pg_dump), "--dbname", conninfo, "--schema", schema,
               "--no-owner", "--clean", "--if-exists", "--inserts"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DUMP_TIMEOUT,
                              env=env, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MigorchError(f"could not run {pg_dump}: {exc}") from exc
    if done.returncode != 0:
        raise MigorchError(f"pg_dump of schema {schema} failed: "
                           f"{mask_secret(done.stderr.strip(), secret)}")
    return clean_dump(done.stdout, schema)


def clean_dump(text: str, schema: str) -> SquashedSql:
    """Split a ``pg_dump --clean --if-exists`` text into a runnable up and down file."""
    drops: list[str] = []
    body: list[str] = []
    in_body = False
    schema_names = {schema, f'"{schema}"'}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("\\") or _SET_LINE.match(stripped):
            continue
        if stripped.startswith("CREATE SCHEMA ") and \
                stripped[len("CREATE SCHEMA "):].rstrip(";") in schema_names:
            in_body = True
            continue
        if not in_body:
            if stripped.startswith(("DROP ", "ALTER ")) and \
                    not stripped.startswith("DROP SCHEMA IF EXISTS "):
                drops.append(stripped)
            continue
        body.append(line)
    if not in_body:
        raise MigorchError(f"pg_dump wrote no CREATE SCHEMA {schema}; cannot use its output")
    up = "\n".join([
        f"-- Squashed by `migorch squash`: the state of schema {schema} as pg_dump wrote it.",
        _KEEP_SETTING, *_trim(body), "", "RESET check_function_bodies;", ""])
    down = "\n".join([
        f"-- Drops what the squashed up file creates; schema {schema} itself stays.",
        *drops, ""])
    return SquashedSql(up, down)


def _trim(lines: list[str]) -> list[str]:
    """Drop pg_dump's trailing banner and runs of blank lines."""
    out: list[str] = []
    for line in lines:
        if not line.strip() and out and not out[-1].strip():
            continue
        out.append(line)
    while out and (not out[-1].strip() or out[-1].startswith("--")):
        out.pop()
    return out
