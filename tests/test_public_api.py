"""The package's public surface stays small, lazy and correct."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import pytest_migorch

#: Public name -> the module that defines it (the test's own copy, so a wrong mapping fails).
DEFINED_IN = {
    "load_project": "pytest_migorch.project.validation",
    "validate_project": "pytest_migorch.project.validation",
    "ValidationResult": "pytest_migorch.project.validation",
    "ProjectGraph": "pytest_migorch.project.graph",
    "Finding": "pytest_migorch.findings",
    "Rule": "pytest_migorch.findings",
    "Severity": "pytest_migorch.findings",
    "MigorchError": "pytest_migorch.errors",
    "RoundTrip": "pytest_migorch.roundtrip.engine",
    "apply_migrations": "pytest_migorch.roundtrip.applying",
    "start_server": "pytest_migorch.postgres.servers.chain",
    "ServerOptions": "pytest_migorch.postgres.servers.base",
    "PostgresServer": "pytest_migorch.postgres.servers.base",
    "Runner": "pytest_migorch.deploy.runner",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert sorted(pytest_migorch.__all__) == sorted(["__version__", *DEFINED_IN])
    assert dir(pytest_migorch) == sorted(pytest_migorch.__all__)


@pytest.mark.parametrize("name", sorted(DEFINED_IN))
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    module = importlib.import_module(DEFINED_IN[name])
    public = getattr(pytest_migorch, name)
    assert public is getattr(module, name)
    assert public.__module__ == module.__name__  # defined there, not merely re-exported


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="not_a_thing"):
        pytest_migorch.not_a_thing  # noqa: B018


def _plugin_entry_point() -> str:
    """The module pytest really imports: the ``pytest11`` entry point of the installed package."""
    found = [ep for ep in entry_points(group="pytest11") if ep.dist is not None
             and ep.dist.metadata["Name"] == "pytest-migorch"]
    assert [ep.name for ep in found] == ["migorch"]
    return found[0].value


def test_the_installed_entry_point_is_the_plugin_module() -> None:
    module = importlib.import_module(_plugin_entry_point())
    assert module.__name__ == "pytest_migorch.pytest_plugin.plugin"
    assert callable(module.pytest_addoption) and callable(module.pytest_configure)


def test_importing_the_package_and_its_plugin_loads_no_heavy_dependency() -> None:
    code = (f"import sys, importlib, pytest_migorch; importlib.import_module("
            f"{_plugin_entry_point()!r}); "
            "print(sorted(m for m in ('psycopg', 'sqlglot', 'networkx', 'jsonschema') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
