"""``python -m linncore``: the ``linncore`` command (see :mod:`linncore.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
