"""Runtime directories of local servers, and the cleanup of servers left by dead sessions.

Each server lives in one directory under ``/dev/shm/migorch-<uid>`` or ``/tmp/migorch-<uid>``
holding its data, socket and log plus an ``owner`` file locked by the owning process, so a later
session can tell a directory left by a ``kill -9`` from one a live worker is using. The parent
must be ours: in a world-writable /tmp or /dev/shm someone else could have created it first, and
then we fall back to a private ``mkdtemp`` directory rather than use (or give up on) theirs.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path

from pytest_migorch.errors import ServerUnavailable
from pytest_migorch.postgres.safety import foreign_path, warn_unsafe

try:  # POSIX only: without it the local provider reports itself unavailable
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


__all__ = [
    "RuntimeDir",
    "cleanup_stale_servers",
    "default_runtime_parents",
    "prepare_runtime_parent",
    "choose_runtime_parent",
    "private_runtime_parent",
]

log = logging.getLogger(__name__)

_STALE_UNOWNED_AGE = 60.0  # a runtime dir without owner file younger than this is being created
_TMPFS = Path("/dev/shm")
_TMPFS_MIN_FREE = 1 << 30


def default_runtime_parents() -> list[Path]:
    """Where runtime dirs may live, preferred first: ``/dev/shm`` when roomy, then ``/tmp``.

    A fresh cluster is ~1000 files; on a RAM file system creating them costs ~40 ms, on some
    disks (VMs especially) close to a second. Containers often give /dev/shm only 64 MB, hence
    the free-space floor. Both paths are short, as unix socket paths (~104 bytes) must be.
    """
    uid = os.geteuid()
    parents = [Path(f"/tmp/migorch-{uid}")]
    with contextlib.suppress(OSError):
        info = os.statvfs(_TMPFS)
        if sys.platform.startswith("linux") and info.f_bavail * info.f_frsize >= _TMPFS_MIN_FREE:
            parents.insert(0, _TMPFS / f"migorch-{uid}")
    return parents


def prepare_runtime_parent(parent: Path) -> Path:
    """Create ``parent`` (mode 0711: the server user may traverse it, not list it).

    A pre-existing directory owned by someone else is refused: in a world-writable /tmp it
    could be a trap set by another user.
    """
    try:
        parent.mkdir(mode=0o711, parents=True, exist_ok=True)
        info = os.lstat(parent)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise ServerUnavailable(f"{parent} is not a directory owned by uid {os.geteuid()}")
        if stat.S_IMODE(info.st_mode) != 0o711:
            os.chmod(parent, 0o711)
    except OSError as exc:
        raise ServerUnavailable(f"cannot use runtime directory {parent}: {exc}") from exc
    return parent


def private_runtime_parent(refused: Path, reason: str) -> Path:
    """A fresh ``mkdtemp`` parent beside ``refused`` (same file system), with a warning.

    Another account can pre-create ``/dev/shm/migorch-<uid>`` to deny us the usual place; that
    must cost neither the round-trips (which would all be skipped) nor silence. The directory
    is ours by construction and removed at exit once its servers are gone.
    """
    try:
        path = Path(tempfile.mkdtemp(prefix=f"{refused.name}-", dir=refused.parent))
        os.chmod(path, 0o711)
    except OSError as exc:
        raise ServerUnavailable(f"{reason}, and no private directory instead: {exc}") from exc
    atexit.register(_remove_if_empty, path)
    warn_unsafe(f"{reason}; not using it for PostgreSQL runtime files, using {path} instead")
    return path


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def choose_runtime_parent(explicit: str | os.PathLike[str] | None) -> Path:
    """The parent for this server's runtime dir: the explicit one (which must be usable), else
    the preferred default, else a private directory beside it (see
    :func:`private_runtime_parent`)."""
    if explicit is not None:
        return prepare_runtime_parent(Path(explicit))
    parent = default_runtime_parents()[0]
    try:
        return prepare_runtime_parent(parent)
    except ServerUnavailable as exc:
        return private_runtime_parent(parent, str(exc))


class RuntimeDir:
    """One server's directory: ``owner`` (our pid, flock held while we live), data, sock, log.

    The lock, not the pid, says whether the directory is stale: the kernel releases it when our
    process dies, whatever killed it, and pid reuse cannot fool it. The owner file is locked
    under a temporary name and then renamed, so a scanner never sees it unlocked.
    """

    def __init__(self, path: Path, owner_fd: int) -> None:
        self.path = path
        self._owner_fd: int | None = owner_fd

    @classmethod
    def create(cls, parent: Path) -> RuntimeDir:
        if fcntl is None:  # pragma: no cover - Windows
            raise ServerUnavailable("local PostgreSQL servers need a POSIX system")
        path = Path(tempfile.mkdtemp(prefix="", dir=parent))
        fd = -1
        try:
            os.chmod(path, 0o711)
            fd = os.open(path / ".owner", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.rename(path / ".owner", path / "owner")
        except BaseException:
            if fd >= 0:
                os.close(fd)
            shutil.rmtree(path, ignore_errors=True)
            raise
        return cls(path, fd)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._owner_fd is not None:
            os.close(self._owner_fd)
            self._owner_fd = None


def _process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return False


def _kill_postmaster(data_dir: Path, grace: float = 5.0) -> None:
    """Stop the postmaster of a cluster we did not start (left by a killed session)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if pid <= 1 or _process_gone(pid):
        return
    with contextlib.suppress(OSError):
        # On Linux make sure it is that cluster's postmaster (postgres chdirs into its data
        # dir), not an unrelated process that inherited a recycled pid.
        if Path(os.readlink(f"/proc/{pid}/cwd")) != data_dir.resolve():
            return
    try:
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the data is about to be deleted
    except OSError:
        return
    deadline = time.monotonic() + grace
    while not _process_gone(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.01)


def cleanup_stale_servers(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Stop the postmasters of dead sessions, remove their runtime dirs, return those dirs.

    Called on every local start, so a ``kill -9``'d test run is cleaned up by the next one. A
    directory whose owner lock is held belongs to a live process (another xdist worker) and is
    left alone. Without ``parent`` both default parents are scanned.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return []
    roots = [Path(parent)] if parent is not None else default_runtime_parents()
    if parent is None and _TMPFS / f"migorch-{os.geteuid()}" not in roots:
        roots.append(_TMPFS / f"migorch-{os.geteuid()}")  # /dev/shm may have filled up since
    removed: list[Path] = []
    for root in roots:
        if foreign_path(root) is not None:
            continue  # another account's directory: nothing in it is ours to stop or delete
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for entry in entries:
            if _reap_if_stale(entry):
                removed.append(entry)
    return removed


def _reap_if_stale(entry: Path) -> bool:
    assert fcntl is not None
    try:
        if entry.is_symlink() or not entry.is_dir():
            return False
        fd = os.open(entry / "owner", os.O_RDONLY)
    except FileNotFoundError:
        with contextlib.suppress(OSError):  # crashed between mkdtemp and the owner file?
            if time.time() - entry.stat().st_mtime > _STALE_UNOWNED_AGE:
                _kill_postmaster(entry / "data")
                shutil.rmtree(entry, ignore_errors=True)
                return True
        return False
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # owner alive, or another process is cleaning it up right now
        log.info("removing stale PostgreSQL runtime directory %s", entry)
        _kill_postmaster(entry / "data")
        shutil.rmtree(entry, ignore_errors=True)
        return True
    finally:
        os.close(fd)
