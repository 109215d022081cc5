"""Is a directory we are about to trust really ours? Ownership and mode checks, and the warning.

Local servers run from files in shared places (``/dev/shm``, ``/tmp``, a cache in a home that
a backup or a shared ``XDG_CACHE_HOME`` may have filled). Whoever can write those files decides
what the server runs, and we often run as root: anything another account could have placed or
changed is rejected, and the rejection is said out loud (a :class:`UnsafeFilesWarning`, also
logged), because silently falling back or skipping hides both the attack and the lost speed.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from pathlib import Path

__all__ = ["UnsafeFilesWarning", "foreign_path", "foreign_tree", "warn_unsafe"]

log = logging.getLogger(__name__)

#: Group or others may write: then they may also replace what we checked.
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class UnsafeFilesWarning(UserWarning):
    """Files or directories that another account could control were not used."""


def warn_unsafe(message: str) -> None:
    """Say once, as a warning (visible in pytest's summary) and in the log, what was refused."""
    log.warning("%s", message)
    try:
        warnings.warn(message, UnsafeFilesWarning, stacklevel=3)
    except UnsafeFilesWarning:  # ``-W error``: the refusal is done and logged, not a crash
        pass


def foreign_path(path: Path, *, directory: bool = True) -> str | None:
    """Why ``path`` is not safely ours (None when it is): not ours, a symlink, or writable by
    group or others. ``lstat``: a symlink is judged itself, never what it points to."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if directory and not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.geteuid():
        return f"{path} is owned by uid {info.st_uid}, not by us (uid {os.geteuid()})"
    if info.st_mode & _WRITABLE_BY_OTHERS:
        return f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def foreign_tree(root: Path) -> str | None:
    """The first entry under ``root`` (itself included) that is not safely ours, or None.

    Only directories and regular files are accepted: a cluster made by ``initdb`` has nothing
    else, and a symlink or device in it could point the copy or the server anywhere.
    """
    problem = foreign_path(root)
    if problem is not None:
        return problem
    for base, dirs, files in os.walk(root):
        for name in dirs:
            problem = foreign_path(Path(base) / name)
            if problem is not None:
                return problem
        for name in files:
            path = Path(base) / name
            problem = foreign_path(path, directory=False)
            if problem is None and not stat.S_ISREG(os.lstat(path).st_mode):
                problem = f"{path} is not a regular file"
            if problem is not None:
                return problem
    return None
