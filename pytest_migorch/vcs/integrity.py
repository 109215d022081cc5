"""Integrity of released migrations: what a change does to migrations that already shipped.

A migration that exists at the base revision (``--migorch-base REF``, usually the target branch
of a pull request or the last release tag) may already be applied to some database. Editing,
renaming or deleting it cannot reach those databases: golang-migrate records only the version, so
the edit never runs there, and the databases drift apart from a fresh one. A new migration
numbered at or below the base's newest version is silently skipped by golang-migrate on every
database that is already past it.

The comparison works like a pull request diff: edits and deletions are judged against the merge
base of ``HEAD`` and the base revision (so work that landed on the base after the branch was cut
is not taken for a deletion), while "the newest version" is the highest of the merge base and the
base revision itself (so a number that the target branch took meanwhile is caught too). The
current side is the working tree, so a local run also checks uncommitted edits.

All git access goes through :class:`~pytest_migorch.vcs.git.GitRepository`; the base revision's
tree is read by the same discovery and configuration code as the working tree (over a mapping of
path -> bytes), so there is one parser of the migrations layout and of ``depends_on``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import MigrationFile, MigrationMeta, Project, Service
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.sources import MappingSource
from pytest_migorch.project.validation import load_project
from pytest_migorch.vcs.git import GitRepository

__all__ = [
    "RULES",
    "check_against_base",
    "changed_services",
    "with_dependents",
    "verify_base_ref",
    "BaseRevision",
]

E, W, INTEGRITY = Severity.ERROR, Severity.WARNING, Family.INTEGRITY

EDITED = Rule(
    "INT001", "edited-released-migration", E, INTEGRITY,
    "A migration that already exists at the base revision was edited; databases that applied "
    "it will never run the edit.",
    "Revert the edit and put the change in a new migration with the next free version.",
)
DELETED = Rule(
    "INT002", "deleted-released-migration", E, INTEGRITY,
    "A migration that already exists at the base revision was deleted; databases that applied "
    "it keep its effects and a fresh database no longer matches them.",
    "Restore the file; to undo its effect, write a new migration that reverses it.",
)
NOT_AFTER_BASE = Rule(
    "INT003", "new-migration-not-after-base", W, INTEGRITY,
    "A new migration is numbered at or below the newest version at the base revision; "
    "golang-migrate silently skips it on databases that are already past that version.",
    "Renumber the new migration above the newest version at the base (and update its "
    "dependencies.json entry and environments.json listing).",
)
METADATA_CHANGED = Rule(
    "INT004", "changed-metadata-of-released-migration", W, INTEGRITY,
    "The dependencies.json entry of a migration that already exists at the base revision "
    "changed.",
    "Make sure the change only corrects documentation (description, risk_level, "
    "estimated_duration, affects_tables); a changed depends_on cannot reorder databases that "
    "already applied the migration.",
)
RENAMED = Rule(
    "INT005", "renamed-released-migration", E, INTEGRITY,
    "A migration that already exists at the base revision was renamed, renumbered or moved; "
    "deployed databases know it by its version and id and will treat it as new or as missing.",
    "Restore the original file name and directory; file names of released migrations are "
    "permanent.",
)

RULES: tuple[Rule, ...] = (EDITED, DELETED, NOT_AFTER_BASE, METADATA_CHANGED, RENAMED)

DEPENDENCIES_FILE = "dependencies.json"

#: Metadata entries as compared: the dependencies.json keys, normalised by the config loader.
Entry = dict[str, Any]
#: Migration files by their name relative to migrations/ (``development/000003_x.up.sql``).
Files = dict[str, MigrationFile]
#: An entry that is present but not usable (see :func:`_snapshot`).
_UNUSABLE: Entry = {"unusable": True}


# --- what a revision holds ----------------------------------------------------------------------


def _migration_id(file: MigrationFile) -> str:
    return f"{file.version_text}_{file.title}"


def _slot(file: MigrationFile) -> tuple[int, str]:
    return (file.version, file.direction)


@dataclass
class _Snapshot:
    """One service's migrations at the base, or in the working tree, as discovery read them."""

    files: dict[str, MigrationFile] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    #: Metadata by version; None when dependencies.json is missing or unusable.
    entries: dict[int, Entry] | None = None
    lines: dict[int, int] = field(default_factory=dict)
    has_dependencies_file: bool = False


