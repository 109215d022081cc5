"""Synthetic services repositories for the benchmarks: realistic migrations, deterministic.

``generate_repository(root, services=50, migrations=100, seed=0)`` writes
``root/<service>/migrations/`` for every service, the way a real team's repository looks:

- ``CREATE TABLE`` with a ``BIGSERIAL`` key, ``NOT NULL`` columns with defaults, ``CHECK``
  constraints and foreign keys to tables of the same service or of another service (schema
  qualified, with a ``<service>:<version>`` entry in ``depends_on``), plus an index on each
  foreign key column;
- ``ALTER TABLE ... ADD COLUMN`` of nullable columns (after ``SET lock_timeout``);
- ``CREATE INDEX CONCURRENTLY`` in a migration of its own marked ``"transactional": false``;
- PL/pgSQL trigger functions and SQL functions with ``$$`` bodies, views, comments;
- backfills (``UPDATE ... WHERE``, risk ``medium``) and the odd irreversible ``DROP COLUMN``
  (risk ``high``, ``"reversible": false``, no down file);
- seed ``INSERT`` migrations in ``development/`` and QA rows in ``staging/``, listed in
  ``environments.json``.

``dependencies.json`` says what the SQL does: ``affects_tables`` lists exactly the tables the up
file creates, alters or writes, ``risk_level`` is the level the SQL analysis derives, and every
down file undoes its up file exactly, so ``migorch validate --all`` reports no errors and the
up/down/up round-trip is clean.

Everything follows from ``seed``; each service has its own random stream (seeded by
``"<seed>:<service index>"``), so a service is the same whatever the number of services.
Cross-service references only point to services with a lower index, so the graph has no cycle.

Run ``python -m benchmarks.generate OUT [--services N --migrations M --seed S]`` to write one.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "GeneratedMigration",
    "GeneratedService",
    "GeneratedRepository",
    "generate_repository",
    "service_names",
    "main",
]

_DOMAINS = (
    "user", "order", "payment", "inventory", "shipping", "notification", "catalog", "review",
    "billing", "auth", "search", "cart", "pricing", "loyalty", "support", "analytics",
    "report", "media", "content", "message", "audit", "account", "subscription", "warehouse",
    "fulfillment", "refund", "invoice", "tax", "fraud", "recommendation", "promotion",
    "wishlist", "gateway", "ledger", "identity", "profile", "session", "device", "location",
    "scheduler", "webhook", "export", "import", "tenant", "partner", "vendor", "coupon",
    "rating", "feedback", "survey",
)

_NOUNS = (
    "accounts", "profiles", "sessions", "invoices", "payments", "addresses", "events",
    "settings", "tokens", "subscriptions", "plans", "coupons", "carts", "shipments", "parcels",
    "reviews", "ratings", "tags", "categories", "products", "prices", "stock_levels",
    "warehouses", "notifications", "templates", "devices", "messages", "threads",
    "attachments", "contacts", "documents", "jobs", "batches", "rules", "limits", "quotas",
    "webhooks", "deliveries", "refunds", "credits", "balances", "entries", "snapshots",
    "exports", "imports", "tenants", "members", "roles", "permissions", "audits",
)

#: Extra columns a new table may get: (name, type, NOT NULL default or None).
_CREATE_COLUMNS = (
    ("amount_cents", "BIGINT", "0"),
    ("quantity", "INTEGER", "1"),
    ("note", "TEXT", None),
    ("is_enabled", "BOOLEAN", "false"),
    ("external_ref", "TEXT", None),
    ("priority", "SMALLINT", "0"),
    ("payload", "JSONB", "'{}'::jsonb"),
    ("expires_at", "TIMESTAMPTZ", None),
    ("currency", "CHAR(3)", "'EUR'"),
    ("score", "NUMERIC(10,2)", None),
)

#: Nullable columns ADD COLUMN migrations add: (name, type, constant default or None).
_ADDED_COLUMNS = (
    ("archived_at", "TIMESTAMPTZ", None),
    ("source", "TEXT", None),
    ("locale", "TEXT", "'en'"),
    ("retries", "INTEGER", "0"),
    ("last_seen_at", "TIMESTAMPTZ", None),
    ("metadata", "JSONB", None),
    ("region", "TEXT", None),
    ("version_tag", "TEXT", None),
    ("weight_grams", "INTEGER", None),
    ("checksum", "TEXT", None),
    ("owner_email", "TEXT", None),
    ("sort_order", "INTEGER", "0"),
    ("channel", "TEXT", None),
    ("reason", "TEXT", None),
)

_STATUSES = ("active", "pending", "disabled")

#: Relative weights of migration kinds after a service's first table.
_KINDS = (
    ("create_table", 22),
    ("add_column", 18),
    ("index_concurrently", 9),
    ("trigger", 5),
    ("function", 6),
    ("view", 7),
    ("comment", 4),
    ("backfill", 5),
    ("drop_column", 2),
    ("dev_seed", 11),
    ("staging_seed", 4),
)

_DURATIONS = {
    "create_table": "10s", "add_column": "5s", "index_concurrently": "2m", "trigger": "10s",
    "function": "2s", "view": "2s", "comment": "1s", "backfill": "1m", "drop_column": "30s",
    "dev_seed": "1s", "staging_seed": "1s",
}


@dataclass
class _Column:
    name: str
    type: str
    indexed: bool = False
    used: bool = False  # by a view, a function, a backfill: not dropped later
    droppable: bool = False  # added by ADD COLUMN
    comment: str | None = None


@dataclass
class _Table:
    name: str
    version: int
    columns: list[_Column]
    seedable: bool  # no NOT NULL foreign key: seed rows need nothing else
    has_trigger: bool = False
    comment: str | None = None


@dataclass
class GeneratedMigration:
    """One generated migration: its files' text and its dependencies.json entry."""

    service: str
    version: int
    title: str
    kind: str
    up: str
    down: str | None
    meta: dict[str, Any]
    environment: str | None = None

    @property
    def version_text(self) -> str:
        return f"{self.version:06d}"

    @property
    def id(self) -> str:
        return f"{self.version_text}_{self.title}"

    @property
    def transactional(self) -> bool:
        return bool(self.meta.get("transactional", True))

    @property
    def reversible(self) -> bool:
        return bool(self.meta.get("reversible", True))

    def relative_path(self, direction: str) -> str:
        prefix = f"{self.environment}/" if self.environment else ""
        return f"{prefix}{self.id}.{direction}.sql"


