"""Risk-rule coverage at least squawk's: every squawk rule is matched by one of ours or has a
documented reason (docs/sql-rules.md, "Compared with squawk"), checked on small files and on the
real migration sets in shared/corpora.

squawk (``pip install squawk-cli``, in the test extras) runs as a subprocess with its JSON
reporter; the tests skip when it or the corpora are absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_risk import CORPORA, DOCS, check

from pytest_migorch.checks.migration import MigrationReport, check_migration
from pytest_migorch.project.validation import load_project
from pytest_migorch.sql.analysis import AnalysisCache

#: squawk rule -> our codes that report the same thing (any one of them on the same file).
MATCHED: dict[str, tuple[str, ...]] = {
    "adding-foreign-key-constraint": ("RSK011",),
    "adding-not-nullable-field": ("RSK005",),
    "adding-required-field": ("RSK006",),
    "adding-serial-primary-key-field": ("RSK013",),
    "ban-alter-identity": ("RSK033",),
    "ban-char-field": ("RSK036",),
    "ban-concurrent-index-creation-in-transaction": ("RSK010",),
    "ban-create-domain-with-constraint": ("RSK044",),
    "ban-drop-column": ("RSK003",),
    "ban-drop-constraint": ("RSK029",),
    "ban-drop-database": ("RSK031",),
    "ban-drop-domain": ("RSK030", "RSK026"),
    "ban-drop-extension": ("RSK030", "RSK026"),
    "ban-drop-function": ("RSK030", "RSK026"),
    "ban-drop-schema": ("RSK001",),
    "ban-drop-sequence": ("RSK030", "RSK026"),
    "ban-drop-table": ("RSK002",),
    "ban-drop-type": ("RSK030", "RSK026"),
    "ban-drop-view": ("RSK030", "RSK026"),
    "ban-set-schema": ("RSK014",),
    "ban-truncate-cascade": ("RSK017",),
    "ban-uncommitted-transaction": ("SQL008",),
    "changing-column-type": ("RSK004",),
    "constraint-missing-not-valid": ("RSK011", "RSK012", "RSK013"),
    "disallowed-unique-constraint": ("RSK013",),
    "identifier-too-long": ("RSK045",),
    "prefer-identity": ("RSK035", "RSK007"),
    "prefer-repack": ("RSK021", "RSK022"),
    "prefer-robust-stmts": ("RSK040",),
    "prefer-text-field": ("RSK037",),
    "prefer-timestamp-tz": ("RSK038",),
    "renaming-column": ("RSK015",),
    "renaming-object": ("RSK032",),
    "renaming-table": ("RSK014",),
    "require-concurrent-index-creation": ("RSK008",),
    "require-concurrent-index-deletion": ("RSK009",),
    "require-concurrent-partition-detach": ("RSK042",),
    "require-concurrent-reindex": ("RSK024",),
    "require-enum-value-ordering": ("RSK043",),
    "transaction-nesting": ("RSK041", "SQL006"),
}

#: squawk rules we cover more narrowly on purpose: our codes, and why squawk's extra findings are
#: not ours. Checked on the small files below, not per corpus file.
NARROWER: dict[str, tuple[tuple[str, ...], str]] = {
    "adding-field-with-default": (
        ("RSK007",), "squawk also flags constant and non-volatile defaults (`DEFAULT -1`, "
        "`DEFAULT to_timestamp(0)`), which PostgreSQL 11+ adds without a rewrite"),
    "prefer-bigint-over-int": (
        ("RSK034",), "we flag keys (primary key, identity, serial): the columns that grow with "
        "the row count; squawk flags every integer column, counters and codes included"),
    "prefer-bigint-over-smallint": (
        ("RSK034",), "as prefer-bigint-over-int: only keys run out"),
    "require-lock-timeout": (
        ("RSK027",), "we flag locks on tables that existed before the migration, once per "
        "migration; squawk flags every statement, also on tables the file itself creates"),
    "require-statement-timeout": (
        ("RSK039",), "we ask for statement_timeout where a statement scans or rewrites an "
        "existing table under a lock; catalog-only changes wait for locks (lock_timeout bounds "
        "that) but run instantly, and a timeout on a CONCURRENTLY build leaves an invalid index"),
}

#: squawk rules with no counterpart of ours, and why.
EXPLAINED: dict[str, str] = {
    "ban-drop-not-null": "dropping NOT NULL is catalog-only and loses no data; code that cannot "
    "handle NULL only breaks once code writes NULLs, which the migration cannot see, so it fires "
    "nothing (a deliberate low-risk decision)",
    "ban-drop-generated-expression": "ALTER COLUMN ... DROP EXPRESSION is not analysed: SQL002 "
    "asks for a review of the statement",
    "ban-alter-domain-with-add-constraint": "ALTER DOMAIN is not analysed: SQL002 asks for a "
    "review of the statement",
    "ban-duplicate-column-assignments": "PostgreSQL rejects the statement; the database "
    "round-trip reports it with PostgreSQL's own message",
    "syntax-error": "the database round-trip reports PostgreSQL's own syntax errors with their "
    "line; statically SQL007 flags known mistakes and SQL002 what cannot be read",
    "unused-ignore": "it is about `-- squawk-ignore` comments; ours for `-- migorch:ignore` is "
    "SQL005",
    "require-timeout-settings": "squawk's deprecated, opt-in alias of require-lock-timeout and "
    "require-statement-timeout (RSK027, RSK039)",
    "require-table-schema": "opt-in in squawk; a service's schema is first on the search_path, "
    "so unqualified names are the service's by design",
}

#: Small files on which squawk reports the rule: (rule, SQL, transactional). A transactional
#: file is linted with --assume-in-transaction (golang-migrate runs a multi-statement file in one
#: implicit transaction); a non-transactional one without, and checked by us with metadata that
#: says "transactional": false.
EXAMPLES: list[tuple[str, str, bool]] = [
    ("adding-field-with-default",
     "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", True),
    ("adding-foreign-key-constraint",
     "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id);", True),
    ("adding-not-nullable-field", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", True),
    ("adding-required-field", "ALTER TABLE users ADD COLUMN age bigint NOT NULL;", True),
    ("adding-serial-primary-key-field", "ALTER TABLE users ADD PRIMARY KEY (id);", True),
    ("ban-alter-identity", "ALTER TABLE users ALTER COLUMN id DROP IDENTITY;", True),
    ("ban-char-field", "CREATE TABLE t (code char(2));", True),
    ("ban-concurrent-index-creation-in-transaction",  # squawk wants the BEGIN spelled out
     "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (a);\nCOMMIT;", True),
    ("ban-create-domain-with-constraint", "CREATE DOMAIN pos AS bigint CHECK (VALUE > 0);", True),
    ("ban-drop-column", "ALTER TABLE users DROP COLUMN bio;", True),
    ("ban-drop-constraint", "ALTER TABLE users DROP CONSTRAINT users_email_key;", True),
    ("ban-drop-database", "DROP DATABASE legacy;", True),
    ("ban-drop-domain", "DROP DOMAIN pos;", True),
    ("ban-drop-extension", "DROP EXTENSION pg_trgm;", True),
    ("ban-drop-function", "DROP FUNCTION f();", True),
    ("ban-drop-schema", "DROP SCHEMA archive;", True),
    ("ban-drop-sequence", "DROP SEQUENCE s;", True),
    ("ban-drop-table", "DROP TABLE users;", True),
    ("ban-drop-type", "DROP TYPE mood;", True),
    ("ban-drop-view", "DROP VIEW active_users;", True),
    ("ban-set-schema", "ALTER TABLE users SET SCHEMA archive;", True),
    ("ban-truncate-cascade", "TRUNCATE users CASCADE;", True),
    ("ban-uncommitted-transaction", "BEGIN;\nINSERT INTO users (id) VALUES (1);", False),
    ("changing-column-type", "ALTER TABLE users ALTER COLUMN bio TYPE varchar;", True),
    ("constraint-missing-not-valid", "ALTER TABLE users ADD CONSTRAINT ck CHECK (age > 0);", True),
    ("disallowed-unique-constraint", "ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);", True),
    ("identifier-too-long", "CREATE TABLE " + "t" * 64 + " (id bigint);", True),
    ("prefer-bigint-over-int", "CREATE TABLE t (id int PRIMARY KEY);", True),
    ("prefer-bigint-over-smallint", "CREATE TABLE t (id smallint PRIMARY KEY);", True),
    ("prefer-identity", "CREATE TABLE t (id bigserial PRIMARY KEY);", True),
    ("prefer-robust-stmts", "CREATE TABLE a (id bigint);\nCREATE INDEX CONCURRENTLY i ON a (id);",
     False),
    ("prefer-text-field", "CREATE TABLE t (name varchar(20));", True),
    ("prefer-timestamp-tz", "CREATE TABLE t (at timestamp);", True),
    ("renaming-column", "ALTER TABLE users RENAME COLUMN bio TO about;", True),
    ("renaming-object", "ALTER INDEX users_email_idx RENAME TO users_mail_idx;", True),
    ("renaming-table", "ALTER TABLE users RENAME TO people;", True),
    ("require-concurrent-index-creation", "CREATE INDEX i ON users (a);", True),
    ("require-concurrent-index-deletion", "DROP INDEX i;", True),
    ("require-concurrent-partition-detach", "ALTER TABLE events DETACH PARTITION events_2020;",
     True),
    ("require-concurrent-reindex", "REINDEX INDEX i;", True),
    ("require-enum-value-ordering", "ALTER TYPE mood ADD VALUE 'meh';", True),
    ("require-lock-timeout", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", True),
    ("require-statement-timeout", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", True),
    ("transaction-nesting", "BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;", False),
]


#: Matched rules without a small file: squawk 2.70 reports prefer-repack neither on VACUUM FULL
#: nor on CLUSTER (RSK021 and RSK022 flag both).
NO_EXAMPLE = {"prefer-repack"}


def squawk_binary() -> str | None:
    found = shutil.which("squawk") or str(Path(sys.executable).with_name("squawk"))
    return found if Path(found).is_file() else None


SQUAWK = squawk_binary()
needs_squawk = pytest.mark.skipif(SQUAWK is None, reason="squawk-cli is not installed")


def run_squawk(files: list[Path], *, in_transaction: bool = True) -> dict[str, set[str]]:
    """squawk's rule names per file (its JSON reporter; exit 1 just means it found something)."""
    assert SQUAWK is not None
    args = [SQUAWK, "--reporter", "json", *(["--assume-in-transaction"] if in_transaction else []),
            *map(str, files)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    found: dict[str, set[str]] = {str(f): set() for f in files}
    for result in json.loads(proc.stdout or "[]"):
        found.setdefault(result["file"], set()).add(result["rule_name"])
    return found


def ours(report: MigrationReport) -> set[str]:
    """The codes we report on a migration, and the rules that only classify it."""
    return {f.code for f in report.findings} | {f.code for f in report.fired}


def our_codes(rule: str) -> tuple[str, ...]:
    return MATCHED[rule] if rule in MATCHED else NARROWER[rule][0]


def test_every_squawk_rule_is_matched_narrower_or_explained_exactly_once() -> None:
    kinds = [*MATCHED, *NARROWER, *EXPLAINED]
    assert len(kinds) == len(set(kinds))
    assert {rule for rule, _, _ in EXAMPLES} == (set(MATCHED) | set(NARROWER)) - NO_EXAMPLE


@needs_squawk
@pytest.mark.parametrize("transactional", [True, False])
def test_on_small_files_squawk_and_we_report_the_same_rule(tmp_path: Path,
                                                           transactional: bool) -> None:
    examples = [(rule, sql) for rule, sql, tx in EXAMPLES if tx is transactional]
    files = []
    for number, (_, sql) in enumerate(examples):
        files.append(tmp_path / f"{number:03d}.sql")
        files[-1].write_text(sql + "\n", encoding="utf-8")
    squawk = run_squawk(files, in_transaction=transactional)
    missing = []
    for path, (rule, sql) in zip(files, examples, strict=True):
        explicit = sql.startswith("BEGIN;") and transactional
        assert rule in (run_squawk([path], in_transaction=False) if explicit else squawk)[
            str(path)], f"squawk no longer reports {rule} on {sql!r}"
        report = check(tmp_path / path.stem, sql, tables=None if transactional else (),
                       transactional=transactional, lock_timeout_assumed=False)
        if not ours(report) & set(our_codes(rule)):
            missing.append((rule, sql, sorted(ours(report))))
    assert missing == []


@needs_squawk
@pytest.mark.skipif(not CORPORA.is_dir(), reason="shared/corpora is not next to the repository")
def test_on_the_corpora_every_squawk_finding_is_matched_on_its_file_or_explained() -> None:
    roots = sorted(CORPORA.glob("*/services"))
    if not roots:
        pytest.skip("no migration sets in shared/corpora")
    mine: dict[str, set[str]] = {}
    for root in roots:
        project = load_project(root)
        for service in project.services.values():
            for _, migration in sorted(service.migrations.items()):
                if migration.up is not None:
                    report = check_migration(migration, service.schema, AnalysisCache())
                    mine[str(migration.up.path)] = ours(report)
    squawk = run_squawk([Path(f) for f in sorted(mine)])
    unmatched = []
    occurred: set[str] = set()
    for file, rules in sorted(squawk.items()):
        occurred |= rules
        for rule in sorted(rules):
            if rule in NARROWER or rule in EXPLAINED:
                continue
            if rule not in MATCHED or not mine.get(file, set()) & set(MATCHED[rule]):
                unmatched.append((Path(file).name, rule, sorted(mine.get(file, set()))))
    assert unmatched == []
    assert occurred, "squawk found nothing on the corpora: is it running?"


def docs_squawk_table() -> dict[str, str]:
    """``squawk rule -> what our column says`` from docs/sql-rules.md's squawk table."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Compared with squawk", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z-]+)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_docs_table_gives_every_squawk_rule_our_code_or_the_reason() -> None:
    rows = docs_squawk_table()
    for rule, codes in MATCHED.items():
        assert all(f"`{code}`" in rows[rule] for code in codes), rule
    for rule, (codes, why) in NARROWER.items():
        assert all(f"`{code}`" in rows[rule] for code in codes) and why in rows[rule], rule
    for rule, why in EXPLAINED.items():
        assert why in rows[rule], rule
