"""Finding a local PostgreSQL installation, and the OS user its server runs as.

Client tools are everywhere, server programs are not: Debian keeps them in
``/usr/lib/postgresql/<major>/bin`` (not on PATH), PGDG RPMs in ``/usr/pgsql-<major>``, Homebrew
under ``opt/postgresql@<major>``. The search goes from the most explicit answer to the least, and
a failure lists every place that was looked at. PostgreSQL refuses to run as root; as root we
pick an unprivileged user and chown for it.

Clusters (``initdb`` and its cache) are in :mod:`pytest_migorch.postgres.clusters`, runtime
directories in :mod:`pytest_migorch.postgres.runtime`.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_migorch.errors import ServerUnavailable

try:  # POSIX only: without it the local provider reports itself unavailable
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


__all__ = [
    "PgBinaries",
    "REQUIRED_PROGRAMS",
    "SUPERUSER",
    "ServerUser",
    "USUAL_LOCATIONS",
    "child_env",
    "find_binaries",
    "has_server_binaries",
    "server_user",
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


def child_env() -> dict[str, str]:
    """Environment for initdb/postgres: ours minus ``PG*``, locale and zone pinned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    return env
