"""The tool part of every cache key: the same build agrees across installs, an edit never does.

CI jobs install the package afresh and restore the cache an earlier job saved: with a wheel
install the identity must come from what the files are (pip's RECORD), not when they were
written, or no job would ever get a hit. An editable install must still notice an edited
module by its time."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from pytest_migorch.project.tool_identity import identity_of, installed_record


def _install(site: Path, *, editable: bool = False, mtime: int = 1_700_000_000) -> tuple[
        Path, metadata.PathDistribution]:
    """A wheel-like install of a two-module pytest_migorch under ``site``."""
    package = site / "pytest_migorch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VERSION = 1\n")
    (package / "rules.py").write_text("RULES = ['RSK001']\n")
    for path in package.iterdir():
        os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    dist_info = site / "pytest_migorch-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Name: pytest-migorch\nVersion: 0.1.0\n")
    (dist_info / "RECORD").write_text(
        "pytest_migorch/__init__.py,sha256=aaa,12\npytest_migorch/rules.py,sha256=bbb,19\n")
    if editable:
        (dist_info / "direct_url.json").write_text(json.dumps(
            {"url": "file:///src", "dir_info": {"editable": True}}))
    return package, metadata.PathDistribution(dist_info)


def _identity(package: Path, dist: metadata.PathDistribution) -> str:
    return identity_of(package, installed_record(package, dist))


def test_two_wheel_installs_of_one_build_share_an_identity(tmp_path: Path) -> None:
    first = _install(tmp_path / "job-1", mtime=1_700_000_000)
    second = _install(tmp_path / "job-2", mtime=1_700_009_999)
    assert installed_record(*first) is not None
    assert _identity(*first) == _identity(*second)


def test_a_different_build_has_another_identity(tmp_path: Path) -> None:
    package, dist = _install(tmp_path / "job-1")
    before = _identity(package, dist)
    record = Path(str(dist.locate_file("pytest_migorch-0.1.0.dist-info/RECORD")))
    record.write_text(record.read_text().replace("sha256=bbb", "sha256=ccc"))
    assert _identity(package, dist) != before


def test_an_editable_install_goes_by_the_modules_times(tmp_path: Path) -> None:
    package, dist = _install(tmp_path / "checkout", editable=True)
    assert installed_record(package, dist) is None
    before = _identity(package, dist)
    os.utime(package / "rules.py", ns=(1_800_000_000 * 10**9,) * 2)
    assert _identity(package, dist) != before


def test_a_record_of_other_files_than_the_imported_modules_is_not_trusted(
        tmp_path: Path) -> None:
    # a source checkout on sys.path while another copy is installed: the RECORD describes the
    # installed copy, not the modules that run
    _, dist = _install(tmp_path / "site")
    checkout, _ = _install(tmp_path / "checkout")
    assert installed_record(checkout, dist) is None
