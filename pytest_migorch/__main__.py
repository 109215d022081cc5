"""``python -m pytest_migorch``: the same as the ``migorch`` command."""

import sys

from .cli import main

sys.exit(main())