@dataclass
class GeneratedService:
    name: str
    index: int
    migrations: list[GeneratedMigration] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return self.name.replace("-", "_")

    def environments_document(self) -> dict[str, Any]:
        listed: dict[str, list[str]] = {"development": [], "staging": [], "production": []}
        for m in self.migrations:
            if m.environment is not None:
                listed[m.environment].append(m.relative_path("up"))
        return {"environments": {env: {"migrations": files} for env, files in listed.items()}}

    def dependencies_document(self) -> dict[str, Any]:
        return {"migrations": {m.version_text: m.meta for m in self.migrations}}


@dataclass
class GeneratedRepository:
    root: Path
    seed: int
    services: list[GeneratedService]

    @property
    def migration_count(self) -> int:
        return sum(len(s.migrations) for s in self.services)

    def count(self, *, environment: str | None = None) -> int:
        """Migrations in ``environment``'s set (all base ones plus its own), or all of them."""
        return sum(1 for s in self.services for m in s.migrations
                   if environment is None or m.environment in (None, environment))


def service_names(count: int) -> list[str]:
    """``user-service``, ``order-service``, ... then ``user-2-service`` and so on."""
    names = []
    for i in range(count):
        domain = _DOMAINS[i % len(_DOMAINS)]
        round_ = i // len(_DOMAINS)
        names.append(f"{domain}-service" if round_ == 0 else f"{domain}-{round_ + 1}-service")
    return names


def _literal(text: str | None) -> str:
    """A SQL string literal, or NULL."""
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


