"""Number systems for the numerical core: one :class:`Arithmetic` per kind of number.

The inversion system is evaluated by one layer-wise program
(:class:`symbolic_inversion.program.LayerwiseProgram`) on numpy arrays; the arithmetic
decides what the array entries are and supplies precision, conversions, elementwise
functions and dense linear algebra.

============  =====================  ===============================================
name          entries                use
============  =====================  ===============================================
float64       numpy float64          screening, multistart (no precision control)
complex128    numpy complex128       the same, complex
mpmath        ``mpmath.mpf``         the reference, any precision
mpc           ``mpmath.mpc``         complex homotopies, any precision
arb           ``flint.arb``          python-flint midpoints (fast), ``arb_mat`` solves
acb           ``flint.acb``          the same, complex
iv            ``mpmath.iv`` numbers  rigorous intervals (certificates), no extra package
arb_ball      ``flint.arb`` balls    rigorous intervals with python-flint (faster)
rational      exact rationals        piecewise-linear networks on rational data, exactly
============  =====================  ===============================================

``rational`` is not a solver arithmetic (it is outside :data:`ARITHMETIC_NAMES`): its
entries are python-flint's ``fmpq`` where installed, else gmpy2's ``mpq``, else
:class:`fractions.Fraction` (the fastest available; products of matrices by
``fmpq_mat``), it has no precision, and of the elementary functions only what
piecewise-linear activations need.

Multiprecision entries live in numpy arrays of ``dtype=object``; ``+``, ``*`` and
``@`` work on them elementwise through the numbers' own operators.  Precision is set
only by :meth:`Arithmetic.workdps` (mpmath's, mpmath.iv's and python-flint's together,
restored afterwards); nothing here changes the global precision permanently.

Linear solves never raise on a singular matrix: they return a :class:`LinearSolve`
with ``ok=False`` and a reason.

Examples
========

>>> from symbolic_inversion.arithmetic import get_arithmetic
>>> mp = get_arithmetic("mpmath")
>>> with mp.workdps(30):
...     result = mp.solve(mp.asarray([[2, 1], [1, 3]]), mp.asarray([3, 5]))
...     [mp.format(v, 20) for v in result.x]
['0.8', '1.4']
>>> mp.solve(mp.asarray([[1, 2], [2, 4]]), mp.asarray([1, 1])).ok
False
"""

import contextlib
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import libmp

from .errors import InputError, NotSupportedError

try:  # optional accelerator
    import flint
except ImportError:  # pragma: no cover - exercised only without python-flint
    flint = None

try:  # optional: exact rationals in C when python-flint is absent
    import gmpy2
except ImportError:  # pragma: no cover - exercised only without gmpy2
    gmpy2 = None

__all__ = ["Arithmetic", "LinearSolve", "NotDifferentiableError", "get_arithmetic",
           "available_arithmetics", "ARITHMETIC_NAMES", "EXACT_NAMES"]

#: The solver arithmetics (floating point and intervals).
ARITHMETIC_NAMES = ("float64", "complex128", "mpmath", "mpc", "arb", "acb", "iv", "arb_ball")
#: Exact arithmetics: piecewise-linear networks only, never a solver's working numbers.
EXACT_NAMES = ("rational",)
_FLINT_NAMES = ("arb", "acb", "arb_ball")
_ALIASES = {"flint": "arb", "auto": None, "mpf": "mpmath", "numpy": "float64",
            "float": "float64", "complex": "complex128"}


class NotDifferentiableError(ArithmeticError):
    """An interval met a point where the system is not differentiable (a relu kink)."""


@dataclass
class LinearSolve:
    """The outcome of a dense solve: ``x`` (1-D array, or ``None``), ``ok``, ``reason``."""

    x: object
    ok: bool
    reason: str = ""

    def __bool__(self):
        return self.ok


@contextlib.contextmanager
def _workdps(dps):
    """mpmath's, mpmath.iv's and python-flint's precision set together, then restored."""
    saved = (mpmath.mp.prec, mpmath.iv.prec, flint.ctx.prec if flint is not None else None)
    try:
        mpmath.mp.dps = dps
        mpmath.iv.prec = mpmath.mp.prec
        if flint is not None:
            flint.ctx.prec = mpmath.mp.prec
        yield
    finally:
        mpmath.mp.prec, mpmath.iv.prec = saved[0], saved[1]
        if flint is not None:
            flint.ctx.prec = saved[2]


def _ipow(a, n):
    """``a ** n`` for an integer ``n`` by repeated multiplication (arrays or numbers).

    arb's ``**`` goes through ``exp(n log a)`` (nan for balls around zero); products are
    also tighter for intervals and cheaper for multiprecision numbers.
    """
    n = int(n)
    if n == 0:
        return a * 0 + 1
    result, base, k = None, a, abs(n)
    while k:
        if k & 1:
            result = base if result is None else result * base
        k >>= 1
        if k:
            base = base * base
    return 1 / result if n < 0 else result


def _number_is_exact(value):
    return isinstance(value, (int, Fraction, Decimal, str, float, mpmath.mpf, np.integer,
                              np.floating))


def _fraction(value):
    """An exact Fraction of an int, Fraction, Decimal, finite float or mpf."""
    if isinstance(value, mpmath.mpf):
        sign, man, exp, _ = value._mpf_
        if not man and exp:
            raise InputError("number: not finite")
        man = -int(man) if sign else int(man)
        return Fraction(man * 2 ** exp) if exp >= 0 else Fraction(man, 2 ** -exp)
    return Fraction(value)


