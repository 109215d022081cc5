"""``migorch squash``: the argument parsing and printing of :mod:`pytest_migorch.squash`.

Exit codes as everywhere: 0 squashed (or, with ``--dry-run``, it would be), 1 the proof found a
difference (nothing written; the differences are printed), 2 bad usage or configuration,
including a listed database below the squashed version.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pytest_migorch.cli.output import print_json

if TYPE_CHECKING:  # the parser is built for every command; the squash core loads for `squash`
    from pytest_migorch.squash import SquashResult

__all__ = ["add_squash_command", "cmd_squash"]


def add_squash_command(commands: Any, add_common: Any) -> None:
    """Register ``squash`` on the ``migorch`` subcommands (``add_common`` adds --root/--json)."""
    parser = commands.add_parser(
        "squash", help="replace a service's migrations up to a version by one, proven equal",
        description="Replay the service's migrations up to VERSION in a throwaway database, "
        "dump the resulting schema, rows, grants, comments and sequence positions into "
        "VERSION_squashed_<n>.up.sql, prove that the file alone gives the same state, then "
        "rewrite dependencies.json and move the replaced files to migrations/squashed/. "
        "Nothing is written unless the proof holds. See docs/runner.md, 'Squashing'.",
    )
    add_common(parser)
    parser.add_argument("service", help="the service (directory name under the root)")
    parser.add_argument("--to", dest="to_version", required=True, type=_version,
                        metavar="VERSION", help="the highest version to squash")
    parser.add_argument("--env", metavar="NAME",
                        help="also fold this environment's migrations up to VERSION into the "
                        "squash (default: base migrations only)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be written and the proof's result; write nothing")
    parser.add_argument("--database-url", action="append", default=[], metavar="URL",
                        dest="database_urls",
                        help="a deployed database (repeatable): refuse when one is below "
                        "VERSION, since it would run the squashed file over a partial schema")
    parser.set_defaults(handler=cmd_squash)


def _version(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number")
    return int(text)


def cmd_squash(args: argparse.Namespace) -> int:
    from pytest_migorch.cli.commands import root_of
    from pytest_migorch.squash import squash

    result = squash(root_of(args), args.service, args.to_version, environment=args.env,
                    dry_run=args.dry_run, database_urls=tuple(args.database_urls))
    if getattr(args, "json", False):
        print_json(result.to_json())
    else:
        _print_text(result)
    return 0 if result.ok else 1


def _print_text(result: SquashResult) -> None:
    sel = result.selection
    ids = [m.id for m in sel.replaced]
    shown = ids if len(ids) <= 6 else [*ids[:3], f"... {len(ids) - 5} more ...", *ids[-2:]]
    print(f"{sel.service}: {sel.migration_id} replaces {', '.join(shown)}")
    if not result.ok:
        print("proof FAILED: the squashed file does not give the state the migrations give; "
              "nothing was written:", file=sys.stderr)
        for line in result.differences:
            print("  " + line.replace("\n", "\n  "), file=sys.stderr)
        return
    print(f"proof: identical schema, privileges, rows and sequence positions after "
          f"{sel.up_name} alone as after the {len(sel.replaced)} migrations")
    if result.down_problem:
        print(f"down: not written, \"reversible\": false ({result.down_problem.splitlines()[0]})")
    else:
        print(f"down: {sel.down_name} restores the state before the up")
    verb = "would write" if result.dry_run else "wrote"
    for path in result.written:
        print(f"{verb} {path}")
    for source, target in result.moved:
        print(f"{'would move' if result.dry_run else 'moved'} {source} -> {target.parent}/")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.dry_run:
        print(f"--- {sel.up_name} ---")
        sys.stdout.write(result.sql.up)
