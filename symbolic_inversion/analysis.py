r"""Analysis of inversion systems: how well can a trace determine its data?

Sections
========

**Conditioning** (this issue): the singular values of the Jacobian of the inversion
system at a dataset, in arbitrary precision; the condition number; the accuracy a given
trace supports (first order: ``sqrt(rows) * eps / sigma_min`` with ``eps`` the effect of
the trace's rounding on the right-hand sides); and the number of trace digits needed for
``n`` samples, measured by simulating random datasets.

**Identifiability** (rank, counts): added by a later issue, below the conditioning
section.

For the paper's single neuron the condition number grows like ``10^(2.2 n)``: every
extra sample costs about 2.2 digits of the trace (see ``docs/conditioning.md``).

Examples
========

>>> import mpmath
>>> from symbolic_inversion import Network, simulate
>>> from symbolic_inversion.analysis import condition_number
>>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
...                  epochs=2, init=["0.5", "0.5"], dps=40)
>>> cond = condition_number(trace, [[mpmath.mpf("0.6")], [mpmath.mpf("0.2")]],
...                         [[mpmath.mpf("0.5")], [mpmath.mpf("0.4")]])
>>> mpmath.nstr(mpmath.log10(cond), 3)
'2.72'
"""

import math
import random

import mpmath

from .errors import InputError, boundary
from .limits import check, check_int
from .network import Network
from .precision import analysis_dps
from .system import InversionSystem, digits_from_error
from .simulate import simulate
from .trace import Trace

__all__ = ["jacobian_singular_values", "condition_number", "supported_accuracy",
           "digits_needed", "conditioning_table", "analyze"]


# -- conditioning ---------------------------------------------------------------------

def _as_data(values):
    return [[mpmath.mpmathify(v) for v in (sample if isinstance(sample, (list, tuple))
                                            else [sample])] for sample in values]


@boundary("jacobian_singular_values")
def jacobian_singular_values(trace, inputs, labels, dps=None, steps=None):
    """Singular values (largest first) of the system's Jacobian at ``(inputs, labels)``.

    Computed with mpmath's SVD at ``dps`` digits (default
    :func:`~symbolic_inversion.precision.analysis_dps`: enough for the condition numbers of
    up to ~24 samples of the single neuron); mpmath's global precision is not changed.
    """
    if not isinstance(trace, Trace):
        raise InputError("trace: expected a Trace")
    system = InversionSystem.from_trace(trace, steps)
    if dps is None:
        dps = analysis_dps(system.counts["unknowns"])
    with mpmath.workdps(dps):
        J = system.jacobian(_as_data(inputs), _as_data(labels))
        values = mpmath.svd_r(J, compute_uv=False)
        return sorted((abs(v) for v in values), reverse=True)


@boundary("condition_number")
def condition_number(trace, inputs, labels, dps=None, steps=None):
    """``sigma_max / sigma_min`` of the Jacobian (``inf`` if fewer rows than columns)."""
    system = InversionSystem.from_trace(trace, steps)
    if system.counts["equations"] < system.counts["unknowns"]:
        return mpmath.inf
    values = jacobian_singular_values(trace, inputs, labels, dps, steps)
    return values[0] / values[-1] if values[-1] else mpmath.inf


@boundary("supported_accuracy")
def supported_accuracy(trace, inputs, labels, dps=None, steps=None):
    """The accuracy (absolute, max norm) the trace's digits support at this dataset.

    Returns ``(error_bound, digits)``: to first order no dataset farther than
    ``error_bound`` can explain the trace as well, and ``digits`` are the decimals
    that bound vouches for.
    """
    system = InversionSystem.from_trace(trace, steps)
    dps = dps or analysis_dps(system.counts["unknowns"])
    with mpmath.workdps(dps):
        error, _ = system.error_estimate(_as_data(inputs), _as_data(labels), dps)
        return +error, digits_from_error(error)


