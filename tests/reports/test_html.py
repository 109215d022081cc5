"""The HTML report: its layout, its facts, escaping, the CLI command, the plugin option, and the
page as a real browser (headless Chromium) renders it.

Browser tests skip with one reason when no Chromium can be found, unless
``MIGORCH_TEST_REQUIRE_BROWSER=1`` (set by .ci/run), which makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import dependencies_json, entry, pair, service_files, write_service

import pytest_migorch.pytest_plugin.session  # noqa: F401  (see tests/pytest_plugin)
from pytest_migorch.checks.migration import check_migration, migration_analyser, plan_entry
from pytest_migorch.cli.main import main
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.validation import load_project, validate_project
from pytest_migorch.pytest_plugin.html_hooks import page_paths
from pytest_migorch.reports.html import TestOutcome, build_report, write_report
from pytest_migorch.reports.html_layout import crossings, layered_layout
from pytest_migorch.reports.html_parts import anchor
from pytest_migorch.reports.html_render import render_page

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
HOSTILE = "<img src=x onerror=alert(1)>svc"
HOSTILE_TEXT = "</script><script>alert(2)</script>"
REQUIRE_BROWSER = "MIGORCH_TEST_REQUIRE_BROWSER"


# --- layout -----------------------------------------------------------------------------------


def test_every_node_is_right_of_what_it_depends_on() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("x", "d")]
    layout = layered_layout(["a", "b", "c", "d", "x"], edges)
    layer = {n: i for i, nodes in enumerate(layout.layers) for n in nodes}
    assert layer == {"a": 0, "x": 0, "b": 1, "c": 2, "d": 3}  # longest path, not shortest
    for a, b in edges:
        assert layout.position[a][0] < layout.position[b][0]


def test_barycentre_ordering_removes_crossings() -> None:
    # In input order the two chains cross between the layers: a1->b2 and a2->b1.
    nodes = ["a1", "a2", "b1", "b2", "c1", "c2"]
    edges = [("a1", "b2"), ("a2", "b1"), ("b1", "c2"), ("b2", "c1")]
    assert crossings([["a1", "a2"], ["b1", "b2"], ["c1", "c2"]], edges) == 2
    layout = layered_layout(nodes, edges)
    assert crossings(layout.layers, edges) == 0


def test_a_long_edge_passes_between_the_nodes_of_the_layers_it_crosses() -> None:
    layout = layered_layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c"),
                                                   ("c", "d"), ("a", "d")])
    assert len(layout.routes[("a", "c")]) == 1 and len(layout.routes[("a", "d")]) == 2
    bends = [slot for route in layout.routes.values() for slot in route]
    assert not set(bends) & set(layout.position.values())
    assert layout.routes[("a", "c")][0][0] == layout.position["b"][0]  # in b's layer


def test_nodes_without_edges_go_in_a_grid_below() -> None:
    lonely = [f"n{i}" for i in range(12)]
    layout = layered_layout(["a", "b", *lonely], [("a", "b")])
    rows = {layout.position[n][1] for n in lonely}
    assert len(rows) == 3  # 5 a row, not one column of 12
    assert min(rows) > layout.position["a"][1]
    assert len(set(layout.position.values())) == 14
    assert layout.height < 5 * 46 + 4 * 18 + 30


def test_a_cycle_still_draws() -> None:
    layout = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "a"), ("b", "c")])
    assert set(layout.position) == {"a", "b", "c"}


# --- the facts --------------------------------------------------------------------------------


def test_report_has_every_migration_in_run_order_with_the_plan_facts() -> None:
    project = load_project(EXAMPLES)
    report = build_report(project)
    graph = ProjectGraph(project)
    orders = {service.name: service for service in report.services}
    assert set(orders) == {"user-service", "order-service", "notification-service"}
    staging = next(e for e in orders["order-service"].environments if e.name == "staging")
    assert staging.order == [m.version for m in graph.order("order-service", "staging")]
    high = orders["order-service"].migrations[4]
    migration = project.services["order-service"].migrations[4]
    assert high.entry == plan_entry(migration, check_migration(migration, "order_service"))
    assert high.entry.risk_effective.value == "high" and high.environments == [
        "development", "production", "staging"]
    assert ("order-service", 4) in report.nodes
    assert (("user-service", 1), ("order-service", 1)) in report.edges


def hostile_project(root: Path) -> Path:
    """A service whose name, description and SQL would run script if left unescaped."""
    files = service_files({"000001_a": {"description": HOSTILE_TEXT}})
    files["000002_b.up.sql"] = f"SELECT '{HOSTILE_TEXT}' FROM;\n"
    files["000002_b.down.sql"] = "SELECT 1;\n"
    files["dependencies.json"] = dependencies_json({
        "000001": entry(description=HOSTILE_TEXT),
        "000002": entry(depends_on=["000001"], affects_tables=[]),
    })
    write_service(root, HOSTILE, files)
    write_service(root, "plain", service_files({"000001_p": {"depends_on": [f"{HOSTILE}:1"]}}))
    return root


def test_findings_are_those_of_validate(tmp_path: Path) -> None:
    project = load_project(hostile_project(tmp_path / "services"))
    report = build_report(project)
    expected = validate_project(load_project(project.root), analyser=migration_analyser())
    shown = ([f for s in report.services for f in s.findings] + report.project_findings
             + [f for s in report.services for v in s.migrations.values() for f in v.findings])
    assert sorted(map(repr, shown)) == sorted(map(repr, expected.findings))
    assert any(f.code == "SQL007" for f in shown)


def test_user_text_is_escaped(tmp_path: Path) -> None:
    page = render_page(build_report(load_project(hostile_project(tmp_path / "services"))))
    assert page.count("<script") == 1  # the page's own script
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;svc" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_outcomes_and_failure_text_reach_their_migration() -> None:
    failure = "schema differs after down:\n  + table order_service.<leftover>"
    outcomes = [TestOutcome("x::roundtrip[staging]::000004", "failed", "order-service",
                            "000004_drop_legacy_status", "staging", failure),
                TestOutcome("x::sql[000001_create_orders]", "passed", "order-service",
                            "000001_create_orders")]
    report = build_report(load_project(EXAMPLES), outcomes=outcomes)
    view = next(s for s in report.services if s.name == "order-service").migrations[4]
    assert [o.outcome for o in view.outcomes] == ["failed"]
    page = render_page(report)
    assert "schema differs after down:\n  + table order_service.&lt;leftover&gt;" in page
    assert "tests: 1 failed, 1 passed" in page


# --- migorch report ---------------------------------------------------------------------------


def test_cli_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "report.html"
    code = main(["report", "--root", str(EXAMPLES), "--all", "--html", str(target)])
    assert code == 0 and capsys.readouterr().out == f"wrote {target}\n"
    page = target.read_text(encoding="utf-8")
    assert f'id="{anchor(("order-service", 4))}"' in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch


def test_cli_unwritable_path_is_a_usage_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["report", "--root", str(EXAMPLES), "--html", str(blocker / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the HTML report to" in err and "Traceback" not in err


def test_cli_live_state(services: Path, fresh_db: str, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--root", str(services), "--database-url", fresh_db, "--env", "staging"]
    assert main(["up", "user-service", *common]) == 0
    target = tmp_path / "live.html"
    assert main(["report", "--all", "--html", str(target), *common]) == 0
    page = target.read_text(encoding="utf-8")
    assert "live state of environment <b>staging</b>" in page
    assert "applied 4, pending 0, failed 0, drift 0" in page  # user-service in staging
    assert page.count("<h4>Last runs</h4>") == 1 and "not initialised" in page
    capsys.readouterr()


def test_cli_live_state_unavailable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "r.html"
    url = "postgres://app:hunter2-S3cret@127.0.0.1:1/app?connect_timeout=2"
    code = main(["report", "--root", str(EXAMPLES), "--html", str(target),
                 "--database-url", url, "--env", "staging"])
    err = capsys.readouterr().err
    page = target.read_text(encoding="utf-8")
    assert code == 1 and "live state unavailable" in page
    assert "hunter2-S3cret" not in page + err


# --- the plugin -------------------------------------------------------------------------------


def test_plugin_writes_outcomes_and_round_trip_diffs_under_xdist(
        pytester: pytest.Pytester, pg_server: PostgresServer) -> None:
    root = pytester.path / "services"
    write_service(root, "shop", {
        **pair("000001_items", up="CREATE TABLE items (id int);\nCREATE TABLE extra (id int);\n",
               down="DROP TABLE items;\n"),
        "dependencies.json": dependencies_json(
            {"000001": entry(affects_tables=["items", "extra"])}),
    })
    result = pytester.runpytest_subprocess(
        "--migorch", "services", "-n", "2", "--migorch-html", "out/page.html",
        "--migorch-provider", "dsn", "--migorch-dsn", pg_server.admin_conninfo)
    result.stdout.fnmatch_lines(["*generated migorch HTML report: *page.html*"])
    page = (pytester.path / "out" / "page.html").read_text(encoding="utf-8")
    failed = re.search(r"<h3>Failures</h3>(.*?)</ul>", page, re.S)
    assert failed is not None and "roundtrip[default]::000001_items" in failed.group(1)
    assert "extra" in failed.group(1)  # the table the down file left behind
    assert re.search(r"tests: 1 failed, \d+ passed", page)


# --- in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get(REQUIRE_BROWSER, "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"no Chromium found and {REQUIRE_BROWSER} is set", pytrace=False)
    pytest.skip("browser tests skipped: no chromium on PATH (apt-get install chromium)")


def browse(chromium: str, tmp_path: Path, url: str, *extra: str) -> str:
    """Load ``url`` in headless Chromium and return stdout (the DOM with ``--dump-dom``)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", *extra, url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def hostile_page(tmp_path: Path) -> Path:
    target = tmp_path / "page" / "report.html"
    write_report(build_report(load_project(hostile_project(tmp_path / "services"))), target)
    return target


