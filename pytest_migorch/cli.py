"""The ``migorch`` command: argument parsing and printing only; the work happens in the core.

Exit codes (SPEC section 5): 0 success, including nothing to do; 1 a check or a migration
failed; 2 bad usage or configuration. Errors go to stderr; ``--json`` output goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .errors import MigorchError, UsageError
from .reporting import render_json, render_text, summary_line
from .validation import load_project, validate_project

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
    validate.set_defaults(handler=cmd_validate)
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
    result = validate_project(
        project, strict=args.strict, services=services, analyser=_default_analyser()
    )
    if getattr(args, "json", False):
        _print_json(render_json(result.findings, root=root, services=services))
    else:
        if result.findings:
            print(render_text(result.findings))
        print(summary_line(result.findings, len(services)), file=sys.stderr)
    return 1 if result.errors else 0


def _default_analyser() -> Any:
    """The SQL analyser used by ``validate`` (None until the SQL analysis is available)."""
    return None


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "warning").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting so tests can call it in-process."""
    _configure_logging()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code or 0)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MigorchError as exc:
        if getattr(args, "json", False):
            _print_json({"ok": False, "error": str(exc), "exit_code": exc.exit_code})
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
