"""The ``migorch`` command line: every command, option and help text, and nothing else.

Building the parser imports no command's code: each command names its handler in
:mod:`pytest_migorch.cli.commands`, which imports what that command needs when it runs, so
``migorch --version`` or ``migorch validate`` never loads psycopg and ``migorch up`` never loads
drawing or scaffolding code.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_migorch import __version__
from pytest_migorch.cli import commands as handlers
from pytest_migorch.cli.new import add_template_options
from pytest_migorch.cli.squash import add_squash_command

__all__ = ["build_parser", "DEFAULT_LOCK_TIMEOUT", "GRAPH_FORMATS"]

# Copies of core constants (a test keeps them equal) so that building the parser loads neither
# the runner (psycopg) nor the drawing code.
#: :data:`pytest_migorch.deploy.runner.DEFAULT_LOCK_TIMEOUT`, golang-migrate's 15 seconds.
DEFAULT_LOCK_TIMEOUT = 15.0
#: :data:`pytest_migorch.reports.drawing.FORMATS`.
GRAPH_FORMATS: tuple[str, ...] = ("dot", "mermaid")


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options every command accepts, so they may follow the command name."""
    parser.add_argument(
        "--root", type=Path, default=argparse.SUPPRESS,
        help="services root: the directory with one <service>/migrations/ folder per service "
        "(default: $MIGORCH_ROOT or ./services)",
    )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS,
        help="print machine-readable JSON on stdout (shape documented in docs/)",
    )


def _add_service_selection(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("service", nargs="?", help="the service (directory name under the root)")
    parser.add_argument("--all", action="store_true", help="every service under the root")
    parser.set_defaults(_service_required=required)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migorch",
        description="Validate, plan and apply golang-migrate style SQL migrations of many "
        "services, in dependency order, per environment.",
        epilog="Exit codes: 0 success (also when there is nothing to do), 1 a check or "
        "migration failed, 2 bad usage or configuration. LOG_LEVEL=debug (or "
        "MIGORCH_LOG_LEVEL=debug) logs the plan's resolution, each statement with its time, "
        "lock waits and recovery decisions to stderr, passwords masked.",
    )
    parser.add_argument("--version", action="version", version=f"migorch {__version__}")
    _add_common(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    validate = commands.add_parser(
        "validate", help="run every static check (no database needed)",
        description="Check file names and pairing, dependencies.json and environments.json, "
        "the dependency graph and the SQL of every migration. Prints compiler-style lines "
        "(path:line: severity CODE message) grouped per service.",
    )
    _add_common(validate)
    _add_service_selection(validate, required=False)
    validate.add_argument("--strict", action="store_true",
                          help="treat warnings (e.g. missing JSON files) as errors")
    validate.add_argument("--base", metavar="REF",
                          help="git revision of the last release: editing or deleting a "
                          "migration that existed there is an error, and findings are shown "
                          "only for new or changed migrations (the rest are counted)")
    validate.add_argument("--baseline", type=Path, metavar="PATH",
                          help="show only findings not recorded in this baseline file "
                          "(default: migorch-baseline.json beside the root, when present)")
    validate.add_argument("--all-findings", action="store_true",
                          help="show every finding, ignoring --base selection and the baseline")
    validate.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                          help="text (default), json (like --json) or a Markdown report of "
                          "the change for a pull request comment")
    validate.add_argument("--no-cache", action="store_true",
                          help="analyse every file again instead of reusing results cached by "
                          "content ($MIGORCH_CACHE_DIR or ~/.cache/pytest-migorch)")
    validate.set_defaults(handler=handlers.cmd_validate)
    _add_baseline(commands)
    add_runner_commands(commands)
    add_squash_command(commands, _add_common)
    return parser


