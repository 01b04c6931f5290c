"""Step 2 of the workflow: SymPy expressions compiled to numeric callables.

The symbolic per-sample terms of a network, the output ``f(theta, x)`` and
``B(theta, x) = J_theta f^T``, are compiled once per network and target with
``lambdify(..., cse=True)`` and cached.  Two targets:

``"mpmath"``
    one sample at a time, at whatever precision is in force (callers use
    ``mpmath.workdps``); works for real and complex arguments.
``"numpy"``
    float64, vectorized over samples: pass each input coordinate as an array.

Every numeric gradient in the toolkit (simulation, residuals, Jacobians) goes through
:func:`compile_network`, so what is simulated is exactly what is inverted.
"""

from functools import lru_cache, reduce

import mpmath
import numpy as np
import sympy as sp

__all__ = ["CompiledNetwork", "compile_network"]


def _mp_heaviside(z, at_zero=sp.S.Half):
    if z > 0:
        return mpmath.mpf(1)
    if z < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(float(at_zero))


def _mp_max(*args):
    return mpmath.mpf(max(args))


def _mp_dirac_delta(z, order=0):
    # The derivative of relu's step: zero wherever it is defined (off the kink).
    return mpmath.mpf(0)


_MPMATH_MODULES = [{"Heaviside": _mp_heaviside, "Max": _mp_max,
                    "DiracDelta": _mp_dirac_delta}, "mpmath"]
_NUMPY_MODULES = [{"Max": lambda *args: reduce(np.maximum, args),
                   "DiracDelta": lambda z, order=0: np.zeros_like(z, dtype=float)}, "numpy"]


class CompiledNetwork:
    """Numeric per-sample terms of a :class:`~symbolic_inversion.network.Network`.

    Examples
    ========

    >>> import mpmath
    >>> from symbolic_inversion import Network, compile_network
    >>> neuron = compile_network(Network([1, 1], "tanh"))
    >>> with mpmath.workdps(30):
    ...     f, B = neuron.terms([mpmath.mpf("0.5"), mpmath.mpf("0.5")], [mpmath.mpf("0.6")])
    ...     print(mpmath.nstr(f[0], 20), mpmath.nstr(B[1][0], 20))
    0.66403677026784896368 0.55905516773224397854
    """

    def __init__(self, network):
        self.network = network
        self.theta_symbols = network.parameter_symbols()
        self.x_symbols = list(network.sample_symbols(0)[0])
        self.f = network.forward(self.x_symbols)
        self.B = network.output_jacobian_transpose(self.x_symbols)
        self.y_symbols = list(network.sample_symbols(0)[1])
        self._functions = {}

    def _function(self, target):
        if target not in self._functions:
            modules = {"mpmath": _MPMATH_MODULES, "numpy": _NUMPY_MODULES}[target]
            outputs = list(self.f) + list(self.B)
            self._functions[target] = sp.lambdify(
                [self.theta_symbols, self.x_symbols], outputs, modules=modules, cse=True)
        return self._functions[target]

    def _jacobian_function(self, target):
        key = ("jacobian", target)
        if key not in self._functions:
            modules = {"mpmath": _MPMATH_MODULES, "numpy": _NUMPY_MODULES}[target]
            half = self.B * (self.f - sp.Matrix(self.y_symbols))
            outputs = list(half.jacobian(self.x_symbols))
            self._functions[key] = sp.lambdify(
                [self.theta_symbols, self.x_symbols, self.y_symbols], outputs,
                modules=modules, cse=True)
        return self._functions[key]

    def sample_jacobian(self, theta, x, y):
        """Jacobian of the per-sample ``B (f - y)`` with respect to ``(x, y)`` (mpmath).

        A ``num_parameters x (input_width + output_width)`` list of rows; the label
        columns are ``-B`` (the system is affine in the labels).
        """
        flat = self._jacobian_function("mpmath")(list(theta), list(x), list(y))
        _, B = self.terms(theta, x)
        d = self.network.input_width
        return [flat[p * d:(p + 1) * d] + [-b for b in B[p]]
                for p in range(self.network.num_parameters)]

    def terms(self, theta, x, target="mpmath"):
        """``(f, B)`` at parameters ``theta`` and one input ``x``.

        ``f`` is a list of ``output_width`` values, ``B`` a list of ``num_parameters``
        rows of ``output_width`` values.  With ``target="numpy"`` each entry of ``x``
        may be an array (one entry per sample) and the results broadcast accordingly.
        """
        values = self._function(target)(list(theta), list(x))
        m = self.network.output_width
        f, flat_B = values[:m], values[m:]
        if target == "numpy":
            shape = np.shape(np.asarray(x[0]))
            f = [np.broadcast_to(np.asarray(v, dtype=float), shape) for v in f]
            flat_B = [np.broadcast_to(np.asarray(v, dtype=float), shape) for v in flat_B]
        B = [flat_B[p * m:(p + 1) * m] for p in range(self.network.num_parameters)]
        return f, B

    def half_gradient(self, theta, x, y, target="mpmath"):
        """Per-sample ``B (f - y)``, a list of ``num_parameters`` values."""
        f, B = self.terms(theta, x, target)
        residual = [fo - yo for fo, yo in zip(f, y)]
        return [sum((b * r for b, r in zip(row, residual)), 0 * residual[0])
                for row in B]

    def mean_gradient(self, theta, inputs, labels, target="mpmath"):
        """The MSE gradient ``(2/n) sum_i B_i (f_i - y_i)`` over the given samples."""
        n = len(inputs)
        if target == "numpy":
            columns_x = [np.asarray([x[d] for x in inputs], dtype=float)
                         for d in range(self.network.input_width)]
            columns_y = [np.asarray([y[o] for y in labels], dtype=float)
                         for o in range(self.network.output_width)]
            per_sample = self.half_gradient(theta, columns_x, columns_y, target)
            return [2 * float(np.sum(g)) / n for g in per_sample]
        total = [mpmath.mpf(0)] * self.network.num_parameters
        for x, y in zip(inputs, labels):
            total = [t + g for t, g in zip(total, self.half_gradient(theta, x, y, target))]
        return [2 * t / n for t in total]


@lru_cache(maxsize=64)
def compile_network(network):
    """The cached :class:`CompiledNetwork` of ``network`` (networks are hashable)."""
    return CompiledNetwork(network)
