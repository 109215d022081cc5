"""The plugin costs nothing until it is used (issue 10): a fresh interpreter runs pytest on a
one-test project and reports which modules it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_migorch.postgres.servers as servers
from pytest_migorch.pytest_plugin import settings
from pytest_migorch.pytest_plugin.options import OPTIONS

HEAVY = ("sqlglot", "networkx", "psycopg", "jsonschema", "pglast")
CORE = ("pytest_migorch.sql", "pytest_migorch.project", "pytest_migorch.postgres",
        "pytest_migorch.checks", "pytest_migorch.roundtrip", "pytest_migorch.deploy",
        "pytest_migorch.vcs", "pytest_migorch.reports", "pytest_migorch.pytest_plugin.collectors",
        "pytest_migorch.pytest_plugin.session", "pytest_migorch.pytest_plugin.ci_hooks")

LOADED = """
import json, sys, pytest
code = pytest.main(sys.argv[1:])
print(json.dumps({"exit": int(code), "modules": sorted(sys.modules)}))
"""


def modules_after_pytest(project: Path, *args: str) -> tuple[int, list[str]]:
    """Run pytest in a fresh interpreter (plugins autoloaded from the installed entry points)."""
    done = subprocess.run([sys.executable, "-c", LOADED, "-q", "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["exit"], report["modules"]


def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


@pytest.fixture
def one_test(tmp_path: Path) -> Path:
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    return tmp_path


def test_a_session_without_migorch_loads_no_core(one_test: Path) -> None:
    code, modules = modules_after_pytest(one_test)
    assert code == 0
    assert "pytest_migorch.pytest_plugin.plugin" in modules  # the entry point did load
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, CORE) == []


def test_a_session_with_migorch_loads_the_core(one_test: Path) -> None:
    (one_test / "services").mkdir()
    code, modules = modules_after_pytest(one_test, "--migorch", "services", "--migorch-no-db")
    assert code == 1  # a root without services fails its project item
    assert "pytest_migorch.pytest_plugin.session" in modules
    assert "pytest_migorch.pytest_plugin.ci_hooks" in modules


def test_an_ini_root_alone_enables_the_core(one_test: Path) -> None:
    (one_test / "services").mkdir()
    (one_test / "pytest.ini").write_text("[pytest]\nmigorch_paths = services\n")
    _, modules = modules_after_pytest(one_test, "--migorch-no-db")
    assert "pytest_migorch.pytest_plugin.session" in modules


def test_the_plugins_copies_of_server_constants_match_the_server_module() -> None:
    assert settings.PROVIDERS == servers.PROVIDERS
    assert settings.DSN_ENV_VAR == servers.DSN_ENV_VAR


def test_every_option_has_an_ini_twin_named_by_its_dest(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    for option in OPTIONS:
        assert option.dest.startswith("migorch_") and option.flag.startswith("--migorch")
        assert config.getoption(option.dest) is None, option.flag
        assert config.getini(option.dest) == option.ini_default, option.dest


def test_a_false_bool_in_the_ini_file_is_false(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmigorch_no_db = false\nmigorch_strict = true\n")
    config = pytester.parseconfig()
    from pytest_migorch.pytest_plugin.options import option_value

    assert option_value(config, "migorch_no_db") is False
    assert option_value(config, "migorch_strict") is True
