"""The facts vocabulary (sql/facts.py): roles, object references, operation kinds, Facts.

Producers (the recognisers) and consumers (the risk rules, the persistent analysis cache) agree
on these values; the JSON spellings are stored in the cache, so they are part of the contract.
"""

from __future__ import annotations

import pytest

from pytest_migorch.sql.facts import (
    AFFECTING_ROLES,
    Facts,
    InvalidSql,
    NotAnalysed,
    ObjectRef,
    Op,
    OpKind,
    Role,
    display_name,
)

# --- Role ---------------------------------------------------------------------------------------


def test_roles_have_their_stored_spellings() -> None:
    assert [r.value for r in Role] == [
        "created", "altered", "dropped", "renamed", "written", "read"]
    assert Role("written") is Role.WRITTEN
    assert isinstance(Role.READ, str)  # str-valued: stored as its spelling


def test_reading_is_the_only_role_that_does_not_affect_a_table() -> None:
    assert AFFECTING_ROLES == frozenset(Role) - {Role.READ}
    assert Role.READ not in AFFECTING_ROLES


# --- ObjectRef ----------------------------------------------------------------------------------


@pytest.mark.parametrize("schema,name,expected", [
    (None, "users", "users"),
    ("app", "users", "app.users"),
    (None, "MyTable", '"MyTable"'),
    ("App", "t", '"App".t'),
])
def test_display_quotes_what_postgresql_would_need_quoted(
    schema: str | None, name: str, expected: str,
) -> None:
    ref = ObjectRef(kind="table", name=name, role=Role.ALTERED, schema=schema)
    assert ref.display == expected
    assert display_name(schema, name) == expected


def test_object_json_leaves_out_unset_fields() -> None:
    ref = ObjectRef(kind="index", name="idx", role=Role.CREATED)
    assert ref.to_json() == {"kind": "index", "name": "idx", "role": "created"}


def test_object_json_round_trip_keeps_rename_targets() -> None:
    ref = ObjectRef(kind="table", name="t", role=Role.RENAMED, schema="s", new_name="u",
                    new_schema="archive")
    data = ref.to_json()
    assert data == {"kind": "table", "name": "t", "role": "renamed", "schema": "s",
                    "new_name": "u", "new_schema": "archive"}
    assert ObjectRef.from_json(data) == ref
    assert ObjectRef.from_json(data).role is Role.RENAMED


def test_object_from_json_rejects_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="'touched'"):
        ObjectRef.from_json({"kind": "table", "name": "t", "role": "touched"})


# --- OpKind and Op ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,label", [
    (OpKind.CREATE_INDEX, "CREATE INDEX"),
    (OpKind.ALTER_COLUMN_TYPE, "ALTER COLUMN TYPE"),
    (OpKind.SET_NOT_NULL, "SET NOT NULL"),
    (OpKind.TRUNCATE, "TRUNCATE"),
    (OpKind.RENAME_MATERIALIZED_VIEW, "RENAME MATERIALIZED VIEW"),
])
def test_op_kind_label_is_how_messages_name_the_operation(kind: OpKind, label: str) -> None:
    assert kind.label == label


def test_op_kind_values_are_unique_snake_case() -> None:
    values = [k.value for k in OpKind]
    assert len(values) == len(set(values))
    assert all(v == v.lower() and " " not in v for v in values)
    assert OpKind("add_column") is OpKind.ADD_COLUMN


def test_op_json_omits_unset_fields_and_empty_flags() -> None:
    assert Op(op=OpKind.VACUUM).to_json() == {"op": "vacuum"}
    op = Op(op=OpKind.CREATE_INDEX, name="t", schema="s", detail="idx",
            flags=("concurrently", "unique"))
    assert op.to_json() == {"op": "create_index", "name": "t", "schema": "s", "detail": "idx",
                            "flags": ["concurrently", "unique"]}


def test_op_json_round_trip() -> None:
    op = Op(op=OpKind.ADD_COLUMN, name="t", column="c", detail="gen_random_uuid",
            flags=("has_default", "volatile_default"))
    assert Op.from_json(op.to_json()) == op
    assert Op.from_json({"op": "drop_table", "name": "t"}) == Op(op=OpKind.DROP_TABLE, name="t")


def test_op_from_json_rejects_an_unknown_operation() -> None:
    with pytest.raises(ValueError, match="'explode_table'"):
        Op.from_json({"op": "explode_table"})


def test_op_has_tells_flags_apart() -> None:
    op = Op(op=OpKind.DROP_INDEX, flags=("concurrently",))
    assert op.has("concurrently") is True
    assert op.has("cascade") is False


# --- Facts --------------------------------------------------------------------------------------


def test_facts_obj_splits_a_qualified_name() -> None:
    facts = Facts(kind="ALTER TABLE")
    facts.obj("table", ("app", "t"), Role.RENAMED, new_name="u")
    facts.obj("table", (None, "orgs"), Role.READ)
    assert facts.objects == [
        ObjectRef(kind="table", name="t", role=Role.RENAMED, schema="app", new_name="u"),
        ObjectRef(kind="table", name="orgs", role=Role.READ),
    ]


def test_facts_op_sorts_flags_and_drops_empty_ones() -> None:
    facts = Facts(kind="CREATE INDEX")
    facts.op(OpKind.CREATE_INDEX, ("s", "t"), detail="idx",
             flags=("unique", "", "concurrently"))
    assert facts.ops == [Op(op=OpKind.CREATE_INDEX, name="t", schema="s", detail="idx",
                            flags=("concurrently", "unique"))]


def test_facts_op_without_a_name_names_nothing() -> None:
    facts = Facts(kind="BEGIN")
    facts.op(OpKind.TRANSACTION, detail="begin")
    assert facts.ops == [Op(op=OpKind.TRANSACTION, detail="begin")]
    assert facts.objects == []


def test_new_facts_do_not_share_their_lists() -> None:
    first, second = Facts(kind="A"), Facts(kind="B")
    first.op(OpKind.LOCK, (None, "t"))
    assert second.ops == [] and second.objects == []


# --- NotAnalysed / InvalidSql -------------------------------------------------------------------


def test_invalid_sql_is_a_kind_of_not_analysed() -> None:
    """Whoever reports not-analysed statements also catches certainly invalid ones."""
    assert issubclass(InvalidSql, NotAnalysed)
    assert not issubclass(NotAnalysed, InvalidSql)
    with pytest.raises(NotAnalysed, match="DROP IF EXISTS COLUMN"):
        raise InvalidSql("DROP IF EXISTS COLUMN is not valid SQL")
