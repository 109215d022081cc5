"""``status`` tells "not set up" and "the wrong environment" from "all good" (issue 13)."""

from __future__ import annotations

from pathlib import Path

from helpers import make_runner


def test_status_of_a_database_never_initialised_is_a_problem(services: Path,
                                                             fresh_db: str) -> None:
    [report] = make_runner(services, fresh_db).status(["user-service"], "production")
    assert report.has_problems
    assert "Migration tracking table does not exist" in report.render_status()


def test_status_in_the_wrong_environment_says_so_first(services: Path, fresh_db: str) -> None:
    run = make_runner(services, fresh_db)
    run.up(["user-service"], "production")
    [report] = run.status(["user-service"], "staging")
    assert report.has_problems
    lines = report.render_status().splitlines()
    assert "deployed in this database as environment 'production', not 'staging'" in lines[1]
    [good] = run.status(["user-service"], "production")
    assert not good.has_problems
