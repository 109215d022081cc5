"""pytest's own cost for as many items as ``pytest --migorch`` generates: the floor of section 2.

A plugin that turns every check into a pytest item pays pytest's per-item protocol for each
(setup, call and teardown reports, capture and logging around every phase, the terminal's
progress), whatever the check itself costs. To show how much of a ``--migorch-no-db`` session is
ours and how much is pytest's, the benchmark runs beside it a project whose conftest yields the
same number of items, spread over the same number of collectors, that do nothing.
"""

from __future__ import annotations

from pathlib import Path

_CONFTEST = '''\
"""Written by benchmarks/pytest_floor.py: {items} items that do nothing, {files} collectors."""
import pytest

ITEMS_PER_FILE = {per_file}
REMAINDER = {remainder}


class NoopItem(pytest.Item):
    def runtest(self):
        pass

    def reportinfo(self):
        return self.path, None, self.name


class NoopFile(pytest.File):
    def collect(self):
        index = int(self.path.stem.split("-")[1])
        count = ITEMS_PER_FILE + (1 if index < REMAINDER else 0)
        for number in range(count):
            yield NoopItem.from_parent(self, name=f"noop[{{number}}]")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".items":
        return NoopFile.from_parent(parent, path=file_path)
    return None
'''


def write_floor_project(directory: Path, items: int, collectors: int) -> Path:
    """A pytest project under ``directory`` with ``items`` no-op items in ``collectors`` files."""
    directory.mkdir(parents=True, exist_ok=True)
    collectors = max(1, collectors)
    per_file, remainder = divmod(items, collectors)
    (directory / "conftest.py").write_text(_CONFTEST.format(
        items=items, files=collectors, per_file=per_file, remainder=remainder))
    for index in range(collectors):
        (directory / f"service-{index:04d}.items").write_text("")
    return directory
