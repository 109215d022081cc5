"""Each ``migorch`` command loads only what it needs (issue 10): a fresh interpreter runs one
command in-process and reports which modules it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_migorch.cli import arguments
from pytest_migorch.deploy import runner
from pytest_migorch.reports import drawing

LOADED = """
import json, sys
from pytest_migorch.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


def modules_after(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-c", LOADED, *argv], capture_output=True,
                          text=True, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["exit"], report["modules"]


def loaded(modules: list[str], *prefixes: str) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_version_loads_no_core() -> None:
    code, modules = modules_after("--version")
    assert code == 0
    assert loaded(modules, "psycopg", "sqlglot", "networkx", "jsonschema") == []
    assert loaded(modules, "pytest_migorch.deploy", "pytest_migorch.postgres") == []


def test_validate_loads_no_psycopg(services: Path) -> None:
    code, modules = modules_after("validate", "--all", "--root", str(services))
    assert code == 0
    assert "pytest_migorch.project.validation" in modules  # it did validate
    assert loaded(modules, "psycopg", "pytest_migorch.postgres", "pytest_migorch.deploy") == []


@pytest.mark.parametrize("argv", [["up", "--help"], ["graph", "--help"], ["status", "--help"]])
def test_help_loads_no_command_code(argv: list[str]) -> None:
    code, modules = modules_after(*argv)
    assert code == 0
    assert loaded(modules, "psycopg", "pytest_migorch.reports", "pytest_migorch.project") == []


def test_the_up_plan_loads_no_drawing_or_scaffolding(services: Path, fresh_db: str) -> None:
    code, modules = modules_after("up", "--all", "--dry-run", "--env", "staging",
                                  "--root", str(services), "--database-url", fresh_db)
    assert code == 0
    assert "pytest_migorch.deploy.runner" in modules  # it did plan
    assert loaded(modules, "pytest_migorch.reports.drawing", "pytest_migorch.project.scaffold",
                  "pytest_migorch.pytest_plugin", "pytest") == []


def test_the_parsers_copies_of_core_constants_match_the_core() -> None:
    assert arguments.DEFAULT_LOCK_TIMEOUT == runner.DEFAULT_LOCK_TIMEOUT
    assert arguments.GRAPH_FORMATS == drawing.FORMATS


def test_a_plan_of_cached_analyses_loads_no_sqlglot(services: Path, fresh_db: str,
                                                    tmp_path: Path) -> None:
    # `migorch validate` keeps every analysis; the deploy after it reads them and never needs
    # sqlglot (about 0.1 s of imports); with an empty cache the same plan does need it
    plan = ["up", "--all", "--dry-run", "--env", "staging", "--root", str(services),
            "--database-url", fresh_db]

    def modules(cache: str, *argv: str) -> list[str]:
        env = {**os.environ, "MIGORCH_CACHE_DIR": str(tmp_path / cache)}
        done = subprocess.run([sys.executable, "-c", LOADED, *argv], capture_output=True,
                              text=True, check=False, env=env)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["exit"] == 0, done.stderr
        return list(report["modules"])

    assert "sqlglot" in modules("empty", *plan)
    modules("warm", "validate", "--all", "--root", str(services))
    cached = modules("warm", *plan)
    assert "pytest_migorch.checks.migration" in cached  # it did analyse the plan's steps
    assert loaded(cached, "sqlglot", "pytest_migorch.sql.ast_recognisers") == []


def test_an_up_with_nothing_to_do_loads_no_analysis_and_no_validator(
        services: Path, fresh_db: str, tmp_path: Path) -> None:
    # the fixed cost of every deploy: once the JSON files are known valid and everything is
    # applied, `up` needs neither the SQL analysis (pglast, sqlglot, the recognisers), nor
    # jsonschema, nor networkx
    up = ["up", "--all", "--env", "staging", "--yes", "--root", str(services),
          "--database-url", fresh_db]
    env = {**os.environ, "MIGORCH_CACHE_DIR": str(tmp_path / "cache")}

    def modules() -> tuple[int, list[str]]:
        done = subprocess.run([sys.executable, "-c", LOADED, *up], capture_output=True,
                              text=True, check=False, env=env)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        return report["exit"], list(report["modules"])

    first_code, first = modules()  # applies everything
    assert first_code == 0 and "pytest_migorch.sql.analysis" in first
    code, again = modules()
    assert code == 0
    assert "pytest_migorch.deploy.runner" in again  # it did check the database
    assert loaded(again, "pytest_migorch.sql.analysis", "pytest_migorch.sql.pg_parse",
                  "pytest_migorch.sql.token_recognisers", "pglast", "sqlglot", "jsonschema",
                  "networkx") == []
