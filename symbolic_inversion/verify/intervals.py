r"""Interval arithmetic for certificates, and the inversion system evaluated over boxes.

Two interval back ends give the same verdicts: mpmath's ``iv`` context (default, no
extra dependency) and python-flint's ``arb`` balls (faster, when installed).

The numbers of the system are read honestly: every parameter of the trace and every
right-hand side ``|B_j| / 2 * g_j`` (an exact rational computed from the trace's
decimal strings) becomes the smallest interval at the working precision that encloses
it.  A relu whose kink falls inside the box makes the system non-differentiable there:
:class:`NotDifferentiableError`.
"""

from fractions import Fraction
from functools import lru_cache

import mpmath
import sympy as sp
from mpmath import libmp
from sympy.printing.lambdarepr import LambdaPrinter

from ..codegen import compile_network
from ..errors import NotSupportedError
from ..exact import mpf_fraction as _mpf_fraction

__all__ = ["INTERVAL_BACKENDS", "NotDifferentiableError", "IntervalSystem",
           "interval_precision"]


class NotDifferentiableError(ArithmeticError):
    """An interval met a point where the system is not differentiable (a relu kink)."""


# -- interval back ends -----------------------------------------------------------------

def _heaviside_decision(low, high, at_zero):
    if low > 0:
        return 1
    if high < 0:
        return 0
    if low == high == 0 and at_zero is not None:
        return at_zero
    raise NotDifferentiableError("a relu kink (Heaviside step) lies inside the box")


class _Intervals:
    """What Krawczyk needs from an interval arithmetic; subclasses wrap one library."""

    name = ""

    def namespace(self):
        def heaviside(z, at_zero=None):
            if at_zero is not None and not self.is_interval(at_zero):
                at_zero = self.exact(mpmath.mpf(at_zero))
            value = _heaviside_decision(self.lower(z), self.upper(z),
                                        None if at_zero is None else at_zero)
            return value if self.is_interval(value) else self.exact(mpmath.mpf(value))

        def dirac_delta(z):
            if self.lower(z) > 0 or self.upper(z) < 0:
                return self.exact(mpmath.mpf(0))
            raise NotDifferentiableError("a relu kink (Dirac delta) lies inside the box")

        def maximum(*args):
            args = [a if self.is_interval(a) else self.exact(mpmath.mpf(a)) for a in args]
            return self.interval(max(self.lower(a) for a in args),
                                 max(self.upper(a) for a in args))

        def minimum(*args):
            args = [a if self.is_interval(a) else self.exact(mpmath.mpf(a)) for a in args]
            return self.interval(min(self.lower(a) for a in args),
                                 min(self.upper(a) for a in args))

        return {"tanh": self.tanh, "exp": self.exp, "Heaviside": heaviside,
                "DiracDelta": dirac_delta, "Max": maximum, "Min": minimum,
                "ipow": self.ipow, "Rational": self.rational}

    def from_fraction(self, value):
        value = Fraction(value)
        return self.rational(value.numerator, value.denominator)

    def magnitude(self, a):
        """An upper bound of ``|a|`` over the interval (an exact mpf)."""
        return max(abs(self.lower(a)), abs(self.upper(a)))

    def symmetric(self, radius):
        return self.interval(-radius, radius)

    def strictly_inside(self, inner, outer):
        return self.lower(outer) < self.lower(inner) and self.upper(inner) < self.upper(outer)

    def upper_sum(self, values):
        """A rigorous upper bound of a sum of non-negative mpf values."""
        total = self.exact(mpmath.mpf(0))
        for value in values:
            total = total + self.exact(value)
        return self.upper(total)


class _IvPrecision:
    """``iv.prec`` set for a block and restored (the ``iv`` context has no workprec)."""

    def __init__(self, ctx, prec):
        self.ctx, self.prec = ctx, prec

    def __enter__(self):
        self.saved, self.ctx.prec = self.ctx.prec, self.prec
        return self

    def __exit__(self, *exc):
        self.ctx.prec = self.saved
        return False


