"""Where discovery and the configuration loader read a services tree from.

Usually the file system; for released-migration integrity, the tree of a git revision (a mapping
of path -> bytes read with ``git cat-file``). Both go through the same discovery and config code,
so a revision's migrations are parsed exactly as the working tree's are, by one parser.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Mapping, Protocol

from pytest_migorch.model import read_file_bytes as read_file

__all__ = ["FileSource", "DiskSource", "ListedDisk", "MappingSource", "DISK", "read_file"]


class FileSource(Protocol):
    """The few read-only file operations discovery and config need."""

    def is_dir(self, path: Path) -> bool: ...

    def is_file(self, path: Path) -> bool: ...

    def exists(self, path: Path) -> bool: ...

    def list_dir(self, path: Path) -> list[Path]:
        """The entries of ``path``, sorted; OSError when it cannot be listed."""
        ...

    def read_bytes(self, path: Path) -> bytes:
        """The content of ``path``; OSError when it cannot be read."""
        ...

    def link_problem(self, path: Path) -> tuple[int, str] | None:
        """``(errno, target)`` when ``path`` is a symbolic link that cannot be followed."""
        ...


class DiskSource:
    """The file system."""

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def exists(self, path: Path) -> bool:
        return path.exists() or path.is_symlink()

    def list_dir(self, path: Path) -> list[Path]:
        return sorted(path.iterdir())

    def read_bytes(self, path: Path) -> bytes:
        return read_file(path)

    def link_problem(self, path: Path) -> tuple[int, str] | None:
        if not path.is_symlink():
            return None
        try:
            path.stat()
        except OSError as exc:
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return exc.errno or 0, target
        return None


class ListedDisk(DiskSource):
    """The file system for one load of a tree: what a directory listing already says about
    an entry that is no symbolic link (directory or file) is not asked again.

    Discovery asks "is it a directory?" and "is it a link?" of every entry it lists, two
    system calls per file of a tree whose listing already told (``os.scandir`` reads the
    kinds with the names). Links are always asked of the file system, as :class:`DiskSource`
    asks. Made per load (:func:`pytest_migorch.project.validation.load_project`), never kept:
    a tree changes between loads."""

    def __init__(self) -> None:
        #: Listed entries that are no link: path -> (is a directory, is a regular file).
        self._kinds: dict[Path, tuple[bool, bool]] = {}

    def list_dir(self, path: Path) -> list[Path]:
        with os.scandir(path) as listing:
            entries = sorted(listing, key=lambda e: os.path.normcase(e.name))
        self.listed(path, entries)
        children = []
        for entry in entries:
            child = path / entry.name
            if not entry.is_symlink():
                self._kinds[child] = (entry.is_dir(follow_symlinks=False),
                                      entry.is_file(follow_symlinks=False))
            children.append(child)
        return children

    def listed(self, path: Path, entries: list[os.DirEntry[str]]) -> None:
        """What a listing found, for a subclass that keeps it (the project cache)."""

    def is_dir(self, path: Path) -> bool:
        kind = self._kinds.get(path)
        return kind[0] if kind is not None else super().is_dir(path)

    def is_file(self, path: Path) -> bool:
        kind = self._kinds.get(path)
        return kind[1] if kind is not None else super().is_file(path)

    def exists(self, path: Path) -> bool:
        return path in self._kinds or super().exists(path)

    def link_problem(self, path: Path) -> tuple[int, str] | None:
        return None if path in self._kinds else super().link_problem(path)


class MappingSource:
    """A tree held in memory: ``{path relative to root (posix): content}``; directories are
    the parents of its files."""

    def __init__(self, root: Path, files: Mapping[str, bytes]) -> None:
        self.root = Path(root)
        self.files = dict(files)
        self.children: dict[str, set[str]] = {".": set()}
        for relative in self.files:
            parts = PurePosixPath(relative).parts
            parent = "."
            for index, part in enumerate(parts):
                here = "/".join(parts[: index + 1])
                self.children.setdefault(parent, set()).add(part)
                if index < len(parts) - 1:
                    self.children.setdefault(here, set())
                parent = here

    def _relative(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix() or "."
        except ValueError:
            return "\0outside"

    def is_dir(self, path: Path) -> bool:
        return self._relative(path) in self.children

    def is_file(self, path: Path) -> bool:
        return self._relative(path) in self.files

    def exists(self, path: Path) -> bool:
        return self.is_dir(path) or self.is_file(path)

    def list_dir(self, path: Path) -> list[Path]:
        names = self.children.get(self._relative(path))
        if names is None:
            raise NotADirectoryError(20, "Not a directory", str(path))
        return sorted(Path(path) / name for name in names)

    def read_bytes(self, path: Path) -> bytes:
        content = self.files.get(self._relative(path))
        if content is None:
            raise FileNotFoundError(2, "No such file", str(path))
        return content

    def link_problem(self, path: Path) -> tuple[int, str] | None:
        return None


#: The default source: the file system.
DISK: FileSource = DiskSource()
