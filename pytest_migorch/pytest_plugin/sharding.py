"""``--migorch-shard K/N``: one CI job's share of the session's items.

A repository too big for one CI job is split across the jobs of the CI system's own matrix;
job K of N runs ``pytest --migorch ROOT --migorch-shard K/N`` and deselects the rest. Every job
computes the same partition from the same inputs (the collected items and pytest's cache), so
the shards cover every item exactly once without talking to each other.

Items are partitioned in *groups* that must stay together:

- a round-trip ``(service, environment)``: its items share one database and one
  :class:`~pytest_migorch.roundtrip.RoundTrip` that runs up to the migration each item asks
  for; split across jobs, each job would apply the prefix again;
- a service's static items (config, files, graph, sql, risk, custom): they share the schema
  history of the service (``service_models``), computed once per process;
- any other item (a team's own tests): its ``xdist_group`` when it has one, else its module,
  so module fixtures are set up in one job only.

Groups are balanced by their durations in the last runs (the ``migorch/durations`` key of
pytest's cache, written at the end of every session that uses pytest-migorch, merged so the
caches of several jobs add up). A group without a recorded duration is estimated from its item
count at the mean rate of the known groups of its kind (database or static), or at a default
rate when nothing is known: the fallback is the migration count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import pytest

__all__ = [
    "DURATIONS_KEY",
    "GROUP_ATTRIBUTE",
    "ShardSpec",
    "parse_shard",
    "group_of",
    "estimate_weights",
    "partition",
    "PLUGIN_NAME",
]

PLUGIN_NAME = "migorch-sharding"
#: pytest cache key of the recorded group durations: ``{"version": 1, "groups": {key: s}}``.
DURATIONS_KEY = "migorch/durations"
DURATIONS_VERSION = 1
#: The report attribute that carries an item's group to the controller (JSON: survives xdist).
GROUP_ATTRIBUTE = "migorch_shard_group"
#: Seconds per item when no run recorded anything of the kind (a round-trip item is an up,
#: two snapshots, a down and an up again; a static item reads cached analyses).
DEFAULT_RATES = {"db": 0.08, "static": 0.004, "other": 0.01}

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    """``"2/4"`` as a :class:`ShardSpec`; a :class:`ValueError` saying what is expected."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ValueError(f"--migorch-shard {text!r}: expected K/N, e.g. 2/4 (job 2 of 4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--migorch-shard {text!r}: K must be between 1 and N (N >= 1); "
                         "K is the job's 1-based index in the CI matrix")
    return ShardSpec(index, count)


# --- groups ----------------------------------------------------------------------------------


