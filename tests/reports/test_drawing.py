"""``migorch graph``: the dependency graph as Graphviz dot and Mermaid (drawing.py)."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import entry, service_files, write_service

from pytest_migorch.project.validation import load_project
from pytest_migorch.reports.drawing import build_drawing, render, to_dot, to_mermaid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
ALL = ["notification-service", "order-service", "user-service"]


def edges_of_dot(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r'^  "([^"]+)" -> "([^"]+)";$', text, re.M))


def test_dot_of_all_services_has_every_dependency() -> None:
    project = load_project(EXAMPLES)
    text = to_dot(build_drawing(project, ALL))
    assert text.startswith("digraph migrations {") and text.rstrip().endswith("}")
    assert text.count("subgraph cluster_") == 3
    assert edges_of_dot(text) == {
        ("user-service:1", "user-service:2"), ("user-service:2", "user-service:3"),
        ("user-service:1", "user-service:4"), ("user-service:1", "user-service:5"),
        ("user-service:1", "order-service:1"), ("order-service:1", "order-service:2"),
        ("order-service:1", "order-service:3"), ("order-service:1", "order-service:4"),
        ("order-service:1", "order-service:5"), ("user-service:3", "order-service:5"),
        ("notification-service:1", "notification-service:2"),
        ("user-service:1", "notification-service:2"),
        ("order-service:1", "notification-service:2"),
        ("notification-service:1", "notification-service:3"),
    }
    # High risk in red, environment-only dashed and labelled.
    assert re.search(r'"order-service:4" \[label="000004_drop_legacy_status\\nrisk high, 30s", '
                     r'style="rounded", color="red"\];', text)
    assert re.search(r'"user-service:3" \[label="[^"]*\(development only\)", '
                     r'style="rounded,dashed"\]', text)
    # Braces balance: the text is well-formed enough for Graphviz.
    assert text.count("{") == text.count("}")


def test_one_service_in_one_environment_shows_its_neighbours() -> None:
    project = load_project(EXAMPLES)
    drawing = build_drawing(project, ["order-service"], "production")
    ids = [f"{m.service}:{m.version}" for m in drawing.nodes]
    assert ids[:4] == ["order-service:1", "order-service:2", "order-service:3",
                       "order-service:4"]
    # The migration it needs and the one that needs it, but no development-only migration.
    assert set(ids[4:]) == {"user-service:1", "notification-service:2"}
    text = to_dot(drawing)
    assert 'label="migrations: order-service (production)"' in text
    assert 'style="dashed"; color="grey";' in text  # the other services' clusters


def test_mermaid_is_a_flowchart_with_safe_ids() -> None:
    project = load_project(EXAMPLES)
    text = to_mermaid(build_drawing(project, ALL))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph s0["notification-service"]' in lines
    assert "  m_user_service_1 --> m_order_service_1" in lines
    assert "  class m_order_service_4 high;" in lines
    assert re.search(r"class (m_\w+,)*m_user_service_3(,m_\w+)* envonly;", text)
    node_ids = re.findall(r"^\s+(\S+)\[", text, re.M)
    assert all(re.fullmatch(r"m_[A-Za-z0-9_]+", n) for n in node_ids)
    assert text.count("subgraph") == text.count("  end")


def test_labels_are_escaped(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({
        '000001_say_"hi"': {},
        "000002_next": entry(depends_on=["000001"], risk_level="high"),
    }))
    project = load_project(tmp_path)
    dot = render(build_drawing(project, ["svc"]), "dot")
    assert '000001_say_\\"hi\\"' in dot
    mermaid = render(build_drawing(project, ["svc"]), "mermaid")
    assert "000001_say_#quot;hi#quot;" in mermaid and '"hi"' not in mermaid
