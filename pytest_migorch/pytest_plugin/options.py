"""The plugin's options, declared once, and their resolution into :class:`MigorchSettings`.

Each option is one row: its command-line flag, its ``dest`` (which is also the name of its ini
twin), the ini ``type`` and one help text used for both. "Command line, then ini file, then
default" is resolved here and nowhere else. Only pytest is imported: this runs in every pytest
session of every environment the package is installed in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_migorch.pytest_plugin.settings import DSN_ENV_VAR, PROVIDERS, MigorchSettings
from pytest_migorch.pytest_plugin.sharding import ShardSpec, parse_shard

__all__ = ["Option", "OPTIONS", "add_options", "option_value", "is_enabled", "build_settings"]


@dataclass(frozen=True)
class Option:
    """One plugin option: a long flag and its ini twin (named ``dest``) with one help text."""

    flag: str
    dest: str
    #: The ini type: "bool" flags are ``store_true``, "linelist"/"paths" flags repeat.
    ini_type: str
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    ini_default: Any = ""

    def add_to(self, group: pytest.OptionGroup, parser: pytest.Parser) -> None:
        kwargs: dict[str, Any] = {"dest": self.dest, "default": None, "help": self.help}
        if self.ini_type == "bool":
            kwargs["action"] = "store_true"
        elif self.ini_type in ("linelist", "paths"):
            kwargs.update(action="append", metavar=self.metavar)
        else:
            kwargs["metavar"] = self.metavar
        if self.choices is not None:
            kwargs["choices"] = self.choices
        group.addoption(self.flag, **kwargs)
        parser.addini(self.dest, type=self.ini_type,  # type: ignore[arg-type]
                      default=self.ini_default, help=self.help)


OPTIONS: tuple[Option, ...] = (
    Option("--migorch", "migorch_paths", "paths", metavar="ROOT", ini_default=[],
           help="generate migration tests for every service under ROOT (repeatable)"),
    Option("--migorch-no-db", "migorch_no_db", "bool", ini_default=False,
           help="run only the static checks; start no database"),
    Option("--migorch-env", "migorch_envs", "linelist", metavar="NAME", ini_default=[],
           help="limit database tests to this environment (repeatable; default: all)"),
    Option("--migorch-strict", "migorch_strict", "bool", ini_default=False,
           help="warnings fail the migration checks too"),
    Option("--migorch-strict-column-order", "migorch_strict_column_order", "bool",
           ini_default=False, help="a down that leaves a table's columns in another order is "
           "an error (DB010), not a warning"),
    Option("--migorch-no-seed-data", "migorch_no_seed_data", "bool", ini_default=False,
           help="round-trip on empty tables: no generated rows (or migrations/testdata/"
           "<version>.sql) before each up, no lock-wait probe (DB011, DB012, DB014, DB015)"),
    Option("--migorch-seed-data", "migorch_seed_data", "bool", ini_default=True,
           help="rows in the tables before each up of the round-trip, and the lock-wait probe "
           "(the default; the ini `migorch_seed_data = false` turns them off)"),
    Option("--migorch-dsn", "migorch_dsn", "string", metavar="URL",
           help=f"PostgreSQL server for database tests (or ${DSN_ENV_VAR})"),
    Option("--migorch-provider", "migorch_provider", "string", choices=PROVIDERS,
           ini_default="auto", help="force how the test PostgreSQL is found: "
           f"{', '.join(PROVIDERS)} (default: auto)"),
    Option("--migorch-pg-bindir", "migorch_pg_bindir", "string", metavar="DIR",
           help="directory with PostgreSQL's initdb and postgres binaries"),
    Option("--migorch-require-db", "migorch_require_db", "bool", ini_default=False,
           help="fail database tests instead of skipping them when no PostgreSQL can be had"),
    Option("--migorch-base", "migorch_base", "string", metavar="REF",
           help="git revision of the last release: editing or deleting a migration that "
           "existed there is an error"),
    Option("--migorch-changed-only", "migorch_changed_only", "bool", ini_default=False,
           help="with --migorch-base: database tests only for changed services and the "
           "services that depend on them, per-migration checks only for changed services"),
    Option("--migorch-codequality", "migorch_codequality", "string", metavar="PATH",
           help="write a GitLab Code Quality report of all findings"),
    Option("--migorch-sarif", "migorch_sarif", "string", metavar="PATH",
           help="write a SARIF 2.1.0 report of all findings"),
    Option("--migorch-baseline", "migorch_baseline", "string", metavar="PATH",
           help="show only findings not recorded in this baseline file (default: "
           "migorch-baseline.json beside each root, when present; `migorch baseline` writes it)"),
    Option("--migorch-all-findings", "migorch_all_findings", "bool", ini_default=False,
           help="show every finding: no --migorch-base selection, no baseline"),
    Option("--migorch-markdown", "migorch_markdown", "string", metavar="PATH",
           help="write a Markdown report of the change (for a pull request comment)"),
    Option("--migorch-html", "migorch_html", "string", metavar="PATH",
           help="write a self-contained HTML report: migrations, findings, the graph and "
           "every generated test's outcome"),
    Option("--migorch-shard", "migorch_shard", "string", metavar="K/N",
           help="run only shard K of N (1-based; one CI matrix job each): round-trips stay "
           "whole, shards are balanced by the durations of the last runs"),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("migorch", "database migrations (pytest-migorch)")
    for option in OPTIONS:
        option.add_to(group, parser)


def option_value(config: pytest.Config, dest: str) -> Any:
    """Command line first, then the ini file (whose declared default covers the rest)."""
    value = config.getoption(dest)
    return config.getini(dest) if value is None else value


def is_enabled(config: pytest.Config) -> bool:
    """Whether this session uses pytest-migorch at all: a ``--migorch`` root or the ini list."""
    return bool(config.getoption("migorch_paths") or config.getini("migorch_paths"))


def _path(config: pytest.Config, dest: str) -> Path | None:
    value = option_value(config, dest)
    return Path(config.invocation_params.dir, value) if value else None


def _seed_data(config: pytest.Config) -> bool:
    """Seeding is on unless turned off: ``--migorch-no-seed-data`` (or its ini twin) wins, then
    ``--migorch-seed-data`` on the command line, then the ini ``migorch_seed_data``."""
    if option_value(config, "migorch_no_seed_data"):
        return False
    return bool(config.getoption("migorch_seed_data") or config.getini("migorch_seed_data"))


def _shard(config: pytest.Config) -> ShardSpec | None:
    value = option_value(config, "migorch_shard")
    if not value:
        return None
    try:
        shard = parse_shard(str(value))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if not is_enabled(config):
        raise pytest.UsageError(f"--migorch-shard {shard} needs --migorch ROOT (or the "
                                "migorch_paths ini setting): it shares out generated tests")
    return shard


def build_settings(config: pytest.Config) -> MigorchSettings:
    """Resolve command line, ini and environment into one frozen settings object."""
    cli_roots = config.getoption("migorch_paths")
    if cli_roots:
        roots = tuple(Path(config.invocation_params.dir, r).resolve() for r in cli_roots)
    else:
        roots = tuple(Path(p).resolve() for p in config.getini("migorch_paths"))
    provider = option_value(config, "migorch_provider") or "auto"
    if provider not in PROVIDERS:
        raise pytest.UsageError(
            f"migorch_provider = {provider!r} is not one of {', '.join(PROVIDERS)}"
        )
    for root in roots:
        if not root.is_dir():
            raise pytest.UsageError(f"--migorch {root}: not a directory")
    bindir = option_value(config, "migorch_pg_bindir")
    settings = MigorchSettings(
        roots=roots,
        no_db=bool(option_value(config, "migorch_no_db")),
        environments=tuple(option_value(config, "migorch_envs") or ()),
        strict=bool(option_value(config, "migorch_strict")),
        strict_column_order=bool(option_value(config, "migorch_strict_column_order")),
        seed_data=_seed_data(config),
        dsn=option_value(config, "migorch_dsn") or os.environ.get(DSN_ENV_VAR) or None,
        provider=provider,
        pg_bindir=Path(bindir) if bindir else None,
        require_db=bool(option_value(config, "migorch_require_db")),
        base_ref=option_value(config, "migorch_base") or None,
        changed_only=bool(option_value(config, "migorch_changed_only")),
        codequality_path=_path(config, "migorch_codequality"),
        sarif_path=_path(config, "migorch_sarif"),
        baseline_path=_path(config, "migorch_baseline"),
        all_findings=bool(option_value(config, "migorch_all_findings")),
        markdown_path=_path(config, "migorch_markdown"),
        html_path=_path(config, "migorch_html"),
        shard=_shard(config),
    )
    if settings.changed_only and not settings.base_ref:
        raise pytest.UsageError("--migorch-changed-only needs --migorch-base REF")
    if settings.baseline_path is not None and not settings.baseline_path.is_file():
        raise pytest.UsageError(f"--migorch-baseline {settings.baseline_path}: no such file "
                                "(write it with `migorch baseline`)")
    return settings
