"""`python -m tests.contract`: the harness command line (see tests/contract/harness/)."""

import sys

from tests.contract.harness import main

sys.exit(main())
