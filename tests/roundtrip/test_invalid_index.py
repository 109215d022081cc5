"""A concurrent index build that fails leaves an INVALID index: DB013 names it."""

from __future__ import annotations

from pathlib import Path

from test_seeding import make, run

from pytest_migorch.postgres.servers import PostgresServer


def test_failed_concurrent_unique_index_left_invalid_is_reported(pg_server: PostgresServer,
                                                                 tmp_path: Path) -> None:
    root = make(tmp_path, "INSERT INTO parent (name) VALUES ('dup1'), ('dup2');\n"
                "DO $$ BEGIN NULL; END $$;", "SELECT 1;")
    # the unique build over duplicate rows fails; IF NOT EXISTS lets the up "succeed" after
    up = root / "svc" / "migrations" / "000002_change.up.sql"
    up.write_text("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS child_parent\n"
                  "  ON child ((1));\n")
    (up.parent / "000002_change.down.sql").write_text("DROP INDEX CONCURRENTLY child_parent;\n")
    deps = up.parent / "dependencies.json"
    deps.write_text(deps.read_text().replace('"000002": {', '"000002": {"transactional": false,'))
    outcome = run(pg_server, root)[2]
    found = [f for f in outcome.findings if f.code in ("DB013", "DB011")]  # type: ignore
    assert found, outcome.findings  # type: ignore[attr-defined]