def _snapshot(service: Service | None, contents: Mapping[str, bytes] | None = None) -> _Snapshot:
    """The files and metadata of a discovered ``service`` (an empty snapshot for None)."""
    snapshot = _Snapshot()
    if service is None:
        return snapshot
    snapshot.files = {file.relative_name: file for file in service.files}
    if contents is not None:
        prefix = f"{service.name}/migrations/"
        snapshot.contents = {rel: contents.get(prefix + rel, b"") for rel in snapshot.files}
    snapshot.has_dependencies_file = service.dependencies_file is not None
    if service.has_metadata:
        snapshot.entries = {}
        for migration in service.migrations.values():
            if migration.meta is not None:
                snapshot.entries[migration.version] = _entry(migration.meta)
                if migration.meta.line is not None:
                    snapshot.lines[migration.version] = migration.meta.line
        # Entries the loader could not attach (rejected by the schema, or without files) are
        # still there: not a removal, and not comparable; the configuration checks report them.
        for version in service.dependency_entries - set(snapshot.entries):
            snapshot.entries[version] = _UNUSABLE
    return snapshot


def _entry(meta: MigrationMeta) -> Entry:
    """A metadata entry with its defaults, so ``"1"`` and ``"000001"`` compare equal."""
    return {
        "description": meta.description,
        "depends_on": sorted(f"{dep.service}:{dep.version}" for dep in meta.depends_on),
        "affects_tables": list(meta.affects_tables),
        "risk_level": meta.risk_level.value,
        "estimated_duration": meta.estimated_duration,
        "transactional": meta.transactional is not False,  # undeclared: the default
        "reversible": meta.reversible,
    }


def _tree_snapshots(repo: GitRepository, commit: str, root: Path, root_rel: str,
                    *, with_contents: bool, services: set[str]) -> dict[str, _Snapshot]:
    """``{service: snapshot}`` of each of ``services``' ``<service>/migrations/`` under the
    root at ``commit``, read by discovery and the config loader over the revision's files."""
    prefix = "" if root_rel == "." else root_rel + "/"
    located: dict[str, str] = {}  # path relative to the services root -> blob
    for path, blob in repo.list_tree(commit, root_rel).items():
        relative = path[len(prefix):]
        parts = relative.split("/")
        if len(parts) >= 3 and parts[1] == "migrations" and parts[0] in services:
            wanted = with_contents or parts[-1] == DEPENDENCIES_FILE
            located[relative] = blob if wanted else ""
    blobs = repo.read_blobs(blob for blob in located.values() if blob)
    files = {relative: blobs.get(blob, b"") for relative, blob in located.items()}
    project = load_project(root, MappingSource(root, files))
    return {name: _snapshot(service, files if with_contents else None)
            for name, service in project.services.items()}


def _read(file: MigrationFile) -> bytes:
    try:
        return file.path.read_bytes()
    except OSError:
        return b""


def _normalise(content: bytes) -> bytes:
    """Line endings do not change what a migration does (and git may convert them)."""
    return content.replace(b"\r\n", b"\n")


def _first_changed_line(old: bytes, new: bytes) -> int:
    """The 1-based line of ``new`` where it first differs from ``old`` (its last line when
    only lines at the end were removed)."""
    old_lines = old.decode("utf-8", "replace").splitlines()
    new_lines = new.decode("utf-8", "replace").splitlines()
    for number, (before, after) in enumerate(zip(old_lines, new_lines), start=1):
        if before != after:
            return number
    return max(1, min(len(old_lines) + 1, len(new_lines)))


# --- the checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseRevision:
    """The revisions a change is compared with (see the module docstring)."""

    ref: str
    commit: str
    merge_base: str


def verify_base_ref(root: Path, base_ref: str) -> BaseRevision:
    """Resolve ``base_ref`` for the repository holding ``root``; UsageError when impossible.

    Cheap enough to call while pytest configures itself, so a typo in ``--migorch-base`` is a
    usage error (exit 2) before any test runs.
    """
    return _open(root, base_ref)[1]


def _open(root: Path, base_ref: str) -> tuple[GitRepository, BaseRevision]:
    repo = GitRepository.containing(root)
    commit = repo.resolve(base_ref)
    return repo, BaseRevision(ref=base_ref, commit=commit, merge_base=repo.merge_base(commit))


