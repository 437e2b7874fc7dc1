"""`python -m ml.serving`: the same as the `continuum-serve` console script."""

import sys

from ml.serving.cli import main

sys.exit(main())
