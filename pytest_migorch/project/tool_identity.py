"""What the code that computes findings is: the part of every cache key that names the tool.

Every cache (analyses, results, plans, valid JSON documents) must miss when the code behind it
changes. The identity digests our version, Python's, sqlglot's and pglast's, and what this
package's modules are:

- **installed from a wheel**: the distribution's ``RECORD``, pip's list of every installed file
  with its sha256, and each module's size. Two installs of the same build agree, so a CI job
  that installs afresh and restores the cache of an earlier job gets hits: the modules' times
  differ between those installs, their contents do not.
- **an editable install or a source checkout** (RECORD lists the link, not the modules, or the
  modules imported are not the distribution's): each module's size and modification time, so
  an edited rule in a development checkout never serves findings of the code before. Reading
  the times costs about a millisecond; hashing the contents would cost more than a small tree
  saves.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from pytest_migorch import __version__

__all__ = ["tool_identity", "package_files", "installed_record"]

DISTRIBUTION = "pytest-migorch"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_identity: str | None = None


def tool_identity() -> str:
    """The identity of the code computing findings (computed once per process)."""
    global _identity
    if _identity is None:
        _identity = identity_of(_PACKAGE_DIR, installed_record(_PACKAGE_DIR))
    return _identity


def identity_of(package_dir: Path, record: str | None) -> str:
    """The identity of the package at ``package_dir``, by ``record`` (its distribution's RECORD)
    and the modules' sizes when there is one, else by the modules' sizes and times."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{__version__}\0{sys.version}\0".encode())
    for dist in ("sqlglot", "pglast"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{dist}=none\0".encode())
    if record is not None:
        digest.update(b"record\0" + record.encode())
    for relative, info in package_files(package_dir):
        times = "" if record is not None else f"{info.st_mtime_ns}"
        digest.update(f"{relative}\0{info.st_size}\0{times}\0".encode())
    return digest.hexdigest()


def installed_record(package_dir: Path,
                     distribution: metadata.Distribution | None = None) -> str | None:
    """The ``RECORD`` of the wheel install whose modules are the ones at ``package_dir``; None
    for an editable install, a checkout on ``sys.path``, or no distribution at all."""
    try:
        dist = distribution or metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    try:
        direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
        if (direct_url.get("dir_info") or {}).get("editable"):
            return None
        record = dist.read_text("RECORD")
        installed = Path(str(dist.locate_file(f"{package_dir.name}/__init__.py")))
        if not record or not os.path.samefile(installed, package_dir / "__init__.py"):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return record


def package_files(package_dir: Path = _PACKAGE_DIR) -> list[tuple[str, os.stat_result]]:
    """Every module and JSON file of the package (relative path, stat), in a fixed order;
    walked with plain strings, never into ``__pycache__`` (every ``migorch`` command that
    reads a cache pays for this walk)."""
    found = []
    top = str(package_dir)
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        for name in names:
            if name.endswith((".py", ".json")):
                path = os.path.join(directory, name)
                found.append((os.path.relpath(path, top), os.stat(path)))
    return sorted(found, key=lambda item: item[0])
