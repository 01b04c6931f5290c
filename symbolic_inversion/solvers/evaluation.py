"""Where the solvers get their arithmetic and the system evaluator (one place).

The solvers code against the interface of ``symbolic_inversion.arithmetic`` and
``InversionSystem.evaluator`` (``issue10-design.md``).  Until that lands this module holds
a small interim implementation over :mod:`symbolic_inversion.backends`; afterwards it only
forwards.
"""

import contextlib
import math
from dataclasses import dataclass

import mpmath
import numpy as np

__all__ = ["real_arithmetic", "trace_evaluator", "LinearSolve"]


@dataclass
class LinearSolve:
    x: object
    ok: bool
    reason: str = ""


class _InterimArithmetic:
    """The arithmetic interface over a :class:`~symbolic_inversion.backends.Backend`."""

    def __init__(self, backend, is_complex=False):
        self.backend = backend
        self.is_complex = is_complex
        self.name = {("mpmath", False): "mpmath", ("mpmath", True): "mpc",
                     ("flint", False): "arb", ("flint", True): "acb"}[(backend.name,
                                                                        is_complex)]

    def workdps(self, dps):
        return self.backend.workdps(dps)

    def asarray(self, values):
        number = self.backend.number
        values = np.array(values, dtype=object)
        out = np.empty(values.shape, dtype=object)
        for index, v in np.ndenumerate(values):
            out[index] = number(mpmath.mpf(v) if isinstance(v, float) else v)
        return out

    def to_mpmath(self, value):
        return self.backend.to_mpmath(value)

    def _vector(self, values):
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out

    def _result(self, x):
        x = self._vector(x)
        size = self.norm(x)
        if size != size or size == math.inf:
            return LinearSolve(x, False, "numerically singular matrix")
        return LinearSolve(x, True)

    def solve(self, A, b):
        return self._result(self.backend.solve([list(row) for row in A], list(b)))

    def lstsq(self, A, b, method="normal"):
        if method == "qr":
            from ..system import least_squares
            with contextlib.suppress(ZeroDivisionError):
                x = least_squares(mpmath.matrix([[self.to_mpmath(v) for v in row]
                                                 for row in A]),
                                  mpmath.matrix([self.to_mpmath(v) for v in b]))
                return self._result([self.backend.number(v) for v in x])
            return LinearSolve(self._vector([self.backend.number(mpmath.nan)] * A.shape[1]),
                               False, "numerically singular matrix")
        return self._result(self.backend.least_squares([list(row) for row in A], list(b)))

    def matmul(self, A, B):
        return np.array(self.backend.matmul([list(r) for r in A], [list(r) for r in B]),
                        dtype=object)

    def norm(self, values):
        return self.backend.norm(list(np.ravel(values)))

    def clean(self, values):
        if self.backend.name != "flint":
            return values
        return self._vector([self.backend.clean(v) for v in values])

    def complexify(self):
        return _InterimArithmetic(self.backend, True)

    def roots(self, coefficients):
        return self.backend.roots(list(coefficients))


def real_arithmetic(name=None):
    """The real arithmetic called ``name`` (``None``/``"auto"``: arb if python-flint is
    installed, else mpmath; the old backend names are accepted)."""
    from ..backends import get_backend
    if isinstance(name, _InterimArithmetic):
        return name
    if name == "arb":
        name = "flint"
    return _InterimArithmetic(get_backend(name))


class _InterimEvaluator:
    """The evaluator interface over the per-sample kernels of today's backends."""

    def __init__(self, trace, arithmetic, steps):
        from ..backends import SampleKernels
        self.trace = trace
        self.arithmetic = arithmetic
        network = trace.network
        self.steps = list(steps)
        self.kernels = SampleKernels(network, arithmetic.backend)
        number = arithmetic.backend.number
        P = network.num_parameters
        self.P = P
        self.d, self.m = network.input_width, network.output_width
        self.n = trace.samples
        gradients = trace.observed_gradients()
        self.thetas = [[number(v) for v in trace.theta(j)] for j in self.steps]
        self.batches = [trace.batch(j) for j in self.steps]
        self.rhs = arithmetic._vector(
            [number(len(batch) * g / 2) for j, batch in zip(self.steps, self.batches)
             for g in gradients[j]])
        self.rows = len(self.steps) * P
        self.unknowns = self.n * (self.d + self.m)

    def split(self, u):
        width = self.d + self.m
        u = np.asarray(u, dtype=object).reshape(self.n, width)
        return u[:, :self.d], u[:, self.d:]

    def join(self, inputs, labels):
        inputs = np.asarray(inputs, dtype=object).reshape(self.n, self.d)
        labels = np.asarray(labels, dtype=object).reshape(self.n, self.m)
        return np.concatenate([inputs, labels], axis=1).reshape(-1)

    def _terms(self, inputs):
        return [{i: self.kernels(theta, list(inputs[i])) for i in batch}
                for theta, batch in zip(self.thetas, self.batches)]

    def evaluate(self, u, jacobian=True):
        inputs, labels = self.split(u)
        P, m, d = self.kernels.shape
        width = d + m
        zero = self.arithmetic.backend.number(0)
        F = [zero] * self.rows
        J = np.full((self.rows, self.unknowns), zero, dtype=object) if jacobian else None
        for k, per_sample in enumerate(self._terms(inputs)):
            for i, (Bf, B, dBf, dB) in per_sample.items():
                y = labels[i]
                column = i * width
                for p in range(P):
                    row = k * P + p
                    F[row] = F[row] + Bf[p] - sum((B[p][o] * y[o] for o in range(1, m)),
                                                  B[p][0] * y[0])
                    if jacobian:
                        for c in range(d):
                            value = dBf[p][c]
                            for o in range(m):
                                value = value - dB[p][o][c] * y[o]
                            J[row, column + c] = value
                        for o in range(m):
                            J[row, column + d + o] = -B[p][o]
        return self.arithmetic._vector(F) - self.rhs, J

    def residual(self, u):
        return self.evaluate(u, jacobian=False)[0]

    def lhs(self, u):
        return self.residual(u) + self.rhs

    def jacobian(self, u):
        return self.evaluate(u)[1]

    def sample_terms(self, inputs):
        """Per-sample ``(Bf, B)`` at any points: shapes ``(steps, N, P)``, ``(steps, N, P, m)``."""
        N = len(inputs)
        Bf = np.empty((len(self.steps), N, self.P), dtype=object)
        B = np.empty((len(self.steps), N, self.P, self.m), dtype=object)
        for k, theta in enumerate(self.thetas):
            for i in range(N):
                bf, b, _, _ = self.kernels(theta, list(inputs[i]))
                Bf[k, i, :] = bf
                for p in range(self.P):
                    B[k, i, p, :] = b[p]
        return Bf, B


def trace_evaluator(trace, arithmetic, steps=None):
    """The evaluator of ``trace``'s inversion system on ``steps`` (default: all) in
    ``arithmetic``; call inside ``arithmetic.workdps``."""
    steps = range(trace.steps) if steps is None else steps
    return _InterimEvaluator(trace, arithmetic, steps)
