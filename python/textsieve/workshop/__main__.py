"""``python -m textsieve.workshop``: the same options as ``textsieve workshop``."""

import sys

from textsieve.workshop.cli import main

sys.exit(main())
