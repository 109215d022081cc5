"""INVALID indexes a non-transactional migration left, and the statements that clear them.

A ``CREATE INDEX CONCURRENTLY`` that fails (duplicates under a UNIQUE) or is killed leaves an
index PostgreSQL marks INVALID (``pg_index.indisvalid = false``): every write maintains it, no
read uses it, and the retry's ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` sees the name and
skips the build, so the index is never there. Before retrying, each must be dropped; the runner
names them and prints the exact statement wherever it reports a dirty migration (its failure,
the recovery of an interrupted run, ``status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

__all__ = ["InvalidIndex", "find_invalid_indexes", "drop_advice", "recorded_advice"]

_ADVICE_START = "\nIt left "

_QUERY = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind = 'I'
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname = %s ORDER BY 1
"""


@dataclass(frozen=True)
class InvalidIndex:
    """One INVALID index: its qualified, quoted name; whether it is on a partitioned table
    (which DROP INDEX CONCURRENTLY cannot drop)."""

    name: str
    partitioned: bool = False

    @property
    def drop(self) -> str:
        return f"DROP INDEX {'' if self.partitioned else 'CONCURRENTLY '}{self.name};"


def find_invalid_indexes(conn: psycopg.Connection[Any], schema: str) -> list[InvalidIndex]:
    """The INVALID indexes of ``schema`` (the service's), by name."""
    return [InvalidIndex(name, bool(partitioned))
            for name, partitioned in conn.execute(_QUERY, [schema]).fetchall()]


def drop_advice(indexes: list[InvalidIndex]) -> str:
    """What to say of them, or "" when there are none."""
    if not indexes:
        return ""
    return (f"{_ADVICE_START}{len(indexes)} INVALID index(es) (a failed or killed CREATE INDEX "
            "CONCURRENTLY; a retry's IF NOT EXISTS would skip them and the index would never "
            "be built). Drop them before retrying:\n"
            + "\n".join(f"  {index.drop}" for index in indexes))


def recorded_advice(error_message: str | None) -> str:
    """The :func:`drop_advice` a recorded failure or recovery message ends with, or "": what
    the refusal to run over a dirty migration repeats."""
    text = error_message or ""
    start = text.find(_ADVICE_START)
    return text[start:] if start >= 0 else ""
