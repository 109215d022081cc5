"""The ``migorch`` command: translates arguments, calls the core, presents results."""

from __future__ import annotations

from pytest_migorch.cli.main import main

__all__ = ["main"]