class _MpmathIntervals(_Intervals):
    """mpmath's ``iv`` context: intervals with outward-rounded endpoints."""

    name = "iv"

    def __init__(self):
        self.ctx = mpmath.iv

    def workprec(self, prec):
        return _IvPrecision(self.ctx, prec)

    @property
    def prec(self):
        return self.ctx.prec

    def is_interval(self, a):
        return isinstance(a, type(self.ctx.mpf(0)))

    def rational(self, p, q):
        p, q = int(p), int(q)
        low = libmp.from_rational(p, q, self.prec, libmp.round_floor)
        high = libmp.from_rational(p, q, self.prec, libmp.round_ceiling)
        return self.ctx.mpf((mpmath.mp.make_mpf(low), mpmath.mp.make_mpf(high)))

    def exact(self, value):
        return self.ctx.mpf(value)

    def interval(self, low, high):
        return self.ctx.mpf((low, high))

    def lower(self, a):
        return mpmath.mp.make_mpf(a._mpi_[0])

    def upper(self, a):
        return mpmath.mp.make_mpf(a._mpi_[1])

    def tanh(self, a):
        # The iv context has no tanh; tanh is increasing, so enclose it at each endpoint
        # with 1 - 2 / (exp(2 t) + 1) and keep the outer bounds.
        def enclose(t):
            return 1 - 2 / (self.ctx.exp(2 * self.ctx.mpf(t)) + 1)
        return self.interval(self.lower(enclose(self.lower(a))),
                             self.upper(enclose(self.upper(a))))

    def exp(self, a):
        return self.ctx.exp(a)

    def ipow(self, a, n):
        return a ** n


class _ArbIntervals(_Intervals):
    """python-flint's ``arb`` balls (midpoint-radius, rigorous)."""

    name = "arb"

    def __init__(self):
        try:
            import flint
        except ImportError:  # pragma: no cover - depends on the installation
            raise NotSupportedError("backend 'arb' needs python-flint "
                                    "(pip install python-flint)") from None
        self.flint = flint

    def workprec(self, prec):
        return self.flint.ctx.workprec(prec)

    @property
    def prec(self):
        return self.flint.ctx.prec

    def is_interval(self, a):
        return isinstance(a, self.flint.arb)

    def rational(self, p, q):
        return self.flint.arb(self.flint.fmpq(int(p), int(q)))

    def exact(self, value):
        value = _mpf_fraction(value)
        return self.flint.arb(self.flint.fmpq(value.numerator, value.denominator))

    def interval(self, low, high):
        return self.exact(low).union(self.exact(high))

    def _to_mpf(self, exact_ball):
        man, exp = exact_ball.man_exp()
        return mpmath.mpf((int(man), int(exp)))

    def lower(self, a):
        return self._to_mpf(a.lower())

    def upper(self, a):
        return self._to_mpf(a.upper())

    def tanh(self, a):
        return a.tanh()

    def exp(self, a):
        return a.exp()

    def ipow(self, a, n):
        # arb's ``**`` goes through exp(n log a) and gives nan for balls around zero.
        result, base, k = self.flint.arb(1), a, abs(int(n))
        while k:
            if k & 1:
                result = result * base
            base, k = base * base, k >> 1
        return 1 / result if n < 0 else result


INTERVAL_BACKENDS = {"iv": _MpmathIntervals, "arb": _ArbIntervals}


