"""Progress of long work: events to a callable, a bar or lines on stderr, never stdout.

References: the pipeline's own record of its paths (``solution.stats["paths"]``), the
counts of the system worked out by hand, the command line's stdout parsed as JSON.
"""

import io
import json
import re
import subprocess
import sys

import pytest

from symbolic_inversion import InputError, Network, recover, simulate
from symbolic_inversion.report import Progress


@pytest.fixture(scope="module")
def three_samples():
    return simulate(Network([1, 1], "tanh"), ["0.6", "0.2", "0.9"], ["0.5", "0.4", "0.1"],
                    lr="0.1", epochs=3, init=["0.5", "0.5"], dps=50)


def test_a_callable_receives_one_event_per_phase_and_path(three_samples):
    events = []
    solution = recover(three_samples, progress=events.append)
    assert solution.ok
    phases = [e["phase"] for e in events]
    assert phases[0] == "start" and phases[-1] == "done"
    assert events[1] == dict(events[1], phase="count", equations=6, unknowns=6)
    paths = [e for e in events if e["phase"] == "path"]
    # one event per path the pipeline ran, in order, with its kind
    recorded = solution.stats["paths"]
    assert [e["attempt"] for e in paths] == list(range(1, len(recorded) + 1))
    assert [e["kind"] for e in paths] == [p["path"] for p in recorded]
    from symbolic_inversion.solvers.pipeline import rounds_for
    # 6 paths a round, as many rounds as a search of 6 unknowns may take
    assert all(e["of"] == 6 * rounds_for(6) for e in paths)
    # a square system needs two paths that agree: two judged candidates
    assert phases.count("judge") == 2 and phases.count("refine") == 2
    assert events[-1]["status"] == "converged" and events[-1]["digits"] == solution.digits
    elapsed = [e["elapsed"] for e in events]
    assert elapsed == sorted(elapsed)


def test_without_tqdm_progress_writes_plain_lines(monkeypatch):
    for name in ("tqdm", "tqdm.std", "tqdm.auto"):  # importing any of them now fails
        monkeypatch.setitem(sys.modules, name, None)
    stream = io.StringIO()
    with Progress(bar=True, description="recover", stream=stream) as progress:
        progress.event("path", attempt=2, of=6, kind="moments", status="real root")
    assert stream.getvalue().startswith("recover: path 2/6 kind=moments status=real root [")


def test_the_bar_counts_paths_against_a_total_that_never_changes(three_samples):
    # Measured at e76f688: the bar's total went None -> 48 -> 1 on this very recovery.
    # "of" is the search's budget (6 paths a round, rounds_for(6) rounds); the search
    # stopped after the paths it needed, and the bar shrank its total to match.
    stream = io.StringIO()
    from symbolic_inversion.solvers.pipeline import rounds_for
    events = []
    with Progress(events.append, bar=True, description="recover", stream=stream) as progress:
        solution = recover(three_samples, progress=progress)
        used = len(solution.stats["paths"])
        assert progress.bar.n == used and progress.bar.total is None
    budget = 6 * rounds_for(6)
    assert {e["of"] for e in events if "of" in e} == {budget}  # the events are unchanged
    # one total for the whole recovery: the same after every event as at the first
    assert len(progress.totals) >= 7 and set(progress.totals) == {None}
    assert used < budget  # the case that made the total jump: stopped under budget
    shown = stream.getvalue().split("\r")
    assert shown[-1].startswith(f"recover: {used} of at most {budget} paths [")
    assert "done status=converged" in shown[-1]
    # no count before the first path ("recover [00:00, count ...]"), then one that grows
    counts = [int(re.match(r"recover(?:: (\d+) )?", line).group(1) or 0)
              for line in shown if line]
    assert counts == sorted(counts) and counts[-1] == used


def test_a_study_bar_has_its_number_of_cells_as_total_from_the_start(tmp_path):
    from symbolic_inversion import run_study
    grid = {"networks": [{"layers": [1, 1], "activations": ["tanh"]}], "samples": [1],
            "seeds": [0, 1, 2], "digits": [20], "method": "closed_form"}
    out = tmp_path / "study.jsonl"
    run_study(dict(grid, seeds=[0]), output=str(out))  # one cell already on disk
    stream = io.StringIO()
    progress = Progress(bar=True, description="study", stream=stream, unit="cells")
    run_study(grid, output=str(out), progress=progress)  # (closes the bar when done)
    # drawn with the total at the first event (a rerun starts at the cell on disk)
    assert progress.totals == [3, 3, 3]
    assert "1/3 cells" in stream.getvalue() and "3/3 cells" in stream.getvalue()


