r"""Traces trained in binary floating point (``dtype`` ``"float32"`` or ``"float64"``).

A trace recorded from PyTorch (or any float training) holds binary numbers.  Each
written value is read as the *exact* binary value it denotes (the nearest number of the
format: the shortest round-trip decimal names it), so the observer's parameters carry no
rounding at all.  The rounding is in the optimizer's own arithmetic: PyTorch's
``torch.optim.SGD`` computes, in the parameters' format,

.. math:: d = \mathrm{fl}(\hat g + \lambda\theta),\quad
          v' = \mathrm{fl}(\mathrm{fl}(\mu v) + d),\quad
          \theta' = \mathrm{fl}(\theta - \mathrm{fl}(\eta\, v')),

(``d_p.add(param, alpha=wd)``, ``buf.mul_(momentum).add_(d_p)``,
``param.add_(buf, alpha=-lr)``) from a gradient :math:`\hat g` that backpropagation
computed in the same format.  The observer undoes the step exactly
(:meth:`~symbolic_inversion.optimizers.Optimizer.observed_gradients`), so each observed
gradient entry differs from the exact gradient of the network at the recorded
parameters by at most (``u`` the unit roundoff, :math:`2^{-24}` or :math:`2^{-53}`)

.. math:: \underbrace{u\,(2|v'| + |\theta'| / \eta)}_{\text{the update}}
          + \mu\,(\ldots)_{\text{previous step}}
          + \underbrace{3u\,(\mu|v| + |d|) + u\,\lambda|\theta|}_{\text{momentum, decay}}
          + \underbrace{\gamma_K\, G}_{\text{backpropagation}},

where :math:`\gamma_K = K u / (1 - K u)` is the standard forward error bound of a
``K``-term dot product (``K`` counts the samples and the operations of the longest chain
of the layer-wise program) and ``G`` the largest observed gradient entry of the trace
(a stand-in for the sum of the absolute values of the per-sample terms).  Observed
magnitudes stand in for the unknown exact ones, with a factor 2 of safety.  This model
replaces the count of written digits (:attr:`Trace.digits
<symbolic_inversion.trace.Trace.digits>` is the format's round-trip digits, 17 or 9)
everywhere the trace's uncertainty enters: the judge's residual allowance, the digits
vouched for, :func:`~symbolic_inversion.analysis.analyze` and certificates.

Examples
========

>>> from symbolic_inversion.floats import binary_value, shortest, unit_roundoff
>>> binary_value("0.1", "float32")
Decimal('0.100000001490116119384765625')
>>> shortest(binary_value("0.1", "float32"), "float32")
'0.1'
>>> unit_roundoff("float64") == 2.0 ** -53
True
"""

from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np

from .errors import InputError

__all__ = ["DTYPES", "binary_value", "shortest", "unit_roundoff", "round_trip_digits",
           "gradient_bounds", "update_bounds", "gradient_uncertainty", "check_dtype"]

#: numpy type and significand bits of every supported binary format.
DTYPES = {"float32": (np.float32, 24), "float64": (np.float64, 53)}

#: Decimal digits that name every number of the format (round trip).
_ROUND_TRIP = {"float32": 9, "float64": 17}

# Safety factor on the bound (observed magnitudes stand in for the exact ones).
_SAFETY = 2


def check_dtype(dtype, field="dtype"):
    """``None`` or a known format name; anything else is an :class:`InputError`.

    >>> check_dtype("float32")
    'float32'
    >>> check_dtype("float16")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: dtype: expected 'float32' or 'float64', got 'float16'
    """
    if dtype is None or (isinstance(dtype, str) and dtype in DTYPES):
        return dtype
    raise InputError(f"{field}: expected 'float32' or 'float64', got {dtype!r}")


def unit_roundoff(dtype):
    """The unit roundoff ``u = 2^-p`` of the format (a Fraction).

    >>> unit_roundoff("float32")
    Fraction(1, 16777216)
    """
    return Fraction(1, 2 ** DTYPES[check_dtype(dtype)][1])


def round_trip_digits(dtype):
    """Significant decimal digits that identify every number of the format (9 or 17).

    >>> round_trip_digits("float64")
    17
    """
    return _ROUND_TRIP[check_dtype(dtype)]


def binary_value(value, dtype, field="parameters"):
    """The exact value (a Decimal) of the format's number nearest to ``value``.

    ``value`` is a decimal string, Decimal, int or float (a numpy float of the format is
    taken as it is).  Not finite, or out of the format's range: :class:`InputError`
    naming ``field``.

    >>> binary_value("0.1", "float64")
    Decimal('0.1000000000000000055511151231257827021181583404541015625')
    >>> binary_value("1e39", "float32", "parameters[0][0]")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: parameters[0][0]: 1e39 is not a finite float32
    """
    kind = DTYPES[check_dtype(dtype)][0]
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{field}: expected a number, got {value!r}")
    if isinstance(value, (np.floating, float)):
        text = repr(float(value)) if not isinstance(value, kind) else None
        number = value if text is None else kind(text)
    else:
        try:
            text = str(value).strip()
            Decimal(text)
        except Exception:
            raise InputError(f"{field}: expected a number, got {value!r}") from None
        with np.errstate(over="ignore"):
            # float64 parsing is correctly rounded; float32 goes through the nearest
            # double, exact for every shortest round-trip float32 decimal
            number = kind(float(text))
    if not np.isfinite(number):
        raise InputError(f"{field}: {value} is not a finite {dtype}")
    return Decimal(float(number))


