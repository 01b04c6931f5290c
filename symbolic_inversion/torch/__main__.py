"""``python -m symbolic_inversion.torch SCRIPT.py [ARGS...]`` (:func:`main`)."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
