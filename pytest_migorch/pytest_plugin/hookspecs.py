"""Hooks that conftest files and other plugins implement to add their own migration checks.

Registered through ``pytest_addhooks``. Each returns findings (see :mod:`pytest_migorch.findings`);
they are shown in the generated ``custom`` item of the service or migration they concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_migorch.findings import Finding
    from pytest_migorch.model import Migration, Project, Service


@pytest.hookspec
def pytest_migorch_check_service(service: Service, project: Project) -> list[Finding] | None:
    """Return extra findings about one service (its files, configuration, graph)."""


@pytest.hookspec
def pytest_migorch_check_migration(
    migration: Migration, service: Service, project: Project
) -> list[Finding] | None:
    """Return extra findings about one migration (e.g. a team's own SQL conventions)."""