def check_against_base(project: Project, base_ref: str) -> list[Finding]:
    """Every integrity finding of the working tree's migrations against ``base_ref``.

    Raises :class:`~pytest_migorch.errors.UsageError` when the root is not in a git work tree
    or ``base_ref`` names no commit.
    """
    root = Path(project.root)
    repo, base = _open(root, base_ref)
    root_rel = repo.relative(root)
    # A service none of whose files differ from the merge base has nothing to report, so only
    # the touched ones are read from git (in a large repository, most of them are not).
    touched = _touched_directories(repo, base.merge_base, root_rel)
    released = _tree_snapshots(repo, base.merge_base, root, root_rel, with_contents=True,
                               services=touched)
    tip = (released if base.commit == base.merge_base
           else _tree_snapshots(repo, base.commit, root, root_rel, with_contents=False,
                                services=touched))
    findings: list[Finding] = []
    for service in sorted((set(released) | set(project.services)) & touched):
        migrations_dir = root / service / "migrations"
        checker = _ServiceCheck(service, migrations_dir, released.get(service, _Snapshot()),
                                _snapshot(project.services.get(service)),
                                tip.get(service, _Snapshot()), base)
        findings.extend(checker.run())
    return findings


class _ServiceCheck:
    """The comparison of one service's released migrations with its working tree."""

    def __init__(self, service: str, migrations_dir: Path, old: _Snapshot, new: _Snapshot,
                 tip: _Snapshot, base: BaseRevision) -> None:
        self.service = service
        self.dir = migrations_dir
        self.old = old  # at the merge base: what this change started from
        self.new = new  # the working tree
        self.tip = tip  # at the base ref itself: versions taken meanwhile
        self.base = base
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        added = {rel: f for rel, f in self.new.files.items() if rel not in self.old.files}
        gone: dict[str, MigrationFile] = {}
        for relative, file in sorted(self.old.files.items()):
            if relative in self.new.files:
                self._compare(file)
            else:
                gone[relative] = file
        successors = self._match_renames(gone, added)
        self._report_gone(gone, successors)
        self._report_added({rel: f for rel, f in added.items()
                            if rel not in {s.relative_name for s in successors.values()}})
        self._report_metadata()
        return self.findings

    def _where(self, file: MigrationFile, **extra: Any) -> dict[str, Any]:
        return {"service": self.service, "migration": _migration_id(file),
                "environment": file.environment, **extra}

    def _compare(self, file: MigrationFile) -> None:
        old = _normalise(self.old.contents[file.relative_name])
        new = _normalise(_read(self.new.files[file.relative_name]))
        if old == new:
            return
        self.findings.append(EDITED.finding(
            f"{file.relative_name} exists at {self.base.ref} and was edited; databases that "
            f"applied {_migration_id(file)} will never run the edit",
            file=self.dir / file.relative_name, line=_first_changed_line(old, new),
            **self._where(file),
        ))

    def _match_renames(self, gone: Files, added: Files) -> Files:
        """``{gone relative: the added file that replaces it}``: same version and direction
        (a new title, zero padding or directory), else identical content (a renumbering)."""
        successors: dict[str, MigrationFile] = {}
        free = dict(added)
        for relative, file in sorted(gone.items()):
            same_slot = [f for f in free.values() if _slot(f) == _slot(file)]
            if not same_slot:
                old = _normalise(self.old.contents[relative])
                same_slot = [f for f in free.values() if f.direction == file.direction
                             and _normalise(_read(f)) == old]
            if same_slot:
                successor = min(same_slot, key=lambda f: f.relative_name)
                successors[relative] = successor
                del free[successor.relative_name]
        return successors

    def _report_gone(self, gone: Files, successors: Files) -> None:
        deleted: dict[int, list[MigrationFile]] = defaultdict(list)
        for relative, file in sorted(gone.items()):
            successor = successors.get(relative)
            if successor is None:
                deleted[file.version].append(file)
                continue
            edited = (_normalise(self.old.contents[relative])
                      != _normalise(_read(successor)))
            self.findings.append(RENAMED.finding(
                f"{file.relative_name} exists at {self.base.ref} and was renamed to "
                f"{successor.relative_name}{' and edited' if edited else ''}; deployed databases "
                f"know it as {_identity(file)}, the new name is {_identity(successor)}",
                file=self.dir / successor.relative_name, line=1 if edited else None,
                **self._where(successor),
            ))
        for _version, files in sorted(deleted.items()):
            names = ", ".join(f.relative_name for f in files)
            first = files[0]
            self.findings.append(DELETED.finding(
                f"{names} of {_migration_id(first)} exist{'s' if len(files) == 1 else ''} at "
                f"{self.base.ref} and {'was' if len(files) == 1 else 'were'} deleted; databases "
                "that applied it keep its effects",
                file=self.dir / first.relative_name, **self._where(first),
            ))

    def _report_added(self, added: dict[str, MigrationFile]) -> None:
        released = {_slot(f): f for f in self.old.files.values()}
        taken = {f.version: f for f in (*self.tip.files.values(), *self.old.files.values())}
        newest = max(taken, default=None)
        reported: set[int] = set()
        ordered = sorted(added.items(),  # up files first: they name the migration
                         key=lambda kv: (kv[1].version, kv[1].direction != "up", kv[0]))
        for relative, file in ordered:
            other = released.get((file.version, "up" if file.direction == "down" else "down"))
            if other is not None and _slot(file) not in released:
                self._report_added_half(relative, file, other)
                continue
            if newest is None or file.version > newest or file.version in reported:
                continue
            reported.add(file.version)
            owner = taken.get(file.version)
            if owner is not None:
                owner_id = _migration_id(owner)
                why = (f"reuses version {file.version}, which {owner_id} already has "
                       f"at {self.base.ref}; databases that applied {owner_id} take "
                       "it for applied and never run it")
            else:
                why = (f"is numbered at or below {newest}, the newest version of {self.service} "
                       f"at {self.base.ref}; golang-migrate silently skips it on databases that "
                       "are already at that version")
            self.findings.append(NOT_AFTER_BASE.finding(
                f"new migration {_migration_id(file)} {why}",
                file=self.dir / relative, **self._where(file),
            ))

    def _report_added_half(self, relative: str, file: MigrationFile,
                           released: MigrationFile) -> None:
        """A file added to a migration that already shipped (typically its down file)."""
        is_down = file.direction == "down"
        self.findings.append(EDITED.finding(
            f"{file.relative_name} adds a{' down' if is_down else 'n up'} file to "
            f"{_migration_id(released)}, which exists at {self.base.ref}",
            file=self.dir / relative, line=1, severity=W if is_down else E,
            hint=("Check that the down file undoes exactly what the released up file does; "
                  "databases that applied the up file are not affected." if is_down else None),
            **self._where(file),
        ))

    def _report_metadata(self) -> None:
        old_entries, new_entries = self.old.entries, self.new.entries
        if old_entries is None:
            return  # missing or unusable at the base: nothing reliable to compare with
        if new_entries is None:
            if self.new.has_dependencies_file:
                return  # unusable now: the configuration checks report it
            new_entries = {}
        released_ids = {f.version: _migration_id(f) for f in self.old.files.values()}
        for version, old_entry in sorted(old_entries.items()):
            migration_id = released_ids.get(version)
            new_entry = new_entries.get(version)
            if (migration_id is None or new_entry == old_entry
                    or _UNUSABLE in (old_entry, new_entry)):
                continue  # no released migration, no change, or reported by config checks
            if new_entry is None:
                what = ("its entry was removed" if self.new.has_dependencies_file
                        else "dependencies.json was deleted")
            else:
                what = "changed " + "; ".join(_differences(old_entry, new_entry))
            self.findings.append(METADATA_CHANGED.finding(
                f"dependencies.json entry of {migration_id}, which exists at {self.base.ref}: "
                f"{what}",
                file=self.dir / DEPENDENCIES_FILE, line=self.new.lines.get(version),
                service=self.service, migration=migration_id,
            ))


