"""Which findings a run reports: those about the change, with the history only counted.

A team that adopts pytest-migorch on two hundred released migrations must not read every
historical finding again on each pull request: the few about the change drown. A
:class:`Selection` splits findings into those shown and those held back (counted in one line,
:func:`hidden_line`). Two selections exist:

- :class:`ChangeSelection` (a git base): static findings only for migrations that are new or
  changed against the merge base, and for configuration entries that changed. Integrity and
  database findings are always shown: they are about the change by definition.
- :class:`~pytest_migorch.reports.baseline.BaselineSelection` (a baseline file): findings that
  are not recorded in it.

The selection only decides what is printed; every check still runs (the round-trip included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from pytest_migorch.findings import Family, Finding
from pytest_migorch.model import Project, Service

if TYPE_CHECKING:  # git is loaded by a --base selection only
    from pytest_migorch.vcs.git import GitRepository

__all__ = [
    "Selection", "Split", "ChangeSelection", "MigrationKey", "hidden_line", "split_all",
    "ALWAYS_SHOWN",
]

#: ``(service, migration id)``.
MigrationKey = tuple[str, str]

#: Families never held back: they are about the change (integrity) or from running it (database).
ALWAYS_SHOWN = frozenset({Family.INTEGRITY, Family.DATABASE})

CONFIG_FILES = ("dependencies.json", "environments.json")


class Selection(Protocol):
    """Decides whether a finding is shown or held back as history."""

    def shows(self, finding: Finding) -> bool: ...


@dataclass
class Split:
    """Findings shown, and those held back (counted, not printed)."""

    shown: list[Finding] = field(default_factory=list)
    hidden: list[Finding] = field(default_factory=list)

    @property
    def hidden_migrations(self) -> set[MigrationKey]:
        return {(f.service or "", f.migration) for f in self.hidden if f.migration}

    def to_json(self) -> dict[str, Any]:
        return {"findings": len(self.hidden), "migrations": len(self.hidden_migrations)}


def split_all(findings: Iterable[Finding], selections: Iterable[Selection]) -> Split:
    """Findings every selection shows, and the rest. Every selection sees every finding (no
    short cut): a baseline counts what it matched, to name the entries that matched nothing."""
    chosen = list(selections)
    split = Split()
    for finding in findings:
        if all([selection.shows(finding) for selection in chosen]):
            split.shown.append(finding)
        else:
            split.hidden.append(finding)
    return split


def hidden_line(count: int, migrations: int, *, what: str = "released",
                flag: str = "--all-findings") -> str:
    """``425 findings in 149 released migrations not shown (--all-findings shows them)``."""
    noun = "finding" if count == 1 else "findings"
    where = f" in {migrations} {what} migration{'' if migrations == 1 else 's'}" \
        if migrations else ""
    return f"{count} {noun}{where} not shown ({flag} shows them)"


@dataclass
class ChangeSelection:
    """Shows findings of migrations that are new or changed against a git base.

    ``changed`` are the migrations with an added or edited file; ``changed_entries`` the
    migrations whose dependencies.json entry differs from the base; ``changed_files`` every
    changed path under the services root (for findings about a whole file);
    ``rewritten_services`` the services with a change no single migration accounts for (a
    deleted file, environments.json, a setting of dependencies.json outside its entries): every
    migration of theirs may run differently, so :meth:`migration_changed` says so of all.
    """

    changed: set[MigrationKey] = field(default_factory=set)
    changed_entries: set[MigrationKey] = field(default_factory=set)
    changed_files: set[Path] = field(default_factory=set)
    touched_services: set[str] = field(default_factory=set)
    rewritten_services: set[str] = field(default_factory=set)

    @classmethod
    def against(cls, project: Project, base_ref: str) -> ChangeSelection:
        """Compare the working tree under ``project.root`` with the merge base of ``base_ref``.

        Raises UsageError (via :mod:`pytest_migorch.vcs`) outside a git work tree or for a
        ref that names no commit.
        """
        # Here, not at import: integrity loads the pipeline (config, jsonschema), which a
        # warm `validate` served from its result cache never needs.
        from pytest_migorch.vcs.git import GitRepository
        from pytest_migorch.vcs.integrity import verify_base_ref

        root = Path(project.root)
        merge_base = verify_base_ref(root, base_ref).merge_base
        repo = GitRepository.containing(root)
        root_rel = repo.relative(root)
        selection = cls()
        top = repo.toplevel.resolve()
        for path in repo.changed_paths(merge_base, root_rel):
            selection.changed_files.add(top / PurePosixPath(path))
        for service in project.services.values():
            selection._add_service(repo, merge_base, top, service)
        return selection

    def _add_service(self, repo: GitRepository, merge_base: str, top: Path,
                     service: Service) -> None:
        migrations_dir = service.migrations_dir.resolve()
        if not any(migrations_dir in path.parents for path in self.changed_files):
            return  # no changed file, so no changed migration or entry either
        self.touched_services.add(service.name)
        accounted: set[Path] = set()
        for migration in service.migrations.values():
            files = [f.path.resolve() for f in (migration.up, migration.down) if f is not None]
            if any(path in self.changed_files for path in files):
                self.changed.add((service.name, migration.id))
            accounted.update(files)
        dependencies = migrations_dir / CONFIG_FILES[0]
        if dependencies in self.changed_files:
            accounted.add(dependencies)
            old_document = _document_at(repo, merge_base, dependencies.relative_to(top).as_posix())
            new_document = _document(_read(dependencies))
            old, new = _entries(old_document), _entries(new_document)
            ids = {m.version: m.id for m in service.migrations.values()}
            for version in set(old) | set(new):
                if old.get(version) != new.get(version):
                    if version in ids:
                        self.changed_entries.add((service.name, ids[version]))
                    else:  # the entry of a migration that is gone
                        self.rewritten_services.add(service.name)
            if _settings(old_document) != _settings(new_document):
                self.rewritten_services.add(service.name)
        if any(migrations_dir in path.parents and path not in accounted
               for path in self.changed_files):
            self.rewritten_services.add(service.name)

    def migration_changed(self, service: str, migration_id: str) -> bool:
        """Whether the migration may run differently than at the base: its files or entry
        changed, or its service was :attr:`rewritten <rewritten_services>`."""
        key = (service, migration_id)
        return (service in self.rewritten_services or key in self.changed
                or key in self.changed_entries)

    def shows(self, finding: Finding) -> bool:
        if finding.family in ALWAYS_SHOWN or finding.service is None:
            return True
        if finding.migration is not None:
            # A changed entry is a changed migration: its declared tables and risk are checked
            # against its SQL, so SQL and risk findings may come from the entry alone.
            key = (finding.service, finding.migration)
            return key in self.changed or key in self.changed_entries
        if finding.file is not None:
            return finding.file.resolve() in self.changed_files
        return finding.service in self.touched_services


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _document_at(repo: GitRepository, commit: str, path: str) -> Any:
    blobs = repo.list_tree(commit, path)
    contents = repo.read_blobs(blobs.values())
    return _document(contents.get(blobs.get(path, ""), b""))


def _document(content: bytes) -> Any:
    """A dependencies.json's JSON, or None when it does not parse (the configuration checks
    report that, and every entry then counts as changed)."""
    try:
        return json.loads(content.decode("utf-8-sig"))
    except ValueError:
        return None


def _entries(document: Any) -> dict[int, Any]:
    """``{version: raw entry}`` of a dependencies.json document."""
    migrations = document.get("migrations", {}) if isinstance(document, dict) else {}
    if not isinstance(migrations, dict):
        return {}
    return {int(key): value for key, value in migrations.items()
            if isinstance(key, str) and key.isdigit()}


def _settings(document: Any) -> Any:
    """Everything of a dependencies.json but its entries (schema, migrations_table, ...)."""
    if not isinstance(document, dict):
        return document
    return {key: value for key, value in document.items() if key != "migrations"}