class Arithmetic:
    """A number system: precision, conversions, elementwise functions, linear algebra.

    Stateless apart from precision (which :meth:`workdps` sets locally).  Subclasses:
    see the module's table.  Arrays are numpy arrays of :attr:`dtype`.
    """

    name = ""
    is_complex = False
    is_interval = False
    #: exact numbers: every equality decides, no rounding anywhere
    is_exact = False
    dtype = np.dtype(object)

    def __repr__(self):
        return f"<arithmetic {self.name}>"

    def __reduce__(self):
        return get_arithmetic, (self.name,)

    # -- precision ------------------------------------------------------------------

    def workdps(self, dps):
        """Context manager: ``dps`` decimal digits inside, the old precision afterwards."""
        return _workdps(dps)

    def precision(self):
        """Bits in force now (a cache key for converted constants)."""
        return mpmath.mp.prec

    # -- numbers and arrays ------------------------------------------------------------

    def number(self, value):
        """One number of this arithmetic, converted exactly or correctly rounded from an
        int, str, Decimal, Fraction, float, mpf/mpc or a number of another arithmetic."""
        raise NotImplementedError

    def asarray(self, values):
        """``values`` (nested lists, arrays, mpmath matrices) as an array of this dtype."""
        if isinstance(values, mpmath.matrix):
            values = values.tolist()
        array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) \
            else values
        if self.dtype != object:
            if array.dtype == object:
                array = self._numbers(array)
            return np.asarray(array, dtype=self.dtype)
        if array.dtype == object:
            return self._numbers(array)
        return self._numbers(array.astype(object))

    def _numbers(self, array):
        with np.errstate(invalid="ignore"):  # NaN entries are data here, not errors
            converted = np.frompyfunc(self.number, 1, 1)(array)
        return np.asarray(converted, dtype=object) if array.ndim else converted

    def zeros(self, shape):
        return np.full(shape, self.number(0), dtype=self.dtype)

    def to_mpmath(self, value):
        """An mpmath number (interval and ball numbers: their midpoint)."""
        return mpmath.mpmathify(value)

    def to_mpmath_array(self, array):
        return np.frompyfunc(self.to_mpmath, 1, 1)(np.asarray(array, dtype=object))

    def mid(self, array):
        """Midpoints (the array itself for point arithmetics)."""
        return array

    def format(self, value, digits=15):
        return mpmath.nstr(self.to_mpmath(value), digits)

    def isfinite(self, array):
        """Whether every entry is finite."""
        return all(mpmath.isfinite(self.to_mpmath(v)) for v in np.ravel(array))

    def magnitudes(self, array):
        """``|v|`` of every entry as a float64 array (step control only)."""
        flat = [float(abs(self.to_mpmath(v))) for v in np.ravel(array)]
        return np.asarray(flat, dtype=float).reshape(np.shape(array))

    def norm(self, vector):
        """Max-norm as a Python float (for step control only; nan if not finite)."""
        values = self.magnitudes(vector)
        if not values.size:
            return 0.0
        return float("nan") if np.isnan(values).any() else float(values.max())

    _complex_name = _real_name = None

    def complexify(self):
        """The complex sibling of this arithmetic (itself when complex)."""
        if self.is_complex:
            return self
        if self._complex_name is None:
            raise NotSupportedError(f"arithmetic {self.name}: no complex version")
        return get_arithmetic(self._complex_name)

    def realify(self):
        """The real sibling of this arithmetic (itself when real)."""
        return get_arithmetic(self._real_name) if self.is_complex else self

    # -- elementwise functions (for the compiled activations) ---------------------------

    def functions(self):
        """Namespace of elementwise functions on arrays, by SymPy's names (relu's step
        and maximum refused in complex arithmetics: they are not analytic)."""
        ns = self._functions()
        if self.is_complex:
            for name in ("Heaviside", "Max", "Min"):
                ns[name] = _not_analytic(name)
        return ns

    def _functions(self):
        raise NotImplementedError

    def _scalar_functions(self, scalar, names=("tanh", "exp", "log", "sqrt", "sin", "cos",
                                               "cosh", "sinh", "erf", "asinh", "atan")):
        ufuncs = {name: np.frompyfunc(scalar(name), 1, 1) for name in names}
        ufuncs.update(ipow=_ipow, Rational=self.rational, DiracDelta=self._dirac_delta)
        return ufuncs

    def rational(self, p, q=1):
        """The number ``p / q`` (correctly rounded, or an enclosure for intervals)."""
        return self.number(Fraction(int(p), int(q)))

    def pi(self):
        """The number pi at the working precision (an enclosure for intervals)."""
        return self.number(+mpmath.pi)

    def _dirac_delta(self, z, *order):
        # The derivative of relu's step: zero wherever it is defined (off the kink).
        return np.zeros_like(z) if self.dtype != object else z * 0

    # -- linear algebra ------------------------------------------------------------

    def matmul(self, A, B):
        return np.matmul(A, B)

    def constant_matrix(self, array):
        """``array`` (2-D) prepared as the right operand of many :meth:`matmul` calls
        (python-flint: converted once to a flint matrix, real when every entry is real);
        only :meth:`matmul` accepts the result."""
        return np.asarray(array, dtype=self.dtype if self.dtype != object else object)

    def conj(self, array):
        return array if not self.is_complex else np.conj(array)

    def solve(self, A, b):
        """Solve the square system ``A x = b``: a :class:`LinearSolve`, never an exception."""
        A, b = self.asarray(A), self.asarray(b)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] != b.shape[0]:
            raise InputError(f"solve: expected a square matrix and a matching right-hand "
                             f"side, got {A.shape} and {b.shape}")
        if not self.isfinite(A) or not self.isfinite(b):
            return LinearSolve(None, False, "matrix or right-hand side not finite")
        if A.shape[0] == 0:
            return LinearSolve(self.zeros(b.shape), True)
        result = self._solve(A, b)
        if result.ok and not self.isfinite(result.x):
            return LinearSolve(None, False, "numerically singular (solution not finite)")
        return result

    def lstsq(self, A, b, method="qr"):
        """Least squares ``min ||A x - b||`` (``A`` of full column rank).

        ``method="qr"``: Householder QR (the accurate choice, error ~ cond(A));
        ``"normal"``: the normal equations ``A^H A x = A^H b`` (faster, error ~ cond(A)^2).
        Rank deficiency is a result with ``ok=False``.
        """
        A, b = self.asarray(A), self.asarray(b)
        if A.ndim != 2 or A.shape[0] != b.shape[0]:
            raise InputError(f"lstsq: shapes {A.shape} and {b.shape} do not match")
        if A.shape[0] < A.shape[1]:
            return LinearSolve(None, False, f"underdetermined ({A.shape[0]} equations, "
                                            f"{A.shape[1]} unknowns)")
        if not self.isfinite(A) or not self.isfinite(b):
            return LinearSolve(None, False, "matrix or right-hand side not finite")
        if method == "normal":
            AH = self.conj(A).T
            return self.solve(self.matmul(AH, A), self.matmul(AH, b))
        if method != "qr":
            raise InputError(f"lstsq: method must be 'qr' or 'normal', got {method!r}")
        result = self._qr_solve(A, b)
        if result.ok and not self.isfinite(result.x):
            return LinearSolve(None, False, "numerically rank deficient (solution not finite)")
        return result

    def _solve(self, A, b):
        raise NotImplementedError

    def _qr_solve(self, A, b):
        raise NotImplementedError


# -- numpy --------------------------------------------------------------------------

