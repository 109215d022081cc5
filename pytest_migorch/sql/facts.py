"""What one SQL statement does, as plain data: the facts vocabulary.

The analysis (:mod:`pytest_migorch.sql.analysis`) turns each statement into *facts*: the objects it
targets with their role (:class:`ObjectRef`) and the operations the risk rules look at
(:class:`Op`, whose kind is an :class:`OpKind`). The recognisers that produce them live in
:mod:`pytest_migorch.sql.token_recognisers` (exact token grammar), :mod:`pytest_migorch.sql.
ast_recognisers` (sqlglot) and :mod:`pytest_migorch.sql.alter_table`; the risk rules
(:mod:`pytest_migorch.checks.rules`) consume them. Keeping the vocabulary in one module of its own
means producers and consumers agree on it through the type checker, not through string spelling.

A recogniser raises :class:`NotAnalysed` when it knows the statement but cannot tell exactly what
it does. Facts are never guessed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pytest_migorch.sql.cursor import QName, display_name

__all__ = [
    "Role",
    "AFFECTING_ROLES",
    "ObjectRef",
    "OpKind",
    "Op",
    "Facts",
    "NotAnalysed",
    "InvalidSql",
    "display_name",
]


class Role(str, enum.Enum):
    """What a statement does to an object it names."""

    CREATED = "created"
    ALTERED = "altered"
    DROPPED = "dropped"
    RENAMED = "renamed"
    WRITTEN = "written"
    READ = "read"


#: Roles that count as affecting a table for ``affects_tables`` (reading does not).
AFFECTING_ROLES = frozenset({Role.CREATED, Role.ALTERED, Role.DROPPED, Role.RENAMED, Role.WRITTEN})


@dataclass(frozen=True)
class ObjectRef:
    """An object a statement names: its kind (``table``, ``index``, ...), name and role.

    Names are as PostgreSQL stores them (unquoted identifiers folded to lower case). ``schema``
    is None when the SQL does not qualify the name. ``new_name`` is set for renames
    (``new_schema`` for ``SET SCHEMA``).
    """

    kind: str
    name: str
    role: Role
    schema: str | None = None
    new_name: str | None = None
    new_schema: str | None = None

    @property
    def display(self) -> str:
        return display_name(self.schema, self.name)

    def to_json(self) -> dict[str, Any]:
        data = {"kind": self.kind, "name": self.name, "role": self.role.value,
                "schema": self.schema, "new_name": self.new_name, "new_schema": self.new_schema}
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectRef:
        return cls(kind=data["kind"], name=data["name"], role=Role(data["role"]),
                   schema=data.get("schema"), new_name=data.get("new_name"),
                   new_schema=data.get("new_schema"))


class OpKind(str, enum.Enum):
    """The operations the risk rules match, one member per kind (see docs/sql-rules.md).

    str-valued because operations are stored in the persistent analysis cache as JSON; code
    compares members, never spellings, so a misspelt operation is a type error.
    """

    # transaction control and settings
    TRANSACTION = "transaction"
    SET = "set"
    # creating objects
    CREATE_TABLE = "create_table"
    #: a column declared with its type, in CREATE TABLE or ADD COLUMN (``detail``: the type as
    #: PostgreSQL SQL, e.g. ``VARCHAR(20)``; flags ``primary_key``, ``identity``, ``references``)
    COLUMN = "column"
    CREATE_VIEW = "create_view"
    CREATE_INDEX = "create_index"
    CREATE_TRIGGER = "create_trigger"
    CREATE_SEQUENCE = "create_sequence"
    CREATE_TYPE = "create_type"
    CREATE_DOMAIN = "create_domain"
    CREATE_EXTENSION = "create_extension"
    CREATE_FUNCTION = "create_function"
    CREATE_PROCEDURE = "create_procedure"
    CREATE_SCHEMA = "create_schema"
    ATTACH_PARTITION = "attach_partition"
    REFERENCES = "references"
    # dropping objects
    DROP_TABLE = "drop_table"
    DROP_INDEX = "drop_index"
    DROP_SCHEMA = "drop_schema"
    DROP_TRIGGER = "drop_trigger"
    DROP_OTHER = "drop_other"
    # ALTER TABLE actions
    ADD_COLUMN = "add_column"
    DROP_COLUMN = "drop_column"
    ALTER_COLUMN_TYPE = "alter_column_type"
    SET_NOT_NULL = "set_not_null"
    DROP_NOT_NULL = "drop_not_null"
    SET_DEFAULT = "set_default"
    DROP_DEFAULT = "drop_default"
    ADD_CONSTRAINT = "add_constraint"
    DROP_CONSTRAINT = "drop_constraint"
    VALIDATE_CONSTRAINT = "validate_constraint"
    RENAME_TABLE = "rename_table"
    RENAME_COLUMN = "rename_column"
    RENAME_CONSTRAINT = "rename_constraint"
    SET_SCHEMA = "set_schema"
    REWRITE_TABLE = "rewrite_table"
    DETACH_PARTITION = "detach_partition"
    ALTER_TABLE_OTHER = "alter_table_other"
    # other ALTERs
    RENAME_INDEX = "rename_index"
    RENAME_VIEW = "rename_view"
    RENAME_MATERIALIZED_VIEW = "rename_materialized_view"
    ALTER_SEQUENCE = "alter_sequence"
    ALTER_TYPE_ADD_VALUE = "alter_type_add_value"
    REFRESH_MATERIALIZED_VIEW = "refresh_materialized_view"
    # data and maintenance
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    MERGE = "merge"
    COPY = "copy"
    TRUNCATE = "truncate"
    LOCK = "lock"
    VACUUM = "vacuum"
    CLUSTER = "cluster"
    REINDEX = "reindex"
    COMMENT = "comment"
    GRANT = "grant"

    @property
    def label(self) -> str:
        """``CREATE INDEX`` for ``create_index``: how messages name the operation."""
        return self.value.replace("_", " ").upper()


@dataclass(frozen=True)
class Op:
    """One operation the risk rules look at.

    ``op`` is an :class:`OpKind` (``add_column``, ``create_index``, ``update``, ...).
    ``schema``/``name`` name the table it works on, except for index and other non-table
    operations where they name that object; ``detail`` carries a second name or
    value (index name, new name, lock mode, setting value) and ``flags`` the facts that decide
    the rules (``concurrently``, ``not_valid``, ``where``, ``cascade``...).
    """

    op: OpKind
    name: str | None = None
    schema: str | None = None
    column: str | None = None
    detail: str | None = None
    flags: tuple[str, ...] = ()

    def has(self, flag: str) -> bool:
        return flag in self.flags

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"op": self.op.value, "name": self.name, "schema": self.schema,
                                "column": self.column, "detail": self.detail}
        data = {k: v for k, v in data.items() if v is not None}
        if self.flags:
            data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Op:
        return cls(op=OpKind(data["op"]), name=data.get("name"), schema=data.get("schema"),
                   column=data.get("column"), detail=data.get("detail"),
                   flags=tuple(data.get("flags", ())))


class NotAnalysed(Exception):
    """The statement is known but what it does cannot be determined exactly."""


class InvalidSql(NotAnalysed):
    """The statement is certainly rejected by PostgreSQL (e.g. ``DROP IF EXISTS COLUMN c``)."""


@dataclass
class Facts:
    """Facts collected for one statement while it is being analysed."""

    kind: str
    objects: list[ObjectRef] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)

    def obj(self, kind: str, name: QName, role: Role, **extra: Any) -> None:
        self.objects.append(ObjectRef(kind=kind, schema=name[0], name=name[1], role=role, **extra))

    def op(self, op: OpKind, name: QName | None = None, **extra: Any) -> None:
        schema, obj = name if name is not None else (None, None)
        flags = tuple(sorted(f for f in extra.pop("flags", ()) if f))
        self.ops.append(Op(op=op, schema=schema, name=obj, flags=flags, **extra))
