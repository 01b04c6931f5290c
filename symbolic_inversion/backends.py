"""Arithmetic backends for the solvers: mpmath (the reference) and python-flint.

The solvers of :mod:`symbolic_inversion.solvers` do their heavy arithmetic, per-sample
network terms and dense linear solves, through a :class:`Backend`.  Two are provided:

``"mpmath"``
    always available; the reference.
``"flint"``
    python-flint's ``arb``/``acb`` numbers and matrices (optional, ``pip install
    python-flint``): the same computation 10-50 times faster.  Only ball midpoints are
    used (no error bounds are claimed from them), so both backends follow the same
    floating-point algorithm at the same precision and agree to that precision.

Both take the precision from :meth:`Backend.workdps`, which also sets mpmath's and
restores both afterwards.  Numbers cross the boundary as mpmath numbers
(:meth:`Backend.number`, :meth:`Backend.to_mpmath`).

Examples
========

>>> import mpmath
>>> from symbolic_inversion.backends import get_backend
>>> backend = get_backend("mpmath")
>>> with backend.workdps(30):
...     solution = backend.solve([[2, 1], [1, 3]], [3, 5])
...     [mpmath.nstr(backend.to_mpmath(v), 20) for v in solution]
['0.8', '1.4']
"""

import contextlib

import mpmath
import sympy as sp

from .codegen import compile_network
from .errors import InputError

try:  # optional accelerator
    import flint
except ImportError:  # pragma: no cover - exercised only without python-flint
    flint = None

__all__ = ["Backend", "MpmathBackend", "FlintBackend", "get_backend", "available_backends",
           "SampleKernels"]


class Backend:
    """Numbers, precision and dense linear algebra for one arithmetic library."""

    name = None

    def workdps(self, dps):
        raise NotImplementedError

    def number(self, value):
        """A backend number from an mpmath number, int, or decimal string."""
        raise NotImplementedError

    def to_mpmath(self, value):
        raise NotImplementedError

    def solve(self, rows, rhs):
        """Solve the square system ``rows @ u = rhs`` (lists), returning a list."""
        raise NotImplementedError

    def matmul(self, left, right):
        """The product of two matrices given as lists of rows."""
        raise NotImplementedError

    def least_squares(self, rows, rhs):
        """``u`` minimizing ``||rows @ u - rhs||`` by the normal equations."""
        transpose = [list(column) for column in zip(*rows)]
        normal = self.matmul(transpose, rows)
        projected = [row[0] for row in self.matmul(transpose, [[v] for v in rhs])]
        return self.solve(normal, projected)

    def magnitude(self, value):
        """``|value|`` as a Python float (for step-size control only)."""
        return float(abs(self.to_mpmath(value)))

    def norm(self, values):
        return max((self.magnitude(v) for v in values), default=0.0)

    def clean(self, value):
        """``value`` without accumulated error information (ball midpoints for flint)."""
        return value


class MpmathBackend(Backend):
    name = "mpmath"

    def workdps(self, dps):
        return mpmath.workdps(dps)

    def number(self, value):
        return mpmath.mpmathify(value if not hasattr(value, "as_tuple") else str(value))

    def to_mpmath(self, value):
        return value

    def solve(self, rows, rhs):
        matrix = mpmath.matrix(rows)
        solution = mpmath.lu_solve(matrix, mpmath.matrix(rhs))
        return [solution[k] for k in range(len(rhs))]

    def matmul(self, left, right):
        product = mpmath.matrix(left) * mpmath.matrix(right)
        return [[product[i, j] for j in range(product.cols)] for i in range(product.rows)]

    def magnitude(self, value):
        return float(abs(value))

    def roots(self, coefficients):
        """Roots of ``sum coefficients[k] z^k`` (complex, at the working precision)."""
        return mpmath.polyroots(coefficients[::-1], maxsteps=200, extraprec=2 * mpmath.mp.prec)


def _to_arb(value):
    value = mpmath.mpf(value)
    if not mpmath.isfinite(value):
        return flint.arb("nan")
    sign, man, exp, _ = value._mpf_
    return flint.arb((-int(man) if sign else int(man), int(exp)))


def _from_arb(value):
    man, exp = value.mid().man_exp()
    return mpmath.mpf((int(man), int(exp)))


