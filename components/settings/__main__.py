"""`python -m components.settings {flyway-version | reference | write-reference README.md}`."""

import sys

from components.settings.cli import main

sys.exit(main(sys.argv[1:]))
