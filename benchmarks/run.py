"""The benchmarks: one command, a Markdown table of medians, spreads and ratios.

    python -m benchmarks.run [--services N --migrations M] [--quick] [--only NAME ...]
                             [--runs R] [--output benchmarks/RESULTS.md] [--no-profile]

Benchmarks (``--only`` takes these names):

``validate``   ``migorch validate --all`` as a subprocess: cold (no analysis cache) and warm (a
               primed cache), on repositories of 500, 5,000 and 20,000 migrations; time and
               peak memory (``ru_maxrss`` of the child, read by a small helper process).
``pytest``     ``pytest --migorch ROOT --migorch-no-db`` on the default repository: collection
               only, collection plus run (cold and warm pytest cache), and with ``-n 2``.
``roundtrip``  :class:`pytest_migorch.roundtrip.RoundTrip` (up, down, up of every migration,
               with snapshots and checks) against psql applying the same up, down and up files
               in one session per service on the same server; plus the user-facing
               ``pytest --migorch ROOT -m migorch_db`` session.
``up``         ``migorch up --all`` of ~1,000 migrations into a fresh database (with the SQL
               analysis cache warm and empty, and once more with nothing to do), against psql
               applying the same files (one transaction per migration) and dbmate applying a
               copy in its own layout, on the same server.
``server``     a throwaway server: first start (``initdb``, cache written) and cached start,
               and fresh databases from ``template0``-like defaults and from a template.

Each measurement is repeated (5 runs, ``--quick`` 3 runs and smaller repositories); the table
gives the median and min-max. Where a target is missed, the benchmark is run once more under
cProfile and the top entries go into the results under "Where the time goes". A hand-written
analysis between ``<!-- analysis:start -->`` and ``<!-- analysis:end -->`` in the output file
is kept when the file is rewritten.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as _dt
import io
import json
import math
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .generate import GeneratedRepository, generate_repository

BENCHMARKS = ("startup", "validate", "pytest", "roundtrip", "up", "server")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"
ANALYSIS_START = "<!-- analysis:start -->"
ANALYSIS_END = "<!-- analysis:end -->"

# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Sample:
    """One run: wall seconds, the child's peak resident memory (KiB) and its exit code."""

    seconds: float
    max_rss_kib: int | None = None
    exit_code: int = 0


@dataclass
class Series:
    """Repeated runs of one measurement."""

    samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def times(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)

    @property
    def peak_rss_mib(self) -> float | None:
        values = [s.max_rss_kib for s in self.samples if s.max_rss_kib is not None]
        return max(values) / 1024 if values else None

    @property
    def failures(self) -> int:
        return sum(1 for s in self.samples if s.exit_code != 0)


#: Runs the measured command as its own child and reports that child's wall time and rusage.
#: A child forked straight from this (large) Python process would report our resident memory
#: as its peak: Linux keeps ``ru_maxrss`` across exec. The helper is small (``python -S``) and
#: times only its child, so its own start-up is not in the numbers.
_HELPER = r"""
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{elapsed} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_measured(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
                 log: Path | None = None) -> Sample:
    """Run ``command`` as users do (a subprocess); its wall time and peak memory.

    Output goes to ``log`` (never to a pipe: a full pipe would stall the child and the clock).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rusage") as result:
        sink = open(log, "ab") if log is not None else open(os.devnull, "wb")
        with sink:
            if log is not None:
                sink.write(("\n$ " + " ".join(map(str, command)) + "\n").encode())
                sink.flush()
            subprocess.run([sys.executable, "-S", "-c", _HELPER, result.name,
                            *map(str, command)], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           stdout=sink, stderr=sink, check=False)
        fields = Path(result.name).read_text().split()
    if len(fields) != 3:
        return Sample(float("nan"), None, 127)
    seconds, rss, code = float(fields[0]), int(fields[1]), int(fields[2])
    # ru_maxrss is KiB on Linux, bytes on macOS.
    return Sample(seconds, rss // 1024 if sys.platform == "darwin" else rss, code)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def fmt_seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1000:.0f} ms"
    return f"{value * 1000:.1f} ms"


def fmt_series(series: Series, scale: float = 1.0) -> str:
    return (f"{fmt_seconds(series.median * scale)} "
            f"({fmt_seconds(series.low * scale)}-{fmt_seconds(series.high * scale)})")


def fmt_mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}x"


def ratio_spread(a: Series, b: Series) -> str:
    """The ratio of medians and its range over the paired runs (a_i / b_i)."""
    pairs = [x / y for x, y in zip(a.times, b.times) if y > 0]
    median = a.median / b.median if b.median else float("nan")
    if not pairs:
        return fmt_ratio(median)
    return f"{fmt_ratio(median)} ({min(pairs):.2f}-{max(pairs):.2f})"


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Target:
    what: str
    measured: str
    target: str
    met: bool | None
    note: str = ""


