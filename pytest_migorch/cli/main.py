"""The ``migorch`` command: argument parsing and printing only; the work happens in the core.

Exit codes (SPEC section 5): 0 success, including nothing to do; 1 a check or a migration
failed; 2 bad usage or configuration. Errors go to stderr; ``--json`` output goes to stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Sequence

from pytest_migorch import __version__
from pytest_migorch.checks.migration import migration_analyser
from pytest_migorch.cli.squash import add_squash_command
from pytest_migorch.deploy.applying import NullReporter
from pytest_migorch.deploy.planning import format_seconds
from pytest_migorch.deploy.runner import DEFAULT_LOCK_TIMEOUT, Runner, RunResult
from pytest_migorch.errors import MigorchError, UsageError
from pytest_migorch.postgres.connection import SecretFilter, resolve_settings
from pytest_migorch.project.scaffold import create_migration
from pytest_migorch.project.validation import load_project, validate_project
from pytest_migorch.reports.drawing import FORMATS, build_drawing, render
from pytest_migorch.reports.text import render_json, render_text, summary_line
from pytest_migorch.sql.analysis import AnalysisCache
from pytest_migorch.sql.store import SqliteStore
from pytest_migorch.vcs.integrity import check_against_base

if TYPE_CHECKING:
    from pytest_migorch.deploy.applying import StepOutcome
    from pytest_migorch.deploy.planning import Plan, PlanStep

__all__ = ["main", "build_parser"]

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


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
        "migration failed, 2 bad usage or configuration. LOG_LEVEL=debug turns on debug logs.",
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
                          "migration that existed there is an error")
    validate.add_argument("--no-cache", action="store_true",
                          help="analyse every file again instead of reusing results cached by "
                          "content ($MIGORCH_CACHE_DIR or ~/.cache/pytest-migorch)")
    validate.set_defaults(handler=cmd_validate)
    add_runner_commands(commands)
    add_squash_command(commands, _add_common)
    return parser


def _root(args: argparse.Namespace) -> Path:
    root = getattr(args, "root", None)
    if root is None:
        root = Path(os.environ.get("MIGORCH_ROOT", "services"))
    return Path(root)


def selected_services(args: argparse.Namespace, available: Sequence[str]) -> list[str]:
    """The services a command works on: one named service, or every one with ``--all``."""
    if args.service and args.all:
        raise UsageError("name a service or pass --all, not both")
    if args.service:
        if args.service not in available:
            known = ", ".join(sorted(available)) or "none"
            raise UsageError(f"unknown service {args.service!r}; services under the root: {known}")
        return [args.service]
    if args.all or not getattr(args, "_service_required", False):
        return sorted(available)
    raise UsageError("name a service or pass --all")


def cmd_validate(args: argparse.Namespace) -> int:
    root = _root(args)
    project = load_project(root)
    services = selected_services(args, list(project.services))
    base = args.base
    result = validate_project(
        project, strict=args.strict, services=services,
        analyser=migration_analyser(_analysis_cache(args)),
        checks=[lambda project: check_against_base(project, base)] if base else [])
    if getattr(args, "json", False):
        _print_json(render_json(result.findings, root=root, services=services))
    else:
        if result.findings:
            print(render_text(result.findings))
        print(summary_line(result.findings, len(services)), file=sys.stderr)
    return 1 if result.errors else 0


# --- deploy runner commands (SPEC section 5; docs/runner.md) ------------------------------------


def _add_connection(parser: argparse.ArgumentParser, *, lock: bool = True) -> None:
    parser.add_argument(
        "--database-url", metavar="URL",
        help="postgres://user:password@host:port/dbname (default: $DATABASE_URL, else the "
        "DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, DB_SSL_MODE variables)",
    )
    parser.add_argument("--env", metavar="NAME",
                        help="environment declared in environments.json (default: $APP_ENV)")
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
    """``init``, ``up``, ``down``, ``status``, ``list``, ``force``, ``graph`` and ``new``."""
    init = commands.add_parser(
        "init", help="create the tracking tables and adopt golang-migrate's records",
        description="Create each service's schema, its migration_executions and history "
        "tables and golang-migrate's table. Base migrations that golang-migrate's table "
        "records as applied are recorded as completed without running anything.",
    )
    _add_common(init)
    _add_service_selection(init, required=True)
    _add_connection(init)
    init.set_defaults(handler=cmd_init)

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
    up.add_argument("--dry-run", action="store_true",
                    help="show the plan and the SQL; change nothing")
    up.add_argument("--allow-drift", action="store_true",
                    help="run even though applied files changed since they were applied")
    up.add_argument("--yes", "--allow-high-risk", dest="yes", action="store_true",
                    help="confirm high-risk migrations in a protected environment")
    up.set_defaults(handler=cmd_up)

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
    down.add_argument("--cascade", action="store_true",
                      help="also roll back applied dependents in any service (dependents first)")
    down.add_argument("--dry-run", action="store_true",
                      help="show the plan and the SQL; change nothing")
    down.add_argument("--yes", action="store_true",
                      help="confirm a rollback in a protected environment")
    down.set_defaults(handler=cmd_down)

    for name, help_text, handler in (
        ("status", "state, pending work, drift, dirty state and the last runs", cmd_status),
        ("list", "every migration with its state, risk and estimate", cmd_list),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text[0].upper()
                                      + help_text[1:] + " (read-only; takes no lock).")
        _add_common(command)
        _add_service_selection(command, required=True)
        _add_connection(command, lock=False)
        command.set_defaults(handler=handler)

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
    force.set_defaults(handler=cmd_force)

    graph = commands.add_parser(
        "graph", help="draw the dependency graph (Graphviz dot or Mermaid)",
        description="Print the dependency graph of one service or all. An arrow a -> b means "
        "b depends on a. No database needed.",
    )
    _add_common(graph)
    _add_service_selection(graph, required=False)
    graph.add_argument("--format", choices=FORMATS, default="dot")
    graph.add_argument("--env", metavar="NAME",
                       help="only the migrations of this environment (default: all)")
    graph.set_defaults(handler=cmd_graph)

    new = commands.add_parser(
        "new", help="create the next migration pair and its metadata entry",
        description="Create <version>_<name>.up.sql and .down.sql (version zero-padded like "
        "the service's others, 6 digits by default), add its entry to dependencies.json and, "
        "with --env, list it in environments.json.",
    )
    _add_common(new)
    new.add_argument("service")
    new.add_argument("name", help="what it does, e.g. add_user_email")
    new.add_argument("--env", metavar="NAME", help="an environment-only migration")
    new.add_argument("--depends-on", nargs="+", default=[], metavar="DEP",
                     help="versions it depends on: 000001 or other-service:000002")
    new.add_argument("--description", help="the description (default: from the name)")
    new.set_defaults(handler=cmd_new)


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _runner(args: argparse.Namespace, project: Any, reporter: Any) -> Runner:
    settings = resolve_settings(args.database_url, os.environ)
    return Runner(project, settings, reporter=reporter,
                  lock_timeout=getattr(args, "lock_timeout", DEFAULT_LOCK_TIMEOUT),
                  analysis_cache=_analysis_cache(args))


def _analysis_cache(args: argparse.Namespace) -> AnalysisCache:
    """SQL analyses by file content, kept between runs unless ``--no-cache`` says otherwise."""
    store = None if getattr(args, "no_cache", False) else args.analysis_store
    return AnalysisCache(store)


class _TextReporter:
    """Plain lines, or a live progress line on a terminal."""

    def __init__(self, stream: IO[str], root: Path) -> None:
        self.stream = stream
        self.root = root
        self.live = stream.isatty()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        self._line(f"note: {message}")

    def plan(self, plan: Plan) -> None:
        self._line(plan.render(self.root))

    def step_started(self, step: PlanStep, index: int, total: int) -> None:
        verb = "applying" if step.direction == "up" else "rolling back"
        head = f"[{index}/{total}] {verb} {step.label}"
        if not self.live:
            self._line(f"{head} (estimate {step.estimated_duration or '?'})")
            return
        self._stop.clear()
        began = time.monotonic()

        def tick() -> None:
            while not self._stop.wait(0.2):
                elapsed = time.monotonic() - began
                estimate = step.estimated_seconds
                bar = ""
                if estimate > 0:
                    filled = min(int(20 * elapsed / estimate), 20)
                    bar = " [" + "#" * filled + "-" * (20 - filled) + "]"
                self.stream.write(f"\r\033[K{head} {format_seconds(elapsed)} / estimate "
                                  f"{step.estimated_duration or '?'}{bar}")
                self.stream.flush()

        self._ticker = threading.Thread(target=tick, daemon=True)
        self._ticker.start()

    def step_finished(self, outcome: StepOutcome, index: int, total: int) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            self.stream.write("\r\033[K")
        step = outcome.step
        estimate = f" (estimate {step.estimated_duration})" if step.estimated_duration else ""
        status = outcome.status.replace("_", " ")
        self._line(f"[{index}/{total}] {status} {step.label} in "
                   f"{format_seconds(outcome.seconds)}{estimate}")


def _reporter(args: argparse.Namespace) -> Any:
    return NullReporter() if _wants_json(args) else _TextReporter(sys.stdout, _root(args))


def _finish(args: argparse.Namespace, result: RunResult) -> int:
    if _wants_json(args):
        _print_json(result.to_json(_root(args)))
        return 0
    if result.sql:
        for step, text in result.sql:
            print(f"\n-- {step.direction}: {step.label} ({step.file})")
            print(text.rstrip())
    if result.dry_run:
        print("\nDry run: nothing was changed.")
    for change in result.changes:
        print(f"changed: {change}")
    if result.plan is not None and not result.dry_run and result.outcomes:
        took = sum(o.seconds for o in result.outcomes)
        verb = "applied" if result.plan.direction == "up" else "rolled back"
        print(f"Done: {verb} {len(result.outcomes)} migration(s) in {format_seconds(took)} "
              f"(estimated {format_seconds(result.plan.total_seconds)}).")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    project = load_project(_root(args))
    services = selected_services(args, list(project.services))
    return _finish(args, _runner(args, project, _reporter(args)).init(services, args.env))


def cmd_up(args: argparse.Namespace) -> int:
    project = load_project(_root(args))
    services = selected_services(args, list(project.services))
    result = _runner(args, project, _reporter(args)).up(
        services, args.env, count=args.count, dry_run=args.dry_run,
        allow_drift=args.allow_drift, allow_high_risk=args.yes,
    )
    return _finish(args, result)


def cmd_down(args: argparse.Namespace) -> int:
    project = load_project(_root(args))
    service = selected_services(argparse.Namespace(service=args.service, all=False),
                                list(project.services))[0]
    result = _runner(args, project, _reporter(args)).down(
        service, args.env, steps=args.steps, version=args.target_version,
        cascade=args.cascade, dry_run=args.dry_run, confirmed=args.yes,
    )
    return _finish(args, result)


def cmd_force(args: argparse.Namespace) -> int:
    project = load_project(_root(args))
    service = selected_services(argparse.Namespace(service=args.service, all=False),
                                list(project.services))[0]
    result = _runner(args, project, _reporter(args)).force(service, args.version, args.env)
    return _finish(args, result)


def _reports(args: argparse.Namespace) -> tuple[list[Any], str]:
    project = load_project(_root(args))
    services = selected_services(args, list(project.services))
    runner = _runner(args, project, NullReporter())
    reports = runner.status(services, args.env)
    env = reports[0].state.environment if reports else ""
    return reports, env


def cmd_status(args: argparse.Namespace) -> int:
    reports, env = _reports(args)
    problems = any(r.has_problems for r in reports)
    if _wants_json(args):
        _print_json({"ok": not problems, "command": "status", "environment": env,
                     "services": [r.to_json(_root(args)) for r in reports]})
    else:
        print("\n\n".join(r.render_status() for r in reports))
    return 1 if problems else 0


def cmd_list(args: argparse.Namespace) -> int:
    reports, env = _reports(args)
    root = _root(args)
    if _wants_json(args):
        _print_json({"ok": True, "command": "list", "environment": env,
                     "services": [{"service": r.name, "environment": env,
                                   "migrations": r.migration_rows(root)} for r in reports]})
    else:
        print("\n\n".join(r.render_list(root) for r in reports))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    project = load_project(_root(args))
    services = selected_services(args, list(project.services))
    if args.env is not None:
        from pytest_migorch.deploy.planning import resolve_environment

        resolve_environment(project, services, args.env)
    drawing = build_drawing(project, services, args.env)
    text = render(drawing, args.format)
    if _wants_json(args):
        _print_json({"ok": True, "command": "graph", "format": args.format, "graph": text,
                     **drawing.to_json()})
    else:
        sys.stdout.write(text)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    project = load_project(_root(args))
    created = create_migration(project, args.service, args.name, environment=args.env,
                               depends_on=args.depends_on, description=args.description)
    if _wants_json(args):
        _print_json({"ok": True, "command": "new", **created.to_json()})
    else:
        for path in (created.up, created.down):
            print(f"created {path}")
        for path in created.changed:
            print(f"updated {path}")
        for note in created.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0



def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "warning").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # no password in any log line, debug included
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting so tests can call it in-process."""
    for stream in (sys.stdout, sys.stderr):
        # File names need not be UTF-8; print them escaped rather than die on them.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    _configure_logging()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code or 0)
    handler: Handler = args.handler
    try:
        # Opened on first use and committed when the command ends.
        with SqliteStore() as args.analysis_store:
            return handler(args)
    except MigorchError as exc:
        if getattr(args, "json", False):
            partial = getattr(exc, "result", None)  # the runner's partial result, if it started
            _print_json(partial.to_json(_root(args)) if partial is not None
                        else {"ok": False, "error": str(exc), "exit_code": exc.exit_code})
        print(f"migorch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migorch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not our failure to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
