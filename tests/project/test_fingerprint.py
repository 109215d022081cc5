"""The fingerprint of a services tree: it changes with every input of the static checks, and
anything the real pipeline must report (unreadable, dangling or looping entries) is uncacheable."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import pair, service_files, write_service

from pytest_migorch.project.fingerprint import fingerprint_tree


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "services"
    write_service(root, "a-service", service_files(["000001_a", "000002_b"]))
    write_service(root, "b-service", service_files(["000001_x"]))
    return root


def test_same_tree_same_digest_and_one_digest_per_service(tmp_path: Path) -> None:
    root = tree(tmp_path)
    first, second = fingerprint_tree(root), fingerprint_tree(root)
    assert first is not None and second is not None
    assert first.digest == second.digest
    assert sorted(first.services) == ["a-service", "b-service"]


def test_a_content_edit_changes_only_that_service(tmp_path: Path) -> None:
    root = tree(tmp_path)
    before = fingerprint_tree(root)
    path = root / "a-service" / "migrations" / "000001_a.up.sql"
    path.write_text(path.read_text() + "-- migorch:ignore RSK001 reviewed\n")
    after = fingerprint_tree(root)
    assert before is not None and after is not None
    assert before.digest != after.digest
    assert before.services["a-service"] != after.services["a-service"]
    assert before.services["b-service"] == after.services["b-service"]


def test_config_names_and_new_entries_change_the_digest(tmp_path: Path) -> None:
    root = tree(tmp_path)
    digests = {fingerprint_tree(root).digest}  # type: ignore[union-attr]
    migrations = root / "a-service" / "migrations"
    (migrations / "dependencies.json").write_text("{}\n")
    digests.add(fingerprint_tree(root).digest)  # type: ignore[union-attr]
    (migrations / "000002_b.up.sql").rename(migrations / "000002_c.up.sql")
    digests.add(fingerprint_tree(root).digest)  # type: ignore[union-attr]
    write_service(root, "a-service", {"staging/000003_s.up.sql": "SELECT 1;\n"})
    digests.add(fingerprint_tree(root).digest)  # type: ignore[union-attr]
    (root / "not-a-service").mkdir()
    digests.add(fingerprint_tree(root).digest)  # type: ignore[union-attr]
    (root / "not-a-service" / "migrations").write_text("a file, not a directory")
    digests.add(fingerprint_tree(root).digest)  # type: ignore[union-attr]
    assert len(digests) == 6


def test_moving_bytes_between_files_changes_the_digest(tmp_path: Path) -> None:
    root = tmp_path / "services"
    write_service(root, "s", {**pair("000001_a", up="AB", down="C")})
    before = fingerprint_tree(root)
    write_service(root, "s", {**pair("000001_a", up="A", down="BC")})
    assert before is not None and before.digest != fingerprint_tree(root).digest  # type: ignore


def test_unusual_entries_are_not_cached(tmp_path: Path) -> None:
    root = tree(tmp_path)
    migrations = root / "a-service" / "migrations"
    (migrations / "loop").symlink_to(migrations)
    assert fingerprint_tree(root) is None
    (migrations / "loop").unlink()
    (migrations / "000009_gone.up.sql").symlink_to(tmp_path / "nowhere.sql")
    assert fingerprint_tree(root) is None
    (migrations / "000009_gone.up.sql").unlink()
    os.mkfifo(migrations / "pipe")
    assert fingerprint_tree(root) is None
    (migrations / "pipe").unlink()
    assert fingerprint_tree(root) is not None
    assert fingerprint_tree(tmp_path / "absent") is None


def test_a_link_to_a_file_is_read_through(tmp_path: Path) -> None:
    root = tree(tmp_path)
    target = tmp_path / "shared.sql"
    target.write_text("SELECT 1;\n")
    (root / "a-service" / "migrations" / "000005_l.up.sql").symlink_to(target)
    before = fingerprint_tree(root)
    target.write_text("SELECT 2;\n")
    after = fingerprint_tree(root)
    assert before is not None and after is not None and before.digest != after.digest
