"""A small model of a service's schema, built by replaying the facts of its migrations in order.

One statement's facts say what it names; what it *changes* can depend on what earlier
migrations did, and PostgreSQL's own account of a migration (the round-trip probes) follows the
real schema. The model closes that gap for what is knowable from the SQL alone:

- ``DROP INDEX i`` and ``ALTER INDEX i RENAME`` change the table ``i`` was created on;
- ``ALTER SEQUENCE s`` changes the table that owns ``s`` (serial, identity, ``OWNED BY``);
- ``TRUNCATE t CASCADE`` also empties the tables whose foreign keys reference ``t``;
- dropping a foreign key (``DROP CONSTRAINT``, or the table that has it) changes the referenced
  table too (PostgreSQL drops the key's triggers on it);
- ``CREATE ... IF NOT EXISTS`` of an object that exists, and a ``DROP``/``ALTER TABLE`` of a table
  that never existed (``IF EXISTS``, or a ``DO`` block's condition), change nothing;
- renames and ``SET SCHEMA`` move what later statements refer to.

Absence is only knowledge for schemas whose whole history was replayed from empty
(``known_schemas``) and while every statement so far could be analysed (``exact``): a statement
nobody can see into may have created anything. The model is pure data, no database.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from pytest_migorch.sql.analysis import StatementAnalysis
from pytest_migorch.sql.cursor import QName
from pytest_migorch.sql.facts import Op, OpKind, Role
from pytest_migorch.sql.schema_facts import NOTHING, SchemaDetail

__all__ = ["Key", "Effect", "SchemaModel"]

#: ``(schema, name)`` of an object, schema always filled in.
Key = tuple[str, str]


@dataclass
class Effect:
    """What the model adds to one statement's facts: tables it changes that the facts do not
    name (``extra``, with a role) and named tables it does not change (``void``)."""

    extra: list[tuple[Key, Role]] = field(default_factory=list)
    void: set[Key] = field(default_factory=set)


@dataclass
class SchemaModel:
    """Tables, views, indexes (-> table), sequences (-> owning table) and foreign keys."""

    known_schemas: set[str] = field(default_factory=set)
    tables: set[Key] = field(default_factory=set)
    views: set[Key] = field(default_factory=set)
    indexes: dict[Key, Key] = field(default_factory=dict)
    sequences: dict[Key, Key | None] = field(default_factory=dict)
    #: ``(table, constraint name) -> referenced table``.
    foreign_keys: dict[tuple[Key, str], Key] = field(default_factory=dict)
    exact: bool = True

    def copy(self) -> SchemaModel:
        """An independent copy; keys are tuples of strings, so copying the containers is enough
        (and far cheaper than ``copy.deepcopy``: a copy is kept for every migration)."""
        return SchemaModel(
            known_schemas=set(self.known_schemas), tables=set(self.tables),
            views=set(self.views), indexes=dict(self.indexes), sequences=dict(self.sequences),
            foreign_keys=dict(self.foreign_keys), exact=self.exact)

    def never_existed(self, key: Key) -> bool:
        """True when the model knows ``key`` is no table (so a change to it is a no-op)."""
        return self.exact and key[0] in self.known_schemas and key not in self.tables

    def resolve(self, qname: QName, schema: str, known: Container[Key]) -> Key:
        """The key an unqualified name resolves to among ``known`` objects: the service's
        schema, then public (the round-trip's and the runner's search_path)."""
        if qname[0] is not None:
            return (qname[0], qname[1])
        for candidate in ((schema, qname[1]), ("public", qname[1])):
            if candidate in known:
                return candidate
        return (schema, qname[1])

    def referencing(self, table: Key) -> set[Key]:
        """Tables whose foreign keys reference ``table``, directly or through others."""
        found: set[Key] = set()
        todo = [table]
        while todo:
            target = todo.pop()
            for (owner, _), referenced in self.foreign_keys.items():
                if referenced == target and owner not in found and owner != table:
                    found.add(owner)
                    todo.append(owner)
        return found

    # --- replaying ----------------------------------------------------------------------------

    def apply(self, statement: StatementAnalysis, schema: str,
              detail: SchemaDetail = NOTHING) -> Effect:
        """Replay one statement (run with ``schema`` first on the search_path)."""
        effect = Effect()
        if not statement.analysed:
            self.exact = False
            return effect
        for op in statement.ops:
            self._apply_op(op, schema, detail, effect)
        self._apply_detail(detail, schema, effect)
        return effect

    def _apply_op(self, op: Op, schema: str, detail: SchemaDetail, effect: Effect) -> None:
        name: QName = (op.schema, op.name or "")
        handler = _HANDLERS.get(op.op)
        if handler is not None and op.name:
            handler(self, op, name, schema, detail, effect)

    def _apply_detail(self, detail: SchemaDetail, schema: str, effect: Effect) -> None:
        if detail.table is None:
            return
        table = self.resolve(detail.table, schema, self.tables)
        if table in effect.void:
            return
        for constraint in detail.dropped_constraints:
            referenced = self.foreign_keys.pop((table, constraint), None)
            if referenced is not None and referenced != table:
                effect.extra.append((referenced, Role.ALTERED))
        for constraint, target in detail.foreign_keys:
            self.foreign_keys[(table, constraint)] = self.resolve(target, schema, self.tables)
        for sequence, _ in detail.owned_sequences:
            self.sequences[(sequence[0] or table[0], sequence[1])] = table

    def drop_table(self, table: Key, cascade: bool, effect: Effect) -> None:
        """Forget ``table`` and what hangs off it; tables that lose a foreign key change."""
        self.tables.discard(table)
        self.indexes = {i: t for i, t in self.indexes.items() if t != table}
        self.sequences = {s: t for s, t in self.sequences.items() if t != table}
        for (owner, constraint), referenced in list(self.foreign_keys.items()):
            if owner == table:
                del self.foreign_keys[(owner, constraint)]
                if referenced != table:
                    effect.extra.append((referenced, Role.ALTERED))
            elif referenced == table and cascade:
                del self.foreign_keys[(owner, constraint)]
                effect.extra.append((owner, Role.ALTERED))

    def move_table(self, old: Key, new: Key) -> None:
        """A rename or SET SCHEMA: everything that pointed at ``old`` now points at ``new``."""
        if old not in self.tables:
            return
        self.tables.discard(old)
        self.tables.add(new)
        self.indexes = {i: new if t == old else t for i, t in self.indexes.items()}
        self.sequences = {s: new if t == old else t for s, t in self.sequences.items()}
        self.foreign_keys = {
            (new if owner == old else owner, c): new if ref == old else ref
            for (owner, c), ref in self.foreign_keys.items()}


def replay(model: SchemaModel, statements: Sequence[StatementAnalysis], schema: str,
           details: Sequence[SchemaDetail]) -> list[Effect]:
    """Replay a file's statements into ``model``; the effect of each, in order."""
    return [model.apply(st, schema, details[st.index] if st.index < len(details) else NOTHING)
            for st in statements]


