"""Local PostgreSQL installations: find the programs, make clusters, own runtime directories.

This is the file-system side of the ``local`` provider of :mod:`pytest_migorch.postgres.servers`:

* **Finding** ``initdb`` and ``postgres``. Client tools are everywhere, server programs are
  not: Debian keeps them in ``/usr/lib/postgresql/<major>/bin`` (not on PATH), PGDG RPMs in
  ``/usr/pgsql-<major>``, Homebrew under ``opt/postgresql@<major>``. The search goes from the
  most explicit answer to the least, and a failure lists every place that was looked at.
* **Clusters**: ``initdb`` costs about a second, so its result is cached per PostgreSQL build
  and initdb arguments, published atomically (pytest-xdist workers race), and copied per server.
* **Runtime directories** under ``/dev/shm/migorch-<uid>`` or ``/tmp/migorch-<uid>``: each holds
  one server's data, socket and log plus an ``owner`` file locked by the owning process, so a
  later session can tell a directory left by a ``kill -9`` from one a live worker is using.
* **Running as root**: PostgreSQL refuses to; we pick an unprivileged user and chown for it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_migorch.errors import ServerUnavailable

try:  # POSIX only: without it the local provider reports itself unavailable
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "REQUIRED_PROGRAMS",
    "USUAL_LOCATIONS",
    "PgBinaries",
    "cleanup_stale_servers",
    "default_cache_dir",
    "find_binaries",
    "has_server_binaries",
    "usual_bin_dirs",
]

log = logging.getLogger(__name__)

#: What a directory must contain to be able to run a throwaway server.
REQUIRED_PROGRAMS: tuple[str, ...] = ("initdb", "postgres")

#: Glob patterns of common install locations, tried after pg_config and PATH.
USUAL_LOCATIONS: tuple[str, ...] = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu (postgresql-<major>)
    "/usr/pgsql-*/bin",  # PGDG RPMs (RHEL, Rocky, Fedora)
    "/usr/local/pgsql/bin",  # built from source with the default prefix
    "/usr/local/lib/postgresql*/bin",
    "/opt/homebrew/opt/postgresql*/bin",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql*/bin",  # Homebrew on Intel macOS
    "/opt/local/lib/postgresql*/bin",  # MacPorts
    "/Applications/Postgres.app/Contents/Versions/*/bin",
    "/opt/postgresql*/bin",
)

SUPERUSER = "postgres"  # the cluster's superuser, whatever OS user runs it
_CACHE_FORMAT = 1  # bump when the cached cluster layout or the initdb arguments change meaning
_STALE_UNOWNED_AGE = 60.0  # a runtime dir without owner file younger than this is being created
_TMPFS = Path("/dev/shm")
_TMPFS_MIN_FREE = 1 << 30
_CACHE_TEMP_MAX_AGE = 3600.0
_VERSIONS: dict[tuple[str, int], str] = {}


# --------------------------------------------------------------------------------------------
# Finding the programs


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding ``initdb`` and ``postgres``, and how it was found (for messages)."""

    bin_dir: Path
    found_by: str

    @property
    def initdb(self) -> Path:
        return self.bin_dir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bin_dir / "postgres"

    @property
    def version_text(self) -> str:
        """``postgres --version``, e.g. ``postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)``.

        It keys the initdb cache: the distribution suffix changes with every package build, so
        a cluster made by one build is never handed to another. Remembered per binary (path and
        mtime): asking costs a process, ~10 ms of every start.
        """
        try:
            key = (str(self.postgres.resolve()), self.postgres.stat().st_mtime_ns)
            if key not in _VERSIONS:
                done = subprocess.run(
                    [str(self.postgres), "--version"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=True,
                )
                _VERSIONS[key] = done.stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerUnavailable(f"{self.postgres} --version failed: {exc}") from exc
        return _VERSIONS[key]

    @property
    def major_version(self) -> int:
        """The major version (15 for 15.18, 9 for 9.6.24), 0 when the output is unexpected."""
        match = re.search(r"\)\s*(\d+)", self.version_text)
        return int(match.group(1)) if match else 0


def has_server_binaries(directory: str | os.PathLike[str]) -> bool:
    """True when ``directory`` holds executable ``initdb`` and ``postgres``."""
    return not _missing_programs(Path(directory))


def _missing_programs(directory: Path) -> list[str]:
    return [
        name
        for name in REQUIRED_PROGRAMS
        if not (directory / name).is_file() or not os.access(directory / name, os.X_OK)
    ]


def _version_key(path: str) -> tuple[int, ...]:
    """``/usr/lib/postgresql/9.6/bin`` -> (9, 6): the numbers in a path, to sort newest first."""
    return tuple(int(part) for part in re.findall(r"\d+", path))


def usual_bin_dirs(patterns: tuple[str, ...] = USUAL_LOCATIONS) -> list[Path]:
    """Directories matching ``patterns`` that hold the server programs, newest version first.

    Debian keeps old majors installed after an upgrade; tests should run against the newest
    unless told otherwise. Ties keep the order of ``patterns``.
    """
    found = [
        Path(match)
        for pattern in patterns
        for match in sorted(glob.glob(pattern))
        if has_server_binaries(match)
    ]
    return sorted(found, key=lambda p: _version_key(str(p)), reverse=True)


def _pg_config_bindir(search_path: str | None) -> tuple[Path | None, str]:
    """Ask ``pg_config --bindir``; returns the directory (or None) and a note for messages."""
    pg_config = shutil.which("pg_config", path=search_path)
    if pg_config is None:
        return None, "pg_config (not on PATH)"
    try:
        done = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"pg_config --bindir (failed: {exc})"
    bindir = Path(done.stdout.strip())
    if not has_server_binaries(bindir):  # e.g. libpq-dev's pg_config: client tools only
        return None, f"pg_config --bindir ({bindir}: no server programs)"
    return bindir, f"pg_config --bindir ({bindir})"


def _path_bindir(search_path: str | None) -> Path | None:
    """The directory of ``initdb`` on PATH, following symlinks to where ``postgres`` is too."""
    initdb = shutil.which("initdb", path=search_path)
    if initdb is None:
        return None
    # /usr/local/bin/initdb may link into the real install; initdb itself looks for postgres
    # next to its resolved location, and so do we.
    for candidate in (Path(initdb).resolve().parent, Path(initdb).parent):
        if has_server_binaries(candidate):
            return candidate
    return None


def find_binaries(
    bin_dir: str | os.PathLike[str] | None = None,
    *,
    search_path: str | None = None,
    use_pg_config: bool = True,
    patterns: tuple[str, ...] = USUAL_LOCATIONS,
) -> PgBinaries:
    """Locate the server programs: ``bin_dir``, ``pg_config --bindir``, PATH, usual locations.

    ``bin_dir`` is the user's explicit choice: when it lacks the programs this fails at once
    instead of quietly using another installation. ``search_path`` replaces ``$PATH`` and
    ``patterns`` replaces :data:`USUAL_LOCATIONS` (for tests and embedding callers).

    Raises :class:`ServerUnavailable` naming every place that was tried.
    """
    if bin_dir is not None:
        directory = Path(bin_dir).expanduser()
        missing = _missing_programs(directory)
        if missing:
            raise ServerUnavailable(
                f"the PostgreSQL bin directory {directory} has no {' and no '.join(missing)}; "
                "point it at the directory holding initdb and postgres (`pg_config --bindir`)"
            )
        return PgBinaries(directory, "bin_dir option")

    tried: list[str] = []
    if use_pg_config:
        found, note = _pg_config_bindir(search_path)
        tried.append(note)
        if found is not None:
            return PgBinaries(found, "pg_config --bindir")
    on_path = _path_bindir(search_path)
    tried.append("PATH")
    if on_path is not None:
        return PgBinaries(on_path, "PATH")
    usual = usual_bin_dirs(patterns)
    tried.append(", ".join(patterns))
    if usual:
        return PgBinaries(usual[0], "usual locations")
    raise ServerUnavailable(
        "no PostgreSQL server programs (initdb, postgres) found; tried " + "; ".join(tried)
    )


# --------------------------------------------------------------------------------------------
# Who runs the server


@dataclass(frozen=True)
class ServerUser:
    """The OS user postgres runs as; ``drop`` is True when we are root and must switch to it."""

    name: str
    uid: int
    gid: int
    drop: bool

    def popen_kwargs(self) -> dict[str, Any]:
        """``subprocess`` arguments that switch to this user (no root supplementary groups)."""
        if not self.drop:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.drop:
            os.lchown(path, self.uid, self.gid)


def server_user(requested: str | None = None) -> ServerUser:
    """PostgreSQL refuses to run as root; as root we borrow ``postgres``, else ``nobody``."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, drop=False)
    for name in [requested] if requested else [SUPERUSER, "nobody"]:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return ServerUser(name, entry.pw_uid, entry.pw_gid, drop=True)
    wanted = requested or "postgres or nobody"
    raise ServerUnavailable(f"running as root and no unprivileged user ({wanted}) to run as")


# --------------------------------------------------------------------------------------------
# Runtime directories and stale servers


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


# --------------------------------------------------------------------------------------------
# Clusters: initdb and its cache


def default_cache_dir() -> Path:
    """Where cached ``initdb`` clusters live: ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-migorch"


def initdb_args(binaries: PgBinaries) -> list[str]:
    """Arguments for a fast, reproducible cluster: no fsync, C locale, a known superuser.

    Unix-socket connections are trusted (the socket is 0700 in a private directory); TCP needs
    a password, set per server, so a TCP test server is not an open door to the ``postgres``
    OS account for every local user. 1 MB WAL segments make each copy 15 MB smaller.
    """
    major = binaries.major_version
    args = ["--no-sync", f"--username={SUPERUSER}", "--encoding=UTF8", "--locale=C"]
    args += ["--auth-local=trust", f"--auth-host={'scram-sha-256' if major >= 10 else 'md5'}"]
    if major >= 11:
        args.append("--wal-segsize=1")
    return args


def cache_entry(binaries: PgBinaries, args: list[str], cache_dir: Path | None = None) -> Path:
    """The cache path for this PostgreSQL build and these initdb arguments."""
    payload = json.dumps(
        [_CACHE_FORMAT, binaries.version_text, str(binaries.postgres.resolve()), args]
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    root = cache_dir if cache_dir is not None else default_cache_dir()
    return root / "initdb" / f"pg{binaries.major_version}-{digest}"


def is_cluster(path: Path) -> bool:
    return (path / "PG_VERSION").is_file() and (path / "global" / "pg_control").is_file()


def copy_cluster(source: Path, target: Path, user: ServerUser | None) -> None:
    """Copy a cluster directory with owner-only modes, chowning to ``user`` on the way.

    Cheaper than ``shutil.copytree`` (no per-file ``copystat``), and ``copy_file_range`` lets
    copy-on-write file systems share blocks instead of copying them.
    """
    os.mkdir(target, 0o700)
    if user is not None:
        user.chown(target)
    for root, dirs, files in os.walk(source):
        rel = os.path.relpath(root, source)
        out = target if rel == "." else target / rel
        for name in dirs:
            os.mkdir(out / name, 0o700)
            if user is not None:
                user.chown(out / name)
        for name in files:
            src = os.path.join(root, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), out / name)
                continue
            with open(src, "rb") as fin:
                fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with open(fd, "wb") as fout:
                    if user is not None and user.drop:
                        os.fchown(fd, user.uid, user.gid)
                    _copy_data(fin, fout)


def _copy_data(fin: IO[bytes], fout: IO[bytes]) -> None:
    size = os.fstat(fin.fileno()).st_size
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        done = 0
        try:
            while done < size:
                sent = copy_range(fin.fileno(), fout.fileno(), size - done)
                if sent == 0:
                    break
                done += sent
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
        if done == size:
            return
        fin.seek(0)
        fout.seek(0)
        fout.truncate()
    shutil.copyfileobj(fin, fout, 1 << 20)


def publish_to_cache(data_dir: Path, entry: Path) -> None:
    """Copy a fresh cluster into the cache atomically: build beside it, then rename.

    Racing processes (xdist workers) may both build; the first rename wins, the loser's copy is
    discarded, and a half-written cluster is never visible under the final name. A cache that
    cannot be written only costs speed, so failures are logged, not raised.
    """
    temp = entry.parent / f".tmp-{entry.name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_old_temporaries(entry.parent)
        copy_cluster(data_dir, temp, None)
        try:
            os.rename(temp, entry)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            log.debug("initdb cache %s was published by another process", entry)
    except OSError as exc:
        log.warning("could not cache the initdb result in %s: %s", entry.parent, exc)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _remove_old_temporaries(cache_root: Path) -> None:
    """Drop half-built entries left by processes killed while publishing."""
    for leftover in cache_root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > _CACHE_TEMP_MAX_AGE:
                shutil.rmtree(leftover, ignore_errors=True)


def discard_cache_entry(entry: Path) -> None:
    """Move a broken cache entry away (rename first: other processes may be copying it)."""
    trash = entry.parent / f".tmp-broken-{entry.name}-{secrets.token_hex(4)}"
    with contextlib.suppress(OSError):
        os.rename(entry, trash)
        shutil.rmtree(trash, ignore_errors=True)


def child_env() -> dict[str, str]:
    """Environment for initdb/postgres: ours minus ``PG*``, locale and zone pinned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    return env


def run_initdb(binaries: PgBinaries, data_dir: Path, user: ServerUser, args: list[str]) -> None:
    """``initdb`` into the existing, empty, ``user``-owned ``data_dir``, as ``user``."""
    command = [str(binaries.initdb), "-D", str(data_dir), *args]
    try:
        subprocess.run(
            command,
            cwd=data_dir.parent,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            start_new_session=True,
            **user.popen_kwargs(),
        )
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip()[-2000:]
        raise ServerUnavailable(f"initdb failed ({binaries.initdb}): {output}") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerUnavailable(f"initdb failed ({binaries.initdb}): {exc}") from exc