class _ServiceBuilder:
    """Builds one service's migrations, keeping track of the schema they create."""

    def __init__(self, service: GeneratedService, migrations: int, seed: int,
                 earlier: Sequence[GeneratedService],
                 earlier_tables: dict[str, list[_Table]]) -> None:
        self.service = service
        self.count = migrations
        self.rng = random.Random(f"{seed}:{service.index}")
        self.earlier = earlier
        self.earlier_tables = earlier_tables
        self.tables: list[_Table] = []
        self.functions = 0
        self.views: set[str] = set()
        self.nouns_used: dict[str, int] = {}
        self.last_base = 0

    # --- helpers ----------------------------------------------------------------------------

    def _new_table_name(self) -> str:
        noun = self.rng.choice(_NOUNS)
        n = self.nouns_used.get(noun, 0) + 1
        self.nouns_used[noun] = n
        return noun if n == 1 else f"{noun}_{n}"

    def _dep(self, version: int) -> str:
        return f"{version:06d}"

    def _depends(self, *versions: int, extra: Sequence[str] = ()) -> list[str]:
        deps = [self._dep(v) for v in sorted(set(versions))]
        for item in extra:
            if item not in deps:
                deps.append(item)
        return deps

    def _meta(self, description: str, depends_on: list[str], tables: list[str], risk: str,
              kind: str, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "description": description,
            "depends_on": depends_on,
            "affects_tables": tables,
            "risk_level": risk,
            "estimated_duration": _DURATIONS[kind],
        }
        meta.update(extra)
        return meta

    def _pick_table(self, predicate: Any = None) -> _Table | None:
        candidates = [t for t in self.tables if predicate is None or predicate(t)]
        return self.rng.choice(candidates) if candidates else None

    # --- kinds --------------------------------------------------------------------------------

    def create_table(self, version: int) -> GeneratedMigration:
        name = self._new_table_name()
        columns = [_Column("id", "BIGSERIAL", indexed=True, used=True),
                   _Column("name", "TEXT", used=True), _Column("status", "TEXT", used=True)]
        lines = ["    id         BIGSERIAL PRIMARY KEY",
                 "    name       TEXT NOT NULL",
                 "    status     TEXT NOT NULL DEFAULT 'active'\n"
                 f"               CHECK (status IN ({', '.join(repr(s) for s in _STATUSES)}))"]
        indexes: list[str] = []
        deps: list[int] = []
        extra_deps: list[str] = []
        seedable = True
        # A foreign key to a table of this service, or of an earlier service.
        roll = self.rng.random()
        target: tuple[str | None, _Table] | None = None
        if self.earlier and roll < 0.35:
            other = self.rng.choice(self.earlier)
            if self.earlier_tables.get(other.name):
                target = (other.name, self.rng.choice(self.earlier_tables[other.name]))
        if target is None and self.tables and roll < 0.7:
            target = (None, self.rng.choice(self.tables))
        if target is not None:
            other_service, ref = target
            column = ref.name.rstrip("s") + "_id" if ref.name.endswith("s") else ref.name + "_id"
            if other_service is None:
                reference = f"{ref.name} (id) ON DELETE CASCADE"
                deps.append(ref.version)
            else:
                schema = other_service.replace("-", "_")
                reference = f"{schema}.{ref.name} (id)"
                extra_deps.append(f"{other_service}:{ref.version:06d}")
            lines.append(f"    {column:<10} BIGINT NOT NULL REFERENCES {reference}")
            columns.append(_Column(column, "BIGINT", indexed=True, used=True))
            indexes.append(f"CREATE INDEX {name}_{column}_idx ON {name} ({column});")
            seedable = False
        for col, typ, default in self.rng.sample(_CREATE_COLUMNS, self.rng.randint(1, 4)):
            spec = f"{typ} NOT NULL DEFAULT {default}" if default is not None else typ
            lines.append(f"    {col:<10} {spec}")
            columns.append(_Column(col, typ))
        lines.append("    created_at TIMESTAMPTZ NOT NULL DEFAULT now()")
        columns.append(_Column("created_at", "TIMESTAMPTZ", used=True))
        if self.rng.random() < 0.4:
            indexes.append(f"CREATE INDEX {name}_created_at_idx ON {name} (created_at);")
            columns[-1].indexed = True
        up = ["SET lock_timeout = '5s';", "", f"CREATE TABLE {name} (", ",\n".join(lines), ");"]
        if indexes:
            up += [""] + indexes
        self.tables.append(_Table(name, version, columns, seedable))
        return GeneratedMigration(
            self.service.name, version, f"create_{name}", "create_table",
            "\n".join(up) + "\n", f"DROP TABLE {name};\n",
            self._meta(f"Create the {name} table", self._depends(*deps, extra=extra_deps),
                       [name], "low", "create_table"))

    def add_column(self, version: int) -> GeneratedMigration | None:
        table = self._pick_table()
        assert table is not None
        present = {c.name for c in table.columns}
        choices = [c for c in _ADDED_COLUMNS if c[0] not in present]
        if not choices:
            return None
        col, typ, default = self.rng.choice(choices)
        spec = typ + (f" DEFAULT {default}" if default is not None else "")
        table.columns.append(_Column(col, typ, droppable=True))
        up = f"SET lock_timeout = '5s';\n\nALTER TABLE {table.name} ADD COLUMN {col} {spec};\n"
        down = f"SET lock_timeout = '5s';\n\nALTER TABLE {table.name} DROP COLUMN {col};\n"
        return GeneratedMigration(
            self.service.name, version, f"add_{table.name}_{col}", "add_column", up, down,
            self._meta(f"Add {col} to {table.name}", self._depends(table.version),
                       [table.name], "low", "add_column"))

    def index_concurrently(self, version: int) -> GeneratedMigration | None:
        candidates = [(t, c) for t in self.tables for c in t.columns
                      if not c.indexed and c.type not in ("JSONB", "BOOLEAN")]
        if not candidates:
            return None
        table, column = self.rng.choice(candidates)
        column.indexed = True
        column.used = True
        index = f"{table.name}_{column.name}_idx"
        schema = self.service.schema
        # Schema-qualified: the statement must be alone in its file (it cannot run in a
        # transaction), and tools without a per-migration search_path run it unchanged.
        up = ("-- Built without blocking writes; CONCURRENTLY cannot run in a transaction.\n"
              f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index}\n"
              f"    ON {schema}.{table.name} ({column.name});\n")
        down = f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{index};\n"
        return GeneratedMigration(
            self.service.name, version, f"index_{table.name}_{column.name}",
            "index_concurrently", up, down,
            self._meta(f"Index {table.name}.{column.name} without blocking writes",
                       self._depends(table.version), [table.name], "low",
                       "index_concurrently", transactional=False))

    def trigger(self, version: int) -> GeneratedMigration | None:
        table = self._pick_table(lambda t: not t.has_trigger and
                                 "updated_at" not in {c.name for c in t.columns})
        if table is None:
            return None
        table.has_trigger = True
        table.columns.append(_Column("updated_at", "TIMESTAMPTZ", used=True))
        function = f"{table.name}_touch_updated_at"
        trigger = f"{table.name}_touch"
        up = (
            "SET lock_timeout = '5s';\n\n"
            f"ALTER TABLE {table.name} ADD COLUMN updated_at TIMESTAMPTZ;\n\n"
            "-- The body holds semicolons; it is still one statement.\n"
            f"CREATE FUNCTION {function}() RETURNS trigger\n"
            "LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    NEW.updated_at := now();\n"
            "    RETURN NEW;\n"
            "END;\n"
            "$$;\n\n"
            f"CREATE TRIGGER {trigger}\n"
            f"    BEFORE UPDATE ON {table.name}\n"
            f"    FOR EACH ROW EXECUTE FUNCTION {function}();\n"
        )
        down = (
            "SET lock_timeout = '5s';\n\n"
            f"DROP TRIGGER {trigger} ON {table.name};\n"
            f"DROP FUNCTION {function}();\n"
            f"ALTER TABLE {table.name} DROP COLUMN updated_at;\n"
        )
        return GeneratedMigration(
            self.service.name, version, f"touch_{table.name}_updated_at", "trigger", up, down,
            self._meta(f"Track when {table.name} rows change", self._depends(table.version),
                       [table.name], "low", "trigger"))

    def function(self, version: int) -> GeneratedMigration | None:
        table = self._pick_table()
        assert table is not None
        self.functions += 1
        name = f"count_{table.name}_since_{self.functions}"
        status = self.rng.choice(_STATUSES)
        up = (
            f"CREATE FUNCTION {name}(p_since TIMESTAMPTZ) RETURNS BIGINT\n"
            "LANGUAGE sql STABLE AS $$\n"
            f"    SELECT count(*) FROM {table.name}\n"
            f"    WHERE created_at >= p_since AND status = '{status}';\n"
            "$$;\n"
        )
        down = f"DROP FUNCTION {name}(TIMESTAMPTZ);\n"
        return GeneratedMigration(
            self.service.name, version, f"function_{name}", "function", up, down,
            self._meta(f"Count {status} {table.name} since a point in time",
                       self._depends(table.version), [], "low", "function"))

    def view(self, version: int) -> GeneratedMigration | None:
        table = self._pick_table()
        assert table is not None
        name = f"recent_{table.name}"
        if name in self.views:
            name = f"{name}_{len(self.views) + 1}"
        self.views.add(name)
        extra = [c for c in table.columns if c.name not in ("id", "name", "created_at")]
        picked = self.rng.sample(extra, min(len(extra), 2))
        for column in picked:
            column.used = True
        columns = ", ".join(["id", "name", *[c.name for c in picked], "created_at"])
        days = self.rng.choice((7, 30, 90))
        up = (
            f"CREATE VIEW {name} AS\n"
            f"    SELECT {columns}\n"
            f"    FROM {table.name}\n"
            f"    WHERE created_at > now() - interval '{days} days';\n"
        )
        down = f"DROP VIEW {name};\n"
        return GeneratedMigration(
            self.service.name, version, f"view_{name}", "view", up, down,
            self._meta(f"{table.name} of the last {days} days", self._depends(table.version),
                       [name], "low", "view"))

    def comment(self, version: int) -> GeneratedMigration | None:
        table = self._pick_table()
        assert table is not None
        column = self.rng.choice(table.columns)
        table_comment = f"Owned by {self.service.name} (documented in {version:06d})"
        column_comment = f"{column.name.replace('_', ' ')} ({column.type.lower()})"
        if column.comment is not None:
            column_comment += f", revised in {version:06d}"
        up = (
            "SET lock_timeout = '5s';\n\n"
            f"COMMENT ON TABLE {table.name} IS {_literal(table_comment)};\n"
            f"COMMENT ON COLUMN {table.name}.{column.name} IS {_literal(column_comment)};\n"
        )
        # The down file restores what was there before: a later comment undone by its down
        # must leave the earlier one in place.
        down = (
            "SET lock_timeout = '5s';\n\n"
            f"COMMENT ON COLUMN {table.name}.{column.name} IS {_literal(column.comment)};\n"
            f"COMMENT ON TABLE {table.name} IS {_literal(table.comment)};\n"
        )
        table.comment = table_comment
        column.comment = column_comment
        return GeneratedMigration(
            self.service.name, version, f"comment_{table.name}", "comment", up, down,
            self._meta(f"Document {table.name}", self._depends(table.version), [table.name],
                       "low", "comment"))

    def backfill(self, version: int) -> GeneratedMigration | None:
        candidates = [(t, c) for t in self.tables for c in t.columns
                      if c.droppable and c.type == "TEXT"]
        if not candidates:
            return None
        table, column = self.rng.choice(candidates)
        column.used = True
        value = f"legacy-{version}"
        up = (
            "SET lock_timeout = '5s';\n\n"
            f"UPDATE {table.name} SET {column.name} = '{value}'\n"
            f"WHERE {column.name} IS NULL AND created_at < '2024-01-01';\n"
        )
        down = (
            "SET lock_timeout = '5s';\n\n"
            f"UPDATE {table.name} SET {column.name} = NULL WHERE {column.name} = '{value}';\n"
        )
        return GeneratedMigration(
            self.service.name, version, f"backfill_{table.name}_{column.name}", "backfill",
            up, down,
            self._meta(f"Backfill {table.name}.{column.name} for old rows",
                       self._depends(table.version), [table.name], "medium", "backfill"))

    def drop_column(self, version: int) -> GeneratedMigration | None:
        candidates = [(t, c) for t in self.tables for c in t.columns
                      if c.droppable and not c.used and not c.indexed]
        if not candidates:
            return None
        table, column = self.rng.choice(candidates)
        table.columns.remove(column)
        up = (
            f"-- {column.name} is no longer read by any release; its data goes with it, so\n"
            "-- there is deliberately no down migration.\n"
            "SET lock_timeout = '5s';\n\n"
            "-- migorch:ignore drop-column\n"
            f"ALTER TABLE {table.name} DROP COLUMN {column.name};\n"
        )
        return GeneratedMigration(
            self.service.name, version, f"drop_{table.name}_{column.name}", "drop_column",
            up, None,
            self._meta(f"Drop the unused {table.name}.{column.name}",
                       self._depends(table.version), [table.name], "high", "drop_column",
                       reversible=False))

    def seed(self, version: int, environment: str) -> GeneratedMigration | None:
        table = self._pick_table(lambda t: t.seedable)
        if table is None:
            return None
        prefix = "seed" if environment == "development" else "qa"
        rows = self.rng.randint(2, 5)
        values = ",\n".join(
            f"    ('{prefix}-{table.name}-{version}-{i}', '{self.rng.choice(_STATUSES)}')"
            for i in range(1, rows + 1))
        up = (
            f"-- Rows that exist only in {environment}.\n"
            f"INSERT INTO {table.name} (name, status) VALUES\n{values};\n"
        )
        down = f"DELETE FROM {table.name} WHERE name LIKE '{prefix}-{table.name}-{version}-%';\n"
        kind = "dev_seed" if environment == "development" else "staging_seed"
        return GeneratedMigration(
            self.service.name, version, f"{prefix}_{table.name}", kind, up, down,
            self._meta(f"{environment.capitalize()} rows for {table.name}",
                       self._depends(table.version), [table.name], "low", kind),
            environment=environment)

    # --- driver -------------------------------------------------------------------------------

    def build(self) -> None:
        kinds = [k for k, _ in _KINDS]
        weights = [w for _, w in _KINDS]
        for version in range(1, self.count + 1):
            migration: GeneratedMigration | None = None
            if version == 1:
                migration = self.create_table(version)
            while migration is None:
                kind = self.rng.choices(kinds, weights)[0]
                if kind == "dev_seed":
                    migration = self.seed(version, "development")
                elif kind == "staging_seed":
                    migration = self.seed(version, "staging")
                else:
                    migration = getattr(self, kind)(version)
            self.service.migrations.append(migration)


