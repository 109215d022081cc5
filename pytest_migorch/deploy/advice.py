"""Recovery commands are printed once: where they belong, never again inside stored errors.

A failed non-transactional step's error ends with the two ``migorch force`` commands that
resolve it (:func:`~pytest_migorch.deploy.applying.force_advice`), and that text is recorded in
the tracking row. ``status``, ``list``, the history and a run's JSON show recorded errors next
to the advice of their own, so they show those errors without the commands: once the state
changes (after ``force``) the recorded ones would be stale as well as repeated.
"""

from __future__ import annotations

import re

__all__ = ["without_force_commands"]

#: A command line of :func:`~pytest_migorch.deploy.applying.force_advice`.
_FORCE_LINE = re.compile(r"\n  migorch force \S+ -?\d+ +#[^\n]*")


def without_force_commands(text: str | None) -> str | None:
    """``text`` without its ``migorch force`` lines (None stays None)."""
    if not text or "migorch force" not in text:
        return text
    return _FORCE_LINE.sub("", text).replace(
        "then record which:", "then record which with `migorch force`")