class Float64(Arithmetic):
    """numpy float64 (no precision control: :meth:`workdps` is a no-op)."""

    name = "float64"
    dtype = np.dtype(float)
    _complex_name = "complex128"

    def workdps(self, dps):
        return contextlib.nullcontext()

    def precision(self):
        return 53

    def number(self, value):
        if isinstance(value, Fraction):
            return float(value)
        value = _unwrap(value)
        if isinstance(value, (complex, mpmath.mpc)):
            raise InputError(f"arithmetic {self.name}: complex value {value}")
        return float(value) if not isinstance(value, Decimal) else float(str(value))

    def to_mpmath(self, value):
        return mpmath.mpf(float(value))

    def isfinite(self, array):
        return bool(np.all(np.isfinite(array)))

    def magnitudes(self, array):
        return np.abs(np.asarray(array)).astype(float)

    def _functions(self):
        from scipy.special import erf
        ns = {name: getattr(np, name) for name in ("tanh", "exp", "log", "sqrt", "sin",
                                                     "cos", "cosh", "sinh")}
        ns.update(erf=erf, asinh=np.arcsinh, atan=np.arctan, ipow=_ipow, Rational=lambda p, q=1: p / q, DiracDelta=self._dirac_delta,
                  Heaviside=lambda z, at_zero=0.5: np.heaviside(z, at_zero),
                  Max=lambda *args: _reduce(np.maximum, args),
                  Min=lambda *args: _reduce(np.minimum, args))
        return ns

    def _solve(self, A, b):
        try:
            return LinearSolve(np.linalg.solve(A, b), True)
        except np.linalg.LinAlgError as error:
            return LinearSolve(None, False, f"singular matrix ({error})")

    def _qr_solve(self, A, b):
        Q, R = np.linalg.qr(A)
        diagonal = np.abs(np.diag(R))
        if not diagonal.size or diagonal.min() <= diagonal.max() * np.finfo(float).eps * 8:
            return LinearSolve(None, False, "numerically rank deficient (QR)")
        return self._solve(R, self.conj(Q).T @ b)


class Complex128(Float64):
    name = "complex128"
    is_complex = True
    dtype = np.dtype(complex)
    _real_name = "float64"

    def number(self, value):
        if isinstance(value, Fraction):
            return complex(float(value))
        value = _unwrap(value)
        if isinstance(value, Decimal):
            return complex(float(str(value)))
        if isinstance(value, mpmath.mpc):
            return complex(float(value.real), float(value.imag))
        return complex(value)

    def to_mpmath(self, value):
        value = complex(value)
        return mpmath.mpc(value.real, value.imag) if value.imag else mpmath.mpf(value.real)


def _reduce(function, args):
    result = args[0]
    for arg in args[1:]:
        result = function(result, arg)
    return result


def _not_analytic(name):
    def refuse(*args):
        raise NotSupportedError(f"{name} (relu) is not analytic: no complex evaluation; "
                                f"use a real arithmetic")
    return refuse


def _unwrap(value):
    """Plain Python/mpmath numbers from numpy scalars, flint numbers and intervals."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, mpmath.iv.mpf):
        return mpmath.mpf(value.mid)
    if isinstance(value, mpmath.iv.mpc):
        return mpmath.mpc(value.real.mid, value.imag.mid)
    if flint is not None and isinstance(value, (flint.arb, flint.acb)):
        return _from_flint(value)
    return value


# -- mpmath ---------------------------------------------------------------------------

def _mpf(value):
    """An mpf: exact for ints, floats and mpfs, correctly rounded for the rest."""
    if type(value) is mpmath.mpf:   # the common case, before the checks of _unwrap
        return value
    value = _unwrap(value)
    if isinstance(value, mpmath.mpf):
        return value
    if isinstance(value, Decimal):
        return mpmath.mpf(str(value))
    if hasattr(value, "denominator") and not isinstance(value, int):  # Fraction, mpq
        return mpmath.mp.make_mpf(libmp.from_rational(
            int(value.numerator), int(value.denominator), mpmath.mp.prec,
            libmp.round_nearest))
    if isinstance(value, (complex, mpmath.mpc)):
        raise InputError(f"real arithmetic: complex value {value}")
    return mpmath.mpf(value)


def _mpc(value):
    value = _unwrap(value)
    if isinstance(value, mpmath.mpc):
        return value
    if isinstance(value, complex):
        return mpmath.mpc(value.real, value.imag)
    if isinstance(value, str) and "j" in value:
        return mpmath.mpc(complex(value))  # pragma: no cover - rarely used
    return mpmath.mpc(_mpf(value))


class Mpmath(Arithmetic):
    """mpmath's ``mpf`` (the reference), at the precision of :meth:`workdps`."""

    name = "mpmath"
    _complex_name = "mpc"

    def number(self, value):
        return _mpf(value)

    def to_mpmath(self, value):
        return value if isinstance(value, (mpmath.mpf, mpmath.mpc)) else mpmath.mpmathify(value)

    def isfinite(self, array):
        isfinite = mpmath.isfinite
        return all(isfinite(v) for v in np.ravel(array))

    def magnitudes(self, array):
        flat = [float(abs(v)) for v in np.ravel(array)]
        return np.asarray(flat, dtype=float).reshape(np.shape(array))

    def _functions(self):
        ns = self._scalar_functions(lambda name: getattr(mpmath, name, None)
                                    or _unavailable(self.name, name))
        ns.update(Heaviside=np.frompyfunc(_mp_heaviside, 2, 1),
                  Max=lambda *args: _reduce(np.frompyfunc(_mp_max, 2, 1), args),
                  Min=lambda *args: _reduce(np.frompyfunc(_mp_min, 2, 1), args))
        return ns

    def matmul(self, A, B):
        """Products of 2-D arrays, one ``mpmath.fdot`` per entry (faster than numpy's
        object loop: helper B measured 18.2 s -> 15.9 s CPU on n = 8 cold starts);
        other shapes by ``np.matmul``."""
        A, B = np.asarray(A), np.asarray(B)
        if A.ndim != 2 or B.ndim not in (1, 2):
            return np.matmul(A, B)
        column = B.ndim == 1
        cols, fdot = (B[:, None] if column else B).T.tolist(), mpmath.fdot
        out = np.empty((A.shape[0], len(cols)), dtype=object)
        for i, row in enumerate(A.tolist()):
            out[i, :] = [fdot(row, c) for c in cols]
        return out[:, 0] if column else out

    def _solve(self, A, b):
        columns = b.reshape(len(b), -1).T.tolist()
        x = _lu_solve(A.tolist(), columns)
        if x is None:
            return LinearSolve(None, False, "matrix is numerically singular")
        values = np.empty((len(columns), len(b)), dtype=object)
        values[:] = x
        return LinearSolve(values.T.reshape(b.shape), True)

    @staticmethod
    def _column(x, shape):
        values = np.empty(x.rows * x.cols, dtype=object)
        values[:] = [x[k] for k in range(x.rows)] if x.cols == 1 else \
            [x[i, j] for i in range(x.rows) for j in range(x.cols)]
        return values.reshape(shape[:1] + shape[1:]) if len(shape) > 1 else values

    def _qr_solve(self, A, b):
        # mpmath.qr, then back substitution: mpmath.qr_solve divides by zero when a
        # diagonal entry is exactly zero during its sweep, which the block-sparse
        # systems of SGD schedules (a sample absent from a step) produce.
        Q, R = mpmath.qr(mpmath.matrix(A.tolist()), mode="skinny")
        c = Q.H * mpmath.matrix(b.tolist())
        cols = A.shape[1]
        diagonal = [abs(R[i, i]) for i in range(cols)]
        if not cols or min(diagonal) <= max(diagonal) * mpmath.eps:
            return LinearSolve(None, False, "numerically rank deficient (QR)")
        x = mpmath.matrix(cols, c.cols)
        for j in range(c.cols):
            for i in reversed(range(cols)):
                x[i, j] = (c[i, j] - mpmath.fsum(R[i, k] * x[k, j]
                                                 for k in range(i + 1, cols))) / R[i, i]
        return LinearSolve(self._column(x, (cols,) + b.shape[1:]), True)

    def roots(self, coefficients):
        """Roots of ``sum coefficients[k] z^k`` (complex, at the working precision)."""
        return mpmath.polyroots(list(coefficients)[::-1], maxsteps=200,
                                extraprec=2 * mpmath.mp.prec)


