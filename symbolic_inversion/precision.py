r"""Every working-precision rule of the toolkit, each with the measurement behind it.

Precision is decided once, at an entry point, from the functions below, and passed down
(:class:`~symbolic_inversion.solvers.options.RecoverOptions`, keyword ``dps``); numeric
code then works inside ``arithmetic.workdps(dps)`` / ``mpmath.workdps(dps)`` and never reads
or leaves changed mpmath's global precision.  The measurements are those of
``shared/notes/numerics.md`` (single neuron, full-batch GD): the Jacobian of the ``2n``
unknowns has condition number about ``10^(2.2 n)``.

Besides the working precisions, the stopping and acceptance thresholds that follow from
a working precision live here too (:func:`newton_tolerance`, :func:`precision_floor`,
:func:`residual_allowance`), so that "converged to the working precision" means one thing.

>>> from symbolic_inversion import Network, simulate
>>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
...                  epochs=4, init=["0.5", "0.5"], dps=50)
>>> default_dps(trace), tracking_dps(trace), refine_dps(trace), certify_dps(trace)
(70, 36, 74, 86)
"""

import math

__all__ = ["unknowns_of", "default_dps", "tracking_dps", "refine_dps", "certify_dps",
           "bound_dps", "vouchable_digits", "report_dps",
           "simulate_dps", "resimulate_dps", "analysis_dps", "symmetry_dps", "rank_dps",
           "screening_dps",
           "newton_tolerance", "precision_floor", "residual_allowance_digits"]


def unknowns_of(trace):
    """Number of unknowns of the inversion system of ``trace``: ``n (d + m)``."""
    return trace.samples * (trace.network.input_width + trace.network.output_width)


def default_dps(trace):
    """Working precision of :func:`~symbolic_inversion.recover` when none is given.

    The trace's digits plus 20 guard digits, at least 30: the closed form (one sample)
    loses no digits to conditioning, and every other solver raises its own stages to
    :func:`tracking_dps` / :func:`refine_dps` as the conditioning requires.
    """
    return max(30, trace.digits + 20)


def tracking_dps(trace):
    """Precision of path tracking: ``1.5`` digits per unknown plus 30.

    Square solves lose ``log10 cond ~ 2.2 n`` digits for the single neuron (``2n``
    unknowns, i.e. 1.1 per unknown); ``3n + 30`` digits keep 30 digits of the corrector's
    Newton steps meaningful up to n = 24 (measured: all paths of the n <= 24 benchmark
    track at this precision; stalls next to t = 1 are refined at :func:`refine_dps`).
    """
    return int(1.5 * unknowns_of(trace)) + 30


def refine_dps(trace, dps=None, lost=None):
    """Precision of the Gauss-Newton refinement on every step.

    The largest of: twice the digits the Jacobian's conditioning loses, plus 40 (the
    normal equations square the condition number); the trace's digits plus the digits
    lost plus 20; and ``dps``.  The second term is the noise floor: rounding in the
    residual (relative ``10^-dps``) is amplified by ``1 / sigma_min^2`` in the normal
    equations and leaves a residual of about ``10^-dps / sigma_min``; it must stay below
    the trace's rounding (measured at n = 24: 160 digits left residual 5e-130 against an
    allowance of 5e-134).

    ``lost``: ``log10(sigma_max / sigma_min)`` where it was measured (a candidate's
    Jacobian in double precision, :class:`~symbolic_inversion.solvers.judge.Judge`);
    without it, the single neuron's law ``10^(2.2 n)`` for ``2n`` unknowns, as the prior
    for every network: ``2.5`` digits per unknown plus 40 and ``1.1`` per unknown plus
    20 (an 8-16-1 network with 16 samples: 400 digits; measured there with 8 steps, its
    Jacobian loses 3 digits, and 87 digits refine the same data five times faster).

    >>> from symbolic_inversion import Network, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=50)
    >>> refine_dps(trace), refine_dps(trace, lost=3.2), refine_dps(trace, 120, lost=3.2)
    (74, 74, 120)
    """
    if lost is None:
        unknowns = unknowns_of(trace)
        return max(int(2.5 * unknowns) + 40, trace.digits + int(1.1 * unknowns) + 20,
                   dps or 0)
    lost = max(0, math.ceil(lost))
    return max(2 * lost + 40, trace.digits + lost + 20, dps or 0)


def certify_dps(trace):
    """Precision of the interval certificate: the trace's digits (at least 16), plus
    ``3n`` for the conditioning (about ``2.2 n`` digits are lost, numerics.md section 2)
    and 30 guard digits for the interval widths."""
    return max(trace.digits, 16) + 3 * trace.samples + 30


def simulate_dps(dps):
    """Precision of simulation recording ``dps`` digits: 15 guard digits above them, so
    every recorded value is the correctly rounded one except in a ``1e-15`` fraction of
    cases (a step's arithmetic loses only a few digits)."""
    return dps + 15


def resimulate_dps(trace):
    """Precision of re-simulation: the trace's digits (at least 15) plus 20 guard digits
    (training is well conditioned: a step loses no more than a few digits)."""
    return max(trace.digits, 15) + 20


def analysis_dps(unknowns):
    """Precision of singular values in :mod:`~symbolic_inversion.analysis`: 3 digits per
    unknown plus 30, at least 60 (``sigma_min ~ 10^(-1.1 unknowns)`` must be resolved
    next to ``sigma_max ~ 1`` with digits to spare; enough up to ~24 samples of the
    single neuron, whose condition number is ``1e54`` there)."""
    return max(60, 3 * unknowns + 30)


