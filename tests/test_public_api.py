"""The package's public surface stays small, lazy and correct."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_migorch


def test_every_public_name_resolves_to_what_its_module_defines() -> None:
    for name in pytest_migorch.__all__:
        assert getattr(pytest_migorch, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="not_a_thing"):
        pytest_migorch.not_a_thing  # noqa: B018


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    code = ("import sys, pytest_migorch; "
            "print(sorted(m for m in ('psycopg', 'sqlglot', 'networkx', 'jsonschema') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
