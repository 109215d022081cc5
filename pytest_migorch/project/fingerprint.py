"""Digests of everything a services tree gives the static checks, to key whole cached results.

A warm ``migorch validate`` should cost what reading the files costs: if no byte under a
service's ``migrations/`` changed (SQL, dependencies.json, environments.json, names, links), its
findings cannot have changed either, so they are served from the cache instead of recomputed.
The digest therefore covers more than the checks read (every entry, hidden ones included): an
extra file costs a cache miss, a missed one would cost a wrong answer.

Anything unusual makes the tree *uncacheable* (None) rather than guessed at: an entry that
cannot be listed or read (discovery reports it, and the report must not come from a cache), a
link to a directory (it may loop or point anywhere), a special file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pytest_migorch.project.sources import read_file

__all__ = ["TreeFingerprint", "fingerprint_tree", "fingerprint_directory"]


@dataclass(frozen=True)
class TreeFingerprint:
    """The digest of a services root: its listing and one digest per service directory."""

    root: Path
    #: Changes when anything below the root that discovery looks at changes.
    digest: str
    #: Service directory name -> digest of its ``migrations/`` tree.
    services: dict[str, str] = field(default_factory=dict)


class _Uncacheable(Exception):
    """Something in the tree must be read by the real pipeline, never served from a cache."""


def fingerprint_tree(root: Path) -> TreeFingerprint | None:
    """The fingerprint of ``root`` (a services root), or None when it cannot be cached.

    Mirrors discovery: every directory entry of the root is listed (name and kind); for each
    that holds ``migrations/``, the whole ``migrations/`` tree is hashed, contents included.
    """
    root = Path(root)
    try:
        top = hashlib.blake2b(digest_size=20)
        services: dict[str, str] = {}
        for entry in _entries(str(root)):
            top.update(_entry_header(entry))
            if not entry.is_dir():  # follows a link, as discovery's is_dir does
                continue
            migrations = os.path.join(entry.path, "migrations")
            kind = _kind(migrations)
            top.update(f"migrations:{kind}\0".encode())
            if kind == "dir":
                services[entry.name] = fingerprint_directory(migrations)
                top.update(services[entry.name].encode() + b"\0")
        return TreeFingerprint(root=root, digest=top.hexdigest(), services=services)
    except (OSError, _Uncacheable):
        return None


def fingerprint_directory(directory: str) -> str:
    """The digest of every entry below ``directory``: names, kinds, link targets, contents.

    Raises OSError or :class:`_Uncacheable` (callers: :func:`fingerprint_tree`)."""
    digest = hashlib.blake2b(digest_size=20)
    pending = [directory]
    while pending:
        current = pending.pop()
        digest.update(b"dir\0" + os.path.relpath(current, directory).encode("utf-8",
                                                                           "surrogateescape"))
        for entry in _entries(current):
            digest.update(_entry_header(entry))
            if entry.is_symlink():
                if entry.is_dir():
                    raise _Uncacheable(entry.path)
                digest.update(os.readlink(entry.path).encode("utf-8", "surrogateescape") + b"\0")
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file():
                data = read_file(entry.path)
                digest.update(len(data).to_bytes(8, "little") + data)
            else:  # a dangling link, a socket, a FIFO: let the real pipeline report it
                raise _Uncacheable(entry.path)
    return digest.hexdigest()


def _entries(directory: str) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as listing:
        return sorted(listing, key=lambda e: e.name)


def _entry_header(entry: os.DirEntry[str]) -> bytes:
    """Name and kind, from the directory listing itself (no ``stat`` call on Linux)."""
    kind = ("link" if entry.is_symlink() else "dir" if entry.is_dir(follow_symlinks=False)
            else "file" if entry.is_file(follow_symlinks=False) else "other")
    return entry.name.encode("utf-8", "surrogateescape") + f"\0{kind}\0".encode()


def _kind(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "absent"
    return "dir" if stat.S_ISDIR(mode) else "other"
