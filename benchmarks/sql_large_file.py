"""Time and memory of analysing one large generated migration file (issue 12: bounded work).

Usage: ``python benchmarks/sql_large_file.py [MB] [shape]`` with shape ``one`` (a single huge
``INSERT ... VALUES`` statement, the seed-data case) or ``many`` (many small INSERTs). Prints the
file size, the analysis time, the peak RSS of the process and the size of the SQLite cache the
analysis leaves behind. Not a test: it takes seconds to minutes.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from pytest_migorch.sql.analysis import AnalysisCache, analyse_sql
from pytest_migorch.sql.store import SqliteStore


def generate(megabytes: float, shape: str) -> str:
    row = "({n}, 'user{n}@example.com', 'some longer text for row {n}', now())"
    target = int(megabytes * 1024 * 1024)
    parts: list[str] = []
    size = 0
    n = 0
    if shape == "one":
        parts.append("INSERT INTO users (id, email, note, created_at) VALUES\n")
        while size < target:
            item = row.format(n=n) + ",\n"
            parts.append(item)
            size += len(item)
            n += 1
        parts.append(row.format(n=n) + ";\n")
    else:
        while size < target:
            item = f"INSERT INTO users (id, email, note, created_at) VALUES {row.format(n=n)};\n"
            parts.append(item)
            size += len(item)
            n += 1
    return "".join(parts)


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    shape = sys.argv[2] if len(sys.argv) > 2 else "one"
    text = generate(megabytes, shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "analysis.sqlite"
        with SqliteStore(path) as store:
            start = time.perf_counter()
            analysis = analyse_sql(text, AnalysisCache(store))
            elapsed = time.perf_counter() - start
        cache_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"shape={shape} file={len(text) / 1e6:.1f} MB statements={analysis.statements_total} "
          f"analysed={analysis.statements_analysed} time={elapsed:.1f} s "
          f"peak_rss={peak:.0f} MB cache={cache_bytes / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
