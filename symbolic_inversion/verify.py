r"""Step 6 of the workflow: turn a recovered dataset into a proof, and re-train from it.

:func:`certify` proves, in rigorous interval arithmetic, that the inversion system
*with the trace's exact decimal numbers* has exactly one solution inside a small box,
and bounds how far that solution is from the data you give it.  :func:`resimulate`
trains the network again from the data and reports, step by step, how many digits of
the trace it reproduces.

The proof is the Krawczyk test.  For a square system ``F(z) = 0`` (``N`` equations in
the ``N`` unknowns), a centre ``c``, a matrix ``C`` close to ``J(c)^{-1}`` and a box
``X = c + D``,

.. math:: K(X) = -C\,F(c) + \big(I - C\,J(X)\big)\,D

is computed in interval arithmetic, with ``J(X)`` an enclosure of every Jacobian over
the box.  If ``K(X)`` lies in the interior of ``D``, then ``F`` has exactly one zero in
``X`` and it lies in ``c + K(X)`` (Krawczyk 1969, Moore 1977, Rump 1983).  Neither
``c`` nor ``C`` needs to be exact: they are only where the argument starts, so the
certificate does not depend on how the data were found.

The numbers of the system are read honestly: every parameter of the trace and every
right-hand side ``|B_j| / 2 * g_j`` (an exact rational computed from the trace's
decimal strings) becomes the smallest interval at the working precision that encloses
it; the network terms are the SymPy expressions of :mod:`symbolic_inversion.network`
compiled with interval functions (``tanh``, ``exp``, ...).  A relu whose kink falls
inside the box makes the system non-differentiable there: no certificate.

With more equations than unknowns the best-conditioned square subsystem is certified
(rows picked by pivoted Gram-Schmidt on the Jacobian) and the other equations are
evaluated over the enclosure of the solution: they must hold to within what the
trace's rounding explains.

Two interval back ends give the same verdicts: mpmath's ``iv`` context (default, no
extra dependency) and python-flint's ``arb`` balls (faster, when installed).
"""

import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

import mpmath
import sympy as sp
from mpmath import libmp
from sympy.printing.lambdarepr import LambdaPrinter

from .codegen import compile_network
from .errors import InputError, NotSupportedError
from .system import InversionSystem
from .trace import Trace, to_decimal

__all__ = ["Certificate", "certify", "default_certify_dps", "Resimulation", "resimulate",
           "read_samples", "INTERVAL_BACKENDS", "NotDifferentiableError"]


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


class _IntervalSystem:
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


# -- results --------------------------------------------------------------------------

def _upper_text(value, digits=3):
    """A decimal string that is at least ``value`` (radii must not be rounded down)."""
    if value is None:
        return None
    if not mpmath.isfinite(value):
        return "inf"
    exact = _mpf_fraction(value)
    with localcontext() as context:
        context.prec, context.rounding = digits, ROUND_CEILING
        number = Decimal(exact.numerator) / Decimal(exact.denominator)
    return f"{number:.{digits - 1}e}"


def _mpf_fraction(value):
    """The exact binary value of an mpf (``man_exp`` drops the sign; ``_mpf_`` keeps it)."""
    # mpmath.mpf(value) would round to the current precision: read the bits directly.
    value = value if isinstance(value, mpmath.mpf) else mpmath.mpf(value)
    sign, man, exp, _ = value._mpf_
    if not man and exp:
        raise InputError(f"not a finite number: {value}")
    number = Fraction(int(man)) * (Fraction(2) ** int(exp))
    return -number if sign else number


