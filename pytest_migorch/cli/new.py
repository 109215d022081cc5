"""``migorch new``: its template options and the command itself (see docs/runner.md).

Kept apart from :mod:`pytest_migorch.cli.main` so the template options (one per common
parameter, ``--param`` for a team template's own) do not crowd the runner commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_migorch.cli.output import print_json
from pytest_migorch.errors import UsageError

if TYPE_CHECKING:  # the parser is built for every command; the core loads only for `new`
    from pytest_migorch.project.scaffold import NewMigration
    from pytest_migorch.project.templates import Template
    from pytest_migorch.sql.analysis import AnalysisCache

__all__ = ["add_template_options", "run_new"]

#: The parameters of the built-in templates, as options (``dest`` is the parameter name).
COMMON_PARAMETERS = (
    ("table", "TABLE", "the table (create-table: the new one)"),
    ("column", "COLUMN", "the column"),
    ("type", "TYPE", "the column's type, e.g. text, bigint, varchar(255)"),
    ("value", "TEXT", "add-column: the value existing rows get (any text, quoted for SQL)"),
    ("references", "TABLE", "add-foreign-key: the referenced table (schema.table for another "
     "service)"),
    ("references_column", "COLUMN", "add-foreign-key: the referenced column (default id)"),
    ("to", "COLUMN", "rename-column: the new name"),
    ("index", "NAME", "add-index: the index name (default <table>_<column>_idx)"),
    ("constraint", "NAME", "add-column, add-foreign-key: the constraint name"),
    ("sync", "NAME", "rename-column: the trigger (and function) that keeps both columns equal"),
)
_OPTIONS = {name for name, _, _ in COMMON_PARAMETERS}


def add_template_options(parser: argparse.ArgumentParser) -> None:
    """``--template`` and its parameters on the ``new`` parser."""
    group = parser.add_argument_group(
        "templates", "fill the migration(s) from a template instead of blank files")
    group.add_argument("--template", metavar="NAME",
                       help="create-table, add-column, add-index, add-foreign-key, "
                       "rename-column, or a team template (see --list-templates)")
    group.add_argument("--list-templates", action="store_true",
                       help="list the templates with a one-line description and exit")
    group.add_argument("--templates-dir", type=Path, metavar="DIR",
                       help="a team's templates (default: [tool.migorch] templates_dir)")
    for name, metavar, help_text in COMMON_PARAMETERS:
        group.add_argument("--" + name.replace("_", "-"), dest=f"param_{name}",
                           metavar=metavar, help=help_text)
    group.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="any template parameter (a team template's own)")


def _templates(args: argparse.Namespace, root: Path) -> dict[str, Template]:
    from pytest_migorch.project.pyproject import find_tool_settings
    from pytest_migorch.project.templates import available_templates

    directory = args.templates_dir or find_tool_settings(root).templates_dir
    return available_templates(directory)


def _values(args: argparse.Namespace) -> dict[str, str]:
    values = {name: getattr(args, f"param_{name}") for name, _, _ in COMMON_PARAMETERS
              if getattr(args, f"param_{name}", None) is not None}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {item!r}: write NAME=VALUE")
        values[name.strip().replace("-", "_")] = value
    return values


def run_new(args: argparse.Namespace, root: Path, cache: AnalysisCache) -> int:
    """The ``new`` command: blank files, or a template's migrations; or the template list."""
    from pytest_migorch.checks.scaffolding import metadata_deriver
    from pytest_migorch.project.scaffold import create_from_template, create_migration
    from pytest_migorch.project.validation import load_project

    wants_json = bool(getattr(args, "json", False))
    if args.list_templates:
        return _list(_templates(args, root), wants_json)
    if not args.service or not args.name:
        raise UsageError("new needs SERVICE and NAME (or --list-templates)")
    values = _values(args)
    project = load_project(root)
    if args.template is None:
        if values:
            raise UsageError(f"--{next(iter(values)).replace('_', '-')} needs --template")
        created = [create_migration(project, args.service, args.name, environment=args.env,
                                    depends_on=args.depends_on, description=args.description)]
    else:
        templates = _templates(args, root)
        template = templates.get(args.template)
        if template is None:
            raise UsageError(f"unknown template {args.template!r}; templates: "
                             f"{', '.join(templates)}")
        created = create_from_template(
            project, args.service, args.name, template, values,
            derive=metadata_deriver(cache), environment=args.env,
            depends_on=args.depends_on, description=args.description)
    _report(created, wants_json)
    return 0


def _list(templates: dict[str, Template], wants_json: bool) -> int:
    if wants_json:
        print_json({"ok": True, "command": "new", "templates": [
            {"name": t.name, "description": t.description, "directory": str(t.directory),
             "migrations": len(t.steps),
             "parameters": [{"name": p.name, "option": p.option, "kind": p.kind,
                             "required": p.default is None, "help": p.help}
                            for p in t.parameters]}
            for t in templates.values()]})
        return 0
    width = max((len(name) for name in templates), default=0)
    for template in templates.values():
        shown = [p.option if p.name in _OPTIONS else f"--param {p.name}=..."
                 for p in template.parameters]
        options = " ".join(text if p.default is None else f"[{text}]"
                           for p, text in zip(template.parameters, shown))
        print(f"{template.name:<{width}}  {template.description}")
        print(f"{'':<{width}}  {len(template.steps)} migration(s); {options}")
    return 0


def _report(created: list[NewMigration], wants_json: bool) -> None:
    if wants_json:
        document: dict[str, Any] = {"ok": True, "command": "new", **created[0].to_json(),
                                    "migrations": [c.to_json() for c in created]}
        print_json(document)
        return
    changed: dict[Path, None] = {}
    for item in created:
        for path in (item.up, item.down):
            if path is not None:
                print(f"created {path}")
        changed.update(dict.fromkeys(item.changed))
    for path in changed:
        print(f"updated {path}")
    for item in created:
        for note in item.notes:
            print(f"note: {note}", file=sys.stderr)
