"""A service that declares golang-migrate's own table (``migrations_table``) runs against it.

Real PostgreSQL: the runner writes the declared table, takes golang-migrate's lock key for
that table, and a migration that alters the table works as in production.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from helpers import make_runner, query
from psycopg.conninfo import conninfo_to_dict

from pytest_migorch.deploy.session import Session


def _service(root: Path, declared: str | None) -> Path:
    """One service ``app`` whose first migration alters golang-migrate's default table."""
    migrations = root / "app" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "000001_note.up.sql").write_text(
        "ALTER TABLE schema_migrations ADD COLUMN note text;\n")
    (migrations / "000001_note.down.sql").write_text(
        "ALTER TABLE schema_migrations DROP COLUMN note;\n")
    doc: dict[str, Any] = {"migrations": {"000001": {
        "description": "a note on golang-migrate's table", "depends_on": [],
        "affects_tables": ["schema_migrations"], "risk_level": "low",
        "estimated_duration": "1s"}}}
    if declared is not None:
        doc["migrations_table"] = declared
    (migrations / "dependencies.json").write_text(json.dumps(doc))
    return root


def _key(db: str, schema: str, table: str) -> int:
    """golang-migrate's lock id, computed independently of migorch."""
    return zlib.crc32(f"{schema}\0{table}\0/{db}".encode()) * 1486364155 % 2**32


def test_declared_table_is_written_and_altered_by_the_migration(
        tmp_path: Path, fresh_db: str) -> None:
    root = _service(tmp_path, "public.schema_migrations")
    make_runner(root, fresh_db).up(["app"], "default")
    assert query(fresh_db, "SELECT version, dirty, note FROM public.schema_migrations") \
        == [(1, False, None)]
    assert query(fresh_db, "SELECT to_regclass('public.app_schema_migrations')") == [(None,)]


def test_unqualified_declared_table_is_in_public(tmp_path: Path, fresh_db: str) -> None:
    root = _service(tmp_path, "schema_migrations")
    make_runner(root, fresh_db).up(["app"], "default")
    assert query(fresh_db, "SELECT version FROM public.schema_migrations") == [(1,)]


def test_lock_key_follows_the_declared_table(tmp_path: Path, fresh_db: str) -> None:
    runner = make_runner(_service(tmp_path, "schema_migrations"), fresh_db)
    db = conninfo_to_dict(fresh_db)["dbname"]
    with runner._session() as session:
        assert isinstance(session, Session)
        keys = {lock.key for lock in session.locks_for("app")}
        assert _key(str(db), "public", "schema_migrations") in keys
        assert session.tracking("app").gm_table == "schema_migrations"


def test_undeclared_keeps_the_default_table_and_key(tmp_path: Path, fresh_db: str) -> None:
    migrations = tmp_path / "app" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "000001_t.up.sql").write_text("CREATE TABLE app.t (id int);\n")
    (migrations / "000001_t.down.sql").write_text("DROP TABLE app.t;\n")
    (migrations / "dependencies.json").write_text(json.dumps({"migrations": {"000001": {
        "description": "t", "depends_on": [], "affects_tables": ["app.t"],
        "risk_level": "low", "estimated_duration": "1s"}}}))
    runner = make_runner(tmp_path, fresh_db)
    runner.up(["app"], "default")
    assert query(fresh_db, "SELECT version FROM public.app_schema_migrations") == [(1,)]
    db = conninfo_to_dict(fresh_db)["dbname"]
    with runner._session() as session:
        keys = {lock.key for lock in session.locks_for("app")}
    assert _key(str(db), "public", "app_schema_migrations") in keys
