"""The notebooks are stored as nbformat writes them: valid, every cell with an id, no
outputs (the documentation build executes them, tests/test_docs.py).

References: nbformat's own validator and writer; nbformat 4.5 made cell ids required
and warns (MissingIDFieldWarning) that a cell without one will become an error.
"""

import warnings
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there_and_the_docs_see_them():
    assert len(NOTEBOOKS) >= 6
    docs = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
    assert sorted(p.name for p in docs.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_validates_with_cell_ids_and_no_outputs(path):
    with warnings.catch_warnings():
        # a missing id is a warning today and an error tomorrow: an error here
        warnings.simplefilter("error")
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    assert (notebook.nbformat, notebook.nbformat_minor) >= (4, 5)
    raw = nbformat.reads(path.read_text(encoding="utf-8"), as_version=nbformat.NO_CONVERT)
    ids = [cell.get("id") for cell in raw.cells]
    assert all(ids) and len(set(ids)) == len(ids), ids
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    # stored as nbformat writes it (an editor's save or `nbformat.write` changes nothing)
    assert path.read_text(encoding="utf-8") == nbformat.writes(notebook) + "\n", \
        f"{path.name}: save it with nbformat.write (ids from nbformat.validator.normalize)"
