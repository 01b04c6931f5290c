"""solvers/randomized.py: squaring up keeps the roots (R F(u) = 0 where F(u) = 0)."""

import random

import mpmath
import numpy as np

from symbolic_inversion import InversionSystem, Network, simulate
from symbolic_inversion.solvers.evaluation import real_arithmetic, trace_evaluator
from symbolic_inversion.solvers.randomized import RandomizedSystem

MPC = real_arithmetic("mpmath").complexify()
DPS = 60


def max_abs(values):
    return max(abs(v) for v in np.ravel(values))


def test_square_systems_are_left_alone():
    assert RandomizedSystem(4, 4, MPC, random.Random(0)).R is None


def test_randomized_system_keeps_the_roots_and_squares_up():
    trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
                     lr="0.1", epochs=4, init=["0.5", "0.5"], dps=50)
    system = InversionSystem.from_trace(trace)   # 4 steps: 8 rows, 4 unknowns
    with MPC.workdps(DPS):
        evaluator = trace_evaluator(trace, MPC)
        R = RandomizedSystem(evaluator.rows, evaluator.unknowns, MPC, random.Random(2))
        assert R.R.shape == (4, 8) and system.counts["equations"] == 8
        truth = evaluator.join([[mpmath.mpf(x)] for x in ("0.6", "0.2")], [[mpmath.mpf("0.5")], [mpmath.mpf("0.4")]])
        residual, J = evaluator.evaluate(truth)
        combined = R.vector(residual)
        assert combined.shape == (4,) and R.matrix(J).shape == (4, 4)
        # the data solve the full system, hence the squared-up one
        assert max_abs(residual) < mpmath.mpf(10) ** -45
        assert max_abs(combined) < mpmath.mpf(10) ** -44
        assert max_abs(combined - np.dot(R.R, residual)) < mpmath.mpf(10) ** -50
