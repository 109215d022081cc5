"""A transactional file runs as one query, and a failure is still the statement-by-statement
path's: the first statement that fails, at its line, whatever PostgreSQL's one query said."""

from __future__ import annotations

from pathlib import Path

from test_seeding import make, run

from pytest_migorch.postgres.servers import PostgresServer

NULL_NAME = "INSERT INTO parent (name) VALUES (NULL);"


def _failure(server: PostgresServer, root: Path) -> tuple[str, int, str]:
    [finding] = run(server, root, seed_data=False)[2].findings  # type: ignore[attr-defined]
    return finding.code, finding.line, finding.message


def test_an_error_without_position_names_its_statement(pg_server: PostgresServer,
                                                       tmp_path: Path) -> None:
    root = make(tmp_path, f"SELECT 1;\nSELECT 2;\n{NULL_NAME}", "SELECT 1;")
    code, line, message = _failure(pg_server, root)
    assert (code, line) == ("DB001", 3)
    assert "null value" in message


def test_a_later_syntax_error_does_not_hide_an_earlier_failure(pg_server: PostgresServer,
                                                               tmp_path: Path) -> None:
    """PostgreSQL parses the whole query first; one by one, line 2 fails before line 3."""
    root = make(tmp_path, f"SELECT 1;\n{NULL_NAME}\nSELECT FROM WHERE;", "SELECT 1;")
    code, line, message = _failure(pg_server, root)
    assert (code, line) == ("DB001", 2)
    assert "null value" in message

