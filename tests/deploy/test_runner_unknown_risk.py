"""The protected-environment gate against a real PostgreSQL: a statement the analysis cannot
see into (a DO block running EXECUTE) under a declared low risk is not applied without --yes."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_runner, query, service_files, write_service

from pytest_migorch.deploy.runner import Refused

CREATE = "CREATE TABLE users (id int);\n"
DO_DROP = "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$;\n"


def _service(root: Path, second_up: str) -> None:
    files = service_files({"000001_a": {"affects_tables": ["users"]},
                           "000002_b": {"affects_tables": ["users"], "risk_level": "low"}})
    files["000001_a.up.sql"] = CREATE
    files["000002_b.up.sql"] = second_up
    files["000002_b.down.sql"] = CREATE
    write_service(root, "svc", files)


def test_an_opaque_statement_needs_yes_in_production(tmp_path: Path, fresh_db: str) -> None:
    _service(tmp_path, DO_DROP)
    run = make_runner(tmp_path, fresh_db)
    with pytest.raises(Refused, match=r"protected .* svc:000002_b"):
        run.up(["svc"], "production")
    assert query(fresh_db, "SELECT to_regclass('svc.users') IS NULL")[0][0]  # nothing ran
    run.up(["svc"], "production", allow_high_risk=True)
    assert query(fresh_db, "SELECT to_regclass('svc.users') IS NULL")[0][0]  # dropped


def test_a_reviewed_opaque_statement_keeps_its_declared_level(tmp_path: Path,
                                                              fresh_db: str) -> None:
    _service(tmp_path, "-- migorch:ignore SQL002 reviewed: a no-op\nDO $$ BEGIN NULL; END $$;\n")
    run = make_runner(tmp_path, fresh_db)
    run.up(["svc"], "production")
    assert query(fresh_db, "SELECT to_regclass('svc.users') IS NOT NULL")[0][0]
