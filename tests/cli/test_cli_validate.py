"""``migorch validate`` in-process: output format, grouping, JSON shape, exit codes, and every
class of bad input reported with its file, migration and line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import BadInput, bad_inputs, pair, service_files, write_service

from pytest_migorch.cli.main import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "services"
LINE = re.compile(r"^(?P<path>[^\s:][^:]*?)(?::(?P<line>\d+))?: (?P<severity>error|warning) "
                  r"(?P<code>[A-Z]{3}\d{3}) (?P<message>.+)$")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def finding_lines(out: str) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, out.splitlines()) if m]


def foundation(matches: list[re.Match[str]]) -> list[re.Match[str]]:
    """Findings of files, configuration and graph (SQL and risk findings have their own tests)."""
    return [m for m in matches if m["code"][:3] in ("CFG", "FIL", "GRF")]


def assert_summary(err: str, out: str, services: int) -> None:
    """The summary line on stderr counts exactly the findings printed on stdout."""
    lines = finding_lines(out)
    errors = sum(m["severity"] == "error" for m in lines)
    assert err.strip() == (f"{errors} error(s), {len(lines) - errors} warning(s) in "
                           f"{services} service(s)")


def test_examples_validate_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "--root", str(EXAMPLES), "--all")
    assert code == 0
    assert foundation(finding_lines(out)) == []
    assert [m for m in finding_lines(out) if m["severity"] == "error"] == []
    assert err.startswith("0 error(s), ")
    assert_summary(err, out, 3)


def test_examples_validate_as_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_migorch", "validate", "--root", str(EXAMPLES), "--all"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 error(s)" in proc.stderr


def test_one_service(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "user-service", "--root", str(EXAMPLES))
    assert code == 0
    assert "in 1 service(s)" in err


def test_root_from_the_environment(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGORCH_ROOT", str(EXAMPLES))
    code, _, err = run(capsys, "validate", "--all")
    assert code == 0 and "in 3 service(s)" in err


def test_options_may_precede_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--root", str(EXAMPLES), "--json", "validate")
    assert code == 0
    assert json.loads(out)["ok"] is True


@pytest.mark.parametrize("case", bad_inputs(), ids=lambda case: case.id)
def test_bad_input_is_reported_at_its_place(
    case: BadInput, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_service(tmp_path, "svc", case.files)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "validate", "--root", ".", "--all")
    assert code == (1 if case.severity == "error" else 0)
    path = f"svc/migrations/{case.file}"
    location = f"{path}:{case.line}" if case.line else path
    assert f"{location}: {case.severity} {case.code} " in out, out

    code, out, _ = run(capsys, "validate", "--root", ".", "--json")
    document = json.loads(out)
    matching = [f for f in document["findings"] if f["code"] == case.code]
    assert matching, document["findings"]
    assert {(f["file"], f["line"], f["migration"], f["service"], f["check"], f["severity"])
            for f in matching} >= {(path, case.line, case.migration, "svc", case.check,
                                    case.severity)}


def test_human_output_format_and_grouping(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_service(tmp_path, "beta", {**service_files(["000001_a"]), "x.sql": "SELECT 1;"})
    write_service(tmp_path, "alpha", pair("000001_a"))  # no JSON files: two warnings
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "validate", "--root", ".")
    assert code == 1
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("==")] == ["== alpha ==", "== beta =="]
    alpha = lines[lines.index("== alpha ==") + 1: lines.index("== beta ==")]
    beta = lines[lines.index("== beta ==") + 1:]
    assert [m["code"] for m in foundation(finding_lines("\n".join(alpha)))] == ["CFG005",
                                                                               "CFG006"]
    assert [m["code"] for m in foundation(finding_lines("\n".join(beta)))] == ["FIL002"]
    fil002 = foundation(finding_lines("\n".join(beta)))[0]
    assert fil002["path"] == "beta/migrations/x.sql"
    assert fil002["severity"] == "error"
    # Every finding line is followed by its hint.
    for index, line in enumerate(lines):
        if LINE.match(line):
            assert lines[index + 1].startswith("    hint: ")
    assert_summary(err, out, 2)


def test_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    files = service_files(["000001_a"])
    files["000001_a.up.sql"] = b"CREATE TABLE t (id int);\n-- caf\xff\n"
    write_service(tmp_path, "svc", files)
    write_service(tmp_path, "other", pair("000001_a"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "validate", "--root", ".", "--json")
    assert code == 1
    assert err == ""
    document = json.loads(out)
    assert set(document) == {"format_version", "root", "ok", "summary", "services", "findings"}
    assert document["format_version"] == 1
    assert document["ok"] is False
    findings = document["findings"]
    errors = [f for f in findings if f["severity"] == "error"]
    assert [f["code"] for f in errors] == ["FIL008"]
    assert document["summary"] == {"services": 2, "errors": 1, "warnings": len(findings) - 1}
    assert document["services"] == {
        name: {"errors": sum(f["service"] == name and f["severity"] == "error" for f in findings),
               "warnings": sum(f["service"] == name and f["severity"] == "warning"
                               for f in findings)}
        for name in ("other", "svc")}
    assert document["services"]["svc"]["errors"] == 1
    assert {"CFG005", "CFG006"} <= {f["code"] for f in findings if f["service"] == "other"}
    first = next(f for f in document["findings"] if f["code"] == "FIL008")
    assert first == {
        "code": "FIL008", "name": "not-utf8", "severity": "error", "check": "files",
        "service": "svc", "migration": "000001_a", "environment": None,
        "file": "svc/migrations/000001_a.up.sql", "line": 2,
        "message": first["message"], "hint": "Re-save the file as UTF-8.", "details": None,
    }


def test_strict_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_service(tmp_path, "svc", pair("000001_a"))
    code, out, _ = run(capsys, "validate", "--root", str(tmp_path))
    assert code == 0
    assert "warning CFG005" in out
    code, out, err = run(capsys, "validate", "--root", str(tmp_path), "--strict")
    assert code == 1
    assert "error CFG005" in out and "error CFG006" in out
    assert_summary(err, out, 1)
    assert ", 0 warning(s)" in err
    code, out, _ = run(capsys, "validate", "--root", str(tmp_path), "--strict", "--json")
    assert code == 1
    assert {f["severity"] for f in json.loads(out)["findings"]} == {"error"}


def test_missing_root_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "--root", str(tmp_path / "nope"), "--all")
    assert code == 2
    assert out == ""
    assert err.startswith("migorch: error: services root")
    assert len(err.strip().splitlines()) == 1


def test_missing_root_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--root", str(tmp_path / "nope"), "--json")
    assert code == 2
    document = json.loads(out)
    assert document["ok"] is False and document["exit_code"] == 2
    assert "does not exist" in document["error"]


def test_unknown_service_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "billing", "--root", str(EXAMPLES))
    assert code == 2
    assert out == ""
    assert "unknown service 'billing'" in err
    assert "notification-service, order-service, user-service" in err


def test_service_and_all_together_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "user-service", "--all", "--root", str(EXAMPLES))
    assert code == 2
    assert "not both" in err


@pytest.mark.parametrize("argv", [["validate", "--no-such-option"], [], ["frobnicate"]])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "usage: migorch" in err


def test_root_without_services(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--root", str(tmp_path))
    assert code == 1
    assert "== project ==" in out
    assert "error FIL001" in out


def test_only_the_named_service_is_reported(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_service(tmp_path, "good", service_files(["000001_a"]))
    write_service(tmp_path, "bad", {**service_files(["000001_a"]), "x.sql": ""})
    assert run(capsys, "validate", "good", "--root", str(tmp_path))[0] == 0
    assert run(capsys, "validate", "bad", "--root", str(tmp_path))[0] == 1


def test_every_bad_input_at_once_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for case in bad_inputs():
        write_service(tmp_path, case.id, case.files)
    code, out, _ = run(capsys, "validate", "--root", str(tmp_path), "--all")
    assert code == 1
    reported = {(m["code"]) for m in finding_lines(out)}
    assert {case.code for case in bad_inputs()} <= reported


def test_file_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    migrations = write_service(tmp_path, "svc", service_files(["000001_a"]))
    (migrations / os.fsdecode(b"caf\xe9.sql")).write_text("SELECT 1;")
    code = main(["validate", "--root", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "FIL002" in out


def test_validating_one_service_shows_a_cycle_through_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_service(tmp_path, "alpha", service_files({"000001_a": {"depends_on": ["beta:1"]}}))
    write_service(tmp_path, "beta", service_files({"000001_b": {"depends_on": ["alpha:1"]}}))
    code, out, err = run(capsys, "validate", "beta", "--root", str(tmp_path))
    assert code == 1
    assert ("error GRF001 Dependency cycle detected: alpha:000001 -> beta:000001 -> "
            "alpha:000001") in out
    assert out.count("GRF001") == 1 and "1 error" in err
