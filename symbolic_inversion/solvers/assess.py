"""Judging a candidate dataset against the whole trace: the last step of every solver.

A candidate is reported as recovered only if it explains *every* step used (residual
within what the trace's rounding allows) and the Jacobian at it has full column rank,
so that the trace's digits bound the error of the data (first order).
"""

import time

import mpmath

from ..system import digits_from_error
from .solution import Solution, Status

__all__ = ["assess", "RESIDUAL_SLACK"]

# Rounding of the trace moves each right-hand side by at most ``rhs_uncertainty``; a
# candidate may be off by that much at the truth, and a least-squares fit of the labels
# or a trace rounded from a longer computation (the paper's tables) adds a little more.
RESIDUAL_SLACK = 4


def assess(system, inputs, labels, method, started, dps, stats=None, detail=""):
    """A :class:`Solution` for ``(inputs, labels)``: status, residual, digits, stats."""
    stats = dict(stats or {})
    residual = max(abs(r) for r in system.residual(inputs, labels))
    tolerance = RESIDUAL_SLACK * system.rhs_uncertainty() + mpmath.mpf(10) ** (5 - dps)
    error, sigma_min = system.error_estimate(inputs, labels)
    stats.update({"method": method, "dps": dps, "steps_used": system.steps,
                  "tolerance": tolerance, "error_bound": error,
                  "sigma_min": sigma_min, "time": round(time.perf_counter() - started, 4)})
    samples = list(zip(inputs, labels))
    if residual > tolerance:
        return Solution(samples, Status.INCONSISTENT, residual, 0, stats,
                        detail or f"residual {mpmath.nstr(residual, 3)} exceeds what the "
                        f"trace's rounding allows ({mpmath.nstr(tolerance, 3)})")
    if not mpmath.isfinite(error):
        return Solution(samples, Status.UNIDENTIFIABLE, residual, 0, stats,
                        detail or "the Jacobian of the system is rank deficient at this "
                        "dataset: other data nearby explain the trace equally well")
    digits = min(digits_from_error(error), dps - 5)
    return Solution(samples, Status.CONVERGED, residual, digits, stats, detail)
