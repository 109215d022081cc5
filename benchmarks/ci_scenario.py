"""The CI-sized scenario: a pull request touching 2 of 100 services, tested as CI would.

``python -m benchmarks.ci_scenario`` builds a git repository of 100 services x 50 generated
migrations (:mod:`benchmarks.generate`), commits it as the released base, commits a change to
2 services on a branch (a new migration each), and times::

    pytest services --migorch services --migorch-base base --migorch-changed-only -n 2

with the real round-trip on a throwaway server, JUnit, SARIF and Code Quality reports, as one
job from an empty pytest cache (a CI job without a cache) and from the cache of that run, then
as 1 and 4 ``--migorch-shard`` jobs from that cache (balanced by the recorded durations) and 4
from an empty one (balanced by item counts). The jobs of a matrix run one after another here;
on CI they run side by side, so the matrix's wall time is the slowest job's. Where the time
goes comes from :mod:`benchmarks.ci_timing`, loaded in the controller and every worker.

Writes ``benchmarks/CI_SCENARIO.md`` (``--output``). Needs the PostgreSQL server binaries, as
the database tests do; about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from benchmarks.generate import generate_repository, service_names
from benchmarks.run import compile_package

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
BASE_TAG = "base"
BRANCH = "change"


# --- the repository ------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c",
                    "user.email=bench@example.com", "-c", "commit.gpgsign=false", *args],
                   check=True, capture_output=True)


def add_migration(migrations: Path, version: int) -> None:
    """A reviewed-looking change: one new table, declared exactly, with its down."""
    name = f"{version:06d}_create_change_requests"
    (migrations / f"{name}.up.sql").write_text(
        "SET lock_timeout = '5s';\n\nCREATE TABLE change_requests (\n"
        "    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    title      TEXT NOT NULL,\n"
        "    created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n);\n", encoding="utf-8")
    (migrations / f"{name}.down.sql").write_text("DROP TABLE change_requests;\n",
                                                 encoding="utf-8")
    path = migrations / "dependencies.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["migrations"][f"{version:06d}"] = {
        "description": "Create the change_requests table", "depends_on": [f"{version - 1:06d}"],
        "affects_tables": ["change_requests"], "risk_level": "low", "estimated_duration": "1s"}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def build_repository(repo: Path, services: int, migrations: int, changed: Sequence[str],
                     seed: int) -> None:
    """``repo/services`` committed and tagged ``base``; branch ``change`` adds a migration to
    each of ``changed``."""
    if repo.exists():
        shutil.rmtree(repo)
    generate_repository(repo / "services", services, migrations, seed)
    # rootdir (and so .pytest_cache and node ids) is the repository, as in a real checkout.
    (repo / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "released")
    _git(repo, "tag", BASE_TAG)
    _git(repo, "checkout", "-q", "-b", BRANCH)
    for name in changed:
        add_migration(repo / "services" / name / "migrations", migrations + 1)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "change two services")


# --- one CI job ----------------------------------------------------------------------------------


@dataclass
class Job:
    """One pytest run: its wall time, outcome and the timing marks of its processes."""

    label: str
    wall: float
    returncode: int
    tests: int = 0
    failures: int = 0
    skipped: int = 0
    expected: float | None = None
    marks: list[dict[str, Any]] = field(default_factory=list)

    def phases(self, t0: float) -> dict[str, float]:
        return phases(self.marks, t0, self.wall)


def _junit(path: Path) -> tuple[int, int, int]:
    if not path.is_file():
        return 0, 0, 0
    root = ElementTree.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return 0, 0, 0
    number = lambda name: int(suite.get(name, "0"))  # noqa: E731
    return number("tests"), number("failures") + number("errors"), number("skipped")


def run_job(repo: Path, label: str, cache: Path, work: Path, extra: Sequence[str],
            workers: int) -> Job:
    """Run pytest in ``repo`` with ``cache`` as its cache directory; ``work`` gets the reports,
    the log and the timing marks."""
    if work.exists():
        shutil.rmtree(work)
    (work / "timing").mkdir(parents=True)
    command = [sys.executable, "-m", "pytest", "services", "--migorch", "services",
               "--migorch-base", BASE_TAG, "--migorch-changed-only", "-n", str(workers),
               "-q", "-p", "benchmarks.ci_timing", "-p", "no:hypothesispytest",
               "-o", f"cache_dir={cache}", f"--junitxml={work / 'junit.xml'}",
               f"--migorch-sarif={work / 'migorch.sarif'}",
               f"--migorch-codequality={work / 'gl-code-quality.json'}", *extra]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GITLAB_", "CI_")) and k != "CI"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: see benchmarks.run.compile_package
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
               MIGORCH_CI_TIMING_DIR=str(work / "timing"))
    t0 = time.time()
    began = time.perf_counter()
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    (work / "pytest.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    tests, failures, skipped = _junit(work / "junit.xml")
    marks = [json.loads(p.read_text()) for p in sorted((work / "timing").glob("*.json"))]
    summaries = [m["shard"] for m in marks if m.get("shard")] + [done.stdout]
    found = re.search(r"migorch shard \S+: .* expected ([\d.]+) s of", "\n".join(summaries))
    job = Job(label, wall, done.returncode, tests, failures, skipped,
              float(found.group(1)) if found else None, marks)
    job.marks.append({"name": "t0", "t0": t0})
    return job


def phases(marks: list[dict[str, Any]], t0: float, wall: float) -> dict[str, float]:
    """Seconds of one job by phase, on the controller's timeline (see ci_timing)."""
    start = next((m["t0"] for m in marks if m.get("name") == "t0"), t0)
    controller = next((m for m in marks if m.get("name") == "controller"), {})
    workers = [m for m in marks if m.get("name", "").startswith("gw")] or [controller]
    collected = max((m["collection"][1] for m in workers if "collection" in m), default=start)
    last = controller.get("last_report", collected)
    server = sum(m["server"] for m in workers)
    return {
        "start-up": controller.get("loaded", start) - start,
        "workers up + collection": collected - controller.get("loaded", start),
        "collection (slowest worker)": max((m["collection"][1] - m["collection"][0]
                                            for m in workers if "collection" in m), default=0),
        "tests": last - collected,
        "server start (sum)": server,
        "round-trip (sum)": sum(m["roundtrip"] for m in workers) - server,
        "static (sum)": sum(m["static"] for m in workers),
        "reports + exit": start + wall - last,
        "server stop (sum)": sum(m.get("server_stop", 0.0) for m in workers),
    }


