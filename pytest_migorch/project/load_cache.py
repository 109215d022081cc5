"""The loaded services tree, kept between runs: a deploy with nothing to do skips the load.

:func:`~pytest_migorch.project.validation.load_project` lists, reads and parses every file of a
tree (two thousand of them for ten services of a hundred migrations: ~75 ms, a fifth of an
``up`` that has nothing to do). Its result depends on nothing but what it asked of the file
system and on this package's code, so :func:`load_project_cached` records what it asked while
loading (:class:`RecordingDisk`) and keeps the project with those answers:

- each directory listing: the names and kinds of its entries;
- each other question (is this a directory, a file, does it exist, a link's problem), with the
  answer;
- each file read: its (size, mtime_ns, ctime_ns, inode, device), taken on the descriptor it was
  read from.

The next run asks the same questions again (a listing per directory and a ``stat`` per file:
~5 ms) and uses the kept project only when every answer is the same; anything else loads the
tree as before. A symbolic link anywhere in the answers, an error while listing or reading, or
a file modified less than :data:`RACY_SECONDS` before the cache would be written (a later
change within the same timestamp tick would keep its stat: git's "racy" rule) leaves the tree
uncached. The kept project is JSON (:mod:`pytest_migorch.project.project_codec`), never pickle,
in ``$MIGORCH_CACHE_DIR/projects``, one file per root and code version, replaced atomically;
a missing, unreadable or malformed file only means loading the tree.

The sha256 of every file the load read is kept too (:func:`known_checksum`): drift compares
every applied migration's up file with its recorded checksum, and a file whose stat is still
the one its bytes were hashed with needs no second read (the stat is taken again at each ask).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from pytest_migorch import __version__
from pytest_migorch.cache_dir import cache_directory
from pytest_migorch.model import Project
from pytest_migorch.project.project_codec import decode_project, encode_project
from pytest_migorch.project.tool_identity import package_files
from pytest_migorch.project.sources import DiskSource, ListedDisk

__all__ = ["load_project_cached", "RecordingDisk", "known_checksum", "projects_dir",
           "RACY_SECONDS", "CACHE_FORMAT"]

log = logging.getLogger(__name__)

#: A file modified this recently when the cache would be written leaves the tree uncached.
RACY_SECONDS = 2.0
#: Bumped when the file's layout changes: older files are then simply not used.
CACHE_FORMAT = 1

#: Path text -> (stat key, sha256) of the files the last cached load vouched for.
_checksums: dict[str, tuple[list[int], str]] = {}


def projects_dir() -> Path:
    """Beside the other caches (:func:`~pytest_migorch.cache_dir.cache_directory`)."""
    return cache_directory() / "projects"


def known_checksum(path: Path) -> str | None:
    """The sha256 of ``path`` kept with the project this process loaded, when the file's
    stat is still the one its bytes were hashed with; None otherwise (read the file)."""
    known = _checksums.get(str(path))
    if known is None:
        return None
    try:
        current = _stat_key(os.stat(path))
    except OSError:
        return None
    return known[1] if current == known[0] else None


class _Uncacheable(Exception):
    """The load saw something a replay of stats cannot vouch for."""


def _stat_key(info: os.stat_result) -> list[int]:
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]


def _listing(path: str) -> list[list[Any]]:
    """``[name, kind]`` of each entry of ``path`` (``d``, ``f`` or ``o``), as discovery sees
    them; a symbolic link makes the tree uncacheable (its target may change unseen)."""
    with os.scandir(path) as entries:
        return _kinds_of(list(entries))


def _kinds_of(entries: list[os.DirEntry[str]]) -> list[list[Any]]:
    out = []
    for entry in entries:
        if entry.is_symlink():
            raise _Uncacheable(f"{entry.path} is a symbolic link")
        kind = "d" if entry.is_dir(follow_symlinks=False) else (
            "f" if entry.is_file(follow_symlinks=False) else "o")
        out.append([entry.name, kind])
    out.sort()
    return out


class RecordingDisk(ListedDisk):
    """The file system as :class:`ListedDisk` reads it, noting every question and answer."""

    def __init__(self) -> None:
        super().__init__()
        self.listings: dict[str, list[list[Any]]] = {}
        self.questions: list[list[Any]] = []
        #: Each file read: its stat key and the sha256 of exactly the bytes read.
        self.reads: dict[str, list[Any]] = {}
        self.problem: str | None = None

    def _asked(self, kind: str, path: Path, answer: Any) -> None:
        if path not in self._kinds:  # answered by a listing, which is recorded whole
            self.questions.append([kind, str(path), answer])

    def list_dir(self, path: Path) -> list[Path]:
        try:
            return super().list_dir(path)
        except OSError as exc:
            self.problem = f"cannot list {path}: {exc}"
            raise

    def listed(self, path: Path, entries: list[os.DirEntry[str]]) -> None:
        """The very listing the load used (one ``scandir``: a second one could differ)."""
        try:
            self.listings[str(path)] = _kinds_of(entries)
        except _Uncacheable as exc:
            self.problem = str(exc)
        except OSError as exc:
            self.problem = f"cannot list {path}: {exc}"

    def is_dir(self, path: Path) -> bool:
        answer = super().is_dir(path)
        self._asked("is_dir", path, answer)
        return answer

    def is_file(self, path: Path) -> bool:
        answer = super().is_file(path)
        self._asked("is_file", path, answer)
        return answer

    def exists(self, path: Path) -> bool:
        answer = super().exists(path)
        self._asked("exists", path, answer)
        return answer

    def link_problem(self, path: Path) -> tuple[int, str] | None:
        answer = super().link_problem(path)
        if answer is not None:
            self.problem = f"{path} is a broken symbolic link"
        self._asked("link_problem", path, None)
        return answer

    def read_bytes(self, path: Path) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self.problem = f"cannot read {path}: {exc}"
            raise
        try:
            # The stat before the bytes: a change while reading then shows in the next
            # run's stat (taken after it, the stat could vouch for bytes never read).
            info = os.fstat(fd)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            if _stat_key(os.fstat(fd)) != _stat_key(info):
                self.problem = f"{path} changed while it was read"
        finally:
            os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            self.problem = f"{path} is not a regular file"
        data = b"".join(chunks)
        self.reads[str(path)] = [*_stat_key(info), hashlib.sha256(data).hexdigest()]
        return data


_DISK = DiskSource()
_QUESTIONS = {"is_dir": _DISK.is_dir, "is_file": _DISK.is_file, "exists": _DISK.exists,
              "link_problem": _DISK.link_problem}


def _still_true(entry: dict[str, Any], root: Path) -> bool:
    """Whether the file system still answers every question of ``entry`` as it did."""
    try:
        for path, listed in entry["listings"].items():
            if _listing(path) != listed:
                return False
        for kind, path, answer in entry["questions"]:
            if _QUESTIONS[kind](Path(path)) != answer:
                return False
        for path, key in _reads(entry, root):
            if _stat_key(os.stat(path)) != key[:5]:
                return False
    except (_Uncacheable, OSError, KeyError, TypeError, ValueError):
        return False
    return True


def _reads(entry: dict[str, Any], root: Path) -> Iterator[tuple[str, list[Any]]]:
    """(path, [stat key..., sha256]) of each file the load read; paths below the root are
    kept relative to it (the file is a fifth smaller), marked by a leading ``./``."""
    prefix = str(root) + os.sep
    for path, key in entry["reads"].items():
        yield (prefix + path[2:] if path.startswith("./") else path), key


def _identity() -> str:
    """What decides how a tree loads: our version and modules, Python, and jsonschema (its
    messages are findings' text), by its files' stat, without importing it."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{CACHE_FORMAT}\0{__version__}\0{sys.version}\0".encode())
    for relative, info in package_files():
        digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    spec = importlib.util.find_spec("jsonschema")
    origin = spec.origin if spec is not None else None
    if origin:
        info = os.stat(origin)
        digest.update(f"jsonschema\0{origin}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return digest.hexdigest()


def _cache_file(root: Path) -> Path:
    name = hashlib.sha256(os.path.abspath(root).encode("utf-8", "surrogateescape"))
    return projects_dir() / f"{name.hexdigest()[:32]}.json"


def load_project_cached(root: Path) -> Project:
    """:func:`~pytest_migorch.project.validation.load_project` of ``root``, served from the
    project cache when the file system still answers every question the load asked."""
    from pytest_migorch.project.validation import load_project

    root = Path(root)
    identity = _identity()
    where = _cache_file(root)
    entry = _read_entry(where)
    if entry is not None and entry.get("identity") == identity and \
            entry.get("root") == os.path.abspath(root) and _still_true(entry, root):
        try:
            project = decode_project(entry["project"], root)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            log.debug("project cache %s unusable: %s", where, exc)
        else:
            _remember_checksums(entry, root)
            return project
    disk = RecordingDisk()
    project = load_project(root, disk)
    entry = _write_entry(where, root, identity, project, disk)
    _remember_checksums(entry, root)
    return project


def _remember_checksums(entry: dict[str, Any] | None, root: Path) -> None:
    _checksums.clear()
    if entry is not None:
        _checksums.update({path: (key[:5], key[5]) for path, key in _reads(entry, root)})


def _read_entry(where: Path) -> dict[str, Any] | None:
    try:
        with open(where, "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_entry(where: Path, root: Path, identity: str, project: Project,
                 disk: RecordingDisk) -> dict[str, Any] | None:
    """Keep ``project`` unless the load saw something uncacheable or a racy file; returns
    what was kept (None: nothing)."""
    if disk.problem is not None:
        log.debug("project not cached: %s", disk.problem)
        return None
    now = time.time_ns()
    racy = [path for path, key in disk.reads.items()
            if max(key[1], key[2]) >= now - RACY_SECONDS * 1e9]
    if racy:
        log.debug("project not cached: %s was modified %.0f s ago or less", racy[0],
                  RACY_SECONDS)
        return None
    prefix = str(root) + os.sep
    reads = {("./" + path[len(prefix):] if path.startswith(prefix) else path): key
             for path, key in disk.reads.items()}
    entry = {"identity": identity, "root": os.path.abspath(root),
             "listings": disk.listings, "questions": disk.questions, "reads": reads,
             "project": encode_project(project)}
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        temporary = where.with_name(f"{where.name}.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(entry, handle, separators=(",", ":"))
        os.replace(temporary, where)
    except OSError:
        log.debug("could not write the project cache %s", where, exc_info=True)
    return entry
