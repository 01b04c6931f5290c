"""The documentation builds with warnings as errors, and its examples are true."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from symbolic_inversion import Network, Trace, simulate

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_sphinx_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    html = tmp_path / "html"
    api = (html / "api.html").read_text(encoding="utf-8")
    for name in ("InversionSystem", "simulate", "one_sample_closed_form", "Solution"):
        assert name in api, name
    assert "Parameter order" in (html / "trace-format.html").read_text(encoding="utf-8")
    index = (html / "index.html").read_text(encoding="utf-8")
    # the glob toctree picks up every page and every notebook
    for page in DOCS.glob("*.md"):
        if page.stem != "index":
            assert f'href="{page.stem}.html"' in index, page.stem
    for notebook in (DOCS / "notebooks").glob("*.ipynb"):
        page = html / "notebooks" / f"{notebook.stem}.html"
        assert page.exists(), notebook.stem
        # executed by the build: every notebook draws at least one figure into its page
        assert _figures(page), notebook.stem
    first = (html / "notebooks" / "01-inside-out.html").read_text(encoding="utf-8")
    # a Solution and a Certificate as HTML tables, an InversionSystem as LaTeX
    assert first.count('<table class="si-table') >= 8
    assert ">certified</span>" in first and ">converged</span>" in first
    assert "\\begin{cases}" in first and "equations in 4 unknowns" in first
    assert len(_figures(html / "plotting.html")) == 4
    quickstart = (html / "quickstart.html").read_text(encoding="utf-8")
    assert ">converged</span>" in quickstart and ">certified</span>" in quickstart


def _figures(page):
    """The images a page shows whose files the build wrote (figures from executed cells)."""
    text = page.read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]*src="([^"]+\.png)"', text)
    return [s for s in sources if (page.parent / s).is_file()]


def test_the_trace_format_example_is_what_simulate_writes():
    text = (DOCS / "trace-format.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    trace = Trace.from_json(example)
    expected = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], "0.1",
                        epochs=2, init=["0.5", "0.5"], dps=8)
    assert trace.parameters == expected.parameters
    assert (trace.network, trace.lr, trace.samples) == (expected.network, expected.lr, 2)


# the docs extra without PyTorch: a module finder that says "no torch" (the kernels that
# execute the notebooks inherit it through PYTHONPATH)
NO_TORCH = '''
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return None

sys.meta_path.insert(0, NoTorch())
'''


def test_the_docs_extra_builds_without_pytorch(tmp_path):
    # issue 27: pip install ".[docs]" then sphinx-build docs out crashed in notebook 06
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    import shutil
    source = tmp_path / "docs"
    (source / "notebooks").mkdir(parents=True)
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    shutil.copytree(DOCS / "_static", source / "_static")
    torch_notebooks = [path for path in sorted((DOCS / "notebooks").glob("*.ipynb"))
                       if "import torch" in path.read_text(encoding="utf-8")]
    assert {"06-pytorch", "07-adam-classifier"} <= {path.stem for path in torch_notebooks}
    for path in torch_notebooks:
        shutil.copy(path, source / "notebooks")
        # the pages a notebook links to ({doc}`../relu`), as stubs of this small tree
        for page in re.findall(r"\{doc\}`\.\./([\w-]+)`", path.read_text(encoding="utf-8")):
            (source / f"{page}.md").write_text(f"# {page}\n")
    (source / "index.md").write_text("# Docs\n\n```{toctree}\n:glob:\n\nnotebooks/*\n*\n```\n")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_TORCH)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(shim), str(DOCS.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env,
                           capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'torch'" in probe.stderr
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(source), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-5000:]
    for path in torch_notebooks:
        html = tmp_path / "html" / "notebooks" / f"{path.stem}.html"
        page = html.read_text(encoding="utf-8")
        assert "This page was built without PyTorch" in page, path.stem
        assert "TraceRecorder" in page, path.stem      # the code is shown ...
        assert not _figures(html), path.stem           # ... not run
        assert "cell_output" not in page, path.stem


def test_every_limit_is_in_the_reliability_table():
    import dataclasses

    from symbolic_inversion import Limits
    text = (DOCS / "reliability.md").read_text(encoding="utf-8")
    for item in dataclasses.fields(Limits):
        assert f"| `{item.name}` |" in text, item.name
