"""A team's own checks, declared once in ``[tool.migorch] checks``, run by every front end:
``migorch validate``, the pytest plugin and the deploy runner report the same finding."""

from __future__ import annotations

import itertools
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Iterator

import hypothesis.internal.observability  # noqa: F401
import pytest
from helpers import make_runner, pair, service_files, write_service

import pytest_migorch.pytest_plugin.plugin  # noqa: F401  (pytester restores sys.modules)
from pytest_migorch.checks import custom
from pytest_migorch.checks.custom import CHECK_FAILED, ENTRY_POINT_GROUP, load_custom_checks
from pytest_migorch.cli.main import main
from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Family
from pytest_migorch.project.validation import load_project, validate_project

_names = itertools.count()

#: The team's check: every up file starts with a "-- why:" comment; the service needs a README.
CHECKS = '''
from pytest_migorch.findings import Family, Rule, Severity

NO_WHY = Rule("TEAM001", "no-why-comment", Severity.ERROR, Family.CUSTOM,
              "An up file does not say why.", "Start it with -- why: ...")
NO_README = Rule("TEAM002", "no-readme", Severity.WARNING, Family.CUSTOM,
                 "The service has no README.", "Add migrations/README.md.")

def check_migration(service, migration):
    text = migration.up.read_text()
    if text.startswith("-- why:"):
        return []
    line = next(n for n, l in enumerate(text.splitlines(), 1)
                if l.strip() and not l.startswith("--"))
    return [NO_WHY.finding(f"{migration.id} does not say why", file=migration.up.path,
                           line=line)]

def check_service(service):
    if (service.migrations_dir / "README.md").exists():
        return []
    return [NO_README.finding("no README", file=service.migrations_dir)]
'''


def team_repo(tmp_path: Path, checks: str = CHECKS, *, up: str = "CREATE TABLE t (id int);\n"
              ) -> tuple[Path, str]:
    """A repository with a check module declared in pyproject.toml and a services root."""
    module = f"teamchecks_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(checks), encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.migorch]\nchecks = ["{module}"]\n', encoding="utf-8")
    files = service_files(["000001_a"])
    files.update(pair("000001_a", up=up))
    write_service(tmp_path / "services", "svc", files)
    return tmp_path / "services", module


@pytest.fixture(autouse=True)
def _restore_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Check modules are imported from tmp paths; keep sys.path and sys.modules as they were."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [n for n in sys.modules if n.startswith("teamchecks_")]:
        del sys.modules[name]


