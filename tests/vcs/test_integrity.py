"""Integrity against a git base (``--migorch-base``), on real repositories built by each test."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_migorch.errors import UsageError
from pytest_migorch.findings import Finding, Severity
from pytest_migorch.model import Project
from pytest_migorch.project.validation import load_project
from pytest_migorch.vcs.git import GitRepository
from pytest_migorch.vcs.integrity import (
    RULES,
    changed_services,
    check_against_base,
    verify_base_ref,
    with_dependents,
)

USERS = "services/user-service/migrations"
ORDERS = "services/order-service/migrations"
BILLING = "services/billing-service/migrations"


def _entry(description: str, depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"description": description, "depends_on": depends_on or [],
            "affects_tables": [], "risk_level": "low", "estimated_duration": "1s", **extra}


class Repo:
    """A throwaway git repository with the services tree of these tests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()

    def write(self, relative: str, text: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="")

    def write_json(self, relative: str, value: Any) -> None:
        self.write(relative, json.dumps(value, indent=2) + "\n")

    def read_json(self, relative: str) -> Any:
        return json.loads((self.path / relative).read_text(encoding="utf-8"))

    def remove(self, relative: str) -> None:
        (self.path / relative).unlink()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def project(self) -> Project:
        return load_project(self.path / "services")


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits work without a user's git configuration (and ignore it)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Migorch Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """Three services released at tag ``v1``: user-service <- order-service <- billing-service."""
    repo = Repo(tmp_path / "repo")
    repo.write("README.md", "app\n")
    repo.write(f"{USERS}/000001_create_users.up.sql",
               "CREATE TABLE users (\n    id bigint PRIMARY KEY,\n    email text\n);\n")
    repo.write(f"{USERS}/000001_create_users.down.sql", "DROP TABLE users;\n")
    repo.write(f"{USERS}/000002_add_profiles.up.sql", "CREATE TABLE profiles (id bigint);\n")
    repo.write(f"{USERS}/000002_add_profiles.down.sql", "DROP TABLE profiles;\n")
    repo.write(f"{USERS}/development/000003_dev_data.up.sql", "INSERT INTO users VALUES (1);\n")
    repo.write(f"{USERS}/development/000003_dev_data.down.sql", "DELETE FROM users;\n")
    repo.write_json(f"{USERS}/environments.json", {"environments": {
        "development": {"migrations": ["development/000003_dev_data.up.sql"]},
        "production": {"migrations": []}}})
    repo.write_json(f"{USERS}/dependencies.json", {"migrations": {
        "000001": _entry("Create users"),
        "000002": _entry("Add profiles", ["000001"]),
        "000003": _entry("Dev data", ["000001"]),
    }})
    repo.write(f"{ORDERS}/000001_create_orders.up.sql", "CREATE TABLE orders (id bigint);\n")
    repo.write(f"{ORDERS}/000001_create_orders.down.sql", "DROP TABLE orders;\n")
    repo.write_json(f"{ORDERS}/dependencies.json", {"migrations": {
        "000001": _entry("Create orders", ["user-service:000001"])}})
    repo.write(f"{BILLING}/000001_create_invoices.up.sql", "CREATE TABLE invoices (id int);\n")
    repo.write(f"{BILLING}/000001_create_invoices.down.sql", "DROP TABLE invoices;\n")
    repo.write_json(f"{BILLING}/dependencies.json", {"migrations": {
        "000001": _entry("Create invoices", ["order-service:000001"])}})
    repo.commit("release 1")
    repo.git("tag", "v1")
    return repo


def _codes(findings: list[Finding]) -> list[str]:
    return sorted(f.code for f in findings)