def symmetry_dps(trace):
    """Precision of :func:`~symbolic_inversion.identifiability.data_symmetries`: the
    trace's digits plus 10, at least 30 (null directions are read from a rank gap; the
    data are known to the trace's digits)."""
    return max(30, trace.digits + 10)


def rank_dps():
    """Default precision of :func:`~symbolic_inversion.identifiability.generic_rank`: 40
    digits.  Exact zeros of a Jacobian at random data come out near ``10^-40`` and the
    smallest nonzero singular values of the networks measured (up to 4-16-16-2, n <= 8)
    stay above ``10^-15``, so the gap (read at ``10^(-dps/2)``) is wide."""
    return 40


def screening_dps(trace):
    """Digits used to compute a float64 (screening) system's constants: the optimizer is
    undone in multiprecision at the trace's digits (at least 15) plus 15, then rounded
    once to float64, so the constants are the correctly rounded doubles (the differences
    of consecutive parameters cancel up to the trace's digits)."""
    return max(trace.digits, 15) + 15


def newton_tolerance(dps, guard=12):
    """Relative size of a Newton correction that counts as "converged to the working
    precision": ``10^(guard - dps)``.  12 guard digits at the end of a path (room for
    the growth of rounding through a square solve of a path's endpoint; measured on the
    n <= 24 paths: final corrections reach 1e-(dps - 8)); 8 for the refinement at
    :func:`refine_dps` (which already holds the conditioning's digits); 3 for the
    certificate's centre (its dps holds them too).  Beyond the tolerance an iteration ends
    at the precision floor (:func:`precision_floor`)."""
    return 10.0 ** (guard - dps)


def precision_floor(dps):
    """Relative size below which a Newton iteration that stopped contracting is at the
    precision floor (converged as far as the working precision allows) rather than
    stalled: ``10^(-dps / 3)``."""
    return 10.0 ** (-dps / 3)


def residual_allowance_digits(dps):
    """Exponent of the rounding allowance of a residual computed at ``dps`` digits:
    ``10^(5 - dps)`` is added to the trace's own rounding allowance when judging."""
    return 5 - dps


def double_tracking_dps():
    """The ``dps`` a path tracked in hardware complex128 is given (issue 11): it sets only
    the tracker's tolerances, ``newton_tolerance(22) = 1e-10`` at ``t = 1`` and the floor
    ``10^(-22/3) ~ 5e-8``, above double's rounding (1e-16) by the conditioning a path
    may meet.  Measured: 2-3-1 tanh/identity n = 4 and the neuron n = 4 reach the same
    endpoints as at :func:`tracking_dps` in 1/10 to 1/30 of the time; a path that stalls,
    meets a singular Jacobian or fails its final Newton in double is tracked again in
    multiprecision."""
    return 22


def bound_dps():
    """Digits of error bounds and rounding allowances (the right-hand sides'
    uncertainties): 30.  A bound needs a few correct digits, not the working precision's;
    computed once, it serves every precision a candidate is judged at."""
    return 30


def vouchable_digits(dps):
    """The most digits a result computed at ``dps`` digits can vouch for: ``dps - 5``
    (the last digits of the working precision are its own rounding)."""
    return dps - 5


def report_dps(trace=None):
    """Digits of a report that compares a recovery with known data when the recovery did
    not record its own precision: :func:`default_dps` of the trace, or 30 without one."""
    return default_dps(trace) if trace is not None else 30


def finest_last_place(trace):
    """The smallest unit in the last place among the trace's recorded non-zero values (a
    Decimal; its own ulp for a binary-float value), or ``None`` when all are zero."""
    from decimal import Decimal
    if trace.dtype is None:
        digits, _ = trace._written()
        exponents = trace.last_place_exponents()[digits > 0]
        return Decimal(1).scaleb(int(exponents.min())) if exponents.size else None
    import numpy as np
    kind = np.float32 if trace.dtype == "float32" else np.float64
    values = np.abs(np.asarray([float(v) for vector in trace.parameters for v in vector
                                if v], dtype=kind))
    return Decimal(float(np.spacing(values).min())) if values.size else None


def check_learning_rate(trace):
    """Refuse a trace whose learning rate is below the finest last place of its recorded
    values (:func:`finest_last_place`): a step of the learning rate times a gradient of
    order one then changes no recorded digit, and the observed gradients
    ``(theta_j - theta_{j+1}) / lr`` are the rounding divided by a vanishing number
    (``"lr": "4.9e-324"`` on a 60-digit trace gave moments of 1e320 and an
    ``mpmath.NoConvergence`` from the solvers).  Called by ``recover``, ``analyze`` and
    ``certify``.

    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1]), "1e-9", 1, [["0.500", "0.500"], ["0.499", "0.498"]])
    >>> check_learning_rate(trace)
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: optimizer.lr: 1E-9 is below 0.001, the finest last place of the trace's values: a step of the learning rate times a gradient of order one changes no recorded digit, so the steps cannot be resolved at the trace's precision
    """
    from .errors import InputError
    finest = finest_last_place(trace)
    rates = trace.optimizer.schedule or (trace.lr,)
    lr = min(rates)
    if finest is not None and lr < finest:
        shown = f"{finest:.3G}"
        raise InputError(f"optimizer.lr: {trace.lr} is below {shown}, the finest last "
                         f"place of the trace's values: a step of the learning rate times "
                         f"a gradient of order one changes no recorded digit, so the steps "
                         f"cannot be resolved at the trace's precision")
