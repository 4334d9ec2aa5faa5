import sys

from textsieve.cli import main

sys.exit(main())
