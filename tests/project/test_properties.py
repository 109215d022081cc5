"""Property: whatever lies in a migrations directory, validation returns findings, never raises.

Hypothesis writes random file names (digits, underscores, dots, unicode, up/down/sql fragments)
and random or near-valid JSON documents into a temporary services root, then runs discovery,
configuration, the graph and both renderers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_migorch.catalogue import all_rules
from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Finding
from pytest_migorch.project.validation import load_project, validate_project
from pytest_migorch.reports.text import render_json, render_text

KNOWN_CODES = {rule.code for rule in all_rules()}
#: Raise for a longer hunt: MIGORCH_HYPOTHESIS_EXAMPLES=5000 pytest tests/test_properties.py
MAX_EXAMPLES = int(os.environ.get("MIGORCH_HYPOTHESIS_EXAMPLES", "100"))

FRAGMENTS = ["0", "1", "2", "000001", "000002", "01", "18446744073709551616",
             "99999999999999999999", "_", "_", ".", ".", "up", "down", "sql", ".up.sql",
             ".down.sql", "bak", "a", "é", "日本", " ", "\n", "-", "json", "UP", "\u0661",
             "\u00b2"]
name_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    max_size=3)
file_names = st.lists(st.sampled_from(FRAGMENTS) | name_text, min_size=1, max_size=7).map(
    "".join).filter(lambda n: n not in (".", "..") and len(os.fsencode(n)) <= 200)
directories = st.sampled_from(["", "", "", "development/", "staging/", "development/old/",
                               "prod uction/"])
contents = st.one_of(
    st.sampled_from(["", "SELECT 1;\n", "  \n", "CREATE TABLE t (id int);\n"]),
    st.binary(max_size=12),
    st.text(max_size=12),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
versions = st.sampled_from(["000001", "1", "2", "000002", "3", "99", "18446744073709551616",
                            "x", "", "\u00b2", "1\n", "0"])
references = versions | st.sampled_from(["svc:1", "other:1", "other:2", "nope:1", "svc:x",
                                         ":1", "other:"]) | st.text(max_size=4)
dependency_entry = st.fixed_dictionaries(
    {
        "description": st.sampled_from(["d", ""]) | st.text(max_size=4),
        "depends_on": st.lists(references, max_size=3),
        "affects_tables": st.lists(st.sampled_from(["t", "s.t", "a b"]), max_size=2),
        "risk_level": st.sampled_from(["low", "medium", "high", "extreme"]),
        "estimated_duration": st.sampled_from(["1s", "2m30s", "soon", "", "1.5h"]),
    },
    optional={"transactional": st.booleans() | st.none(), "reversible": st.booleans(),
              "risk": json_values},
)
dependencies_documents = st.fixed_dictionaries(
    {"migrations": st.dictionaries(versions, dependency_entry | json_values, max_size=4)
     | json_values},
    optional={"$schema": st.text(max_size=3), "version": json_values},
)
listed_files = st.sampled_from(["development/1_a.up.sql", "1_a.up.sql", "staging/2_b.up.sql",
                                "development/1_a.down.sql", "./development/2_x.up.sql", ""])
environment_body = st.fixed_dictionaries(
    {"migrations": st.lists(listed_files | st.text(max_size=5), max_size=3)},
    optional={"protected": st.booleans() | st.integers()},
)
environments_documents = st.fixed_dictionaries(
    {"environments": st.dictionaries(
        st.sampled_from(["development", "staging", "production", "bad name", ""])
        | st.text(max_size=4),
        environment_body | json_values, max_size=3) | json_values},
    optional={"extra": json_values},
)


def _serialise(value: Any, indent: int | None) -> str:
    return json.dumps(value, indent=indent)


def json_file(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[str | bytes | None]:
    """Absent, a near-valid document, any JSON value, or broken text and bytes."""
    return st.one_of(
        st.none(),
        st.builds(_serialise, documents, st.sampled_from([None, 2])),
        st.builds(_serialise, json_values, st.none()),
        st.text(max_size=20),
        st.binary(max_size=20),
        st.builds(lambda text, cut: text[:cut], st.builds(_serialise, documents, st.just(2)),
                  st.integers(min_value=0, max_value=60)),
    )


def _write(path: Path, content: str | bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    except (OSError, UnicodeError):
        pass  # the file system refused this name: not an input the tool can ever see


@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    files=st.lists(st.tuples(directories, file_names, contents), max_size=8),
    dependencies=json_file(dependencies_documents),
    environments=json_file(environments_documents),
)
def test_validation_returns_findings_and_never_raises(
    files: list[tuple[str, str, str | bytes]],
    dependencies: str | bytes | None,
    environments: str | bytes | None,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        migrations = root / "svc" / "migrations"
        migrations.mkdir(parents=True)
        for directory, name, content in files:
            _write(migrations / (directory + name), content)
        if dependencies is not None:
            _write(migrations / "dependencies.json", dependencies)
        if environments is not None:
            _write(migrations / "environments.json", environments)
        other = root / "other" / "migrations"
        other.mkdir(parents=True)
        (other / "000001_o.up.sql").write_text("SELECT 1;")

        project = load_project(root)
        result = validate_project(project)

        assert all(isinstance(f, Finding) for f in result.findings)
        assert {f.code for f in result.findings} <= KNOWN_CODES
        for finding in result.findings:
            assert finding.message and finding.hint
            if finding.file is not None:
                assert root in finding.file.parents or finding.file == root
            if finding.line is not None:
                assert finding.line >= 1
        # Orders resolve exactly when no cycle was reported.
        cyclic = any(f.code == "GRF001" for f in result.findings)
        failures = 0
        for environment in project.environment_names():
            try:
                result.graph.order_all(environment)
            except ConfigurationError:
                failures += 1
        assert (failures > 0) == cyclic
        # Both renderers accept every finding.
        render_text(result.findings, relative_to=root)
        json.dumps(render_json(result.findings, root=root, services=list(project.services)))
        strict = validate_project(project, strict=True)
        assert len(strict.errors) == len(result.findings)