# --- the scenario --------------------------------------------------------------------------------


def _fresh(path: Path, seed: Path | None = None) -> Path:
    """An empty cache directory, or a copy of ``seed`` (what CI restores for each job)."""
    if path.exists():
        shutil.rmtree(path)
    if seed is not None and seed.exists():
        shutil.copytree(seed, path)
    else:
        path.mkdir(parents=True)
    return path


def run_scenario(repo: Path, work: Path, workers: int, shards: Sequence[int],
                 dist: str | None) -> dict[str, list[Job]]:
    extra = ["--dist", dist] if dist else []
    caches = work / "caches"
    cold = run_job(repo, "1 job, empty cache", _fresh(caches / "cold"), work / "cold",
                   extra, workers)
    warm_cache = _fresh(caches / "warm", caches / "cold")
    warm = run_job(repo, "1 job, cache of the last run", warm_cache, work / "warm", extra,
                   workers)
    results: dict[str, list[Job]] = {"single": [cold, warm]}
    for count in shards:
        for seeded in (True, False):
            if count == 1 and not seeded:
                continue
            label = (f"{count} shard{'s' if count > 1 else ''}, "
                     f"{'cache of the last run' if seeded else 'empty cache'}")
            jobs = []
            for k in range(1, count + 1):
                cache = _fresh(caches / f"shard-{count}-{k}", warm_cache if seeded else None)
                jobs.append(run_job(repo, f"shard {k}/{count}", cache,
                                    work / f"shard-{count}-{seeded}-{k}",
                                    [*extra, "--migorch-shard", f"{k}/{count}"], workers))
            results[label] = jobs
    return results


