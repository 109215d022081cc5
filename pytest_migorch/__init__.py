"""pytest-migorch: validate, test and deploy golang-migrate style migrations of many services."""

from __future__ import annotations

__version__ = "0.1.0"
