"""Sphinx configuration: MyST pages, the notebooks (not executed here), the API by autodoc.

Build with warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The notebooks live in ``../notebooks`` (reached through the ``docs/notebooks`` symlink)
and are executed by the test suite (nbmake), not by the documentation build.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import symbolic_inversion  # noqa: E402

project = "symbolic_inversion"
author = "symbolic_inversion developers"
copyright = "2026, " + author
version = release = symbolic_inversion.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

# SymPy-style numpydoc sections ("Parameters\n==========") are read by napoleon.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # Attributes as fields: no duplicate descriptions of dataclass fields
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the test suite runs the notebooks (nbmake)

exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_title = f"symbolic_inversion {release}"