def shortest(value, dtype):
    """The shortest decimal string that round-trips to the format's number ``value``.

    >>> shortest(Decimal(0.1), "float64")
    '0.1'
    """
    kind = DTYPES[check_dtype(dtype)][0]
    number = kind(float(value))
    if dtype == "float64":
        return repr(float(number))
    return np.format_float_positional(number, unique=True, trim="-") \
        if 1e-5 <= abs(number) < 1e16 or number == 0 else \
        np.format_float_scientific(number, unique=True, trim="-")


def _chain_length(trace):
    """``K``: the longest chain of roundings behind one gradient entry (a sum over the
    samples of a step plus a forward and a backward pass through every layer)."""
    network = trace.network
    return trace.samples + 4 * sum(network.layers) + 10


def gradient_bounds(trace):
    """Per step and parameter, a bound on the distance between the observed gradient and
    the exact gradient of the network at the recorded parameters (lists of mpmath numbers
    at the current precision), for a trace with a ``dtype`` (module docstring).

    >>> import mpmath
    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1], "identity"), "0.5", 1, [[1.0, 1.0], [0.5, 0.75]],
    ...               dtype="float64")
    >>> with mpmath.workdps(20):
    ...     bounds = gradient_bounds(trace)
    >>> [mpmath.nstr(b / mpmath.mpf(2) ** -53, 4) for b in bounds[0]]
    ['46.0', '44.0']

    (In units of ``u``: the update ``2|v| + |theta'|/lr`` = 3 and 2.5, backpropagation
    ``K |g|max`` = 19 with ``K = 1 + 4 * 2 + 10``, the coefficients ``|g|`` = 1 and 0.5;
    twice their sums.)
    """
    if not trace.optimizer.invertible:
        return [_first_adam_step_bounds(trace)]
    u = mpmath.mpf(2) ** -DTYPES[trace.dtype][1]
    K = _chain_length(trace)
    gamma = K * u / (1 - K * u)
    lr, mu, wd = trace.optimizer.coefficients(mpmath.mpf)
    thetas = [trace.theta(j) for j in range(trace.steps + 1)]
    gradients = trace.optimizer.observed_gradients(thetas, mpmath.mpf)
    largest = max((abs(g) for gradient in gradients for g in gradient), default=0)
    bounds, previous_update, velocity = [], None, None
    for j, gradient in enumerate(gradients):
        new_velocity = [(a - b) / lr for a, b in zip(thetas[j], thetas[j + 1])]
        update = [u * (2 * abs(v) + abs(t) / lr) for v, t in zip(new_velocity,
                                                                   thetas[j + 1])]
        step = []
        for p, g in enumerate(gradient):
            bound = update[p] + gamma * largest + u * abs(g)  # u|g|: lr, mu, wd in the format
            if wd:
                bound += 2 * u * wd * abs(thetas[j][p])
            if mu and velocity is not None:
                bound += mu * previous_update[p] + 3 * u * (mu * abs(velocity[p])
                                                            + abs(g) + wd * abs(thetas[j][p]))
            step.append(_SAFETY * bound)
        bounds.append(step)
        previous_update, velocity = update, new_velocity
    return bounds


def _backpropagation(trace, gradients):
    """``gamma_K G``: the bound on backpropagation's rounding of a gradient entry."""
    u = mpmath.mpf(2) ** -DTYPES[trace.dtype][1]
    K = _chain_length(trace)
    gamma = K * u / (1 - K * u)
    largest = max((abs(g) for gradient in gradients for g in gradient), default=0)
    return u, gamma * largest


def _first_adam_step_bounds(trace):
    """Adam's first observed gradient ``d = eps k / (1 - |k|)`` in a binary format: the
    rounding of the update (``k`` within ``2u (|theta_0| + |theta_1|) / lr``) amplified
    by ``(|d| + eps)^2 / eps``, plus backpropagation's own (per entry)."""
    optimizer = trace.optimizer
    gradient = trace.observed_gradients()[0]
    u, backpropagation = _backpropagation(trace, [gradient])
    eps = mpmath.mpf(str(optimizer.eps))
    lr = mpmath.mpf(str(optimizer.lr_at(0)))
    wd = mpmath.mpf(str(optimizer.weight_decay))
    before, after = trace.theta(0), trace.theta(1)
    bounds = []
    for g, a, b in zip(gradient, before, after):
        k_error = 2 * u * (abs(a) + abs(b)) / lr
        size = abs(g) + wd * abs(a) + eps
        bounds.append(_SAFETY * (size * size / eps * k_error + backpropagation
                                 + u * abs(g) + u * wd * abs(a)))
    return bounds


