r"""The certificate: prove that an exact solution of the inversion system lies next to
given data, and say how far.

:func:`certify` proves, in rigorous interval arithmetic
(:mod:`~symbolic_inversion.verify.intervals`), that the inversion system *with the
trace's exact decimal numbers* has exactly one solution inside a small box (the
Krawczyk test, :mod:`~symbolic_inversion.verify.krawczyk`), and bounds how far that
solution is from the data you give it.  With more equations than unknowns the
best-conditioned square subsystem is certified and the other equations are evaluated
over the enclosure of the solution: they must hold to within what the trace's rounding
explains.
"""

import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext

import mpmath
from mpmath import libmp

from ..arithmetic import get_arithmetic
from ..errors import InputError, NotSupportedError, boundary
from ..exact import mpf_fraction as _mpf_fraction
from ..exact import to_decimal
from ..limits import check_int
from ..precision import certify_dps, check_learning_rate
from ..samples import exact_points as _data_points
from ..solvers.judge import RESIDUAL_SLACK
from ..solvers.newton import square_newton
from ..system import InversionSystem
from ..trace import Trace
from .intervals import IntervalSystem, NotDifferentiableError, interval_arithmetic
from .krawczyk import krawczyk, select_rows

__all__ = ["Certificate", "certify", "default_certify_dps"]


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

    def _repr_html_(self):
        from ..report.display import certificate_html
        return certificate_html(self)

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


# -- the certificate --------------------------------------------------------------------

def default_certify_dps(trace):
    """Working precision of :func:`certify`: the trace's digits, plus room for the
    conditioning and guard digits (the rule and its measurement:
    :func:`symbolic_inversion.precision.certify_dps`).

    >>> from symbolic_inversion.paper import example_2_trace
    >>> default_certify_dps(example_2_trace())  # 7 digits (at least 16), 2 samples
    52
    """
    if not isinstance(trace, Trace):
        raise InputError(f"default_certify_dps: expected a Trace, got "
                         f"{type(trace).__name__}")
    return certify_dps(trace)


def _mp_matrix(array, rows=None):
    """An mpmath matrix of (some rows of) a 2-D array of mpf."""
    array = array if rows is None else array[rows]
    return mpmath.matrix(array.tolist())


@boundary("certify")
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
    check_learning_rate(trace)
    interval = interval_arithmetic(backend)  # refuses a bad or missing one first
    if dps is None:
        dps = default_certify_dps(trace)
    dps = check_int(dps, "dps", minimum=15, limit="max_dps")
    if tolerance is not None and to_decimal(tolerance, "tolerance") <= 0:
        raise InputError(f"tolerance: must be positive, got {tolerance}")
    system = InversionSystem.from_trace(trace, steps)
    network = trace.network
    if samples is None:
        from ..solvers import recover
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

    arithmetic = get_arithmetic("mpmath")
    with arithmetic.workdps(dps):
        evaluator = system.evaluator(arithmetic)
        given_mp = [mpmath.mpf(v.numerator) / v.denominator for v in given]
        if system.counts["equations"] < N:
            return failed(f"{system.counts['equations']} equations for {N} unknowns: "
                          "the system is underdetermined, nothing to prove")
        try:
            _, J0 = evaluator.evaluate(arithmetic.asarray(given_mp))
        except (ZeroDivisionError, ValueError) as error:
            return failed(f"the Jacobian cannot be evaluated at the data ({error})")
        rows, pivot = select_rows(J0, N)
        if len(rows) < N or pivot < mpmath.mpf(10) ** (-dps // 2):
            return failed("the Jacobian is rank deficient at the data: they are not "
                          "locally identifiable from these steps (for example two equal samples, or a "
                          "sample no step's gradient depends on)")
        rest = [r for r in range(system.counts["equations"]) if r not in rows]
        center = arithmetic.asarray(given_mp)
        if refine:  # Newton on the square part: where the proof starts, not part of it
            center = square_newton(evaluator.evaluate, center, arithmetic, rows, dps).u
        _, J = evaluator.evaluate(center)
        center = [arithmetic.to_mpmath(v) for v in center]
        try:
            C = mpmath.inverse(_mp_matrix(J, rows))
        except ZeroDivisionError:
            return failed("the square subsystem's Jacobian is singular at the centre",
                          rows=rows, rest=rest)
        if tolerance is None:
            tol, _ = system.error_estimate(*_split(center, network), dps)
        else:
            tol = mpmath.mpf(str(to_decimal(tolerance, "tolerance")))
        # What rounding of the trace explains in the other equations, to first order:
        # their own rounding plus that of the square part carried through J_rest C.
        rest_tolerance = None
        if rest:
            gain = max(mpmath.fsum(abs(mpmath.fsum(J[r, k] * C[k, c] for k in range(N)))
                                   for c in range(N)) for r in rest)
            rest_tolerance = RESIDUAL_SLACK * system.rhs_uncertainty() * (1 + gain)

    prec = libmp.dps_to_prec(dps)
    try:
        with interval.workdps(dps):
            outcome = krawczyk(IntervalSystem(system, interval), rows, rest, center, C,
                               given, prec)
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
    elif not outcome["distance"] + radius <= unique and trace.dtype is None:
        # (a binary-float trace's data are a least-squares fit, not a root of the square
        # part: its rounding puts them up to the tolerance away from the exact solution,
        # which is proved unique around the centre)
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


def _split(point, network):
    d, m = network.input_width, network.output_width
    width = d + m
    inputs = [point[i * width:i * width + d] for i in range(len(point) // width)]
    labels = [point[i * width + d:(i + 1) * width] for i in range(len(point) // width)]
    return inputs, labels


def _split_samples(point, network):
    inputs, labels = _split(point, network)
    return list(zip(inputs, labels))
