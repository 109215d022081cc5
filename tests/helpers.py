"""Small builders for services trees, shared by the foundation tests (discovery to plugin).

Everything here writes real files, so each test sees exactly what a user's repository holds:
``write_service(root, "svc", {"000001_a.up.sql": "...", "development/000003_x.up.sql": b"..."})``.
JSON is written with ``indent=2`` so that :func:`line_of` can find the line a finding must name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

import psycopg

from pytest_migorch.deploy.runner import Runner
from pytest_migorch.findings import Finding
from pytest_migorch.postgres.connection import resolve_settings
from pytest_migorch.project.validation import ValidationResult, load_project, validate_project


@dataclass(frozen=True)
class Link:
    """A symbolic link to ``target`` (relative to the link's directory), for broken-link cases."""

    target: str


FileContent = Union[str, bytes, Link]
Files = Mapping[str, FileContent]

UP_SQL = "CREATE TABLE t (id int);\n"
DOWN_SQL = "DROP TABLE t;\n"


def write_service(root: Path, name: str, files: Files) -> Path:
    """Write ``files`` (paths relative to ``migrations/``) for service ``name``; return the dir."""
    migrations = Path(root) / name / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = migrations / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return migrations


def entry(
    description: str = "a migration",
    depends_on: Iterable[str] = (),
    affects_tables: Iterable[str] = ("t",),
    risk_level: str = "low",
    estimated_duration: str = "1s",
    **extra: Any,
) -> dict[str, Any]:
    """One valid dependencies.json entry; ``extra`` adds or overrides keys."""
    body: dict[str, Any] = {
        "description": description,
        # A plain string stays one (to write documents the schema rejects).
        "depends_on": depends_on if isinstance(depends_on, str) else list(depends_on),
        "affects_tables": (affects_tables if isinstance(affects_tables, str)
                           else list(affects_tables)),
        "risk_level": risk_level,
        "estimated_duration": estimated_duration,
    }
    body.update(extra)
    return body


def dependencies_json(entries: Mapping[str, Any]) -> str:
    return json.dumps({"migrations": dict(entries)}, indent=2) + "\n"


def environments_json(environments: Mapping[str, Iterable[str]]) -> str:
    body = {name: {"migrations": list(files)} for name, files in environments.items()}
    return json.dumps({"environments": body}, indent=2) + "\n"


def pair(migration_id: str, directory: str = "", up: str = UP_SQL,
         down: str | None = DOWN_SQL) -> dict[str, str]:
    """The up (and down, unless ``down`` is None) file of ``migration_id`` (``000001_x``)."""
    prefix = f"{directory}/" if directory else ""
    files = {f"{prefix}{migration_id}.up.sql": up}
    if down is not None:
        files[f"{prefix}{migration_id}.down.sql"] = down
    return files


def service_files(
    migrations: Mapping[str, Mapping[str, Any]] | Iterable[str],
    environments: Mapping[str, Iterable[str]] | None = None,
    env_dirs: Mapping[str, str] | None = None,
) -> dict[str, FileContent]:
    """A complete valid service: a pair and an entry per migration id, and environments.json.

    ``migrations`` maps ids (``000001_a``) to entry overrides (or is a list of ids);
    ``env_dirs`` puts an id into an environment directory; ``environments`` lists up files
    (default: one ``production`` environment listing nothing).
    """
    if not isinstance(migrations, Mapping):
        migrations = {mid: {} for mid in migrations}
    env_dirs = dict(env_dirs or {})
    files: dict[str, FileContent] = {}
    entries = {}
    for migration_id, overrides in migrations.items():
        files.update(pair(migration_id, env_dirs.get(migration_id, "")))
        entries[migration_id.split("_", 1)[0]] = entry(**overrides)
    files["dependencies.json"] = dependencies_json(entries)
    files["environments.json"] = environments_json(
        environments if environments is not None else {"production": []})
    return files


def validate(root: Path, **kwargs: Any) -> ValidationResult:
    return validate_project(load_project(root), **kwargs)


def codes(findings: Iterable[Finding]) -> list[str]:
    return sorted(f.code for f in findings)


def only(findings: Iterable[Finding], code: str) -> Finding:
    """The single finding with ``code`` (fails, listing all findings, when not exactly one)."""
    items = list(findings)
    matching = [f for f in items if f.code == code]
    assert len(matching) == 1, f"expected one {code}, got: " + "; ".join(
        f"{f.code} {f.message}" for f in items)
    return matching[0]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s)")