def _lu_solve(rows, columns, extra=20):
    """Solve ``rows @ x = c`` for every ``c`` in ``columns`` (lists of mpf/mpc): a list
    of solutions, or ``None`` when the matrix is numerically singular.

    mpmath's ``lu_solve`` algorithm (partial pivoting, ``extra`` guard bits, a pivot
    below ``||A||_1 * eps`` is singular) in Crout's order, every entry one
    ``mpmath.fdot``: 3-5 times faster (measured: 24 x 24 at 100 digits 29.7 -> 7.0 ms,
    48 x 48 at 150 digits 247 -> 49 ms; complex 3x), the same results to the precision.
    """
    n = len(rows)
    fdot = mpmath.fdot
    with mpmath.workprec(mpmath.mp.prec + extra):
        A = [list(row) for row in rows]
        columns = [list(c) for c in columns]
        norm = max(mpmath.fsum(abs(A[i][j]) for i in range(n)) for j in range(n))
        tolerance = norm * mpmath.eps
        L = [[] for _ in range(n)]        # L[i] = row i of the unit lower factor, so far
        U = [[] for _ in range(n)]        # U[j] = column j of the upper factor, so far
        for k in range(n):
            candidates = [A[i][k] - fdot(L[i], U[k]) for i in range(k, n)]
            sizes = [abs(v) for v in candidates]
            p = max(range(n - k), key=sizes.__getitem__)
            if not sizes[p] > tolerance:
                return None
            if p:
                i = k + p
                A[k], A[i], L[k], L[i] = A[i], A[k], L[i], L[k]
                for c in columns:
                    c[k], c[i] = c[i], c[k]
                candidates[0], candidates[p] = candidates[p], candidates[0]
            pivot = candidates[0]
            U[k].append(pivot)
            for j in range(k + 1, n):
                U[j].append(A[k][j] - fdot(L[k], U[j]))
            inverse = 1 / pivot
            for i in range(k + 1, n):
                L[i].append(candidates[i - k] * inverse)
        solutions = []
        for c in columns:
            y = []
            for i in range(n):
                y.append(c[i] - fdot(L[i], y))
            x = [0] * n
            for i in reversed(range(n)):
                x[i] = (y[i] - fdot([U[j][i] for j in range(i + 1, n)], x[i + 1:])) / U[i][i]
            solutions.append(x)
    return [[+v for v in x] for x in solutions]


class Mpc(Mpmath):
    name = "mpc"
    is_complex = True
    _real_name = "mpmath"

    def number(self, value):
        return _mpc(value)

    def conj(self, array):
        return np.frompyfunc(mpmath.conj, 1, 1)(array)


def _mp_heaviside(z, at_zero=0.5):
    if z > 0:
        return mpmath.mpf(1)
    if z < 0:
        return mpmath.mpf(0)
    return _mpf(at_zero)


def _mp_max(a, b):
    return _mpf(a) if a >= b else _mpf(b)


def _mp_min(a, b):
    return _mpf(a) if a <= b else _mpf(b)


# -- python-flint ---------------------------------------------------------------------

def _to_arb(value):
    value = _mpf(value)
    if not mpmath.isfinite(value):
        return flint.arb("nan")
    sign, man, exp, _ = value._mpf_
    return flint.arb((-int(man) if sign else int(man), int(exp)))


def _arb_mpf(value):
    """An exact arb (a midpoint or endpoint) as an mpf, exactly (not rounded)."""
    man, exp = value.man_exp()
    return mpmath.mp.make_mpf(libmp.from_man_exp(int(man), int(exp)))


def _from_flint(value):
    """The midpoint of an arb/acb as an mpf/mpc (exact)."""
    if isinstance(value, flint.acb):
        real, imag = value.real, value.imag
        if not (real.is_finite() and imag.is_finite()):
            return mpmath.mpc("nan", "nan")
        real, imag = _arb_mpf(real.mid()), _arb_mpf(imag.mid())
        return mpmath.mpc(real, imag) if imag else real
    if not value.is_finite():
        return mpmath.mpf("nan")
    return _arb_mpf(value.mid())


def _arb_exact(value):
    """An arb ball containing ``value`` (exact when it is a binary number)."""
    if isinstance(value, flint.arb):
        return value
    if isinstance(value, (int, np.integer)):
        return flint.arb(int(value))
    if isinstance(value, Fraction):
        return flint.arb(flint.fmpq(value.numerator, value.denominator))
    if isinstance(value, (str, Decimal)):
        return flint.arb(str(value))
    if isinstance(value, mpmath.iv.mpf):
        low, high = (_to_arb(mpmath.mp.make_mpf(end)) for end in value._mpi_)
        return low.union(high)
    return _to_arb(value)