def _only(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, findings
    return matching[0]


# --- rules --------------------------------------------------------------------------------------


def test_rules_are_integrity_rules_with_unique_codes() -> None:
    codes = [rule.code for rule in RULES]
    assert codes == sorted(set(codes)) and all(code.startswith("INT") for code in codes)
    severity = {rule.code: rule.severity for rule in RULES}
    assert severity["INT001"] is severity["INT002"] is Severity.ERROR
    assert severity["INT003"] is severity["INT004"] is Severity.WARNING


def test_no_change_no_findings(repo: Repo) -> None:
    assert check_against_base(repo.project(), "v1") == []
    assert check_against_base(repo.project(), "HEAD") == []


# --- edits, deletions, renames ------------------------------------------------------------------


def test_edited_released_migration_is_an_error_at_the_changed_line(repo: Repo) -> None:
    repo.write(f"{USERS}/000001_create_users.up.sql",
               "CREATE TABLE users (\n    id bigint PRIMARY KEY,\n    email text NOT NULL\n);\n")
    repo.commit("tighten email")
    finding = _only(check_against_base(repo.project(), "v1"), "INT001")
    assert finding.severity is Severity.ERROR
    assert finding.file == repo.path / USERS / "000001_create_users.up.sql"
    assert finding.line == 3
    assert (finding.service, finding.migration) == ("user-service", "000001_create_users")
    assert "exists at v1 and was edited" in finding.message


def test_uncommitted_edits_count_too(repo: Repo) -> None:
    repo.write(f"{USERS}/000002_add_profiles.down.sql", "DROP TABLE IF EXISTS profiles;\n")
    finding = _only(check_against_base(repo.project(), "v1"), "INT001")
    assert finding.file == repo.path / USERS / "000002_add_profiles.down.sql"
    assert finding.line == 1


def test_line_endings_alone_are_not_an_edit(repo: Repo) -> None:
    repo.write(f"{USERS}/000002_add_profiles.up.sql", "CREATE TABLE profiles (id bigint);\r\n")
    assert check_against_base(repo.project(), "v1") == []


def test_edited_environment_migration(repo: Repo) -> None:
    repo.write(f"{USERS}/development/000003_dev_data.up.sql", "INSERT INTO users VALUES (2);\n")
    finding = _only(check_against_base(repo.project(), "v1"), "INT001")
    assert finding.environment == "development"
    assert finding.file == repo.path / USERS / "development" / "000003_dev_data.up.sql"


def test_deleted_released_migration_is_one_error(repo: Repo) -> None:
    repo.remove(f"{USERS}/000002_add_profiles.up.sql")
    repo.remove(f"{USERS}/000002_add_profiles.down.sql")
    repo.commit("drop profiles migration")
    finding = _only(check_against_base(repo.project(), "v1"), "INT002")
    assert finding.severity is Severity.ERROR
    assert finding.migration == "000002_add_profiles"
    assert "000002_add_profiles.down.sql, 000002_add_profiles.up.sql" in finding.message


def test_deleted_service_is_reported(repo: Repo) -> None:
    for name in ("000001_create_invoices.up.sql", "000001_create_invoices.down.sql",
                 "dependencies.json"):
        repo.remove(f"{BILLING}/{name}")
    findings = check_against_base(repo.project(), "v1")
    finding = _only(findings, "INT002")
    assert finding.service == "billing-service"


def test_renamed_released_migration_is_reported_as_a_rename(repo: Repo) -> None:
    (repo.path / USERS / "000002_add_profiles.up.sql").rename(
        repo.path / USERS / "000002_add_user_profiles.up.sql")
    findings = check_against_base(repo.project(), "v1")
    finding = _only(findings, "INT005")
    assert finding.severity is Severity.ERROR
    assert "renamed to 000002_add_user_profiles.up.sql;" in finding.message
    assert "id 000002_add_profiles" in finding.message
    assert finding.file == repo.path / USERS / "000002_add_user_profiles.up.sql"
    assert "INT002" not in _codes(findings) and "INT003" not in _codes(findings)


def test_renumbered_released_migration_is_found_by_content(repo: Repo) -> None:
    for direction in ("up", "down"):
        (repo.path / USERS / f"000002_add_profiles.{direction}.sql").rename(
            repo.path / USERS / f"000007_add_profiles.{direction}.sql")
    findings = check_against_base(repo.project(), "v1")
    assert _codes(findings) == ["INT005", "INT005"]
    assert all("version 2" in f.message and "version 7" in f.message for f in findings)


def test_zero_padding_is_the_same_version_but_a_new_id(repo: Repo) -> None:
    (repo.path / ORDERS / "000001_create_orders.up.sql").rename(
        repo.path / ORDERS / "1_create_orders.up.sql")
    finding = _only(check_against_base(repo.project(), "v1"), "INT005")
    assert "id 000001_create_orders" in finding.message and "id 1_create_orders" in finding.message


def test_rename_with_edit_says_so(repo: Repo) -> None:
    repo.remove(f"{USERS}/000002_add_profiles.up.sql")
    repo.write(f"{USERS}/development/000002_add_profiles.up.sql", "CREATE TABLE p (id int);\n")
    finding = _only(check_against_base(repo.project(), "v1"), "INT005")
    assert "renamed to development/000002_add_profiles.up.sql and edited" in finding.message


def test_down_file_added_to_a_released_migration_is_a_warning(repo: Repo) -> None:
    repo.remove(f"{ORDERS}/000001_create_orders.down.sql")
    repo.commit("irreversible")
    repo.git("tag", "v2")
    repo.write(f"{ORDERS}/000001_create_orders.down.sql", "DROP TABLE orders;\n")
    finding = _only(check_against_base(repo.project(), "v2"), "INT001")
    assert finding.severity is Severity.WARNING
    assert "adds a down file" in finding.message


# --- new migrations -----------------------------------------------------------------------------


def test_new_migration_at_or_below_the_newest_is_a_warning(repo: Repo) -> None:
    # The newest version of user-service at v1 is 3, an environment migration.
    repo.write(f"{USERS}/000003_late.down.sql", "SELECT 1;\n")
    repo.write(f"{USERS}/000003_late.up.sql", "SELECT 1;\n")
    repo.write(f"{USERS}/2_fix.up.sql", "SELECT 2;\n")  # a second up file for version 2
    repo.write(f"{USERS}/000004_next.up.sql", "SELECT 1;\n")
    repo.write(f"{USERS}/000004_next.down.sql", "SELECT 1;\n")
    findings = check_against_base(repo.project(), "v1")
    assert _codes(findings) == ["INT003", "INT003"]
    late, fix = sorted(findings, key=lambda f: f.migration or "")
    assert late.migration == "000003_late" and late.severity is Severity.WARNING
    assert late.file == repo.path / USERS / "000003_late.up.sql"
    assert "reuses version 3, which 000003_dev_data already has at v1" in late.message
    assert fix.migration == "2_fix" and "reuses version 2" in fix.message


def test_new_migration_below_the_newest_without_reusing_a_version(repo: Repo) -> None:
    repo.write(f"{ORDERS}/000005_later.up.sql", "SELECT 1;\n")
    repo.commit("orders 5")
    repo.git("tag", "v2")
    repo.write(f"{ORDERS}/000003_gap.up.sql", "SELECT 1;\n")
    finding = _only(check_against_base(repo.project(), "v2"), "INT003")
    assert "numbered at or below 5, the newest version of order-service at v2" in finding.message


def test_new_migration_in_a_new_service_is_fine(repo: Repo) -> None:
    repo.write("services/new-service/migrations/000001_init.up.sql", "SELECT 1;\n")
    assert check_against_base(repo.project(), "v1") == []


# --- dependencies.json --------------------------------------------------------------------------


def test_changed_metadata_of_released_migration(repo: Repo) -> None:
    data = repo.read_json(f"{USERS}/dependencies.json")
    data["migrations"]["000002"]["risk_level"] = "high"
    data["migrations"]["000002"]["depends_on"] = []
    data["migrations"]["000004"] = _entry("New one")  # a new entry: nothing to report
    repo.write_json(f"{USERS}/dependencies.json", data)
    finding = _only(check_against_base(repo.project(), "v1"), "INT004")
    assert finding.severity is Severity.WARNING
    assert finding.migration == "000002_add_profiles"
    assert 'depends_on ["user-service:1"] -> []' in finding.message
    assert 'risk_level "low" -> "high"' in finding.message
    text = (repo.path / USERS / "dependencies.json").read_text().splitlines()
    assert finding.line is not None and text[finding.line - 1].strip().startswith('"000002"')


def test_equivalent_metadata_spellings_are_not_a_change(repo: Repo) -> None:
    data = repo.read_json(f"{USERS}/dependencies.json")
    entry = data["migrations"].pop("000002")
    entry["depends_on"] = ["1"]
    data["migrations"]["2"] = entry
    data["migrations"]["000001"]["transactional"] = True  # the default, spelled out
    repo.write_json(f"{USERS}/dependencies.json", data)
    assert check_against_base(repo.project(), "v1") == []


def test_removed_metadata_entry(repo: Repo) -> None:
    data = repo.read_json(f"{ORDERS}/dependencies.json")
    del data["migrations"]["000001"]
    repo.write_json(f"{ORDERS}/dependencies.json", data)
    finding = _only(check_against_base(repo.project(), "v1"), "INT004")
    assert "its entry was removed" in finding.message and finding.line is None


# --- which revision is the base -----------------------------------------------------------------


def test_base_branch_that_moved_on_is_compared_at_the_merge_base(repo: Repo) -> None:
    """Work that landed on main after the branch was cut is not this change's deletion; a
    version that main took meanwhile is still caught."""
    repo.git("checkout", "-q", "-b", "feature")
    repo.write(f"{ORDERS}/000002_add_status.up.sql", "ALTER TABLE orders ADD status text;\n")
    repo.write(f"{ORDERS}/000002_add_status.down.sql", "ALTER TABLE orders DROP status;\n")
    repo.commit("feature: order status")
    repo.git("checkout", "-q", "main")
    repo.write(f"{ORDERS}/000002_add_total.up.sql", "ALTER TABLE orders ADD total int;\n")
    repo.write(f"{ORDERS}/000002_add_total.down.sql", "ALTER TABLE orders DROP total;\n")
    repo.write(f"{USERS}/000001_create_users.up.sql", "CREATE TABLE users (id int);\n")
    repo.commit("main: order totals, users edited on main")
    repo.git("checkout", "-q", "feature")
    findings = check_against_base(repo.project(), "main")
    finding = _only(findings, "INT003")
    assert finding.migration == "000002_add_status"
    assert "reuses version 2, which 000002_add_total already has at main" in finding.message
    assert _codes(findings) == ["INT003"]


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "services" / "a" / "migrations").mkdir(parents=True)
    with pytest.raises(UsageError, match="not inside"):
        check_against_base(load_project(tmp_path / "services"), "main")


