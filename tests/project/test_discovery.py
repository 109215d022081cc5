"""Discovery: golang-migrate's file-name rule and every FIL finding, on real directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import DOWN_SQL, UP_SQL, codes, only, pair, service_files, validate, write_service

from pytest_migorch.errors import UsageError
from pytest_migorch.findings import Severity
from pytest_migorch.project.discovery import (
    RULES,
    UINT64_MAX,
    discover_project,
    discover_service,
    parse_migration_name,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("000001_create_users.up.sql", ("000001", "create_users", "up", "sql")),
        ("000001_create_users.down.sql", ("000001", "create_users", "down", "sql")),
        # Edge cases of golang-migrate's ^([0-9]+)_(.*)\.(down|up)\.(.*)$ (reference, section 1)
        ("1_.up.sql", ("1", "", "up", "sql")),
        ("1_x.up.", ("1", "x", "up", "")),
        ("1_a.up.b.down.sql", ("1", "a.up.b", "down", "sql")),
        ("1_a.up.sql.bak", ("1", "a", "up", "sql.bak")),
        ("1_a_b.c.up.sql", ("1", "a_b.c", "up", "sql")),
        ("18446744073709551616_x.up.sql", ("18446744073709551616", "x", "up", "sql")),
    ],
)
def test_names_that_golang_migrate_accepts(name: str, expected: tuple[str, ...]) -> None:
    assert parse_migration_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "1.up.sql",  # no underscore
        "1_x.up",  # no dot after the direction
        "1_a.up.sql\n",  # Go's $ does not match before a final newline
        "1_a\nb.up.sql",  # . does not match a newline in Go either
        "x1_a.up.sql",
        "_1_a.up.sql",
        "1_a.UP.sql",
        "1_a.sideways.sql",
        "\u0661_a.up.sql",  # ARABIC-INDIC DIGIT ONE is not [0-9]
        "\uff11_a.up.sql",  # FULLWIDTH DIGIT ONE
        "",
    ],
)
def test_names_that_golang_migrate_skips(name: str) -> None:
    assert parse_migration_name(name) is None


def test_rule_codes_of_discovery() -> None:
    assert [rule.code for rule in RULES] == [f"FIL{n:03}" for n in range(1, 19)]


def test_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        discover_project(tmp_path / "nowhere")


def test_a_file_as_root_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError):
        discover_project(tmp_path / "file")


def test_root_without_services_fil001(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()  # a directory without migrations/ is not a service
    (tmp_path / "notes.txt").write_text("x")
    project = discover_project(tmp_path)
    assert project.services == {}
    finding = only(project.findings, "FIL001")
    assert finding.severity is Severity.ERROR
    assert finding.file == tmp_path
    assert finding.service is None


def test_services_are_directories_with_migrations(tmp_path: Path) -> None:
    write_service(tmp_path, "b-service", pair("000001_a"))
    write_service(tmp_path, "a-service", pair("000001_a"))
    (tmp_path / "not-a-service").mkdir()
    project = discover_project(tmp_path)
    assert list(project.services) == ["a-service", "b-service"]
    service = project.services["a-service"]
    assert service.migrations_dir == tmp_path / "a-service" / "migrations"
    assert service.schema == "a_service"


def test_migrations_are_paired_by_version(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_create_users"), **pair("10_ten"),
                                    **pair("9_nine")})
    service = discover_service(tmp_path, "svc")
    assert service.findings == []
    assert sorted(service.migrations) == [1, 9, 10]
    first = service.migrations[1]
    assert first.id == "000001_create_users"
    assert first.version_text == "000001"
    assert first.up is not None and first.up.name == "000001_create_users.up.sql"
    assert first.down is not None and first.down.name == "000001_create_users.down.sql"
    assert first.is_base and first.environment is None
    assert first.up.read_text() == UP_SQL


def test_the_up_file_names_the_migration(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {"000001_a.up.sql": UP_SQL, "1_a.down.sql": DOWN_SQL})
    service = discover_service(tmp_path, "svc")
    assert service.findings == []  # same version, same title: one migration
    assert service.migrations[1].id == "000001_a"


def test_hidden_files_are_ignored(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), ".gitkeep": "", ".000002_x.up.sql": "x",
                                    "development/.keep": ""})
    service = discover_service(tmp_path, "svc")
    assert service.findings == []
    assert list(service.migrations) == [1]


def test_bad_sql_name_fil002(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "1.up.sql": UP_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL002")
    assert finding.severity is Severity.ERROR
    assert finding.file == service.migrations_dir / "1.up.sql"
    assert finding.service == "svc"
    assert "1.up.sql" in finding.message
    assert list(service.migrations) == [1]  # the bad file is not a migration


def test_unrecognised_file_fil003_is_a_warning(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "README.md": "# notes"})
    finding = only(discover_service(tmp_path, "svc").findings, "FIL003")
    assert finding.severity is Severity.WARNING
    assert finding.file is not None and finding.file.name == "README.md"


def test_name_ending_in_newline_is_not_a_migration(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "000002_b.up.sql\n": UP_SQL})
    service = discover_service(tmp_path, "svc")
    assert list(service.migrations) == [1]
    finding = only(service.findings, "FIL003")
    assert finding.file is not None and finding.file.name == "000002_b.up.sql\n"


def test_version_overflow_fil004(tmp_path: Path) -> None:
    biggest = str(UINT64_MAX)
    write_service(tmp_path, "svc", {**pair(f"{biggest}_max"), **pair(f"{UINT64_MAX + 1}_big")})
    service = discover_service(tmp_path, "svc")
    overflows = [f for f in service.findings if f.code == "FIL004"]
    assert codes(overflows) == ["FIL004", "FIL004"]  # the up and the down file
    assert {f.migration for f in overflows} == {f"{UINT64_MAX + 1}_big"}
    assert {f.file.name for f in overflows if f.file} == {
        f"{UINT64_MAX + 1}_big.up.sql", f"{UINT64_MAX + 1}_big.down.sql"}
    # UINT64_MAX parses, but no bigint can record it (FIL017, see below): not a migration.
    assert {f.migration for f in service.findings if f.code == "FIL017"} == {f"{biggest}_max"}
    assert list(service.migrations) == []


def test_duplicate_version_fil005_leading_zeros(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "1_b.up.sql": UP_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL005")
    assert finding.severity is Severity.ERROR
    assert finding.file == service.migrations_dir / "1_b.up.sql"
    assert finding.migration == "1_b"
    assert "000001_a.up.sql" in finding.message and "1_b.up.sql" in finding.message
    assert service.migrations[1].id == "000001_a"


def test_duplicate_version_across_environment_directories(tmp_path: Path) -> None:
    """Base and environment migrations share one version space."""
    write_service(tmp_path, "svc", {**pair("000003_a"), **pair("000003_dev", "development")})
    service = discover_service(tmp_path, "svc")
    duplicates = [f for f in service.findings if f.code == "FIL005"]
    assert {f.file.name for f in duplicates if f.file} == {"000003_dev.up.sql",
                                                            "000003_dev.down.sql"}
    assert {f.environment for f in duplicates} == {"development"}
    assert service.migrations[3].is_base


def test_up_and_down_in_different_directories(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {"000001_a.up.sql": UP_SQL,
                                    "development/000001_a.down.sql": DOWN_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL005")
    assert "different directories" in finding.message
    assert finding.file == service.migrations_dir / "development" / "000001_a.down.sql"
    # The up file decides where the migration lives.
    assert service.migrations[1].environment is None


def test_missing_up_fil007(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "000002_b.down.sql": DOWN_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL007")
    assert finding.severity is Severity.ERROR
    assert finding.file == service.migrations_dir / "000002_b.down.sql"
    assert finding.migration == "000002_b"


def test_missing_down_fil006_with_metadata_is_an_error(tmp_path: Path) -> None:
    files = service_files(["000001_a", "000002_b"])
    del files["000002_b.down.sql"]
    write_service(tmp_path, "svc", files)
    result = validate(tmp_path)
    finding = only(result.findings, "FIL006")
    assert finding.severity is Severity.ERROR
    assert finding.file == tmp_path / "svc" / "migrations" / "000002_b.up.sql"
    assert finding.migration == "000002_b"


def test_missing_down_fil006_without_metadata_is_a_warning(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {"000001_a.up.sql": UP_SQL})
    finding = only(validate(tmp_path).findings, "FIL006")
    assert finding.severity is Severity.WARNING
    assert "dependencies.json" in finding.hint


def test_not_utf8_fil008_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"),
                                    "000001_a.down.sql": b"-- one\n-- two\nDROP TABLE caf\xe9;\n"})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL008")
    assert finding.severity is Severity.ERROR
    assert finding.line == 3
    assert finding.file == service.migrations_dir / "000001_a.down.sql"
    assert finding.migration == "000001_a"
    assert "0xe9" in finding.message
    # Still the down file: one defect, one finding (no "missing down" on top).
    assert service.migrations[1].down is not None
    assert len(service.findings) == 1


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_empty_file_fil009_is_a_warning_and_still_a_migration(tmp_path: Path,
                                                               content: str) -> None:
    write_service(tmp_path, "svc", {"000001_a.up.sql": content, "000001_a.down.sql": DOWN_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL009")
    assert finding.severity is Severity.WARNING
    assert finding.file == service.migrations_dir / "000001_a.up.sql"
    assert finding.migration == "000001_a"
    assert service.migrations[1].up is not None


@pytest.mark.parametrize("name", ["000002_b.up.sql.bak", "000002_b.up.txt", "000002_b.up."])
def test_unexpected_extension_fil010(tmp_path: Path, name: str) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), name: UP_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL010")
    assert finding.severity is Severity.ERROR
    assert finding.file == service.migrations_dir / name
    assert finding.migration == "000002_b"
    assert "up migration of version 000002" in finding.message


def test_backup_of_a_down_file_is_a_down_for_golang_migrate(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "000001_a.up.b.down.sql": DOWN_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL005")  # second down file of version 1
    assert finding.migration == "000001_a.up.b"


def test_title_mismatch_fil011(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {"000001_a.up.sql": UP_SQL, "000001_b.down.sql": DOWN_SQL})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL011")
    assert finding.severity is Severity.WARNING
    assert finding.file == service.migrations_dir / "000001_b.down.sql"
    assert finding.migration == "000001_a"


def test_nested_directory_fil012(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"),
                                    **pair("000002_b", "development/old")})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL012")
    assert finding.severity is Severity.WARNING
    assert finding.file == service.migrations_dir / "development" / "old"
    assert finding.environment == "development"
    assert list(service.migrations) == [1]


def test_unreadable_file_fil013(tmp_path: Path) -> None:
    migrations = write_service(tmp_path, "svc", pair("000001_a"))
    os.symlink(tmp_path / "gone.sql", migrations / "000002_b.up.sql")  # a dangling link
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL013")
    assert finding.file == migrations / "000002_b.up.sql"
    assert finding.migration == "000002_b"


def test_environment_migrations(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), **pair("000003_dev", "development"),
                                    "staging/000005_qa.up.sql": UP_SQL})
    service = discover_service(tmp_path, "svc")
    assert service.findings == []
    dev = service.migrations[3]
    assert dev.environment == "development" and not dev.is_base
    assert dev.up is not None and dev.up.relative_name == "development/000003_dev.up.sql"
    assert service.migrations[5].environment == "staging"
    assert [m.version for m in service.base_migrations()] == [1]


def test_json_files_inside_an_environment_directory_are_unrecognised(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"), "development/dependencies.json": "{}"})
    finding = only(discover_service(tmp_path, "svc").findings, "FIL003")
    assert finding.environment == "development"


def test_non_utf8_file_name_does_not_break_discovery(tmp_path: Path) -> None:
    migrations = write_service(tmp_path, "svc", pair("000001_a"))
    name = os.fsdecode(b"000002_caf\xe9.up.sql")
    (migrations / name).write_text(UP_SQL)
    service = discover_service(tmp_path, "svc")
    assert service.migrations[2].title == os.fsdecode(b"caf\xe9")


def _refuse_listing(monkeypatch: pytest.MonkeyPatch, refused: Path) -> None:
    """Make listing ``refused`` fail as it does without read permission (we run as root)."""
    real = Path.iterdir

    def iterdir(self: Path):  # type: ignore[no-untyped-def]
        if self == refused:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)


def test_unlistable_environment_directory_fil013(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = write_service(tmp_path, "svc", {**pair("000001_a"),
                                                 **pair("000002_b", "development")})
    _refuse_listing(monkeypatch, migrations / "development")
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL013")
    assert finding.file == migrations / "development"
    assert finding.environment == "development"
    assert "Permission denied" in finding.message
    assert list(service.migrations) == [1]


def test_unlistable_migrations_directory_fil013(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = write_service(tmp_path, "svc", pair("000001_a"))
    _refuse_listing(monkeypatch, migrations)
    project = discover_project(tmp_path)
    assert only(project.services["svc"].findings, "FIL013").file == migrations


def test_unlistable_root_is_a_usage_error(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_listing(monkeypatch, tmp_path)
    with pytest.raises(UsageError, match="cannot list services root"):
        discover_project(tmp_path)


# --- bad input that used to pass silently or crash ----------------------------------------------


def test_nul_byte_fil014_names_its_line(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {**pair("000001_a"),
                                    "000001_a.up.sql": b"CREATE TABLE t (id int);\n\n-- x\0y\n"})
    service = discover_service(tmp_path, "svc")
    finding = only(service.findings, "FIL014")
    assert finding.severity is Severity.ERROR
    assert finding.line == 3
    assert finding.file == service.migrations_dir / "000001_a.up.sql"
    assert finding.migration == "000001_a"
    assert service.migrations[1].up is not None  # still the migration's file


@pytest.mark.parametrize(
    ("links", "code", "reason"),
    [
        ({"000009_x.up.sql": "000009_x.up.sql"}, "FIL015", "loops"),
        ({"000009_x.up.sql": "000009_y.up.sql", "000009_y.up.sql": "000009_x.up.sql"},
         "FIL015", "loops"),
        ({"000009_x.up.sql": "missing.sql"}, "FIL013", "missing.sql, which does not exist"),
    ],
)
def test_broken_symlink_is_a_finding_not_a_crash(
    tmp_path: Path, links: dict[str, str], code: str, reason: str
) -> None:
    migrations = write_service(tmp_path, "svc", pair("000001_a"))
    for name, target in links.items():
        (migrations / name).symlink_to(target)
    result = validate(tmp_path)
    findings = [f for f in result.findings if f.code == code]
    assert sorted(f.file.name for f in findings if f.file) == sorted(links)
    assert all(reason in f.message and f.severity is Severity.ERROR for f in findings)
    # Rendering names the link itself; resolving it used to raise "Symlink loop".
    assert f"svc/migrations/000009_x.up.sql: error {code}" in findings[0].render(tmp_path)
    assert list(result.project.services["svc"].migrations) == [1]


def test_a_working_symlink_is_an_ordinary_file(tmp_path: Path) -> None:
    migrations = write_service(tmp_path, "svc", pair("000001_a"))
    (tmp_path / "shared.sql").write_text(UP_SQL)
    (migrations / "000002_b.up.sql").symlink_to(tmp_path / "shared.sql")
    (migrations / "000002_b.down.sql").write_text(DOWN_SQL)
    service = discover_service(tmp_path, "svc")
    assert codes(service.findings) == []
    assert list(service.migrations) == [1, 2]


def test_migrations_file_fil016(tmp_path: Path) -> None:
    write_service(tmp_path, "good", pair("000001_a"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "migrations").write_text("not a directory")
    project = discover_project(tmp_path)
    finding = only(project.findings, "FIL016")
    assert finding.severity is Severity.ERROR
    assert finding.file == tmp_path / "bad" / "migrations"
    assert "bad/migrations is not a directory" in finding.message
    assert list(project.services) == ["good"]


def test_version_beyond_bigint_fil017(tmp_path: Path) -> None:
    largest = 2**63 - 1
    write_service(tmp_path, "svc", {**pair(f"{largest}_max"), **pair(f"{largest + 1}_big")})
    service = discover_service(tmp_path, "svc")
    assert codes(service.findings) == ["FIL017", "FIL017"]
    assert {f.migration for f in service.findings} == {f"{largest + 1}_big"}
    assert "9223372036854775807" in service.findings[0].message
    assert list(service.migrations) == [largest]


@pytest.mark.parametrize(
    ("first", "second", "schema"),
    [
        ("user-service", "user_service", "user_service"),
        ("s" * 63 + "-one", "s" * 63 + "-two", "s" * 63),
    ],
)
def test_services_sharing_a_schema_fil018(
    tmp_path: Path, first: str, second: str, schema: str
) -> None:
    for name in (first, second, "other"):
        write_service(tmp_path, name, pair("000001_a"))
    project = discover_project(tmp_path)
    collisions = [f for s in project.services.values() for f in s.findings]
    assert sorted(f.service or "" for f in collisions) == sorted([first, second])
    for finding in collisions:
        assert finding.code == "FIL018" and finding.severity is Severity.ERROR
        assert first in finding.message and second in finding.message
        assert repr(schema) in finding.message
