"""What a squash changes in the tree: ``dependencies.json`` of every service, the environment
list, and where the files go.

The JSON rewriting is pure (documents in, documents out) so it is tested without files; the
one function that touches the disk, :func:`write_squash`, computes every new text first and
only then writes, so a failure while preparing leaves the tree as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.model import Migration, Project, RiskLevel
from pytest_migorch.project.squashed import SQUASHED_DIR
from pytest_migorch.squash.dump import SquashedSql
from pytest_migorch.squash.selection import SquashSelection

__all__ = ["SquashEntry", "WritePlan", "format_duration", "rewrite_dependencies",
           "rewrite_references", "plan_writes", "write_squash"]


@dataclass(frozen=True)
class SquashEntry:
    """The squashed migration's entry in dependencies.json."""

    description: str
    depends_on: list[str]
    affects_tables: list[str]
    risk_level: str
    estimated_duration: str
    reversible: bool

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "description": self.description, "depends_on": self.depends_on,
            "affects_tables": self.affects_tables, "risk_level": self.risk_level,
            "estimated_duration": self.estimated_duration,
        }
        if not self.reversible:
            body["reversible"] = False
        return body


def format_duration(seconds: float) -> str:
    """A Go duration for ``seconds`` (``1h2m3s``, ``45s``, at least ``1s``)."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def squash_entry(selection: SquashSelection, tables: list[str], reversible: bool) -> SquashEntry:
    """The entry: other services' dependencies kept, tables as the squashed file creates them,
    ``low`` risk (on a database it runs on, every object it creates is new)."""
    replaced = {m.key for m in selection.replaced}
    depends_on: list[str] = []
    for migration in selection.replaced:
        for dep in migration.depends_on:
            if dep.key() not in replaced and dep.text not in depends_on:
                depends_on.append(dep.text)
    seconds = sum(m.meta.estimated_seconds for m in selection.replaced if m.meta)
    first, last = selection.replaced[0], selection.top
    return SquashEntry(
        description=f"Squash of {len(selection.replaced)} migrations "
        f"({first.version_text} to {last.version_text}): "
        + "; ".join(m.meta.description if m.meta else m.title for m in selection.replaced),
        depends_on=depends_on, affects_tables=tables, risk_level=RiskLevel.LOW.value,
        estimated_duration=format_duration(seconds), reversible=reversible,
    )


def _retarget(ref: str, replaced: set[int], top: str) -> str:
    """``ref`` pointing at the squashed migration when it named a replaced one."""
    prefix, _, version = ref.rpartition(":")
    if not version.isdigit() or int(version) not in replaced:
        return ref
    return f"{prefix}:{top}" if prefix else top


def rewrite_references(document: dict[str, Any], *, own: bool, service: str,
                       replaced: set[int], top: str) -> dict[str, Any]:
    """``document`` (a dependencies.json) with every reference to a replaced version of
    ``service`` pointing at ``top``; ``own`` says it is that service's own file."""
    out: dict[str, Any] = json.loads(json.dumps(document))
    for entry in out.get("migrations", {}).values():
        if not isinstance(entry, dict) or not isinstance(entry.get("depends_on"), list):
            continue
        new: list[str] = []
        for ref in entry["depends_on"]:
            target = ref.rpartition(":")[0] if isinstance(ref, str) else None
            if isinstance(ref, str) and ((own and not target) or target == service):
                ref = _retarget(ref, replaced, top)
            if ref not in new:
                new.append(ref)
        entry["depends_on"] = new
    return out


def rewrite_dependencies(document: dict[str, Any], selection: SquashSelection,
                         entry: SquashEntry, below: list[Migration]) -> dict[str, Any]:
    """The service's own dependencies.json after the squash: replaced entries gone, the
    squashed entry in their place, references retargeted; migrations that stay although
    their version is lower (environment migrations) now depend on the squash, since they
    ran after the migrations it replaces."""
    replaced = {m.version for m in selection.replaced}
    top = selection.version_text
    out = rewrite_references(document, own=True, service=selection.service,
                             replaced=replaced, top=top)
    migrations = out.get("migrations", {})
    kept = {k: v for k, v in migrations.items() if not (k.isdigit() and int(k) in replaced)}
    kept[top] = entry.to_json()
    for migration in below:
        body = kept.get(_entry_key(kept, migration.version))
        if isinstance(body, dict) and top not in body.get("depends_on", []):
            body.setdefault("depends_on", []).append(top)
    out["migrations"] = dict(sorted(kept.items(), key=lambda kv: (int(kv[0]), kv[0])))
    return out


