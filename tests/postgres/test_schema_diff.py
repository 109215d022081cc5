"""The schema diff and its rendering on hand-built snapshots: no server, no psycopg.

pytest_migorch.postgres.schema_diff is pure by design; the first test keeps it that way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

from pytest_migorch.postgres.schema_diff import (
    Attributes,
    SchemaDifference,
    Snapshot,
    diff_snapshots,
    render_differences,
    split_column_order,
)


def _messages(diffs: list[SchemaDifference]) -> list[str]:
    return [d.message for d in diffs]


def test_the_diff_module_imports_no_psycopg() -> None:
    code = ("import sys; import pytest_migorch.postgres.schema_diff; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'pytest')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"

def _snap(objects: Mapping[str, Attributes]) -> Snapshot:
    """A snapshot from ``{"kind/schema/name": attributes}``."""
    return Snapshot({tuple(name.split("/")): attrs for name, attrs in objects.items()})


def test_children_of_a_missing_table_collapse_into_it() -> None:
    before = _snap({
        "schema/public": {},
        "table/public/orders": {"columns": ("id",)},
        "column/public/orders/id": {"type": "integer"},
        "index/public/orders/orders_idx": {"definition": "CREATE INDEX ..."},
        "sequence/public/orders_id_seq": {"owned_by": ("public", "orders", "id")},
        "sequence/public/free_seq": {"increment": 1},
    })
    after = _snap({"schema/public": {}})
    assert _messages(diff_snapshots(before, after)) == [
        "sequence public.free_seq is missing",
        "table public.orders is missing",
    ]


def test_long_definitions_show_the_first_differing_line() -> None:
    body = "\n".join(f"line {i}" for i in range(40))
    before = _snap({"function/public/f()": {"definition": body}})
    after = _snap({"function/public/f()": {"definition": body.replace("line 30", "LINE 30")}})
    (diff,) = diff_snapshots(before, after)
    assert diff.message == "function public.f() changed: line 31: line 30 -> LINE 30"


def test_render_differences_lists_a_few_lines() -> None:
    diffs = [SchemaDifference("extra", "table", f"public.t{i}", f"table public.t{i} is still there",
                              ("table", "public", f"t{i}")) for i in range(5)]
    text = render_differences(diffs, "after down of 000002_add_profiles, compared with before"
                              " its up", limit=3)
    assert text.splitlines() == [
        ("The schema differs after down of 000002_add_profiles, compared with before its up"
         " (5 differences):"),
        "  - table public.t0 is still there",
        "  - table public.t1 is still there",
        "  - table public.t2 is still there",
        "  ... and 2 more",
    ]
    assert render_differences([], "after re-up").startswith("The schema is identical")


def test_snapshots_are_hashable_values() -> None:
    a = _snap({"enum/public/mood": {"labels": ("a", "b")}})
    b = Snapshot.from_json(json.loads(json.dumps(a.to_json())))
    assert a == b and len({a, b}) == 1


def test_changed_attributes_are_described_in_words() -> None:
    before = _snap({"column/app/users/email": {"type": "text", "not_null": False}})
    after = _snap({"column/app/users/email": {"type": "integer", "not_null": True}})
    assert _messages(diff_snapshots(before, after, default_schema="app")) == [
        "column users.email changed: NULL -> NOT NULL; type text -> integer",
    ]


def test_a_pure_column_reordering_is_reported_once() -> None:
    before = _snap({"table/public/t": {"columns": ("a", "b")}})
    after = _snap({"table/public/t": {"columns": ("b", "a")}})
    assert _messages(diff_snapshots(before, after)) == [
        "table public.t changed: column order (a, b) -> (b, a)",
    ]
    added = _snap({"table/public/t": {"columns": ("a", "b", "c")}})
    assert diff_snapshots(before, added) == []  # the new column has its own line elsewhere


def test_column_order_is_a_difference_of_its_own_kind() -> None:
    before = _snap({"table/public/t": {"columns": ("a", "b"), "unlogged": False}})
    after = _snap({"table/public/t": {"columns": ("b", "a"), "unlogged": True}})
    diffs = diff_snapshots(before, after)
    assert [(d.kind, d.message) for d in diffs] == [
        ("changed", "table public.t changed: logged -> unlogged"),
        ("reordered", "table public.t changed: column order (a, b) -> (b, a)"),
    ]
    significant, reordered = split_column_order(diffs)
    assert [d.kind for d in significant] == ["changed"]
    assert [d.name for d in reordered] == ["public.t"]


def test_column_lists_of_constraints_and_indexes_stay_significant() -> None:
    before = _snap({
        "constraint/public/t/t_pkey": {"definition": "PRIMARY KEY (a, b)"},
        "index/public/t/t_idx": {"definition": "CREATE INDEX t_idx ON public.t (a, b)"},
    })
    after = _snap({
        "constraint/public/t/t_pkey": {"definition": "PRIMARY KEY (b, a)"},
        "index/public/t/t_idx": {"definition": "CREATE INDEX t_idx ON public.t (b, a)"},
    })
    significant, reordered = split_column_order(diff_snapshots(before, after))
    assert reordered == []
    assert [d.object_kind for d in significant] == ["constraint", "index"]