def _add_baseline(commands: Any) -> None:
    baseline = commands.add_parser(
        "baseline", help="record the current findings so that later runs show only new ones",
        description="Write every current finding to migorch-baseline.json (beside the root by "
        "default). `migorch validate` and the pytest plugin then show only findings that are "
        "not in it and count the rest. Commit the file; shrink it as you fix findings.",
    )
    _add_common(baseline)
    baseline.add_argument("--output", type=Path, metavar="PATH",
                          help="where to write it (default: migorch-baseline.json beside the "
                          "root)")
    baseline.add_argument("--update", action="store_true",
                          help="only remove the entries that no longer occur; add nothing")
    baseline.add_argument("--no-cache", action="store_true",
                          help="analyse every file again instead of reusing cached results")
    baseline.set_defaults(handler=handlers.cmd_baseline)


def _add_connection(parser: argparse.ArgumentParser, *, lock: bool = True) -> None:
    parser.add_argument(
        "--database-url", metavar="URL",
        help="postgres://user:password@host:port/dbname (default: $DATABASE_URL, else the "
        "DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, DB_SSL_MODE variables)",
    )
    parser.add_argument("--env", metavar="NAME",
                        help="environment declared in environments.json (default: $APP_ENV)")
    parser.set_defaults(uses_database=True)  # main installs the password filter on its logs
    if lock:
        parser.add_argument(
            "--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
            help="wait at most this long for a service's migration lock (default: "
            f"{DEFAULT_LOCK_TIMEOUT:g}, like golang-migrate)",
        )


def _version_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number") from None


def add_runner_commands(commands: Any) -> None:
    """``init``, ``up``, ``down``, ``status``, ``list``, ``force``, ``graph``, ``new`` and
    ``report``."""
    for add in (_add_init, _add_up, _add_down, _add_reports, _add_force, _add_graph, _add_new,
                _add_report):
        add(commands)


def _add_init(commands: Any) -> None:
    init = commands.add_parser(
        "init", help="create the tracking tables and adopt golang-migrate's records",
        description="Create each service's schema, its migration_executions and history "
        "tables and golang-migrate's table. Base migrations that golang-migrate's table "
        "records as applied are recorded as completed without running anything.",
    )
    _add_common(init)
    _add_service_selection(init, required=True)
    _add_connection(init)
    init.set_defaults(handler=handlers.cmd_init)


def _add_up(commands: Any) -> None:
    up = commands.add_parser(
        "up", help="apply pending migrations in dependency order",
        description="Show the plan (risk, tables, estimated duration, total), then apply the "
        "pending migrations in resolved order. A protected environment (production by "
        "default) needs --yes for a plan with high-risk migrations.",
    )
    _add_common(up)
    _add_service_selection(up, required=True)
    _add_connection(up)
    up.add_argument("--count", type=int, metavar="N", help="apply only the first N pending")
    up.add_argument("--jobs", type=int, metavar="N", default=1,
                    help="apply migrations that do not depend on each other on up to N "
                    "connections at once (default 1: one after the other)")
    up.add_argument("--dry-run", action="store_true",
                    help="show the plan and the SQL; change nothing")
    up.add_argument("--allow-drift", action="store_true",
                    help="run even though applied files changed since they were applied")
    up.add_argument("--yes", "--allow-high-risk", dest="yes", action="store_true",
                    help="confirm high-risk migrations in a protected environment")
    up.add_argument("--no-hooks", action="store_true",
                    help="skip the environment's hooks (environments.json), with a warning")
    up.set_defaults(handler=handlers.cmd_up)


def _add_down(commands: Any) -> None:
    down = commands.add_parser(
        "down", help="roll back the newest applied migrations",
        description="Roll back, newest applied first (one by default). Refuses, naming them, "
        "when applied migrations of any service depend on what would be rolled back, unless "
        "--cascade; refuses irreversible migrations.",
    )
    _add_common(down)
    down.add_argument("service", help="the service to roll back")
    _add_connection(down)
    how = down.add_mutually_exclusive_group()
    how.add_argument("--steps", type=int, metavar="N", help="roll back the N newest (default 1)")
    how.add_argument("--version", type=_version_arg, metavar="V", dest="target_version",
                     help="roll back everything newer than version V (0: everything)")
    how.add_argument("--only", type=_version_arg, metavar="VERSION",
                     help="roll back exactly this applied migration, not the newer ones "
                     "(refused while applied migrations depend on it, unless --cascade)")
    down.add_argument("--cascade", action="store_true",
                      help="also roll back applied dependents in any service (dependents first)")
    down.add_argument("--dry-run", action="store_true",
                      help="show the plan and the SQL; change nothing")
    down.add_argument("--yes", action="store_true",
                      help="confirm a rollback in a protected environment")
    down.add_argument("--no-hooks", action="store_true",
                      help="skip the environment's hooks (environments.json), with a warning")
    down.set_defaults(handler=handlers.cmd_down)


