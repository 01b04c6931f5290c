"""Progress of long work: events to a callable, a bar or lines on stderr, never stdout.

References: the pipeline's own record of its paths (``solution.stats["paths"]``), the
counts of the system worked out by hand, the command line's stdout parsed as JSON.
"""

import io
import json
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
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    stream = io.StringIO()
    with Progress(bar=True, description="recover", stream=stream) as progress:
        progress.event("path", attempt=2, of=6, kind="moments", status="real root")
    assert stream.getvalue().startswith("recover: path 2/6 kind=moments status=real root [")


def test_the_bar_counts_paths(three_samples):
    stream = io.StringIO()
    from symbolic_inversion.solvers.pipeline import rounds_for
    with Progress(bar=True, description="recover", stream=stream) as progress:
        solution = recover(three_samples, progress=progress)
        # the paths the recovery needed (of 6 a round): the bar ends full at k/k
        used = len(solution.stats["paths"])
        assert progress.bar.n == used and progress.bar.total == used
    assert f"1/{6 * rounds_for(6)} paths" in stream.getvalue()
    assert f"{used}/{used} paths" in stream.getvalue()


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