@dataclass
class Report:
    config: "Config"
    machine: list[tuple[str, str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    waited: float = 0.0

    def section(self, title: str, lines: list[str]) -> None:
        self.sections.append((title, lines))

    def render(self, analysis: str | None) -> str:
        cfg = self.config
        out = ["# pytest-migorch benchmarks", ""]
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m benchmarks.run " + " ".join(cfg.argv)
        out += [
            f"Written by `{command.strip()}` on {now}, in "
            f"{fmt_seconds(time.monotonic() - self.started - self.waited)}"
            + (f" (plus {fmt_seconds(self.waited)} waiting for a quiet machine)"
               if self.waited >= 1 else "") + ". Every number is the median of "
            f"{cfg.runs} runs, with the range (min-max) in parentheses. Ratios compare medians "
            "measured on the same machine and the same PostgreSQL server; they are the "
            "headline, absolute seconds depend on the machine.", "",
            "## Machine", "", "| | |", "|---|---|",
        ]
        out += [f"| {k} | {v} |" for k, v in self.machine]
        out += ["", "## Targets", "",
                "| What | Measured | Target | Met |", "|---|---|---|---|"]
        for t in self.targets:
            met = {True: "yes", False: "**no**", None: "not measured"}[t.met]
            note = f" ({t.note})" if t.note else ""
            out.append(f"| {t.what} | {t.measured} | {t.target} | {met}{note} |")
        for title, lines in self.sections:
            out += ["", f"## {title}", ""] + lines
        if self.notes:
            out += ["", "## Notes from this run", ""] + [f"- {n}" for n in self.notes]
        out += ["", "## Where the time goes", ""]
        if self.profiles:
            out += ["Profiles of the missed targets (cProfile, one extra run each; cProfile "
                    "slows Python code down, so read the shares, not the seconds).", ""]
            for title, text in self.profiles:
                out += [f"### {title}", "", "```", text.rstrip(), "```", ""]
        else:
            out += ["No profile was taken in this run (every target met, or `--no-profile`).", ""]
        out += [ANALYSIS_START, (analysis or "").strip("\n"), ANALYSIS_END, ""]
        return "\n".join(out)


def kept_analysis(path: Path) -> str | None:
    """The hand-written analysis of an earlier results file, to carry over."""
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8")
    start, end = text.find(ANALYSIS_START), text.find(ANALYSIS_END)
    if start < 0 or end < start:
        return None
    return text[start + len(ANALYSIS_START):end]


# --------------------------------------------------------------------------------------------
# Environment


@dataclass
class Config:
    services: int
    migrations: int
    runs: int
    quick: bool
    only: tuple[str, ...]
    output: Path
    workdir: Path
    profile: bool
    argv: list[str]
    seed: int = 0
    keep: bool = False
    wait_quiet: float = 0.0

    @property
    def bin_dir(self) -> Path:
        return Path(sys.executable).parent


def tool(name: str) -> str | None:
    """A program next to this Python (the venv's ``migorch``, ``dbmate``) or on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def psql_path() -> str:
    try:
        from pytest_migorch.postgres import binaries as pgbinaries

        found = pgbinaries.find_binaries(None).bin_dir / "psql"
        if found.exists():
            return str(found)
    except Exception:  # fall back to PATH
        pass
    found_on_path = shutil.which("psql")
    if found_on_path is None:
        raise SystemExit("psql not found; install the PostgreSQL client")
    return found_on_path


def _first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=20)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"


def machine_info() -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count() or 0
    with contextlib.suppress(AttributeError):
        cores = len(os.sched_getaffinity(0))
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import sqlglot

    rows = [
        ("CPU", f"{cpu}, {cores} cores available"),
        ("Memory", memory),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", platform.python_version()),
        ("PostgreSQL", _first_line([psql_path().replace("psql", "postgres"), "--version"])
         + " (throwaway local server: fsync off, unix socket)"),
        ("psql", _first_line([psql_path(), "--version"])),
        ("dbmate", _first_line([tool("dbmate") or "dbmate", "--version"])),
        ("sqlglot", sqlglot.__version__),
    ]
    rows.append(("pytest-migorch", current_commit()))
    rows.append(("pytest-migorch bytecode", compile_package()))
    return rows


def compile_package() -> str:
    """Write the package's bytecode once, as ``pip install`` does, so measured runs load it
    the way users' runs do (an editable install otherwise writes it on first import, unless
    PYTHONDONTWRITEBYTECODE forbids that). Returns what the results file says of it."""
    import compileall

    package = REPO_ROOT / "pytest_migorch"
    ok = compileall.compile_dir(str(package), quiet=1, force=False)
    return "compiled before measuring, as `pip install` does" if ok else "could not be compiled"


def current_commit() -> str:
    """``commit abc1234`` (read-only git calls), and whether the package has local changes."""
    commit = _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--",
                            "pytest_migorch"], capture_output=True, text=True).stdout.strip()
    return f"commit {commit}" + (" plus uncommitted changes to the package" if dirty else "")


def clean_env(config: Config, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of measured subprocesses: caches under the work dir, no user config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MIGORCH_", "DATABASE_URL", "DB_"))}
    env["XDG_CACHE_HOME"] = str(config.workdir / "xdg-cache")
    env["MIGORCH_CACHE_DIR"] = str(config.workdir / "migorch-cache")
    env.pop("PYTHONPATH", None)
    # As installed: pip compiles a package's bytecode, so no user run compiles our modules from
    # source. A sandbox with PYTHONDONTWRITEBYTECODE=1 and an editable install would make every
    # measured run do it (~0.1 s of `migorch up`); see compile_package.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["LOG_LEVEL"] = "warning"
    env["PATH"] = f"{config.bin_dir}{os.pathsep}{env.get('PATH', '')}"
    if extra:
        env.update(extra)
    return env


def wipe_caches(config: Config, *places: Path) -> None:
    """Remove every analysis cache a run may have left: XDG cache, pytest cache, dot dirs."""
    for path in (config.workdir / "xdg-cache", config.workdir / "pytest-cache",
                 config.workdir / "migorch-cache"):
        shutil.rmtree(path, ignore_errors=True)
    for place in places:
        if not place.exists():
            continue
        for child in place.iterdir():
            if child.name.startswith((".migorch", ".pytest_cache", ".cache")):
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


def repository(config: Config, services: int, migrations: int) -> GeneratedRepository:
    root = config.workdir / f"repo-{services}x{migrations}" / "services"
    marker = root.parent / "generated.json"
    expected = {"services": services, "migrations": migrations, "seed": config.seed}
    if marker.exists() and json.loads(marker.read_text()) == expected:
        from .generate import generate_services

        return GeneratedRepository(root, config.seed,
                                   generate_services(services, migrations, config.seed))
    repo = generate_repository(root, services, migrations, config.seed)
    marker.write_text(json.dumps(expected))
    return repo


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def wait_for_quiet(max_seconds: float) -> float:
    """Wait (up to ``max_seconds``) until the 1-minute load is below half the cores; return
    the seconds waited."""
    began = time.monotonic()
    deadline = began + max_seconds
    cores = os.cpu_count() or 1
    while time.monotonic() < deadline:
        try:
            load = float(Path("/proc/loadavg").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            break
        if load < cores / 2:
            break
        say(f"waiting for a quieter machine (load {load:.1f} on {cores} cores)")
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
    return time.monotonic() - began


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def profile_top(stats_source: Any, limit: int = 18) -> str:
    """The top entries of a profile, by cumulative and by own time, with short paths."""
    buffer = io.StringIO()
    stats = pstats.Stats(stats_source, stream=buffer) if not isinstance(
        stats_source, pstats.Stats) else stats_source
    stats.stream = buffer  # type: ignore[attr-defined]
    total = getattr(stats, "total_tt", 0.0)
    lines = [f"total {total:.2f} s (under cProfile)", "",
             f"{'cumulative':>10} {'own':>8} {'calls':>9}  function"]

    def rows(key: str) -> list[str]:
        entries = []
        for func, (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            entries.append((ct if key == "cum" else tt, func, nc, tt, ct))
        entries.sort(key=lambda e: e[0], reverse=True)
        result = []
        for _, (filename, line, name), nc, tt, ct in entries[:limit]:
            short = _short_path(filename)
            where = f"{short}:{line}({name})" if line else name
            result.append(f"{ct:10.3f} {tt:8.3f} {nc:9d}  {where}")
        return result

    lines += ["-- by cumulative time"] + rows("cum") + ["", "-- by own time"] + rows("own")
    return "\n".join(lines)


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", str(REPO_ROOT) + "/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" and "/" in tail else tail
    return filename


# --------------------------------------------------------------------------------------------
# 1. Static validation


def validate_sizes(config: Config) -> list[tuple[int, int]]:
    """(services, migrations per service) of the growth series."""
    per = config.migrations
    totals = (200, 500, 1000) if config.quick else (500, 5000, 20000)
    sizes = [(max(1, total // per), per) for total in totals]
    default = (config.services, config.migrations)
    if default not in sizes:
        sizes.append(default)
    return sorted(set(sizes), key=lambda s: s[0] * s[1])


@dataclass
class CliAbilities:
    """What this version of ``migorch validate`` does, found by trying it on a tiny tree."""

    analyses_sql: bool
    cache_where: str | None  # where a persistent analysis cache appeared, or None


def probe_validate(config: Config, migorch: str) -> CliAbilities:
    """Run ``migorch validate`` on two migrations, one declaring the wrong table.

    A SQL finding says the CLI analyses SQL; a file appearing in the (empty) cache locations
    says it keeps a persistent cache. Probing beats reading the code: it changes under us.
    """
    probe = config.workdir / "probe"
    shutil.rmtree(probe, ignore_errors=True)
    repo = generate_repository(probe / "services", services=1, migrations=2, seed=config.seed)
    deps = repo.root / repo.services[0].name / "migrations" / "dependencies.json"
    document = json.loads(deps.read_text())
    document["migrations"]["000001"]["affects_tables"] = ["no_such_table"]
    deps.write_text(json.dumps(document, indent=2) + "\n")
    env = clean_env(config)
    places = [Path(env["XDG_CACHE_HOME"]), Path(env["MIGORCH_CACHE_DIR"]), repo.root,
              repo.root.parent]
    before = {p: set(p.rglob("*")) if p.exists() else set() for p in places}
    done = subprocess.run([migorch, "validate", "--root", str(repo.root), "--all", "--json"],
                          cwd=repo.root.parent, env=env, capture_output=True, text=True)
    try:
        findings = json.loads(done.stdout).get("findings", [])
    except ValueError:
        findings = []
    analyses = any(str(f.get("code", "")).startswith(("SQL", "RSK")) for f in findings)
    cache_where = None
    for place in places:
        new = (set(place.rglob("*")) if place.exists() else set()) - before[place]
        files = [f for f in new if f.is_file()]
        if files:
            cache_where = ("$MIGORCH_CACHE_DIR / $XDG_CACHE_HOME" if place in places[:2]
                           else "next to the services root")
            break
    wipe_caches(config, repo.root.parent, repo.root)
    shutil.rmtree(probe, ignore_errors=True)
    return CliAbilities(analyses, cache_where)


#: What ``migorch validate --all`` does once it runs the SQL analysis with a persistent
#: cache: the same core calls, with every analysis kept in one JSON file between runs. Used
#: when the CLI lacks either, so the targets are measured on the full work and the numbers
#: say what the CLI would take.
_FULL_VALIDATION = r"""
import json, os, sys
from pathlib import Path
from pytest_migorch.sql.analysis import AnalysisCache
from pytest_migorch.checks.migration import migration_analyser
from pytest_migorch.project.validation import load_project, validate_project

class FileStore:
    def __init__(self, path):
        self.path, self.dirty = Path(path), False
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
    def get(self, key):
        return self.data.get(key)
    def set(self, key, value):
        self.data[key] = value
        self.dirty = True
    def save(self):
        if self.dirty:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.data, separators=(",", ":")))
            os.replace(tmp, self.path)