def _identity(file: MigrationFile) -> str:
    where = f" in {file.environment}/" if file.environment else ""
    return f"version {file.version}, id {_migration_id(file)}{where}"


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{key} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


# --- what a change touches ----------------------------------------------------------------------


def changed_services(project: Project, base_ref: str) -> set[str]:
    """Services of ``project`` whose ``migrations/`` differ from the merge base with
    ``base_ref`` (committed, uncommitted and untracked changes alike)."""
    root = Path(project.root)
    repo, base = _open(root, base_ref)
    return _touched_directories(repo, base.merge_base, repo.relative(root)) & set(
        project.services)


def _touched_directories(repo: GitRepository, commit: str, root_rel: str) -> set[str]:
    """Names of the directories ``D`` under the root with a path ``D/migrations/...`` that
    differs between ``commit`` and the working tree (services, or services deleted since)."""
    prefix = PurePosixPath(root_rel)
    touched: set[str] = set()
    for path in repo.changed_paths(commit, root_rel):
        parts = PurePosixPath(path).relative_to(prefix).parts
        if len(parts) >= 3 and parts[1] == "migrations":
            touched.add(parts[0])
    return touched


def with_dependents(project: Project, services: Iterable[str]) -> set[str]:
    """``services`` plus every service with a migration that depends on one of theirs,
    transitively, in any environment (their database tests apply the changed migrations)."""
    wanted = set(services)
    graph = ProjectGraph(project)
    result = set(wanted)
    for environment in project.environment_names():
        keys = [key for key in graph.graph(environment) if key[0] in wanted]
        result |= {service for service, _ in graph.dependents(keys, environment)}
    return result
