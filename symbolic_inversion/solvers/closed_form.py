"""The ratio trick evaluated numerically, with error bounds (one sample per step).

The symbolic formulas live in :mod:`symbolic_inversion.closed_form`; here they are
evaluated on the observed gradients at the working precision.  Every first-layer neuron
and every step whose bias gradient is clearly above the trace's rounding gives an
estimate of ``x``; the best-conditioned one is used and all must agree.
"""

import time

import mpmath

from ..errors import NotSupportedError
from ..system import InversionSystem
from .assess import assess
from .solution import Solution, Status

__all__ = ["one_sample_input", "solve_closed_form"]


def one_sample_input(trace, gradients, step):
    """The input of the single sample behind ``step``, from the ratio trick.

    Returns ``(x, error_bound, estimates)`` where ``estimates`` is the list of
    ``(x, bound)`` from every first-layer neuron whose bias gradient exceeds the
    rounding noise, or ``(None, None, [])`` if no bias moved measurably.
    """
    network = trace.network
    noise = trace.gradient_uncertainty()
    weights, bias = network.layer_slices()[0]
    d = network.input_width
    g = gradients[step]
    estimates = []
    for k in range(network.layers[1]):
        g_bias = g[bias.start + k]
        if abs(g_bias) <= 2 * noise:
            continue
        row = g[weights.start + k * d: weights.start + (k + 1) * d]
        x = [gw / g_bias for gw in row]
        bound = max((noise + abs(xi) * noise) / (abs(g_bias) - noise) for xi in x)
        estimates.append((x, bound))
    if not estimates:
        return None, None, []
    best, bound = min(estimates, key=lambda item: item[1])
    return best, bound, estimates


def solve_closed_form(trace, dps, steps=None):
    """Recover the single sample of a full-batch trace in closed form."""
    started = time.perf_counter()
    if trace.samples != 1:
        raise NotSupportedError("closed form: needs a trace with one sample")
    if not trace.network.bias:
        raise NotSupportedError("closed form: needs a first-layer bias")
    system = InversionSystem.from_trace(trace, steps)
    with mpmath.workdps(dps):
        gradients = trace.observed_gradients()[:system.steps]
        found = [(step,) + one_sample_input(trace, gradients, step)
                 for step in range(system.steps)]
        usable = [(step, x, bound, estimates) for step, x, bound, estimates in found
                  if x is not None]
        if not usable:
            return Solution([], Status.UNIDENTIFIABLE, None, 0,
                            {"method": "closed_form", "dps": dps,
                             "time": round(time.perf_counter() - started, 4)},
                            "no first-layer bias moved by more than the trace's rounding "
                            "at any step, so the ratio trick has nothing to divide by")
        step, x, bound, _ = min(usable, key=lambda item: item[2])
        for other_step, _, _, estimates in usable:
            for estimate, other_bound in estimates:
                gap = max(abs(a - b) for a, b in zip(estimate, x))
                if gap > 2 * (bound + other_bound) + mpmath.mpf(10) ** (5 - dps):
                    return Solution(
                        [], Status.INCONSISTENT, None, 0,
                        {"method": "closed_form", "dps": dps},
                        f"the ratio trick disagrees between steps {step} and {other_step} "
                        f"by {mpmath.nstr(gap, 3)}: the trace did not come from one sample")
        labels = system.solve_labels([x])
        return assess(system, [x], labels, "closed_form", started, dps,
                      {"ratio_step": step, "ratio_error_bound": bound})
