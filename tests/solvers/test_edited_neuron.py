"""Issue 26, item 4: verdicts on edited single-neuron traces.

A trace generated independently (tests/generator.py) and then edited -- the learning rate
off by 1 %, one parameter off by 1e-6, a wrong sample count -- is explained by no dataset
of its size; with at least 8 equations beyond the unknowns the recovery says
``inconsistent``.  The unedited traces never are.  ``--json`` marks the samples of a
failed search as a best fit, not a recovery.
"""

import json
import random

import mpmath
import pytest

from symbolic_inversion import Trace
from symbolic_inversion.cli import main
from symbolic_inversion.network import Network
from symbolic_inversion.solvers import Status, recover
from tests.generator import exact_trace

NEURON = Network([1, 1], "tanh")


def neuron_data(seed, n, low=-1.0, high=1.5):
    """``n`` samples with inputs in [low, high] and labels in [-0.8, 0.9] (strings)."""
    rng = random.Random(f"issue26:{seed}:{n}:{low}:{high}")
    xs = [[f"{rng.uniform(low, high):.6f}"] for _ in range(n)]
    ys = [[f"{rng.uniform(-0.8, 0.9):.6f}"] for _ in range(n)]
    return xs, ys


def neuron_trace(seed, n, steps, edit=None):
    """The trace file object of ``steps`` full-batch GD steps from (0.5, 0.5), edited."""
    xs, ys = neuron_data(seed, n)
    data = exact_trace(NEURON, xs, ys, ["0.5", "0.5"], {"name": "gd", "lr": "0.1"}, steps,
                       dps=40 + 4 * n)
    if edit == "lr":            # the learning rate off by 1 %
        data["optimizer"]["lr"] = "0.101"
    elif edit == "parameter":   # one recorded parameter off by 1e-6
        with mpmath.workdps(40 + 4 * n + 10):
            value = mpmath.mpf(data["parameters"][3][0]) + mpmath.mpf("1e-6")
            data["parameters"][3][0] = mpmath.nstr(value, 40 + 4 * n + 5)
    elif edit == "count":       # one sample more than trained on
        data["samples"] = n + 1
    return data, xs, ys


def spare(data):
    unknowns = 2 * data["samples"]
    return 2 * (len(data["parameters"]) - 1) - unknowns


def read(data, tmp_path, name="trace.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path, Trace.read(path)


def test_json_marks_the_samples_of_a_failed_fit(tmp_path, capsys):
    data, _, _ = neuron_trace(0, 2, 8, "lr")
    assert spare(data) >= 8
    path, _ = read(data, tmp_path)
    status = main(["recover", str(path), "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert status == 1
    assert answer["status"] == "inconsistent", answer["message"]
    assert answer["samples"] and answer["samples_are"] == "best_fit"
    # the stable keys stay
    assert {"status", "samples", "residual", "digits"} <= set(answer)


def test_json_marks_recovered_samples(tmp_path, capsys):
    data, xs, _ = neuron_trace(1, 2, 8)
    path, _ = read(data, tmp_path)
    assert main(["recover", str(path), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["status"] == "converged" and answer["samples_are"] == "recovered"
    got = sorted(float(s["x"][0]) for s in answer["samples"])
    assert got == pytest.approx(sorted(float(x[0]) for x in xs), abs=1e-20)


@pytest.mark.slow  # 10-20 s each on one core
@pytest.mark.parametrize("edit", ["lr", "parameter", "count"])
@pytest.mark.parametrize("seed", [0, 1])
def test_an_edited_trace_is_inconsistent(tmp_path, seed, edit):
    data, _, _ = neuron_trace(seed, 2, 8, edit)
    assert spare(data) >= 8
    _, trace = read(data, tmp_path)
    solution = recover(trace)
    assert solution.status is Status.INCONSISTENT, solution.message
    assert solution.samples_are == "best_fit"
    assert solution.stats["inconsistency_test"]["spare"] >= 8


@pytest.mark.parametrize("n", [2, 4])  # 1-2 s each
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_exact_trace_is_never_inconsistent(tmp_path, seed, n):
    data, xs, ys = neuron_trace(seed, n, 2 * n)
    _, trace = read(data, tmp_path)
    solution = recover(trace)
    assert solution.status is not Status.INCONSISTENT, solution.message
    assert solution.status is Status.CONVERGED, solution.message
    found = sorted((float(x[0]), float(y[0])) for x, y in solution.samples)
    truth = sorted((float(x[0]), float(y[0])) for x, y in zip(xs, ys))
    assert [v for p in found for v in p] == pytest.approx([v for p in truth for v in p],
                                                          abs=1e-12)
