"""The validator without jsonschema (schema_subset.py) calls valid exactly what jsonschema passes.

Each case is a valid document of a shipped schema with one thing changed; jsonschema (as
config.py runs it, with ECMA-262 patterns) is the judge. The shortcut may say "not valid" where
jsonschema passes only in the cases its docstring names (it then sends the document to
jsonschema); it must never call valid a document jsonschema rejects.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_migorch.project import config, schema_subset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"
CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"

Edit = Callable[[dict[str, Any]], None]


def _entry(doc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = doc["migrations"]["000001"]
    return entry


def _deps() -> dict[str, Any]:
    return {"$schema": "x", "migrations_table": "public.svc_migrations", "migrations": {
        "000001": {"description": "create", "depends_on": ["other:000002"],
                   "affects_tables": ["a", "s.b"], "risk_level": "low",
                   "estimated_duration": "2m30s", "transactional": True, "reversible": True},
        "2": {"description": "d", "depends_on": [], "affects_tables": [], "risk_level": "high",
              "estimated_duration": "500µs"}}}


def _set(key: str, value: Any) -> Edit:
    return lambda doc: _entry(doc).__setitem__(key, value)


def _drop(key: str) -> Edit:
    return lambda doc: _entry(doc).__delitem__(key)


DEPENDENCY_EDITS: dict[str, Edit] = {
    "unchanged": lambda doc: None,
    "risk level not in the enum": _set("risk_level", "extreme"),
    "risk level a number": _set("risk_level", 1),
    "no description": _drop("description"),
    "empty description": _set("description", ""),
    "unknown key": _set("owner", "me"),
    "depends_on repeated": _set("depends_on", ["1", "1"]),
    "depends_on a number": _set("depends_on", [1]),
    "depends_on a string": _set("depends_on", "1"),
    "depends_on bad service": _set("depends_on", ["x:"]),
    "depends_on a trailing newline": _set("depends_on", ["000001\n"]),
    "depends_on nested lists": _set("depends_on", [["1"], ["2"]]),
    "affects_tables with a space": _set("affects_tables", ["a b"]),
    "affects_tables three parts": _set("affects_tables", ["a.b.c"]),
    "affects_tables booleans": _set("affects_tables", [True, 1]),
    "duration with a space": _set("estimated_duration", "2 m"),
    "duration empty": _set("estimated_duration", ""),
    "duration a number": _set("estimated_duration", 30),
    "transactional a string": _set("transactional", "no"),
    "reversible null": _set("reversible", None),
    "entry a list": lambda doc: doc["migrations"].__setitem__("000001", []),
    "key not a version": lambda doc: doc["migrations"].__setitem__("1a", _entry(doc)),
    "key with a trailing newline": lambda doc: doc["migrations"].__setitem__("1\n", _entry(doc)),
    "top-level unknown key": lambda doc: doc.__setitem__("owner", "me"),
    "no migrations": lambda doc: doc.__delitem__("migrations"),
    "migrations a list": lambda doc: doc.__setitem__("migrations", []),
    "bad migrations_table": lambda doc: doc.__setitem__("migrations_table", "Bad-Name"),
    "migrations_table unqualified": lambda doc: doc.__setitem__("migrations_table", "t"),
    "$schema a number": lambda doc: doc.__setitem__("$schema", 3),
}


def _envs() -> dict[str, Any]:
    return {"environments": {
        "production": {"migrations": [], "protected": True},
        "development": {"migrations": ["development/000003_seed.up.sql"], "hooks": {
            "before_run": [{"sql": "hooks/a.sql"}],
            "after_each": [{"command": ["echo", "x"], "timeout": 1.5}]}}}}


def _env(doc: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = doc["environments"]["development"]
    return env


def _hook(**hook: Any) -> Edit:
    return lambda doc: _env(doc)["hooks"].__setitem__("after_run", [hook])


ENVIRONMENT_EDITS: dict[str, Edit] = {
    "unchanged": lambda doc: None,
    "no environments": lambda doc: doc.__setitem__("environments", {}),
    "name starting with a dash": lambda doc: doc["environments"].__setitem__("-x", {
        "migrations": []}),
    "name of 51 characters": lambda doc: doc["environments"].__setitem__("e" * 51, {
        "migrations": []}),
    "name of 50 characters": lambda doc: doc["environments"].__setitem__("e" * 50, {
        "migrations": []}),
    "no migrations": lambda doc: _env(doc).__delitem__("migrations"),
    "an empty file name": lambda doc: _env(doc).__setitem__("migrations", [""]),
    "a file listed twice": lambda doc: _env(doc).__setitem__("migrations", ["a", "a"]),
    "protected a string": lambda doc: _env(doc).__setitem__("protected", "yes"),
    "unknown hook point": lambda doc: _env(doc)["hooks"].__setitem__("before_all", []),
    "hooks a list": lambda doc: _env(doc).__setitem__("hooks", []),
    "hook with sql and command": _hook(sql="a.sql", command=["x"]),
    "hook with neither": _hook(timeout=3),
    "hook with an unknown key": _hook(sql="a.sql", shell=True),
    "command empty": _hook(command=[]),
    "command with an empty word": _hook(command=[""]),
    "command a string": _hook(command="echo"),
    "sql empty": _hook(sql=""),
    "timeout zero": _hook(sql="a.sql", timeout=0),
    "timeout negative": _hook(sql="a.sql", timeout=-1),
    "timeout a boolean": _hook(sql="a.sql", timeout=True),
    "timeout a string": _hook(sql="a.sql", timeout="5"),
    "timeout NaN, which json accepts": _hook(sql="a.sql", timeout=float("nan")),
    "timeout an integer": _hook(sql="a.sql", timeout=5),
    "hook a string": lambda doc: _env(doc)["hooks"].__setitem__("after_run", ["a.sql"]),
}

def _jsonschema_valid(schema: str, document: Any) -> bool:
    return not list(config._validator(schema).iter_errors(document))


def _judge(schema: str, document: Any, case: str) -> None:
    check = config._subset_validator(schema)
    assert check is not None, "the shipped schema uses only supported keywords"
    fast, truth = schema_subset.certainly_valid(check, document), \
        _jsonschema_valid(schema, document)
    assert fast == truth, f"{case}: shortcut {fast}, jsonschema {truth}"


@pytest.mark.parametrize("case", sorted(DEPENDENCY_EDITS))
def test_dependencies_documents(case: str) -> None:
    document = _deps()
    DEPENDENCY_EDITS[case](document)
    _judge("dependencies", document, case)


@pytest.mark.parametrize("case", sorted(ENVIRONMENT_EDITS))
def test_environments_documents(case: str) -> None:
    document = _envs()
    ENVIRONMENT_EDITS[case](document)
    _judge("environments", document, case)


def test_both_verdicts_occur() -> None:
    """The cases above are no test unless each schema has valid and invalid ones."""
    for schema, edits, make in (("dependencies", DEPENDENCY_EDITS, _deps),
                                ("environments", ENVIRONMENT_EDITS, _envs)):
        verdicts = set()
        for edit in edits.values():
            document = copy.deepcopy(make())
            edit(document)
            verdicts.add(_jsonschema_valid(schema, document))
        assert verdicts == {True, False}


def _real_documents() -> list[Path]:
    return sorted([*EXAMPLES.glob("*/migrations/*.json"),
                   *CORPORA.glob("*/services/*/migrations/*.json")])


@pytest.mark.parametrize("path", _real_documents(), ids=str)
def test_real_documents(path: Path) -> None:
    schema = path.name.removesuffix(".json")
    _judge(schema, json.loads(path.read_text(encoding="utf-8")), str(path))


@pytest.mark.parametrize("schema", [
    {"type": "object", "patternProperties": {"^a": {"type": "string"}}},
    {"if": {"type": "string"}, "then": {"minLength": 1}},
    {"$ref": "https://example.com/other.json"},
    {"properties": {"a": {"enum": [1, 2]}}},
    {"type": "tuple"},
    {"items": True},
])
def test_a_schema_outside_the_subset_is_not_compiled(schema: dict[str, Any]) -> None:
    """So a keyword added to a shipped schema is validated by jsonschema, not skipped."""
    assert schema_subset.compile_schema(schema) is None


def test_unique_items_other_than_strings_are_left_to_jsonschema() -> None:
    """jsonschema tells 1 from true; the shortcut does not try, and says "not sure"."""
    check = schema_subset.compile_schema({"type": "array", "uniqueItems": True})
    assert check is not None
    assert check(["a", "b"]) and not check(["a", "a"])
    assert not check([1, True])


def test_a_valid_project_loads_without_jsonschema(tmp_path: Path) -> None:
    """The shortcut is what loads a valid tree (no jsonschema import, an empty validity
    memo), and an invalid one still gets jsonschema's findings (config's fallback)."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pytest_migorch.project.validation import load_project\n"
        f"project = load_project(Path({str(EXAMPLES)!r}))\n"
        "assert not project.all_findings(), project.all_findings()\n"
        "assert 'jsonschema' not in sys.modules\n"
    )
    env = {"MIGORCH_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_a_document_the_shortcut_rejects_gets_jsonschemas_findings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the fallback to jsonschema an invalid file would pass unreported."""
    from helpers import service_files, validate, write_service

    monkeypatch.setenv("MIGORCH_CACHE_DIR", str(tmp_path / "cache"))
    files = service_files(["000001_a"])
    files["dependencies.json"] = str(files["dependencies.json"]).replace(
        '"risk_level": "low"', '"risk_level": "extreme"')
    write_service(tmp_path / "tree", "svc", files)
    findings = [f for f in validate(tmp_path / "tree").findings if f.code == "CFG002"]
    assert findings and "extreme" in findings[0].message
