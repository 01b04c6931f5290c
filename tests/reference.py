"""Independent references for the tests: the per-sample terms of the inversion system
straight from the SymPy expressions (:meth:`Network.sample_term`), differentiated by
SymPy and evaluated by ``lambdify`` in mpmath, one sample at a time.  Nothing here goes
through the layer-wise program (:mod:`symbolic_inversion.program`) it checks."""

from functools import lru_cache

import mpmath
import numpy as np
import sympy as sp


def _heaviside(z, at_zero=sp.S.Half):
    if z > 0:
        return mpmath.mpf(1)
    if z < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(float(at_zero))


MODULES = [{"Heaviside": _heaviside, "Max": lambda *a: mpmath.mpf(max(a)),
            "Min": lambda *a: mpmath.mpf(min(a)),
            "DiracDelta": lambda z, order=0: mpmath.mpf(0)}, "mpmath"]


@lru_cache(maxsize=None)
def scalar_program(network, loss="mse"):
    """``(term, jacobian, outputs, B)`` callables of ``(theta, x, y)`` / ``(theta, x)``."""
    theta = network.parameter_symbols()
    x, y = network.sample_symbols(0)
    term = network.sample_term(x, y, loss=loss)
    jacobian = term.jacobian(list(x) + list(y))
    f = network.forward(x)
    B = network.output_jacobian_transpose(x)
    args = [theta, list(x), list(y)]
    return (sp.lambdify(args, list(term), MODULES, cse=True),
            sp.lambdify(args, jacobian.tolist(), MODULES, cse=True),
            sp.lambdify([theta, list(x)], list(f), MODULES, cse=True),
            sp.lambdify([theta, list(x)], B.tolist(), MODULES, cse=True))


def reference_sums(network, thetas, X, Y, batches=None, dps=60, loss="mse"):
    """Per step the sum of the batch's terms and the Jacobian of the sums with respect to
    the data (rows step by step, columns sample by sample, inputs then labels), as
    numpy object arrays of mpmath numbers at ``dps`` digits."""
    term, jacobian, _, _ = scalar_program(network, loss)
    E, P = np.shape(thetas)
    n, d = np.shape(X)
    m = np.shape(Y)[1]
    k = d + m
    with mpmath.workdps(dps):
        sums = [[mpmath.mpf(0)] * P for _ in range(E)]
        J = mpmath.zeros(E * P, n * k)
        for e in range(E):
            theta = [mpmath.mpf(v) for v in thetas[e]]
            for i in (range(n) if batches is None else batches[e]):
                x, y = [mpmath.mpf(v) for v in X[i]], [mpmath.mpf(v) for v in Y[i]]
                for p, g in enumerate(term(theta, x, y)):
                    sums[e][p] += g
                block = jacobian(theta, x, y)
                for p in range(P):
                    for c in range(k):
                        J[e * P + p, i * k + c] = block[p][c]
        return np.array(sums, dtype=object), np.array(J.tolist(), dtype=object)


def reference_outputs(network, theta, x, dps=60):
    """``(f, B)`` of one sample: outputs and ``J_theta f^T`` (lists of mpmath numbers)."""
    _, _, f, B = scalar_program(network)
    with mpmath.workdps(dps):
        theta = [mpmath.mpf(v) for v in theta]
        x = [mpmath.mpf(v) for v in x]
        return f(theta, x), B(theta, x)


def exact_sums(network, thetas, X, Y, loss="mse"):
    """Per step the exact sum of the samples' terms ``B_i (ell(f_i) - y_i)`` from SymPy's
    expressions with rational numbers substituted (``Heaviside(0, 0) = 0``: relu'(0) = 0),
    as lists of SymPy Rationals; for piecewise-linear networks on rational data."""
    sums = []
    for theta in thetas:
        theta = [sp.Rational(str(v)) for v in theta]
        total = sp.zeros(network.num_parameters, 1)
        for x, y in zip(X, Y):
            total += network.sample_term([sp.Rational(str(v)) for v in x],
                                         [sp.Rational(str(v)) for v in y], theta, loss)
        sums.append(list(total))
    return sums