class Arb(Arithmetic):
    """python-flint ``arb`` midpoints: solves by ``arb_mat`` (no error bounds claimed)."""

    name = "arb"
    _complex_name = "acb"

    def __init__(self):
        if flint is None:
            raise NotSupportedError(f"arithmetic {self.name!r} needs python-flint "
                                    f"(pip install python-flint); use 'mpmath'")

    def precision(self):
        return flint.ctx.prec

    def pi(self):
        return flint.arb.pi()

    def number(self, value):
        if isinstance(value, flint.acb):
            raise InputError(f"real arithmetic: complex value {value}")
        return _arb_exact(value)

    def to_mpmath(self, value):
        if isinstance(value, (flint.arb, flint.acb)):
            return _from_flint(value)
        return mpmath.mpmathify(value)

    def mid(self, array):
        return np.frompyfunc(lambda v: v.mid(), 1, 1)(array) if np.ndim(array) else array.mid()

    def isfinite(self, array):
        return all(v.is_finite() if isinstance(v, (flint.arb, flint.acb))
                   else math.isfinite(abs(v)) for v in np.ravel(array))

    def magnitudes(self, array):
        def magnitude(v):
            v = abs(v)
            return float(v.mid()) if v.is_finite() else float("nan")
        flat = [magnitude(v) for v in np.ravel(array)]
        return np.asarray(flat, dtype=float).reshape(np.shape(array))

    def _functions(self):
        ns = self._scalar_functions(lambda name: getattr(self._kind, name, None)
                                    or _unavailable(self.name, name))
        ns.update(Heaviside=np.frompyfunc(self._heaviside, 2, 1),
                  Max=lambda *args: _reduce(np.frompyfunc(self._max, 2, 1), args),
                  Min=lambda *args: _reduce(np.frompyfunc(self._min, 2, 1), args))
        return ns

    _kind = flint.arb if flint is not None else None
    _matrix = flint.arb_mat if flint is not None else None

    def _heaviside(self, z, at_zero=0.5):
        middle = _from_flint(z) if isinstance(z, flint.arb) else z
        return flint.arb(_mp_heaviside(middle, at_zero)) if middle else _arb_exact(
            _fraction(_mpf(at_zero)))

    def _max(self, a, b):
        a, b = _arb_exact(a), _arb_exact(b)
        return a if _from_flint(a) >= _from_flint(b) else b

    def _min(self, a, b):
        a, b = _arb_exact(a), _arb_exact(b)
        return a if _from_flint(a) <= _from_flint(b) else b

    def _as_matrix(self, array):
        if isinstance(array, (flint.arb_mat, flint.acb_mat)):
            return array
        array = np.asarray(array, dtype=object)
        if array.ndim == 1:
            array = array[:, None]
        rows, cols = array.shape
        # one flat list: the nested-list constructor costs twice as much
        return self._matrix(rows, cols, array.ravel().tolist())

    def _from_matrix(self, matrix, shape):
        values = np.empty(matrix.nrows() * matrix.ncols(), dtype=object)
        values[:] = matrix.entries()
        return values.reshape(shape)

    def constant_matrix(self, array):
        array = np.asarray(array, dtype=object)
        if all(isinstance(v, flint.arb) for v in array.ravel()):
            # acb_mat x arb_mat multiplies only the real parts' products it needs
            return flint.arb_mat(*array.shape, [v.mid() for v in array.ravel()])
        return self._as_matrix(self.mid(self.asarray(array)))

    def matmul(self, A, B):
        flints = (flint.arb_mat, flint.acb_mat)
        if isinstance(B, flints) and not isinstance(A, flints):
            A = np.asarray(A, dtype=object)
            if A.ndim != 2:
                raise ValueError("matmul with a prepared matrix: a 2-D left operand")
            return self._from_matrix(self._as_matrix(A) * B, (A.shape[0], B.ncols()))
        A, B = np.asarray(A, dtype=object), np.asarray(B, dtype=object)
        if A.ndim != 2 or B.ndim not in (1, 2):
            return np.matmul(A, B)
        product = self._as_matrix(A) * self._as_matrix(B)
        return self._from_matrix(product, (A.shape[0],) + B.shape[1:])

    def solve(self, A, b):
        # The tracker's and Newton's solves come with arrays of this arithmetic's own
        # numbers: one type test per entry instead of the generic conversion and the
        # finiteness checks before and after (measured: half the time of a 48 x 48
        # complex solve at 102 digits).  Anything else, or a failure (for its reason),
        # takes the generic path.
        if isinstance(A, np.ndarray) and isinstance(b, np.ndarray) and A.dtype == object \
                and b.dtype == object and A.ndim == 2 and b.ndim in (1, 2) \
                and A.shape[0] == A.shape[1] == b.shape[0] > 0:
            kind, entries, right = self._kind, A.ravel().tolist(), b.ravel().tolist()
            if all(type(v) is kind for v in entries) and all(type(v) is kind for v in right):
                matrix = self._matrix(A.shape[0], A.shape[1], entries)
                columns = 1 if b.ndim == 1 else b.shape[1]
                x = matrix.solve(self._matrix(b.shape[0], columns, right), nonstop=True,
                                 algorithm="approx").entries()
                if all(v.is_finite() for v in x):
                    values = np.empty(len(x), dtype=object)
                    values[:] = x
                    return LinearSolve(values.reshape(b.shape), True)
        return super().solve(A, b)

    def _solve(self, A, b):
        x = self._as_matrix(A).solve(self._as_matrix(b), nonstop=True, algorithm="approx")
        x = self._from_matrix(x, b.shape)
        if not self.isfinite(x):
            return LinearSolve(None, False, "numerically singular")
        return LinearSolve(x, True)

    def _qr_solve(self, A, b):
        # No QR for arb matrices in python-flint: QR in mpmath at the same precision.
        result = get_arithmetic(self._mpmath_name)._qr_solve(self.to_mpmath_array(A),
                                                             self.to_mpmath_array(b))
        return LinearSolve(self.asarray(result.x), True) if result.ok else result

    _mpmath_name = "mpmath"

    def roots(self, coefficients):
        """Roots of ``sum coefficients[k] z^k`` (acb midpoints)."""
        polynomial = flint.acb_poly([flint.acb(c).mid() for c in coefficients])
        try:
            return [r.mid() for r in polynomial.roots(maxprec=4 * flint.ctx.prec + 256)]
        except ValueError:  # clustered roots: fall back to mpmath's iteration
            found = Mpmath.roots(self, [self.to_mpmath(c) for c in coefficients])
            return [flint.acb(_to_arb(r.real), _to_arb(r.imag)) for r in map(mpmath.mpc, found)]


class Acb(Arb):
    name = "acb"
    is_complex = True
    _real_name = "arb"
    _kind = flint.acb if flint is not None else None
    _matrix = flint.acb_mat if flint is not None else None
    _mpmath_name = "mpc"

    def number(self, value):
        if isinstance(value, flint.acb):
            return value
        value = _unwrap(value) if not isinstance(value, (Fraction, str, Decimal)) else value
        if isinstance(value, complex):
            value = mpmath.mpc(value.real, value.imag)
        if isinstance(value, mpmath.mpc):
            return flint.acb(_to_arb(value.real), _to_arb(value.imag))
        return flint.acb(_arb_exact(value))

    def conj(self, array):
        return np.frompyfunc(lambda v: v.conjugate(), 1, 1)(array)

    def pi(self):
        # an acb: python-flint's acb functions must never be given an arb (unchecked)
        return flint.acb.pi()


