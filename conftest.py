"""The PyTorch notebook needs PyTorch: the core install (no torch) does not collect it;
the README's test command installs ``torch==2.13.0`` and runs it."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["notebooks/06-pytorch.ipynb"]
