"""``python -m clinkd``: the ``clinkd`` command, for environments where the console script is not on PATH."""

import sys

from clinkd.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
