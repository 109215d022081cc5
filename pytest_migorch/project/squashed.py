"""``migrations/squashed/``: where ``migorch squash`` keeps the files a squash replaced.

Discovery ignores the directory (the files are history, not migrations to run), but the deploy
runner needs to know which migration ids a squash replaced, so that a database that applied
them one by one counts the squashed migration as applied instead of reporting every old row
as drift. That knowledge lives here, in the layer that reads migration directories.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["SQUASHED_DIR", "SQUASHED_TITLE", "is_squashed_title", "squashed_ids"]

#: The subdirectory of ``migrations/`` that holds replaced files.
SQUASHED_DIR = "squashed"
#: The title of a squashed migration: ``<version>_squashed_<how many it replaces>``.
SQUASHED_TITLE = re.compile(r"^squashed_[0-9]+$")
_FILE_NAME = re.compile(r"^([0-9]+)_(.*)\.(up|down)\.(.*)$")


def is_squashed_title(title: str) -> bool:
    """True for the title ``migorch squash`` gives the migration it writes."""
    return SQUASHED_TITLE.match(title) is not None


def squashed_ids(migrations_dir: Path) -> dict[str, int]:
    """``{migration id: version}`` of every file kept in ``migrations_dir/squashed/``.

    An unreadable or missing directory means nothing was squashed: the runner then treats old
    rows the way it always did (as drift), which is the safe reading."""
    directory = migrations_dir / SQUASHED_DIR
    try:
        names = [entry.name for entry in directory.iterdir() if entry.is_file()]
    except OSError:
        return {}
    out: dict[str, int] = {}
    for name in names:
        match = _FILE_NAME.match(name)
        if match:
            out[f"{match.group(1)}_{match.group(2)}"] = int(match.group(1))
    return out