def collected(repo: Path) -> dict[str, Any]:
    """What the change selects: items, round-trip groups and the services they cover."""
    done = subprocess.run([sys.executable, "-m", "pytest", "services", "--migorch", "services",
                           "--migorch-base", BASE_TAG, "--migorch-changed-only",
                           "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=repo, capture_output=True, text=True, check=False)
    items = [line for line in done.stdout.splitlines() if "::" in line and " " not in line]
    groups = {"::".join(i.split("::")[:2]) for i in items if "::roundtrip[" in i}
    return {"items": len(items), "roundtrip_items": sum("::roundtrip[" in i for i in items),
            "groups": len(groups), "services": sorted({g.split("::")[0].split("/")[-1]
                                                      for g in groups})}


# --- the report ----------------------------------------------------------------------------------

PHASES = ("start-up", "workers up + collection", "collection (slowest worker)", "tests",
          "server start (sum)", "round-trip (sum)", "static (sum)", "reports + exit",
          "server stop (sum)")


def _s(seconds: float) -> str:
    return f"{seconds:.1f}"


def render(results: dict[str, list[Job]], facts: dict[str, Any]) -> str:
    lines = [
        "# The CI scenario", "",
        f"Generated by `{facts['command']}` on {facts['date']} ({facts['cores']} cores, "
        f"load average {facts['load_before']} before, {facts['load_after']} after; "
        f"Python {platform.python_version()}). Do not edit: run it again.", "",
        f"{facts['services']} services x {facts['migrations']} migrations in git; the change "
        f"adds a migration to {', '.join(facts['changed'])}. `--migorch-changed-only` selects "
        f"{facts['selected']['items']} items: round-trips of {facts['selected']['groups']} "
        f"(service, environment) pairs ({facts['selected']['roundtrip_items']} items) in "
        f"{len(facts['selected']['services'])} services "
        f"({', '.join(facts['selected']['services'])}: "
        "each round-trip tests its order's first changed migration and what follows, and "
        "applies the history before it untested), the per-migration checks of the changed "
        "services and the service-level checks of all.", "",
        f"Command: `pytest services --migorch services --migorch-base base "
        f"--migorch-changed-only -n {facts['workers']}{facts['dist']}` with `--junitxml`, "
        "`--migorch-sarif` and `--migorch-codequality`, a throwaway PostgreSQL per worker.", "",
        "## One job", "",
        "Seconds. *Tests* is the span from the slowest worker's end of collection to the last "
        "report; the *(sum)* columns add up what each worker spent (2 workers: up to twice "
        "the span). *Start-up* is Python and pytest's imports in the controller; "
        "*workers up + collection* until the last worker has collected.", "",
        "| job | wall | tests | " + " | ".join(PHASES) + " |",
        "|---|---|---|" + "---|" * len(PHASES),
    ]
    for job in results["single"]:
        p = job.phases(0.0)
        lines.append(f"| {job.label} | **{_s(job.wall)}** | {job.tests} | "
                     + " | ".join(_s(p[k]) for k in PHASES) + " |")
    lines += ["", "## Several jobs: `--migorch-shard K/N`", "",
              "Each shard is a CI job of its own (run here one after another, each with a "
              "fresh copy of its cache, as CI restores it); the matrix takes as long as its "
              "slowest job. *Expected* is what the partition predicted for the shard.", "",
              "| matrix | max wall | sum of walls | per shard: wall / tests / expected |",
              "|---|---|---|---|"]
    for label, jobs in results.items():
        if label == "single":
            continue
        each = ", ".join(f"{_s(j.wall)} s / {j.tests} / "
                         f"{_s(j.expected) if j.expected is not None else '-'} s" for j in jobs)
        lines.append(f"| {label} | **{_s(max(j.wall for j in jobs))}** | "
                     f"{_s(sum(j.wall for j in jobs))} | {each} |")
    lines += ["", "Where a shard's time goes:", "",
              "| shard | wall | tests | " + " | ".join(PHASES) + " |",
              "|---|---|---|" + "---|" * len(PHASES)]
    for label, jobs in results.items():
        for job in jobs if label != "single" else ():
            p = job.phases(0.0)
            lines.append(f"| {label}: {job.label} | {_s(job.wall)} | {job.tests} | "
                         + " | ".join(_s(p[k]) for k in PHASES) + " |")
    bad = [j for jobs in results.values() for j in jobs if j.failures or j.returncode]
    if bad:
        lines += ["", "**Failed jobs** (see their pytest.log): "
                  + ", ".join(f"{j.label} (exit {j.returncode})" for j in bad)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ci_scenario",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--migrations", type=int, default=50)
    parser.add_argument("--changed", nargs="+", metavar="SERVICE",
                        help="services the change touches (default: 2, at 40%% and 70%%)")
    parser.add_argument("--workers", type=int, default=2, help="-n of every job (default 2)")
    parser.add_argument("--dist", help="--dist of every job (default: pytest-xdist's)")
    parser.add_argument("--shards", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep the repository and logs there")
    parser.add_argument("--output", type=Path, default=HERE / "CI_SCENARIO.md")
    args = parser.parse_args(argv)
    names = service_names(args.services)
    changed = args.changed or [names[args.services * 2 // 5], names[args.services * 7 // 10]]
    if unknown := sorted(set(changed) - set(names)):
        parser.error(f"--changed: no service {', '.join(unknown)} in the generated repository")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="migorch-ci-"))
    facts: dict[str, Any] = {
        "command": "python -m benchmarks.ci_scenario" + (f" {' '.join(argv)}" if argv else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
        "load_before": f"{os.getloadavg()[0]:.1f}", "services": args.services,
        "migrations": args.migrations, "changed": changed, "workers": args.workers,
        "dist": f" --dist {args.dist}" if args.dist else ""}
    compile_package()
    try:
        repo = work / "repo"
        build_repository(repo, args.services, args.migrations, changed, args.seed)
        facts["selected"] = collected(repo)
        results = run_scenario(repo, work, args.workers, args.shards, args.dist)
        facts["load_after"] = f"{os.getloadavg()[0]:.1f}"
        text = render(results, facts)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0 if "**Failed jobs**" not in text else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
