"""Whether a failing up is a consequence of an earlier failure rather than a defect of its own.

When an up fails, the migrations after it run on a database that lacks what it would have
created. Their failures are not new defects: reporting each as ``DB001`` turns one mistake into a
page of errors. Two ways to tell a consequence from a defect, both from what is known without a
second database:

* a set that declares no ``depends_on`` is applied by golang-migrate in version order, so every
  migration needs all earlier ones: any earlier failure explains a later failing up;
* with declared dependencies, an earlier failure explains a later one when PostgreSQL says the
  failing statement needs an object (``relation "x" does not exist``) that the SQL analysis says
  the earlier migration creates.

Pure: PostgreSQL's message and the SQL analysis of files, no connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_migorch.model import Migration
from pytest_migorch.sql.analysis import analyse_sql
from pytest_migorch.sql.facts import Role

__all__ = ["EarlierFailure", "created_names", "explaining_failure", "missing_object"]

# PostgreSQL's "does not exist" messages for objects a migration can create, e.g.
# relation "app.users" does not exist / function f(integer) does not exist.
_MISSING = re.compile(
    r'^(?P<kind>relation|type|function|procedure|schema|sequence|index|view|domain)\s+'
    r'"?(?P<name>[^"(\s]+)"?(?:\(.*\))?\s+does not exist'
)


@dataclass(frozen=True)
class EarlierFailure:
    """A migration before this one in the order that failed (or was not tested)."""

    migration: Migration
    reason: str


def missing_object(pg_message: str) -> tuple[str, str] | None:
    """``(kind, name)`` of the object PostgreSQL says does not exist, lower case, or None."""
    found = _MISSING.match(pg_message.strip())
    if found is None:
        return None
    return found.group("kind"), found.group("name").lower()


def created_names(migration: Migration) -> set[str]:
    """Names (unqualified, lower case) of the objects the SQL analysis says the up creates.

    A rename's new name counts: after it the object exists under that name. An unreadable file
    creates nothing we can know of."""
    if migration.up is None:
        return set()
    try:
        text = migration.up.read_text()
    except (OSError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for statement in analyse_sql(text).statements:
        for ref in statement.objects:
            if ref.role is Role.CREATED:
                names.add(ref.name.lower())
            elif ref.role is Role.RENAMED and ref.new_name:
                names.add(ref.new_name.lower())
    return names


def explaining_failure(
    pg_message: str, earlier: Iterable[EarlierFailure], *, implicit_order: bool,
    created: dict[tuple[str, int], set[str]] | None = None,
) -> tuple[EarlierFailure, str] | None:
    """The earlier failure that explains a failing step and why, or None when it is its own.

    ``implicit_order``: the set declares no ``depends_on``, so every earlier failure counts; the
    one that creates the missing object is named when there is one, otherwise the first (where
    golang-migrate would have stopped). ``created`` caches :func:`created_names` by key."""
    failures = list(earlier)
    if not failures:
        return None
    missing = missing_object(pg_message)
    if missing is not None:
        name = missing[1].rsplit(".", 1)[-1]
        for failure in failures:
            key = failure.migration.key
            names = created.get(key) if created is not None else None
            if names is None:
                names = created_names(failure.migration)
                if created is not None:
                    created[key] = names
            if name in names:
                return failure, (f"{failure.migration.id} creates {missing[0]} {name}, which "
                                 "the failing statement needs")
    if not implicit_order:
        return None
    return failures[0], ("with no depends_on in the set, golang-migrate applies migrations in "
                         "version order, so each needs every earlier one")