def test_validate_reports_the_teams_findings(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = team_repo(tmp_path)
    assert main(["validate", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "000001_a.up.sql:1: error TEAM001 000001_a does not say why" in out
    assert "warning TEAM002 no README" in out


def test_findings_are_custom_and_placed(tmp_path: Path) -> None:
    root, _ = team_repo(tmp_path)
    findings = load_custom_checks(root)(load_project(root))
    assert {(f.code, f.family, f.service, f.migration) for f in findings} == {
        ("TEAM001", Family.CUSTOM, "svc", "000001_a"), ("TEAM002", Family.CUSTOM, "svc", None)}


def test_an_ignore_comment_silences_a_team_code(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = team_repo(tmp_path, up="-- migorch:ignore TEAM001 reviewed: a scratch table\n"
                                     "CREATE TABLE t (id int);\n")
    findings = load_custom_checks(root)(load_project(root))
    assert [f.code for f in findings] == ["TEAM002"]
    # ... and the built-in analysis does not call the comment unused (SQL005).
    assert main(["validate", "--root", str(root)]) == 0
    assert [line.split()[2] for line in capsys.readouterr().out.splitlines()
            if ": warning " in line or ": error " in line] == ["TEAM002"]


def test_an_ignore_of_a_team_code_that_silences_nothing_is_still_unused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = team_repo(tmp_path, up="-- why: t\n-- migorch:ignore TEAM001\n"
                                     "CREATE TABLE t (id int);\n")
    assert main(["validate", "--root", str(root)]) == 0
    assert "warning SQL005 `-- migorch:ignore TEAM001` silences nothing" in \
        capsys.readouterr().out


def test_no_declaration_means_no_checks(tmp_path: Path) -> None:
    write_service(tmp_path / "services", "svc", service_files(["000001_a"]))
    assert not load_custom_checks(tmp_path / "services")


def test_a_module_that_does_not_import_is_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, module = team_repo(tmp_path, "import no_such_module_anywhere\n")
    assert main(["validate", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"custom check module {module!r}" in err and "failed to import" in err
    assert "no_such_module_anywhere" in err and "Traceback" not in err


def test_a_module_without_check_functions_is_named(tmp_path: Path) -> None:
    root, module = team_repo(tmp_path, "VALUE = 1\n")
    with pytest.raises(ConfigurationError, match=f"{module}.*defines neither"):
        load_custom_checks(root)


def test_bad_checks_setting_names_the_file(tmp_path: Path) -> None:
    root, _ = team_repo(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.migorch]\nchecks = "x"\n')
    with pytest.raises(ConfigurationError, match="pyproject.toml.*list of module names"):
        load_custom_checks(root)


def test_a_check_that_raises_is_a_finding_naming_the_module(tmp_path: Path) -> None:
    root, module = team_repo(tmp_path, "def check_migration(service, migration):\n"
                                       "    raise KeyError('boom')\n")
    result = validate_project(load_project(root), checks=[load_custom_checks(root)])
    failed = [f for f in result.errors if f.code == CHECK_FAILED.code]
    assert len(failed) == 1
    assert failed[0].message == f"{module}.check_migration raised KeyError: 'boom'"
    assert failed[0].migration == "000001_a"


def test_a_check_that_returns_garbage_is_a_finding(tmp_path: Path) -> None:
    root, module = team_repo(tmp_path, "def check_service(service):\n    return 'oops'\n")
    findings = load_custom_checks(root)(load_project(root))
    assert [f.message for f in findings] == [
        f"{module}.check_service returned str, not a list of Finding"]


def test_the_plugin_reports_the_same_finding(tmp_path: Path, pytester: pytest.Pytester) -> None:
    root, module = team_repo(pytester.path)
    (pytester.path / "pyproject.toml").write_text(
        f'[tool.migorch]\nchecks = ["{module}"]\n\n[tool.pytest.ini_options]\n'
        'addopts = "-p no:cacheprovider"\n', encoding="utf-8")
    result = pytester.runpytest("--migorch", str(root), "--migorch-no-db", "-rA")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines([
        "*000001_a.up.sql:1: error TEAM001 000001_a does not say why*",
        "FAILED services/svc::custom[[]000001_a[]]*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_the_pytest_hooks_keep_working_next_to_declared_checks(
        tmp_path: Path, pytester: pytest.Pytester) -> None:
    root, _ = team_repo(pytester.path, checks="def check_service(service):\n    return []\n")
    pytester.makeconftest('''
        from pytest_migorch.findings import Family, Rule, Severity
        HOOK = Rule("HOOK001", "hooked", Severity.ERROR, Family.CUSTOM, "s", "h")
        def pytest_migorch_check_service(service, project):
            return [HOOK.finding("from the hook", service=service.name)]
    ''')
    result = pytester.runpytest("--migorch", str(root), "--migorch-no-db")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*error HOOK001 from the hook*"])


def test_the_runner_refuses_to_deploy_with_a_custom_error(tmp_path: Path, fresh_db: str) -> None:
    root, _ = team_repo(tmp_path)
    runner = make_runner(root, fresh_db)
    with pytest.raises(ConfigurationError, match="TEAM001 000001_a does not say why"):
        runner.up(["svc"], "production")


def test_modules_of_the_entry_point_group_run_too(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, module = team_repo(tmp_path)
    (tmp_path / "pyproject.toml").unlink()
    point = EntryPoint("team", module, ENTRY_POINT_GROUP)
    monkeypatch.setattr(custom, "entry_points",
                        lambda group: [point] if group == ENTRY_POINT_GROUP else [])
    monkeypatch.syspath_prepend(str(tmp_path))
    findings = load_custom_checks(root)(load_project(root))
    assert sorted(f.code for f in findings) == ["TEAM001", "TEAM002"]
