"""The templates post the Markdown report as ONE pull / merge request comment, updated on each
push (issue 13). The GitLab note script runs here against a stand-in of GitLab's notes API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from test_ci_templates import GITHUB_WORKFLOW, GITLAB_JOB, _run_script, _yaml, checkout

from pytest_migorch.reports.markdown import MARKER

__all__ = ["checkout"]  # the fixture, imported for these tests


def test_github_workflow_writes_and_posts_the_report(checkout: Path) -> None:
    job = _yaml(GITHUB_WORKFLOW)["jobs"]["migorch"]
    assert job["permissions"]["pull-requests"] == "write"
    steps = job["steps"]
    test_step = next(s for s in steps if s.get("name") == "Test migrations")
    done = _run_script(test_step["run"], checkout, {**job["env"], "BASE_REF": "main",
                                                    "SHARD": "1", "SHARDS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    report = (checkout / "migorch-report.md").read_text(encoding="utf-8")
    assert report.splitlines()[0] == MARKER
    comment = next(s for s in steps if s.get("name") == "Comment on the pull request")
    assert comment["uses"].startswith("actions/github-script@")
    assert "pull_request" in comment["if"] and "migorch-report.md" in comment["if"]
    assert "strategy.job-total == 1" in comment["if"]  # a shard's report covers its share
    assert comment["continue-on-error"] is True  # forks get a read-only token
    script = comment["with"]["script"]
    assert "readFileSync('migorch-report.md'" in script
    assert "updateComment" in script and "createComment" in script
    assert steps.index(comment) > steps.index(test_step)


class FakeNotes(BaseHTTPRequestHandler):
    """GitLab's merge request notes API, as much as the job uses."""

    notes: list[dict[str, Any]] = []
    calls: list[tuple[str, str, str | None]] = []

    def _reply(self, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length", 0))
        return dict(json.loads(self.rfile.read(length)))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.calls.append(("GET", self.path, self.headers.get("PRIVATE-TOKEN")))
        self._reply(self.notes)

    def do_POST(self) -> None:  # noqa: N802
        self.calls.append(("POST", self.path, self.headers.get("PRIVATE-TOKEN")))
        note = {"id": 100 + len(self.notes), **self._body()}
        self.notes.append(note)
        self._reply(note)

    def do_PUT(self) -> None:  # noqa: N802
        self.calls.append(("PUT", self.path, self.headers.get("PRIVATE-TOKEN")))
        note_id = int(self.path.rsplit("/", 1)[1])
        note = next(n for n in self.notes if n["id"] == note_id)
        note.update(self._body())
        self._reply(note)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gitlab_api() -> Iterator[str]:
    FakeNotes.notes = [{"id": 99, "body": "LGTM"}]  # a reviewer's note, left alone
    FakeNotes.calls = []
    server = HTTPServer(("127.0.0.1", 0), FakeNotes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    server.server_close()


def test_gitlab_job_posts_one_note_and_updates_it(tmp_path: Path, gitlab_api: str) -> None:
    job = _yaml(GITLAB_JOB)[".migorch"]
    assert "migorch-report.md" in job["artifacts"]["paths"]
    assert "--migorch-markdown=migorch-report.md" in job["script"][1]
    (note_script,) = job["after_script"]
    env = {"CI_API_V4_URL": gitlab_api, "CI_PROJECT_ID": "7", "CI_MERGE_REQUEST_IID": "3",
           "MIGORCH_GITLAB_TOKEN": "glpat-test"}
    (tmp_path / "migorch-report.md").write_text(f"{MARKER}\nfirst\n", encoding="utf-8")
    done = _run_script(note_script, tmp_path, env)
    assert done.returncode == 0 and "posted" in done.stdout, done.stderr
    (tmp_path / "migorch-report.md").write_text(f"{MARKER}\nsecond\n", encoding="utf-8")
    done = _run_script(note_script, tmp_path, env)
    assert done.returncode == 0 and "updated" in done.stdout, done.stderr
    ours = [n for n in FakeNotes.notes if n["body"].startswith(MARKER)]
    assert [n["body"] for n in ours] == [f"{MARKER}\nsecond\n"]
    assert [(m, p.split("?")[0]) for m, p, _ in FakeNotes.calls] == [
        ("GET", "/api/v4/projects/7/merge_requests/3/notes"),
        ("POST", "/api/v4/projects/7/merge_requests/3/notes"),
        ("GET", "/api/v4/projects/7/merge_requests/3/notes"),
        ("PUT", "/api/v4/projects/7/merge_requests/3/notes/101")]
    assert {token for _, _, token in FakeNotes.calls} == {"glpat-test"}


def test_gitlab_job_without_a_token_posts_nothing(tmp_path: Path, gitlab_api: str) -> None:
    (note_script,) = _yaml(GITLAB_JOB)[".migorch"]["after_script"]
    (tmp_path / "migorch-report.md").write_text(f"{MARKER}\n", encoding="utf-8")
    done = _run_script(note_script, tmp_path, {"CI_API_V4_URL": gitlab_api,
                                               "CI_PROJECT_ID": "7", "CI_MERGE_REQUEST_IID": "3"})
    assert done.returncode == 0 and FakeNotes.calls == []
