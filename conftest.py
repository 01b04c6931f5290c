"""The PyTorch notebooks need PyTorch: the core install (no torch) does not collect them;
the README's test command installs ``torch==2.13.0`` and runs them."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else [
    "notebooks/06-pytorch.ipynb", "notebooks/07-adam-classifier.ipynb"]
