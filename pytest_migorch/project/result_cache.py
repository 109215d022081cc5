"""Whole validation results kept between runs, keyed by every input that can change them.

The SQL analysis cache (:mod:`pytest_migorch.sql.analysis`) saves the parse; a warm run still
ran every check on every migration, replayed each service's schema, loaded and schema-checked
every dependencies.json. This cache keeps the *findings*: per service (what the migration checks
found in it) and per run (everything ``migorch validate`` prints). A key is a digest of

- the files: every byte under each service's ``migrations/`` and the listing of the root
  (:mod:`pytest_migorch.project.fingerprint`);
- the tool: our version, the Python version, the versions of sqlglot and pglast, and the size
  and modification time of every module of this package, so an upgrade, or an edited rule in
  a development checkout, never serves findings of the code before;
- the options that change the result (``--strict``, the services selected, the root as given,
  since findings name files through it), passed in as :attr:`ResultCache.options`.

Anything not in a key is applied after the cache: the baseline and ``--base`` selections, the
output format. A team's own check modules can read anything, so front ends do not use this
cache when any are declared. Entries live in the same SQLite store as the analyses (prefixed
keys), whose failures turn the cache off instead of failing the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from pytest_migorch import __version__
from pytest_migorch.findings import Finding
from pytest_migorch.model import Migration, Service
from pytest_migorch.project.fingerprint import TreeFingerprint, fingerprint_directory

__all__ = ["RESULT_FORMAT", "ResultStore", "ResultCache", "ServiceFindings", "tool_identity",
           "encode_findings", "decode_findings", "root_options"]

log = logging.getLogger(__name__)

#: Bumped when what is stored changes shape.
RESULT_FORMAT = 1

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_identity: str | None = None


class ResultStore(Protocol):
    """A key -> JSON document store (:class:`pytest_migorch.sql.store.SqliteStore`)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any]) -> None: ...


def tool_identity() -> str:
    """What the code that computes findings is: versions and this package's modules (stat).

    Reading the modules' sizes and times costs about a millisecond; hashing their contents
    would cost more than the cache saves on a small tree."""
    global _identity
    if _identity is None:
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{__version__}\0{sys.version}\0".encode())
        for dist in ("sqlglot", "pglast"):
            try:
                digest.update(f"{dist}={metadata.version(dist)}\0".encode())
            except metadata.PackageNotFoundError:
                digest.update(f"{dist}=none\0".encode())
        for relative, info in package_files():
            digest.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        _identity = digest.hexdigest()
    return _identity


def package_files() -> list[tuple[str, os.stat_result]]:
    """Every module and JSON file of this package (relative path, stat), in a fixed order;
    walked with plain strings, never into ``__pycache__`` (every ``migorch`` command that
    reads a cache pays for this walk)."""
    found = []
    top = str(_PACKAGE_DIR)
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        for name in names:
            if name.endswith((".py", ".json")):
                path = os.path.join(directory, name)
                found.append((os.path.relpath(path, top), os.stat(path)))
    return sorted(found, key=lambda item: item[0])