def test_a_bar_follows_tqdm_auto_on_stderr_and_plain_tqdm_on_a_chosen_stream():
    import tqdm.auto
    import tqdm.std
    from symbolic_inversion.report.progress import _bar_class
    assert _bar_class(None) is tqdm.auto.tqdm   # a widget in Jupyter, text elsewhere
    assert _bar_class(io.StringIO()) is tqdm.std.tqdm


def test_silent_by_default_and_bad_values_refused(three_samples):
    assert not Progress.create(None).active and not Progress.create(False).active
    assert Progress.create(None).event("path") is None
    with pytest.raises(InputError, match="progress"):
        recover(three_samples, progress="yes")


def test_the_loss_oracle_reports_its_phases():
    from symbolic_inversion.oracle import LossOracle, reconstruct_from_loss
    oracle = LossOracle(Network([2, 2, 1], ["relu", "identity"]),
                        inputs=[["1/2", "3"], ["-2", "1"]], labels=[["2"], ["-1/3"]])
    events = []
    result = reconstruct_from_loss(oracle, 9, seed=1, progress=events.append)
    assert [e["phase"] for e in events] == ["architecture", "inputs", "labels",
                                           "verification", "done"]
    assert events[-1]["evaluations"] == result.evaluations == oracle.evaluations


@pytest.mark.slow
def test_recover_progress_on_a_12_sample_trace_goes_to_stderr_only(tmp_path):
    network = Network([1, 1], "tanh")
    xs = [f"0.{k:02d}" for k in range(5, 96, 8)]
    ys = [f"0.{k:02d}" for k in range(90, 0, -7)][:12]
    trace = simulate(network, xs, ys, lr="0.1", epochs=24, init=["0.5", "0.5"], dps=60)
    path = tmp_path / "trace.json"
    trace.write(path)
    result = subprocess.run([sys.executable, "-m", "symbolic_inversion", "recover", str(path),
                             "--json", "--progress"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)       # stdout is exactly one JSON object
    assert data["status"] == "converged" and len(data["samples"]) == 12
    assert "paths" in result.stderr and "done status=converged" in result.stderr


RECOVER_IN_A_CELL = """\
from symbolic_inversion import Network, simulate, recover
trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
                 epochs=4, init=["0.5", "0.5"], dps=40)
recover(trace, progress=True).status.value
"""


def _run_in_a_kernel(source):
    """Outputs of one cell run by a Jupyter kernel, and the notebook's widget models."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    widgets = notebook.metadata.get("widgets", {})
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return notebook.cells[0].outputs, [model["state"] for model in state.values()]


@pytest.mark.slow
def test_in_jupyter_without_ipywidgets_the_bar_is_text_on_stderr():
    # ipywidgets hidden from the kernel: tqdm.auto falls back to text, without a warning
    outputs, _ = _run_in_a_kernel("import sys\nsys.modules['ipywidgets'] = None\n"
                                  + RECOVER_IN_A_CELL)
    streams = [(o.name, o.text) for o in outputs if o.output_type == "stream"]
    assert {name for name, _ in streams} == {"stderr"}  # nothing on stdout
    text = "".join(t for _, t in streams)
    assert "1 of at most 48 paths" in text and "IProgress" not in text
    assert [o.data["text/plain"] for o in outputs if o.output_type == "execute_result"] \
        == ["'converged'"]


@pytest.mark.slow
def test_in_jupyter_with_ipywidgets_the_bar_is_a_widget_that_ends_green():
    pytest.importorskip("ipywidgets")  # the notebook extra
    outputs, models = _run_in_a_kernel(RECOVER_IN_A_CELL)
    assert not [o for o in outputs if o.output_type == "stream"]  # no text at all
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs if o.output_type == "display_data")
    bars = [m for m in models if "bar_style" in m and "max" in m]
    # a count without a total (tqdm's "info" bar), closed as a success, not "danger"
    assert [(m["bar_style"], m["value"]) for m in bars] == [("success", 1.0)]
    texts = [m["value"] for m in models if "1\u2007of\u2007at\u2007most" in str(m.get("value"))]
    assert len(texts) == 1 and "status=converged" in texts[0]
