"""``python -m symbolic_inversion``: the command line."""
import sys

from .cli import main

sys.exit(main())
