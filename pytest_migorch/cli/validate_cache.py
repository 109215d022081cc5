"""``migorch validate`` with whole results cached: a warm run reads and hashes files and prints.

:class:`CachedValidation` decides, before anything is parsed, whether the findings of this exact
tree, tool and options are already known (:mod:`pytest_migorch.project.result_cache`). When they
are, ``validate`` prints them without loading the project, the SQL analyser or jsonschema. When
not, the ordinary pipeline runs with each service's migration findings cached on their own, so
an edit to one service re-checks that service only; the run's findings are then stored, unless
the tree changed while it ran.

Not cached (the pipeline runs as before): ``--no-cache``; a tree with a team's own check
modules, which may read anything; and whole results under ``--base`` (git decides part of them)
or ``--format markdown`` (it reads the project), where the per-service entries still serve.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_migorch.findings import Finding
from pytest_migorch.project.fingerprint import TreeFingerprint, fingerprint_tree
from pytest_migorch.project.pyproject import find_tool_settings
from pytest_migorch.project.result_cache import (
    ResultCache,
    ServiceFindings,
    decode_findings,
    encode_findings,
    root_options,
)

if TYPE_CHECKING:  # the pipeline (config, graph, jsonschema) is loaded only on a miss
    from pytest_migorch.model import Service
    from pytest_migorch.project.validation import MigrationAnalyser

__all__ = ["CachedValidation", "CUSTOM_CHECKS_GROUP", "declares_custom_checks"]

#: :data:`pytest_migorch.checks.custom.ENTRY_POINT_GROUP`, named here so that deciding whether a
#: tree has custom checks does not import the checks (and sqlglot with them).
CUSTOM_CHECKS_GROUP = "pytest_migorch.checks"


def declares_custom_checks(root: Path) -> bool:
    """Whether a team's check modules run on ``root`` (``[tool.migorch] checks`` above it or an
    installed entry point): their findings may depend on anything, so nothing is cached."""
    return bool(find_tool_settings(root).checks) or bool(
        list(entry_points(group=CUSTOM_CHECKS_GROUP)))


@dataclass
class CachedValidation:
    """One ``validate`` run's cache: the tree's fingerprint and the keys it gives."""

    cache: ResultCache
    fingerprint: TreeFingerprint
    #: Whether the whole run's findings may be served and stored (not under --base, markdown).
    whole: bool
    _services: ServiceFindings | None = field(default=None, repr=False)

    @classmethod
    def prepare(cls, args: argparse.Namespace, root: Path, *, whole: bool
                ) -> CachedValidation | None:
        """The cache of this run, or None when nothing may be cached (see the module doc)."""
        store = getattr(args, "analysis_store", None)
        if getattr(args, "no_cache", False) or store is None or declares_custom_checks(root):
            return None
        fingerprint = fingerprint_tree(root)
        if fingerprint is None:
            return None
        options = {"strict": bool(args.strict), **root_options(root)}
        return cls(ResultCache(store, options), fingerprint, whole)

    @property
    def services(self) -> list[str]:
        """The services discovery will find: the root's directories with ``migrations/``."""
        return sorted(self.fingerprint.services)

    def _run_key(self, services: list[str]) -> str:
        return self.cache.key("run", self.fingerprint.digest, "\0".join(services))

    def findings(self, services: list[str]) -> list[Finding] | None:
        """The whole run's findings, when this tree was validated with these options before.

        The run's entry lists one part per service (and one for the rest), each its own entry:
        a run with thousands of findings would exceed what one entry of the store may hold."""
        if not self.whole:
            return None
        run = self.cache.get(self._run_key(services))
        if run is None:
            return None
        findings: list[Finding] = []
        for key in run["parts"]:
            part = self.cache.get(key)
            if part is None:
                return None
            findings.extend(decode_findings(part["findings"]))
        return findings

    def save(self, services: list[str], findings: list[Finding]) -> None:
        """Keep the run's findings and each service's, if the tree is still the one
        fingerprinted at the start (a file saved during the run would otherwise pair old
        contents with new findings). One check of the whole tree covers every entry."""
        again = fingerprint_tree(self.fingerprint.root)
        if again is None or again.digest != self.fingerprint.digest:
            return
        if self._services is not None:
            self._services.flush()
        if not self.whole:
            return
        run_key = self._run_key(services)
        by_part: dict[str, list[Finding]] = {}
        for finding in findings:  # already in their final order: parts keep it
            by_part.setdefault(finding.service or "", []).append(finding)
        parts = []
        for name, part in by_part.items():
            parts.append(self.cache.key("part", run_key, name))
            self.cache.put(parts[-1], {"findings": encode_findings(part)})
        self.cache.put(run_key, {"parts": parts})

    def analyser(self, base: MigrationAnalyser) -> MigrationAnalyser:
        """``base`` with each service's findings cached by the digest of its ``migrations/``."""
        self._services = ServiceFindings(self.cache, self.fingerprint, deferred=True)
        return self._services.analyser(base)

    def known(self, service: Service) -> bool:
        """Whether ``service``'s migration findings will come from the cache (after
        :meth:`analyser`): its SQL need not be analysed."""
        return self._services is not None and self._services.known(service)
