"""Schema snapshots and their differences, against a real PostgreSQL.

Every change case starts from the same base schema, applies one change and checks that the
difference is found and said in words a migration author understands. The diff and the rendering
on hand-built snapshots, without a server, are in test_schema_diff.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pytest_migorch.errors import DatabaseError
from pytest_migorch.postgres.snapshot import (
    SchemaDifference,
    Snapshot,
    diff_snapshots,
    take_snapshot,
)

BASE_SCHEMA = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok');
CREATE TYPE app.pair AS (a integer, b text);
CREATE TYPE app.span AS RANGE (subtype = integer);
CREATE DOMAIN app.posint AS integer CONSTRAINT posint_check CHECK (VALUE > 0);
CREATE TABLE app.users (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    nickname varchar(30) DEFAULT 'anon',
    mood app.mood,
    score app.posint,
    CONSTRAINT users_email_check CHECK (email <> '')
);
CREATE INDEX users_email_idx ON app.users (email);
CREATE SEQUENCE app.counter INCREMENT BY 1;
CREATE VIEW app.active_users AS SELECT id, email FROM app.users WHERE mood = 'ok';
CREATE MATERIALIZED VIEW app.user_count AS SELECT count(*) AS n FROM app.users;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END
$$;
CREATE TRIGGER users_touch BEFORE UPDATE ON app.users
    FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE TABLE app.orders (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint REFERENCES app.users (id),
    total numeric(10, 2),
    total_cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED
);
CREATE TABLE app.events (at date NOT NULL, payload jsonb) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE UNLOGGED TABLE app.scratch (k text);
CREATE PROCEDURE app.cleanup() LANGUAGE sql AS $$DELETE FROM app.scratch$$;
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.email IS 'login';
CREATE TABLE public.app_schema_migrations (version bigint NOT NULL PRIMARY KEY,
                                           dirty boolean NOT NULL);
"""


@pytest.fixture
def db(fresh_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh database holding the base schema."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(BASE_SCHEMA)
        yield conn


def _diff_after(conn: psycopg.Connection, change: str) -> list[SchemaDifference]:
    before = take_snapshot(conn)
    conn.execute(change)
    return diff_snapshots(before, take_snapshot(conn))


def _messages(diffs: list[SchemaDifference]) -> list[str]:
    return [d.message for d in diffs]


# --- the same schema gives the same snapshot ----------------------------------------------------


def test_same_schema_in_two_databases_gives_equal_snapshots(db: psycopg.Connection,
                                                            fresh_db: str) -> None:
    other = f"migorch_twin_{uuid.uuid4().hex[:10]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    try:
        with psycopg.connect(make_conninfo(fresh_db, dbname=other), autocommit=True) as twin:
            twin.execute(BASE_SCHEMA)
            first, second = take_snapshot(db), take_snapshot(twin)
    finally:
        db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))
    assert diff_snapshots(first, second) == []
    assert first == second
    assert hash(first) == hash(second) and first.digest == second.digest


def test_snapshot_covers_every_object_kind(db: psycopg.Connection) -> None:
    kinds = {key[0] for key in take_snapshot(db).objects}
    assert kinds >= {
        "schema", "extension", "table", "column", "constraint", "index", "sequence", "view",
        "materialized view", "function", "procedure", "trigger", "enum", "composite type",
        "domain", "range type",
    }


def test_snapshot_round_trips_through_json(db: psycopg.Connection) -> None:
    snap = take_snapshot(db)
    text = json.dumps(snap.to_json())
    assert Snapshot.from_json(json.loads(text)) == snap


def test_snapshot_does_not_depend_on_the_callers_session(db: psycopg.Connection,
                                                          fresh_db: str) -> None:
    reference = take_snapshot(db)
    with psycopg.connect(fresh_db) as conn:  # not autocommit: a transaction is open
        conn.execute("SET search_path = app, public")
        conn.execute("SELECT 1")
        assert take_snapshot(conn) == reference
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        row = conn.execute("SHOW search_path").fetchone()
        assert row == ("app, public",)


def test_search_path_is_left_alone_outside_a_transaction(db: psycopg.Connection) -> None:
    reference = take_snapshot(db)
    db.execute("SET search_path = app")
    assert take_snapshot(db) == reference
    assert db.execute("SHOW search_path").fetchone() == ("app",)
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def _snapshot_statements(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM pg_prepared_statements"
                        " WHERE name LIKE 'migorch\\_snapshot\\_%' ORDER BY name").fetchall()
    return [name for (name,) in rows]


def test_the_prepared_statement_is_reused_and_survives_deallocation(
    db: psycopg.Connection,
) -> None:
    first = take_snapshot(db)
    assert take_snapshot(db) == first
    assert len(_snapshot_statements(db)) == 1
    # What psycopg sends after a DROP, ALTER or ROLLBACK once it has prepared anything.
    db.execute("DEALLOCATE ALL")
    db.execute("ALTER TABLE app.users ADD COLUMN bio text")
    second = take_snapshot(db)
    assert _messages(diff_snapshots(first, second)) == ["column app.users.bio is still there"]
    assert len(_snapshot_statements(db)) == 1
    take_snapshot(db, exclude_schemas=["public"])  # other exclusions, another statement
    assert len(_snapshot_statements(db)) == 2


