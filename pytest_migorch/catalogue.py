"""Every rule pytest-migorch knows, collected from the modules that detect them.

Each checking module owns its rules (``RULES``); this module only gathers them so the catalogue
can be documented, looked up by code, and tested for uniqueness.
"""

from __future__ import annotations

from importlib import import_module

from pytest_migorch.findings import Rule

__all__ = ["all_rules", "rule_by_code", "RULE_MODULES"]

#: Modules that define rules, in the order the catalogue lists them.
RULE_MODULES = (
    "pytest_migorch.project.config",
    "pytest_migorch.project.discovery",
    "pytest_migorch.project.graph",
    "pytest_migorch.sql.analysis",
    "pytest_migorch.checks.migration",
    "pytest_migorch.checks.rules",
    "pytest_migorch.checks.custom",
    "pytest_migorch.roundtrip.engine",
    "pytest_migorch.vcs.integrity",
)


def all_rules() -> list[Rule]:
    """Every rule, in catalogue order (family modules in order, rules as each defines them)."""
    rules: list[Rule] = []
    for name in RULE_MODULES:
        rules.extend(getattr(import_module(name), "RULES"))
    return rules


def rule_by_code(code: str) -> Rule | None:
    return next((rule for rule in all_rules() if rule.code == code), None)


def catalogue_markdown() -> str:
    """The findings catalogue as a Markdown table per family (docs/findings.md is made from it)."""
    lines: list[str] = []
    rules = all_rules()
    for family in dict.fromkeys(rule.family for rule in rules):
        lines += ["", f"### {family.value}", "",
                  "| code | name | severity | what it means | what to do |",
                  "|---|---|---|---|---|"]
        for rule in (r for r in rules if r.family is family):
            lines.append(f"| `{rule.code}` | {rule.name} | {rule.severity.value} | "
                         f"{rule.summary} | {rule.hint} |")
    return "\n".join(lines).lstrip("\n") + "\n"


if __name__ == "__main__":  # python -m pytest_migorch.catalogue > docs/findings-table.md
    print(catalogue_markdown(), end="")
