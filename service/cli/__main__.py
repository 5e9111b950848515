"""`python -m service.cli`, the same as the `tally` console script."""

import sys

from service.cli import main

sys.exit(main())