def test_the_cached_plan_follows_new_schemas(db: psycopg.Connection) -> None:
    before = take_snapshot(db)
    db.execute("CREATE SCHEMA late; CREATE TABLE late.t (id int); COMMENT ON TABLE late.t IS 'x'")
    after = take_snapshot(db)
    assert _messages(diff_snapshots(before, after)) == ["schema late is still there"]
    assert after.objects[("table", "late", "t")]["comment"] == "x"
    assert "comment" not in after.objects[("table", "app", "orders")]  # nulls are dropped


def test_a_broken_connection_becomes_a_database_error(fresh_db: str) -> None:
    conn = psycopg.connect(fresh_db)
    with pytest.raises(psycopg.Error):
        conn.execute("SELECT 1/0")
    with pytest.raises(DatabaseError, match="could not take a schema snapshot"):
        take_snapshot(conn)  # the transaction is aborted
    conn.close()


# --- every kind of change is found ----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    change: str
    messages: tuple[str, ...]


CASES = [
    Case("column added", "ALTER TABLE app.users ADD COLUMN bio text",
         ("column app.users.bio is still there",)),
    Case("column dropped", "ALTER TABLE app.users DROP COLUMN nickname",
         ("column app.users.nickname is missing",)),
    Case("column type", "ALTER TABLE app.users ALTER COLUMN nickname TYPE varchar(50)",
         (("column app.users.nickname changed: "
           "type character varying(30) -> character varying(50)"),)),
    Case("column default", "ALTER TABLE app.users ALTER COLUMN nickname SET DEFAULT 'x'",
         (("column app.users.nickname changed: "
           "default 'anon'::character varying -> 'x'::character varying"),)),
    Case("column nullability", "ALTER TABLE app.users ALTER COLUMN nickname SET NOT NULL",
         ("column app.users.nickname changed: NULL -> NOT NULL",)),
    Case("column identity", "ALTER TABLE app.orders ALTER COLUMN id SET GENERATED BY DEFAULT",
         ("column app.orders.id changed: identity always -> by default",)),
    Case("column order",
         "ALTER TABLE app.users DROP COLUMN nickname;"
         " ALTER TABLE app.users ADD COLUMN nickname varchar(30) DEFAULT 'anon'",
         (("table app.users changed: column order (id, email, nickname, mood, score)"
           " -> (id, email, mood, score, nickname)"),)),
    Case("constraint added", "ALTER TABLE app.users ADD CONSTRAINT users_email_key UNIQUE (email)",
         ("constraint users_email_key on app.users is still there",)),
    Case("constraint changed",
         "ALTER TABLE app.users DROP CONSTRAINT users_email_check;"
         " ALTER TABLE app.users ADD CONSTRAINT users_email_check CHECK (length(email) > 3)",
         (("constraint users_email_check on app.users changed: "
           "CHECK ((email <> ''::text)) -> CHECK ((length(email) > 3))"),)),
    Case("index changed",
         "DROP INDEX app.users_email_idx; CREATE UNIQUE INDEX users_email_idx ON app.users (email)",
         (("index users_email_idx on app.users changed: "
           "CREATE INDEX users_email_idx ON app.users USING btree (email) -> "
           "CREATE UNIQUE INDEX users_email_idx ON app.users USING btree (email)"),)),
    Case("index dropped", "DROP INDEX app.users_email_idx",
         ("index users_email_idx on app.users is missing",)),
    Case("sequence increment", "ALTER SEQUENCE app.counter INCREMENT BY 5",
         ("sequence app.counter changed: increment 1 -> 5",)),
    Case("sequence added", "CREATE SEQUENCE app.orders_seq",
         ("sequence app.orders_seq is still there",)),
    Case("view body",
         "CREATE OR REPLACE VIEW app.active_users AS"
         " SELECT id, email FROM app.users WHERE mood = 'sad'",
         (("view app.active_users changed: line 4: WHERE (users.mood = 'ok'::app.mood); -> "
           "WHERE (users.mood = 'sad'::app.mood);"),)),
    Case("materialized view dropped", "DROP MATERIALIZED VIEW app.user_count",
         ("materialized view app.user_count is missing",)),
    Case("function body",
         "CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
         "BEGIN\n    RETURN OLD;\nEND\n$$",
         ("function app.touch() changed: line 6: RETURN NEW; -> RETURN OLD;",)),
    Case("procedure dropped", "DROP PROCEDURE app.cleanup()",
         ("procedure app.cleanup() is missing",)),
    Case("trigger added",
         "CREATE TRIGGER users_touch_insert BEFORE INSERT ON app.users"
         " FOR EACH ROW EXECUTE FUNCTION app.touch()",
         ("trigger users_touch_insert on app.users is still there",)),
    Case("trigger dropped", "DROP TRIGGER users_touch ON app.users",
         ("trigger users_touch on app.users is missing",)),
    Case("trigger disabled", "ALTER TABLE app.users DISABLE TRIGGER users_touch",
         ("trigger users_touch on app.users changed: enabled yes -> no",)),
    Case("enum label", "ALTER TYPE app.mood ADD VALUE 'happy'",
         ("enum app.mood changed: labels happy added",)),
    Case("composite attribute", "ALTER TYPE app.pair ADD ATTRIBUTE c date",
         ("composite type app.pair changed: attributes c date added",)),
    Case("domain constraint", "ALTER DOMAIN app.posint ADD CONSTRAINT posint_small"
         " CHECK (VALUE < 1000)",
         ("constraint posint_small on app.posint is still there",)),
    Case("unlogged", "ALTER TABLE app.scratch SET LOGGED",
         ("table app.scratch changed: unlogged -> logged",)),
    Case("partition detached", "ALTER TABLE app.events DETACH PARTITION app.events_2024",
         (("table app.events_2024 changed: parents app.events removed; partition bound"
           " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') -> none"),)),
    Case("table comment", "COMMENT ON TABLE app.users IS 'humans'",
         ("table app.users changed: comment people -> humans",)),
    Case("column comment removed", "COMMENT ON COLUMN app.users.email IS NULL",
         ("column app.users.email changed: comment login -> none",)),
    Case("function comment", "COMMENT ON FUNCTION app.touch() IS 'keeps rows fresh'",
         ("function app.touch() changed: comment none -> keeps rows fresh",)),
    Case("schema added with content",
         "CREATE SCHEMA extra; CREATE TABLE extra.t (id serial PRIMARY KEY);"
         " CREATE FUNCTION extra.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
         ("schema extra is still there",)),
    Case("table dropped", "DROP TABLE app.orders",
         ("table app.orders is missing",)),
    Case("table dropped with dependants", "DROP TABLE app.users CASCADE",
         ("table app.users is missing",
          "constraint orders_user_id_fkey on app.orders is missing",
          "view app.active_users is missing",
          "materialized view app.user_count is missing")),
    Case("sequence values are data", "SELECT nextval('app.counter'), nextval('app.counter');"
         " SELECT setval('app.users_id_seq', 42); INSERT INTO app.orders (total) VALUES (1)",
         ()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_change_is_found_and_described(db: psycopg.Connection, case: Case) -> None:
    assert _messages(_diff_after(db, case.change)) == list(case.messages)


def test_extension_is_found(db: psycopg.Connection) -> None:
    available = db.execute(
        "SELECT name FROM pg_available_extensions WHERE name IN ('citext', 'pg_trgm')"
        " ORDER BY name").fetchall()
    if not available:
        pytest.skip("neither citext nor pg_trgm is installed (postgresql-contrib)")
    name = available[0][0]
    diffs = _diff_after(db, f"CREATE EXTENSION {name} SCHEMA public")
    # The extension's own types and functions are not listed one by one.
    assert _messages(diffs) == [f"extension {name} is still there"]


def test_differences_carry_their_parts(db: psycopg.Connection) -> None:
    (diff,) = _diff_after(db, "ALTER TABLE app.users ADD COLUMN bio text")
    assert (diff.kind, diff.object_kind, diff.name) == ("extra", "column", "app.users.bio")
    assert diff.key == ("column", "app", "users", "bio")


def test_default_schema_is_not_repeated(db: psycopg.Connection) -> None:
    before = take_snapshot(db)
    db.execute("ALTER TABLE app.users ADD COLUMN bio text; DROP INDEX app.users_email_idx")
    diffs = diff_snapshots(before, take_snapshot(db), default_schema="app")
    assert _messages(diffs) == ["column users.bio is still there",
                                "index users_email_idx on users is missing"]


# --- exclusions -----------------------------------------------------------------------------


def test_excluded_tables_take_their_columns_constraints_and_sequences(
    db: psycopg.Connection,
) -> None:
    db.execute("CREATE TABLE public.other_schema_migrations (id serial PRIMARY KEY)")
    snap = take_snapshot(db, exclude_tables=[("public", "*_schema_migrations")])
    names = {key[2] for key in snap.objects if len(key) > 2 and key[1] == "public"}
    assert names == set()
    assert ("sequence", "public", "other_schema_migrations_id_seq") not in snap.objects
    assert ("table", "app", "users") in snap.objects


def test_excluded_table_changes_are_ignored(db: psycopg.Connection) -> None:
    exclude = [("public", "app_schema_migrations")]
    before = take_snapshot(db, exclude_tables=exclude)
    db.execute("DROP TABLE public.app_schema_migrations")
    assert diff_snapshots(before, take_snapshot(db, exclude_tables=exclude)) == []


def test_wildcards_are_not_like_patterns(db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE public.appxschema_migrations (id int)")
    snap = take_snapshot(db, exclude_tables=[("public", "app_schema_migrations")])
    assert ("table", "public", "appxschema_migrations") in snap.objects
    assert ("table", "public", "app_schema_migrations") not in snap.objects


def test_excluded_schemas(db: psycopg.Connection) -> None:
    snap = take_snapshot(db, exclude_schemas=["ap?"])
    assert not [key for key in snap.objects if len(key) > 1 and key[1] == "app"]
    assert ("table", "public", "app_schema_migrations") in snap.objects
