"""A persistent store for SQL analysis results outside pytest: one SQLite file.

``migorch validate`` runs on every commit (pre-commit) and in CI; re-parsing unchanged files is most
of its cold time. Results are keyed by content hash (see :mod:`pytest_migorch.sql.analysis`), so a
stale entry can never be returned for changed SQL, and one file holds them all, which is far cheaper
than thousands of small JSON files. Any problem with the file (read-only home, a corrupt database, a
concurrent writer holding it too long) turns the store off for the process instead of failing
validation: the cache is an optimisation, never a source of errors.

Several processes share the file (pytest-xdist workers, a pre-commit hook next to an editor's
run), so every write is its own short transaction (autocommit, WAL): no process holds the write
lock for longer than one INSERT, and a second process never waits for the first to finish its
command. A short-lived command may pass ``batch_size``: its writes then wait in memory and go
in one transaction per batch (and at :meth:`SqliteStore.close`), a quarter of the cost of one
transaction each on a cold run of thousands of files, still never holding the lock for longer
than one batch. Values over :data:`MAX_VALUE_BYTES` are not stored: the analysis of a huge generated
file would grow the cache by more than the file and is cheaper to redo than to keep.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from pytest_migorch.cache_dir import cache_directory

__all__ = ["SqliteStore", "default_cache_path", "encode", "MAX_VALUE_BYTES"]

log = logging.getLogger(__name__)

#: The largest JSON document (in bytes) the store keeps.
MAX_VALUE_BYTES = 1_000_000

_SCHEMA = "CREATE TABLE IF NOT EXISTS analysis (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def encode(value: dict[str, Any]) -> str:
    """The stored form of a JSON document: compact."""
    return json.dumps(value, separators=(",", ":"))


def default_cache_path() -> Path:
    """``analysis.sqlite`` in :func:`~pytest_migorch.cache_dir.cache_directory`."""
    return cache_directory() / "analysis.sqlite"


class SqliteStore:
    """``get``/``set`` of JSON documents in one SQLite file; each ``set`` commits at once."""

    def __init__(self, path: Path | None = None, *, timeout: float = 2.0,
                 max_value_bytes: int = MAX_VALUE_BYTES, batch_size: int = 0) -> None:
        self.path = path or default_cache_path()
        self.timeout = timeout
        self.max_value_bytes = max_value_bytes
        self.batch_size = batch_size
        self._batch: dict[str, str] = {}
        self._conn: sqlite3.Connection | None = None
        self._disabled = False

    def _connection(self) -> sqlite3.Connection | None:
        if self._disabled:
            return None
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: autocommit, so no transaction outlives one statement.
                self._conn = sqlite3.connect(self.path, timeout=self.timeout,
                                             isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                self._give_up(exc)
                return None
        return self._conn

    def _give_up(self, exc: Exception) -> None:
        log.info("analysis cache %s disabled: %s", self.path, exc)
        self._disabled = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, key: str) -> dict[str, Any] | None:
        conn = self._connection()
        if conn is None:
            return None
        try:
            waiting = self._batch.get(key)
            row = (waiting,) if waiting is not None else conn.execute(
                "SELECT value FROM analysis WHERE key = ?", (key,)).fetchone()
            value = json.loads(row[0]) if row else None
        except (sqlite3.Error, ValueError) as exc:
            self._give_up(exc)
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.set_encoded(key, encode(value))

    def set_encoded(self, key: str, document: str) -> None:
        """:meth:`set` of a value already encoded with :func:`encode` (by an analysis worker)."""
        conn = self._connection()
        if conn is None:
            return
        if len(document) > self.max_value_bytes:
            log.debug("not caching %s: %d bytes is over the bound", key, len(document))
            return
        if self.batch_size > 0:
            self._batch[key] = document
            if len(self._batch) >= self.batch_size:
                self.flush()
            return
        try:
            conn.execute("INSERT OR REPLACE INTO analysis (key, value) VALUES (?, ?)",
                         (key, document))
        except sqlite3.OperationalError as exc:  # busy past the timeout: skip this one entry
            log.info("analysis cache %s: entry not saved: %s", self.path, exc)
        except sqlite3.Error as exc:
            self._give_up(exc)

    def flush(self) -> None:
        """Write the waiting entries in one transaction (busy past the timeout: drop them)."""
        rows, self._batch = list(self._batch.items()), {}
        conn = self._connection()
        if not rows or conn is None:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO analysis (key, value) VALUES (?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            log.info("analysis cache %s: %d entries not saved: %s", self.path, len(rows), exc)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            self._give_up(exc)

    def close(self) -> None:
        """Close the file (every write is already committed)."""
        if self._conn is None:
            return
        self.flush()
        if self._conn is None:  # the flush gave up on the file
            return
        try:
            self._conn.close()
        except sqlite3.Error as exc:
            log.info("analysis cache %s not closed cleanly: %s", self.path, exc)
        finally:
            self._conn = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
