"""The findings the round-trip can report, in catalogue order.

They live apart from :mod:`pytest_migorch.roundtrip.engine` so the engine stays about running
migrations; the engine re-exports ``RULES`` for :mod:`pytest_migorch.catalogue`.
"""

from __future__ import annotations

from pytest_migorch.findings import Family, Rule, Severity

__all__ = ["RULES"]

E, W, D = Severity.ERROR, Severity.WARNING, Family.DATABASE

UP_FAILED = Rule("DB001", "up-failed", E, D,
                 "The up migration fails on a database in the state it expects.",
                 "Fix the statement at the line given; PostgreSQL's message says why.")
DOWN_FAILED = Rule("DB002", "down-failed", E, D,
                   "The down migration fails right after its up migration.",
                   "Fix the down file so that it undoes exactly what the up file does.")
DOWN_RESIDUE = Rule("DB003", "down-residue", E, D,
                    "After up then down, the schema differs from before the up.",
                    "Make the down file drop or restore everything its up file changes.")
REUP_FAILED = Rule("DB004", "reup-failed", E, D,
                   "The up migration fails when applied again after its down.",
                   "Make the down file remove everything the up file creates, so up can run "
                   "again.")
REUP_DIFFERS = Rule("DB005", "reup-differs", E, D,
                    "Applying up again after down gives a different schema than the first up.",
                    "Make the down file restore the exact state the up file started from.")
PREREQUISITE_FAILED = Rule("DB006", "prerequisite-failed", E, D,
                           "A migration this one needs (earlier, or of another service) failed: "
                           "this one was not tested, or its up failed for want of what that "
                           "migration creates (the message names it).",
                           "Fix the failing prerequisite first, then test this one again.")
LOCKS_EXCEED_RISK = Rule("DB007", "locks-exceed-risk", E, D,
                         "PostgreSQL held blocking locks on existing tables (or rewrote them) "
                         "that the declared risk_level does not admit.",
                         "Raise risk_level, or change the migration (CONCURRENTLY, NOT VALID, "
                         "a new column instead of a type change).")
UNDECLARED_TABLE = Rule("DB008", "undeclared-table-seen", E, D,
                        "PostgreSQL saw the migration change a table that affects_tables does "
                        "not declare, and the static analysis did not see it either.",
                        "Add the table to affects_tables in dependencies.json.")
ANALYSIS_BLIND = Rule("DB009", "analysis-blind", W, D,
                      "PostgreSQL saw the migration change a table that the static analysis "
                      "did not derive from the SQL (e.g. inside a DO block or function).",
                      "Nothing to fix if affects_tables is right; consider a migorch:ignore or "
                      "simpler SQL.")

COLUMN_ORDER = Rule("DB010", "column-order-changed", W, D,
                    "After up then down, a table has its columns in another order (a re-added "
                    "column is appended: a down cannot put it back in place). It matters to "
                    "SELECT *, and to COPY and INSERT without a column list.",
                    "Name the columns in SELECT, COPY and INSERT; --migorch-strict-column-order "
                    "makes this an error.")

ROWS_BREAK_UP = Rule("DB011", "up-fails-with-rows", E, D,
                     "The up fails on tables with rows but passes on empty tables: it would "
                     "fail in production. With generated rows only a NOT NULL violation (a "
                     "column added NOT NULL without a default, SET NOT NULL) counts, which "
                     "any row causes; with the team's rows (migrations/testdata/<version>.sql) "
                     "every failure does (a new UNIQUE or CHECK, a cast, a foreign key).",
                     "Add a default or backfill before the constraint, or add the constraint "
                     "NOT VALID and validate it after cleaning the data.")
DOWN_LOSES_ROWS = Rule("DB012", "down-loses-rows", E, D,
                       "Rows present before the up are gone (or their values changed) after up "
                       "then down, in tables and columns that existed before the up.",
                       "Make the down keep the data (or copy it back); if the loss is "
                       "intended, say so with -- migorch:ignore DB012 reason.")
INVALID_INDEX_LEFT = Rule("DB013", "invalid-index-left", E, D,
                          "The up left an INVALID index (a CREATE INDEX CONCURRENTLY that "
                          "failed): it costs every write and serves no read, and IF NOT EXISTS "
                          "skips it on the retry.",
                          "Make the build succeed on existing rows (e.g. remove duplicates "
                          "before a unique index); drop the index with DROP INDEX "
                          "CONCURRENTLY before retrying.")
LOCK_STALL = Rule("DB014", "lock-wait-stalls", W, D,
                  "With a conflicting ACCESS SHARE lock held by another session, the up waited "
                  "for its lock without failing on lock_timeout: in production every query on "
                  "the table would queue behind it.",
                  "SET lock_timeout (e.g. '2s') at the top of the up file and retry the deploy "
                  "when it fails with SQLSTATE 55P03.")

SCAN_BELOW_RISK = Rule("DB015", "scan-exceeds-risk", E, D,
                       "The up read every row of a table that had rows (PostgreSQL's seq_scan "
                       "counter: validating SET NOT NULL, a CHECK or a foreign key, an UPDATE "
                       "or DELETE without a usable index) while holding its locks, and the "
                       "declared risk_level is below high (a rewrite or index build is DB007).",
                       "Raise risk_level to high, or avoid the scan under lock: add the "
                       "constraint NOT VALID and VALIDATE it in a later migration, a CHECK "
                       "(col IS NOT NULL) NOT VALID before SET NOT NULL, batched updates.")

RULES: tuple[Rule, ...] = (
    UP_FAILED, DOWN_FAILED, DOWN_RESIDUE, REUP_FAILED, REUP_DIFFERS, PREREQUISITE_FAILED,
    LOCKS_EXCEED_RISK, UNDECLARED_TABLE, ANALYSIS_BLIND, COLUMN_ORDER,
    ROWS_BREAK_UP, DOWN_LOSES_ROWS, INVALID_INDEX_LEFT, LOCK_STALL, SCAN_BELOW_RISK,
)
