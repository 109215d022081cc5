"""Which round-trips to run at all, and which environment tests which migration.

Two rules keep one defect from being reported several times:

* when the ``files`` check of a service has errors (duplicate versions, unpaired files, ...),
  golang-migrate would refuse the set, so the service's round-trip is not run; one item says so;
* a migration whose resolved order up to and including it is the same in several environments
  (a base migration, typically) has the same outcome in each: it is tested in the first of them
  and its findings name all of them; the others only apply it on their way to what differs.

With ``--migorch-changed-only`` a third rule keeps the history quiet and the run short: a
migration whose resolved prefix holds no migration the change touched ran exactly so at the
base, where it was tested; it is only applied, on the way to the first changed migration, which
is tested with everything after it (see :class:`~pytest_migorch.reports.selection.ChangeSelection`).

Pure: the project graph and the static findings, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.findings import Family, Finding
from pytest_migorch.model import Migration
from pytest_migorch.project.graph import ProjectGraph

__all__ = ["EnvironmentPlan", "files_block", "plan_environments"]


@dataclass
class EnvironmentPlan:
    """What the round-trip of one service does in one environment."""

    environment: str
    #: The service's migrations tested here, in order (their items are generated here).
    tested: list[Migration] = field(default_factory=list)
    #: version -> every environment the outcome stands for (this one first), when several.
    covers: dict[int, tuple[str, ...]] = field(default_factory=dict)
    #: Keys of the service's migrations tested in another environment: only applied here.
    elsewhere: frozenset[tuple[str, int]] = frozenset()
    #: Keys of the service's migrations before any changed one (``changed`` of
    #: :func:`plan_environments`): tested at the base, only applied here.
    history: frozenset[tuple[str, int]] = frozenset()
    #: Why the order cannot be resolved (the round-trip cannot run), or None.
    error: str | None = None

    @property
    def applied_only(self) -> frozenset[tuple[str, int]]:
        """Keys of the service's migrations this round-trip applies without testing them."""
        return self.elsewhere | self.history


def files_block(findings: Iterable[Finding], service: str) -> str | None:
    """Why ``service``'s round-trip is not run: its ``files`` check has errors; or None."""
    errors = [f for f in findings
              if f.service == service and f.family is Family.FILES and f.is_error]
    if not errors:
        return None
    codes = ", ".join(dict.fromkeys(f.code for f in errors))
    noun = "error" if len(errors) == 1 else "errors"
    return (f"the files check of {service} has {len(errors)} {noun} ({codes}), so golang-migrate "
            f"would refuse this set; the round-trip is not run until the files check passes")


def _file(migration: Migration) -> tuple[str, int, str]:
    return (migration.service, migration.version, str(migration.main_file.path))


def plan_environments(
    graph: ProjectGraph, service: str, environments: Sequence[str],
    changed: Callable[[Migration], bool] | None = None,
) -> dict[str, EnvironmentPlan]:
    """A plan per environment (in the order given): each migration tested where it first
    occurs with its resolved prefix, covering the later environments with the same prefix.

    With ``changed`` (which migrations a change touched, of any service), a migration with no
    changed one at or before it in the order is history: applied, not tested."""
    plans: dict[str, EnvironmentPlan] = {}
    # What determines a migration's outcome is every file applied up to and including it: its
    # prefix of the order. Prefixes are nodes of a trie (node, next file) -> node, so two
    # prefixes are equal exactly when their nodes are, found in linear time; comparing whole
    # prefixes was quadratic (20 million tuple items for one service of a 100-service repo).
    trie: dict[tuple[int, tuple[str, int, str]], int] = {}
    owners: dict[int, tuple[EnvironmentPlan, int]] = {}
    for environment in environments:
        plan = plans[environment] = EnvironmentPlan(environment)
        try:
            order = graph.order_all(environment, [service])
            tested_ids = {m.key for m in graph.order(service, environment)}
        except ConfigurationError as exc:
            plan.error = str(exc)
            continue
        elsewhere: set[tuple[str, int]] = set()
        history: set[tuple[str, int]] = set()
        prefix = 0  # the empty prefix
        reached_change = changed is None
        for migration in order:
            prefix = trie.setdefault((prefix, _file(migration)), len(trie) + 1)
            reached_change = reached_change or (changed is not None and changed(migration))
            if migration.key not in tested_ids:
                continue
            if not reached_change:
                history.add(migration.key)
                continue
            owner = owners.get(prefix)
            if owner is None:
                owners[prefix] = (plan, migration.version)
                plan.tested.append(migration)
                continue
            owner_plan, version = owner
            covered = owner_plan.covers.get(version, (owner_plan.environment,))
            owner_plan.covers[version] = (*covered, environment)
            elsewhere.add(migration.key)
        plan.elsewhere = frozenset(elsewhere)
        plan.history = frozenset(history)
    return plans