def test_browser_renders_services_findings_and_graph(chromium: str, tmp_path: Path,
                                                     hostile_page: Path) -> None:
    dom = browse(chromium, tmp_path, hostile_page.as_uri(), "--dump-dom")
    assert "<h2>&lt;img src=x onerror=alert(1)&gt;svc</h2>" in dom and "<h2>plain</h2>" in dom
    assert "<img" not in dom and dom.count("<script") == 1  # nothing injected ran or rendered
    assert "SQL007" in dom  # the invalid statement's finding
    node = re.search(r'<a href="#([^"]+)" class="node-link"><g class="node[^"]*"', dom)
    assert node is not None and f'id="{node.group(1)}"' in dom  # a node links to its details
    assert "<form id=\"filters\" onsubmit" in dom  # the script showed the filter form


def test_browser_filters_by_service_and_risk(chromium: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_report(build_report(load_project(EXAMPLES)), target)
    dom = browse(chromium, tmp_path, target.as_uri() + "?service=order-service", "--dump-dom")
    assert 'class="service filtered-out" id="svc-user-service"' in dom
    assert 'class="service" id="svc-order-service"' in dom
    classes = {service: cls for cls, service in re.findall(
        r'<g class="([^"]*)" data-key="([^":]+):', dom)}
    assert "dimmed" in classes["user-service"] and "dimmed" not in classes["order-service"]
    dom = browse(chromium, tmp_path, target.as_uri() + "?risk=high", "--dump-dom")
    shown = re.findall(r'<tr class="migration-row" [^>]*>.*?</tr>', dom)
    assert shown and all("000004_drop_legacy_status" in row for row in shown)
    assert re.search(r'id="shown-count"[^>]*>3 row\(s\) shown<', dom)


def test_browser_shows_everything_with_scripts_off(chromium: str, tmp_path: Path) -> None:
    """``--dump-dom`` itself needs scripts, so "off" is the page without its one script."""
    page = render_page(build_report(load_project(EXAMPLES)))
    target = tmp_path / "report.html"
    target.write_text(re.sub(r"<script>.*?</script>", "", page, flags=re.S), encoding="utf-8")
    dom = browse(chromium, tmp_path, target.as_uri() + "?risk=high", "--dump-dom")
    assert "filtered-out" not in dom.replace(".filtered-out", "")
    assert '<form id="filters" hidden=""' in dom


def test_browser_screenshot(chromium: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_report(build_report(load_project(EXAMPLES)), target)
    shot = tmp_path / "shot.png"
    browse(chromium, tmp_path, target.as_uri(), f"--screenshot={shot}", "--window-size=1400,1000")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_report_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: migorch report")


def test_one_page_per_services_root() -> None:
    roots = (Path("/a/services"), Path("/b/more"))
    assert page_paths(Path("out/report.html"), roots) == [
        (roots[0], Path("out/report.html")), (roots[1], Path("out/report-more.html"))]
