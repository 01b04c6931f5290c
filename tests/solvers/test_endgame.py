"""solvers/endgame.py: the Cauchy endgame, through the tracker and on a duplicated sample.

Endpoints with known closed forms: a double and a triple root (winding numbers 2 and
3), and a path that diverges like a logarithm (no Puiseux series: the endgame must not
claim it).
"""

import math

import mpmath
import numpy as np
import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion.precision import tracking_dps
from symbolic_inversion.solvers.endgame import cauchy_endgame, puiseux_winding
from symbolic_inversion.solvers.evaluation import real_arithmetic
from symbolic_inversion.solvers.homotopies import solve_steps
from symbolic_inversion.solvers.pipeline import path_task
from symbolic_inversion.solvers.tracking import PathCode, Tracker, TrackerOptions

MPC = real_arithmetic("mpmath").complexify()
GAMMA = mpmath.mpc(0.6, 0.8)


class Power:
    """``x^c = 1 - s`` and ``y = x + 2 s``: from (1, 1) to the ``c``-fold root (0, 2)."""

    def __init__(self, c, arithmetic):
        self.c, self.A = c, arithmetic

    def start(self):
        return self.A.asarray([1, 1])

    def evaluate(self, u, s):
        x, y = u
        zero, one = 0 * x, 0 * x + 1
        return (np.array([x ** self.c - (1 - s), y - x - 2 * s]),
                np.array([[self.c * x ** (self.c - 1), zero], [-one, one]]),
                np.array([one, -2 * one]))


class Logarithm:
    """``exp(x) (1 - s) = 1``: ``x = -log(1 - s)`` grows without a Puiseux series."""

    def __init__(self, arithmetic):
        self.A = arithmetic

    def start(self):
        return self.A.asarray([0])

    def evaluate(self, u, s):
        e = mpmath.exp(u[0])
        return (np.array([e * (1 - s) - 1]), np.array([[e * (1 - s)]]), np.array([-e]))


@pytest.mark.parametrize("c", [2, 3])
def test_the_loops_find_the_winding_number_and_the_multiple_root(c):
    path = Tracker(MPC, TrackerOptions(dps=50)).track(Power(c, MPC), GAMMA)
    assert path.winding == c, path.reason
    end = path.u if path.u is not None else path.last
    error = max(abs(MPC.to_mpmath(v) - exact) for v, exact in zip(end, [0, 2]))
    # the trapezoid rule's error falls like (rho / R)^points: far below the tracker's
    # own approach to a c-fold root, which stalls about (1 - t)^(1/c) away
    assert error < mpmath.mpf(10) ** -30, (path.reason, error)
    without = Tracker(MPC, TrackerOptions(dps=50, cauchy=False)).track(Power(c, MPC), GAMMA)
    assert without.code is not PathCode.SUCCESS and without.winding is None
    assert max(abs(MPC.to_mpmath(v) - exact)
               for v, exact in zip(without.last, [0, 2])) > 1e-8


def test_a_logarithmic_divergence_is_not_taken_for_an_endpoint():
    # points 4x nearer t = 1 that move by the same amount: no Puiseux series, no loops
    def norm(v):
        return float(np.max(np.abs(v)))
    logarithmic = [(1 - 4.0 ** -k, np.array([k * math.log(4)])) for k in range(3, 9)]
    assert puiseux_winding(logarithmic, norm, 4) is None
    assert cauchy_endgame(MPC, None, None, logarithmic, 1 - 4.0 ** -10, norm).u is None
    cube_root = [(1 - 4.0 ** -k, np.array([4.0 ** (-k / 3)])) for k in range(3, 9)]
    assert puiseux_winding(cube_root, norm, 4) == 3
    path = Tracker(MPC, TrackerOptions(dps=30)).track(Logarithm(MPC), GAMMA)
    assert path.code is not PathCode.SUCCESS and path.winding is None


def test_no_anchor_no_loop():
    result = cauchy_endgame(MPC, None, None, [], 0.999, MPC.norm)
    assert result.u is None and "far enough" in result.reason


def test_a_duplicated_sample_is_the_mean_of_two_loops():
    # 1-1 tanh, two equal samples: the moment path ends at a singular root, where the
    # tracker's Newton at t = 1 cannot converge; the Cauchy endgame's estimate is the
    # duplicated dataset to far more digits than the tracker's last point
    xs, ys = [["0.25"], ["0.25"], ["0.7"]], [["0.6"], ["0.6"], ["0.1"]]
    trace = simulate(Network([1, 1], "tanh"), xs, ys, lr="0.1", epochs=6, dps=60, seed=3)
    square = solve_steps(trace)
    path, info = path_task(trace, "moments", square, "mpmath", 0, 0, tracking_dps(trace))
    assert path.winding == 2, path.reason
    end = path.u if path.u is not None else path.last
    with mpmath.workdps(60):
        found = sorted((mpmath.re(end[2 * i]), mpmath.re(end[2 * i + 1])) for i in range(3))
        truth = sorted((mpmath.mpf(x[0]), mpmath.mpf(y[0])) for x, y in zip(xs, ys))
        error = max(abs(a - b) for f, t in zip(found, truth) for a, b in zip(f, t))
    assert error < mpmath.mpf(10) ** -20, error
