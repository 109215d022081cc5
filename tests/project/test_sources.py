"""Discovery and configuration over a mapping of path -> bytes (a git revision's tree) read a
tree exactly as they read it from disk: one parser for both."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import pair, service_files, write_service

from pytest_migorch.model import Project
from pytest_migorch.project.sources import DiskSource, MappingSource
from pytest_migorch.project.validation import load_project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "services"


def _as_mapping(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in root.rglob("*") if path.is_file()}


def _summary(project: Project) -> dict[str, object]:
    return {
        name: (
            [(m.id, m.environment, m.up and m.up.relative_name, m.down and m.down.relative_name,
              m.meta and (m.meta.depends_on, m.meta.risk_level, m.meta.transactional))
             for _, m in sorted(service.migrations.items())],
            {env: (e.versions, e.protected) for env, e in service.environments.items()},
            sorted((f.code, str(f.file), f.line) for f in service.findings),
        )
        for name, service in project.services.items()
    }


def test_the_examples_read_the_same_from_a_mapping() -> None:
    on_disk = load_project(EXAMPLES)
    in_memory = load_project(EXAMPLES, MappingSource(EXAMPLES, _as_mapping(EXAMPLES)))
    assert on_disk.services  # the comparison is about something
    assert _summary(in_memory) == _summary(on_disk)


def test_findings_read_the_same_from_a_mapping(tmp_path: Path) -> None:
    write_service(tmp_path, "svc", {
        **service_files(["000001_a", "000002_b"]), "1_dup.up.sql": "SELECT 1;\n",
        "notes.txt": "x", "000003_c.down.sql": "SELECT 1;\n",
        "development/000004_d.up.sql": "SELECT 1;\n", "000005_e.up.sql": b"SELECT\0 1;\n"})
    write_service(tmp_path, "other", pair("000001_x"))
    on_disk = load_project(tmp_path)
    in_memory = load_project(tmp_path, MappingSource(tmp_path, _as_mapping(tmp_path)))
    assert {f.code for s in on_disk.services.values() for f in s.findings} >= {
        "FIL003", "FIL005", "FIL007", "FIL014"}
    assert _summary(in_memory) == _summary(on_disk)


def test_mapping_source_directories() -> None:
    source = MappingSource(Path("/r"), {"a/migrations/1_x.up.sql": b"", "b/file": b"y"})
    assert source.is_dir(Path("/r")) and source.is_dir(Path("/r/a/migrations"))
    assert source.is_file(Path("/r/b/file")) and not source.is_dir(Path("/r/b/file"))
    assert source.list_dir(Path("/r")) == [Path("/r/a"), Path("/r/b")]
    assert source.read_bytes(Path("/r/b/file")) == b"y"
    with pytest.raises(FileNotFoundError):
        source.read_bytes(Path("/r/nothing"))
    with pytest.raises(NotADirectoryError):
        source.list_dir(Path("/r/b/file"))


def test_a_load_reads_the_tree_as_the_plain_file_system_does(tmp_path: Path) -> None:
    # load_project trusts the directory listing for entries that are no links; links of every
    # kind (to a file, to a directory, dangling, looping) are still asked of the file system
    write_service(tmp_path, "svc", {
        **service_files(["000001_a", "000002_b"]), "notes.txt": "x", ".hidden.up.sql": "x",
        "development/000004_d.up.sql": "SELECT 1;\n", "development/nested/x.sql": "x"})
    migrations = tmp_path / "svc" / "migrations"
    (migrations / "000005_link.up.sql").symlink_to(migrations / "000001_a.up.sql")
    (migrations / "000006_gone.up.sql").symlink_to(migrations / "nowhere.sql")
    (migrations / "000007_loop.up.sql").symlink_to(migrations / "000007_loop.up.sql")
    (migrations / "staging").symlink_to(migrations / "development", target_is_directory=True)
    (tmp_path / "svc-link").symlink_to(tmp_path / "svc", target_is_directory=True)
    (tmp_path / "not-a-service").mkdir()
    (tmp_path / "file-service").mkdir()
    (tmp_path / "file-service" / "migrations").write_text("x")
    loaded = load_project(tmp_path)
    plain = load_project(tmp_path, DiskSource())
    assert len({f.code for s in plain.services.values() for f in s.findings}) >= 4
    assert repr((loaded.services, loaded.findings)) == repr((plain.services, plain.findings))
