"""solvers/pipeline.py: the cold-start front end (paths -> judge); decision logic.

The end-to-end cases (precision law, noise refused, stalls refined) live in
tests/test_recover_many.py; these are the pipeline's own refusals."""

import random

import mpmath
import pytest
import numpy as np

from symbolic_inversion import Network, simulate
from symbolic_inversion.solvers import SOLVERS, Status, recover
from symbolic_inversion.solvers.pipeline import (ROUNDS, SPLIT_SPREAD, run_pipeline,
                                                 same_dataset, split_starts)
from symbolic_inversion.solvers.projection import ProjectedSystem
from symbolic_inversion.system import InversionSystem


def test_moment_paths_refuse_partial_batches_with_the_reason():
    trace = simulate(Network([1, 1], "tanh"), ["0.1", "0.5", "0.9", "0.3"],
                     ["0.3", "0.6", "0.2", "0.8"], lr="0.1", epochs=2, init=["0.5", "0.5"],
                     dps=40, optimizer="sgd", batch_size=2, seed=1, record_batches=True)
    solution = SOLVERS["moments"](trace, attempts=2)
    assert solution.status is Status.NOT_CONVERGED
    assert "full batches" in solution.detail
    assert [p["code"] for p in solution.stats["paths"]] == ["no_start", "no_start"]


def test_moment_paths_need_one_input_and_one_output():
    trace = simulate(Network([2, 1], "tanh"), [["0.3", "0.7"], ["0.9", "0.1"]],
                     [["0.2"], ["0.6"]], lr="0.1", epochs=4, dps=40, seed=1)
    solution = run_pipeline(trace, "moments", attempts=1)
    assert solution.status is Status.NOT_CONVERGED
    assert "one input and one output" in solution.detail


# -- the split endgame ---------------------------------------------------------------------

# Benchmark dataset 1 of "1-4-1 n5 E1" (benchmarks/bench_networks.py): two inputs 1.8e-3
# apart, three within 0.2; the Jacobian at the data loses 18 of 60 digits.
CLUSTERED_141 = dict(
    inputs=["-0.229579", "-0.308313", "-0.306465", "-0.422055", "-0.069812"],
    labels=["-0.435958", "0.377119", "-0.745581", "0.417538", "-0.090820"],
    init=["0.128907", "-0.587395", "0.294450", "0.991866", "-0.336654", "0.663006",
          "0.593124", "0.869726", "0.931791", "0.377951", "-0.407136", "0.134790",
          "0.218048"])


def clustered_141_trace():
    return simulate(Network([1, 4, 1], ["tanh", "tanh"]), CLUSTERED_141["inputs"],
                    CLUSTERED_141["labels"], lr="0.1", epochs=1,
                    init=CLUSTERED_141["init"], dps=60)


def test_split_starts_move_a_vanishing_sample_next_to_each_other_sample():
    trace = clustered_141_trace()
    projected = ProjectedSystem(InversionSystem.from_trace(trace))
    X = np.array([[float(x)] for x in CLUSTERED_141["inputs"]])
    Y = np.array([[float(y)] for y in CLUSTERED_141["labels"]])
    assert split_starts(projected, projected.evaluator.join(X, Y), random.Random(0)) == []
    # the last sample's label equal to the network's output: its residual, and with it
    # its contribution to every gradient, is zero (one step: the first parameters')
    X[4, 0] = 0.9
    with mpmath.workdps(30):
        Y[4, 0] = float(trace.network.forward([mpmath.mpf(0.9)],
                                              [mpmath.mpf(v) for v in CLUSTERED_141["init"]])[0])
    weights = projected.sample_weights(X, Y)
    assert weights[4] < 1e-12 * weights.max()
    starts = split_starts(projected, projected.evaluator.join(X, Y), random.Random(0))
    # next to each other sample once, the heaviest first, SPLIT_SPREAD (relative) away
    assert len(starts) == 4
    heaviest_first = sorted(range(4), key=lambda j: -weights[j])
    for start, j in zip(starts, heaviest_first):
        moved = float(start[8])  # the last sample's input (sample by sample: x, y)
        assert abs(abs(moved - X[j, 0]) - SPLIT_SPREAD * (1 + abs(X[j, 0]))) < 1e-12


@pytest.mark.slow
def test_the_split_endgame_recovers_clustered_one_step_141_data_early():
    # Before the split endgame the 38th parameter path was the first to reach these
    # data (about 120 s); a stalled path's end, split, reaches them within three rounds.
    solution = recover(clustered_141_trace())
    assert solution.status is Status.CONVERGED, solution.message
    with mpmath.workdps(60):
        truth = [([mpmath.mpf(x)], [mpmath.mpf(y)])
                 for x, y in zip(CLUSTERED_141["inputs"], CLUSTERED_141["labels"])]
        assert same_dataset(truth, solution.samples, mpmath.mpf(10) ** -solution.digits)
    paths = solution.stats["paths"]
    assert any(p.get("splits") for p in paths) and len(paths) <= 6 * ROUNDS


def test_a_stalled_end_that_refinement_misses_is_restarted(monkeypatch):
    """Issue 26: moment paths of the neuron at n = 32 on [-1, 1.5] stall next to t = 1 at
    a point whose middle samples are off the data (complex pairs); Gauss-Newton from its
    real part misses, a parameter path from there reaches the data.  Here a stand-in
    path stalls at the data of an independently generated trace with its middle samples
    moved (inputs by 0.15, labels by 1)."""
    from symbolic_inversion.solvers import pipeline
    from symbolic_inversion.solvers.tracking import PathCode, PathResult
    from tests.generator import exact_trace
    from symbolic_inversion import Trace

    n = 8
    rng = random.Random("test_pipeline restart")
    xs = [f"{rng.uniform(-1, 1.5):.6f}" for _ in range(n)]
    ys = [f"{rng.uniform(-0.8, 0.9):.6f}" for _ in range(n)]
    trace = Trace.from_dict(exact_trace(Network([1, 1], "tanh"), [[x] for x in xs],
                                        [[y] for y in ys], ["0.5", "0.5"],
                                        {"name": "gd", "lr": "0.1"}, 2 * n, dps=40 + 4 * n))
    order = sorted(range(n), key=lambda i: float(xs[i]))
    moved = set(order[1:-1])

    def stalled(trace, steps, arithmetic, rng, dps, record=None, used=None):
        last = []
        for i in range(n):
            shift = (-1) ** i if i in moved else 0
            last += [mpmath.mpc(mpmath.mpf(xs[i]) + 0.15 * shift, 0.02 * shift),
                     mpmath.mpc(mpmath.mpf(ys[i]) + 1.0 * shift, 0.3 * shift)]
        return PathResult(PathCode.STALLED, reason="stand-in", t=1 - 1e-12,
                          last=last), {}

    monkeypatch.setitem(pipeline.PATHS, "stalled", stalled)
    solution = run_pipeline(trace, "stalled", attempts=1)
    first = solution.stats["paths"][0]
    assert first["refined_from_stall"] and first["status"] != "converged"
    assert first["restart"]["code"] == "success"
    assert solution.status is Status.CONVERGED, solution.message
    with mpmath.workdps(60):
        found = sorted(x[0] for x in solution.inputs)
        truth = sorted(mpmath.mpf(x) for x in xs)
        assert max(abs(a - b) for a, b in zip(found, truth)) < mpmath.mpf(10) ** -40
