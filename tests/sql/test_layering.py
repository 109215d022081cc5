"""Only the sql/ layer imports sqlglot (and pglast): every other layer sees plain facts."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_migorch"
PARSERS = ("sqlglot", "pglast")


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_sql_layer_imports_the_sql_parsers() -> None:
    offenders = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.parent.name != "sql" and _imported_roots(path) & set(PARSERS))
    assert offenders == []


def test_the_facts_vocabulary_needs_no_parser() -> None:
    """checks/ and the recognisers agree on facts.py, which must stay importable without
    sqlglot (the deploy plan imports it late, the rules only read it)."""
    for name in ("facts.py", "cursor.py", "split.py", "token_recognisers.py"):
        assert not _imported_roots(PACKAGE / "sql" / name) & set(PARSERS), name
