"""The read-only git access of integrity checks: plain ``git`` subprocesses, no library.

Kept apart from the comparison (:mod:`pytest_migorch.vcs.integrity`), so the comparison reads
like its rules and this adapter is the one place that knows git's command line and output.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterable

from pytest_migorch.errors import MigorchError, UsageError

__all__ = ["GitRepository", "GitFailed"]


class GitRepository:
    """The few read-only git operations integrity checks need, as ``git`` subprocesses.

    Never writes to the repository: ``GIT_OPTIONAL_LOCKS=0`` keeps ``git diff`` from refreshing
    the index, so parallel pytest-xdist workers can run it side by side.
    """

    def __init__(self, toplevel: Path) -> None:
        self.toplevel = toplevel

    @classmethod
    def containing(cls, path: Path) -> GitRepository:
        """The repository whose work tree holds ``path``; UsageError when there is none."""
        directory = path if path.is_dir() else path.parent
        try:
            out = _run_git(["-C", str(directory), "rev-parse", "--show-toplevel"])
        except GitFailed as exc:
            raise UsageError(
                f"--migorch-base needs a git repository, but {path} is not inside one "
                f"({exc.stderr or 'git rev-parse failed'})"
            ) from exc
        return cls(Path(out.decode().strip()))

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return _run_git(["-C", str(self.toplevel), *args], stdin=stdin)

    def resolve(self, ref: str) -> str:
        """The commit id ``ref`` names; UsageError with a hint about shallow clones otherwise."""
        try:
            out = self.git("rev-parse", "--verify", "--quiet", "--end-of-options",
                           f"{ref}^{{commit}}")
        except GitFailed as exc:
            raise UsageError(
                f"--migorch-base {ref}: no such commit in {self.toplevel}. In CI, fetch the "
                "full history and the base branch (GitHub: actions/checkout with fetch-depth: 0; "
                "GitLab: GIT_DEPTH: 0 and `git fetch origin <branch>`)"
            ) from exc
        return out.decode().strip()

    def merge_base(self, commit: str) -> str:
        """The merge base of HEAD and ``commit``; ``commit`` itself when there is none."""
        try:
            out = self.git("merge-base", "HEAD", commit)
        except GitFailed:
            return commit  # no HEAD yet, or unrelated histories: compare with the ref itself
        return out.decode().strip() or commit

    def relative(self, path: Path) -> str:
        """``path`` relative to the top level, in git's spelling (``.`` for the top level)."""
        try:
            rel = path.resolve().relative_to(self.toplevel.resolve())
        except ValueError as exc:
            raise UsageError(f"{path} is outside the git work tree {self.toplevel}") from exc
        return rel.as_posix() or "."

    def list_tree(self, commit: str, path: str) -> dict[str, str]:
        """``{path relative to the top level: blob id}`` of every file under ``path``."""
        out = self.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", _pathspec(path))
        files: dict[str, str] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _mode, kind, blob = meta.decode().split(" ")
            if kind == "blob":
                files[name.decode("utf-8", "surrogateescape")] = blob
        return files

    def read_blobs(self, blobs: Iterable[str]) -> dict[str, bytes]:
        """The contents of many blobs in one ``git cat-file --batch`` process."""
        wanted = sorted(set(blobs))
        if not wanted:
            return {}
        out = self.git("cat-file", "--batch", stdin=("\n".join(wanted) + "\n").encode())
        contents: dict[str, bytes] = {}
        position = 0
        for blob in wanted:
            header_end = out.index(b"\n", position)
            header = out[position:header_end].decode().split(" ")
            size = int(header[2])
            start = header_end + 1
            contents[blob] = out[start:start + size]
            position = start + size + 1  # the content is followed by a newline
        return contents

    def changed_paths(self, commit: str, path: str) -> set[str]:
        """Paths under ``path`` that differ between ``commit`` and the working tree, untracked
        files included (relative to the top level)."""
        diff = self.git("diff", "--name-only", "-z", "--no-renames", commit, "--",
                        _pathspec(path))
        untracked = self.git("ls-files", "-z", "--others", "--exclude-standard", "--",
                             _pathspec(path))
        return {p.decode("utf-8", "surrogateescape")
                for p in (diff + b"\0" + untracked).split(b"\0") if p}


class GitFailed(MigorchError):
    """A git command failed; callers turn the expected cases into a UsageError that says what
    to do, and any other failure still reaches the user as a clean MigorchError."""

    def __init__(self, command: list[str], stderr: str) -> None:
        super().__init__(f"git {' '.join(command)} failed: {stderr}")
        self.stderr = stderr


def _pathspec(path: str) -> str:
    # ":(top,literal)" keeps names with glob characters literal and anchors at the top level.
    return ":(top,literal)" + ("" if path == "." else path)


def _run_git(args: list[str], *, stdin: bytes | None = None) -> bytes:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        done = subprocess.run(["git", *args], input=stdin, capture_output=True, env=env,
                              check=False)
    except OSError as exc:
        raise UsageError(f"--migorch-base needs the git command: {exc.strerror}") from exc
    if done.returncode != 0:
        raise GitFailed(args, done.stderr.decode(errors="replace").strip())
    return done.stdout
