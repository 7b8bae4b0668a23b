"""``python -m harness``: the same CLI as the ``harness`` script."""

import sys

from harness.cli.main import main

sys.exit(main())
