"""Every rule pytest-migorch knows, collected from the modules that detect them.

Each checking module owns its rules (``RULES``); this module only gathers them so the catalogue
can be documented, looked up by code, and tested for uniqueness.
"""

from __future__ import annotations

from importlib import import_module

from .findings import Rule

__all__ = ["all_rules", "rule_by_code", "RULE_MODULES"]

#: Modules that define rules, in the order the catalogue lists them.
RULE_MODULES = (
    "pytest_migorch.config",
    "pytest_migorch.discovery",
    "pytest_migorch.graph",
)


def all_rules() -> list[Rule]:
    """Every rule, in catalogue order (family modules in order, rules as each defines them)."""
    rules: list[Rule] = []
    for name in RULE_MODULES:
        rules.extend(getattr(import_module(name), "RULES"))
    return rules


def rule_by_code(code: str) -> Rule | None:
    return next((rule for rule in all_rules() if rule.code == code), None)
