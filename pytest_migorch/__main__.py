"""``python -m pytest_migorch``: the same as the ``migorch`` command."""

import sys

from pytest_migorch.cli.main import main

sys.exit(main())
