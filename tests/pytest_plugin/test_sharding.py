"""``--migorch-shard K/N``: every item in exactly one shard, round-trips whole, balanced by the
durations of the last runs, bad values a usage error (issue 14)."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from helpers import FileContent, pair, service_files, write_service

# Imported once here: pytester restores sys.modules after each in-process run.
import pytest_migorch.pytest_plugin.plugin  # noqa: F401
import pytest_migorch.pytest_plugin.session  # noqa: F401
from pytest_migorch.postgres.servers import PostgresServer
from pytest_migorch.pytest_plugin.sharding import (
    DEFAULT_RATES,
    DURATIONS_KEY,
    ShardSpec,
    estimate_weights,
    parse_shard,
    partition,
)

CACHE = ("-p", "cacheprovider")
NO_CACHE = ("-p", "no:cacheprovider")
IDS = [f"00000{i}_m{i}" for i in range(1, 6)]


# --- the pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("1/1", ShardSpec(1, 1)), ("2/4", ShardSpec(2, 4)),
                                            (" 4 / 4 ", ShardSpec(4, 4))])
def test_parse_shard(text: str, expected: ShardSpec) -> None:
    assert parse_shard(text) == expected
    assert str(expected) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "2", "a/b", "-1/2", "1/2/3", ""])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--migorch-shard"):
        parse_shard(text)


def test_partition_covers_every_group_once_and_balances() -> None:
    weights = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0, "f": 0.5}
    shards = partition(weights, 2)
    assert sorted(k for shard in shards for k in shard) == sorted(weights)
    loads = sorted(sum(weights[k] for k in shard) for shard in shards)
    assert loads == [7.5, 8.0]  # the heaviest first, each to the lightest shard
    many = {f"g{i}": float(i % 7 + 1) for i in range(40)}
    for count in (2, 3, 4):
        heaviest = max(sum(many[k] for k in s) for s in partition(many, count))
        assert heaviest <= 4 / 3 * max(sum(many.values()) / count, max(many.values()))
    assert partition(weights, 2) == shards  # deterministic
    assert partition(dict(reversed(list(weights.items()))), 2) == shards  # whatever the order
    assert partition(weights, 1) == [sorted(weights, key=lambda k: (-weights[k], k))]
    assert [s for s in partition({"a": 1.0}, 3) if s] == [["a"]]


def test_weights_use_durations_then_rates_of_the_kind() -> None:
    groups = {"a::roundtrip[p]": ("db", 10), "b::roundtrip[p]": ("db", 5),
              "a::static": ("static", 20), "t.py": ("other", 3)}
    weights = estimate_weights(groups, {"a::roundtrip[p]": 2.0})
    assert weights["a::roundtrip[p]"] == 2.0
    assert weights["b::roundtrip[p]"] == pytest.approx(1.0)  # 0.2 s an item, as a's
    assert weights["a::static"] == pytest.approx(20 * DEFAULT_RATES["static"])
    assert weights["t.py"] == pytest.approx(3 * DEFAULT_RATES["other"])


# --- in a session --------------------------------------------------------------------------------


#: Items of the four services: 48 static ones (3 + 2 a migration), 32 round-trip ones.
TOTAL = 80


def files(ids: list[str]) -> dict[str, FileContent]:
    """A service whose first migration is development's own, so both environments are tested;
    migration N creates table tN (and its down drops it), so every round-trip is clean."""
    tables = {mid: f"t{mid.split('_')[0].lstrip('0')}" for mid in ids}
    result = service_files({mid: {"affects_tables": [t]} for mid, t in tables.items()},
                           env_dirs={ids[0]: "development"}, environments={
                               "development": [f"development/{ids[0]}.up.sql"],
                               "production": []})
    for mid, table in tables.items():
        result.update(pair(mid, "development" if mid == ids[0] else "",
                           up=f"CREATE TABLE {table} (id int);\n",
                           down=f"DROP TABLE {table};\n"))
    return result


@pytest.fixture
def root(pytester: pytest.Pytester) -> Path:
    """Four services, two environments each: 4 static groups and 8 round-trip groups."""
    for name in ("alpha", "beta", "gamma", "delta"):
        write_service(pytester.path / "services", name, files(IDS[:3] if name == "delta"
                                                               else IDS))
    return pytester.path / "services"


def collected(pytester: pytest.Pytester, *args: str) -> tuple[list[str], pytest.RunResult]:
    result = pytester.runpytest("--migorch", "services", "--collect-only", "-q", *args)
    return [line for line in result.outlines if "::" in line and " " not in line], result


def round_trip_group(nodeid: str) -> str | None:
    parts = nodeid.split("::")
    return "::".join(parts[:2]) if parts[1].startswith("roundtrip[") else None


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_cover_every_item_exactly_once(root: Path, pytester: pytest.Pytester,
                                              count: int) -> None:
    everything, _ = collected(pytester, *NO_CACHE)
    assert len(everything) == TOTAL
    shards = [collected(pytester, *NO_CACHE, "--migorch-shard", f"{k}/{count}")[0]
              for k in range(1, count + 1)]
    assert Counter(i for shard in shards for i in shard) == Counter(everything)
    where = {item: k for k, shard in enumerate(shards) for item in shard}
    groups: dict[str, set[int]] = {}
    for item, k in where.items():
        group = round_trip_group(item) or item.split("::")[0]
        groups.setdefault(group, set()).add(k)
    # A round-trip (service, environment) and a service's static items each sit in one shard.
    assert all(len(shards_of) == 1 for shards_of in groups.values())
    if count > 1:
        assert all(shard for shard in shards)


def test_deselected_items_are_counted(root: Path, pytester: pytest.Pytester) -> None:
    mine, result = collected(pytester, *NO_CACHE, "--migorch-shard", "2/3")
    result.stdout.fnmatch_lines([f"{len(mine)}/80 tests collected ({80 - len(mine)} deselected)*"])
    assert re.search(r"migorch shard 2/3: \d+ of 80 items, \d+ of 12 groups", result.stdout.str())


def test_balancing_uses_the_recorded_durations(root: Path, pytester: pytest.Pytester) -> None:
    everything, _ = collected(pytester, *CACHE)
    groups = {round_trip_group(i) or i.split("::")[0] + "::static" for i in everything}
    assert len(groups) == 12
    heavy = "services/gamma::roundtrip[production]"
    before, _ = collected(pytester, *CACHE, "--migorch-shard", "1/2")
    cache = pytester.path / ".pytest_cache" / "v" / DURATIONS_KEY
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"version": 1, "groups": {
        group: 100.0 if group == heavy else 1.0 for group in groups}}))
    first, result = collected(pytester, *CACHE, "--migorch-shard", "1/2")
    second, _ = collected(pytester, *CACHE, "--migorch-shard", "2/2")
    # The one long round-trip fills a shard on its own; everything else goes to the other.
    assert first == [i for i in everything if i.startswith(heavy + "::")] and len(first) == 4
    assert len(second) == TOTAL - 4
    assert before != first
    result.stdout.fnmatch_lines(["migorch shard 1/2: 4 of 80 items, 1 of 12 groups, "
                                 "expected 100.0 s of 111.0 s"])


def test_a_session_records_group_durations(root: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest("--migorch", "services", "--migorch-no-db", *CACHE).assert_outcomes(
        passed=48)
    stored = json.loads((pytester.path / ".pytest_cache" / "v" / DURATIONS_KEY).read_text())
    assert stored["version"] == 1
    assert sorted(stored["groups"]) == [f"services/{s}::static"
                                        for s in ("alpha", "beta", "delta", "gamma")]
    # A shard's run merges its groups into what earlier runs recorded.
    cache = pytester.path / ".pytest_cache" / "v" / DURATIONS_KEY
    cache.write_text(json.dumps({"version": 1, "groups": {"gone::static": 1.5}}))
    pytester.runpytest("--migorch", "services", "--migorch-no-db", *CACHE,
                       "--migorch-shard", "1/2")
    groups = json.loads(cache.read_text())["groups"]
    assert groups["gone::static"] == 1.5 and 2 <= len(groups) <= 4


@pytest.mark.parametrize("value", ["0/2", "3/2", "two", "1/0"])
def test_bad_values_are_usage_errors(root: Path, pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("--migorch", "services", "--migorch-shard", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--migorch-shard {value!r}: *"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_shard_needs_a_root(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--migorch-shard", "1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--migorch-shard 1/2 needs --migorch ROOT*"])


def test_ini_setting(root: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmigorch_shard = 3/3\n")
    from_ini, _ = collected(pytester, *NO_CACHE)
    from_cli, _ = collected(pytester, *NO_CACHE, "--migorch-shard", "3/3")
    assert from_ini == from_cli and 0 < len(from_ini) < TOTAL


def test_other_tests_are_shared_out_by_module(root: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_a(): pass\ndef test_b(): pass\n",
                        test_two="def test_c(): pass\n")
    shards = [collected(pytester, *NO_CACHE, ".", "--migorch-shard", f"{k}/2")[0]
              for k in (1, 2)]
    plain = [[i for i in shard if i.startswith("test_")] for shard in shards]
    assert sorted(i for s in plain for i in s) == [
        "test_one.py::test_a", "test_one.py::test_b", "test_two.py::test_c"]
    assert any("test_one.py::test_a" in s and "test_one.py::test_b" in s for s in plain)


# --- with pytest-xdist, a database and --migorch-changed-only ------------------------------------


@pytest.fixture
def dsn(pg_server: PostgresServer) -> tuple[str, ...]:
    return ("--migorch-provider", "dsn", "--migorch-dsn", pg_server.admin_conninfo)


def test_shards_under_xdist_with_round_trips(root: Path, pytester: pytest.Pytester,
                                             dsn: tuple[str, ...]) -> None:
    """Two jobs of a matrix, each from the same (empty) cache, as CI restores it."""
    cache = pytester.path / ".pytest_cache" / "v" / DURATIONS_KEY
    outcomes, recorded = [], []
    for k in (1, 2):
        result = pytester.runpytest_subprocess(
            "--migorch", "services", "-n", "2", "--dist", "loadgroup", *CACHE, *dsn,
            "--migorch-shard", f"{k}/2")
        assert result.ret == 0
        outcomes.append(result.parseoutcomes())
        recorded.append(set(json.loads(cache.read_text())["groups"]))
        cache.unlink()
    assert sum(o["passed"] for o in outcomes) == TOTAL
    assert all(o["passed"] < TOTAL for o in outcomes)
    # Each controller recorded its own shard's groups (the workers' reports reach it).
    assert not recorded[0] & recorded[1] and len(recorded[0] | recorded[1]) == 12
    assert "services/alpha::roundtrip[production]" in recorded[0] | recorded[1]


def git(base: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(base), "-c", "user.name=t", "-c", "user.email=t@x", *args],
                   check=True, capture_output=True)


def test_shards_with_changed_only(root: Path, pytester: pytest.Pytester,
                                  monkeypatch: pytest.MonkeyPatch,
                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path_factory.getbasetemp()))
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "release")
    write_service(root, "beta", files(IDS + ["000006_m6"]))
    args = (*NO_CACHE, "--migorch-base", "HEAD", "--migorch-changed-only")
    everything, _ = collected(pytester, *args)
    assert {round_trip_group(i) for i in everything} - {None} == {
        "services/beta::roundtrip[development]", "services/beta::roundtrip[production]"}
    shards = [collected(pytester, *args, "--migorch-shard", f"{k}/2")[0] for k in (1, 2)]
    assert Counter(shards[0] + shards[1]) == Counter(everything)
    # The two round-trips are the heaviest groups: one in each shard.
    assert [len({round_trip_group(i) for i in s} - {None}) for s in shards] == [1, 1]