store = FileStore(sys.argv[2])
project = load_project(Path(sys.argv[1]))
cache = AnalysisCache(store, max_entries=10**7)
result = validate_project(project, analyser=migration_analyser(cache))
store.save()
print(f"{len(result.errors)} error(s), {len(result.warnings)} warning(s), "
      f"{cache.misses} analysed, {cache.store_hits} from the store", file=sys.stderr)
sys.exit(1 if result.errors else 0)
"""


@dataclass
class _ValidateVariant:
    key: str
    title: str
    command: Callable[[GeneratedRepository, Path], list[Any]]
    results: dict[int, tuple[Series, Series]] = field(default_factory=dict)


def _growth(results: dict[int, tuple[Series, Series]], which: int = 0
            ) -> list[tuple[int, int, float]]:
    """Time exponents between consecutive sizes, of the cold (0) or warm (1) medians."""
    totals = sorted(results)
    return [(a, b, math.log(results[b][which].median / results[a][which].median)
             / math.log(b / a)) for a, b in zip(totals, totals[1:])]


def bench_validate(config: Config, report: Report) -> None:
    migorch = tool("migorch")
    if migorch is None:
        report.notes.append("validate: no `migorch` command next to this Python; skipped")
        return
    abilities = probe_validate(config, migorch)
    analyses, cache_where = abilities.analyses_sql, abilities.cache_where

    def cli_command(repo: GeneratedRepository, cache_dir: Path) -> list[Any]:
        return [migorch, "validate", "--root", repo.root, "--all"]

    harness = config.workdir / "full_validation.py"
    harness.write_text(_FULL_VALIDATION.lstrip(), encoding="utf-8")

    def full_command(repo: GeneratedRepository, cache_dir: Path) -> list[Any]:
        return [sys.executable, harness, repo.root, cache_dir / "sql.json"]

    variants = [_ValidateVariant("cli", "`migorch validate --all`", cli_command)]
    complete = analyses and cache_where is not None
    if not complete:
        variants.append(_ValidateVariant(
            "full", "same checks + SQL analysis + persistent cache (harness)", full_command))
    log = config.workdir / "validate.log"
    squawk = tool("squawk")
    squawk_runs: dict[int, Series] = {}
    for services, per in validate_sizes(config):
        repo = repository(config, services, per)
        total = repo.migration_count
        cwd = repo.root.parent
        runs = config.runs if total <= 5000 or config.quick else max(3, config.runs - 2)
        for variant in variants:
            cache_dir = config.workdir / f"validate-cache-{variant.key}-{total}"
            command = variant.command(repo, cache_dir)
            say(f"validate: {variant.key}, {total} migrations, {runs} x (cold, warm)")
            cold, warm = Series(), Series()
            squawk_series = squawk_runs.setdefault(total, Series())
            # Interleaved, so a change in machine load hits both alike; each cold run leaves
            # the cache the warm run after it uses; squawk runs between them on the same files.
            for _ in range(runs):
                wipe_caches(config, cwd, repo.root)
                shutil.rmtree(cache_dir, ignore_errors=True)
                cache_dir.mkdir(parents=True)
                cold.add(run_measured(command, cwd=cwd, env=clean_env(config), log=log))
                if squawk is not None and variant.key == "cli":
                    squawk_series.add(run_measured(squawk_command(squawk, repo.root), cwd=cwd,
                                                   env=clean_env(config), log=log))
                warm.add(run_measured(command, cwd=cwd, env=clean_env(config), log=log))
            if cold.failures or warm.failures:
                report.notes.append(f"validate ({variant.key}) {total}: "
                                    f"{cold.failures + warm.failures} run(s) exited non-zero "
                                    f"(see {log})")
            variant.results[total] = (cold, warm)

    rows = ["| Migrations (services x per service) | Variant | Cold | Warm | Cold per 1,000 | "
            "Warm per 1,000 | Peak memory cold / warm |", "|---|---|---|---|---|---|---|"]
    for total in sorted(variants[0].results):
        services = total // config.migrations
        for variant in variants:
            cold, warm = variant.results[total]
            rows.append(
                f"| {total:,} ({services} x {config.migrations}) | {variant.title} | "
                f"{fmt_series(cold)} | {fmt_series(warm)} | "
                f"{fmt_seconds(cold.median / total * 1000)} | "
                f"{fmt_seconds(warm.median / total * 1000)} | "
                f"{fmt_mib(cold.peak_rss_mib)} / {fmt_mib(warm.peak_rss_mib)} |")
        if squawk_runs.get(total) and squawk_runs[total].samples:
            sq = squawk_runs[total]
            rows.append(
                f"| {total:,} ({services} x {config.migrations}) | squawk (no cache) | "
                f"{fmt_series(sq)} | {fmt_series(sq)} | "
                f"{fmt_seconds(sq.median / total * 1000)} | "
                f"{fmt_seconds(sq.median / total * 1000)} | "
                f"{fmt_mib(sq.peak_rss_mib)} |")
    lines = [
        "As a subprocess, from process start to exit (Python start-up and imports included). "
        "*Cold*: no analysis cache anywhere; *warm*: the same command right after.",
        "",
        f"SQL analysis in `migorch validate`: "
        f"{'yes' if analyses else '**no** (the CLI passes no SQL analyser yet)'}; "
        f"persistent analysis cache: {cache_where or '**none**'}"
        + ("" if cache_where else " (its *warm* is only a warm OS page cache)") + ". Cold runs "
        "start with the cache locations emptied (`$XDG_CACHE_HOME`, `$MIGORCH_CACHE_DIR`, dot "
        "directories next to the root).",
    ]
    if not complete:
        lines += ["", "The *harness* row runs what `migorch validate --all` will run once both "
                  "are there: `load_project` and `validate_project` with `risk."
                  "migration_analyser` over an `AnalysisCache` whose store is one JSON file "
                  "(content hash -> analysis) read at start and written back when it grew."]
    lines += ["", *rows, ""]
    for variant in variants:
        cold_growth, warm_growth = _growth(variant.results), _growth(variant.results, 1)
        lines.append(f"Growth of {variant.title} (time exponent between sizes; 1.0 is linear, "
                     "below 1 the fixed start-up cost still dominates): " + ", ".join(
                         f"{a:,} -> {b:,}: {c:.2f} cold, {w:.2f} warm"
                         for (a, b, c), (_, _, w) in zip(cold_growth, warm_growth)) + ".")
    if squawk is None:
        lines += ["", "squawk: not installed (`pip install squawk-cli`); no comparison."]
    else:
        lines += ["", *_squawk_ratio_lines(variants[0].results, squawk_runs, squawk)]
        lines += ["", *_corpora_lines(config, migorch, squawk, log)]
    report.section("1. Static validation", lines)
    if squawk is not None:
        _squawk_targets(config, report, variants[0].results, squawk_runs)

    goal = 1000 if config.quick else 5000
    for variant in variants:
        results = variant.results
        size = min(results, key=lambda n: abs(n - goal))
        cold, warm = results[size]
        scale = "" if size == 5000 else f" (at {size:,}; the target is for 5,000)"
        label = "`migorch validate`" if variant.key == "cli" else "full validation (harness)"
        note = ""
        if variant.key == "cli" and not analyses:
            note = "without SQL analysis"
        warm_note = note or ("" if cache_where or variant.key != "cli"
                             else "no persistent cache")
        report.targets.append(Target(f"{label} {size:,} migrations, cold{scale}",
                                     fmt_series(cold), "< 10 s", cold.median < 10, note))
        report.targets.append(Target(f"{label} {size:,} migrations, warm{scale}",
                                     fmt_series(warm), "< 2 s", warm.median < 2, warm_note))
        growth = _growth(results) + _growth(results, 1)
        worst = max((e for _, _, e in growth), default=float("nan"))
        sizes = " -> ".join(f"{n:,}" for n in sorted(results))
        report.targets.append(Target(f"{label} growth {sizes}", f"exponent {worst:.2f} "
                                     "(worst step)", "<= 1.0 (linear)",
                                     None if math.isnan(worst) else worst <= 1.05))
        full = variant is variants[-1]
        missed_here = cold.median >= 10 or warm.median >= 2 or worst > 1.05
        if config.profile and full and missed_here:
            repo = repository(config, size // config.migrations, config.migrations)
            for phase in ("cold", "warm"):
                if phase == "cold" and cold.median < 10 or phase == "warm" and warm.median < 2:
                    continue
                cache_dir = config.workdir / f"validate-profile-{variant.key}"
                shutil.rmtree(cache_dir, ignore_errors=True)
                cache_dir.mkdir(parents=True, exist_ok=True)
                out = config.workdir / f"validate-{phase}.prof"
                say(f"validate: profiling {variant.key} {phase}, {size} migrations")
                wipe_caches(config, repo.root.parent, repo.root)
                command = variant.command(repo, cache_dir)
                if phase == "warm":  # fill the cache first
                    run_measured(command, cwd=repo.root.parent, env=clean_env(config), log=log)
                run_measured([sys.executable, "-m", "cProfile", "-o", out, *command[1:]]
                             if variant.key == "full" else
                             [sys.executable, "-m", "cProfile", "-o", out, "-m",
                              "pytest_migorch", *command[1:]],
                             cwd=repo.root.parent, env=clean_env(config), log=log)
                if out.exists():
                    report.profiles.append((f"{label}, {size:,} migrations, {phase}",
                                            profile_top(str(out))))


def squawk_command(squawk: str, root: Path) -> list[Any]:
    """squawk on every SQL file under ``root``: the files ``migorch validate`` reads (squawk
    expands the pattern itself, so no shell and no argument-length limit)."""
    return [squawk, f"{root}/**/*.sql"]


def _squawk_ratio_lines(results: dict[int, tuple[Series, Series]],
                        squawk_runs: dict[int, Series], squawk: str) -> list[str]:
    """``migorch validate`` against squawk on the same files, per size."""
    lines = [f"squawk ({_first_line([squawk, '--version'])}, Rust, no cache: cold and warm are "
             "the same work) ran between each cold and warm `migorch validate` on the same "
             "`.sql` files (`squawk 'ROOT/**/*.sql'`). squawk only lints each file; "
             "`migorch validate` also checks names, pairing, configuration, the graph and the "
             "schema each migration leaves.", "",
             "| Migrations | cold / squawk | warm / squawk |", "|---|---|---|"]
    for total in sorted(results):
        sq = squawk_runs.get(total)
        if not sq or not sq.samples:
            continue
        cold, warm = results[total]
        lines.append(f"| {total:,} | {ratio_spread(cold, sq)} | {ratio_spread(warm, sq)} |")
    return lines


def _squawk_targets(config: Config, report: Report, results: dict[int, tuple[Series, Series]],
                    squawk_runs: dict[int, Series]) -> None:
    goal = 1000 if config.quick else 5000
    measured = [n for n in results if squawk_runs.get(n) and squawk_runs[n].samples]
    if not measured:
        return
    size = min(measured, key=lambda n: abs(n - goal))
    cold, warm = results[size]
    sq = squawk_runs[size]
    for phase, series, limit in (("warm", warm, 1.0), ("cold", cold, 3.0)):
        ratio = series.median / sq.median
        report.targets.append(Target(
            f"`migorch validate` {size:,} migrations, {phase}, vs squawk on the same files",
            f"{ratio_spread(series, sq)}: {fmt_seconds(series.median)} vs {fmt_seconds(sq.median)}",
            f"<= {limit:.1f}x", ratio <= limit))


def corpora_roots() -> list[Path]:
    """The services roots of the real migration sets in ``../shared/corpora``, when present."""
    base = REPO_ROOT.parent / "shared" / "corpora"
    return sorted(p / "services" for p in base.iterdir() if (p / "services").is_dir()) \
        if base.is_dir() else []


def _corpora_lines(config: Config, migorch: str, squawk: str, log: Path) -> list[str]:
    """``migorch validate`` (cold, warm) and squawk on each real set, runs interleaved."""
    roots = corpora_roots()
    if not roots:
        return ["Real migration sets: `../shared/corpora` is absent; not measured."]
    lines = ["Real migration sets (`../shared/corpora`, read in place; "
             f"{config.runs * 2} interleaved runs each):", "",
             "| Set | `.sql` files | migorch cold | migorch warm | squawk | cold / squawk | "
             "warm / squawk |", "|---|---|---|---|---|---|---|"]
    for root in roots:
        cold, warm, sq = Series(), Series(), Series()
        cwd = config.workdir
        command = [migorch, "validate", "--root", root, "--all"]
        say(f"validate: corpus {root.parent.name}")
        for _ in range(config.runs * 2):
            wipe_caches(config)
            cold.add(run_measured(command, cwd=cwd, env=clean_env(config), log=log))
            sq.add(run_measured(squawk_command(squawk, root), cwd=cwd, env=clean_env(config),
                                log=log))
            warm.add(run_measured(command, cwd=cwd, env=clean_env(config), log=log))
        files = len(list(root.rglob("*.sql")))
        lines.append(f"| {root.parent.name} | {files} | {fmt_series(cold)} | "
                     f"{fmt_series(warm)} | {fmt_series(sq)} | {ratio_spread(cold, sq)} | "
                     f"{ratio_spread(warm, sq)} |")
    lines += ["", "On sets this small both tools are mostly start-up: squawk is one native "
              "binary, `migorch validate` a Python interpreter and its imports."]
    return lines


# --------------------------------------------------------------------------------------------
# 2. pytest --migorch --migorch-no-db


#: The plugin's start-up cost in a pytest session that does not use it (issue 10).
STARTUP_TARGET = 0.03


def bench_startup(config: Config, report: Report) -> None:
    """What installing pytest-migorch costs every pytest session and the light commands: a
    one-test project with the plugin loaded (from its entry point) against ``-p no:migorch``,
    runs interleaved so load changes hit both alike; ``migorch --version`` and ``--help``."""
    project = config.workdir / "startup-project"
    project.mkdir(exist_ok=True)
    (project / "test_one.py").write_text("def test_one():\n    assert True\n")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    migorch = tool("migorch") or "migorch"
    commands = {
        "pytest, plugin installed": pytest,
        "pytest, `-p no:migorch`": [*pytest, "-p", "no:migorch"],
        "`migorch --version`": [migorch, "--version"],
        "`migorch up --help`": [migorch, "up", "--help"],
    }
    series = {title: Series() for title in commands}
    say(f"startup: {config.runs * 2} interleaved runs per command")
    for _ in range(config.runs * 2):
        for title, command in commands.items():
            series[title].add(run_measured(command, cwd=project, env=clean_env(config)))
    rows = ["| Command | Time | Peak memory |", "|---|---|---|"]
    rows += [f"| {title} | {fmt_series(s)} | {fmt_mib(s.peak_rss_mib)} |"
             for title, s in series.items()]
    with_plugin = series["pytest, plugin installed"]
    without = series["pytest, `-p no:migorch`"]
    # The median of the paired differences, and the difference of the fastest runs: on a busy
    # machine the load swings between runs far more than the plugin costs.
    cost = statistics.median(a - b for a, b in zip(with_plugin.times, without.times))
    fastest = with_plugin.low - without.low
    report.targets.append(Target(
        "pytest start-up cost of the installed plugin (one-test project, no --migorch)",
        f"{cost * 1000:+.0f} ms median of paired runs, {fastest * 1000:+.0f} ms between the "
        "fastest runs", f"<= {STARTUP_TARGET * 1000:.0f} ms", cost <= STARTUP_TARGET))
    report.section("0. Start-up", [
        "`pytest -p no:cacheprovider -q` on a project with one test, with the plugin loaded "
        "from its `pytest11` entry point and with `-p no:migorch`; the plugin may only cost "
        "its options until `--migorch` is given. Medians of "
        f"{config.runs * 2} interleaved runs.", "", *rows])


def _pytest_counts(log: Path) -> str:
    """The summary of the last pytest session in ``log``: ``1030 passed``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    summaries = re.findall(r"^=*\s*(\d+ (?:passed|failed|errors?|skipped|deselected|tests? "
                           r"collected|warnings?)[^\n]*?) in [0-9.]+s", text, re.MULTILINE)
    return summaries[-1].replace(",", ";") if summaries else "?"


