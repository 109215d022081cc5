"""SQL analyses kept by content key: a bounded memory LRU in front of an optional store.

Apart from :mod:`pytest_migorch.sql.analysis` because every command that may plan builds one
(``migorch up`` hands it to the runner), while the analysis itself pulls in PostgreSQL's parser
(pglast), the token recognisers and their compiled patterns: an ``up`` with nothing to do, or
whose analyses are all cached, needs none of them. The analysis module re-exports both names.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pytest_migorch.sql.analysis import Computed, SqlAnalysis

__all__ = ["AnalysisCache", "ComputedAhead", "PersistentStore", "INTERNAL_ERROR"]

logger = logging.getLogger("pytest_migorch.sql.analysis")

#: The reason given to a statement whose analysis raised (a bug of ours, not a fact).
INTERNAL_ERROR = "internal error"


class PersistentStore(Protocol):
    """Somewhere analysis results survive the process: ``get`` returns None when absent."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any]) -> None: ...


class ComputedAhead(Protocol):
    """Analyses computed elsewhere (:class:`pytest_migorch.sql.ahead.AnalysesAhead`): ``take``
    returns one by key, or None when the caller must analyse the text itself."""

    def take(self, key: str) -> Computed | None: ...


class AnalysisCache:
    """Analyses by content key: a bounded in-memory LRU in front of an optional store."""

    def __init__(self, store: PersistentStore | None = None, max_entries: int = 4096) -> None:
        self.store = store
        self.max_entries = max_entries
        self._memory: OrderedDict[str, SqlAnalysis] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.store_hits = 0
        self.misses = 0
        #: Where analyses computed ahead wait (set while :func:`~pytest_migorch.sql.ahead.
        #: analyses_ahead` runs); asked before a text is analysed here.
        self.ahead: ComputedAhead | None = None

    def remembers(self, key: str) -> bool:
        """Whether ``key``'s analysis is in memory (the store is not asked: one query a file
        would cost the look-ahead more than analysing again what a warm store holds)."""
        with self._lock:
            return key in self._memory

    def get(self, key: str) -> SqlAnalysis | None:
        """The analysis of ``key`` from memory, from :attr:`ahead` (then kept like one
        analysed here), or from the store."""
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return found
        computed = self.ahead.take(key) if self.ahead is not None else None
        if computed is not None:
            self.misses += 1
            self.put(computed.analysis, document=computed.document)
            return computed.analysis
        stored = self._from_store(key)
        if stored is not None:
            self.store_hits += 1
            self._remember(key, stored)
        return stored

    def put(self, analysis: SqlAnalysis, *, document: str | None = None) -> None:
        """Keep ``analysis`` in memory and in the store; ``document`` is its stored form when
        another process already encoded it (for a store that takes encoded values:
        :meth:`~pytest_migorch.sql.store.SqliteStore.set_encoded`)."""
        self._remember(analysis.key, analysis)
        if self.store is not None and not _has_internal_error(analysis):
            try:
                set_encoded = getattr(self.store, "set_encoded", None)
                if document is not None and set_encoded is not None:
                    set_encoded(analysis.key, document)
                else:
                    self.store.set(analysis.key, analysis.to_json())
            except Exception:  # a broken cache must never break the analysis
                logger.warning("could not store SQL analysis in the cache", exc_info=True)

    def _remember(self, key: str, analysis: SqlAnalysis) -> None:
        with self._lock:
            self._memory[key] = analysis
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)

    def _from_store(self, key: str) -> SqlAnalysis | None:
        if self.store is None:
            return None
        try:
            data = self.store.get(key)
            if data is None:
                return None
            from pytest_migorch.sql.analysis import SqlAnalysis

            return SqlAnalysis.from_json(data)
        except Exception:  # stale or corrupt entry: analyse again
            logger.debug("ignoring unreadable cached SQL analysis %s", key, exc_info=True)
            return None


def _has_internal_error(analysis: SqlAnalysis) -> bool:
    """A bug of ours is not a fact about the file: keep it out of the persistent store, so the
    fixed analysis runs next time even without a version change."""
    return any((s.reason or "").startswith(INTERNAL_ERROR) for s in analysis.statements)
