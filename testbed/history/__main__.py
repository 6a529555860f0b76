"""``python -m testbed.history COMMAND ...``: the history commands without the main CLI."""

import sys

from testbed.history.commands import main

sys.exit(main())