#: Issue 14: the warm plugin session on the default 5,000 migrations.
PYTEST_WARM_TARGET = 4.0


def bench_pytest(config: Config, report: Report) -> None:
    repo = repository(config, config.services, config.migrations)
    cwd = config.workdir / "pytest-cwd"
    cwd.mkdir(exist_ok=True)
    cache = config.workdir / "pytest-cache"
    base = [sys.executable, "-m", "pytest", "--migorch", repo.root, "--migorch-no-db", "-q",
            "-o", f"cache_dir={cache}", "-p", "no:randomly", "-p", "no:hypothesispytest"]
    has_xdist = _importable("xdist")
    variants: list[tuple[str, list[str], bool]] = [
        ("collection only (`--collect-only`)", ["--collect-only"], True),
        ("collection + run, cold (no pytest cache)", [], False),
        ("collection + run, warm (pytest cache kept)", [], True),
    ]
    if has_xdist:
        variants.append(("collection + run, warm, `-n 2`", ["-n", "2"], True))
    rows = ["| Variant | Time | Per migration | Peak memory | Items |", "|---|---|---|---|---|"]
    results: dict[str, Series] = {}
    total = repo.migration_count
    warm_title = "collection + run, warm (pytest cache kept)"
    floor = _PytestFloor(config)
    for title, extra, warm in variants:
        log = config.workdir / f"pytest-{len(results)}.log"
        log.unlink(missing_ok=True)
        say(f"pytest: {title}, {total} migrations")
        series = Series()
        if warm:
            run_measured(base + extra, cwd=cwd, env=clean_env(config), log=log)
        # The floor runs interleaved with the warm session, so load changes hit both alike.
        with_floor = title == warm_title and floor.prepare(_collected_items(log))
        for _ in range(config.runs):
            if not warm:
                wipe_caches(config, cwd, repo.root)
            series.add(run_measured(base + extra, cwd=cwd, env=clean_env(config), log=log))
            if with_floor:
                floor.measure()
        results[title] = series
        if series.failures:
            report.notes.append(f"pytest {title}: {series.failures} run(s) exited non-zero "
                                f"(see {log})")
        rows.append(f"| {title} | {fmt_series(series)} | "
                    f"{fmt_seconds(series.median / total)} | {fmt_mib(series.peak_rss_mib)} | "
                    f"{_pytest_counts(log)} |")
        if with_floor:
            rows.append(floor.row(total))
    if warm_title in results:
        warm_series = results[warm_title]
        above = (f"; pytest alone takes {fmt_series(floor.series)} for the same number of "
                 "no-op items" if floor.series.times else "")
        report.targets.append(Target(
            f"`pytest --migorch ROOT --migorch-no-db`, {total:,} migrations, warm",
            fmt_series(warm_series) + above, f"<= {PYTEST_WARM_TARGET:.0f} s",
            warm_series.median <= PYTEST_WARM_TARGET))
    validate_note = ""
    report.section("2. pytest --migorch --migorch-no-db", [
        f"`pytest --migorch ROOT --migorch-no-db -q` as a subprocess on the default repository "
        f"({total:,} migrations, {config.services} services x {config.migrations}); every "
        "static check becomes items (config, files, graph per service; sql and risk per "
        f"migration).{validate_note} The *pytest alone* row is pytest on a conftest that yields "
        "the same number of items doing nothing (benchmarks/pytest_floor.py): what any plugin "
        "with one item per check pays before its checks cost anything.", "", *rows])


