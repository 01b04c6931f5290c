"""Sphinx configuration: MyST pages, the notebooks (executed here), the API by autodoc.

Build with warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The notebooks live in ``../notebooks`` (reached through the ``docs/notebooks`` symlink)
and are stored without outputs: the build executes every one of them, and the quick-start
and plotting pages, so the pages show fresh figures and tables, and an error in a notebook
fails the build (and with it ``tests/test_docs.py``).
"""

import importlib.util
import json
import os
import re
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


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# The docs extra does not install PyTorch (the torch extra's gigabytes): without it the
# notebooks that import it are shown with their code but not executed, and their pages
# say so (the note below), instead of failing the build.
NOTEBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notebooks")


def _imports_torch(path):
    with open(path, encoding="utf-8") as notebook:
        cells = json.load(notebook)["cells"]
    return any(re.search(r"^\s*(import|from) torch\b", "".join(cell["source"]), re.M)
               for cell in cells if cell["cell_type"] == "code")


TORCH_NOTEBOOKS = sorted("notebooks/" + name[:-len(".ipynb")]
                         for name in os.listdir(NOTEBOOKS)
                         if name.endswith(".ipynb")
                         and _imports_torch(os.path.join(NOTEBOOKS, name)))
TORCH = _importable("torch")
if not TORCH:
    nb_execution_excludepatterns = [name + ".ipynb" for name in TORCH_NOTEBOOKS]
WITHOUT_TORCH_NOTE = (
    "```{note}\nThis page was built without PyTorch (the `docs` extra does not install "
    "it): its cells are shown but were not run, so it has no outputs. Install PyTorch "
    "(`pip install \".[torch]\"`) and build the documentation again to see them.\n```")


def _note_unexecuted(app, docname, source):
    """Put :data:`WITHOUT_TORCH_NOTE` under the title of a PyTorch notebook when it is
    not executed (``source-read``: the notebook's JSON text, before myst-nb reads it)."""
    if TORCH or docname not in TORCH_NOTEBOOKS:
        return
    notebook = json.loads(source[0])
    note = {"cell_type": "markdown", "id": "built-without-pytorch", "metadata": {},
            "source": WITHOUT_TORCH_NOTE}
    notebook["cells"].insert(1, note)
    source[0] = json.dumps(notebook)


def setup(app):
    app.connect("source-read", _note_unexecuted)
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
