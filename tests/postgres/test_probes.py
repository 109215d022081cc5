"""Ground truth from PostgreSQL (pytest_migorch.postgres.probes), against a real server.

What the round-trip compares declared metadata with: which tables a migration's DDL touched (event
triggers), which it wrote rows to (transaction statistics), which existing tables it locked and
rewrote. Each test runs a small "migration" the way the engine does: state before, statements,
truth before commit.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pytest_migorch.postgres.probes import (
    PROBE_SCHEMA,
    MigrationTruth,
    capture_table_state,
    collect_truth,
    install_probes,
    reset_ddl_log,
)


@pytest.fixture
def conn(fresh_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db, autocommit=True) as connection:
        connection.execute(
            "CREATE SCHEMA app; CREATE TABLE app.users (id int PRIMARY KEY, email text);"
            " INSERT INTO app.users VALUES (1, 'a@example.com');"
            ' CREATE TABLE app."Odd.Name" (id int)'
        )
        assert install_probes(connection) is True
        yield connection


def _migrate(conn: psycopg.Connection, statements: str, *,
             transactional: bool = True) -> MigrationTruth:
    """Run ``statements`` as the engine runs an up; the truth is read before the commit."""
    reset_ddl_log(conn)
    if transactional:
        conn.execute("BEGIN")
    before = capture_table_state(conn)
    conn.execute(statements)
    truth = collect_truth(conn, before, ddl_available=True, in_transaction=transactional)
    if transactional:
        conn.execute("COMMIT")
    return truth


def test_installing_twice_is_harmless_and_the_probe_schema_is_private(
    conn: psycopg.Connection,
) -> None:
    assert install_probes(conn) is True
    before = capture_table_state(conn)
    assert "app.users" in {name for name, _ in before.tables.values()}
    assert not any(name.startswith(PROBE_SCHEMA) for name, _ in before.tables.values())


def test_ddl_on_tables_columns_indexes_and_constraints_is_recorded(
    conn: psycopg.Connection,
) -> None:
    truth = _migrate(conn, (
        "CREATE TABLE app.orders (id int); ALTER TABLE app.users ADD COLUMN bio text;"
        " CREATE INDEX users_email_idx ON app.users (email);"
        " ALTER TABLE app.orders ADD CONSTRAINT orders_pk PRIMARY KEY (id);"
        ' ALTER TABLE app."Odd.Name" ADD COLUMN x int'
    ))
    assert truth.ddl_tables == {"app.orders", "app.users", "app.Odd.Name"}
    assert truth.written_tables == set()
    assert truth.touched_tables == truth.ddl_tables
    assert truth.ddl_available


def test_dropped_objects_are_recorded(conn: psycopg.Connection) -> None:
    truth = _migrate(conn, 'DROP TABLE app."Odd.Name"')
    assert "app.Odd.Name" in truth.ddl_tables


def test_row_writes_count_only_what_the_migration_wrote(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO app.users VALUES (2, 'earlier')")  # before: not the migration's
    truth = _migrate(conn, "UPDATE app.users SET email = lower(email) WHERE id = 1")
    assert truth.written_tables == {"app.users"}
    assert truth.ddl_tables == set()
    quiet = _migrate(conn, "SELECT count(*) FROM app.users")
    assert quiet.touched_tables == set()


def test_a_dropped_index_and_an_altered_sequence_are_put_on_their_table(
    conn: psycopg.Connection,
) -> None:
    conn.execute("CREATE INDEX users_email_idx ON app.users (email);"
                 " CREATE TABLE app.orders (id serial); CREATE SEQUENCE app.loose")
    dropped = _migrate(conn, "DROP INDEX app.users_email_idx")
    assert dropped.ddl_tables == {"app.users"}
    sequence = _migrate(conn, "ALTER SEQUENCE app.orders_id_seq RESTART WITH 10;"
                              " ALTER SEQUENCE app.loose RESTART")
    assert sequence.ddl_tables == {"app.orders"}


def test_truncate_counts_as_writing_every_table_it_empties(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE app.orders (user_id int REFERENCES app.users (id));"
                 " INSERT INTO app.orders VALUES (1)")
    truth = _migrate(conn, "TRUNCATE app.users CASCADE")
    assert truth.written_tables == {"app.users", "app.orders"}
    assert truth.rewritten == {"app.users", "app.orders"}


def test_a_write_that_matched_no_row_still_counts(conn: psycopg.Connection) -> None:
    truth = _migrate(conn, "UPDATE app.users SET email = '' WHERE id = 42;"
                           " DELETE FROM app.\"Odd.Name\" WHERE id = 1")
    assert truth.written_tables == {"app.users", "app.Odd.Name"}
    assert truth.locks == {}


def test_locks_and_rewrites_of_existing_tables(conn: psycopg.Connection) -> None:
    truth = _migrate(conn, "ALTER TABLE app.users ALTER COLUMN id TYPE bigint")
    assert truth.locks == {"app.users": "AccessExclusiveLock"}
    assert truth.rewritten == {"app.users"}
    index = _migrate(conn, "CREATE INDEX users_email_lower ON app.users (lower(email))")
    assert index.locks == {"app.users": "ShareLock"}
    assert index.rewritten == set()
    new = _migrate(conn, "CREATE TABLE app.fresh (id int)")
    assert new.locks == {}  # tables the migration created are not "existing"


def test_outside_a_transaction_only_ddl_and_rewrites_are_known(conn: psycopg.Connection) -> None:
    truth = _migrate(conn, "CREATE INDEX CONCURRENTLY users_email_c ON app.users (email)",
                     transactional=False)
    assert truth.ddl_tables == {"app.users"}
    assert truth.locks == {} and truth.written_tables == set()


def test_reset_empties_the_log(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE app.noise (id int)")
    reset_ddl_log(conn)
    assert conn.execute(f"SELECT count(*) FROM {PROBE_SCHEMA}.ddl_log").fetchone() == (0,)


def test_without_event_triggers_install_says_so(conn: psycopg.Connection,
                                                fresh_db: str) -> None:
    database = sql.Identifier(conn.info.dbname)
    conn.execute("CREATE ROLE migorch_plain LOGIN")
    try:
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO migorch_plain").format(database))
        plain = psycopg.connect(fresh_db, user="migorch_plain", autocommit=True)
        try:
            assert install_probes(plain) is False
        finally:
            plain.close()
    finally:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM migorch_plain").format(database))
        conn.execute("DROP ROLE migorch_plain")