def _xdist_group(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return None
    name = marker.args[0] if marker.args else marker.kwargs.get("name")
    return str(name) if name is not None else None


_GROUP_KEY = pytest.StashKey[str]()


def group_of(item: pytest.Item) -> str:
    """The group ``item`` is partitioned with (see the module docstring), computed once."""
    group = item.stash.get(_GROUP_KEY, None)
    if group is None:
        group = item.stash[_GROUP_KEY] = _group(item)
    return group


def _group(item: pytest.Item) -> str:
    # Imported here: the option table imports this module in every pytest session, and the
    # collectors bring the whole core (only sessions that use pytest-migorch get this far).
    from pytest_migorch.pytest_plugin.collectors import (
        MigorchItem,
        RoundTripCollector,
        ServiceCollector,
    )

    if isinstance(item, MigorchItem):
        parent = item.parent
        if isinstance(parent, RoundTripCollector):
            return parent.nodeid
        if item.get_closest_marker("migorch_db") is not None:
            return item.nodeid  # a round-trip that cannot run, standing alone
        if isinstance(parent, ServiceCollector):
            return f"{parent.nodeid}::static"
        return item.nodeid
    group = _xdist_group(item)
    if group is not None:
        return f"xdist_group:{group}"
    return item.nodeid.split("::", 1)[0]


def _kind(item: pytest.Item) -> str:
    from pytest_migorch.pytest_plugin.collectors import MigorchItem

    if not isinstance(item, MigorchItem):
        return "other"
    return "db" if item.get_closest_marker("migorch_db") is not None else "static"


@dataclass
class _Group:
    kind: str
    items: int = 0


def _groups(items: Sequence[pytest.Item], keys: Sequence[str]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for item, key in zip(items, keys):
        groups.setdefault(key, _Group(_kind(item))).items += 1
    return groups


def estimate_weights(groups: Mapping[str, tuple[str, int]],
                     durations: Mapping[str, float]) -> dict[str, float]:
    """Seconds each group is expected to take: ``groups`` maps a key to (kind, item count).

    A recorded duration is used as is; the others get their item count times the rate of the
    recorded groups of their kind (seconds per item), or :data:`DEFAULT_RATES`."""
    totals: dict[str, list[float]] = {}
    for key, (kind, count) in groups.items():
        if key in durations and count:
            seconds, items = totals.setdefault(kind, [0.0, 0.0])
            totals[kind] = [seconds + durations[key], items + count]
    rates = {kind: seconds / items for kind, (seconds, items) in totals.items() if items}
    return {key: durations[key] if key in durations
            else count * rates.get(kind, DEFAULT_RATES.get(kind, DEFAULT_RATES["other"]))
            for key, (kind, count) in groups.items()}


def partition(weights: Mapping[str, float], count: int) -> list[list[str]]:
    """Split the groups into ``count`` shards of near-equal weight, deterministically.

    Longest processing time first: the heaviest group goes to the lightest shard (ties: the
    lower key, the lower shard). The result depends only on its arguments, so every job of a
    matrix computes the same one; it is within 4/3 of the best possible makespan."""
    loads = [0.0] * count
    shards: list[list[str]] = [[] for _ in range(count)]
    for key in sorted(weights, key=lambda k: (-weights[k], k)):
        target = min(range(count), key=lambda i: (loads[i], i))
        loads[target] += weights[key]
        shards[target].append(key)
    return shards


# --- durations in pytest's cache ---------------------------------------------------------------


def read_durations(config: pytest.Config) -> dict[str, float]:
    """The recorded durations, or none (no cache, ``-p no:cacheprovider``, a foreign value)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return {}
    stored = cache.get(DURATIONS_KEY, None)
    if not isinstance(stored, dict) or stored.get("version") != DURATIONS_VERSION:
        return {}
    groups = stored.get("groups")
    if not isinstance(groups, dict):
        return {}
    return {str(k): float(v) for k, v in groups.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0}


class DurationRecorder:
    """Adds up each group's setup, call and teardown time as reports arrive (on the controller
    of an xdist run), and merges them into the cache at the end of the session."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __hash__(self) -> int:
        return id(self)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Iterator[None]:
        report = yield
        setattr(report, GROUP_ATTRIBUTE, group_of(item))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        group = getattr(report, GROUP_ATTRIBUTE, None)
        if isinstance(group, str):
            self.seconds[group] = self.seconds.get(group, 0.0) + float(report.duration)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        cache = getattr(config, "cache", None)
        if cache is None or hasattr(config, "workerinput") or not self.seconds:
            return
        merged = read_durations(config)
        merged.update({k: round(v, 4) for k, v in self.seconds.items()})
        cache.set(DURATIONS_KEY, {"version": DURATIONS_VERSION, "groups": dict(sorted(
            merged.items()))})


class ShardSelector:
    """Deselects the items outside this job's shard (after ``-k``/``-m`` and the rest)."""

    def __init__(self, shard: ShardSpec) -> None:
        self.shard = shard
        self.summary: str | None = None

    def __hash__(self) -> int:
        return id(self)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        keys = [group_of(item) for item in items]
        groups = _groups(items, keys)
        weights = estimate_weights({k: (g.kind, g.items) for k, g in groups.items()},
                                   read_durations(config))
        mine = set(partition(weights, self.shard.count)[self.shard.index - 1])
        keep = [item for item, key in zip(items, keys) if key in mine]
        dropped = [item for item, key in zip(items, keys) if key not in mine]
        self.summary = (f"migorch shard {self.shard}: {len(keep)} of {len(items)} items, "
                        f"{len(mine)} of {len(groups)} groups, expected "
                        f"{sum(weights[k] for k in mine):.1f} s of "
                        f"{sum(weights.values()):.1f} s")
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str | None:
        return self.summary


def register(config: pytest.Config, shard: ShardSpec | None) -> None:
    """Record durations in every session that uses us; select a shard when asked."""
    config.pluginmanager.register(DurationRecorder(), f"{PLUGIN_NAME}-durations")
    if shard is not None:
        config.pluginmanager.register(ShardSelector(shard), PLUGIN_NAME)
