"""The verdict on a recovery from a binary-float trace (float32/float64 training): is the
format fine enough for the data, and how many digits would be?

The rounding model of the formats themselves (unit roundoffs, the optimizer's and
backpropagation's rounding bounds) is :mod:`symbolic_inversion.floats`; this module asks
the inversion system what that rounding does to the data.
"""

import math
import random
from dataclasses import replace

import mpmath

from ..floats import DTYPES
from ..precision import analysis_dps
from ..system import InversionSystem, digits_from_error
from .judge import judged_in_float64
from .solution import Status

__all__ = ["judge_binary", "digits_needed", "TARGET_DECIMALS"]

#: Decimals of the data that a recovery should vouch for before the format counts as
#: fine enough (the target of the "digits needed" advice).
TARGET_DECIMALS = 3


def _error_at(system, inputs, labels, dps):
    """The first-order error bound at ``(inputs, labels)`` (mpmath inf if singular)."""
    with mpmath.workdps(dps):
        try:
            return system.error_estimate(inputs, labels, dps)[0]
        except (ZeroDivisionError, ValueError):
            return mpmath.inf


def _typical_error(system, trace, dps, trials=3, seed=0):
    """The error bound at random datasets of the trace's size (uniform in [0, 1],
    seeded): how well this trace's steps can determine *any* data of this size."""
    rng = random.Random(seed)
    d, m = trace.network.input_width, trace.network.output_width
    errors = []
    for _ in range(trials):
        with mpmath.workdps(dps):
            inputs = [[mpmath.mpf(rng.uniform(0, 1)) for _ in range(d)]
                      for _ in range(system.samples)]
            labels = [[mpmath.mpf(rng.uniform(0, 1)) for _ in range(m)]
                      for _ in range(system.samples)]
        errors.append(_error_at(system, inputs, labels, dps))
    return min(errors)


def digits_needed(trace, error):
    """Significant digits per parameter the trace would need (instead of its format's
    ``log10(1/u)``) for the data to be known to :data:`TARGET_DECIMALS` decimals, when
    its format gives the error bound ``error`` (the bound scales with the unit roundoff).

    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1]), "0.1", 1, [[1, 1], [0.5, 0.5]], dtype="float32")
    >>> digits_needed(trace, 100)
    13
    """
    own = DTYPES[trace.dtype][1] * math.log10(2)
    return int(math.ceil(own + float(mpmath.log10(error)) + TARGET_DECIMALS))


def judge_binary(trace, solution):
    """The honest verdict on a recovery from a binary-float ``trace``.

    The binary format may be too coarse for the data: the trace's rounding then moves the
    data by more than :data:`TARGET_DECIMALS` decimals (first-order error bound
    :meth:`InversionSystem.error_estimate
    <symbolic_inversion.system.InversionSystem.error_estimate>` at the best fit, with
    the rounding bounds of backpropagation at that dataset, or, when the best fit is degenerate,
    at random datasets of the same size on the same steps).  Such a recovery is
    ``precision_limited`` (never ``converged`` with 0 digits, never ``inconsistent``):
    its detail says how many significant digits the parameters would need, and the
    values are labelled as a best fit.  ``inconsistent`` stays only with positive
    evidence: a well-conditioned best fit whose residual is far above the allowance.  A
    degenerate best fit (``unidentifiable`` or ``not_unique``, e.g. two equal samples that
    explain the trace within its rounding) is judged by the random data of the same size:
    where the system is singular even there (a structural symmetry, not the format) the
    solver's verdict stands.  Other statuses pass through.
    """
    status = solution.status
    if status not in (Status.CONVERGED, Status.INCONSISTENT, Status.NOT_CONVERGED,
                      Status.UNIDENTIFIABLE, Status.NOT_UNIQUE):
        return solution
    if status is Status.CONVERGED and solution.digits >= TARGET_DECIMALS:
        return solution
    system = InversionSystem.from_trace(trace, solution.stats.get("steps_used"))
    if judged_in_float64(system):
        # judged in float64 (its error bound is in the stats): the analysis below, in
        # multiprecision at analysis_dps, would not finish on a system this large
        return solution
    dps = analysis_dps(system.counts["unknowns"])
    error = mpmath.inf
    if solution.samples and len(solution.samples) == system.samples:
        error = _error_at(system, solution.inputs, solution.labels, dps)
    where = "at the best fit"
    if not mpmath.isfinite(error) or error > 1:
        typical = _typical_error(system, trace, dps)
        if mpmath.isfinite(typical) and (not mpmath.isfinite(error) or typical < error):
            error, where = typical, "at random data of this size"
    if not mpmath.isfinite(error) or error <= mpmath.mpf(10) ** -TARGET_DECIMALS:
        # singular even at random data (a structural symmetry, not the format), or well
        # conditioned: the solver's verdict stands
        return solution
    stats = dict(solution.stats, error_bound=error, format=trace.dtype)
    needed = digits_needed(trace, error)
    stats["digits_needed"] = needed
    advice = (f"{trace.dtype} rounding moves the data by up to "
              f"{mpmath.nstr(error, 2)} ({where}, first order); about {needed} "
              f"significant digits per parameter would be needed to know the data to "
              f"{TARGET_DECIMALS} decimals")
    label = "the values shown are the best fit, not the data" if solution.samples else \
        "no best fit was found"
    detail = f"{advice}; {label} (solver: {status.value}"
    detail += f": {solution.detail})" if solution.detail else ")"
    # a fit that explains the trace to its rounding is known to the bound's digits
    digits = digits_from_error(error) if status is Status.CONVERGED else 0
    return replace(solution, status=Status.PRECISION_LIMITED, digits=digits, stats=stats,
                   detail=detail)