def update_bounds(trace):
    """Per step and parameter, a bound on the distance between the observed normalised
    update ``(theta_j - theta_{j+1}) / lr_j`` and the update exact arithmetic makes from
    the exact gradients at the recorded parameters, for a binary-float trace of an
    optimizer whose steps are not inverted (Adam, AdamW; lists of mpmath numbers).

    Three sources, to first order, times the safety factor: the update's own rounding
    (``theta_{j+1}`` rounded, ``u (2 |theta_{j+1}| + |theta_j|) / lr``), Adam's arithmetic
    on its state (relative ``(6 + 2 j) u`` of the update), and backpropagation's rounding
    ``gamma_K G`` of every gradient carried through the update: the normalised update
    is ``m_hat / (sqrt(v_hat) + eps)``, whose derivatives with respect to the gradients
    of steps ``0..j`` sum to at most ``(1 + |q| sqrt((1 - b2) / c2) min(j + 1, 1 / (1 -
    sqrt b2))) / sqrt(v_hat)``, and ``sqrt(v_hat) >= sqrt((1 - b2) b2^j / c2) |d_0|``
    with the first step's observed direction ``d_0`` (an infinite bound where it is 0:
    such a coordinate's updates say nothing about the data).
    """
    optimizer = trace.optimizer
    first = trace.observed_gradients()[0]
    u, backpropagation = _backpropagation(trace, [first])
    b1, b2 = (mpmath.mpf(str(b)) for b in optimizer.betas)
    wd = mpmath.mpf(str(optimizer.weight_decay))
    thetas = [trace.theta(j) for j in range(trace.steps + 1)]
    directions = [abs(g + (wd * t if not optimizer.decoupled else 0))
                  for g, t in zip(first, thetas[0])]
    reach = min(mpmath.mpf(1) / (1 - mpmath.sqrt(b2)), trace.steps)
    bounds = []
    for j in range(trace.steps):
        lr = mpmath.mpf(str(optimizer.lr_at(j)))
        c2 = 1 - b2 ** (j + 1)
        spread = mpmath.sqrt((1 - b2) / c2) * min(j + 1, reach)
        floor = mpmath.sqrt((1 - b2) * b2 ** j / c2)
        step = []
        for p, (now, later) in enumerate(zip(thetas[j], thetas[j + 1])):
            q = abs(now - later) / lr
            own = u * (2 * abs(later) + abs(now)) / lr + (6 + 2 * j) * u * q
            if optimizer.decoupled:
                own += u * abs(now) / lr
            if directions[p]:
                carried = backpropagation * (1 + q * spread) / (floor * directions[p])
            else:
                carried = mpmath.inf
            step.append(_SAFETY * (own + carried))
        bounds.append(step)
    return bounds


def gradient_uncertainty(trace):
    """The largest entry of :func:`gradient_bounds` (one mpmath number): the bound the
    judge and the error estimates use for every observed gradient entry.

    >>> import mpmath
    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1], "identity"), "0.5", 1, [[1.0, 1.0], [0.5, 0.75]],
    ...               dtype="float32")
    >>> with mpmath.workdps(20):
    ...     print(mpmath.nstr(gradient_uncertainty(trace) * 2 ** 24, 4))
    46.0
    """
    return max(b for step in gradient_bounds(trace) for b in step)


# -- the verdict on a binary-float trace ---------------------------------------------------

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
    import random
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
    import math
    own = DTYPES[trace.dtype][1] * math.log10(2)
    return int(math.ceil(own + float(mpmath.log10(error)) + TARGET_DECIMALS))


def judge_binary(trace, solution):
    """The honest verdict on a recovery from a binary-float ``trace``.

    The binary format may be too coarse for the data: the trace's rounding then moves the
    data by more than :data:`TARGET_DECIMALS` decimals (first-order error bound
    ``sqrt(rows) * eps / sigma_min`` at the best fit, or, when the best fit is degenerate,
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
    from .precision import analysis_dps
    from dataclasses import replace

    from .solvers.solution import Status
    from .system import InversionSystem, digits_from_error
    status = solution.status
    if status not in (Status.CONVERGED, Status.INCONSISTENT, Status.NOT_CONVERGED,
                      Status.UNIDENTIFIABLE, Status.NOT_UNIQUE):
        return solution
    if status is Status.CONVERGED and solution.digits >= TARGET_DECIMALS:
        return solution
    system = InversionSystem.from_trace(trace, solution.stats.get("steps_used"))
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
    label = "best fit, not the data" if solution.samples else "no best fit found"
    detail = f"{advice}; the values shown are the {label} (solver: {status.value}"
    detail += f": {solution.detail})" if solution.detail else ")"
    # a fit that explains the trace to its rounding is known to the bound's digits
    digits = digits_from_error(error) if status is Status.CONVERGED else 0
    return replace(solution, status=Status.PRECISION_LIMITED, digits=digits, stats=stats,
                   detail=detail)
