"""``[tool.migorch]`` in the pyproject.toml above a services root: settings every front end reads.

A team declares its check modules (``checks``) and its migration templates (``templates_dir``)
once, next to the code, so ``migorch validate``, the pytest plugin, the pre-commit hook and the
deploy runner all see the same ones. The nearest pyproject.toml with a ``[tool.migorch]`` table,
from the services root upwards, is used; without one every setting has its default.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_migorch.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ToolSettings", "find_tool_settings"]

FILE_NAME = "pyproject.toml"


@dataclass(frozen=True)
class ToolSettings:
    """The ``[tool.migorch]`` table and the file it came from (None: there is none)."""

    file: Path | None = None
    checks: tuple[str, ...] = ()
    templates_dir: Path | None = None

    @classmethod
    def from_table(cls, file: Path, table: dict[str, Any]) -> ToolSettings:
        checks = table.get("checks", [])
        if not isinstance(checks, list) or not all(isinstance(c, str) and c for c in checks):
            raise ConfigurationError(
                f"{file}: [tool.migorch] checks must be a list of module names, e.g. "
                '["myteam.migration_checks"]')
        templates = table.get("templates_dir")
        if templates is not None and not isinstance(templates, str):
            raise ConfigurationError(
                f"{file}: [tool.migorch] templates_dir must be a directory path (a string)")
        return cls(file=file, checks=tuple(checks),
                   templates_dir=(file.parent / templates) if templates else None)


def find_tool_settings(root: Path) -> ToolSettings:
    """The settings of the nearest pyproject.toml with ``[tool.migorch]`` at or above ``root``."""
    start = Path(root).resolve()
    for directory in (start, *start.parents):
        candidate = directory / FILE_NAME
        if not candidate.is_file():
            continue
        try:
            document = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"{candidate}: cannot read it as TOML: {exc}") from exc
        table = document.get("tool", {}).get("migorch")
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigurationError(f"{candidate}: [tool.migorch] must be a table")
        return ToolSettings.from_table(candidate, table)
    return ToolSettings()