# -- intervals ------------------------------------------------------------------------

def _heaviside_decision(low, high, at_zero):
    if low > 0:
        return 1
    if high < 0:
        return 0
    if low == high == 0 and at_zero is not None:
        return at_zero
    raise NotDifferentiableError("a relu kink (Heaviside step) lies inside the box")


class _Intervals(Arithmetic):
    """What Krawczyk needs: intervals from bounds or midpoint and radius, bounds,
    strict containment, and the activations' functions with outward rounding."""

    is_interval = True

    # subclasses: interval(low, high), lower(a), upper(a) on numbers
    def ball(self, mid, rad):
        """The interval ``[mid - rad, mid + rad]`` (mpf or exact numbers)."""
        mid, rad = self.number(mid), self.number(rad)
        return mid + self.interval(-self.upper(rad), self.upper(rad))

    def lowers(self, array):
        return np.frompyfunc(self.lower, 1, 1)(array)

    def uppers(self, array):
        return np.frompyfunc(self.upper, 1, 1)(array)

    def radius(self, value):
        """An upper bound of the half-width (mpf)."""
        with mpmath.workprec(mpmath.mp.prec):
            return mpmath.mpf(libmp.mpf_sub(self.upper(value)._mpf_, self.lower(value)._mpf_,
                                            mpmath.mp.prec, libmp.round_ceiling)) / 2

    def magnitude(self, value):
        """An upper bound of ``|value|`` over the interval (mpf)."""
        return max(abs(self.lower(value)), abs(self.upper(value)))

    def magnitudes(self, array):
        flat = [float(self.magnitude(v)) for v in np.ravel(array)]
        return np.asarray(flat, dtype=float).reshape(np.shape(array))

    def strictly_inside(self, inner, outer):
        """Whether every ``inner`` interval lies in the interior of ``outer``."""
        return all(self.lower(o) < self.lower(i) and self.upper(i) < self.upper(o)
                   for i, o in zip(np.ravel(inner), np.ravel(outer)))

    def contains(self, outer, value):
        """Whether every interval of ``outer`` contains the matching value: an interval,
        or an exact number (int, Fraction, Decimal, decimal string, float, mpf) compared
        exactly with the endpoints."""
        def inside(o, v):
            if _number_is_exact(v):
                exact = Fraction(v) if not isinstance(v, mpmath.mpf) else _fraction(v)
                return _fraction(self.lower(o)) <= exact <= _fraction(self.upper(o))
            v = self.number(v)
            return self.lower(o) <= self.lower(v) and self.upper(v) <= self.upper(o)
        outer = np.asarray(outer, dtype=object)
        values = np.empty(outer.size, dtype=object)
        values[:] = list(np.ravel(np.asarray(value, dtype=object)))
        return all(inside(o, v) for o, v in zip(outer.ravel(), values))

    def upper_sum(self, values):
        """A rigorous upper bound of a sum of non-negative mpf values."""
        total = self.number(0)
        for value in values:
            total = total + self.number(value)
        return self.upper(total)

    def to_mpmath(self, value):
        return mpmath.mp.make_mpf(libmp.mpf_shift(libmp.mpf_add(  # exact midpoint
            self.lower(value)._mpf_, self.upper(value)._mpf_, 0), -1))

    def mid(self, array):
        if not np.ndim(array):
            return self.to_mpmath(array)
        return self.to_mpmath_array(array)

    def isfinite(self, array):
        return all(mpmath.isfinite(self.lower(v)) and mpmath.isfinite(self.upper(v))
                   for v in np.ravel(array))

    def _functions(self):
        def heaviside(z, at_zero=None):
            value = _heaviside_decision(self.lower(z), self.upper(z), at_zero)
            return self.number(value)

        def dirac_delta(z, *order):
            if self.lower(z) > 0 or self.upper(z) < 0:
                return self.number(0)
            raise NotDifferentiableError("a relu kink (Dirac delta) lies inside the box")

        def maximum(a, b):
            a, b = self.number(a), self.number(b)
            return self.interval(max(self.lower(a), self.lower(b)),
                                 max(self.upper(a), self.upper(b)))

        def minimum(a, b):
            a, b = self.number(a), self.number(b)
            return self.interval(min(self.lower(a), self.lower(b)),
                                 min(self.upper(a), self.upper(b)))

        ns = self._scalar_functions(self._scalar)
        ns.update(Heaviside=np.frompyfunc(heaviside, 2, 1),
                  DiracDelta=np.frompyfunc(dirac_delta, 1, 1),
                  Max=lambda *args: _reduce(np.frompyfunc(maximum, 2, 1), args),
                  Min=lambda *args: _reduce(np.frompyfunc(minimum, 2, 1), args))
        return ns

    def _qr_solve(self, A, b):
        raise NotSupportedError(f"arithmetic {self.name}: no interval least squares")


class Iv(_Intervals):
    """mpmath's ``iv`` context: intervals with outward-rounded endpoints."""

    name = "iv"

    def precision(self):
        return mpmath.iv.prec

    def number(self, value):
        if isinstance(value, mpmath.iv.mpf):
            return value
        if isinstance(value, (int, np.integer)):
            return mpmath.iv.mpf(int(value))
        if isinstance(value, (Fraction, Decimal, str)):
            value = Fraction(value)
            p, q, prec = value.numerator, value.denominator, mpmath.iv.prec
            low = libmp.from_rational(p, q, prec, libmp.round_floor)
            high = libmp.from_rational(p, q, prec, libmp.round_ceiling)
            return mpmath.iv.mpf((mpmath.mp.make_mpf(low), mpmath.mp.make_mpf(high)))
        if flint is not None and isinstance(value, flint.arb):
            return self.interval(_arb_mpf(value.lower()), _arb_mpf(value.upper()))
        if isinstance(value, (complex, mpmath.mpc)):
            raise InputError(f"real arithmetic: complex value {value}")
        return mpmath.iv.mpf(_mpf(value) if not isinstance(value, float) else value)

    def interval(self, low, high):
        return mpmath.iv.mpf((_mpf(low), _mpf(high)))

    def lower(self, value):
        return mpmath.mp.make_mpf(self.number(value)._mpi_[0])

    def upper(self, value):
        return mpmath.mp.make_mpf(self.number(value)._mpi_[1])

    def pi(self):
        return mpmath.iv.pi

    def _scalar(self, name):
        if name == "tanh":
            return self._tanh
        if name == "erf":
            return self._erf
        return getattr(mpmath.iv, name, None) or _unavailable(self.name, name)

    def _erf(self, a):
        # The iv context's erf does not converge; erf is increasing with |erf'| <= 1.13
        # and |erf| <= 1: each endpoint's value from 20 bits more, widened outward by
        # 2^-prec (far above mpmath's few units in the last place at prec + 20).
        prec = mpmath.iv.prec
        with mpmath.workprec(prec + 20):
            low = mpmath.erf(self.lower(a))
            high = mpmath.erf(self.upper(a))
            margin = mpmath.ldexp(1, -prec)
            low, high = low - margin, high + margin
        return self.interval(low, high)

    def _tanh(self, a):
        # The iv context has no tanh; tanh is increasing, so enclose it at each endpoint
        # with 1 - 2 / (exp(2 t) + 1) and keep the outer bounds.
        def enclose(t):
            return 1 - 2 / (mpmath.iv.exp(2 * mpmath.iv.mpf(t)) + 1)
        return self.interval(self.lower(enclose(self.lower(a))),
                             self.upper(enclose(self.upper(a))))

    def _solve(self, A, b):
        try:
            x = mpmath.iv.lu_solve(mpmath.iv.matrix(A.tolist()), mpmath.iv.matrix(b.tolist()))
        except ZeroDivisionError as error:
            return LinearSolve(None, False, str(error) or "singular")
        return LinearSolve(Mpmath._column(x, b.shape), True)


