"""solvers/tracking.py: a tracker that knows nothing about which homotopy it follows.

Small homotopies with hand-known endpoints; precision from the options only.
"""

import math

import mpmath
import numpy as np

from symbolic_inversion.solvers.evaluation import real_arithmetic
from symbolic_inversion.solvers.tracking import (PathCode, Tracker, TrackerOptions,
                                                 random_gamma)

MPC = real_arithmetic("mpmath").complexify()
GAMMA = mpmath.mpc(0.6, 0.8)


class Quadratic:
    """``H(x, s) = x^2 - ((1 - s) a + s b)``: from ``sqrt(a)`` to ``sqrt(b)``."""

    def __init__(self, a, b, arithmetic=MPC):
        self.a, self.b, self.arithmetic = a, b, arithmetic

    def start(self):
        return self.arithmetic.asarray([mpmath.sqrt(self.a)])

    def evaluate(self, u, s):
        x = u[0]
        target = self.a * (1 - s) + self.b * s
        return (np.array([x * x - target], dtype=object), np.array([[2 * x]], dtype=object),
                np.array([self.a - self.b], dtype=object))


def test_path_reaches_the_target_root_at_the_options_precision():
    before = mpmath.mp.dps
    path = Tracker(MPC, TrackerOptions(dps=60)).track(Quadratic(1, 4), GAMMA)
    assert mpmath.mp.dps == before
    assert path.code is PathCode.SUCCESS and path.ok
    with mpmath.workdps(60):
        assert abs(path.real[0] - 2) < mpmath.mpf(10) ** -50
    assert path.steps > 0 and path.newton > 0 and path.imaginary < 1e-40


def test_complex_endpoint_is_classified():
    path = Tracker(MPC, TrackerOptions(dps=40)).track(Quadratic(1, -4), GAMMA)
    assert path.code is PathCode.COMPLEX_END and path.real is None
    assert path.code.ended_at_root and not path.ok
    with mpmath.workdps(40):
        assert abs(abs(path.u[0]) - 2) < 1e-30


def test_singular_start_is_a_code_not_an_exception():
    path = Tracker(MPC, TrackerOptions(dps=30)).track(Quadratic(0, 4), GAMMA)
    assert path.code is PathCode.SINGULAR and "singular" in path.reason


def test_a_missing_start_is_reported():
    class NoStart(Quadratic):
        start_failure = "nothing to start from"

        def start(self):
            return None
    path = Tracker(MPC, TrackerOptions(dps=30)).track(NoStart(1, 4), GAMMA)
    assert path.code is PathCode.NO_START and path.reason == "nothing to start from"


def test_path_to_infinity():
    class Escaping:
        """``(1 - s) x - 1 = 0``: x = 1 / (1 - s) goes to infinity as s -> 1."""

        def start(self):
            return MPC.asarray([1])

        def evaluate(self, u, s):
            x = u[0]
            return (np.array([(1 - s) * x - 1], dtype=object),
                    np.array([[1 - s]], dtype=object), np.array([-x], dtype=object))
    path = Tracker(MPC, TrackerOptions(dps=30)).track(Escaping(), mpmath.mpc(1, 0))
    assert path.code in (PathCode.AT_INFINITY, PathCode.SINGULAR, PathCode.STALLED)
    assert not path.ok and path.real is None


def test_random_gamma_is_seeded_and_off_the_real_axis():
    import random
    first, second = random_gamma(random.Random(3)), random_gamma(random.Random(3))
    assert first == second
    assert abs(abs(first) - 1) < 1e-12 and mpmath.im(first) > math.sin(0.29)


class Cubic:
    """``H(x, s) = x^3 + x - ((1 - s) 2 + s 10)``: from the real root 1 to the real root 2
    (the other roots are complex); counts its evaluations."""

    def __init__(self):
        self.evaluations = 0

    def start(self):
        return MPC.asarray([1])

    def evaluate(self, u, s):
        self.evaluations += 1
        x = u[0]
        return (np.array([x * x * x + x - 2 - 8 * s], dtype=object),
                np.array([[3 * x * x + 1]], dtype=object), np.array([-8 + 0 * s], dtype=object))


def test_hermite_predictor_reaches_the_same_root_with_fewer_evaluations():
    # reference: the root 2 of x^3 + x - 10, and the Runge-Kutta tracker's evaluations
    counts = {}
    for predictor in ("rk4", "hermite"):
        cubic = Cubic()
        path = Tracker(MPC, TrackerOptions(dps=50, predictor=predictor)).track(cubic, GAMMA)
        assert path.code is PathCode.SUCCESS
        with mpmath.workdps(50):
            assert abs(path.real[0] - 2) < mpmath.mpf(10) ** -40
        counts[predictor] = cubic.evaluations
    assert counts["hermite"] < counts["rk4"]


def test_a_homotopy_may_name_its_predictor():
    class Named(Cubic):
        predictor = "hermite"
    named, default = Named(), Cubic()
    Tracker(MPC, TrackerOptions(dps=40, predictor="hermite")).track(default, GAMMA)
    path = Tracker(MPC, TrackerOptions(dps=40)).track(named, GAMMA)
    assert path.ok and named.evaluations == default.evaluations
