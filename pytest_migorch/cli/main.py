"""The ``migorch`` command: parse, run one command, turn its outcome into an exit code.

Exit codes (SPEC section 5): 0 success, including nothing to do; 1 a check or a migration
failed; 2 bad usage or configuration. Errors go to stderr; ``--json`` output goes to stdout.
Output failures (``migorch up | head``) never change the outcome: see
:mod:`pytest_migorch.cli.output`. The options live in :mod:`pytest_migorch.cli.arguments`, the
commands in :mod:`pytest_migorch.cli.commands`.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from typing import Callable, Sequence

from pytest_migorch.cli.arguments import build_parser
from pytest_migorch.cli.commands import root_of
from pytest_migorch.cli.output import guarded_output, print_json
from pytest_migorch.errors import MigorchError
from pytest_migorch.sql.store import SqliteStore

__all__ = ["main", "build_parser"]

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def _configure_logging() -> None:
    """``MIGORCH_LOG_LEVEL``, else ``LOG_LEVEL`` (the design's name, which other tools of a
    deploy may share), else warnings only. Debug lines carry the time to the millisecond:
    they are read to find where a deploy waited."""
    name = os.environ.get("MIGORCH_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "warning"
    level = getattr(logging, name.strip().upper(), None)
    if not isinstance(level, int):
        level = logging.WARNING
    form = "%(levelname)s %(name)s: %(message)s"
    if level <= logging.DEBUG:
        form = "%(asctime)s.%(msecs)03d " + form
    logging.basicConfig(level=level, format=form, datefmt="%H:%M:%S", stream=sys.stderr)


def _hide_passwords_in_logs() -> None:
    """No password in any log line, debug included. Only commands that connect need it, and
    only they pay for importing the connection code (psycopg)."""
    from pytest_migorch.postgres.connection import SecretFilter

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting so tests can call it in-process."""
    for stream in (sys.stdout, sys.stderr):
        # File names need not be UTF-8; print them escaped rather than die on them.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    with guarded_output() as (out, err):
        code = _run(argv)
        if out.failure is not None:
            print(f"migorch: output to stdout was lost ({out.failure}); the command ran to "
                  f"the end and exits {code}", file=sys.stderr)
    return code


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code or 0)
    _configure_logging()
    if getattr(args, "uses_database", False):
        _hide_passwords_in_logs()
    handler: Handler = args.handler
    try:
        # Opened on first use and committed when the command ends.
        with SqliteStore() as args.analysis_store:
            return handler(args)
    except MigorchError as exc:
        if getattr(args, "json", False):
            partial = getattr(exc, "result", None)  # the runner's partial result, if it started
            print_json(partial.to_json(root_of(args)) if partial is not None
                       else {"ok": False, "error": str(exc), "exit_code": exc.exit_code})
        print(f"migorch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migorch: interrupted", file=sys.stderr)
        return 130



