"""What ``migorch`` prints, and the rule that printing never stops or hides a deploy.

``migorch up | head -3`` closes the pipe after three lines. A deploy must not die of that (a
half-applied plan that reports success is worse than any lost line), so :func:`guarded_output`
puts :class:`GuardedStream` in front of stdout and stderr: an output failure (broken pipe,
EPIPE, a closed stream, a full disk) is remembered, later output is discarded, and the command
runs on and exits with its real outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from pytest_migorch.deploy.applying import StepOutcome
    from pytest_migorch.deploy.planning import Plan, PlanStep
    from pytest_migorch.deploy.runner import RunResult

__all__ = ["GuardedStream", "guarded_output", "TextReporter", "print_json", "print_result"]


class GuardedStream:
    """A text stream whose write and flush never raise: the first failure switches it off.

    The file descriptor is then pointed at ``/dev/null``, so the interpreter's own flush at
    exit cannot fail either (which would print a traceback and exit 120)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.failure: BaseException | None = None
        self._lock = threading.Lock()  # the progress ticker writes from its own thread

    def write(self, text: str) -> int:
        with self._lock:
            if self.failure is None:
                try:
                    self.stream.write(text)
                except (OSError, ValueError) as exc:  # ValueError: the stream is closed
                    self._switch_off(exc)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self.failure is None:
                try:
                    self.stream.flush()
                except (OSError, ValueError) as exc:
                    self._switch_off(exc)

    def isatty(self) -> bool:
        try:
            return self.failure is None and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def _switch_off(self, exc: BaseException) -> None:
        self.failure = exc
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer ... of the real stream
        return getattr(self.stream, name)


@contextlib.contextmanager
def guarded_output() -> Iterator[tuple[GuardedStream, GuardedStream]]:
    """Guard ``sys.stdout`` and ``sys.stderr`` for the duration of one command."""
    saved = sys.stdout, sys.stderr
    out, err = GuardedStream(saved[0]), GuardedStream(saved[1])
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


class TextReporter:
    """Plain lines, or a live progress line on a terminal."""

    def __init__(self, stream: IO[str], root: Path) -> None:
        self.stream = stream
        self.root = root
        self.live = stream.isatty()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        self._line(f"note: {message}")

    def plan(self, plan: Plan) -> None:
        self._line(plan.render(self.root))

    def step_started(self, step: PlanStep, index: int, total: int) -> None:
        verb = "applying" if step.direction == "up" else "rolling back"
        head = f"[{index}/{total}] {verb} {step.label}"
        if not self.live:
            self._line(f"{head} (estimate {step.estimated_duration or '?'})")
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, args=(head, step, time.monotonic()),
                                        daemon=True)
        self._ticker.start()

    def _tick(self, head: str, step: PlanStep, began: float) -> None:
        from pytest_migorch.deploy.planning import format_seconds

        while not self._stop.wait(0.2):
            elapsed = time.monotonic() - began
            estimate = step.estimated_seconds
            bar = ""
            if estimate > 0:
                filled = min(int(20 * elapsed / estimate), 20)
                bar = " [" + "#" * filled + "-" * (20 - filled) + "]"
            self.stream.write(f"\r\033[K{head} {format_seconds(elapsed)} / estimate "
                              f"{step.estimated_duration or '?'}{bar}")
            self.stream.flush()

    def step_finished(self, outcome: StepOutcome, index: int, total: int) -> None:
        from pytest_migorch.deploy.planning import format_seconds

        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            self.stream.write("\r\033[K")
        step = outcome.step
        estimate = f" (estimate {step.estimated_duration})" if step.estimated_duration else ""
        status = outcome.status.replace("_", " ")
        self._line(f"[{index}/{total}] {status} {step.label} in "
                   f"{format_seconds(outcome.seconds)}{estimate}")


def print_result(result: RunResult, root: Path, *, as_json: bool) -> int:
    """The end of init, up, down and force: the SQL of a dry run, changes, a closing line."""
    from pytest_migorch.deploy.planning import format_seconds

    if as_json:
        print_json(result.to_json(root))
        return 0
    if result.sql:
        for step, text in result.sql:
            print(f"\n-- {step.direction}: {step.label} ({step.file})")
            print(text.rstrip())
    if result.dry_run:
        print("\nDry run: nothing was changed.")
    for change in result.changes:
        print(f"changed: {change}")
    if result.plan is not None and not result.dry_run and result.outcomes:
        took = sum(o.seconds for o in result.outcomes)
        verb = "applied" if result.plan.direction == "up" else "rolled back"
        print(f"Done: {verb} {len(result.outcomes)} migration(s) in {format_seconds(took)} "
              f"(estimated {format_seconds(result.plan.total_seconds)}).")
    return 0