class _IntervalPrinter(LambdaPrinter):
    """Python code that calls the interval functions of a namespace by bare name.

    Rationals stay exact (``Rational(p, q)`` becomes an enclosing interval), integer
    powers go through ``ipow`` (a tight power also for intervals around zero).
    """

    def _module_format(self, fqn, register=True):
        return fqn.split(".")[-1]

    def _print_Rational(self, expr):
        return f"Rational({expr.p}, {expr.q})"

    _print_Half = _print_Rational

    def _print_Float(self, expr):
        return self._print_Rational(sp.Rational(expr))

    def _print_Pow(self, expr, rational=False):
        if not expr.exp.is_Integer:
            raise NotSupportedError(f"interval evaluation: non-integer power in {expr}")
        return f"ipow({self._print(expr.base)}, {int(expr.exp)})"

    def _print_call(self, expr):
        return f"{type(expr).__name__}({', '.join(self._print(a) for a in expr.args)})"

    _print_Heaviside = _print_Max = _print_Min = _print_DiracDelta = _print_call


@lru_cache(maxsize=32)
def _interval_terms(network, backend_name):
    """Compiled ``(B (f - y), d/dx of it, B)`` of one sample for one interval back end."""
    compiled = compile_network(network)
    half = compiled.B * (compiled.f - sp.Matrix(compiled.y_symbols))
    outputs = list(half) + list(half.jacobian(compiled.x_symbols)) + list(compiled.B)
    backend = INTERVAL_BACKENDS[backend_name]()
    function = sp.lambdify([compiled.theta_symbols, compiled.x_symbols, compiled.y_symbols],
                           outputs, modules=[backend.namespace()], printer=_IntervalPrinter,
                           cse=True)
    return backend, function


class IntervalSystem:
    """The inversion system with the trace's exact numbers, evaluated over boxes."""

    def __init__(self, system, backend_name):
        self.system = system
        self.network = system.network
        self.backend, self._terms = _interval_terms(system.network, backend_name)
        b = self.backend
        self.thetas = [[b.from_fraction(Fraction(v)) for v in system.trace.parameters[j]]
                       for j in range(system.steps)]
        self.sides = [[b.from_fraction(s) for s in step]
                      for step in system.right_hand_sides()]

    def _sample_terms(self, step, point, i):
        d, m = self.network.input_width, self.network.output_width
        P = self.network.num_parameters
        start = i * (d + m)
        x, y = point[start:start + d], point[start + d:start + d + m]
        values = self._terms(self.thetas[step], x, y)
        half, jac_x, B = values[:P], values[P:P + P * d], values[P + P * d:]
        return half, jac_x, B

    def evaluate(self, rows, point, jacobian=False):
        """Residuals (and, with ``jacobian``, the Jacobian rows) of ``rows`` over ``point``.

        ``point`` is a list of intervals, one per unknown (sample by sample: x then y).
        """
        network = self.network
        d, m = network.input_width, network.output_width
        P = network.num_parameters
        zero = self.backend.exact(mpmath.mpf(0))
        residual = {r: zero - self.sides[r // P][r % P] for r in rows}
        matrix = {r: [zero] * len(point) for r in rows} if jacobian else None
        for step in sorted({r // P for r in rows}):
            wanted = [r for r in rows if r // P == step]
            for i in self.system.batch(step):
                half, jac_x, B = self._sample_terms(step, point, i)
                for r in wanted:
                    p = r % P
                    residual[r] = residual[r] + half[p]
                    if jacobian:
                        for k in range(d):
                            matrix[r][i * (d + m) + k] = jac_x[p * d + k]
                        for o in range(m):
                            matrix[r][i * (d + m) + d + o] = -B[p * m + o]
        values = [residual[r] for r in rows]
        return (values, [matrix[r] for r in rows]) if jacobian else values


class interval_precision:
    """Set the interval library's precision (and mpmath's) for a block, then restore."""

    def __init__(self, backend, prec):
        self.backend, self.prec = backend, prec

    def __enter__(self):
        self._managers = [mpmath.workprec(self.prec)]
        if self.backend == "iv":
            self._managers.append(_IvPrecision(mpmath.iv, self.prec))
        else:
            self._managers.append(INTERVAL_BACKENDS["arb"]().workprec(self.prec))
        for manager in self._managers:
            manager.__enter__()
        return self

    def __exit__(self, *exc):
        for manager in reversed(self._managers):
            manager.__exit__(*exc)
        return False