@boundary("digits_needed")
def digits_needed(samples, accuracy=6, steps=None, trials=3, seed=0, network=None,
                  lr="0.1", init=("0.5", "0.5")):
    """Trace digits needed to recover ``samples`` random samples to ``accuracy`` decimals.

    Measured by the toolkit itself: ``trials`` datasets uniform in ``[0, 1]`` (seeded),
    exact traces of ``steps`` steps (default ``2 n``), the Jacobian's smallest singular
    value at the truth; a trace with ``d`` decimal places moves the right-hand sides by
    ``eps = |batch| / 2 * 10^-d / lr``, hence an error ``sqrt(rows) * eps / sigma_min``.
    Returns a dict with the worst ``log10`` condition number and the digits needed.

    >>> digits_needed(2, accuracy=6, trials=1)
    {'samples': 2, 'steps': 4, 'accuracy': 6, 'log10_condition': 2.7, 'digits': 10}
    """
    network = Network([1, 1], "tanh") if network is None else network
    if not isinstance(network, Network):
        raise InputError(f"network: expected a Network, got {type(network).__name__}")
    samples = check_int(samples, "samples", minimum=1, limit="max_trace_values")
    steps = 2 * samples if steps is None else check_int(steps, "steps", minimum=1)
    # before any sample is drawn (a count of 10^30 filled the memory)
    check("max_trace_values", network.num_parameters * (steps + 1),
          f"values in a trace of {steps} steps of {network.num_parameters} parameters")
    trials = check_int(trials, "trials", minimum=1)
    accuracy = check_int(accuracy, "accuracy", minimum=0)
    rng = random.Random(seed)
    worst_cond, worst_digits = 0.0, 0
    unknowns = samples * (network.input_width + network.output_width)
    dps = analysis_dps(unknowns)
    for _ in range(trials):
        inputs = [[f"{rng.uniform(0, 1):.6f}" for _ in range(network.input_width)]
                  for _ in range(samples)]
        labels = [[f"{rng.uniform(0, 1):.6f}" for _ in range(network.output_width)]
                  for _ in range(samples)]
        trace = simulate(network, inputs, labels, lr=lr, epochs=steps,
                         init=list(init) if init is not None else None,
                         dps=dps, seed=seed)
        values = jacobian_singular_values(trace, inputs, labels, dps)
        with mpmath.workdps(dps):
            rows = steps * network.num_parameters
            scale = math.sqrt(rows) * samples / 2 / float(mpmath.mpf(lr))
            cond = float(mpmath.log10(values[0] / values[-1]))
            needed = accuracy + math.log10(scale) - float(mpmath.log10(values[-1]))
        worst_cond = max(worst_cond, cond)
        worst_digits = max(worst_digits, int(math.ceil(needed)))
    return {"samples": samples, "steps": steps, "accuracy": accuracy,
            "log10_condition": round(worst_cond, 1), "digits": worst_digits}


@boundary("conditioning_table")
def conditioning_table(sizes=(1, 2, 4, 6, 8, 12, 16), accuracy=6, trials=3, seed=0):
    """:func:`digits_needed` for every ``n`` in ``sizes`` (the table of the docs)."""
    if isinstance(sizes, (str, bytes, dict)) or not hasattr(sizes, "__iter__"):
        raise InputError(f"sizes: expected a list of sample counts, got "
                         f"{type(sizes).__name__}")
    sizes = [check_int(n, f"sizes[{k}]", minimum=1) for k, n in enumerate(sizes)]
    return [digits_needed(n, accuracy=accuracy, trials=trials, seed=seed) for n in sizes]


@boundary("analyze")
def analyze(trace, solution=None, dps=None):
    """Conditioning of ``trace`` at its recovered data (recovering it if not given).

    Returns a JSON-ready dict: the recovery status, singular values (decimal strings),
    ``log10`` of the condition number, the error bound and digits the trace supports,
    and the trace's own digits.  ``"ok"`` is false when there is no trustworthy data to
    analyze.
    """
    from .precision import check_learning_rate
    from .solvers import recover
    if not isinstance(trace, Trace):
        raise InputError("trace: expected a Trace")
    check_learning_rate(trace)
    if solution is None:
        solution = recover(trace, dps=dps)
    result = {"ok": solution.ok, "status": solution.status.value,
              "message": solution.message, "samples": trace.samples,
              "steps": trace.steps, "trace_digits": trace.digits}
    if not solution.ok:
        return result
    values = jacobian_singular_values(trace, solution.inputs, solution.labels)
    error, digits = supported_accuracy(trace, solution.inputs, solution.labels)
    with mpmath.workdps(30):
        result.update({
            "singular_values": [mpmath.nstr(v, 6) for v in values],
            "log10_condition": round(float(mpmath.log10(values[0] / values[-1])), 2)
            if values[-1] else None,
            "error_bound": mpmath.nstr(error, 3),
            "digits_supported": digits,
            "digits_lost": max(0, trace.digits - digits),
        })
    return result
