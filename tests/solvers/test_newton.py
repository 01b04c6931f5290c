"""solvers/newton.py: one Newton / Gauss-Newton, one stopping rule, codes not exceptions.

Reference values are computed by hand (roots of small polynomial systems) or from the
data that generated a trace.
"""

import mpmath
import numpy as np
import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion.solvers.evaluation import real_arithmetic
from symbolic_inversion.solvers.newton import NewtonCode, gauss_newton, newton, square_newton

MP = real_arithmetic("mpmath")


def circle_and_line(u):
    """x^2 + y^2 = 2, x = y: roots (1, 1) and (-1, -1)."""
    x, y = u
    F = np.array([x * x + y * y - 2, x - y], dtype=object)
    J = np.array([[2 * x, 2 * y], [1, -1]], dtype=object)
    return F, J


def test_square_newton_converges_quadratically_to_the_working_precision():
    with MP.workdps(60):
        result = newton(circle_and_line, MP.asarray(["1.3", "0.8"]), MP, method="lu", dps=60)
        assert result.converged and result.code is NewtonCode.CONVERGED
        assert all(abs(v - 1) < mpmath.mpf(10) ** -55 for v in result.u)
        assert result.iterations <= 10 and result.residual < 1e-50


def test_precision_comes_from_the_call_not_from_mpmath():
    before = mpmath.mp.dps
    result = newton(circle_and_line, MP.asarray(["1.3", "0.8"]), MP, dps=80)
    assert mpmath.mp.dps == before
    with mpmath.workdps(100):
        assert abs(result.u[0] - 1) < mpmath.mpf(10) ** -75


def test_a_singular_jacobian_is_a_code_not_an_exception():
    def singular(u):
        x, = u
        return np.array([x * x], dtype=object), np.array([[0 * x]], dtype=object)
    result = newton(singular, MP.asarray(["0.5"]), MP, dps=30)
    assert not result.converged and result.code is NewtonCode.SINGULAR
    assert "singular" in result.reason


def test_divergence_and_stalls_are_codes():
    def no_root(u):          # x^2 + 1 = 0 has no real root: Newton wanders
        x, = u
        return np.array([x * x + 1], dtype=object), np.array([[2 * x]], dtype=object)
    diverged = newton(no_root, MP.asarray(["0.001"]), MP, dps=30, max_correction=10)
    assert diverged.code is NewtonCode.DIVERGED and not diverged.converged
    stalled = newton(no_root, MP.asarray(["0.5"]), MP, dps=30)
    assert stalled.code in (NewtonCode.STALLED, NewtonCode.MAX_ITERATIONS)
    assert not stalled.converged and stalled.reason


def test_double_root_ends_at_the_precision_floor():
    def double(u):           # (x - 1)^2: linear convergence, contraction 1/2 exactly
        x, = u
        return np.array([(x - 1) ** 2], dtype=object), np.array([[2 * (x - 1)]],
                                                                 dtype=object)
    result = newton(double, MP.asarray(["2"]), MP, dps=30, contraction=0.4, max_iterations=200)
    assert result.code is NewtonCode.STALLED   # contraction 0.5 > 0.4 far from the floor
    result = newton(double, MP.asarray(["2"]), MP, dps=30, max_iterations=200)
    assert result.converged


def test_gauss_newton_on_an_overdetermined_system_all_methods():
    # three equations, two unknowns, consistent: x + y = 3, x - y = 1, x y = 2 -> (2, 1)
    def system(u):
        x, y = u
        return (np.array([x + y - 3, x - y - 1, x * y - 2], dtype=object),
                np.array([[1, 1], [1, -1], [y, x]], dtype=object))
    for method in ("normal", "qr"):
        result = newton(system, MP.asarray(["2.2", "0.7"]), MP, method=method, dps=50)
        assert result.converged, (method, result)
        with mpmath.workdps(50):
            assert abs(result.u[0] - 2) < 1e-40 and abs(result.u[1] - 1) < 1e-40


def test_float64_arithmetic_runs_the_same_iteration():
    F64 = real_arithmetic("float64")
    result = newton(lambda u: (np.array([u[0] ** 2 + u[1] ** 2 - 2, u[0] - u[1]]),
                               np.array([[2 * u[0], 2 * u[1]], [1.0, -1.0]])),
                    np.array([1.3, 0.8]), F64, tolerance=1e-14, floor=1e-8)
    assert result.converged and np.allclose(result.u, [1, 1], atol=1e-14)


def test_square_newton_on_a_row_subset():
    def system(u):
        x, y = u
        return (np.array([x + y - 3, 7 * x - 1, x - y - 1], dtype=object),
                np.array([[1, 1], [7, 0], [1, -1]], dtype=object))
    result = square_newton(system, MP.asarray(["0", "0"]), MP, rows=[0, 2], dps=40)
    assert result.converged
    with mpmath.workdps(40):
        assert abs(result.u[0] - 2) < 1e-35 and abs(result.u[1] - 1) < 1e-35


@pytest.mark.parametrize("backend", ["mpmath", None])
def test_gauss_newton_polishes_trace_data(backend):
    trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
                     epochs=4, init=["0.5", "0.5"], dps=40)
    with mpmath.workdps(60):
        inputs = [[mpmath.mpf("0.600001")], [mpmath.mpf("0.2")]]
        labels = [[mpmath.mpf("0.5")], [mpmath.mpf("0.4000003")]]
    inputs, labels, info = gauss_newton(trace, inputs, labels, dps=60, backend=backend)
    assert info["converged"] and info["code"] in ("converged", "precision_floor")
    with mpmath.workdps(60):
        assert abs(inputs[0][0] - mpmath.mpf("0.6")) < 1e-30
        assert abs(labels[1][0] - mpmath.mpf("0.4")) < 1e-30
