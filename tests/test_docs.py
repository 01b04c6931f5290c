"""The documentation builds with warnings as errors, and its examples are true."""

import re
import subprocess
import sys
from pathlib import Path

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
