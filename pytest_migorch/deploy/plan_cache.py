"""Each plan step's up risk kept between runs, so a deploy does not re-run every check.

:func:`pytest_migorch.deploy.step_risk.up_risk` runs the whole of
:func:`pytest_migorch.checks.migration.check_migration` for every step of a plan, though a
plan shows only three of its results: the gate's level, the rules that raised it and the
tables. On a 956-step ``up --all`` that was the largest client-side cost (~3 ms a step), and
a cached SQL analysis saves only the parse, not the rules. This keeps those three results in
the analysis store (the same SQLite file, prefixed keys, as
:mod:`pytest_migorch.project.result_cache`), keyed by everything ``check_migration`` and
``plan_entry`` read for an up step:

- the tool (:func:`pytest_migorch.project.result_cache.tool_identity`: our version, the
  Python, sqlglot and pglast versions, every module's size and time), so an edited rule never
  serves the level of the code before;
- the schema, the migration's identity, both files' paths and exact contents (the down file is
  read too: its unreadable statements are findings), and its dependencies.json entry.

A failed analysis (``None``) is never stored: the next run tries again. Without a store (the
``--no-cache`` option, or the process-wide memory cache) nothing is kept between runs.

The entry also keeps the up file's statements as the splitter found them (offsets, lines and
ignore comments; the texts are slices of the file, which the key holds whole). A deploy needs
them twice, for the step's execution mode in the plan and for the batch it sends, and lexing
every file in Python was the largest client-side cost left of a long ``up`` (~0.13 ms a
file); a hit hands them to :func:`pytest_migorch.sql.split.remember_statements`, so neither
splits again. Anything that does not fit the file (a stale or damaged entry) is ignored and
the file is split as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pytest_migorch.model import Migration, MigrationFile, RiskLevel
from pytest_migorch.sql.split import (
    IgnoreComment,
    Statement,
    remember_statements,
    split_statements,
)

if TYPE_CHECKING:
    from pytest_migorch.project.result_cache import ResultCache
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = ["UpRisk", "cached_up_risk", "encode_statements", "decode_statements"]

#: (effective risk, the rules that raised it, tables touched), as ``up_risk`` returns it.
UpRisk = tuple[RiskLevel, tuple[str, ...], tuple[str, ...]]

def _result_cache(cache: AnalysisCache | None) -> ResultCache | None:
    """The result cache over ``cache``'s persistent store, if it has one."""
    store = getattr(cache, "store", None)
    if store is None:
        return None
    from pytest_migorch.project.result_cache import ResultCache

    return ResultCache(store)


def _text(file: MigrationFile | None) -> str | None:
    """The file's SQL, or None when there is none or it cannot be read."""
    if file is None:
        return None
    try:
        return file.read_text()
    except OSError:
        return None


def _content(file: MigrationFile | None, text: str | None = None) -> str:
    if file is None:
        return "\0none"
    if text is not None:
        return f"{file.path}\0{text}"
    try:
        return f"{file.path}\0{file.read_text()}"
    except OSError as exc:  # unreadable: the analysis decides what that means, not stored
        return f"{file.path}\0unreadable\0{exc}"


def step_key(results: ResultCache, migration: Migration, schema: str,
             up_text: str | None = None) -> str:
    """The key of ``migration``'s up risk: every input of the analysis and of the plan entry
    (``up_text``: the up file's SQL, when the caller read it already)."""
    return results.key("plan-up", schema, migration.service, migration.id,
                       _content(migration.up, up_text), _content(migration.down),
                       repr(migration.meta))


def encode_statements(statements: tuple[Statement, ...]) -> list[list[Any]]:
    """Statements without their texts (slices of the file: ``text[start:end]``)."""
    return [[s.index, s.start, s.end, s.line, s.end_line, s.unterminated,
             [[list(i.codes), i.line, i.reason] for i in s.ignores]] for s in statements]


def decode_statements(data: Any, text: str) -> tuple[Statement, ...] | None:
    """The statements :func:`encode_statements` kept for ``text``; None when they do not fit
    it (then the file is split again)."""
    try:
        out = []
        for index, start, end, line, end_line, unterminated, ignores in data:
            if not (isinstance(start, int) and isinstance(end, int)
                    and 0 <= start <= end <= len(text)):
                return None
            out.append(Statement(
                index=int(index), text=text[start:end], line=int(line),
                end_line=int(end_line), start=start, end=end,
                ignores=tuple(IgnoreComment(tuple(str(c) for c in codes), int(at), str(reason))
                              for codes, at, reason in ignores),
                unterminated=None if unterminated is None else str(unterminated)))
    except (TypeError, ValueError):
        return None
    return tuple(out)


def _decode(found: dict[str, Any]) -> UpRisk | None:
    try:
        return (RiskLevel(found["risk"]), tuple(str(r) for r in found["reasons"]),
                tuple(str(t) for t in found["tables"]))
    except (KeyError, TypeError, ValueError):  # another shape: compute again
        return None


def cached_up_risk(migration: Migration, schema: str, cache: AnalysisCache | None,
                   compute: Callable[[], UpRisk | None]) -> UpRisk | None:
    """``compute()`` (the up risk of ``migration``) served from the store when its key is there."""
    results = _result_cache(cache)
    if results is None:
        return compute()
    up_text = _text(migration.up)
    key = step_key(results, migration, schema, up_text)
    found = results.get(key)
    if found is not None:
        decoded = _decode(found)
        if decoded is not None:
            statements = None if up_text is None else decode_statements(
                found.get("statements"), up_text)
            if statements is not None and up_text is not None:
                remember_statements(up_text, statements)
            return decoded
    computed = compute()
    if computed is not None:
        risk, reasons, tables = computed
        entry: dict[str, Any] = {"risk": risk.value, "reasons": list(reasons),
                                 "tables": list(tables)}
        if up_text is not None:
            entry["statements"] = encode_statements(tuple(split_statements(up_text)))
        results.put(key, entry)
    return computed