# --- one handler per operation ----------------------------------------------------------------


def _create_table(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                  effect: Effect) -> None:
    if op.has("temporary"):
        return
    key = (op.schema or schema, name[1])
    if detail.if_not_exists and key in model.tables:
        effect.void.add(key)
    model.tables.add(key)


def _create_view(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                 effect: Effect) -> None:
    model.views.add((op.schema or schema, name[1]))


def _create_index(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                  effect: Effect) -> None:
    table = model.resolve(name, schema, model.tables)
    if not op.detail:
        return
    index = (table[0], op.detail)
    if detail.if_not_exists and index in model.indexes:
        effect.void.add(table)
        return
    model.indexes[index] = table


def _drop_index(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                effect: Effect) -> None:
    table = model.indexes.pop(model.resolve(name, schema, model.indexes), None)
    if table is not None:
        effect.extra.append((table, Role.ALTERED))


def _rename_index(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                  effect: Effect) -> None:
    index = model.resolve(name, schema, model.indexes)
    table = model.indexes.pop(index, None)
    if table is not None and op.detail:
        model.indexes[(index[0], op.detail)] = table
        effect.extra.append((table, Role.ALTERED))


def _drop_table(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                effect: Effect) -> None:
    key = model.resolve(name, schema, model.tables)
    if model.never_existed(key):
        effect.void.add(key)
        return
    model.drop_table(key, op.has("cascade"), effect)


def _alter_table(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                 effect: Effect) -> None:
    key = model.resolve(name, schema, model.tables)
    if detail.missing_ok and model.never_existed(key):
        effect.void.add(key)


def _rename_table(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                  effect: Effect) -> None:
    key = model.resolve(name, schema, model.tables)
    if op.detail:
        target = (op.detail, key[1]) if op.op is OpKind.SET_SCHEMA else (key[0], op.detail)
        model.move_table(key, target)


def _sequence(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
              effect: Effect) -> None:
    key = model.resolve(name, schema, model.sequences)
    for sequence, owner in detail.owned_sequences:
        if (sequence[0] or key[0], sequence[1]) == key:
            model.sequences[key] = model.resolve(owner, schema, model.tables)
    if op.op is OpKind.CREATE_SEQUENCE:
        model.sequences.setdefault(key, None)
        return
    owner_table = model.sequences.get(key)
    if owner_table is not None:
        effect.extra.append((owner_table, Role.ALTERED))


def _truncate(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
              effect: Effect) -> None:
    if op.has("cascade"):
        key = model.resolve(name, schema, model.tables)
        effect.extra += [(t, Role.WRITTEN) for t in sorted(model.referencing(key))]


def _drop_other(model: SchemaModel, op: Op, name: QName, schema: str, detail: SchemaDetail,
                effect: Effect) -> None:
    if op.detail in ("view", "materialized view"):
        model.views.discard(model.resolve(name, schema, model.views))
    elif op.detail == "sequence":
        model.sequences.pop(model.resolve(name, schema, model.sequences), None)


_HANDLERS = {
    OpKind.CREATE_TABLE: _create_table,
    OpKind.CREATE_VIEW: _create_view,
    OpKind.CREATE_INDEX: _create_index,
    OpKind.DROP_INDEX: _drop_index,
    OpKind.RENAME_INDEX: _rename_index,
    OpKind.DROP_TABLE: _drop_table,
    OpKind.RENAME_TABLE: _rename_table,
    OpKind.SET_SCHEMA: _rename_table,
    OpKind.CREATE_SEQUENCE: _sequence,
    OpKind.ALTER_SEQUENCE: _sequence,
    OpKind.TRUNCATE: _truncate,
    OpKind.DROP_OTHER: _drop_other,
    **{kind: _alter_table for kind in (
        OpKind.ADD_COLUMN, OpKind.DROP_COLUMN, OpKind.ALTER_COLUMN_TYPE, OpKind.SET_NOT_NULL,
        OpKind.DROP_NOT_NULL, OpKind.SET_DEFAULT, OpKind.DROP_DEFAULT, OpKind.ADD_CONSTRAINT,
        OpKind.DROP_CONSTRAINT, OpKind.VALIDATE_CONSTRAINT, OpKind.RENAME_COLUMN,
        OpKind.RENAME_CONSTRAINT, OpKind.ALTER_TABLE_OTHER)},
}
