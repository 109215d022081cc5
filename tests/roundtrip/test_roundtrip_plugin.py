"""The round-trip's reporting rules end to end: pytest runs the plugin in a subprocess."""

from __future__ import annotations

import pytest
from helpers import environments_json, write_service

REORDERING = {
    "1_create.up.sql": "CREATE TABLE people (id int PRIMARY KEY, nick text, age int);",
    "1_create.down.sql": "DROP TABLE people;",
    "2_drop_nick.up.sql": "-- migorch:ignore DB012 the nicks are not kept\n"
                          "SET lock_timeout = '50ms';\nALTER TABLE people DROP COLUMN nick;",
    "2_drop_nick.down.sql": "ALTER TABLE people ADD COLUMN nick text;",
}


def test_column_order_is_a_warning_unless_the_option_or_ini_key_says_error(
    pytester: pytest.Pytester,
) -> None:
    write_service(pytester.path / "services", "people", REORDERING)
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db",
                                           "--migorch-strict-column-order")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*2_drop_nick.down.sql: error DB010 *people.people*"])
    pytester.makeini("[pytest]\nmigorch_strict_column_order = true\n")
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db")
    result.assert_outcomes(passed=1, failed=1)


def test_files_errors_stop_the_round_trip_of_the_service_once(pytester: pytest.Pytester) -> None:
    write_service(pytester.path / "services", "dup", {
        "1_a.up.sql": "CREATE TABLE a (id int);", "1_a.down.sql": "DROP TABLE a;",
        "1_b.up.sql": "CREATE TABLE b (id int);", "1_b.down.sql": "DROP TABLE b;",
        "2_c.up.sql": "CREATE TABLE c (id int);", "2_c.down.sql": "DROP TABLE c;",
        "environments.json": environments_json({"development": [], "production": []}),
    })
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db", "-v")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "dup::roundtrip FAILED" in out and "roundtrip[" not in out
    result.stdout.fnmatch_lines([
        "*the round-trip of dup in development, production cannot run: the files check of dup "
        "has 2 errors (FIL005)*"])
    assert "Traceback" not in out


def test_a_shared_base_migration_is_one_item_naming_every_environment(
    pytester: pytest.Pytester,
) -> None:
    write_service(pytester.path / "services", "svc", {
        "1_a.up.sql": "CREATE TABLE a (id int);", "1_a.down.sql": "SELECT 1;",
        "development/2_seed.up.sql": "INSERT INTO a VALUES (-1);",
        "development/2_seed.down.sql": "DELETE FROM a WHERE id = -1;",
        "environments.json": environments_json({
            "development": ["development/2_seed.up.sql"], "production": [], "staging": []}),
    })
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db", "-v")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "svc::roundtrip[development]::1_a FAILED" in out
    assert "roundtrip[production]" not in out and "roundtrip[staging]" not in out
    assert out.count("error DB003") == 1
    result.stdout.fnmatch_lines(
        ["*the same in environments development, production, staging*"])


NOT_NULL = {
    "1_create.up.sql": "CREATE TABLE people (id int PRIMARY KEY);",
    "1_create.down.sql": "DROP TABLE people;",
    "2_email.up.sql": "SET lock_timeout = '50ms';\n"
                      "ALTER TABLE people ADD COLUMN email text NOT NULL;",
    "2_email.down.sql": "ALTER TABLE people DROP COLUMN email;",
}


def test_rows_are_seeded_by_default_and_the_option_or_ini_key_turns_them_off(
    pytester: pytest.Pytester,
) -> None:
    write_service(pytester.path / "services", "people", NOT_NULL)
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*2_email.up.sql:2: error DB011 *passes on empty tables*"])
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db",
                                           "--migorch-no-seed-data")
    result.assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nmigorch_seed_data = false\n")
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("--migorch", "services", "-m", "migorch_db",
                                           "--migorch-seed-data")
    result.assert_outcomes(passed=1, failed=1)
