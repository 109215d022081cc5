"""The ``migorch`` commands: each translates its arguments, calls the core and prints.

Every command imports the core it needs when it runs (not at module import), so a command pays
only for itself: ``validate`` loads no psycopg, ``up`` no drawing or scaffolding code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pytest_migorch.cli.output import TextReporter, print_json, print_result
from pytest_migorch.errors import MigorchError, UsageError

if TYPE_CHECKING:
    from pytest_migorch.deploy.runner import Runner
    from pytest_migorch.cli.validate_cache import CachedValidation
    from pytest_migorch.findings import Finding
    from pytest_migorch.deploy.status import ServiceReport
    from pytest_migorch.model import Project
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = ["root_of", "selected_services", "cmd_validate", "cmd_init", "cmd_up", "cmd_down",
           "cmd_status", "cmd_list", "cmd_force", "cmd_graph", "cmd_new", "cmd_baseline",
           "cmd_report"]


def root_of(args: argparse.Namespace) -> Path:
    root = getattr(args, "root", None)
    if root is None:
        root = Path(os.environ.get("MIGORCH_ROOT", "services"))
    return Path(root)


def _load(args: argparse.Namespace) -> Project:
    from pytest_migorch.project.validation import load_project

    return load_project(root_of(args))


def _load_for_deploy(args: argparse.Namespace) -> Project:
    """The tree for a database command, from the project cache when nothing in it changed
    (:mod:`pytest_migorch.project.load_cache`): a deploy with nothing to do skips the load."""
    from pytest_migorch.project.load_cache import load_project_cached

    return load_project_cached(root_of(args))


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


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


def _one_service(args: argparse.Namespace, project: Project) -> str:
    only = argparse.Namespace(service=args.service, all=False)
    return selected_services(only, list(project.services))[0]


def _analysis_cache(args: argparse.Namespace) -> AnalysisCache:
    """SQL analyses by file content, kept between runs unless ``--no-cache`` says otherwise."""
    from pytest_migorch.sql.analysis_cache import AnalysisCache

    store = None if getattr(args, "no_cache", False) else args.analysis_store
    return AnalysisCache(store)


def cmd_validate(args: argparse.Namespace) -> int:
    from pytest_migorch.cli.validate_cache import CachedValidation

    root = root_of(args)
    output = "json" if _wants_json(args) else args.format
    # A whole cached result needs no project: only --base (git) and markdown (it reads the
    # project) always run the pipeline, with each service's findings still cached.
    cached = CachedValidation.prepare(args, root, whole=not args.base and output != "markdown")
    findings = None
    if cached is not None:
        services = selected_services(args, cached.services)
        findings = cached.findings(services)
    if findings is None:
        project, services, findings = _validate(args, root, cached)
    else:
        from pytest_migorch.model import Project

        project = Project(root=root)
    return _print_validation(args, output, project, services, findings)


def _validate(args: argparse.Namespace, root: Path, cached: CachedValidation | None
              ) -> tuple[Project, list[str], list[Finding]]:
    """The static pipeline of ``validate``: every finding of the selected services."""
    from pytest_migorch.model import texts_read_once

    # Discovery reads every file (its texts are kept for the analysis); the configuration is
    # read while the workers analyse the SQL (what is analysed, in which order, is discovery's).
    with texts_read_once():
        return _run_pipeline(args, root, cached)


def _run_pipeline(args: argparse.Namespace, root: Path, cached: CachedValidation | None
                  ) -> tuple[Project, list[str], list[Finding]]:
    from pytest_migorch.checks.custom import load_custom_checks
    from pytest_migorch.checks.migration import analysis_order, migration_analyser
    from pytest_migorch.project.validation import load_project_in_steps, validate_project
    from pytest_migorch.sql.ahead import analyses_ahead
    from pytest_migorch.vcs.integrity import check_against_base

    project, configure = load_project_in_steps(root)
    services = selected_services(args, list(project.services))
    base = args.base
    cache = _analysis_cache(args)
    custom = load_custom_checks(root, cache)
    analyser = custom.analyser(migration_analyser(cache))
    if cached is not None:
        analyser = cached.analyser(analyser)
    to_analyse = [service for name, service in project.services.items()
                  if name in services and not (cached is not None and cached.known(service))]
    count = sum(len(service.migrations) for service in to_analyse) * 2
    with analyses_ahead(cache, analysis_order(to_analyse), count=count):
        configure()
        result = validate_project(
            project, strict=args.strict, services=services, analyser=analyser,
            checks=[custom, *([lambda project: check_against_base(project, base)] if base
                              else [])])
    if cached is not None:
        cached.save(services, result.findings)
    return project, services, result.findings


def _print_validation(args: argparse.Namespace, output: str, project: Project,
                      services: list[str], all_findings: list[Finding]) -> int:
    from pytest_migorch.cli.adoption import history_lines, select_findings
    from pytest_migorch.reports.text import render_json, render_text, summary_line

    root = root_of(args)
    shown = select_findings(args, project, all_findings, services)
    findings, history = shown.split.shown, history_lines(shown)
    if output == "json":
        document = render_json(findings, root=root, services=services)
        if shown.selected:  # only then: the documented shape stays as it was without history
            document["not_shown"] = shown.split.to_json()
            document["stale_baseline"] = [entry.to_json() for entry in shown.stale]
        print_json(document)
    elif output == "markdown":
        from pytest_migorch.reports.markdown import changed_migrations, render_markdown

        keys = shown.changed if shown.changed is not None else {
            (f.service or "", f.migration) for f in findings if f.migration}
        sys.stdout.write(render_markdown(changed_migrations(project, keys, _analysis_cache(args)),
                                         findings, history=history))
    else:
        if findings:
            print(render_text(findings))
        for line in history:
            print(line, file=sys.stderr)
        print(summary_line(findings, len(services)), file=sys.stderr)
    return 1 if any(f.is_error for f in findings) else 0


# --- deploy runner commands (SPEC section 5; docs/runner.md) ------------------------------------


def _runner(args: argparse.Namespace, project: Project, *, quiet: bool = False) -> Runner:
    from pytest_migorch.deploy.applying import NullReporter
    from pytest_migorch.deploy.runner import DEFAULT_LOCK_TIMEOUT, Runner
    from pytest_migorch.postgres.connection import resolve_settings

    settings = resolve_settings(args.database_url, os.environ)
    reporter: Any = (NullReporter() if quiet or _wants_json(args)
                     else TextReporter(sys.stdout, root_of(args)))
    return Runner(project, settings, reporter=reporter,
                  lock_timeout=getattr(args, "lock_timeout", DEFAULT_LOCK_TIMEOUT),
                  analysis_cache=_analysis_cache(args))


def cmd_init(args: argparse.Namespace) -> int:
    project = _load_for_deploy(args)
    services = selected_services(args, list(project.services))
    result = _runner(args, project).init(services, args.env)
    return print_result(result, root_of(args), as_json=_wants_json(args))


def cmd_up(args: argparse.Namespace) -> int:
    project = _load_for_deploy(args)
    services = selected_services(args, list(project.services))
    runner = _runner(args, project)
    runner.run_hooks = not args.no_hooks
    if args.jobs > 1 and isinstance(runner.reporter, TextReporter):
        runner.reporter.live = False  # one live line cannot show several running migrations
    result = runner.up(
        services, args.env, count=args.count, dry_run=args.dry_run,
        allow_drift=args.allow_drift, allow_high_risk=args.yes, jobs=args.jobs,
    )
    return print_result(result, root_of(args), as_json=_wants_json(args))


def cmd_down(args: argparse.Namespace) -> int:
    project = _load_for_deploy(args)
    runner = _runner(args, project)
    runner.run_hooks = not args.no_hooks
    result = runner.down(
        _one_service(args, project), args.env, steps=args.steps, version=args.target_version,
        cascade=args.cascade, dry_run=args.dry_run, confirmed=args.yes, only=args.only,
    )
    return print_result(result, root_of(args), as_json=_wants_json(args))


def cmd_force(args: argparse.Namespace) -> int:
    project = _load_for_deploy(args)
    result = _runner(args, project).force(_one_service(args, project), args.version, args.env)
    return print_result(result, root_of(args), as_json=_wants_json(args))


def _reports(args: argparse.Namespace) -> tuple[list[ServiceReport], str]:
    project = _load_for_deploy(args)
    services = selected_services(args, list(project.services))
    reports = _runner(args, project, quiet=True).status(services, args.env)
    env = reports[0].state.environment if reports else ""
    return reports, env


def cmd_status(args: argparse.Namespace) -> int:
    reports, env = _reports(args)
    problems = any(r.has_problems for r in reports)
    if _wants_json(args):
        print_json({"ok": not problems, "command": "status", "environment": env,
                    "services": [r.to_json(root_of(args)) for r in reports]})
    else:
        print("\n\n".join(r.render_status() for r in reports))
    return 1 if problems else 0


def cmd_list(args: argparse.Namespace) -> int:
    reports, env = _reports(args)
    root = root_of(args)
    if _wants_json(args):
        print_json({"ok": True, "command": "list", "environment": env,
                    "services": [{"service": r.name, "environment": env,
                                  "migrations": r.migration_rows(root)} for r in reports]})
    else:
        print("\n\n".join(r.render_list(root) for r in reports))
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from pytest_migorch.cli.adoption import cmd_baseline as run

    return run(args)


# --- commands without a database ----------------------------------------------------------------


def cmd_graph(args: argparse.Namespace) -> int:
    from pytest_migorch.reports.drawing import build_drawing, render

    project = _load(args)
    services = selected_services(args, list(project.services))
    if args.env is not None:
        from pytest_migorch.deploy.planning import resolve_environment

        resolve_environment(project, services, args.env)
    drawing = build_drawing(project, services, args.env)
    text = render(drawing, args.format)
    if _wants_json(args):
        print_json({"ok": True, "command": "graph", "format": args.format, "graph": text,
                    **drawing.to_json()})
    else:
        sys.stdout.write(text)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from pytest_migorch.cli.new import run_new

    return run_new(args, root_of(args), _analysis_cache(args))


def cmd_report(args: argparse.Namespace) -> int:
    """``migorch report --html PATH``: the one-file web page (docs/runner.md). Exits 0 once the
    page is written, whatever it shows (``validate`` and ``status`` are the gates); 1 when the
    live state was asked for and could not be read (the page says why)."""
    from pytest_migorch.reports.html import LiveState, attach_live, build_report, write_report
    from pytest_migorch.vcs.integrity import check_against_base

    root = root_of(args)
    project = _load(args)
    services = selected_services(args, list(project.services))
    base = args.base
    report = build_report(project, services=services, cache=_analysis_cache(args),
                          strict=args.strict,
                          checks=[lambda project: check_against_base(project, base)] if base
                          else [])
    code = 0
    if args.database_url is not None:
        try:
            live = _runner(args, project, quiet=True).status(services, args.env)
            env = live[0].state.environment if live else (args.env or "")
            attach_live(report, env, [LiveState(r.to_json(root), r.migration_rows(root))
                                      for r in live])
        except MigorchError as exc:
            report.live_error = str(exc)
            print(f"migorch: error: the live state could not be read: {exc}", file=sys.stderr)
            code = 1
    try:
        write_report(report, args.html)
    except OSError as exc:
        raise UsageError(f"cannot write the HTML report to {args.html}: {exc.strerror}; "
                         "pass --html with a writable path") from exc
    if _wants_json(args):
        print_json({"ok": code == 0, "command": "report", "html": str(args.html),
                    "live_error": report.live_error})
    else:
        print(f"wrote {args.html}")
    return code
