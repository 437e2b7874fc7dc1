"""`python -m ml.simulate`: the same as the `continuum-simulate` console script."""

import sys

from ml.simulate.cli import main

sys.exit(main())
