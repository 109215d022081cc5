"""Which migrations a ``down`` rolls back, before dependents are added: the newest ``--steps``,
everything above ``--version``, or exactly the one ``--only`` names.

No database access: the runner reads the service's state and asks here. ``--only`` exists so
a bad migration deep in the history can be undone without rolling back the unrelated newer
ones; the runner's dependents check still refuses when anything applied depends on it.
"""

from __future__ import annotations

from pytest_migorch.deploy.planning import Plan, ServiceState
from pytest_migorch.deploy.results import Refused
from pytest_migorch.errors import UsageError
from pytest_migorch.model import Migration, Project

__all__ = ["check_down_options", "chosen_for_down", "protected_rollback_refusal"]


def check_down_options(project: Project, service: str, steps: int | None,
                        version: int | None, only: int | None) -> None:
    """Bad ``down`` options are usage errors, found before connecting."""
    if sum(option is not None for option in (steps, version, only)) > 1:
        raise UsageError("pass one of --steps, --version or --only")
    if steps is not None and steps < 1:
        raise UsageError("--steps must be at least 1")
    if version is not None and version != 0 and version not in project.services[service].migrations:
        raise UsageError(f"{service} has no migration with version {version} "
                         "(use 0 to roll back everything)")
    if only is not None and only not in project.services[service].migrations:
        raise UsageError(f"{service} has no migration with version {only} (--only takes the "
                         "version of one applied migration)")


def chosen_for_down(state: ServiceState, env: str, steps: int | None, version: int | None,
                     only: int | None) -> list[Migration]:
    """The migrations of one service a ``down`` asks for, before dependents are added."""
    applied = state.applied
    if only is not None:
        chosen = [m for m in applied if m.version == only]
        if not chosen:
            migration = state.service.migrations[only]
            raise Refused(f"nothing was rolled back: {migration.qualified_id} is not applied in "
                          f"{env!r}")
        return chosen
    if version is not None:
        return [m for m in applied if m.version > version]
    return list(reversed(applied))[: steps or 1]


def protected_rollback_refusal(plan: Plan) -> str:
    """Why a rollback in a protected environment waits for ``--yes``, naming what each step's
    down file destroys (its SQL read by the risk rules), so the person confirming knows."""
    lost = [f"  {step.label}: {what}" for step in plan.steps for what in step.loses]
    risky = [step.label for step in plan.high_risk if not step.loses]
    text = f"environment {plan.environment!r} is protected: rolling back there loses data"
    if lost:
        text += ":\n" + "\n".join(lost)
    if risky:
        text += ("\n  high risk without a named loss: " + ", ".join(risky))
    return text + "\nReview the plan, then pass --yes to roll back."