def encode_findings(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """Findings in :meth:`Finding.to_json`'s shape, with each file path exactly as it was (not
    made relative: that is for display, and costs a path resolution per finding)."""
    return [{"code": f.code, "name": f.name, "severity": f.severity.value,
             "check": f.family.value, "service": f.service, "migration": f.migration,
             "environment": f.environment, "file": str(f.file) if f.file is not None else None,
             "line": f.line, "message": f.message, "hint": f.hint, "details": f.details}
            for f in findings]


def decode_findings(data: Sequence[dict[str, Any]]) -> list[Finding]:
    return [Finding.from_json(item) for item in data]


@dataclass
class ResultCache:
    """Findings by key in ``store``; ``options`` are the settings that change the findings."""

    store: ResultStore | None
    options: dict[str, Any] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def key(self, kind: str, *parts: str) -> str:
        digest = hashlib.sha256()
        header = {"format": RESULT_FORMAT, "tool": tool_identity(), "kind": kind,
                  "options": self.options}
        digest.update(json.dumps(header, sort_keys=True, default=str).encode())
        for part in parts:
            digest.update(b"\0" + part.encode("utf-8", "surrogateescape"))
        return f"result:{kind}:{digest.hexdigest()}"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        try:
            found = self.store.get(key)
        except Exception:  # a broken cache must never break validation
            log.debug("result cache read failed", exc_info=True)
            found = None
        if found is None or found.get("format") != RESULT_FORMAT:
            self.misses += 1
            return None
        self.hits += 1
        return found

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.store is None:
            return
        try:
            self.store.set(key, {"format": RESULT_FORMAT, **value})
        except Exception:
            log.warning("could not store validation results in the cache", exc_info=True)


def root_options(root: Path) -> dict[str, str]:
    """The root as given and as resolved: findings name files through the first, and the same
    relative root means another tree from another working directory."""
    return {"root": str(root), "resolved": os.path.realpath(root)}


class ServiceFindings:
    """Each service's migration findings, served from the cache while its ``migrations/`` is
    unchanged and stored once every migration of the service was analysed.

    Only for findings that depend on nothing but the service's own files (the SQL checks of
    :func:`pytest_migorch.checks.migration.check_migration`); ``fingerprint`` None caches
    nothing. ``deferred`` entries wait for :meth:`flush`, for a caller that checks the whole
    tree once at the end instead of each service's files as it completes."""

    def __init__(self, cache: ResultCache, fingerprint: TreeFingerprint | None, *,
                 deferred: bool = False) -> None:
        self.cache = cache
        self.fingerprint = fingerprint
        self.deferred = deferred
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._cached: dict[str, dict[str, Any] | None] = {}
        self._computed: dict[str, dict[str, list[Finding]]] = {}
        self._keys: dict[str, str | None] = {}
        self._expected: dict[str, int] = {}

    def _key(self, service: Service) -> str | None:
        """The service's key, computed once (the plugin asks for it for every item)."""
        if service.name not in self._keys:
            digest = self.fingerprint.services.get(service.name) if self.fingerprint else None
            self._keys[service.name] = (None if digest is None
                                        else self.cache.key("service", service.name, digest))
        return self._keys[service.name]

    def findings(self, service: Service, migration: Migration,
                 compute: Callable[[], list[Finding]]) -> list[Finding]:
        """The findings of ``migration``: cached, or ``compute()``d (and kept for the entry)."""
        key = self._key(service)
        if key is None:
            return compute()
        entry = str(migration.version)
        cached = self._entry(service, key)
        if cached is not None and entry in cached:
            return decode_findings(cached[entry])
        findings = compute()
        done = self._computed.setdefault(service.name, {})
        done[entry] = findings
        if service.name not in self._expected:  # counted once, not once per migration
            self._expected[service.name] = sum(1 for m in service.migrations.values()
                                               if m.up is not None)
        if len(done) == self._expected[service.name]:
            self._store(service, key, done)
        return findings

    def _entry(self, service: Service, key: str) -> dict[str, Any] | None:
        """The service's cached findings by migration, read once."""
        if service.name not in self._cached:
            found = self.cache.get(key)
            self._cached[service.name] = found["migrations"] if found is not None else None
        return self._cached[service.name]

    def known(self, service: Service) -> bool:
        """Whether ``service``'s findings are cached: its files need no analysis this run."""
        key = self._key(service)
        return key is not None and self._entry(service, key) is not None

    def _store(self, service: Service, key: str, done: dict[str, list[Finding]]) -> None:
        """Keep the service's entry if its files are still those fingerprinted (an editor
        saving during the run would otherwise pair old contents with new findings)."""
        value = {"migrations": {k: encode_findings(v) for k, v in done.items()}}
        if self.deferred:
            self._pending.append((key, value))
            return
        assert self.fingerprint is not None
        try:
            now = fingerprint_directory(str(service.migrations_dir))
        except Exception:  # unreadable or unusual now: do not store
            return
        if now == self.fingerprint.services.get(service.name):
            self.cache.put(key, value)

    def flush(self) -> None:
        """Store the deferred entries (the caller checked that the files are unchanged)."""
        for key, value in self._pending:
            self.cache.put(key, value)
        self._pending.clear()

    def analyser(self, base: Callable[[Service, Migration], list[Finding]]
                 ) -> Callable[[Service, Migration], list[Finding]]:
        """``base`` (a ``MigrationAnalyser``) with its findings cached per service."""

        def analyse(service: Service, migration: Migration) -> list[Finding]:
            return self.findings(service, migration, lambda: base(service, migration))

        return analyse