def _unavailable(arithmetic, name):
    def refuse(*args):
        raise NotSupportedError(f"arithmetic {arithmetic}: no {name}")
    return refuse


class ArbBall(_Intervals):
    """python-flint's ``arb`` balls used as intervals (rigorous, midpoint-radius)."""

    name = "arb_ball"

    def __init__(self):
        if flint is None:
            raise NotSupportedError("arithmetic 'arb_ball' needs python-flint "
                                    "(pip install python-flint); use 'iv'")

    def precision(self):
        return flint.ctx.prec

    def pi(self):
        return flint.arb.pi()

    def number(self, value):
        return _arb_exact(value)

    def interval(self, low, high):
        return _arb_exact(_mpf(low)).union(_arb_exact(_mpf(high)))

    def lower(self, value):
        # an unbounded (or NaN) ball has no finite end: -inf keeps every comparison that
        # asks "is this inside?" false, so a diverging Krawczyk box is "not contracted",
        # never a ValueError from man_exp
        end = self.number(value).lower()
        return _arb_mpf(end) if end.is_finite() else mpmath.ninf

    def upper(self, value):
        end = self.number(value).upper()
        return _arb_mpf(end) if end.is_finite() else mpmath.inf

    def ball(self, mid, rad):
        ball = self.number(mid)
        radius = self.number(rad)
        return ball + flint.arb(0, radius.upper())

    def _scalar(self, name):
        return getattr(flint.arb, name, None) or _unavailable(self.name, name)

    def _solve(self, A, b):
        matrix = Arb._as_matrix(self, A)
        try:
            x = matrix.solve(Arb._as_matrix(self, b))
        except ZeroDivisionError as error:
            return LinearSolve(None, False, str(error) or "singular (or too wide)")
        return LinearSolve(Arb._from_matrix(self, x, b.shape), True)

    _matrix = flint.arb_mat if flint is not None else None


# -- exact rationals ------------------------------------------------------------------

def _rational_kind():
    """The fastest exact rational type installed.  Measured on 200,000 entries (object
    arrays): a product 0.031 s (fmpq), 0.071 s (mpq), 0.457 s (Fraction); the conversion
    to an ``fmpq_mat`` for a matrix product 0.031 s (fmpq), 0.288 s (mpq), 0.160 s
    (Fraction) and back 0.051 s, 0.395 s, 0.425 s."""
    if flint is not None and hasattr(flint, "fmpq_mat"):
        return flint.fmpq
    if gmpy2 is not None:
        return gmpy2.mpq
    return Fraction


# Below this many multiply-adds numpy's object loop wins: converting to and from
# ``fmpq_mat`` costs more than it saves (a loss oracle's 3-2-1 network: 430 -> 150 us).
_FMPQ_MAT_WORK = 4096


