"""``migorch squash``: replace a service's oldest migrations by one, proven equivalent.

The public surface is :func:`squash` and its :class:`SquashResult`; the steps live in their own
modules (selection, replay, dump, proof, deployed, rewrite) so each is tested on its own.
This package sits above ``roundtrip``/``deploy`` (it reads deployed databases' records) and
below the front ends.
"""

from __future__ import annotations

from pytest_migorch.squash.dump import DumpStep, SquashedSql, clean_dump, pg_dump_step
from pytest_migorch.squash.squasher import SquashResult, squash

__all__ = ["DumpStep", "SquashResult", "SquashedSql", "clean_dump", "pg_dump_step", "squash"]