def _add_reports(commands: Any) -> None:
    """``status`` and ``list``: read-only, no lock."""
    for name, help_text, handler in (
        ("status", "state, pending work, drift, dirty state and the last runs",
         handlers.cmd_status),
        ("list", "every migration with its state, risk and estimate", handlers.cmd_list),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text[0].upper()
                                      + help_text[1:] + " (read-only; takes no lock).")
        _add_common(command)
        _add_service_selection(command, required=True)
        _add_connection(command, lock=False)
        command.set_defaults(handler=handler)


def _add_force(commands: Any) -> None:
    force = commands.add_parser(
        "force", help="clear a dirty state after a manual fix (like golang-migrate's force)",
        description="Record the migration a failed or interrupted non-transactional run left "
        "half-done as applied (when its version <= VERSION) or not applied (otherwise), and "
        "rewrite golang-migrate's table clean. Without such a migration, golang-migrate's "
        "meaning: base migrations up to VERSION are recorded as applied, later ones as not.",
    )
    _add_common(force)
    force.add_argument("service")
    force.add_argument("version", type=_version_arg, help="a version, or -1 for none")
    _add_connection(force)
    force.set_defaults(handler=handlers.cmd_force)


def _add_graph(commands: Any) -> None:
    graph = commands.add_parser(
        "graph", help="draw the dependency graph (Graphviz dot or Mermaid)",
        description="Print the dependency graph of one service or all. An arrow a -> b means "
        "b depends on a. No database needed.",
    )
    _add_common(graph)
    _add_service_selection(graph, required=False)
    graph.add_argument("--format", choices=GRAPH_FORMATS, default="dot")
    graph.add_argument("--env", metavar="NAME",
                       help="only the migrations of this environment (default: all)")
    graph.set_defaults(handler=handlers.cmd_graph)


def _add_new(commands: Any) -> None:
    new = commands.add_parser(
        "new", help="create the next migration pair and its metadata entry",
        description="Create <version>_<name>.up.sql and .down.sql (version zero-padded like "
        "the service's others, 6 digits by default), add its entry to dependencies.json and, "
        "with --env, list it in environments.json.",
    )
    _add_common(new)
    new.add_argument("service", nargs="?")
    new.add_argument("name", nargs="?", help="what it does, e.g. add_user_email")
    new.add_argument("--env", metavar="NAME", help="an environment-only migration")
    new.add_argument("--depends-on", nargs="+", default=[], metavar="DEP",
                     help="versions it depends on: 000001 or other-service:000002")
    new.add_argument("--description", help="the description (default: from the name)")
    add_template_options(new)
    new.set_defaults(handler=handlers.cmd_new)


def _add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="write a self-contained HTML page of the migrations (a CI artifact)",
        description="Write one HTML file (no network needed to view it): per service and "
        "environment every migration in run order with its risk, tables, estimate and "
        "findings, and the dependency graph. With --database-url also the live state and the "
        "last runs (read-only; takes no lock).",
    )
    _add_common(report)
    _add_service_selection(report, required=False)
    report.add_argument("--html", type=Path, required=True, metavar="PATH",
                        help="where to write the page")
    report.add_argument("--database-url", metavar="URL",
                        help="also show the live state of this database (postgres://...)")
    report.add_argument("--env", metavar="NAME",
                        help="environment of the live state (default: $APP_ENV)")
    report.add_argument("--strict", action="store_true",
                        help="show warnings as errors, as `validate --strict` does")
    report.add_argument("--base", metavar="REF",
                        help="git revision of the last release, as for `validate --base`")
    report.add_argument("--no-cache", action="store_true",
                        help="analyse every file again instead of reusing cached results")
    report.set_defaults(handler=handlers.cmd_report, uses_database=True)
