"""`python -m components.settings {flyway-version | reference | write-project-file FILE}`."""

import sys

from components.settings.cli import main

sys.exit(main(sys.argv[1:]))