def test_unknown_ref_explains_shallow_clones(repo: Repo) -> None:
    with pytest.raises(UsageError, match="no such commit.*fetch-depth: 0"):
        check_against_base(repo.project(), "origin/does-not-exist")
    with pytest.raises(UsageError):
        verify_base_ref(repo.path / "services", "--output=/tmp/x")


def test_verify_base_ref_resolves_the_merge_base(repo: Repo) -> None:
    tagged = repo.git("rev-parse", "v1")
    repo.write("README.md", "changed\n")
    repo.commit("later")
    base = verify_base_ref(repo.path / "services", "v1")
    assert (base.commit, base.merge_base) == (tagged, tagged)


def test_root_at_the_top_of_the_repository(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "flat")
    repo.write("svc/migrations/000001_a.up.sql", "SELECT 1;\n")
    repo.commit("one")
    repo.write("svc/migrations/000001_a.up.sql", "SELECT 2;\n")
    finding = _only(check_against_base(load_project(repo.path), "HEAD"), "INT001")
    assert finding.file == repo.path / "svc" / "migrations" / "000001_a.up.sql"


def test_git_reads_many_blobs_in_one_go(repo: Repo) -> None:
    git = GitRepository.containing(repo.path)
    tree = git.list_tree("v1", "services")
    contents = git.read_blobs(tree.values())
    assert contents[tree[f"{USERS}/000001_create_users.down.sql"]] == b"DROP TABLE users;\n"


