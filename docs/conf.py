"""Sphinx configuration: MyST pages, the notebooks (executed here), the API by autodoc.

Build with warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The notebooks live in ``../notebooks`` (reached through the ``docs/notebooks`` symlink)
and are stored without outputs: the build executes every one of them, and the quick-start
and plotting pages, so the pages show fresh figures and tables, and an error in a notebook
fails the build (and with it ``tests/test_docs.py``).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import symbolic_inversion  # noqa: E402

# CI sets MPLBACKEND=Agg for headless tests; the kernels that execute the notebooks
# inherit it and would then draw nothing into the pages.  The inline backend renders
# every figure a cell makes as a PNG output (the kernel's own default).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

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
nb_execution_mode = "force"
nb_execution_timeout = 600  # per cell; the slowest (notebook 04's sgd table) takes ~30 s
nb_execution_raise_on_error = True
nb_execution_show_tb = True

exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
html_theme = "pydata_sphinx_theme"
html_title = "symbolic_inversion"  # short: the version is in the navigation bar
# Flat docs: the left "section navigation" would be empty; the top bar lists every page.
html_sidebars = {"**": []}
html_static_path = ["_static"]
html_css_files = ["wide.css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["theme-version"],
}
