"""The ratio trick evaluated numerically, with error bounds (one sample per step).

The formula is the one :func:`symbolic_inversion.closed_form.one_sample_closed_form`
derives from the network's backpropagated gradient (``x_i`` = first-layer weight
gradient over bias gradient of one neuron), compiled once per network by
:func:`~symbolic_inversion.closed_form.closed_form_functions` and evaluated on
the observed gradients (which undo momentum and weight decay) at the working precision.
Every first-layer neuron and every step whose bias gradient is clearly above the trace's
rounding gives an estimate of ``x``; the best-conditioned one is used and all must agree.
The labels then follow by linear least squares over every step.
"""

import time

import mpmath

from ..closed_form import closed_form_functions
from ..errors import NotSupportedError
from ..network import Network
from ..system import InversionSystem
from .judge import assess
from .options import solver
from .solution import Solution, Status

__all__ = ["one_sample_input", "solve_closed_form", "first_layer_functions",
           "unknown_sample_gradients"]


def first_layer_functions(network):
    """The ratio trick of :func:`~symbolic_inversion.closed_form.closed_form_functions`
    for the first layer of ``network``, alone.

    The ratio involves only first-layer gradients, and backpropagation puts
    ``delta_k x_i`` and ``delta_k`` there whatever layers follow; so the derivation runs
    on one neuron with the network's first activation and a bias, where it is cheap (the
    full 3-4-2 derivation costs 0.3 s, mostly SymPy's ``cancel``), and its ``inputs``
    serve every neuron.  They are applied to observed gradients as ``(g, 0)``: the
    parameter differences of plain GD over the learning rate (observed gradients also
    undo momentum and weight decay).
    """
    first = Network([network.input_width, 1], [network.activations[0]], bias=network.bias)
    return closed_form_functions(first)


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
    inputs = first_layer_functions(network).inputs
    zeros = [mpmath.mpf(0)] * (d + 1)
    for k in range(network.layers[1]):
        g_bias = g[bias.start + k]
        if abs(g_bias) <= 2 * noise:
            continue
        row = g[weights.start + k * d: weights.start + (k + 1) * d]
        x = list(inputs(list(row) + [g_bias], zeros))
        bound = max((noise + abs(xi) * noise) / (abs(g_bias) - noise) for xi in x)
        estimates.append((x, bound))
    if not estimates:
        return None, None, []
    best, bound = min(estimates, key=lambda item: item[1])
    return best, bound, estimates


def unknown_sample_gradients(system):
    """The observed gradient of every step of ``system``, less the known samples' terms
    when its trace has :attr:`~symbolic_inversion.trace.Trace.known` samples (mpmath
    numbers at the working precision).

    The ratio trick divides one sample's weight gradient by its bias gradient; with known
    samples in the batch, the observed gradient is the batch's, and only what is left
    after their exact terms are subtracted is the unknown sample's.  What is left keeps
    the observed gradient's scale (``rhs / (|B_j| / 2)``), so the trace's rounding
    (:meth:`~symbolic_inversion.trace.Trace.gradient_uncertainty`) still bounds it.
    """
    trace = system.trace
    if trace.offset is None:
        return trace.observed_gradients()[:system.steps]
    rhs = system.evaluator("mpmath").rhs
    width = system.network.num_parameters
    out = []
    for j in range(system.steps):
        factor = system.rhs_factor(j)
        factor = mpmath.mpf(factor.numerator) / factor.denominator
        out.append([value / factor for value in rhs[j * width:(j + 1) * width]])
    return out


@solver
def solve_closed_form(trace, options):
    """Recover the single sample of a full-batch trace in closed form."""
    dps, steps = options.dps, options.steps
    started = time.perf_counter()
    if trace.samples != 1:
        raise NotSupportedError("closed form: needs a trace with one sample")
    if not trace.network.bias:
        raise NotSupportedError("closed form: needs a first-layer bias")
    system = InversionSystem.from_trace(trace, steps)
    with mpmath.workdps(dps):
        gradients = unknown_sample_gradients(system)
        found = [(step,) + one_sample_input(trace, gradients, step)
                 for step in range(len(gradients))]   # Adam: its first step only
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
        linear = system if system.form == "gradient" else \
            InversionSystem.from_trace(trace, trace.optimizer.invertible_steps(trace.steps))
        labels = linear.solve_labels([x])
        inputs = [x]
        if system.form == "update":
            # Adam: the first step's closed form loses log10(|g| / eps) digits; Gauss-Newton
            # on every step's update equation (quadratic convergence) restores them
            from .newton import gauss_newton
            inputs, labels, _ = gauss_newton(trace, inputs, labels, dps,
                                             steps=system.steps, system=system)
        return assess(system, inputs, labels, "closed_form", started, dps,
                      {"ratio_step": step, "ratio_error_bound": bound})
