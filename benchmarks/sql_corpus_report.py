"""Measure the SQL analysis on real migration sets and compare it with squawk.

Usage::

    python benchmarks/sql_corpus_report.py [ROOT ...] [--squawk PATH] [--repeat N]

Without ROOT it measures every ``<shared>/corpora/*/services`` next to the repository and the
repository's ``examples/services`` when present. For each root it prints: statements found,
analysed and not analysed (by kind), findings by rule, then squawk's findings on the same up files
compared rule by rule where the two overlap (per statement; per migration for the lock_timeout
rule), and finally statements analysed per second, cold and warm from the cache.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_migorch.checks.migration import MigrationReport, check_migration  # noqa: E402
from pytest_migorch.model import Migration  # noqa: E402
from pytest_migorch.project.validation import load_project  # noqa: E402
from pytest_migorch.sql.analysis import AnalysisCache, analyse_sql  # noqa: E402
from pytest_migorch.sql.split import split_statements  # noqa: E402

#: Our rules -> the squawk rules that report the same thing. squawk's constraint-missing-not-valid
#: covers what we split into foreign keys (RSK011), CHECK (RSK012) and UNIQUE/PK (RSK013).
#: lock_timeout is compared per migration (we report it once per migration, squawk per statement).
OVERLAP: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("RSK002",), ("ban-drop-table",)),
    (("RSK003",), ("ban-drop-column",)),
    (("RSK004",), ("changing-column-type",)),
    (("RSK005",), ("adding-not-nullable-field",)),
    (("RSK006",), ("adding-required-field",)),
    (("RSK007",), ("adding-field-with-default",)),
    (("RSK008",), ("require-concurrent-index-creation",)),
    (("RSK009",), ("require-concurrent-index-deletion",)),
    (("RSK010",), ("ban-concurrent-index-creation-in-transaction",)),
    (("RSK011",), ("adding-foreign-key-constraint",)),
    (("RSK011", "RSK012", "RSK013"), ("constraint-missing-not-valid",)),
    (("RSK013",), ("disallowed-unique-constraint", "adding-serial-primary-key-field")),
    (("RSK014",), ("renaming-table",)),
    (("RSK015",), ("renaming-column",)),
    (("RSK017",), ("ban-truncate-cascade",)),
    (("RSK021", "RSK022"), ("prefer-repack",)),
    (("RSK024",), ("require-concurrent-reindex",)),
    (("RSK027",), ("require-lock-timeout",)),
]
PER_MIGRATION = {"RSK027"}


@dataclass
class RootData:
    root: Path
    migrations: list[tuple[str, Migration]] = field(default_factory=list)
    reports: list[MigrationReport] = field(default_factory=list)
    texts: dict[Path, str] = field(default_factory=dict)


def default_roots() -> list[Path]:
    roots = sorted((REPO.parent / "shared" / "corpora").glob("*/services"))
    if (REPO / "examples" / "services").is_dir():
        roots.append(REPO / "examples" / "services")
    return roots


def load(root: Path) -> RootData:
    data = RootData(root)
    project = load_project(root)
    for service in project.services.values():
        for _, migration in sorted(service.migrations.items()):
            data.migrations.append((service.schema, migration))
            for file in (migration.up, migration.down):
                if file is not None:
                    data.texts[file.path] = file.read_text()
    for schema, migration in data.migrations:
        data.reports.append(check_migration(migration, schema, AnalysisCache()))
    return data


def print_statements(data: RootData) -> None:
    found = analysed = 0
    by_kind: collections.Counter[str] = collections.Counter()
    for text in data.texts.values():
        result = analyse_sql(text, AnalysisCache())
        found += result.statements_total
        analysed += result.statements_analysed
        by_kind.update(s.kind + (" (certainly invalid SQL)" if s.invalid else "")
                       for s in result.statements if not s.analysed)
    ups = sum(1 for _, m in data.migrations if m.up)
    downs = sum(1 for _, m in data.migrations if m.down)
    print(f"  files: {len(data.texts)} ({ups} up, {downs} down)")
    print(f"  statements found: {found}, analysed: {analysed}, not analysed: {found - analysed}")
    for kind, count in by_kind.most_common():
        print(f"    not analysed {kind}: {count}")


def print_findings(data: RootData) -> None:
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    fired: collections.Counter[str] = collections.Counter()
    for report in data.reports:
        counts.update((f.code, f.name, f.severity.value) for f in report.findings)
        fired.update(f.code for f in report.fired if f.code == "RSK020")
    print("  findings by rule:")
    for (code, name, severity), count in sorted(counts.items()):
        print(f"    {code} {name} ({severity}): {count}")
    if fired:
        print(f"    RSK020 changes-existing-rows (classifies only, no finding): {fired['RSK020']}")
    levels = collections.Counter(r.derived_level.value for r in data.reports)
    print("  derived risk levels: " + ", ".join(f"{k} {v}" for k, v in sorted(levels.items())))


def run_squawk(squawk: str, files: list[Path]) -> list[dict[str, Any]]:
    proc = subprocess.run([squawk, "--assume-in-transaction", "--reporter", "json",
                           *map(str, files)], capture_output=True, text=True, check=False)
    try:
        return list(json.loads(proc.stdout or "[]"))
    except json.JSONDecodeError:
        print("  squawk output was not JSON:", proc.stdout[:200], proc.stderr[:200])
        return []


def statement_at(path: Path, text: str, line: int) -> int | None:
    for statement in split_statements(text):
        if statement.line <= line <= statement.end_line:
            return statement.index
    return None


def compare_with_squawk(data: RootData, squawk: str) -> None:
    ups = {m.up.path.resolve(): m for _, m in data.migrations if m.up is not None}
    results = run_squawk(squawk, sorted(ups))
    print(f"  squawk findings on the same {len(ups)} up files: {len(results)}")
    squawk_counts = collections.Counter(r["rule_name"] for r in results)
    print("    " + ", ".join(f"{k} {v}" for k, v in squawk_counts.most_common()))
    theirs: dict[str, set[tuple[str, int | None]]] = collections.defaultdict(set)
    for item in results:
        path = Path(item["file"]).resolve()
        migration = ups.get(path)
        if migration is None:
            continue
        index = statement_at(path, data.texts[migration.up.path], int(item["line"]) + 1)  # type: ignore[union-attr]
        theirs[item["rule_name"]].add((migration.id, index))
    ours: dict[str, set[tuple[str, int | None]]] = collections.defaultdict(set)
    for (_, migration), report in zip(data.migrations, data.reports, strict=True):
        if migration.up is None:
            continue
        lines = {s.line: s.index for s in split_statements(data.texts[migration.up.path])}
        for fired in report.fired:
            ours[fired.code].add((migration.id, lines.get(fired.line)))
    print("  rule by rule (statements; RSK027 by migration): ours / squawk / both")
    for codes, names in OVERLAP:
        mine = set().union(*(ours.get(c, set()) for c in codes))
        other = set().union(*(theirs.get(n, set()) for n in names))
        if set(codes) & PER_MIGRATION:
            mine = {(m, None) for m, _ in mine}
            other = {(m, None) for m, _ in other}
        if not mine and not other:
            continue
        both = mine & other
        print(f"    {'+'.join(codes)} vs {'/'.join(names)}: {len(mine)} / {len(other)} / "
              f"{len(both)}")
        for label, only in (("only ours", mine - other), ("only squawk", other - mine)):
            for migration_id, index in sorted(only, key=str)[:6]:
                print(f"      {label}: {migration_id} statement {index}")


def throughput(texts: list[str], repeat: int) -> None:
    statements = sum(analyse_sql(t, AnalysisCache()).statements_total for t in texts)
    cold, warm, stored = [], [], []
    for _ in range(repeat):
        cache = AnalysisCache()
        start = time.perf_counter()
        for text in texts:
            analyse_sql(text, cache)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        for text in texts:
            analyse_sql(text, cache)
        warm.append(time.perf_counter() - start)
        store = _JsonStore({k: json.dumps(v.to_json()) for k, v in cache._memory.items()})
        reloaded = AnalysisCache(store)
        start = time.perf_counter()
        for text in texts:
            analyse_sql(text, reloaded)
        stored.append(time.perf_counter() - start)
    for label, times in (("cold (parse everything)", cold), ("warm (in-memory cache)", warm),
                         ("warm (JSON store, as pytest's cache between runs)", stored)):
        best = statistics.median(times)
        print(f"  {label}: {statements / best:,.0f} statements/s "
              f"({len(texts)} files, {statements} statements, median {best * 1000:.1f} ms)")


class _JsonStore:
    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.data.get(key)
        return json.loads(raw) if raw is not None else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = json.dumps(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--squawk", default=shutil.which("squawk")
                        or str(Path(sys.executable).with_name("squawk")))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    roots = args.roots or default_roots()
    squawk = args.squawk if Path(args.squawk).exists() else None
    all_texts: list[str] = []
    for root in roots:
        print(f"== {root}")
        data = load(root)
        all_texts.extend(data.texts.values())
        print_statements(data)
        print_findings(data)
        if squawk:
            compare_with_squawk(data, squawk)
        else:
            print("  squawk not found: comparison skipped (pip install squawk-cli)")
    print("== throughput, all roots together")
    throughput(all_texts, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