@dataclass
class Certificate:
    """The outcome of :func:`certify`.

    Attributes
    ==========

    certified : bool
        ``proved``, the other equations consistent, and the exact solution within
        ``tolerance`` of the given data (and inside the box where it is unique).
    proved : bool
        The Krawczyk test succeeded: the square system has exactly one exact solution
        in a box of radius ``box_radius`` around ``center``.
    radius : mpf
        Upper bound of the max-norm distance from the *given* data to the exact
        solution (the radius of the box around them that contains it).
    enclosure_radius, box_radius : mpf
        The solution lies within ``enclosure_radius`` of ``center``; it is proved to
        exist and be unique in the box of radius ``box_radius`` around ``center``.
    uniqueness_radius : mpf
        No other exact solution lies within this distance (max norm) of ``center``.
    center : list of (x, y)
        The point the proof starts from (the given data, refined by Newton's method).
    tolerance : mpf
        How far the data may be from the exact solution and still be certified.
    equations : list of (step, parameter)
        The square subsystem that was certified.
    checked : list of (step, parameter)
        The other equations, evaluated over the enclosure of the solution.
    rest_residual, rest_tolerance : mpf or None
        Upper bound of their residual at the exact solution, and what rounding of the
        trace explains.
    backend, dps, steps : str, int, int
        Interval arithmetic used, its precision in decimal digits, trace steps used.
    reason : str
        Why the certificate failed, or what it proves.
    """

    certified: bool
    proved: bool
    radius: object
    enclosure_radius: object
    box_radius: object
    uniqueness_radius: object
    center: list
    tolerance: object
    equations: list
    checked: list
    rest_residual: object
    rest_tolerance: object
    backend: str
    dps: int
    steps: int
    reason: str
    stats: dict = field(default_factory=dict)

    def __bool__(self):
        return self.certified

    def to_dict(self, digits=None):
        """JSON-ready; radii are decimal strings rounded *up*."""
        shown = digits or min(self.dps, 40)
        names = lambda rows: [{"step": s, "parameter": p} for s, p in rows]  # noqa: E731
        return {
            "certified": self.certified, "proved": self.proved,
            "radius": _upper_text(self.radius),
            "enclosure_radius": _upper_text(self.enclosure_radius),
            "box_radius": _upper_text(self.box_radius),
            "uniqueness_radius": _upper_text(self.uniqueness_radius),
            "tolerance": _upper_text(self.tolerance),
            "center": [{"x": [mpmath.nstr(v, shown) for v in x],
                        "y": [mpmath.nstr(v, shown) for v in y]} for x, y in self.center],
            "equations": names(self.equations), "checked": names(self.checked),
            "rest_residual": _upper_text(self.rest_residual),
            "rest_tolerance": _upper_text(self.rest_tolerance),
            "backend": self.backend, "dps": self.dps, "steps": self.steps,
            "reason": self.reason,
            "stats": {k: (_upper_text(v) if isinstance(v, mpmath.mpf) else v)
                      for k, v in self.stats.items()},
        }

    def __str__(self):
        verdict = "certified" if self.certified else "NOT certified"
        lines = [f"{verdict}: {self.reason}"]
        if self.proved:
            lines.append(f"  exact solution within {_upper_text(self.radius)} of the given "
                         f"data (tolerance {_upper_text(self.tolerance)}); unique within "
                         f"{_upper_text(self.uniqueness_radius)} of the centre")
        lines.append(f"  {len(self.equations)} equations certified, {len(self.checked)} "
                     f"checked; steps 0..{self.steps - 1}; {self.backend} at {self.dps} digits")
        return "\n".join(lines)

    def _repr_html_(self):
        from .report.display import certificate_html
        return certificate_html(self)


# -- the certificate --------------------------------------------------------------------

def default_certify_dps(trace):
    """Working precision of :func:`certify`: the trace's digits, plus room for the
    conditioning (about ``2.2 n`` digits are lost, see ``numerics.md``) and guard digits."""
    return max(trace.digits, 16) + 3 * trace.samples + 30


