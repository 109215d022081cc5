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

All git access goes through :class:`GitRepository` (plain ``git`` subprocesses, no library), so
the comparison logic reads like the rules above and the tests use real repositories.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from pytest_migorch.errors import MigorchError, UsageError
from pytest_migorch.findings import Family, Finding, Rule, Severity
from pytest_migorch.model import Project
from pytest_migorch.project.discovery import CONFIG_FILES, parse_migration_name
from pytest_migorch.project.graph import ProjectGraph
from pytest_migorch.project.jsonpos import JsonSyntaxError, load_json

__all__ = [
    "RULES",
    "GitRepository",
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


# --- git ----------------------------------------------------------------------------------------


class GitRepository:
    """The few read-only git operations integrity checks need, as ``git`` subprocesses.

    Never writes to the repository: ``GIT_OPTIONAL_LOCKS=0`` keeps ``git diff`` from refreshing
    the index, so parallel pytest-xdist workers can run it side by side.
    """

    def __init__(self, toplevel: Path) -> None:
        self.toplevel = toplevel

    @classmethod
    def containing(cls, path: Path) -> GitRepository:
        """The repository whose work tree holds ``path``; UsageError when there is none."""
        directory = path if path.is_dir() else path.parent
        try:
            out = _run_git(["-C", str(directory), "rev-parse", "--show-toplevel"])
        except _GitFailed as exc:
            raise UsageError(
                f"--migorch-base needs a git repository, but {path} is not inside one "
                f"({exc.stderr or 'git rev-parse failed'})"
            ) from exc
        return cls(Path(out.decode().strip()))

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return _run_git(["-C", str(self.toplevel), *args], stdin=stdin)

    def resolve(self, ref: str) -> str:
        """The commit id ``ref`` names; UsageError with a hint about shallow clones otherwise."""
        try:
            out = self.git("rev-parse", "--verify", "--quiet", "--end-of-options",
                           f"{ref}^{{commit}}")
        except _GitFailed as exc:
            raise UsageError(
                f"--migorch-base {ref}: no such commit in {self.toplevel}. In CI, fetch the "
                "full history and the base branch (GitHub: actions/checkout with fetch-depth: 0; "
                "GitLab: GIT_DEPTH: 0 and `git fetch origin <branch>`)"
            ) from exc
        return out.decode().strip()

    def merge_base(self, commit: str) -> str:
        """The merge base of HEAD and ``commit``; ``commit`` itself when there is none."""
        try:
            out = self.git("merge-base", "HEAD", commit)
        except _GitFailed:
            return commit  # no HEAD yet, or unrelated histories: compare with the ref itself
        return out.decode().strip() or commit

    def relative(self, path: Path) -> str:
        """``path`` relative to the top level, in git's spelling (``.`` for the top level)."""
        try:
            rel = path.resolve().relative_to(self.toplevel.resolve())
        except ValueError as exc:
            raise UsageError(f"{path} is outside the git work tree {self.toplevel}") from exc
        return rel.as_posix() or "."

    def list_tree(self, commit: str, path: str) -> dict[str, str]:
        """``{path relative to the top level: blob id}`` of every file under ``path``."""
        out = self.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", _pathspec(path))
        files: dict[str, str] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _mode, kind, blob = meta.decode().split(" ")
            if kind == "blob":
                files[name.decode("utf-8", "surrogateescape")] = blob
        return files

    def read_blobs(self, blobs: Iterable[str]) -> dict[str, bytes]:
        """The contents of many blobs in one ``git cat-file --batch`` process."""
        wanted = sorted(set(blobs))
        if not wanted:
            return {}
        out = self.git("cat-file", "--batch", stdin=("\n".join(wanted) + "\n").encode())
        contents: dict[str, bytes] = {}
        position = 0
        for blob in wanted:
            header_end = out.index(b"\n", position)
            header = out[position:header_end].decode().split(" ")
            size = int(header[2])
            start = header_end + 1
            contents[blob] = out[start:start + size]
            position = start + size + 1  # the content is followed by a newline
        return contents

    def changed_paths(self, commit: str, path: str) -> set[str]:
        """Paths under ``path`` that differ between ``commit`` and the working tree, untracked
        files included (relative to the top level)."""
        diff = self.git("diff", "--name-only", "-z", "--no-renames", commit, "--",
                        _pathspec(path))
        untracked = self.git("ls-files", "-z", "--others", "--exclude-standard", "--",
                             _pathspec(path))
        return {p.decode("utf-8", "surrogateescape")
                for p in (diff + b"\0" + untracked).split(b"\0") if p}


class _GitFailed(MigorchError):
    """A git command failed; callers turn the expected cases into a UsageError that says what
    to do, and any other failure still reaches the user as a clean MigorchError."""

    def __init__(self, command: list[str], stderr: str) -> None:
        super().__init__(f"git {' '.join(command)} failed: {stderr}")
        self.stderr = stderr


def _pathspec(path: str) -> str:
    # ":(top,literal)" keeps names with glob characters literal and anchors at the top level.
    return ":(top,literal)" + ("" if path == "." else path)


def _run_git(args: list[str], *, stdin: bytes | None = None) -> bytes:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        done = subprocess.run(["git", *args], input=stdin, capture_output=True, env=env,
                              check=False)
    except OSError as exc:
        raise UsageError(f"--migorch-base needs the git command: {exc.strerror}") from exc
    if done.returncode != 0:
        raise _GitFailed(args, done.stderr.decode(errors="replace").strip())
    return done.stdout


# --- what a revision holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    """A migration file of one service, at a revision or in the working tree."""

    relative: str  # relative to migrations/: "000001_x.up.sql" or "development/000003_x.up.sql"
    version: int
    digits: str
    title: str
    direction: str
    environment: str | None

    @property
    def migration_id(self) -> str:
        return f"{self.digits}_{self.title}"

    @property
    def slot(self) -> tuple[int, str]:
        return (self.version, self.direction)


def _parse(relative: str) -> _File | None:
    """A migration file at ``relative`` (to migrations/) as golang-migrate would read it."""
    parts = relative.split("/")
    if len(parts) > 2 or any(p.startswith(".") for p in parts):
        return None
    parsed = parse_migration_name(parts[-1])
    if parsed is None or parsed[3] != "sql":
        return None
    digits, title, direction, _ = parsed
    return _File(relative=relative, version=int(digits), digits=digits, title=title,
                 direction=direction, environment=parts[0] if len(parts) == 2 else None)


@dataclass
class _Snapshot:
    """One service's migrations at the base, or in the working tree."""

    files: dict[str, _File] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    dependencies: bytes | None = None


def _tree_snapshots(repo: GitRepository, commit: str, root_rel: str,
                    *, with_contents: bool) -> dict[str, _Snapshot]:
    """``{service: snapshot}`` of every ``<service>/migrations/`` under the root at ``commit``."""
    prefix = "" if root_rel == "." else root_rel + "/"
    tree = repo.list_tree(commit, root_rel)
    located: dict[str, dict[str, str]] = defaultdict(dict)  # service -> {relative: blob}
    for path, blob in tree.items():
        parts = path[len(prefix):].split("/")
        if len(parts) >= 3 and parts[1] == "migrations":
            located[parts[0]]["/".join(parts[2:])] = blob
    blobs: dict[str, bytes] = {}
    if with_contents:
        blobs = repo.read_blobs(b for files in located.values() for b in files.values())
    snapshots: dict[str, _Snapshot] = {}
    for service, files in located.items():
        snapshot = _Snapshot()
        for relative, blob in files.items():
            if relative == DEPENDENCIES_FILE:
                snapshot.dependencies = blobs.get(blob)
                continue
            parsed = _parse(relative)
            if parsed is not None:
                snapshot.files[relative] = parsed
                if with_contents:
                    snapshot.contents[relative] = blobs[blob]
        snapshots[service] = snapshot
    return snapshots


def _working_snapshot(migrations_dir: Path) -> _Snapshot:
    """The migration files on disk (scanned directly, whatever discovery made of them)."""
    snapshot = _Snapshot()
    if not migrations_dir.is_dir():
        return snapshot
    for entry in sorted(migrations_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        candidates = sorted(entry.iterdir()) if entry.is_dir() else [entry]
        for path in candidates:
            if not path.is_file() or path.name in CONFIG_FILES:
                continue
            relative = path.relative_to(migrations_dir).as_posix()
            parsed = _parse(relative)
            if parsed is not None:
                snapshot.files[relative] = parsed
    dependencies = migrations_dir / DEPENDENCIES_FILE
    if dependencies.is_file():
        snapshot.dependencies = dependencies.read_bytes()
    return snapshot


def _read(migrations_dir: Path, relative: str) -> bytes:
    try:
        return (migrations_dir / relative).read_bytes()
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
    released = _tree_snapshots(repo, base.merge_base, root_rel, with_contents=True)
    tip = (released if base.commit == base.merge_base
           else _tree_snapshots(repo, base.commit, root_rel, with_contents=False))
    findings: list[Finding] = []
    for service in sorted(set(released) | set(project.services)):
        migrations_dir = root / service / "migrations"
        checker = _ServiceCheck(service, migrations_dir, released.get(service, _Snapshot()),
                                _working_snapshot(migrations_dir),
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
        gone: dict[str, _File] = {}
        for relative, file in sorted(self.old.files.items()):
            if relative in self.new.files:
                self._compare(file)
            else:
                gone[relative] = file
        successors = self._match_renames(gone, added)
        self._report_gone(gone, successors)
        self._report_added({rel: f for rel, f in added.items()
                            if rel not in {s.relative for s in successors.values()}})
        self._report_metadata()
        return self.findings

    def _where(self, file: _File, **extra: Any) -> dict[str, Any]:
        return {"service": self.service, "migration": file.migration_id,
                "environment": file.environment, **extra}

    def _compare(self, file: _File) -> None:
        old = _normalise(self.old.contents[file.relative])
        new = _normalise(_read(self.dir, file.relative))
        if old == new:
            return
        self.findings.append(EDITED.finding(
            f"{file.relative} exists at {self.base.ref} and was edited; databases that applied "
            f"{file.migration_id} will never run the edit",
            file=self.dir / file.relative, line=_first_changed_line(old, new),
            **self._where(file),
        ))

    def _match_renames(self, gone: dict[str, _File], added: dict[str, _File]) -> dict[str, _File]:
        """``{gone relative: the added file that replaces it}``: same version and direction
        (a new title, zero padding or directory), else identical content (a renumbering)."""
        successors: dict[str, _File] = {}
        free = dict(added)
        for relative, file in sorted(gone.items()):
            same_slot = [f for f in free.values() if f.slot == file.slot]
            if not same_slot:
                old = _normalise(self.old.contents[relative])
                same_slot = [f for f in free.values() if f.direction == file.direction
                             and _normalise(_read(self.dir, f.relative)) == old]
            if same_slot:
                successor = min(same_slot, key=lambda f: f.relative)
                successors[relative] = successor
                del free[successor.relative]
        return successors

    def _report_gone(self, gone: dict[str, _File], successors: dict[str, _File]) -> None:
        deleted: dict[int, list[_File]] = defaultdict(list)
        for relative, file in sorted(gone.items()):
            successor = successors.get(relative)
            if successor is None:
                deleted[file.version].append(file)
                continue
            edited = (_normalise(self.old.contents[relative])
                      != _normalise(_read(self.dir, successor.relative)))
            self.findings.append(RENAMED.finding(
                f"{file.relative} exists at {self.base.ref} and was renamed to "
                f"{successor.relative}{' and edited' if edited else ''}; deployed databases "
                f"know it as {_identity(file)}, the new name is {_identity(successor)}",
                file=self.dir / successor.relative, line=1 if edited else None,
                **self._where(successor),
            ))
        for _version, files in sorted(deleted.items()):
            names = ", ".join(f.relative for f in files)
            first = files[0]
            self.findings.append(DELETED.finding(
                f"{names} of {first.migration_id} exist{'s' if len(files) == 1 else ''} at "
                f"{self.base.ref} and {'was' if len(files) == 1 else 'were'} deleted; databases "
                "that applied it keep its effects",
                file=self.dir / first.relative, **self._where(first),
            ))

    def _report_added(self, added: dict[str, _File]) -> None:
        released: dict[tuple[int, str], _File] = {f.slot: f for f in self.old.files.values()}
        taken = {f.version: f for f in (*self.tip.files.values(), *self.old.files.values())}
        newest = max(taken, default=None)
        reported: set[int] = set()
        ordered = sorted(added.items(),  # up files first: they name the migration
                         key=lambda kv: (kv[1].version, kv[1].direction != "up", kv[0]))
        for relative, file in ordered:
            other = released.get((file.version, "up" if file.direction == "down" else "down"))
            if other is not None and file.slot not in released:
                self._report_added_half(relative, file, other)
                continue
            if newest is None or file.version > newest or file.version in reported:
                continue
            reported.add(file.version)
            owner = taken.get(file.version)
            if owner is not None:
                why = (f"reuses version {file.version}, which {owner.migration_id} already has "
                       f"at {self.base.ref}; databases that applied {owner.migration_id} take "
                       "it for applied and never run it")
            else:
                why = (f"is numbered at or below {newest}, the newest version of {self.service} "
                       f"at {self.base.ref}; golang-migrate silently skips it on databases that "
                       "are already at that version")
            self.findings.append(NOT_AFTER_BASE.finding(
                f"new migration {file.migration_id} {why}",
                file=self.dir / relative, **self._where(file),
            ))

    def _report_added_half(self, relative: str, file: _File, released: _File) -> None:
        """A file added to a migration that already shipped (typically its down file)."""
        is_down = file.direction == "down"
        self.findings.append(EDITED.finding(
            f"{file.relative} adds a{' down' if is_down else 'n up'} file to "
            f"{released.migration_id}, which exists at {self.base.ref}",
            file=self.dir / relative, line=1, severity=W if is_down else E,
            hint=("Check that the down file undoes exactly what the released up file does; "
                  "databases that applied the up file are not affected." if is_down else None),
            **self._where(file),
        ))

    def _report_metadata(self) -> None:
        if self.old.dependencies is None:
            return
        old_entries = _entries(self.old.dependencies, self.service)
        if old_entries is None:
            return  # unusable at the base: nothing reliable to compare with
        new_entries: dict[int, dict[str, Any]] | None = {}
        lines: dict[int, int] = {}
        path = self.dir / DEPENDENCIES_FILE
        if self.new.dependencies is not None:
            new_entries = _entries(self.new.dependencies, self.service)
            lines = _entry_lines(self.new.dependencies)
        if new_entries is None:
            return  # unusable now: the configuration checks report it
        released_ids = {f.version: f.migration_id for f in self.old.files.values()}
        for version, old_entry in sorted(old_entries.items()):
            migration_id = released_ids.get(version)
            if migration_id is None:
                continue  # an entry without a released migration: nothing was applied
            new_entry = new_entries.get(version)
            if new_entry == old_entry:
                continue
            if new_entry is None:
                what = ("its entry was removed" if self.new.dependencies is not None
                        else "dependencies.json was deleted")
            else:
                what = "changed " + "; ".join(_differences(old_entry, new_entry))
            self.findings.append(METADATA_CHANGED.finding(
                f"dependencies.json entry of {migration_id}, which exists at {self.base.ref}: "
                f"{what}",
                file=path, line=lines.get(version), service=self.service,
                migration=migration_id,
            ))


def _identity(file: _File) -> str:
    where = f" in {file.environment}/" if file.environment else ""
    return f"version {file.version}, id {file.migration_id}{where}"


def _entries(content: bytes, service: str) -> dict[int, dict[str, Any]] | None:
    """dependencies.json entries by integer version, normalised so that ``"1"`` and
    ``"000001"`` (as keys or in depends_on) compare equal; None when unusable."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    migrations = data.get("migrations") if isinstance(data, dict) else None
    if not isinstance(migrations, dict):
        return None
    entries: dict[int, dict[str, Any]] = {}
    for key, body in migrations.items():
        if not (isinstance(key, str) and key.isdigit()) or not isinstance(body, dict):
            continue
        entry = dict(body)
        if isinstance(entry.get("depends_on"), list):
            entry["depends_on"] = sorted(_normalise_ref(r, service) for r in entry["depends_on"])
        entry.setdefault("transactional", True)
        entry.setdefault("reversible", True)
        entries[int(key)] = entry
    return entries


def _normalise_ref(ref: Any, service: str) -> str:
    if not isinstance(ref, str):
        return json.dumps(ref)
    other, _, version = ref.rpartition(":")
    return f"{other or service}:{int(version)}" if version.isdigit() else ref


def _entry_lines(content: bytes) -> dict[int, int]:
    try:
        document = load_json(content.decode("utf-8"))
    except (UnicodeDecodeError, JsonSyntaxError):
        return {}
    migrations = document.value.get("migrations") if isinstance(document.value, dict) else None
    if not isinstance(migrations, dict):
        return {}
    return {int(key): document.line_of(("migrations", key))
            for key in migrations if isinstance(key, str) and key.isdigit()}


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{key} {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


# --- what a change touches ----------------------------------------------------------------------


def changed_services(project: Project, base_ref: str) -> set[str]:
    """Services of ``project`` whose ``migrations/`` differ from the merge base with
    ``base_ref`` (committed, uncommitted and untracked changes alike)."""
    root = Path(project.root)
    repo, base = _open(root, base_ref)
    root_rel = repo.relative(root)
    prefix = PurePosixPath(root_rel)
    touched: set[str] = set()
    for path in repo.changed_paths(base.merge_base, root_rel):
        parts = PurePosixPath(path).relative_to(prefix).parts
        if len(parts) >= 3 and parts[1] == "migrations" and parts[0] in project.services:
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
