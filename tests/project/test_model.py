"""The helpers on the shared model that every stage must agree on: schema names, protected
environments, metadata defaults, the file of a direction, clipped text."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_migorch.findings import clip
from pytest_migorch.model import (
    Migration,
    MigrationFile,
    MigrationMeta,
    is_protected_by_default,
    schema_name,
)


@pytest.mark.parametrize("name", ["production", "prod", "Production", "PROD", "pRoD"])
def test_production_is_protected_in_any_case(name: str) -> None:
    assert is_protected_by_default(name)


@pytest.mark.parametrize("name", ["staging", "dev", "default", "production-eu", "preprod"])
def test_other_environments_are_not_protected_by_default(name: str) -> None:
    assert not is_protected_by_default(name)


def test_schema_name_replaces_dashes() -> None:
    assert schema_name("user-service") == "user_service"


def test_schema_name_is_cut_like_postgresql_cuts_identifiers() -> None:
    """PostgreSQL keeps the first 63 bytes; two long names can therefore share a schema."""
    assert schema_name("a" * 70) == "a" * 63
    assert schema_name("a" * 63) == "a" * 63
    # Never inside a UTF-8 character: 31 two-byte characters are 62 bytes, the 32nd does not fit.
    assert schema_name("ü" * 40) == "ü" * 31


def _file(direction: str) -> MigrationFile:
    return MigrationFile(path=Path(f"/x/000001_a.{direction}.sql"), version=1,
                         version_text="000001", title="a",
                         direction="up" if direction == "up" else "down", extension="sql",
                         environment=None)


def test_file_for_direction() -> None:
    up, down = _file("up"), _file("down")
    migration = Migration(service="s", version=1, version_text="000001", title="a",
                          environment=None, up=up, down=down)
    assert migration.file_for("up") is up
    assert migration.file_for("down") is down
    assert Migration(service="s", version=1, version_text="000001", title="a",
                     environment=None, up=up).file_for("down") is None


def test_metadata_defaults_without_and_with_an_entry() -> None:
    bare = Migration(service="s", version=1, version_text="000001", title="a", environment=None)
    assert bare.transactional and bare.reversible
    bare.meta = MigrationMeta(transactional=False, reversible=False)
    assert not bare.transactional and not bare.reversible


def test_clip() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 11, 10) == "x" * 7 + "..."
    assert len(clip("y" * 500, 60)) == 60


def test_inside_texts_read_once_a_file_is_read_once(tmp_path: Path) -> None:
    from pytest_migorch.model import MigrationFile, texts_read_once

    path = tmp_path / "000001_a.up.sql"
    path.write_text("CREATE TABLE a (id int);\n")
    file = MigrationFile(path, 1, "000001", "a", "up", "sql", None)
    with texts_read_once():
        first = file.read_text()
        path.write_text("DROP TABLE a;\n")
        assert file.read_text() == first, "every check sees the text the analysis saw"
    assert file.read_text() == "DROP TABLE a;\n", "outside the block each read is fresh"


@pytest.mark.parametrize("data", [
    b"SELECT 1;\r\nSELECT 2;\rSELECT 3;\n", b"\xef\xbb\xbfSELECT 1;", b"bad \xff\xfe byte\r",
    b"\r\r\n\n\r", b"", "caf\u00e9 \u2603\r\n".encode(), b"\xe2\x82", b"x" * 20000 + b"\r\n",
])
def test_decoded_text_is_what_read_text_gives(tmp_path: Path, data: bytes) -> None:
    from pytest_migorch.model import decoded_text

    path = tmp_path / "f.sql"
    path.write_bytes(data)
    assert decoded_text(data) == path.read_text(encoding="utf-8", errors="replace")


def test_discovery_keeps_the_texts_it_read_for_the_analysis(tmp_path: Path) -> None:
    """Inside texts_read_once the text discovery read is the one served (no second read)."""
    from helpers import service_files, write_service

    from pytest_migorch.model import texts_read_once
    from pytest_migorch.project.validation import load_project

    write_service(tmp_path, "svc", service_files(["000001_a"]))
    with texts_read_once():
        project = load_project(tmp_path)
        up = next(iter(project.services["svc"].migrations.values())).up
        assert up is not None
        original = up.read_text()
        up.path.write_text("-- edited after discovery\n")
        assert up.read_text() == original
    assert up.read_text() == "-- edited after discovery\n"