def generate_services(count: int, migrations: int, seed: int = 0) -> list[GeneratedService]:
    """The services of a repository, in memory."""
    services: list[GeneratedService] = []
    tables: dict[str, list[_Table]] = {}
    for index, name in enumerate(service_names(count)):
        service = GeneratedService(name, index)
        # Foreign keys go to one of a few earlier services, like real service neighbourhoods.
        window = services[max(0, index - 5):index]
        builder = _ServiceBuilder(service, migrations, seed, window, tables)
        builder.build()
        # Other services may only reference tables that exist in every environment.
        tables[name] = list(builder.tables)
        services.append(service)
    return services


def write_service(root: Path, service: GeneratedService) -> None:
    migrations = root / service.name / "migrations"
    for env in ("development", "staging"):
        (migrations / env).mkdir(parents=True, exist_ok=True)
    for m in service.migrations:
        (migrations / m.relative_path("up")).write_text(m.up, encoding="utf-8")
        if m.down is not None:
            (migrations / m.relative_path("down")).write_text(m.down, encoding="utf-8")
    (migrations / "dependencies.json").write_text(
        json.dumps(service.dependencies_document(), indent=2) + "\n", encoding="utf-8")
    (migrations / "environments.json").write_text(
        json.dumps(service.environments_document(), indent=2) + "\n", encoding="utf-8")


def generate_repository(root: Path, services: int = 50, migrations: int = 100, seed: int = 0,
                        *, clean: bool = True) -> GeneratedRepository:
    """Write ``services`` x ``migrations`` migrations under ``root`` (emptied first)."""
    root = Path(root)
    if clean and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    generated = generate_services(services, migrations, seed)
    for service in generated:
        write_service(root, service)
    return GeneratedRepository(root, seed, generated)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write a synthetic services repository of realistic migrations.")
    parser.add_argument("out", type=Path, help="services root to write (emptied first)")
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--migrations", type=int, default=100, help="migrations per service")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.services < 1 or args.migrations < 1:
        parser.error("--services and --migrations must be at least 1")
    repo = generate_repository(args.out, args.services, args.migrations, args.seed)
    print(f"wrote {repo.migration_count} migrations of {len(repo.services)} services "
          f"to {repo.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
