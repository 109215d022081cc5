"""Every key the plugin keeps in ``config.stash`` and on test reports, in one place.

Only pytest and type-checking imports here: the entry module reads these keys in sessions that
never load the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_migorch.pytest_plugin.settings import MigorchSettings

if TYPE_CHECKING:
    from pytest_migorch.pytest_plugin.collectors import LazyServer
    from pytest_migorch.sql.analysis import AnalysisCache

__all__ = ["SETTINGS_KEY", "SERVER_KEY", "ANALYSIS_CACHE_KEY", "FINDINGS_ATTRIBUTE"]

#: The session's resolved options (always set by ``pytest_configure``).
SETTINGS_KEY = pytest.StashKey[MigorchSettings]()
#: The session's PostgreSQL, started on first use (set once the core is active).
SERVER_KEY: pytest.StashKey[LazyServer] = pytest.StashKey()
#: SQL analyses shared by every generated item of the session (set once the core is active).
ANALYSIS_CACHE_KEY: pytest.StashKey[AnalysisCache] = pytest.StashKey()

#: The report attribute that carries an item's findings (as JSON, so it survives the trip from
#: pytest-xdist workers to the controller, where the CI reports are written).
FINDINGS_ATTRIBUTE = "migorch_findings"