def _data_points(samples, network, field_name="samples"):
    """Samples as ``[(x, y)]`` of exact values: mpf kept, everything else via Decimal."""
    from .solvers.solution import Solution
    if isinstance(samples, Solution):
        samples = samples.samples
    d, m = network.input_width, network.output_width
    points = []
    for i, sample in enumerate(samples):
        if isinstance(sample, dict):
            if "x" not in sample or "y" not in sample:
                raise InputError(f"{field_name}[{i}]: expected an object with x and y")
            sample = (sample["x"], sample["y"])
        try:
            x, y = sample
        except (TypeError, ValueError):
            raise InputError(f"{field_name}[{i}]: expected a pair (x, y)") from None
        x = list(x) if isinstance(x, (list, tuple)) else [x]
        y = list(y) if isinstance(y, (list, tuple)) else [y]
        if len(x) != d or len(y) != m:
            raise InputError(f"{field_name}[{i}]: expected {d} input and {m} label values, "
                             f"got {len(x)} and {len(y)}")
        exact = []
        for k, v in enumerate(x + y):
            if isinstance(v, mpmath.mpf):
                exact.append(_mpf_fraction(v))
            else:
                exact.append(Fraction(to_decimal(v, f"{field_name}[{i}][{k}]")))
        points.append(exact)
    return points


def read_samples(path, network):
    """Samples from a JSON file: the output of ``recover --json`` (its ``samples``) or a
    list of ``{"x": [...], "y": [...]}``.  Numbers are decimal strings or JSON numbers,
    read exactly; nothing in the file is evaluated."""
    import json
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read(), parse_float=Decimal)
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--solution: cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"--solution: not valid JSON ({error})") from None
    if isinstance(data, dict):
        data = data.get("samples")
    if not isinstance(data, list) or not data:
        raise InputError("--solution: expected a list of samples or an object with "
                         "'samples' (the output of 'recover --json')")
    _data_points(data, network, "samples")  # validates shapes and numbers
    return [(sample["x"], sample["y"]) if isinstance(sample, dict) else sample
            for sample in data]


def _select_rows(J, count):
    """``count`` rows of ``J`` that are best conditioned together (pivoted Gram-Schmidt
    on the normalized rows).  Returns ``(rows, smallest pivot)``."""
    rows = []
    vectors = []
    for r in range(J.rows):
        row = [J[r, c] for c in range(J.cols)]
        norm = mpmath.sqrt(mpmath.fsum(v * v for v in row))
        vectors.append([v / norm for v in row] if norm else row)
    remaining = list(range(J.rows))
    smallest = mpmath.inf
    for _ in range(count):
        norms = {r: mpmath.sqrt(mpmath.fsum(v * v for v in vectors[r])) for r in remaining}
        best = max(remaining, key=lambda r: norms[r])
        pivot = norms[best]
        smallest = min(smallest, pivot)
        if pivot == 0:
            break
        q = [v / pivot for v in vectors[best]]
        rows.append(best)
        remaining.remove(best)
        for r in remaining:
            dot = mpmath.fsum(a * b for a, b in zip(vectors[r], q))
            vectors[r] = [a - dot * b for a, b in zip(vectors[r], q)]
    return sorted(rows), smallest


def _square_part(system, point, rows):
    inputs, labels = _split(point, system.network)
    residual = system.residual(inputs, labels)
    J = system.jacobian(inputs, labels)
    F = mpmath.matrix([residual[r] for r in rows])
    Js = mpmath.matrix([[J[r, c] for c in range(J.cols)] for r in rows])
    return F, Js, J