def line_of_item(text: str, value: str) -> int:
    """1-based line of a JSON array item ``"value"`` written on a line of its own."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().rstrip(",") == f'"{value}"':
            return number
    raise AssertionError(f"item {value!r} not found")


# --- one case per class of bad input, checked by both `migorch validate` and the plugin ----------


@dataclass(frozen=True)
class BadInput:
    """A one-service tree with one problem, and where that problem must be reported."""

    id: str
    files: dict[str, FileContent]
    code: str
    #: The file the finding names, relative to migrations/.
    file: str
    line: int | None
    migration: str | None
    #: The generated item that fails: config, files or graph.
    check: str
    severity: str = "error"


def bad_inputs() -> list[BadInput]:
    """Every class of bad input the foundation must report, with its expected location."""
    good = service_files(["000001_a", "000002_b"])
    cases: list[BadInput] = []

    broken = '{\n  "migrations": {\n    "000001": {,\n'
    cases.append(BadInput("malformed-json", {**good, "dependencies.json": broken}, "CFG001",
                          "dependencies.json", 3, None, "config"))

    deps = dependencies_json({"000001": entry(), "000002": entry(risk_level="extreme")})
    cases.append(BadInput("schema-violation", {**good, "dependencies.json": deps}, "CFG002",
                          "dependencies.json", line_of(deps, '"extreme"'), "000002_b", "config"))

    deps = dependencies_json({"000001": entry(), "000002": entry(risk="low")})
    cases.append(BadInput("unknown-key", {**good, "dependencies.json": deps}, "CFG003",
                          "dependencies.json", line_of(deps, '"risk"'), "000002_b", "config"))

    deps = dependencies_json({"000001": entry(depends_on=["000002"]),
                              "000002": entry(depends_on=["000001"])})
    cases.append(BadInput("cycle", {**good, "dependencies.json": deps}, "GRF001",
                          "dependencies.json", line_of(deps, '"000002"', 1), "000001_a", "graph"))

    deps = dependencies_json({"000001": entry(), "000002": entry(depends_on=["000009"])})
    cases.append(BadInput("unknown-reference", {**good, "dependencies.json": deps}, "GRF002",
                          "dependencies.json", line_of(deps, '"000009"'), "000002_b", "graph"))

    deps = dependencies_json({"000001": entry(), "000002": entry(depends_on=["nope:000001"])})
    cases.append(BadInput("unknown-service", {**good, "dependencies.json": deps}, "GRF003",
                          "dependencies.json", line_of(deps, "nope:"), "000002_b", "graph"))

    cases.append(BadInput("duplicate-version", {**good, "1_again.up.sql": UP_SQL}, "FIL005",
                          "1_again.up.sql", None, "1_again", "files"))

    cases.append(BadInput("bad-name", {**good, "3-add-index.up.sql": UP_SQL}, "FIL002",
                          "3-add-index.up.sql", None, None, "files"))

    cases.append(BadInput("non-utf8", {**good, "000002_b.up.sql": b"SELECT 1;\n-- caf\xe9\n"},
                          "FIL008", "000002_b.up.sql", 2, "000002_b", "files"))

    cases.append(BadInput("empty-file", {**good, "000002_b.down.sql": ""}, "FIL009",
                          "000002_b.down.sql", None, "000002_b", "files", severity="warning"))

    cases.append(BadInput("missing-up-file", {**good, "000003_c.down.sql": DOWN_SQL}, "FIL007",
                          "000003_c.down.sql", None, "000003_c", "files"))

    missing = {k: v for k, v in good.items() if k != "000002_b.down.sql"}
    cases.append(BadInput("missing-down-file", missing, "FIL006", "000002_b.up.sql", None,
                          "000002_b", "files"))

    envs = environments_json({"production": [], "development": ["development/000009_x.up.sql"]})
    cases.append(BadInput("missing-listed-file", {**good, "environments.json": envs}, "CFG010",
                          "environments.json", line_of(envs, "000009_x"), None, "config"))

    cases.append(BadInput("non-utf8-json", {**good, "environments.json": b'{\n"environments":'
                                            b' {\n"caf\xe9": {"migrations": []}}}'},
                          "CFG001", "environments.json", 3, None, "config"))

    deps = str(good["dependencies.json"]).replace('"risk_level": "low"',
                                                  '"risk_level": "low", "risk_level": "high"', 1)
    cases.append(BadInput("duplicate-key", {**good, "dependencies.json": deps}, "CFG004",
                          "dependencies.json", line_of(deps, '"risk_level": "high"'),
                          "000001_a", "config"))

    deps = dependencies_json({"000001": entry(), "000002": entry(), "2": entry()})
    cases.append(BadInput("duplicate-entry", {**good, "dependencies.json": deps}, "CFG009",
                          "dependencies.json", line_of(deps, '"2": {'), None, "config"))

    big = "18446744073709551616_big"
    cases.append(BadInput("version-overflow", {**good, f"{big}.up.sql": UP_SQL}, "FIL004",
                          f"{big}.up.sql", None, big, "files"))

    cases.append(BadInput("nul-byte", {**good, "000002_b.up.sql": b"SELECT 1;\nSELECT\0 2;\n"},
                          "FIL014", "000002_b.up.sql", 2, "000002_b", "files"))

    cases.append(BadInput("symlink-loop", {**good, "000009_x.up.sql": Link("000009_x.up.sql")},
                          "FIL015", "000009_x.up.sql", None, "000009_x", "files"))

    cases.append(BadInput("symlinks-to-each-other", {
        **good, "000009_x.up.sql": Link("000009_y.up.sql"),
        "000009_y.up.sql": Link("000009_x.up.sql")},
        "FIL015", "000009_x.up.sql", None, "000009_x", "files"))

    cases.append(BadInput("dangling-symlink", {**good, "000009_x.up.sql": Link("gone.sql")},
                          "FIL013", "000009_x.up.sql", None, "000009_x", "files"))

    bigint = f"{2**63}_big"
    cases.append(BadInput("version-beyond-bigint", {**good, f"{bigint}.up.sql": UP_SQL}, "FIL017",
                          f"{bigint}.up.sql", None, bigint, "files"))

    cases.append(BadInput("backup-file", {**good, "000002_b.up.sql.bak": UP_SQL}, "FIL010",
                          "000002_b.up.sql.bak", None, "000002_b", "files"))

    files = service_files({"000001_a": {}, "000002_dev": {}, "000003_c": {"depends_on": ["2"]}},
                          env_dirs={"000002_dev": "development"},
                          environments={"development": ["development/000002_dev.up.sql"]})
    cases.append(BadInput("base-on-environment", files, "GRF005", "dependencies.json",
                          line_of(str(files["dependencies.json"]), '"2"'), "000003_c", "graph"))
    return cases


def make_runner(root: Path, url: str, **kwargs: Any) -> Runner:
    """A deploy runner on ``root`` and the database ``url``, ignoring the process environment."""
    kwargs.setdefault("lock_timeout", 15.0)
    return Runner(load_project(root), resolve_settings(url, {}), environ={}, **kwargs)


def query(url: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    """All rows of one query, on a connection of its own."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(text, params).fetchall()


def golang_migrate_applied(services: Path, url: str, version: int = 2) -> None:
    """What golang-migrate leaves after applying user-service's 000001 and 000002 of the
    examples (its table says ``version``): the state migorch is adopted on."""
    migrations = services / "user-service" / "migrations"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA user_service")
        conn.execute("SET search_path TO user_service, public")
        for name in ("000001_create_users.up.sql", "000002_add_profiles.up.sql"):
            conn.execute((migrations / name).read_text())
        conn.execute("CREATE TABLE public.user_service_schema_migrations "
                     "(version bigint not null primary key, dirty boolean not null)")
        conn.execute("INSERT INTO public.user_service_schema_migrations VALUES (%s, false)",
                     (version,))
