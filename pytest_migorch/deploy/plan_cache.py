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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pytest_migorch.model import Migration, MigrationFile, RiskLevel

if TYPE_CHECKING:
    from pytest_migorch.project.result_cache import ResultCache
    from pytest_migorch.sql.analysis_cache import AnalysisCache

__all__ = ["UpRisk", "cached_up_risk"]

#: (effective risk, the rules that raised it, tables touched), as ``up_risk`` returns it.
UpRisk = tuple[RiskLevel, tuple[str, ...], tuple[str, ...]]

def _result_cache(cache: AnalysisCache | None) -> ResultCache | None:
    """The result cache over ``cache``'s persistent store, if it has one."""
    store = getattr(cache, "store", None)
    if store is None:
        return None
    from pytest_migorch.project.result_cache import ResultCache

    return ResultCache(store)


def _content(file: MigrationFile | None) -> str:
    if file is None:
        return "\0none"
    try:
        return f"{file.path}\0{file.read_text()}"
    except OSError as exc:  # unreadable: the analysis decides what that means, not stored
        return f"{file.path}\0unreadable\0{exc}"


def step_key(results: ResultCache, migration: Migration, schema: str) -> str:
    """The key of ``migration``'s up risk: every input of the analysis and of the plan entry."""
    return results.key("plan-up", schema, migration.service, migration.id,
                       _content(migration.up), _content(migration.down), repr(migration.meta))


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
    key = step_key(results, migration, schema)
    found = results.get(key)
    if found is not None:
        decoded = _decode(found)
        if decoded is not None:
            return decoded
    computed = compute()
    if computed is not None:
        risk, reasons, tables = computed
        results.put(key, {"risk": risk.value, "reasons": list(reasons), "tables": list(tables)})
    return computed
