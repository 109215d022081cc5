"""The plugin on a repository with history: ``--migorch-base`` and the baseline file select the
findings of the change for failures, CI reports and the Markdown report (issue 13)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

# Imported once here: pytester restores sys.modules after each in-process run.
import pytest_migorch.pytest_plugin.ci_hooks  # noqa: F401
import pytest_migorch.pytest_plugin.history  # noqa: F401
import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401
from pytest_migorch.cli.main import main

SVC = "services/svc/migrations"
#: Declared low, drops a column: RSK028 (declared level too low) is an error, RSK003 a warning.
DROP = "ALTER TABLE t DROP COLUMN c;\n"


def entry(level: str = "low") -> dict[str, object]:
    return {"description": "x", "depends_on": [], "affects_tables": ["t"],
            "risk_level": level, "estimated_duration": "1s"}


def write(base: Path, relative: str, text: str) -> None:
    path = base / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_migration(base: Path, migration_id: str, up: str, entries: dict[str, object]) -> None:
    write(base, f"{SVC}/{migration_id}.up.sql", up)
    write(base, f"{SVC}/{migration_id}.down.sql", "ALTER TABLE t ADD COLUMN c int;\n")
    entries[migration_id.split("_")[0]] = entry()
    write(base, f"{SVC}/dependencies.json", json.dumps({"migrations": entries}, indent=2))


def git(base: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(base), "-c", "user.name=t", "-c", "user.email=t@x", *args],
                   check=True, capture_output=True)


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "GITHUB_STEP_SUMMARY", "CI_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))


@pytest.fixture
def released(pytester: pytest.Pytester) -> tuple[pytest.Pytester, dict[str, object]]:
    """A released service whose migration 000002 has an error (declared low, drops a column)."""
    base = pytester.path
    entries: dict[str, object] = {}
    write_migration(base, "000001_a", "CREATE TABLE t (id int, c int);\n", entries)
    write_migration(base, "000002_b", DROP, entries)
    write(base, f"{SVC}/environments.json", '{"environments": {"production": {"migrations": []}}}')
    git(base, "init", "-q")
    git(base, "add", "-A")
    git(base, "commit", "-q", "-m", "release")
    return pytester, entries


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--migorch", "services", "--migorch-no-db", "-p",
                              "no:cacheprovider", *args)


def failed_ids(result: pytest.RunResult) -> list[str]:
    return sorted({line.split("::")[-1].split(" ")[0] for line in result.outlines
                   if line.startswith("FAILED ")})


def test_base_fails_only_the_new_migration_and_counts_the_rest(
        released: tuple[pytest.Pytester, dict[str, object]]) -> None:
    pytester, entries = released
    assert failed_ids(run(pytester)) == ["risk[000002_b]"]
    write_migration(pytester.path, "000003_c", DROP, entries)
    result = run(pytester, "--migorch-base", "HEAD")
    assert failed_ids(result) == ["risk[000003_c]"]
    result.stdout.fnmatch_lines(["*finding* in 1 released migration not shown "
                                 "(--migorch-all-findings shows them)*"])
    result = run(pytester, "--migorch-base", "HEAD", "--migorch-all-findings")
    assert failed_ids(result) == ["risk[000002_b]", "risk[000003_c]"]


def test_reports_carry_only_the_selected_findings(
        released: tuple[pytest.Pytester, dict[str, object]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester, entries = released
    write_migration(pytester.path, "000003_c", DROP, entries)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run(pytester, "--migorch-base", "HEAD", "--migorch-codequality", "cq.json",
                 "--migorch-sarif", "out.sarif")
    annotations = [line for line in result.outlines if line.startswith(("::error", "::warn"))]
    assert annotations and all("000003_c" in line for line in annotations)
    text = summary.read_text()
    assert "000003_c" in text and "000002_b" not in text
    assert "in 1 released migration not shown" in text
    issues = json.loads((pytester.path / "cq.json").read_text())
    assert issues and {i["location"]["path"].split("/")[-1] for i in issues} == {
        "000003_c.up.sql"}
    sarif = json.loads((pytester.path / "out.sarif").read_text())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"]}
    assert uris == {f"{SVC}/000003_c.up.sql"}


def test_baseline_hides_recorded_findings_and_names_stale_ones(
        released: tuple[pytest.Pytester, dict[str, object]],
        capsys: pytest.CaptureFixture[str]) -> None:
    pytester, entries = released
    assert main(["baseline", "--root", str(pytester.path / "services")]) == 0
    capsys.readouterr()
    result = run(pytester)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*in 1 baselined migration not shown*"])
    write_migration(pytester.path, "000003_c", DROP, entries)
    (pytester.path / SVC / "000002_b.up.sql").write_text("ALTER TABLE t ADD d int;\n")
    result = run(pytester)
    assert failed_ids(result) == ["risk[000003_c]"]
    result.stdout.fnmatch_lines(["stale baseline entry in *000002_b*"])
    # -k runs only part of the items: nothing can be called stale then.
    assert "stale baseline entry" not in run(pytester, "-k", "000003").stdout.str()


def test_a_corrupt_baseline_is_a_clean_error(
        released: tuple[pytest.Pytester, dict[str, object]]) -> None:
    pytester, _ = released
    write(pytester.path, "broken.json", "{")
    result = run(pytester, "--migorch-baseline", "broken.json")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*broken.json is not valid JSON*"])
    assert "Traceback" not in result.stdout.str()
    result = run(pytester, "--migorch-baseline", "missing.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*missing.json: no such file*"])


def test_the_baseline_ini_option(released: tuple[pytest.Pytester, dict[str, object]],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytester, _ = released
    assert main(["baseline", "--root", str(pytester.path / "services"), "--output",
                 str(pytester.path / "ci" / "known.json")]) == 0
    capsys.readouterr()
    assert run(pytester).ret == pytest.ExitCode.TESTS_FAILED  # not beside the root
    pytester.makeini("[pytest]\nmigorch_baseline = ci/known.json\n")
    assert run(pytester).ret == 0


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_markdown_report_renders_with_table_and_findings(
        released: tuple[pytest.Pytester, dict[str, object]]) -> None:
    pytester, entries = released
    write_migration(pytester.path, "000003_c", "SELECT 1;\n" + DROP, entries)
    run(pytester, "--migorch-base", "HEAD", "--migorch-markdown", "out/report.md")
    text = (pytester.path / "out" / "report.md").read_text()
    assert text.startswith("<!-- pytest-migorch report -->")
    html = render(text)
    assert "<table>" in html and "<th>Risk</th>" in html
    assert "<code>svc:000003_c</code>" in html and "000002_b" not in html.split("<em>")[0]
    assert "RSK003 drop-column (line 2)" in html
    assert f"<code>{SVC}/000003_c.up.sql:2</code>" in html
    assert "<li>" in html and "RSK028" in html
    assert "<h3><code>svc:000003_c</code></h3>" in html  # its findings under its own heading
    assert "<em>" in html and "released migration not shown" in html


def test_validate_format_markdown(released: tuple[pytest.Pytester, dict[str, object]],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytester, entries = released
    write_migration(pytester.path, "000003_c", DROP, entries)
    code = main(["validate", "--root", str(pytester.path / "services"), "--base", "HEAD",
                 "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 1
    html = render(out)
    assert "<table>" in html and "svc:000003_c" in html and "svc:000002_b" not in html
    assert "transactional" in html.lower() and "<td>yes</td>" in html
    assert "1 released migration not shown" in html
