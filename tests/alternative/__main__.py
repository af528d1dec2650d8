import sys

from tests.alternative import main

sys.exit(main())
