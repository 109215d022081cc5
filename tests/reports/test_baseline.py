"""Baseline fingerprints, occurrences and stale entries; the count line; Markdown escaping."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from pytest_migorch.findings import Family, Finding, Severity
from pytest_migorch.reports.baseline import Baseline, BaselineSelection, Fingerprinter
from pytest_migorch.reports.markdown import render_markdown
from pytest_migorch.reports.selection import hidden_line, split_all


def finding(file: Path | None = None, line: int | None = None, message: str = "m",
            family: Family = Family.RISK, code: str = "RSK003") -> Finding:
    return Finding(code=code, name="drop-column", severity=Severity.WARNING, family=family,
                   message=message, hint="", file=file, line=line, service="svc",
                   migration="000001_a")


def test_the_count_line_reads_like_the_issue_asks() -> None:
    assert hidden_line(425, 149) == ("425 findings in 149 released migrations not shown "
                                     "(--all-findings shows them)")
    assert hidden_line(1, 1, what="baselined", flag="--migorch-all-findings") == (
        "1 finding in 1 baselined migration not shown (--migorch-all-findings shows them)")


def test_fingerprint_follows_the_statement_not_its_line(tmp_path: Path) -> None:
    sql = tmp_path / "000001_a.up.sql"
    sql.write_text("ALTER TABLE t DROP COLUMN c;\n")
    before = Fingerprinter()(finding(sql, 1, "DROP COLUMN t.c at line 1"))
    sql.write_text("-- a comment\n\nALTER TABLE t\n  DROP COLUMN c;\n")
    assert Fingerprinter()(finding(sql, 3, "DROP COLUMN t.c at line 3")) == before
    sql.write_text("ALTER TABLE t DROP COLUMN d;\n")
    assert Fingerprinter()(finding(sql, 1, "DROP COLUMN t.c at line 1")) != before


def test_fingerprint_does_not_depend_on_the_checkout_directory(tmp_path: Path) -> None:
    laptop, ci = tmp_path / "home" / "repo", tmp_path / "runner" / "work"
    one = finding(message=f"x.up.sql is a symbolic link to {laptop}/shared/x.sql")
    two = finding(message=f"x.up.sql is a symbolic link to {ci}/shared/x.sql")
    assert Fingerprinter(laptop / "services")(one) == Fingerprinter(ci / "services")(two)
    assert Fingerprinter()(one) != Fingerprinter()(two)


def test_each_recorded_occurrence_hides_one_finding(tmp_path: Path) -> None:
    sql = tmp_path / "000001_a.up.sql"
    sql.write_text("ALTER TABLE t DROP COLUMN c;\nALTER TABLE t DROP COLUMN c;\n")
    two = [finding(sql, 1), finding(sql, 2)]
    baseline = Baseline.of(tmp_path / "b.json", two)
    assert len(baseline.entries) == 2
    sql.write_text(sql.read_text() * 2)  # a third and a fourth identical statement
    four = [finding(sql, line) for line in (1, 2, 3, 4)]
    selection = BaselineSelection(baseline)
    split = split_all(four, [selection])
    assert len(split.hidden) == 2 and len(split.shown) == 2
    assert selection.stale() == []


def test_stale_entries_and_the_update(tmp_path: Path) -> None:
    sql = tmp_path / "000001_a.up.sql"
    sql.write_text("ALTER TABLE t DROP COLUMN c;\n")
    baseline = Baseline.of(tmp_path / "b.json", [finding(sql, 1), finding(code="CFG005",
                                                                         family=Family.CONFIG)])
    selection = BaselineSelection(baseline)
    split = split_all([finding(code="CFG005", family=Family.CONFIG)], [selection])
    assert split.shown == []
    assert [e.code for e in selection.stale()] == ["RSK003"]
    assert [e.code for e in selection.without_stale().entries] == ["CFG005"]


def test_integrity_and_database_findings_are_never_baselined(tmp_path: Path) -> None:
    kept = [finding(code="INT001", family=Family.INTEGRITY),
            finding(code="DB001", family=Family.DATABASE)]
    baseline = Baseline.of(tmp_path / "b.json", kept)
    assert baseline.entries == []
    assert split_all(kept, [BaselineSelection(baseline)]).shown == kept


def test_markdown_escapes_what_findings_quote() -> None:
    text = render_markdown([], [finding(message="a | b <script>x</script>")])
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "✅" not in text and "0 new or changed migration(s)" in text
    assert "✅ no findings" in render_markdown([], [])
