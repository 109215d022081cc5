"""SQL analyses computed ahead in worker processes, in the order a pipeline will ask for them.

A cold ``migorch validate`` spends most of its time analysing files (splitting, sqlglot,
PostgreSQL's parser), one after the other, on one core. The analysis of a file depends on
nothing but its text (it is cached by content, :func:`~pytest_migorch.sql.analysis.content_key`),
so it can run anywhere: :class:`AnalysesAhead` sends the texts the pipeline is about to analyse
to forked worker processes, a bounded window of chunks at a time and in the pipeline's order,
while the parent runs the checks on what came back. :func:`~pytest_migorch.sql.analysis.
analyse_sql` asks :meth:`AnalysesAhead.take` before analysing a text itself; the findings are
the same by construction, as the same function computes the same value for the same text.

Anything that goes wrong with the workers (a crashed worker, a result that cannot be sent back)
turns the look-ahead off: every text not yet received is then analysed in the parent, as without
it. Workers are forked (no re-import, they start in milliseconds), so this is used only where
``fork`` is safe, Linux, with more than one usable core and enough files to pay for the start.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from pytest_migorch.sql.analysis import (
    AnalysisCache,
    Computed,
    SqlAnalysis,
    analyse_uncached,
    content_key,
)
from pytest_migorch.sql.execution_mode import SqlMode, remember_sql_mode, sql_mode
from pytest_migorch.sql.schema_facts import SchemaDetail, file_details, remember_file_details
from pytest_migorch.sql.split import Statement, remember_statements, split_statements
from pytest_migorch.sql.store import encode


__all__ = ["AnalysesAhead", "analyses_ahead", "usable_workers", "MIN_FILES", "CHUNK_FILES"]

logger = logging.getLogger(__name__)

#: Below this many texts to analyse, forking workers costs more than it saves.
MIN_FILES = 64
#: Texts per task: large enough that sending them costs little next to analysing them, small
#: enough that the first result comes back soon and the workers share the tail evenly.
CHUNK_FILES = 64
#: Chunks in flight per worker: bounds the results waiting in memory for the pipeline.
WINDOW_PER_WORKER = 4

#: Analyses one text under its key (the workers run it): :func:`analysis.analyse_uncached`.
Analyse = Callable[[str, str], SqlAnalysis]


def usable_workers() -> int:
    """Worker processes worth starting: the cores this process may run on, where forking is
    safe (Linux), else 0 (no look-ahead)."""
    if not sys.platform.startswith("linux") or \
            "fork" not in multiprocessing.get_all_start_methods():
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


#: What a worker sends back for one text: its analysis, encoded for the store too, its
#: statements, what its SQL says of its execution mode and its schema details. The checks in
#: the parent need all of them, and each depends on nothing but the text: computed here, they
#: cost the parent (the critical path of a cold run) only receiving them.
_Done = tuple[SqlAnalysis, str, tuple[Statement, ...], SqlMode, tuple[SchemaDetail, ...]]


def _analyse_chunk(analyse: Analyse, chunk: list[tuple[str, str]]) -> list[_Done]:
    """In a worker: the analyses, stored forms, splits, SQL modes and schema details of
    ``(key, text)`` pairs, in order."""
    done: list[_Done] = []
    for key, text in chunk:
        analysis = analyse(text, key)
        done.append((analysis, encode(analysis.to_json()), tuple(split_statements(text)),
                     sql_mode(text), file_details(text, len(analysis.statements))))
    return done


class AnalysesAhead:
    """Analyses of ``(key, text)`` pairs computed by ``workers`` processes, taken in order.

    :meth:`take` returns a key's analysis once its chunk is back (waiting for it if needed), or
    None for a key that was never sent or after a failure: the caller then analyses the text
    itself. Call :meth:`close` (or use it as a context manager) to stop the workers.
    """

    def __init__(self, items: Iterable[tuple[str, str]], analyse: Analyse, *, workers: int,
                 needed: Callable[[str], bool] = lambda key: True,
                 chunk_files: int = CHUNK_FILES) -> None:
        self._items = iter(items)
        self._needed = needed
        self._chunk_files = chunk_files
        self._analyse = analyse
        self._sent: set[str] = set()
        self._expected: set[str] = set()
        self._ready: dict[str, Computed] = {}
        self._in_flight: deque[tuple[list[tuple[str, str]], Future[list[_Done]]]] = deque()
        self._window = max(1, workers) * WINDOW_PER_WORKER
        self._executor: ProcessPoolExecutor | None = None
        if workers > 0:
            try:
                self._executor = ProcessPoolExecutor(
                    max_workers=workers, mp_context=multiprocessing.get_context("fork"))
                self._fill()
            except Exception:  # no processes here (limits, sandbox): analyse in the parent
                logger.info("cannot start SQL analysis workers", exc_info=True)
                self._give_up()

    @property
    def active(self) -> bool:
        """Whether workers are (still) computing analyses."""
        return self._executor is not None

    def _fill(self) -> None:
        """Send chunks until the window is full. Texts are read and checked against the cache
        only now, just ahead of the pipeline: what it already has is not sent again."""
        assert self._executor is not None
        while len(self._in_flight) < self._window:
            chunk = self._next_chunk()
            if not chunk:
                return
            self._expected.update(key for key, _ in chunk)
            self._in_flight.append((chunk, self._executor.submit(_analyse_chunk, self._analyse,
                                                                 chunk)))

    def _next_chunk(self) -> list[tuple[str, str]]:
        chunk: list[tuple[str, str]] = []
        for key, text in self._items:
            if key in self._sent or not self._needed(key):
                continue
            self._sent.add(key)
            chunk.append((key, text))
            if len(chunk) >= self._chunk_files:
                break
        return chunk

    def take(self, key: str) -> Computed | None:
        """The analysis of ``key`` computed ahead, or None (never sent, or the workers
        failed): the caller analyses the text itself."""
        found = self._ready.pop(key, None)
        if found is not None or key not in self._expected:
            return found
        while self._executor is not None and self._in_flight and key not in self._ready:
            chunk, future = self._in_flight.popleft()
            try:
                results = future.result()
            except Exception:  # a worker died or a result could not be sent: do it here
                logger.warning("SQL analysis workers failed; analysing in this process",
                               exc_info=True)
                self._give_up()
                break
            for (done, text), (analysis, document, statements, mode, details) in zip(
                    chunk, results, strict=True):
                self._expected.discard(done)
                self._ready[done] = Computed(analysis, document)
                remember_statements(text, statements)
                remember_sql_mode(text, mode)
                remember_file_details(text, len(analysis.statements), details)
            self._fill()
        self._expected.discard(key)
        return self._ready.pop(key, None)

    def _give_up(self) -> None:
        """Stop the workers; every key not received is the caller's to analyse."""
        self._expected.clear()
        self._items = iter(())
        self._in_flight.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        """Stop the workers (chunks not yet taken are dropped) and forget what is waiting."""
        self._give_up()
        self._ready.clear()

    def __enter__(self) -> AnalysesAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def analyses_ahead(cache: AnalysisCache, texts: Iterable[str], *, count: int,
                   workers: int | None = None, min_files: int = MIN_FILES
                   ) -> Iterator[AnalysesAhead | None]:
    """While the block runs, ``cache`` serves the analyses of ``texts`` (about ``count`` of
    them, read lazily, in the order the block will analyse them) computed by ``workers``
    processes (default :func:`usable_workers`).

    Nothing is started for fewer than ``min_files`` texts, on one core or where forking is not
    safe: the block then runs exactly as without it (and gets None)."""
    workers = usable_workers() if workers is None else workers
    if workers <= 0 or count < min_files:
        yield None
        return
    items = ((content_key(text), text) for text in texts)
    with AnalysesAhead(items, analyse_uncached, workers=workers,
                       needed=lambda key: not cache.remembers(key)) as ahead:
        cache.ahead = ahead
        try:
            yield ahead
        finally:
            cache.ahead = None