class FlintBackend(Backend):
    name = "flint"

    def __init__(self):
        if flint is None:
            raise InputError("backend: python-flint is not installed "
                             "(pip install python-flint), use backend='mpmath'")

    @contextlib.contextmanager
    def workdps(self, dps):
        with mpmath.workdps(dps), flint.ctx.workdps(dps):
            yield

    def number(self, value):
        if isinstance(value, (flint.arb, flint.acb)):
            return value
        value = mpmath.mpmathify(value if not hasattr(value, "as_tuple") else str(value))
        if isinstance(value, mpmath.mpc):
            return flint.acb(_to_arb(value.real), _to_arb(value.imag))
        return _to_arb(value)

    def to_mpmath(self, value):
        if isinstance(value, flint.acb):
            real, imag = _from_arb(value.real), _from_arb(value.imag)
            return mpmath.mpc(real, imag) if imag else real
        if isinstance(value, flint.arb):
            return _from_arb(value)
        return mpmath.mpmathify(value)

    def solve(self, rows, rhs):
        complex_ = any(isinstance(v, flint.acb) for row in rows for v in row) or any(
            isinstance(v, flint.acb) for v in rhs)
        kind = flint.acb_mat if complex_ else flint.arb_mat
        matrix = kind([[v for v in row] for row in rows])
        column = kind([[v] for v in rhs])
        solution = matrix.solve(column, nonstop=True, algorithm="approx")
        return [solution[k, 0] for k in range(len(rhs))]

    def _matrix(self, rows):
        complex_ = any(isinstance(v, flint.acb) for row in rows for v in row)
        return (flint.acb_mat if complex_ else flint.arb_mat)(rows)

    def matmul(self, left, right):
        left, right = self._matrix(left), self._matrix(right)
        if isinstance(left, flint.acb_mat) or isinstance(right, flint.acb_mat):
            left, right = flint.acb_mat(left), flint.acb_mat(right)
        product = left * right
        return [[product[i, j].mid() for j in range(product.ncols())]
                for i in range(product.nrows())]

    def magnitude(self, value):
        return float(abs(value).mid()) if not isinstance(value, int) else float(abs(value))

    def clean(self, value):
        return value.mid() if isinstance(value, (flint.arb, flint.acb)) else value

    def roots(self, coefficients):
        polynomial = flint.acb_poly([flint.acb(c).mid() for c in coefficients])
        try:
            return [r.mid() for r in polynomial.roots(maxprec=4 * flint.ctx.prec + 256)]
        except ValueError:  # clustered roots: fall back to mpmath's iteration
            found = MpmathBackend.roots(self, [self.to_mpmath(c) for c in coefficients])
            return [self.number(r) for r in found]


_BACKENDS = {}


def available_backends():
    """Names of the backends that can run here (``"mpmath"`` always)."""
    return ["mpmath"] + (["flint"] if flint is not None else [])


def get_backend(name=None):
    """The backend called ``name``; ``None`` or ``"auto"``: flint if installed, else mpmath."""
    if isinstance(name, Backend):
        return name
    if name in (None, "auto"):
        name = "flint" if flint is not None else "mpmath"
    if name not in ("mpmath", "flint"):
        raise InputError(f"backend: expected 'mpmath', 'flint' or 'auto', got {name!r}")
    if name not in _BACKENDS:
        _BACKENDS[name] = MpmathBackend() if name == "mpmath" else FlintBackend()
    return _BACKENDS[name]


# -- per-sample terms of a network, compiled for a backend ----------------------------

def _flint_namespace():
    def call(method):
        return lambda z: getattr(z, method)()
    return {"tanh": call("tanh"), "exp": call("exp"), "log": call("log"),
            "sqrt": call("sqrt"), "sin": call("sin"), "cos": call("cos"),
            "mpf": lambda v: _to_arb(mpmath.mpf(v))}


class SampleKernels:
    r"""The per-sample terms of the inversion system and their input derivatives.

    For one sample at parameters ``theta`` the equation of parameter ``p`` reads
    ``[B f]_p - sum_o B_{p,o} y_o``; this returns, as backend numbers,

    ``Bf`` (``P``), ``B`` (``P x m``), ``dBf`` (``P x d``: d/dx of ``B f``) and
    ``dB`` (``P x m x d``),

    compiled once from the network's SymPy expressions (``lambdify`` with ``cse``).
    Works for real and complex inputs.  Activations that are not analytic (``relu``)
    are only available on the mpmath backend.
    """

    def __init__(self, network, backend):
        self.network = network
        self.backend = backend
        compiled = compile_network(network)
        f, B = compiled.f, compiled.B
        x = compiled.x_symbols
        P, m, d = network.num_parameters, network.output_width, network.input_width
        Bf = B * f
        outputs = list(Bf) + list(B)
        outputs += [Bf[p].diff(x[c]) for p in range(P) for c in range(d)]
        outputs += [B[p, o].diff(x[c]) for p in range(P) for o in range(m) for c in range(d)]
        if backend.name == "flint":
            if any(expr.has(sp.Heaviside, sp.Max) for expr in outputs):
                raise InputError("backend: flint needs analytic activations; use mpmath")
            modules = [_flint_namespace(), "mpmath"]
        else:
            # d/dx of relu's step is DiracDelta: zero wherever it is defined (off the kink)
            modules = [{"Heaviside": lambda z, at_zero=0: mpmath.mpf(1 if z > 0 else 0),
                        "Max": lambda *a: max(a),
                        "DiracDelta": lambda z, order=0: mpmath.mpf(0)}, "mpmath"]
        self._function = sp.lambdify([compiled.theta_symbols, x], outputs, modules=modules,
                                     cse=True)
        self.shape = (P, m, d)

    def __call__(self, theta, x):
        P, m, d = self.shape
        values = self._function(theta, x)
        number = self.backend.number
        values = [v if not isinstance(v, int) else number(v) for v in values]
        Bf = values[:P]
        k = P
        B = [values[k + p * m: k + (p + 1) * m] for p in range(P)]
        k += P * m
        dBf = [values[k + p * d: k + (p + 1) * d] for p in range(P)]
        k += P * d
        dB = [[values[k + (p * m + o) * d: k + (p * m + o + 1) * d] for o in range(m)]
              for p in range(P)]
        return Bf, B, dBf, dB
