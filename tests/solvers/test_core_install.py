"""The core install is first class (issue 10): without python-flint, ``recover`` on exact
4-sample single-neuron traces returns ``converged`` with no traceback, and the data are
right to the digits it vouches for.

The traces: E = 8 steps of full-batch GD, lr 0.1, 56 digits, data uniform in [0, 1] and a
random initialisation (uniform in [0, 1]), 20 seeds.  Reference: the data that generated
each trace, compared after optimal matching (samples are a multiset).
"""

import itertools
import random

import mpmath
import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion.solvers import Status, recover

NEURON = Network([1, 1], "tanh")


def core_trace(seed):
    rng = random.Random(f"core:{seed}")
    xs = [f"{rng.uniform(0, 1):.8f}" for _ in range(4)]
    ys = [f"{rng.uniform(0, 1):.8f}" for _ in range(4)]
    init = [f"{rng.uniform(0, 1):.8f}" for _ in range(2)]
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=8, init=init, dps=56)
    return trace, xs, ys


def matched_error(samples, xs, ys):
    """Max error of the best matching of the recovered samples to the truth."""
    with mpmath.workdps(100):
        truth = [(mpmath.mpf(x), mpmath.mpf(y)) for x, y in zip(xs, ys)]
        found = [(x[0], y[0]) for x, y in samples]
        return min(max(max(abs(a - c), abs(b - d)) for (a, b), (c, d) in zip(truth, order))
                   for order in itertools.permutations(found))


@pytest.mark.parametrize("seed", range(20))
def test_core_install_recovers_exact_four_sample_traces(seed):
    trace, xs, ys = core_trace(seed)
    assert trace.digits >= 50
    before = mpmath.mp.dps
    solution = recover(trace, backend="mpmath")
    assert mpmath.mp.dps == before
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.stats["backend"] == "mpmath"
    assert len(solution.samples) == 4 and solution.digits >= 20
    assert matched_error(solution.samples, xs, ys) <= mpmath.mpf(10) ** -solution.digits