def _split(point, network):
    d, m = network.input_width, network.output_width
    width = d + m
    inputs = [point[i * width:i * width + d] for i in range(len(point) // width)]
    labels = [point[i * width + d:(i + 1) * width] for i in range(len(point) // width)]
    return inputs, labels


def _refine(system, point, rows, dps):
    """Newton's method on the square subsystem (plain mpmath, not part of the proof)."""
    for _ in range(60):
        F, Js, _ = _square_part(system, point, rows)
        try:
            step = mpmath.lu_solve(Js, F)
        except ZeroDivisionError:
            return point
        point = [p - s for p, s in zip(point, step)]
        size = max(abs(s) for s in step)
        if size <= mpmath.mpf(10) ** (-dps + 3) * (1 + max(abs(p) for p in point)):
            return point
    return point


def certify(trace, samples=None, dps=None, steps=None, backend="iv", tolerance=None,
            refine=True):
    """Prove that an exact solution of the inversion system lies next to ``samples``.

    Parameters
    ==========

    trace : Trace
    samples : list of (x, y), Solution, or None
        The data to certify, in any form :func:`~symbolic_inversion.recover` returns or
        a list of ``(x, y)`` pairs of numbers or decimal strings.  ``None`` recovers
        them first with :func:`~symbolic_inversion.recover`.
    dps : int, optional
        Precision of the interval arithmetic (default :func:`default_certify_dps`).
    steps : int, optional
        Use only the first ``steps`` steps of the trace (default: all).
    backend : ``"iv"`` or ``"arb"``
        mpmath's interval context or python-flint's balls; the verdicts agree.
    tolerance : number, optional
        Largest distance from ``samples`` to the exact solution that still counts as
        certified.  Default: the first-order error bound of the data implied by the
        trace's digits (:meth:`InversionSystem.error_estimate`), what the trace itself
        can tell apart.
    refine : bool
        Start the proof from ``samples`` improved by Newton's method (recommended;
        only the distance to the given data is reported as ``radius``).

    Returns
    =======

    Certificate

    Examples
    ========

    One sample through the paper's neuron, from an exact 40-digit trace:

    >>> from symbolic_inversion import Network, simulate
    >>> from symbolic_inversion.verify import certify
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6], [0.5], lr="0.1", epochs=2,
    ...                  init=[0.5, 0.5], dps=40)
    >>> certificate = certify(trace, [([0.6], [0.5])])
    >>> certificate.certified, certificate.radius < 1e-30
    (True, True)
    >>> certify(trace, [([0.601], [0.5])]).certified
    False
    """
    started = time.perf_counter()
    if not isinstance(trace, Trace):
        raise InputError("certify: expected a Trace")
    if backend not in INTERVAL_BACKENDS:
        raise InputError(f"backend: expected one of {', '.join(INTERVAL_BACKENDS)}, "
                         f"got {backend!r}")
    if dps is None:
        dps = default_certify_dps(trace)
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 15:
        raise InputError(f"dps: must be an integer of at least 15, got {dps!r}")
    system = InversionSystem.from_trace(trace, steps)
    network = trace.network
    if samples is None:
        from .solvers import recover
        samples = recover(trace, dps=dps, steps=steps)
        if not samples.samples:
            raise NotSupportedError(f"certify: recovery gave no data to certify "
                                    f"({samples.status.value}: {samples.message})")
    given = [v for sample in _data_points(samples, network) for v in sample]
    if len(given) != system.counts["unknowns"]:
        raise InputError(f"samples: the trace has {trace.samples} samples, got "
                         f"{len(given) // (network.input_width + network.output_width)}")
    N = len(given)
    P = network.num_parameters
    names = network.parameter_names()

    def label(rows):
        return [(r // P, names[r % P]) for r in rows]

    def failed(reason, proved=False, center=None, **extra):
        stats = {"time": round(time.perf_counter() - started, 4)}
        return Certificate(False, proved, extra.get("radius"), extra.get("enclosure"),
                           extra.get("box"), extra.get("unique"),
                           center or _split_samples(given_mp, network), extra.get("tol"),
                           label(extra.get("rows", [])), label(extra.get("rest", [])),
                           extra.get("rest_residual"), extra.get("rest_tolerance"),
                           backend, dps, system.steps, reason, stats)

    with mpmath.workdps(dps):
        given_mp = [mpmath.mpf(v.numerator) / v.denominator for v in given]
        if system.counts["equations"] < N:
            return failed(f"{system.counts['equations']} equations for {N} unknowns: "
                          "the system is underdetermined, nothing to prove")
        try:
            J0 = system.jacobian(*_split(given_mp, network))
        except (ZeroDivisionError, ValueError) as error:
            return failed(f"the Jacobian cannot be evaluated at the data ({error})")
        rows, pivot = _select_rows(J0, N)
        if len(rows) < N or pivot < mpmath.mpf(10) ** (-dps // 2):
            return failed("the Jacobian is rank deficient at the data: they are not "
                          "locally identifiable from these steps (for example two equal samples, or a "
                          "sample no step's gradient depends on)")
        rest = [r for r in range(system.counts["equations"]) if r not in rows]
        center = _refine(system, list(given_mp), rows, dps) if refine else list(given_mp)
        _, Js, J = _square_part(system, center, rows)
        try:
            C = mpmath.inverse(Js)
        except ZeroDivisionError:
            return failed("the square subsystem's Jacobian is singular at the centre",
                          rows=rows, rest=rest)
        if tolerance is None:
            tol, _ = system.error_estimate(*_split(center, network))
        else:
            tol = mpmath.mpf(str(to_decimal(tolerance, "tolerance")))
        # What rounding of the trace explains in the other equations, to first order:
        # their own rounding plus that of the square part carried through J_rest C.
        rest_tolerance = None
        if rest:
            from .solvers.assess import RESIDUAL_SLACK
            gain = max(mpmath.fsum(abs(mpmath.fsum(J[r, k] * C[k, c] for k in range(N)))
                                   for c in range(N)) for r in rest)
            rest_tolerance = RESIDUAL_SLACK * system.rhs_uncertainty() * (1 + gain)

    prec = libmp.dps_to_prec(dps)
    try:
        with _precision(backend, prec):
            intervals = _IntervalSystem(system, backend)
            outcome = _krawczyk(intervals, rows, rest, center, C, given, prec)
    except NotDifferentiableError as error:
        return failed(f"not differentiable: {error}; interval Newton needs a smooth "
                      "system, so data on or near a relu kink cannot be certified",
                      center=_split_samples(center, network), rows=rows, rest=rest,
                      tol=tol, rest_tolerance=rest_tolerance)
    extra = dict(rows=rows, rest=rest, tol=tol, rest_tolerance=rest_tolerance,
                 center=_split_samples(center, network))
    if not outcome["proved"]:
        return failed("the Krawczyk test failed: no box around the centre could be "
                      f"proved to hold exactly one solution ({outcome['why']})", **extra)
    radius, unique = outcome["radius"], outcome["uniqueness_radius"]
    common = dict(radius=radius, enclosure=outcome["enclosure_radius"],
                  box=outcome["box_radius"], unique=unique,
                  rest_residual=outcome.get("rest_residual"))
    reasons = []
    if rest and outcome["rest_residual"] > rest_tolerance:
        reasons.append(f"the {len(rest)} other equations are off by up to "
                       f"{_upper_text(outcome['rest_residual'])} at the exact solution of "
                       f"the square part, more than the trace's rounding explains "
                       f"({_upper_text(rest_tolerance)})")
    if not radius <= tol:
        reasons.append(f"the exact solution is up to {_upper_text(radius)} away from the "
                       f"given data, more than the tolerance {_upper_text(tol)}")
    elif not outcome["distance"] + radius <= unique:
        reasons.append("the given data lie outside the box where the solution is unique")
    if reasons:
        return Certificate(False, True, radius, common["enclosure"], common["box"], unique,
                           extra["center"], tol, label(rows), label(rest),
                           common["rest_residual"], rest_tolerance, backend, dps,
                           system.steps, "; ".join(reasons),
                           {"time": round(time.perf_counter() - started, 4),
                            "inflations": outcome["inflations"]})
    reason = (f"exactly one exact solution within {_upper_text(unique)} of the centre; "
              f"it is within {_upper_text(radius)} of the given data")
    return Certificate(True, True, radius, common["enclosure"], common["box"], unique,
                       extra["center"], tol, label(rows), label(rest),
                       common["rest_residual"], rest_tolerance, backend, dps, system.steps,
                       reason, {"time": round(time.perf_counter() - started, 4),
                                "inflations": outcome["inflations"]})


def _split_samples(point, network):
    inputs, labels = _split(point, network)
    return list(zip(inputs, labels))


class _precision:
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


def _matrix_vector(b, A, v):
    return [_dot(b, row, v) for row in A]


def _dot(b, row, v):
    total = b.exact(mpmath.mpf(0))
    for a, x in zip(row, v):
        total = total + a * x
    return total


# The widest box of uniqueness is found to within this factor of ten (log10 units).
UNIQUENESS_RESOLUTION = mpmath.mpf("0.05")


def _krawczyk(intervals, rows, rest, center, C, given, prec):
    """The Krawczyk test with epsilon inflation, then the widest box of uniqueness."""
    b = intervals.backend
    N = len(center)
    center_iv = [b.exact(c) for c in center]
    C_iv = [[b.exact(C[i, j]) for j in range(N)] for i in range(N)]
    F_center = intervals.evaluate(rows, center_iv)
    correction = [-v for v in _matrix_vector(b, C_iv, F_center)]
    tiny = mpmath.ldexp(1, -prec + 8)

    def contraction(radii):
        box = [c + b.symmetric(r) for c, r in zip(center_iv, radii)]
        _, JX = intervals.evaluate(rows, box, jacobian=True)
        M = []
        for i in range(N):
            row = []
            for j in range(N):
                value = -_dot(b, C_iv[i], [JX[k][j] for k in range(N)])
                row.append(value + 1 if i == j else value)
            M.append(row)
        return M

    K = correction
    outcome = {"proved": False, "why": "the box did not contract", "inflations": 0}
    for inflation in range(12):
        radii = [2 * b.magnitude(k) + tiny * (1 + abs(c)) for k, c in zip(K, center)]
        deltas = [b.symmetric(r) for r in radii]
        M = contraction(radii)
        K = [k + _dot(b, row, deltas) for k, row in zip(correction, M)]
        outcome["inflations"] = inflation + 1
        if all(b.strictly_inside(k, d) for k, d in zip(K, deltas)):
            break
    else:
        return outcome

    # Proved: exactly one zero in center + deltas, and it lies in center + K.
    box_radius = max(radii)
    enclosure = [c + k for c, k in zip(center_iv, K)]
    outcome.update(proved=True, box_radius=box_radius,
                   enclosure_radius=max(b.magnitude(k) for k in K))
    given_iv = [b.from_fraction(g) for g in given]
    outcome["radius"] = max(b.magnitude(g - z) for g, z in zip(given_iv, enclosure))
    outcome["distance"] = max(b.magnitude(g - c) for g, c in zip(given_iv, center_iv))

    # Uniqueness in wider boxes: if every matrix in J(Y) is regular (here: the norm of
    # I - C J(Y) is below one), F is injective on Y, so the zero found is the only one.
    def regular(radius):
        try:
            M = contraction([radius] * N)
        except (NotDifferentiableError, ZeroDivisionError, ValueError):
            return False
        norm = max(b.upper_sum(b.magnitude(v) for v in row) for row in M)
        return norm < 1

    # Bisect on log10 of the radius: from the proved box (exponent ``low``) to 1.
    low, high = mpmath.log10(box_radius), mpmath.mpf(0)
    unique = box_radius
    if regular(mpmath.mpf(1)):
        unique = mpmath.mpf(1)
    elif regular(box_radius):
        while high - low > UNIQUENESS_RESOLUTION:
            middle = (low + high) / 2
            if regular(mpmath.mpf(10) ** middle):
                low = middle
            else:
                high = middle
        unique = mpmath.mpf(10) ** low
    outcome["uniqueness_radius"] = max(unique, box_radius)

    if rest:
        values = intervals.evaluate(rest, enclosure)
        outcome["rest_residual"] = max(b.magnitude(v) for v in values)
    return outcome


# -- re-simulation ----------------------------------------------------------------------

@dataclass
class Resimulation:
    """Training replayed from recovered data, compared with the trace step by step.

    Attributes
    ==========

    digits : list of int
        For every step ``j = 1..E``: the fewest significant digits, over all
        parameters, in which the replayed ``theta_j`` agrees with the trace (the
        trace's own digits when it rounds to exactly the recorded number).
    differences : list of mpf
        The largest absolute difference per step.
    """

    digits: list
    differences: list
    dps: int

    @property
    def min_digits(self):
        return min(self.digits)

    def to_dict(self):
        return {"digits": self.digits, "min_digits": self.min_digits,
                "differences": [mpmath.nstr(v, 3) for v in self.differences],
                "dps": self.dps}

    def __str__(self):
        return "digits matching per step: " + " ".join(
            f"{j}:{d}" for j, d in enumerate(self.digits, 1))


def _matching_digits(value, recorded):
    """Significant digits of ``recorded`` (a Decimal) that ``value`` reproduces."""
    exponent = recorded.as_tuple().exponent
    significant = len(recorded.as_tuple().digits)
    if _to_decimal_places(value, exponent) == recorded:
        return significant
    difference = abs(value - mpmath.mpf(str(recorded)))
    scale = abs(mpmath.mpf(str(recorded))) or mpmath.mpf(10) ** exponent
    digits = int(mpmath.floor(-mpmath.log10(difference / scale)))
    return max(0, min(significant, digits))


def _to_decimal_places(value, exponent):
    """``value`` rounded to the decimal place ``10**exponent`` (half even)."""
    text = mpmath.nstr(value, mpmath.mp.dps, strip_zeros=False, min_fixed=1, max_fixed=0)
    with localcontext() as context:
        context.prec = mpmath.mp.dps + 10
        return Decimal(text).quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)


def resimulate(trace, samples, dps=None, rounding=True):
    """Train again from ``samples`` and compare with the trace, step by step.

    Parameters
    ==========

    trace : Trace
    samples : list of (x, y) or Solution
    dps : int, optional
        Working precision (default: the trace's digits plus 20).
    rounding : bool
        Continue every step from the parameters rounded to the trace's decimal places,
        as an observer's records (and :func:`~symbolic_inversion.simulate`) do;
        ``False`` trains at full working precision.

    Examples
    ========

    >>> from symbolic_inversion import Network, simulate
    >>> from symbolic_inversion.verify import resimulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6, 0.2], [0.5, 0.4], lr="0.1",
    ...                  epochs=3, init=[0.5, 0.5], dps=30)
    >>> resimulate(trace, [([0.6], [0.5]), ([0.2], [0.4])]).digits
    [30, 30, 30]
    >>> resimulate(trace, [([0.6], [0.5]), ([0.2], [0.401])]).digits
    [3, 3, 3]
    """
    if not isinstance(trace, Trace):
        raise InputError("resimulate: expected a Trace")
    network = trace.network
    points = _data_points(samples, network)
    if len(points) != trace.samples:
        raise InputError(f"samples: the trace has {trace.samples} samples, got {len(points)}")
    if dps is None:
        dps = max(trace.digits, 15) + 20
    compiled = compile_network(network)
    d = network.input_width
    digits, differences = [], []
    with mpmath.workdps(dps):
        data = [[mpmath.mpf(v.numerator) / v.denominator for v in point] for point in points]
        inputs, labels = [p[:d] for p in data], [p[d:] for p in data]
        lr = mpmath.mpf(str(trace.lr))
        mu, wd = mpmath.mpf(str(trace.momentum)), mpmath.mpf(str(trace.weight_decay))
        theta = trace.theta(0)
        velocity = [mpmath.mpf(0)] * network.num_parameters
        for step in range(trace.steps):
            batch = trace.batch(step)
            gradient = compiled.mean_gradient(theta, [inputs[i] for i in batch],
                                              [labels[i] for i in batch])
            velocity = [mu * v + g + wd * t for v, g, t in zip(velocity, gradient, theta)]
            theta = [t - lr * v for t, v in zip(theta, velocity)]
            recorded = trace.parameters[step + 1]
            digits.append(min(_matching_digits(t, r) for t, r in zip(theta, recorded)))
            differences.append(max(abs(t - mpmath.mpf(str(r)))
                                   for t, r in zip(theta, recorded)))
            if rounding:
                theta = [mpmath.mpf(str(_to_decimal_places(t, r.as_tuple().exponent)))
                         for t, r in zip(theta, recorded)]
    return Resimulation(digits, differences, dps)