# --- what a change touches ----------------------------------------------------------------------


def test_changed_services_and_their_dependents(repo: Repo) -> None:
    assert changed_services(repo.project(), "v1") == set()
    repo.write(f"{USERS}/000004_add_phone.up.sql", "ALTER TABLE users ADD phone text;\n")  # new
    repo.write("services/user-service/README.md", "not a migration\n")
    project = repo.project()
    assert changed_services(project, "v1") == {"user-service"}
    assert with_dependents(project, {"user-service"}) == {
        "user-service", "order-service", "billing-service"}
    assert with_dependents(project, {"order-service"}) == {"order-service", "billing-service"}
    assert with_dependents(project, {"billing-service"}) == {"billing-service"}
    assert with_dependents(project, set()) == set()


def test_changed_services_sees_committed_and_metadata_changes(repo: Repo) -> None:
    data = repo.read_json(f"{BILLING}/dependencies.json")
    data["migrations"]["000001"]["estimated_duration"] = "2s"
    repo.write_json(f"{BILLING}/dependencies.json", data)
    repo.commit("billing estimate")
    repo.write(f"{ORDERS}/000001_create_orders.down.sql", "DROP TABLE IF EXISTS orders;\n")
    assert changed_services(repo.project(), "v1") == {"billing-service", "order-service"}


# --- one parser: the base tree goes through discovery and the config loader ---------------------


def test_an_entry_the_schema_rejects_is_left_to_the_config_checks(repo: Repo) -> None:
    """The working entry is read by the config loader, which reports it (CFG002): not a
    second finding that compares it as if it were valid."""
    data = repo.read_json(f"{USERS}/dependencies.json")
    data["migrations"]["000002"]["risk_level"] = "extreme"
    repo.write_json(f"{USERS}/dependencies.json", data)
    assert check_against_base(repo.project(), "v1") == []


def test_a_duplicate_version_added_next_to_a_released_one(repo: Repo) -> None:
    """Discovery keeps one file per version and direction; integrity still sees the other
    (golang-migrate would see both), so the released file is not taken for renamed."""
    repo.write(f"{USERS}/2_fix.up.sql", "SELECT 2;\n")
    findings = check_against_base(repo.project(), "v1")
    assert _codes(findings) == ["INT003"]
    assert "reuses version 2" in findings[0].message


def test_released_migrations_are_read_with_discovery_rules(repo: Repo) -> None:
    """A base file that golang-migrate cannot read (its version overflows uint64) is no
    released migration: deleting it now is not reported as deleting a released one."""
    big = "18446744073709551616_never"
    repo.write(f"{USERS}/{big}.up.sql", "SELECT 1;\n")
    repo.write(f"{USERS}/{big}.down.sql", "SELECT 1;\n")
    repo.commit("an unreadable version")
    repo.git("tag", "-f", "v1")
    repo.remove(f"{USERS}/{big}.up.sql")
    repo.remove(f"{USERS}/{big}.down.sql")
    assert check_against_base(repo.project(), "v1") == []