class Rational(Arithmetic):
    """Exact rationals: relu, leaky relu and identity networks on rational data give
    rational outputs and gradients, computed here with no rounding at all.

    Entries are python-flint's ``fmpq`` where installed, else gmpy2's ``mpq``, else
    :class:`fractions.Fraction`; every conversion in (ints, Fractions, decimal and
    ``"p/q"`` strings, Decimals, finite floats and mpfs, exactly) and out
    (:meth:`fraction`) is exact.  :meth:`workdps` is a no-op.  Of the elementary
    functions only ``Max``, ``Min`` and ``Heaviside`` exist (an activation needing
    another is refused, by name, when it is compiled); matrix products and solves go
    through python-flint's ``fmpq_mat`` where installed.

    >>> from fractions import Fraction
    >>> q = get_arithmetic("rational")
    >>> x = q.asarray(["0.1", "1/3", Fraction(-2, 7)])
    >>> [q.fraction(v) for v in x * x]
    [Fraction(1, 100), Fraction(1, 9), Fraction(4, 49)]
    >>> [q.fraction(v) for v in q.solve(q.asarray([[2, 1], [1, 3]]), q.asarray([3, 4])).x]
    [Fraction(1, 1), Fraction(1, 1)]
    """

    name = "rational"
    is_exact = True

    def __init__(self):
        self.kind = _rational_kind()
        self._flint = self.kind is not Fraction and flint is not None and \
            self.kind is flint.fmpq

    def workdps(self, dps):
        return contextlib.nullcontext()

    def precision(self):
        return 0  # exact: constants never depend on a precision

    def number(self, value):
        if type(value) is self.kind:
            return value
        if type(value) is Decimal and value.is_finite():   # the trace's numbers
            return self.kind(*value.as_integer_ratio())
        if isinstance(value, (bool, np.bool_)):
            raise InputError(f"arithmetic {self.name}: expected a number, got {value!r}")
        if isinstance(value, (int, np.integer)):
            return self.kind(int(value))
        return self._ratio(self.fraction(value))

    def _ratio(self, fraction):
        return self.kind(fraction.numerator, fraction.denominator)

    def rational(self, p, q=1):
        return self.kind(int(p), int(q))

    def fraction(self, value):
        """``value`` as a :class:`~fractions.Fraction`, exactly: an entry of this
        arithmetic, an int, Fraction, mpq, fmpq, SymPy Rational, Decimal, finite float or
        mpf, or text (``"0.25"``, ``"1e-3"``, ``"3/7"``)."""
        if isinstance(value, Fraction):
            return value
        if type(value) is Decimal:   # the trace's numbers: the common case first
            if not value.is_finite():
                raise InputError(f"arithmetic {self.name}: not finite: {value}")
            return Fraction(value)
        if isinstance(value, str):
            try:
                return Fraction(value.strip())
            except ValueError:
                raise InputError(f"arithmetic {self.name}: not a rational number: "
                                 f"{value!r}") from None
        numerator = getattr(value, "numerator", None)
        if numerator is None and hasattr(value, "p") and hasattr(value, "q"):
            numerator, denominator = value.p, value.q      # SymPy's Rational
        else:
            denominator = getattr(value, "denominator", None)
        if numerator is not None and denominator is not None and \
                not isinstance(value, (float, np.floating)):
            return Fraction(int(numerator), int(denominator))
        value = _unwrap(value)
        if isinstance(value, (complex, mpmath.mpc)):
            raise InputError(f"arithmetic {self.name}: complex value {value}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"arithmetic {self.name}: not finite: {value}")
        return _fraction(value)

    def fractions(self, array):
        """An array of :class:`~fractions.Fraction` (``dtype=object``) of ``array``."""
        return np.frompyfunc(self.fraction, 1, 1)(np.asarray(array, dtype=object))

    def to_mpmath(self, value):
        return _mpf(self.fraction(value))

    def isfinite(self, array):
        return True  # rationals are finite (conversions refuse nan and infinities)

    def magnitudes(self, array):
        flat = [float(abs(v)) for v in np.ravel(array)]
        return np.asarray(flat, dtype=float).reshape(np.shape(array))

    def pi(self):
        raise NotSupportedError(f"arithmetic {self.name}: pi is irrational")

    def _functions(self):
        one, zero = (np.array(self.number(v), dtype=object) for v in (1, 0))
        half = self.rational(1, 2)

        def heaviside(z, at_zero=half):
            # relu's step; relu's derivative asks for ``Heaviside(z, 0)``, PyTorch's
            # relu'(0) = 0 (an exact zero pre-activation is a real case here)
            z = np.asarray(z, dtype=object)
            return np.where(z > 0, one, np.where(z < 0, zero, np.asarray(at_zero,
                                                                          dtype=object)))

        return {"Max": lambda *args: _reduce(np.maximum, args),
                "Min": lambda *args: _reduce(np.minimum, args),
                "Heaviside": heaviside, "Rational": self.rational, "ipow": _ipow,
                "DiracDelta": self._dirac_delta}

    # -- linear algebra: python-flint's fmpq_mat where installed ---------------------

    def _as_matrix(self, array):
        rows, cols = array.shape
        entries = array.ravel().tolist()
        if not all(type(v) is self.kind for v in entries):
            entries = [self.number(v) for v in entries]
        return flint.fmpq_mat(rows, cols, entries)

    def _from_matrix(self, matrix, shape):
        values = np.empty(matrix.nrows() * matrix.ncols(), dtype=object)
        values[:] = matrix.entries()
        return values.reshape(shape)

    def matmul(self, A, B):
        """``A @ B``: by ``fmpq_mat`` products for 2-D operands and for stacks of them
        (3-D, the layer-wise program's steps; measured 10x faster than numpy's object
        loop at 64 x 784 x 1024), numpy's object loop for small or other products."""
        A, B = np.asarray(A, dtype=object), np.asarray(B, dtype=object)
        # the small products first: a loss black box multiplies tiny matrices many times
        if A.ndim < 2 or B.ndim < 2 or A.shape[-2] * A.shape[-1] * B.shape[-1] < \
                _FMPQ_MAT_WORK or not self._flint or A.ndim > 3 or B.ndim != A.ndim \
                or 0 in A.shape or 0 in B.shape or (A.ndim == 3 and A.shape[0] != B.shape[0]
                                                    and 1 not in (A.shape[0], B.shape[0])):
            return np.matmul(A, B)
        if A.ndim == 2:
            return self._from_matrix(self._as_matrix(A) * self._as_matrix(B),
                                     (A.shape[0], B.shape[1]))
        count = max(A.shape[0], B.shape[0])
        out = np.empty((count, A.shape[1], B.shape[2]), dtype=object)
        same_A, same_B = A.shape[0] == 1, B.shape[0] == 1
        left = self._as_matrix(A[0]) if same_A else None
        right = self._as_matrix(B[0]) if same_B else None
        for e in range(count):
            product = (left if same_A else self._as_matrix(A[e])) * \
                (right if same_B else self._as_matrix(B[e]))
            out[e] = self._from_matrix(product, out.shape[1:])
        return out

    def _solve(self, A, b):
        if self._flint:
            try:
                x = self._as_matrix(A).solve(self._as_matrix(b.reshape(len(b), -1)))
            except ZeroDivisionError:
                return LinearSolve(None, False, "singular matrix")
            return LinearSolve(self._from_matrix(x, b.shape), True)
        from . import rational
        x = rational.solve(self.fractions(A).tolist(),
                           self.fractions(b.reshape(len(b), -1)).tolist())
        if x is None:
            return LinearSolve(None, False, "singular matrix")
        return LinearSolve(self.asarray(x).reshape(b.shape), True)

    def _qr_solve(self, A, b):
        # Exact: the normal equations lose nothing (no condition number squared).
        AT = A.T
        return self.solve(self.matmul(AT, A), self.matmul(AT, b))


# -- lookup ---------------------------------------------------------------------------

_CLASSES = {"float64": Float64, "complex128": Complex128, "mpmath": Mpmath, "mpc": Mpc,
            "arb": Arb, "acb": Acb, "iv": Iv, "arb_ball": ArbBall, "rational": Rational}
_INSTANCES = {}


def available_arithmetics():
    """Names of the arithmetics that can run here (python-flint's only when installed)."""
    return [name for name in ARITHMETIC_NAMES if flint is not None or name not in _FLINT_NAMES]


def get_arithmetic(name=None):
    """The arithmetic called ``name``.

    ``None`` or ``"auto"``: ``"arb"`` when python-flint is installed, else ``"mpmath"``.
    The old backend name ``"flint"`` means ``"arb"``.  An :class:`Arithmetic` is returned
    as it is.  ``"rational"`` (exact, piecewise-linear networks only) is one more.
    """
    if isinstance(name, Arithmetic):
        return name
    if getattr(name, "arithmetic", None) is not None:  # an old-style backend object
        return name.arithmetic
    name = _ALIASES.get(name, name)
    if name is None:
        name = "arb" if flint is not None else "mpmath"
    if name not in _CLASSES:
        raise InputError(f"arithmetic: expected one of "
                         f"{', '.join(ARITHMETIC_NAMES + EXACT_NAMES)} or 'auto', got "
                         f"{name!r}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _CLASSES[name]()
    return _INSTANCES[name]