def _collected_items(log: Path) -> int:
    """How many items the session logged in ``log`` ran (``10150 passed``), 0 if unknown."""
    counts = re.findall(r"(\d+) (?:passed|failed|tests? collected)", _pytest_counts(log))
    return sum(int(count) for count in counts)


class _PytestFloor:
    """pytest alone on as many no-op items as the plugin generated (benchmarks/pytest_floor)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.series = Series()
        self.items = 0
        self.project = config.workdir / "pytest-floor"
        self.log = config.workdir / "pytest-floor.log"
        self.command = [sys.executable, "-m", "pytest", "-q", "-o",
                        f"cache_dir={config.workdir / 'pytest-floor-cache'}", "-p", "no:randomly",
                        "-p", "no:hypothesispytest", "-p", "no:migorch"]

    def prepare(self, items: int) -> bool:
        """Write the project and warm its cache; False when the item count is unknown."""
        from benchmarks.pytest_floor import write_floor_project

        if items <= 0:
            return False
        self.items = items
        write_floor_project(self.project, items, self.config.services)
        run_measured(self.command, cwd=self.project, env=clean_env(self.config), log=self.log)
        return True

    def measure(self) -> None:
        self.series.add(run_measured(self.command, cwd=self.project, env=clean_env(self.config),
                                     log=self.log))

    def row(self, migrations: int) -> str:
        return (f"| pytest alone, {self.items:,} no-op items in {self.config.services} "
                "collectors (its floor for this many items; run between the warm runs) | "
                f"{fmt_series(self.series)} | {fmt_seconds(self.series.median / migrations)} | "
                f"{fmt_mib(self.series.peak_rss_mib)} | {_pytest_counts(self.log)} |")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# --------------------------------------------------------------------------------------------
# PostgreSQL helpers shared by 3, 4 and 5


def start_local_server(cache_dir: Path | None = None) -> Any:
    from pytest_migorch.postgres.servers import ServerOptions, start_server

    return start_server(ServerOptions(
        provider="local", cache_dir=str(cache_dir) if cache_dir else None, die_with_parent=True))


def socket_params(server: Any) -> tuple[str, int]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(server.conninfo("postgres"))
    return str(params["host"]), int(params.get("port") or 5432)


def database_url(server: Any, dbname: str, *, dbmate: bool = False) -> str:
    host, port = socket_params(server)
    if dbmate:
        # search_path=public: dbmate qualifies its own table with the first schema of the URL's
        # search_path, else with current_schema(), which the migrations' SET changes.
        return (f"postgres://postgres@/{dbname}?socket={host}&port={port}&sslmode=disable"
                "&search_path=public")
    return f"postgresql://postgres@/{dbname}?host={host}&port={port}"


def psql_command(server: Any, dbname: str, script: Path) -> list[str]:
    host, port = socket_params(server)
    return [psql_path(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port),
            "-U", "postgres", "-d", dbname, "-f", str(script)]


def schema_objects(server: Any, dbname: str) -> set[tuple[str, str, str]]:
    """(schema, kind, name) of tables, views, indexes and functions: the same schema check."""
    with server.connect(dbname, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relkind::text, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') "
            "AND n.nspname NOT LIKE 'pg_%' AND c.relkind IN ('r', 'v', 'i') "
            "UNION ALL SELECT n.nspname, 'f', p.proname FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') "
            "AND n.nspname NOT LIKE 'pg_%'").fetchall()
    ignore = re.compile(r"migration|schema_migrations|_history|executions")
    return {(s, k, n) for s, k, n in rows if not ignore.search(n)}


def _file_block(schema: str, path: Path, transactional: bool) -> list[str]:
    lines = [f"SET search_path TO {schema}, public;"]
    if transactional:
        return lines + ["BEGIN;", f"\\i {path}", "COMMIT;"]
    return lines + [f"\\i {path}"]


# --------------------------------------------------------------------------------------------
# 3. Round-trip against psql


def roundtrip_psql_script(project: Any, graph: Any, service: str, environment: str,
                          path: Path) -> int:
    """psql doing what the round-trip does to the database: prerequisites up; own migrations
    up, down, up; in one session. Returns the number of own migrations."""
    from pytest_migorch.model import schema_name

    order = graph.order_all(environment, [service])
    schemas = sorted({schema_name(m.service) for m in order})
    lines = [f"CREATE SCHEMA IF NOT EXISTS {s};" for s in schemas]
    own = 0
    for m in order:
        schema = schema_name(m.service)
        lines += _file_block(schema, m.up.path, m.transactional)
        if m.service != service:
            continue
        own += 1
        if m.reversible and m.down is not None:
            lines += _file_block(schema, m.down.path, m.transactional)
            lines += _file_block(schema, m.up.path, m.transactional)
    path.write_text("\n".join(lines) + "\n")
    return own


def bench_roundtrip(config: Config, report: Report) -> None:
    from pytest_migorch.postgres.servers import unique_database_name
    from pytest_migorch.project.graph import ProjectGraph
    from pytest_migorch.project.validation import load_project
    from pytest_migorch.roundtrip.engine import RoundTrip

    services, per = (3, 15) if config.quick else (5, 40)
    environment = "development"
    repo = repository(config, services, per)
    project = load_project(repo.root)
    graph = ProjectGraph(project)
    server = start_local_server()
    scripts = config.workdir / "roundtrip-psql"
    scripts.mkdir(exist_ok=True)
    log = config.workdir / "roundtrip.log"
    try:
        tested = 0
        script_of: dict[str, Path] = {}
        for name in sorted(project.services):
            script_of[name] = scripts / f"{name}.sql"
            tested += roundtrip_psql_script(project, graph, name, environment, script_of[name])

        snapshot_by_position: dict[int, list[float]] = {}

        def migorch_once(profiler: cProfile.Profile | None = None,
                         seed: bool = True) -> tuple[float, dict, int]:
            phases: dict[str, float] = {}
            errors = 0
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            for name in sorted(project.services):
                trip = RoundTrip(server, project, graph, name, environment, seed_data=seed)
                try:
                    for position, outcome in enumerate(trip.run_all()):
                        if not seed:
                            continue
                        errors += sum(1 for f in outcome.findings if f.is_error)
                        for key, value in outcome.timings.items():
                            phases[key] = phases.get(key, 0.0) + value
                        snapshot_by_position.setdefault(position, []).append(
                            outcome.timings.get("snapshot", 0.0))
                finally:
                    trip.close()
            if profiler:
                profiler.disable()
            return time.perf_counter() - started, phases, errors

        def psql_once() -> float:
            started = time.perf_counter()
            for name in sorted(project.services):
                dbname = server.create_database(unique_database_name("bench_psql_rt"))
                sample = run_measured(psql_command(server, dbname, script_of[name]),
                                      cwd=config.workdir, log=log)
                server.drop_database(dbname)
                if sample.exit_code != 0:
                    raise RuntimeError(f"psql round-trip of {name} failed; see {log}")
            return time.perf_counter() - started

        say(f"roundtrip: {tested} migrations of {services} services, {config.runs} runs each")
        migorch_once()  # warm-up: imports, catalog caches, the page cache
        psql_once()
        mig, psql, unseeded = Series(), Series(), Series()
        phase_runs: list[dict[str, float]] = []
        errors = 0
        for _ in range(config.runs):  # interleaved: the load changes under all three alike
            seconds, phases, errors = migorch_once()
            mig.add(Sample(seconds))
            phase_runs.append(phases)
            psql.add(Sample(psql_once()))
            unseeded.add(Sample(migorch_once(seed=False)[0]))
        if errors:
            report.notes.append(f"round-trip: {errors} error finding(s) on the generated "
                                "repository (the generator or the round-trip has a bug)")
        ratio = mig.median / psql.median
        phases = {k: statistics.median(p.get(k, 0.0) for p in phase_runs)
                  for k in sorted({k for p in phase_runs for k in p})}
        accounted = sum(phases.values())
        phase_text = ", ".join(f"{k} {fmt_seconds(v / tested)}" for k, v in phases.items())
        # The user-facing path: a pytest session with only the database items.
        pytest_series = Series()
        pytest_log = config.workdir / "pytest-db.log"
        pytest_log.unlink(missing_ok=True)
        command = [sys.executable, "-m", "pytest", "--migorch", repo.root, "-m", "migorch_db",
                   "--migorch-env", environment, "-q", "-p", "no:cacheprovider",
                   "-p", "no:randomly", "-p", "no:hypothesispytest"]
        cwd = config.workdir / "pytest-cwd"
        cwd.mkdir(exist_ok=True)
        say("roundtrip: pytest -m migorch_db session")
        for _ in range(config.runs):
            pytest_series.add(run_measured(command, cwd=cwd, env=clean_env(config),
                                           log=pytest_log))
        if pytest_series.failures:
            report.notes.append(f"pytest -m migorch_db exited non-zero "
                                f"({_pytest_counts(pytest_log)}; see {pytest_log})")
        rows = [
            "| Tool | Whole repository | Per migration | Ratio to psql |", "|---|---|---|---|",
            f"| migorch `RoundTrip` (up, down, up + snapshots and checks) | {fmt_series(mig)} | "
            f"{fmt_series(mig, 1 / tested)} | {ratio_spread(mig, psql)} |",
            "| the same, `seed_data=False` (`--migorch-no-seed-data`: no rows, no lock probe) | "
            f"{fmt_series(unseeded)} | {fmt_series(unseeded, 1 / tested)} | "
            f"{ratio_spread(unseeded, psql)} |",
            f"| `pytest --migorch ROOT -m migorch_db --migorch-env {environment}` (whole "
            "session: start-up, collection with static checks, server start, round-trips) | "
            f"{fmt_series(pytest_series)} | {fmt_series(pytest_series, 1 / tested)} | "
            f"{ratio_spread(pytest_series, psql)} |",
            f"| psql, same files, one session per service | {fmt_series(psql)} | "
            f"{fmt_series(psql, 1 / tested)} | 1.00x |",
        ]
        lines = [
            f"{tested} migrations ({services} services x {per}, environment `{environment}`, "
            "prerequisites of other services applied first), each service on a fresh database "
            "of one throwaway server, database creation and drop included for both. psql runs "
            "`SET search_path` and `\\i` of the up, down and up files (each in its own "
            "transaction unless `\"transactional\": false`) in one session per service; "
            "irreversible migrations only up, as the round-trip does.", "", *rows, "",
            f"Inside the round-trip, per migration: {phase_text}; the remaining "
            f"{fmt_seconds((mig.median - accounted) / tested)} is database creation, probes, "
            "prerequisites of other services, ground-truth bookkeeping and Python.",
        ]
        positions = sorted(snapshot_by_position)
        if len(positions) >= 20:
            first = [v for p in positions[:10] for v in snapshot_by_position[p]]
            last = [v for p in positions[-10:] for v in snapshot_by_position[p]]
            lines += ["", f"Snapshot time per migration, as a service's schema grows: "
                      f"{fmt_seconds(statistics.median(first))} for its first 10 migrations, "
                      f"{fmt_seconds(statistics.median(last))} for its last 10."]
        report.section("3. Round-trip against psql", lines)
        report.targets.append(Target(
            "round-trip vs psql up, down, up (per migration)",
            f"{ratio_spread(mig, psql)}: {fmt_seconds(mig.median / tested)} vs "
            f"{fmt_seconds(psql.median / tested)}", "<= 1.5x", ratio <= 1.5))
        if config.profile and ratio > 1.5:
            say("roundtrip: profiling")
            profiler = cProfile.Profile()
            migorch_once(profiler)
            report.profiles.append((f"`RoundTrip` of {tested} migrations (in-process)",
                                    profile_top(pstats.Stats(profiler))))
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# 4. migorch up --all against psql and dbmate


def up_psql_script(order: Sequence[Any], path: Path) -> None:
    from pytest_migorch.model import schema_name

    schemas = sorted({schema_name(m.service) for m in order})
    lines = [f"CREATE SCHEMA IF NOT EXISTS {s};" for s in schemas]
    for m in order:
        lines += _file_block(schema_name(m.service), m.up.path, m.transactional)
    path.write_text("\n".join(lines) + "\n")


def write_dbmate_copy(order: Sequence[Any], directory: Path) -> None:
    """The same SQL in dbmate's layout: one file per migration, numbered in resolved order.

    dbmate has no per-migration search_path, so each transactional migration starts with
    ``SET search_path``; a non-transactional one cannot (several statements in one simple
    query form an implicit transaction, which CONCURRENTLY refuses), which is why the
    generator schema-qualifies those statements.
    """
    from pytest_migorch.model import schema_name

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    schemas = sorted({schema_name(m.service) for m in order})
    (directory / "0000000_create_schemas.sql").write_text(
        "-- migrate:up\n" + "".join(f"CREATE SCHEMA IF NOT EXISTS {s};\n" for s in schemas)
        + "\n-- migrate:down\n" + "".join(f"DROP SCHEMA {s} CASCADE;\n" for s in schemas))
    for number, m in enumerate(order, start=1):
        schema = schema_name(m.service)
        up = m.up.path.read_text(encoding="utf-8")
        down = m.down.path.read_text(encoding="utf-8") if m.down is not None else ""
        if m.transactional:
            header, prefix = "-- migrate:up", f"SET search_path TO {schema}, public;\n"
            down_header = "-- migrate:down"
        else:
            header, prefix = "-- migrate:up transaction:false", ""
            down_header = "-- migrate:down transaction:false"
        name = f"{number:07d}_{m.service.replace('-', '_')}_{m.id}.sql"
        (directory / name).write_text(
            f"{header}\n{prefix}{up}\n{down_header}\n{prefix if down else ''}{down}\n",
            encoding="utf-8")


def runner_available() -> str | None:
    migorch = tool("migorch")
    if migorch is None:
        return None
    text = subprocess.run([migorch, "--help"], capture_output=True, text=True).stdout
    return migorch if re.search(r"\bup\b", text) else None


def bench_up(config: Config, report: Report) -> None:
    from pytest_migorch.postgres.servers import unique_database_name
    from pytest_migorch.project.graph import ProjectGraph
    from pytest_migorch.project.validation import load_project

    migorch = runner_available()
    services, per = (4, 50) if config.quick else (10, 100)
    environment = "development"
    repo = repository(config, services, per)
    project = load_project(repo.root)
    graph = ProjectGraph(project)
    order = graph.order_all(environment)
    count = len(order)
    psql_script = config.workdir / "up-psql.sql"
    up_psql_script(order, psql_script)
    dbmate = tool("dbmate")
    dbmate_dir = config.workdir / "dbmate" / "migrations"
    write_dbmate_copy(order, dbmate_dir)
    log = config.workdir / "up.log"
    up_help = subprocess.run([migorch, "up", "--help"], capture_output=True,
                             text=True).stdout if migorch else ""
    server = start_local_server()
    try:
        def once(kind: str) -> tuple[Sample, set[tuple[str, str, str]]]:
            dbname = server.create_database(unique_database_name(f"bench_up_{kind}"))
            try:
                if kind.startswith("migorch"):
                    assert migorch is not None
                    command = [migorch, "up", "--all", "--root", repo.root, "--env",
                               environment, "--database-url", database_url(server, dbname)]
                    if "--yes" in up_help:
                        command.append("--yes")
                    if kind == "migorch-cold":
                        wipe_caches(config, repo.root.parent, repo.root)
                elif kind == "psql":
                    command = psql_command(server, dbname, psql_script)
                else:
                    assert dbmate is not None
                    command = [dbmate, "--url", database_url(server, dbname, dbmate=True),
                               "--migrations-dir", dbmate_dir, "--no-dump-schema", "up"]
                sample = run_measured(command, cwd=config.workdir, env=clean_env(config),
                                      log=log)
                objects = schema_objects(server, dbname)
                if kind == "migorch":  # the same command again: nothing to do
                    noop.add(run_measured(command, cwd=config.workdir, env=clean_env(config),
                                          log=log))
            finally:
                server.drop_database(dbname)
            return sample, objects

        noop = Series()
        kinds = (["psql"] + (["migorch", "migorch-cold"] if migorch else [])
                 + (["dbmate"] if dbmate else []))
        say(f"up: {count} migrations, {config.runs} runs each of {', '.join(kinds)}")
        series = {k: Series() for k in kinds}
        shapes: dict[str, set[tuple[str, str, str]]] = {}
        for kind in kinds:  # warm-up (page cache, catalog) and the schema check
            sample, shapes[kind] = once(kind)
            if sample.exit_code != 0:
                report.notes.append(f"up: {kind} failed (exit {sample.exit_code}); see {log}")
        noop.samples.clear()
        for _ in range(config.runs):
            for kind in kinds:
                series[kind].add(once(kind)[0])
        for kind in kinds:
            if kind != "psql" and shapes.get(kind) != shapes.get("psql"):
                missing = len(shapes["psql"] - shapes[kind])
                extra = len(shapes[kind] - shapes["psql"])
                report.notes.append(f"up: the schema {kind} built differs from psql's "
                                    f"({missing} objects missing, {extra} extra)")
        rows = ["| Tool | Time | Per migration | Ratio to psql | Peak memory |",
                "|---|---|---|---|---|"]
        labels = {"migorch": "`migorch up --all` (analysis cache warm)",
                  "migorch-cold": "`migorch up --all`, analysis cache empty",
                  "psql": "psql, same files", "dbmate": "dbmate, same SQL in its layout"}
        for kind in kinds:
            s = series[kind]
            rows.append(f"| {labels[kind]} | {fmt_series(s)} | {fmt_series(s, 1 / count)} | "
                        f"{ratio_spread(s, series['psql'])} | {fmt_mib(s.peak_rss_mib)} |")
        if noop.samples:
            rows.append(f"| `migorch up --all` again, nothing to do (its fixed cost) | "
                        f"{fmt_series(noop)} | | {ratio_spread(noop, series['psql'])} | "
                        f"{fmt_mib(noop.peak_rss_mib)} |")
        if "migorch" in kinds and "dbmate" in kinds:
            rows.append(f"| migorch vs dbmate | | | "
                        f"{ratio_spread(series['migorch'], series['dbmate'])} | |")
        lines = [
            f"{count} migrations ({services} services x {per}, environment `{environment}`: "
            "every base and development migration) applied to a fresh database of one "
            "throwaway server; each tool as a subprocess, from start to exit. psql runs "
            "`SET search_path` and `\\i` of each up file, each in its own transaction unless "
            "`\"transactional\": false`, in one session; it records nothing. dbmate applies a "
            "copy in its own layout (one file per migration, numbered in migorch's resolved "
            "order, `SET search_path` prepended) and records each version in its table. "
            "migorch validates, plans, locks, and records every migration in its tracking "
            "tables and golang-migrate's table. Its plan reads the SQL analysis of every "
            "migration from the persistent cache `migorch validate` fills; the *cache empty* "
            "row starts without it, as in a fresh deploy container.", "", *rows]
        if noop.samples and "migorch" in series:
            per = (series["migorch"].median - noop.median) / count
            lines += ["", f"Fixed cost (start-up, loading, planning with nothing to do) "
                      f"{fmt_seconds(noop.median)}; the rest is {fmt_seconds(per)} per "
                      f"migration, against {fmt_seconds(series['psql'].median / count)} for "
                      "psql."]
        if not migorch:
            lines.append("")
            lines.append("`migorch up` is not available in this version of the CLI; not "
                         "measured.")
        report.section("4. Deploy runner against psql and dbmate", lines)
        if "migorch" in kinds:
            r_psql = series["migorch"].median / series["psql"].median
            report.targets.append(Target(
                f"`migorch up --all` vs psql ({count} migrations)",
                ratio_spread(series["migorch"], series["psql"]), "<= 1.3x", r_psql <= 1.3))
            if "dbmate" in kinds:
                r_dbmate = series["migorch"].median / series["dbmate"].median
                report.targets.append(Target(
                    f"`migorch up --all` vs dbmate ({count} migrations)",
                    ratio_spread(series["migorch"], series["dbmate"]), "< 1.0x",
                    r_dbmate < 1.0))
            else:
                report.targets.append(Target("`migorch up --all` vs dbmate", "-", "< 1.0x",
                                             None, "dbmate not installed"))
            missed = r_psql > 1.3 or ("dbmate" in kinds and r_dbmate >= 1.0)
            if config.profile and missed:
                say("up: profiling")
                out = config.workdir / "up.prof"
                dbname = server.create_database(unique_database_name("bench_up_profile"))
                command = [sys.executable, "-m", "cProfile", "-o", out, "-m", "pytest_migorch",
                           "up", "--all", "--root", repo.root, "--env", environment,
                           "--database-url", database_url(server, dbname)]
                if "--yes" in up_help:
                    command.append("--yes")
                run_measured(command, cwd=config.workdir, env=clean_env(config), log=log)
                server.drop_database(dbname)
                if out.exists():
                    report.profiles.append((f"`migorch up --all`, {count} migrations",
                                            profile_top(str(out))))
        else:
            for what in ("vs psql", "vs dbmate"):
                report.targets.append(Target(f"`migorch up --all` {what}", "-",
                                             "<= 1.3x" if what == "vs psql" else "< 1.0x",
                                             None, "`migorch up` not available yet"))
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# 5. Throwaway server and fresh databases


def bench_server(config: Config, report: Report) -> None:
    from pytest_migorch.postgres.servers import unique_database_name
    from pytest_migorch.project.graph import ProjectGraph
    from pytest_migorch.project.validation import load_project
    from pytest_migorch.roundtrip.applying import apply_migrations

    say(f"server: {config.runs} cold and {config.runs} cached starts")
    cold, cached, stops = Series(), Series(), Series()
    phases: dict[str, list[float]] = {}
    cache_root = config.workdir / "server-cache"
    for i in range(config.runs):
        cache = cache_root / f"cold-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        seconds, server = timed(lambda: start_local_server(cache))
        cold.add(Sample(seconds))
        for k, v in server.timings.items():
            phases.setdefault(f"cold {k}", []).append(v)
        server.stop()
    warm_cache = cache_root / "cached"
    shutil.rmtree(warm_cache, ignore_errors=True)
    start_local_server(warm_cache).stop()
    for _ in range(config.runs):
        seconds, server = timed(lambda: start_local_server(warm_cache))
        cached.add(Sample(seconds))
        for k, v in server.timings.items():
            phases.setdefault(f"cached {k}", []).append(v)
        stop_seconds, _ = timed(server.stop)
        stops.add(Sample(stop_seconds))

    per_run = 20
    say(f"server: {config.runs} x {per_run} fresh databases")
    plain, templated, drops = Series(), Series(), Series()
    server = start_local_server(warm_cache)
    try:
        repo = repository(config, 3, 15) if config.quick else repository(config, 5, 40)
        project = load_project(repo.root)
        graph = ProjectGraph(project)
        template = server.create_database(unique_database_name("bench_template"))
        name = sorted(project.services)[-1]
        apply_migrations(server, template, project, graph, name, "production")
        applied = len(graph.order_all("production", [name]))
        for _ in range(config.runs):
            for series, source in ((plain, None), (templated, template)):
                names = []
                started = time.perf_counter()
                for _ in range(per_run):
                    names.append(server.create_database(unique_database_name("bench_fresh"),
                                                        template=source))
                series.add(Sample((time.perf_counter() - started) / per_run))
                started = time.perf_counter()
                for dbname in names:
                    server.drop_database(dbname)
                drops.add(Sample((time.perf_counter() - started) / per_run))
    finally:
        server.stop()
    phase_text = "; ".join(f"{k} {fmt_seconds(statistics.median(v))}"
                           for k, v in sorted(phases.items()) if k.split()[1] != "total")
    lines = [
        "`pytest_migorch.postgres.servers.start_server` with local binaries, timed from the call until "
        "the admin connection is ready. *First start*: an empty cache directory, so `initdb` "
        "runs and its cluster is cached; *cached*: the data directory is copied from that "
        f"cache. Phases (medians): {phase_text}.", "",
        "| Operation | Time |", "|---|---|",
        f"| server ready, first start (initdb) | {fmt_series(cold)} |",
        f"| server ready, cached cluster | {fmt_series(cached)} |",
        f"| server stop | {fmt_series(stops)} |",
        f"| fresh database (`CREATE DATABASE`, default template) | {fmt_series(plain)} |",
        f"| fresh database from a template with {applied} migrations applied | "
        f"{fmt_series(templated)} |",
        f"| drop a database | {fmt_series(drops)} |",
        "",
        f"Database times are per database, the mean of {per_run} in a row, median over runs.",
    ]
    report.section("5. Throwaway server and fresh databases", lines)
    report.targets.append(Target("throwaway server ready (cached cluster)",
                                 fmt_series(cached), "< 1 s", cached.median < 1.0))
    report.targets.append(Target("throwaway server ready (first start, initdb)",
                                 fmt_series(cold), "< 1 s", cold.median < 1.0))
    report.targets.append(Target("fresh database", fmt_series(plain), "< 100 ms",
                                 plain.median < 0.1))


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark pytest-migorch against psql and dbmate on synthetic "
        "repositories and write the results as Markdown.")
    parser.add_argument("--services", type=int, default=None,
                        help="services of the default repository (default 50, quick 10)")
    parser.add_argument("--migrations", type=int, default=None,
                        help="migrations per service (default 100, quick 50)")
    parser.add_argument("--quick", action="store_true",
                        help="3 runs and smaller repositories (about 3 minutes)")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="Markdown file to write (default benchmarks/RESULTS.md)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where repositories and logs go (default: a temporary directory, "
                        "removed afterwards unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-profile", action="store_true",
                        help="do not profile missed targets")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for the machine's "
                        "load to drop below half its cores (default: do not wait)")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    services = args.services or (10 if args.quick else 50)
    migrations = args.migrations or (50 if args.quick else 100)
    runs = args.runs or (3 if args.quick else 5)
    if min(services, migrations, runs) < 1:
        parser.error("--services, --migrations and --runs must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="migorch-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = Config(services=services, migrations=migrations, runs=runs, quick=args.quick,
                    only=tuple(args.only or BENCHMARKS), output=args.output,
                    workdir=workdir.resolve(), profile=not args.no_profile, argv=raw,
                    seed=args.seed, keep=args.keep or args.workdir is not None,
                    wait_quiet=args.wait_quiet)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    report = Report(config)
    report.machine = machine_info()
    steps = {"startup": bench_startup, "validate": bench_validate, "pytest": bench_pytest,
             "roundtrip": bench_roundtrip, "up": bench_up, "server": bench_server}
    say(f"work directory {config.workdir}")
    loads: list[str] = []
    commits: list[str] = []
    try:
        for name in BENCHMARKS:
            if name in config.only:
                report.waited += wait_for_quiet(config.wait_quiet)
                loads.append(f"{name} {load_average()}")
                commits.append(f"{name} {current_commit()}")
                try:
                    steps[name](config, report)
                except Exception as exc:  # one broken benchmark must not lose the others
                    report.notes.append(f"{name}: failed with {type(exc).__name__}: {exc}")
                    say(f"{name} failed: {exc!r}")
        report.machine.append(("Load average (1/5/15 min) at the start of each benchmark",
                               "; ".join(loads) + f"; end {load_average()}"))
        if len({c.split(" ", 1)[1] for c in commits}) > 1:
            report.notes.append("the code changed while the benchmarks ran (commit at the start "
                                "of each: " + "; ".join(commits) + ")")
        config.output.parent.mkdir(parents=True, exist_ok=True)
        config.output.write_text(report.render(kept_analysis(config.output)), encoding="utf-8")
        say(f"wrote {config.output}")
    finally:
        if not config.keep:
            shutil.rmtree(config.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
