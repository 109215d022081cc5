"""dependencies.json and environments.json: every CFG finding with its file, JSON path and line;
the shipped schemas; the rule catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from helpers import (
    DOWN_SQL,
    UP_SQL,
    codes,
    dependencies_json,
    entry,
    environments_json,
    line_of,
    only,
    pair,
    service_files,
    validate,
    write_service,
)

from pytest_migorch.catalogue import all_rules, rule_by_code
from pytest_migorch.findings import Family, Severity
from pytest_migorch.model import RiskLevel
from pytest_migorch.project.config import RULES, load_schema, parse_duration

REPO = Path(__file__).resolve().parents[2]


def deps_path(root: Path, service: str = "svc") -> Path:
    return root / service / "migrations" / "dependencies.json"


def envs_path(root: Path, service: str = "svc") -> Path:
    return root / service / "migrations" / "environments.json"


def test_a_complete_service_has_no_findings(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(
        {"000001_a": {}, "000002_b": {"depends_on": ["000001"]},
         "000003_dev": {"depends_on": ["1"]}},
        environments={"development": ["development/000003_dev.up.sql"], "production": []},
        env_dirs={"000003_dev": "development"}))
    result = validate(tmp_path)
    assert result.findings == []
    service = result.project.services["svc"]
    assert service.has_metadata and service.has_environments
    assert service.environment_names() == ["development", "production"]
    assert service.environments["development"].versions == (3,)
    assert [m.version for m in service.migrations_for("development")] == [1, 2, 3]
    assert [m.version for m in service.migrations_for("production")] == [1, 2]


def test_metadata_is_attached_with_defaults(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({
        "000001_a": {"risk_level": "high", "estimated_duration": "2m30s",
                     "affects_tables": ["public.users", "orders"], "description": "Users"},
        "000002_b": {"transactional": False, "depends_on": ["000001", "other:7"]},
    }))
    write_service(tmp_path, "other", service_files(["7_x"]))
    project = validate(tmp_path).project
    first, second = project.services["svc"].migrations[1], project.services["svc"].migrations[2]
    assert first.meta is not None and second.meta is not None
    assert first.meta.description == "Users"
    assert first.meta.risk_level is RiskLevel.HIGH
    assert first.meta.estimated_seconds == 150.0
    assert first.meta.affects_tables == ("public.users", "orders")
    assert first.transactional and first.reversible
    assert not second.transactional
    assert [(d.service, d.version, d.text) for d in second.depends_on] == [
        ("svc", 1, "000001"), ("other", 7, "other:7")]
    text = deps_path(tmp_path).read_text()
    assert second.depends_on[1].line == line_of(text, '"other:7"')
    assert first.meta.file == deps_path(tmp_path)
    assert first.meta.line == line_of(text, '"000001": {')


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45.0), ("2m30s", 150.0), ("1h", 3600.0), ("500ms", 0.5), ("1.5h", 5400.0),
     ("", 0.0), ("soon", 0.0), ("10", 0.0), ("1s x", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_protected_environments(tmp_path: Path) -> None:
    files = service_files(["000001_a"], environments={"production": [], "dev": []})
    files["environments.json"] = json.dumps({"environments": {
        "production": {"migrations": []}, "dev": {"migrations": []},
        "live": {"migrations": [], "protected": True}}})
    write_service(tmp_path, "svc", files)
    envs = validate(tmp_path).project.services["svc"].environments
    assert {name: env.protected for name, env in envs.items()} == {
        "production": True, "dev": False, "live": True}


# --- CFG001 invalid JSON -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dependencies.json", "environments.json"])
def test_invalid_json_cfg001_with_line_and_column(tmp_path: Path, name: str) -> None:
    files = service_files(["000001_a"])
    files[name] = '{\n  "x": 1,\n  "y": ,\n}\n'
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG001")
    assert finding.severity is Severity.ERROR
    assert finding.file == tmp_path / "svc" / "migrations" / name
    assert finding.line == 3
    assert "line 3, column 8" in finding.message


@pytest.mark.parametrize("name", ["dependencies.json", "environments.json"])
def test_empty_json_file_cfg001(tmp_path: Path, name: str) -> None:
    files = service_files(["000001_a"])
    files[name] = ""
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG001")
    assert finding.line == 1
    assert finding.file is not None and finding.file.name == name


def test_non_utf8_json_cfg001_names_the_line(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["dependencies.json"] = b'{\n  "migrations": {\n    "1": "caf\xe9"\n  }\n}\n'
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG001")
    assert finding.line == 3
    assert "not UTF-8" in finding.message
    assert finding.hint == "Re-save the file as UTF-8."


def test_invalid_dependencies_json_means_no_metadata(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["dependencies.json"] = "{"
    del files["000001_a.down.sql"]
    write_service(tmp_path, "svc", files)
    result = validate(tmp_path)
    service = result.project.services["svc"]
    assert not service.has_metadata and service.migrations[1].meta is None
    # Without usable metadata a missing down file is only a warning.
    assert only(result.findings, "FIL006").severity is Severity.WARNING


def test_json_with_byte_order_mark_is_reported(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["environments.json"] = "\ufeff" + str(files["environments.json"])
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG001")
    assert "BOM" in finding.message


# --- CFG002 schema violations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "needle", "path_text"),
    [
        ({"risk_level": "extreme"}, '"extreme"', '$.migrations["000002"].risk_level'),
        ({"estimated_duration": "soon"}, '"soon"', '$.migrations["000002"].estimated_duration'),
        ({"depends_on": ["first"]}, '"first"', '$.migrations["000002"].depends_on[0]'),
        ({"depends_on": ["000001\n"]}, '"000001\\n"', '$.migrations["000002"].depends_on[0]'),
        ({"affects_tables": ["a b"]}, '"a b"', '$.migrations["000002"].affects_tables[0]'),
        ({"description": ""}, '"description": ""', '$.migrations["000002"].description'),
        ({"transactional": "no"}, '"transactional"', '$.migrations["000002"].transactional'),
        ({"depends_on": "000001"}, '"depends_on": "000001"', '$.migrations["000002"].depends_on'),
    ],
)
def test_schema_violation_cfg002_with_path_and_line(
    tmp_path: Path, overrides: dict[str, object], needle: str, path_text: str
) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {}, "000002_b": overrides}))
    result = validate(tmp_path)
    finding = only(result.findings, "CFG002")
    assert finding.severity is Severity.ERROR
    assert finding.file == deps_path(tmp_path)
    assert finding.line == line_of(deps_path(tmp_path).read_text(), needle)
    assert finding.migration == "000002_b"
    assert finding.message.startswith(path_text + " in dependencies.json")
    # An invalid entry is not used, and not also reported as missing.
    assert result.project.services["svc"].migrations[2].meta is None
    assert "CFG008" not in codes(result.findings)


def test_missing_required_field_points_at_the_entry(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    body = entry()
    del body["risk_level"]
    files["dependencies.json"] = dependencies_json({"000001": body})
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG002")
    assert finding.line == 3
    assert "'risk_level' is a required property" in finding.message


@pytest.mark.parametrize("key", ["abc", "1a", "\u00b2", "\u0661", "1\n", " 1", "-1"])
def test_version_keys_must_be_ascii_digits(tmp_path: Path, key: str) -> None:
    files = service_files(["000001_a"])
    files["dependencies.json"] = dependencies_json({"000001": entry(), key: entry()})
    write_service(tmp_path, "svc", files)
    result = validate(tmp_path)
    finding = only(result.findings, "CFG002")
    # The line of the bad key itself.
    assert finding.line == line_of(str(files["dependencies.json"]), json.dumps(key) + ": {")
    assert finding.message.startswith("key $.migrations")
    assert "does not match '^[0-9]+$'" in finding.message
    assert codes(result.findings) == ["CFG002"]


def test_huge_version_key_and_dependency(tmp_path: Path) -> None:
    huge = "9" * 5000
    files = service_files(["000001_a"])
    files["dependencies.json"] = dependencies_json({"000001": entry(depends_on=[huge]),
                                                    huge: entry(), "8" * 5000: entry()})
    write_service(tmp_path, "svc", files)
    result = validate(tmp_path)
    assert codes(result.findings) == ["CFG007", "CFG007", "GRF002"]
    unknown = only(result.findings, "GRF002")
    assert len(unknown.message) < 300


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("dependencies.json", "[]", "$ in dependencies.json: [] is not of type 'object'"),
        ("environments.json", "[]", "$ in environments.json: [] is not of type 'object'"),
        ("environments.json", "3", "$ in environments.json: 3 is not of type 'object'"),
        ("dependencies.json", '{"migrations": []}', "$.migrations in dependencies.json"),
        ("environments.json", '{"environments": {}}', "$.environments in environments.json"),
        ("environments.json", '{"environments": {"dev": {"migrations": "x"}}}',
         "$.environments.dev.migrations in environments.json"),
    ],
)
def test_documents_of_the_wrong_shape(tmp_path: Path, name: str, text: str,
                                      message: str) -> None:
    files = service_files(["000001_a"])
    files[name] = text
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG002")
    assert finding.message.startswith(message)
    assert finding.file is not None and finding.file.name == name
    assert finding.line == 1


def test_bad_environment_name_points_at_the_name(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["environments.json"] = environments_json({"production": [], "my env": []})
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG002")
    assert finding.line == line_of(str(files["environments.json"]), '"my env"')
    assert finding.message.startswith('key $.environments["my env"]')


def test_deeply_nested_values_are_findings(tmp_path: Path) -> None:
    deep = "[" * 900 + "1" + "]" * 900
    files = service_files(["000001_a"])
    files["dependencies.json"] = (
        '{"migrations": {"000001": {"description": "d", "affects_tables": [], '
        f'"risk_level": "low", "estimated_duration": "1s", "depends_on": [{deep}, {deep}]}}}}}}')
    write_service(tmp_path, "svc", files)
    assert "CFG002" in codes(validate(tmp_path).findings)


# --- CFG003 unknown keys, CFG004 duplicate keys --------------------------------------------------


def test_unknown_key_cfg003_in_an_entry(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {"risk": "low"}}))
    finding = only(validate(tmp_path).findings, "CFG003")
    assert finding.severity is Severity.ERROR
    assert finding.line == line_of(deps_path(tmp_path).read_text(), '"risk"')
    assert finding.migration == "000001_a"
    assert "'risk'" in finding.message and '$.migrations["000001"]' in finding.message


def test_unknown_keys_cfg003_at_the_top_and_in_an_environment(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["environments.json"] = (
        '{\n  "environments": {\n    "production": {"migrations": [], "protect": true}\n  },\n'
        '  "version": 2\n}\n')
    write_service(tmp_path, "svc", files)
    found = sorted((f.line, f.message) for f in validate(tmp_path).findings
                   if f.code == "CFG003")
    assert [line for line, _ in found] == [3, 5]
    assert "'protect'" in found[0][1] and "'version'" in found[1][1]


def test_duplicate_key_cfg004(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    text = str(files["dependencies.json"])
    files["dependencies.json"] = text.replace('"risk_level": "low"',
                                              '"risk_level": "high",\n"risk_level": "low"')
    write_service(tmp_path, "svc", files)
    result = validate(tmp_path)
    finding = only(result.findings, "CFG004")
    assert finding.severity is Severity.ERROR
    assert finding.line == line_of(str(files["dependencies.json"]), '"risk_level": "low"')
    assert '$.migrations["000001"].risk_level' in finding.message
    assert finding.migration == "000001_a"
    assert result.project.services["svc"].migrations[1].meta is not None


# --- CFG005/CFG006 missing files -----------------------------------------------------------------


def test_missing_json_files_are_warnings(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", pair("000001_a"))
    result = validate(tmp_path)
    assert codes(result.findings) == ["CFG005", "CFG006"]
    assert all(f.severity is Severity.WARNING for f in result.findings)
    assert {f.file for f in result.findings} == {tmp_path / "svc" / "migrations"}
    service = result.project.services["svc"]
    assert not service.has_metadata and not service.has_environments
    assert service.environment_names() == ["default"]


def test_strict_turns_missing_files_into_errors(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", pair("000001_a"))
    result = validate(tmp_path, strict=True)
    assert codes(result.errors) == ["CFG005", "CFG006"]


# --- CFG007 .. CFG009 entries --------------------------------------------------------------------


def test_entry_without_files_cfg007(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["dependencies.json"] = dependencies_json({"000001": entry(), "000002": entry()})
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG007")
    assert finding.line == line_of(str(files["dependencies.json"]), '"000002": {')
    assert finding.migration == "000002"
    assert finding.file == deps_path(tmp_path)


def test_missing_entry_cfg008(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files.update(pair("000002_b", "development"))
    files["environments.json"] = environments_json(
        {"development": ["development/000002_b.up.sql"]})
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG008")
    assert finding.severity is Severity.ERROR
    assert finding.file == tmp_path / "svc" / "migrations" / "development" / "000002_b.up.sql"
    assert finding.migration == "000002_b"
    assert finding.environment == "development"


def test_duplicate_entry_cfg009(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["dependencies.json"] = dependencies_json({"000001": entry(), "1": entry()})
    write_service(tmp_path, "svc", files)
    finding = only(validate(tmp_path).findings, "CFG009")
    assert finding.line == line_of(str(files["dependencies.json"]), '"1": {')
    assert "'000001'" in finding.message and "'1'" in finding.message


# --- CFG010 .. CFG014 environments and reversibility ---------------------------------------------


def _env_service(tmp_path: Path, listed: list[str]) -> Path:
    files = service_files(["000001_a", "000003_dev"], env_dirs={"000003_dev": "development"},
                          environments={"development": listed, "production": []})
    write_service(tmp_path, "svc", files)
    return envs_path(tmp_path)


def test_environment_lists_missing_file_cfg010(tmp_path: Path) -> None:
    path = _env_service(tmp_path, ["development/000003_dev.up.sql",
                                   "development/000009_nope.up.sql"])
    finding = only(validate(tmp_path).findings, "CFG010")
    assert finding.file == path
    assert finding.line == line_of(path.read_text(), "000009_nope")
    assert finding.environment == "development"


def test_environment_lists_base_file_cfg012(tmp_path: Path) -> None:
    path = _env_service(tmp_path, ["development/000003_dev.up.sql", "000001_a.up.sql"])
    finding = only(validate(tmp_path).findings, "CFG012")
    assert finding.severity is Severity.WARNING
    assert finding.line == line_of(path.read_text(), '"000001_a.up.sql"')
    assert finding.migration == "000001_a"


def test_environment_lists_down_file_cfg013(tmp_path: Path) -> None:
    path = _env_service(tmp_path, ["development/000003_dev.down.sql"])
    result = validate(tmp_path)
    finding = only(result.findings, "CFG013")
    assert finding.severity is Severity.ERROR
    assert finding.line == line_of(path.read_text(), "000003_dev.down.sql")
    assert finding.migration == "000003_dev"
    # Listing only the down file does not list the migration.
    assert only(result.findings, "CFG011").migration == "000003_dev"


def test_unlisted_environment_file_cfg011(tmp_path: Path) -> None:
    _env_service(tmp_path, [])
    result = validate(tmp_path)
    finding = only(result.findings, "CFG011")
    assert finding.severity is Severity.WARNING
    assert finding.file == tmp_path / "svc" / "migrations" / "development" / "000003_dev.up.sql"
    assert finding.environment == "development"


def test_listed_paths_tolerate_dot_slash_and_backslashes(tmp_path: Path) -> None:
    _env_service(tmp_path, ["./development/000003_dev.up.sql"])
    assert validate(tmp_path).findings == []
    _env_service(tmp_path, ["development\\000003_dev.up.sql"])
    assert validate(tmp_path).findings == []


def test_irreversible_with_down_cfg014(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files({"000001_a": {"reversible": False}}))
    finding = only(validate(tmp_path).findings, "CFG014")
    assert finding.severity is Severity.WARNING
    assert finding.file == deps_path(tmp_path)
    assert finding.line == line_of(deps_path(tmp_path).read_text(), '"000001": {')
    assert finding.migration == "000001_a"


def test_irreversible_without_down_is_fine(tmp_path: Path) -> None:
    files = service_files({"000001_a": {"reversible": False}})
    del files["000001_a.down.sql"]
    write_service(tmp_path, "svc", files)
    result = validate(tmp_path)
    assert result.findings == []
    assert not result.project.services["svc"].migrations[1].reversible


def test_missing_down_without_entry_reports_the_entry_only(tmp_path: Path) -> None:
    files = service_files(["000001_a"])
    files["000002_b.up.sql"] = UP_SQL
    write_service(tmp_path, "svc", files)
    assert codes(validate(tmp_path).findings) == ["CFG008"]


def test_environment_migration_without_environments_json(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), **pair("000002_b", "development"),
                                    "dependencies.json": dependencies_json(
                                        {"1": entry(), "2": entry()})})
    result = validate(tmp_path)
    assert codes(result.findings) == ["CFG006", "CFG011"]
    assert [m.version for m in result.project.services["svc"].migrations_for("default")] == [1]


def test_down_sql_content_is_untouched(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(["000001_a"]))
    migration = validate(tmp_path).project.services["svc"].migrations[1]
    assert migration.down is not None and migration.down.read_text() == DOWN_SQL


# --- schemas and catalogue -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dependencies", "environments"])
def test_shipped_schemas_match_the_published_ones(name: str) -> None:
    published = REPO / "schemas" / f"{name}.schema.json"
    shipped = REPO / "pytest_migorch" / "schemas" / f"{name}.schema.json"
    assert published.read_bytes() == shipped.read_bytes()
    schema = json.loads(shipped.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert load_schema(name) == schema


def test_example_documents_follow_the_schemas() -> None:
    validators = {name: jsonschema.Draft202012Validator(load_schema(name))
                  for name in ("dependencies", "environments")}
    documents = sorted((REPO / "examples" / "services").glob("*/migrations/*.json"))
    assert len(documents) == 6
    for path in documents:
        name = path.stem
        assert list(validators[name].iter_errors(json.loads(path.read_text()))) == [], path


def test_config_rule_codes() -> None:
    assert [rule.code for rule in RULES] == [f"CFG{n:03}" for n in range(1, 15)]
    assert all(rule.family is Family.CONFIG for rule in RULES)


def test_catalogue_codes_are_unique_and_complete() -> None:
    rules = all_rules()
    all_codes = [rule.code for rule in rules]
    assert len(all_codes) == len(set(all_codes))
    names = [rule.name for rule in rules]
    assert len(names) == len(set(names))
    for prefix in ("CFG", "FIL", "GRF"):
        assert any(code.startswith(prefix) for code in all_codes)
    for rule in rules:
        assert rule_by_code(rule.code) is rule
        assert rule.summary and rule.hint
    assert rule_by_code("XXX999") is None


def test_every_rule_is_documented() -> None:
    doc = REPO / "docs" / "findings.md"
    assert doc.is_file(), "docs/findings.md documents every finding code; it must exist"
    text = doc.read_text(encoding="utf-8")
    undocumented = [rule.code for rule in all_rules() if rule.code not in text]
    assert undocumented == []


def test_production_is_protected_by_default_in_any_case(tmp_path: Path) -> None:
    files = service_files(["000001_a"], environments={"Production": [], "PROD": [], "dev": []})
    write_service(tmp_path, "svc", files)
    envs = validate(tmp_path).project.services["svc"].environments
    assert {name: env.protected for name, env in envs.items()} == {
        "Production": True, "PROD": True, "dev": False}


# --- migrations_table ------------------------------------------------------------------------


def _with_table(root: Path, value: object) -> None:
    files = service_files(["000001_a"])
    doc = json.loads(files["dependencies.json"])
    doc["migrations_table"] = value
    files["dependencies.json"] = json.dumps(doc, indent=2)
    write_service(root, "svc", files)


@pytest.mark.parametrize(("value", "expected"), [
    ("schema_migrations", ("public", "schema_migrations")),
    ("audit.gm_versions", ("audit", "gm_versions")),
])
def test_migrations_table_is_loaded(tmp_path: Path, value: str,
                                    expected: tuple[str, str]) -> None:
    _with_table(tmp_path, value)
    result = validate(tmp_path)
    assert result.findings == []
    assert result.project.services["svc"].migrations_table == expected


def test_migrations_table_defaults_to_the_service_table(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", service_files(["000001_a"]))
    assert validate(tmp_path).project.services["svc"].migrations_table == (
        "public", "svc_schema_migrations")


@pytest.mark.parametrize("value", ["a.b.c", "schema migrations", "1table", "", 7, "x;drop"])
def test_bad_migrations_table_is_a_clear_cfg002(tmp_path: Path, value: object) -> None:
    _with_table(tmp_path, value)
    result = validate(tmp_path)
    finding = only(result.findings, "CFG002")
    assert finding.file == deps_path(tmp_path)
    assert finding.message.startswith("$.migrations_table in dependencies.json")
    assert result.project.services["svc"].migrations_table == ("public", "svc_schema_migrations")