def _entry_key(entries: dict[str, Any], version: int) -> str:
    return next((k for k in entries if k.isdigit() and int(k) == version), "")


def rewrite_environments(document: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """environments.json without the files ``names`` (as listed: ``staging/000005_x.up.sql``)."""
    out: dict[str, Any] = json.loads(json.dumps(document))
    for env in out.get("environments", {}).values():
        if isinstance(env, dict) and isinstance(env.get("migrations"), list):
            env["migrations"] = [n for n in env["migrations"] if n not in names]
    return out


@dataclass
class WritePlan:
    """Every change a squash makes, computed before anything is written."""

    texts: dict[Path, str] = field(default_factory=dict)
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path}: cannot read it for the squash: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path}: not a JSON object; fix it before squashing")
    return document


def _dump_json(document: dict[str, Any]) -> str:
    """Two-space indented JSON with short lists on one line, as the files are written by hand
    (and by ``migorch new``), so the diff of a squash shows what changed, not reformatting."""
    return _format(document, 0) + "\n"


def _format(value: Any, depth: int) -> str:
    if isinstance(value, dict) and value:
        pad = "  " * (depth + 1)
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_format(v, depth + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        pad = "  " * (depth + 1)
        return "[\n" + ",\n".join(pad + _format(v, depth + 1) for v in value) + "\n" + \
            "  " * depth + "]"
    return json.dumps(value, ensure_ascii=False)


def plan_writes(project: Project, selection: SquashSelection, sql_text: SquashedSql,
                entry: SquashEntry) -> WritePlan:
    """The new files, rewritten JSON documents and moves of one squash."""
    service = project.services[selection.service]
    plan = WritePlan()
    directory = service.migrations_dir
    plan.texts[directory / selection.up_name] = sql_text.up
    if entry.reversible:
        plan.texts[directory / selection.down_name] = sql_text.down
    replaced = {m.version for m in selection.replaced}
    below = [m for v, m in sorted(service.migrations.items())
             if v < selection.version and v not in replaced]
    if service.dependencies_file is not None and service.dependencies_file.is_file():
        own = rewrite_dependencies(_read_json(service.dependencies_file), selection, entry, below)
        plan.texts[service.dependencies_file] = _dump_json(own)
    for migration in below:
        plan.notes.append(
            f"{migration.main_file.relative_name} stays (its environment is not squashed) and "
            f"now depends on {selection.migration_id}; plain golang-migrate pointed at its "
            "directory would run it first, so consider renumbering it above "
            f"{selection.version_text}")
    for other in project.services.values():
        if other.name == selection.service or other.dependencies_file is None \
                or not other.dependencies_file.is_file():
            continue
        before = _read_json(other.dependencies_file)
        after = rewrite_references(before, own=False, service=selection.service,
                                   replaced=replaced, top=selection.version_text)
        if after != before:
            plan.texts[other.dependencies_file] = _dump_json(after)
    moved_env = {m.up.relative_name for m in selection.replaced if m.up and m.environment}
    if moved_env and service.environments_file is not None:
        plan.texts[service.environments_file] = _dump_json(
            rewrite_environments(_read_json(service.environments_file), moved_env))
    for migration in selection.replaced:
        for file in (migration.up, migration.down):
            if file is not None:
                plan.moves.append((file.path, directory / SQUASHED_DIR / file.name))
    return plan


def write_squash(plan: WritePlan) -> list[Path]:
    """Carry ``plan`` out: moves first (into ``migrations/squashed/``), then the new texts."""
    for source, target in plan.moves:
        if target.exists():
            raise ConfigurationError(f"{target} already exists; a file of that name was "
                                     "squashed before. Move it away, then squash again")
    for source, target in plan.moves:
        target.parent.mkdir(exist_ok=True)
        source.rename(target)
    for path, text in plan.texts.items():
        path.write_text(text, encoding="utf-8")
    return sorted(plan.texts)
