"""Where migorch keeps what it caches between runs: one directory for every cache.

``$MIGORCH_CACHE_DIR`` when set (CI jobs point it at a cached path), else
``$XDG_CACHE_HOME/pytest-migorch`` (``~/.cache/pytest-migorch``). The analysis store
(:mod:`pytest_migorch.sql.store`) and the record of validated JSON files
(:mod:`pytest_migorch.project.json_validity`) live there, so one setting moves them all. A
core module (it imports nothing of ours) so that every layer, and ``migorch --help``, may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_directory"]


def cache_directory() -> Path:
    """The directory of migorch's caches (not created here)."""
    explicit = os.environ.get("MIGORCH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-migorch"
