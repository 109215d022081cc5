"""The two tracking writes every migration makes, as statements prepared once per session.

A migration's ``running`` row and its outcome are each a data-modifying CTE (the row and its
history event) that PostgreSQL parsed and planned again for every migration: ~0.27 ms of
server time per write, against ~0.13 ms to ``EXECUTE`` the same statement prepared. Here each
write is rendered twice by the same builder (:class:`~pytest_migorch.deploy.tracking_sql.
WriteText`): once with placeholders, which is the prepared statement's text, and once for its
values, which become the ``EXECUTE``'s literal arguments. The statement is exactly the one
that would have been sent; only its values travel apart. ``EXECUTE`` is a plain statement, so
the write still travels inside the same simple query as before (the session's settings
ahead of the ``running`` row, the migration's SQL ahead of the outcome).

A prepared statement lives in the session, and a migration may end it: ``DEALLOCATE ALL``,
``DISCARD ALL``, dynamic SQL doing either. So:

- a step whose file mentions ``DEALLOCATE`` or ``DISCARD`` anywhere (dynamic SQL included) gets
  its outcome written without a prepared statement, and the prepared ones are forgotten after
  it (prepared again, under new names, for the next step);
- whatever slips through shows as PostgreSQL's "prepared statement ... does not exist" naming
  one of ours (:meth:`PreparedWrites.lost`): nothing of that query was applied (one
  transaction), so the runner forgets them and sends the same write without one; a batch
  (the migration and its outcome, rolled back together) runs again once the same way.

Statements are prepared only outside a transaction (a ``PREPARE`` must not be undone with a
caller's transaction, nor fail inside one); any failure to prepare turns them off for the
session and the writes go as literal text, as before.
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any, Callable

import psycopg
from psycopg import sql

from pytest_migorch.deploy.tracking_sql import Literal, WriteText

__all__ = ["PreparedWrites", "may_deallocate"]

log = logging.getLogger(__name__)

#: Unique names on any connection, whichever Tracking prepared first.
_NAMES = itertools.count(1)
_NAME_PREFIX = "migorch_tracking_"
#: At most this many shapes per service and session (there are two in use).
_LIMIT = 8
_ENDS_PREPARED = re.compile(r"deallocate|discard", re.IGNORECASE)


def may_deallocate(text: str) -> bool:
    """Whether SQL ``text`` might end prepared statements (any mention, to be safe)."""
    return _ENDS_PREPARED.search(text) is not None


class _Placeholders:
    """A :data:`Literal` that records each value and renders ``$1``, ``$2``, ..."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


class PreparedWrites:
    """The prepared tracking writes of one service's tables on one session."""

    def __init__(self, conn: psycopg.Connection[Any], text: WriteText) -> None:
        self.conn = conn
        self.text = text
        #: Prepared statement text -> its quoted name.
        self._names: dict[str, str] = {}
        self.disabled = False

    def render(self, build: Callable[[Literal], str], *, prepared: bool) -> str:
        """The write ``build(lit)`` renders: an ``EXECUTE`` of its prepared statement when
        ``prepared`` allows it and the statement is (or now gets) prepared, else its text."""
        if not prepared or self.disabled:
            return build(self.text.literal)
        placeholders = _Placeholders()
        body = build(placeholders)
        name = self._names.get(body) or self._prepare(body)
        if name is None:
            return build(self.text.literal)
        arguments = ", ".join(self.text.literal(value) for value in placeholders.values)
        return f"EXECUTE {name}({arguments})"

    def _prepare(self, body: str) -> str | None:
        idle = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if not idle or len(self._names) >= _LIMIT:
            return None
        name = sql.Identifier(f"{_NAME_PREFIX}{next(_NAMES)}").as_string(self.conn)
        try:
            self.conn.execute(f"PREPARE {name} AS {body}", prepare=False)
        except psycopg.Error as exc:  # never worth failing a deploy for: write as text
            log.debug("tracking writes not prepared: %s", exc)
            self.disabled = True
            return None
        self._names[body] = name
        return name

    def forget(self) -> None:
        """The session may have lost them: prepare again (under new names) when next used."""
        self._names.clear()

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` says one of these statements is gone (then they are forgotten)."""
        if not isinstance(exc, psycopg.errors.InvalidSqlStatementName):
            return False
        message = str(exc)
        gone = _NAME_PREFIX in message
        if gone:
            self.forget()
        return gone
