"""One frozen settings object for the plugin, built from pytest options or CLI arguments.

The core only ever sees :class:`MigorchSettings`, never pytest's config or argparse's namespace,
so both front ends resolve "command line, then ini file, then default" in one place each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_migorch.pytest_plugin.sharding import ShardSpec

__all__ = ["MigorchSettings", "PROVIDERS", "DSN_ENV_VAR"]

# The same values as :mod:`pytest_migorch.postgres.servers` (a test keeps them equal), spelled
# out here because the plugin's options need them in every pytest session, where importing the
# server code (psycopg and all) would cost every user of pytest, not only ours.
#: How the test PostgreSQL may be found.
PROVIDERS = ("auto", "dsn", "local", "docker")
#: The environment variable that names an explicit PostgreSQL server.
DSN_ENV_VAR = "MIGORCH_TEST_DATABASE_URL"


@dataclass(frozen=True)
class MigorchSettings:
    """What the user asked pytest-migorch to do in this session."""

    roots: tuple[Path, ...] = ()
    #: Only static checks; no database is started.
    no_db: bool = False
    #: Limit generated tests to these environments (empty: every environment).
    environments: tuple[str, ...] = ()
    #: Warnings fail the checks too.
    strict: bool = False
    #: A down that leaves a table's columns in another order is an error, not a warning (DB010).
    strict_column_order: bool = False
    #: Rows in the tables before each up of the round-trip, and the lock probe (DB011 to DB015);
    #: on unless ``--migorch-no-seed-data`` (or ini ``migorch_seed_data = false``).
    seed_data: bool = True
    #: An explicit PostgreSQL server for database tests (never printed with its password).
    dsn: str | None = None
    provider: str = "auto"
    pg_bindir: Path | None = None
    #: Fail database tests when no server can be had, instead of skipping them.
    require_db: bool = False
    #: A git revision; released migrations edited since it are integrity errors.
    base_ref: str | None = None
    #: With ``base_ref``: database tests only for services the change touches and their dependents.
    changed_only: bool = False
    #: Where to write a GitLab Code Quality report / a SARIF 2.1.0 report.
    codequality_path: Path | None = None
    sarif_path: Path | None = None
    #: A baseline file (None: ``migorch-baseline.json`` beside each root, when present).
    baseline_path: Path | None = None
    #: Show every finding: no selection by ``base_ref`` or baseline.
    all_findings: bool = False
    #: Where to write the Markdown report of the change.
    markdown_path: Path | None = None
    #: Where to write the HTML report (:mod:`pytest_migorch.reports.html`).
    html_path: Path | None = None
    #: Run only this share of the items (``--migorch-shard K/N``; :mod:`.sharding`).
    shard: ShardSpec | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def wants_environment(self, name: str) -> bool:
        return not self.environments or name in self.environments
