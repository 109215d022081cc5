"""Telling a consequence of an earlier failure from a defect of its own, without a server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import write_service

from pytest_migorch.project.validation import load_project
from pytest_migorch.roundtrip.causes import (
    EarlierFailure,
    created_names,
    explaining_failure,
    missing_object,
)


def test_missing_objects_are_read_from_postgres_messages() -> None:
    assert missing_object('relation "app.users" does not exist') == ("relation", "app.users")
    assert missing_object('type "Mood" does not exist') == ("type", "mood")
    assert missing_object("function set_ts_for_split() does not exist") == (
        "function", "set_ts_for_split")
    assert missing_object("function f(integer, text) does not exist") == ("function", "f")
    assert missing_object('syntax error at or near "COLUMN"') is None
    assert missing_object('column "b" of relation "a" does not exist') is None


def _failures(tmp_path: Path) -> list[EarlierFailure]:
    write_service(tmp_path, "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int);\nCREATE FUNCTION touch() RETURNS trigger "
                      "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;",
        "1_a.down.sql": "DROP TABLE a;",
        "2_b.up.sql": "ALTER TABLE old_b RENAME TO b;",
        "2_b.down.sql": "ALTER TABLE b RENAME TO old_b;",
    })
    service = load_project(tmp_path).services["svc"]
    return [EarlierFailure(service.migrations[1], "svc:1_a up failed"),
            EarlierFailure(service.migrations[2], "svc:2_b up failed")]


def test_created_names_include_creations_and_renames(tmp_path: Path) -> None:
    first, second = _failures(tmp_path)
    assert {"a", "touch"} <= created_names(first.migration)
    assert "b" in created_names(second.migration)


def test_with_declared_dependencies_only_the_creator_explains(tmp_path: Path) -> None:
    failures = _failures(tmp_path)
    found = explaining_failure('relation "svc.b" does not exist', failures, implicit_order=False)
    assert found is not None and found[0] is failures[1]
    assert found[1] == "2_b creates relation b, which the failing statement needs"
    assert explaining_failure('relation "zzz" does not exist', failures,
                              implicit_order=False) is None
    assert explaining_failure('type "txet" does not exist', failures, implicit_order=False) is None


def test_in_version_order_any_earlier_failure_explains(tmp_path: Path) -> None:
    failures = _failures(tmp_path)
    found = explaining_failure('type "txet" does not exist', failures, implicit_order=True)
    assert found is not None and found[0] is failures[0] and "version order" in found[1]
    # The one that creates the missing object is named rather than the first.
    found = explaining_failure('relation "b" does not exist', failures, implicit_order=True)
    assert found is not None and found[0] is failures[1] and "creates relation b" in found[1]
    assert explaining_failure('relation "b" does not exist', [], implicit_order=True) is None


def test_the_round_trip_decision_modules_import_no_psycopg() -> None:
    modules = ("causes", "coverage", "rules", "truth")
    code = ("import sys; "
            + "; ".join(f"import pytest_migorch.roundtrip.{m}" for m in modules)
            + "; print(sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
