"""Figures of results (matplotlib, the ``plot`` extra; imported only when a function runs).

=============================== =========================================================
function                        draws
=============================== =========================================================
:func:`plot_precision_law`      recovery error against ``n`` or trace digits: measured
                                beside the first-order bound the solver predicted
:func:`plot_singular_values`    singular values of the system's Jacobian at the data
:func:`plot_residuals`          the largest residual of every step, and the tolerance
:func:`plot_paths`              the homotopy paths of every unknown in the complex plane
                                (``recover(..., record_paths=True)``)
:func:`plot_loss_line`          the loss along a line in parameter space, with its kinks
:func:`plot_analysis`           singular values and residuals side by side (the figure
                                of ``analyze --plot``)
:func:`plot_study`              a study's success rate and max error against ``n``, one
                                line per network and digits (``study --plot``)
=============================== =========================================================

Every function draws on ``ax`` when given (else on a new figure) and returns the axes,
so figures compose; :func:`error_record` turns a recovery and the true data into one
point of :func:`plot_precision_law`.
"""

import math

import mpmath

from ..errors import InputError, boundary
from ..study import error_record  # a study's measurement, plotted here

__all__ = ["error_record", "plot_precision_law", "plot_singular_values", "plot_residuals",
           "plot_paths", "plot_loss_line", "plot_analysis", "plot_study"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'symbolic_inversion[plot]'") \
            from None
    return plt


def _axes(ax, size=(5.5, 3.6)):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=size, layout="constrained")
    return ax


def _log10(value):
    """``log10`` of a (possibly mpmath, possibly tiny) number as a float; ``nan`` for 0."""
    value = mpmath.mpf(value)
    return float(mpmath.log10(value)) if value > 0 else math.nan


def _solution(solution, name):
    from ..solvers.solution import Solution
    if not isinstance(solution, Solution):
        raise InputError(f"{name}: expected a Solution, got {type(solution).__name__}")
    return solution


def _trace(trace, name):
    from ..trace import Trace
    if not isinstance(trace, Trace):
        raise InputError(f"{name}: expected a Trace, got {type(trace).__name__}")
    return trace


def _records(records, name, keys):
    """``records`` as a list of dicts that have ``keys`` (study lines, error records)."""
    if isinstance(records, (str, bytes, dict)) or not hasattr(records, "__iter__"):
        raise InputError(f"{name}: expected a list of records, got "
                         f"{type(records).__name__}")
    records = list(records)
    for k, record in enumerate(records):
        if not isinstance(record, dict) or any(key not in record for key in keys):
            raise InputError(f"{name}: records[{k}] is not a record with "
                             f"{', '.join(keys)}")
    return records


# -- the precision law ------------------------------------------------------------------

@boundary("plot_precision_law")
def plot_precision_law(records, against="samples", ax=None):
    """Recovery error against ``n`` (``against="samples"``) or trace digits
    (``against="digits"``): measured beside predicted.

    ``records`` are dicts as :func:`error_record` returns (or a study's output lines):
    ``samples``, ``digits``, ``error`` and ``error_bound``.  Two lines: the measured
    ``log10`` error (circles) and the solver's first-order bound (squares); a recovery
    that failed has no point.

    Examples
    ========

    >>> from symbolic_inversion.plot import plot_precision_law
    >>> records = [{"samples": n, "digits": 30, "error": 10.0 ** (2.2 * n - 32),
    ...             "error_bound": 10.0 ** (2.2 * n - 30)} for n in (2, 3, 4)]
    >>> ax = plot_precision_law(records)
    >>> [len(line.get_xdata()) for line in ax.lines], ax.get_xlabel()
    ([3, 3], 'samples n')
    """
    if not isinstance(against, str) or against not in ("samples", "digits"):
        raise InputError(f"against: expected 'samples' or 'digits', got {against!r}")
    records = _records(records, "plot_precision_law", (against, "error"))
    ax = _axes(ax)
    records = sorted(records, key=lambda r: r[against])
    for key, style, label in (("error", "o-", "measured error"),
                              ("error_bound", "s--", "predicted bound")):
        shown = [r for r in records if r.get(key) is not None and math.isfinite(r[key])]
        ax.plot([r[against] for r in shown], [_log10(r[key]) for r in shown], style,
                label=label)
    ax.set_xlabel("samples n" if against == "samples" else "trace digits")
    ax.set_ylabel("log10 max error")
    ax.legend()
    return ax


@boundary("plot_study")
def plot_study(study, axes=None):
    """A study's summary against ``n``: success rate (left) and log10 of the max error
    (right), one line per network and digits.

    ``study`` is a :class:`~symbolic_inversion.study.StudyResult`, a list of its records,
    or the name of its output file; ``axes`` two axes to draw on (default: a new figure).
    Returns the figure.

    Examples
    ========

    >>> from symbolic_inversion.plot import plot_study
    >>> records = [{"network": {"layers": [1, 1], "activations": ["tanh"]}, "samples": n,
    ...             "digits": 30, "seed": 0, "status": "converged", "digits_vouched": 28,
    ...             "error": 10.0 ** (2.2 * n - 32), "time": 0.1} for n in (1, 2, 3)]
    >>> left, right = plot_study(records).axes  # success: error within 10^-28
    >>> [float(v) for v in left.lines[0].get_ydata()], len(right.lines[0].get_xdata())
    ([1.0, 0.0, 0.0], 3)
    """
    from ..study import StudyResult, read_records, summarize
    if isinstance(study, StudyResult):
        rows = study.summary()
    elif isinstance(study, str):
        rows = summarize(read_records(study))
    else:
        rows = summarize(_records(study, "plot_study", ("network", "samples", "digits",
                                                         "status")))
    if axes is None:
        figure, axes = _pyplot().subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    else:
        figure = axes[0].figure
    left, right = axes
    lines = {}
    for row in rows:
        lines.setdefault((row["network"], row["digits"]), []).append(row)
    for (network, digits), group in lines.items():
        group.sort(key=lambda r: r["samples"])
        label = f"{network}, {digits}" + (" digits" if isinstance(digits, int) else "")
        line, = left.plot([r["samples"] for r in group], [r["success"] for r in group],
                          "o-", label=label)
        shown = [r for r in group if r["max_error"] is not None and r["max_error"] > 0]
        right.plot([r["samples"] for r in shown], [_log10(r["max_error"]) for r in shown],
                   "o-", color=line.get_color(), label=label)
    from matplotlib.ticker import MaxNLocator
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("samples n")
    left.set_ylabel("success rate")
    left.set_ylim(-0.05, 1.05)
    right.set_xlabel("samples n")
    right.set_ylabel("log10 max error")
    right.legend(fontsize=8)
    return figure


# -- conditioning and residuals ---------------------------------------------------------

@boundary("plot_singular_values")
def plot_singular_values(trace, solution, ax=None):
    """The singular values of the inversion system's Jacobian at the recovered data
    (one point each, largest first, log scale).

    Examples
    ========

    >>> from symbolic_inversion import Network, recover, simulate
    >>> from symbolic_inversion.plot import plot_singular_values
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=30)
    >>> ax = plot_singular_values(trace, recover(trace))
    >>> len(ax.lines[0].get_ydata())      # one per unknown
    4
    """
    from ..analysis import jacobian_singular_values
    _solution(solution, "plot_singular_values")
    values = jacobian_singular_values(trace, solution.inputs, solution.labels)
    ax = _axes(ax)
    ax.plot(range(1, len(values) + 1), [_log10(v) for v in values], "o-")
    ax.set_xlabel("index")
    ax.set_ylabel("log10 singular value")
    ax.set_title(f"Jacobian at the data: condition 1e{_log10(values[0] / values[-1]):.1f}"
                 if values[-1] else "Jacobian at the data: rank deficient")
    return ax


@boundary("step_residuals")
def step_residuals(trace, solution):
    """The largest absolute residual of each step's equations at the solution."""
    from ..system import InversionSystem
    _trace(trace, "step_residuals")
    _solution(solution, "step_residuals")
    system = InversionSystem.from_trace(trace, solution.stats.get("steps_used"))
    from ..precision import report_dps
    with mpmath.workdps(solution.stats.get("dps") or report_dps(trace)):
        residual = system.residual(solution.inputs, solution.labels)
        P = trace.network.num_parameters
        return [max(abs(r) for r in residual[k * P:(k + 1) * P]) for k in range(system.steps)]


@boundary("plot_residuals")
def plot_residuals(trace, solution, ax=None):
    """Per-step residuals of a solution (one point per step) and the tolerance the
    trace's rounding allows (a horizontal line).

    Examples
    ========

    >>> from symbolic_inversion import Network, recover, simulate
    >>> from symbolic_inversion.plot import plot_residuals
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=30)
    >>> ax = plot_residuals(trace, recover(trace))
    >>> len(ax.lines), len(ax.lines[0].get_ydata())   # residuals, tolerance; 4 steps
    (2, 4)
    """
    residuals = step_residuals(trace, solution)
    ax = _axes(ax)
    # an exact zero has no logarithm: drawn at the bottom of the plot as a gap
    ax.plot(range(len(residuals)), [_log10(r) for r in residuals], "o-",
            label="largest residual of the step")
    tolerance = solution.stats.get("tolerance")
    if tolerance is not None:
        ax.axhline(_log10(tolerance), color="grey", linestyle=":",
                   label="allowed by the trace's rounding")
    ax.set_xlabel("step j")
    ax.set_ylabel("log10 |residual|")
    ax.legend()
    return ax


@boundary("plot_analysis")
def plot_analysis(trace, solution):
    """Singular values and per-step residuals side by side: a figure with two axes
    (what ``symbolic-inversion analyze --plot`` writes).

    Examples
    ========

    >>> from symbolic_inversion import Network, recover, simulate
    >>> from symbolic_inversion.plot import plot_analysis
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=30)
    >>> len(plot_analysis(trace, recover(trace)).axes)
    2
    """
    _trace(trace, "plot_analysis")
    _solution(solution, "plot_analysis")
    figure, (left, right) = _pyplot().subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    plot_singular_values(trace, solution, left)
    plot_residuals(trace, solution, right)
    return figure


# -- homotopy paths ---------------------------------------------------------------------

def _unknown_names(solution, count):
    if solution.samples:
        d, m = len(solution.samples[0][0]), len(solution.samples[0][1])
        names = []
        for i in range(len(solution.samples)):
            names += [f"$x_{{{i}}}$" if d == 1 else f"$x_{{{i},{c}}}$" for c in range(d)]
            names += [f"$y_{{{i}}}$" if m == 1 else f"$y_{{{i},{o}}}$" for o in range(m)]
        if len(names) == count:
            return names
    return [f"$u_{{{k}}}$" for k in range(count)]


@boundary("plot_paths")
def plot_paths(solution, ax=None, unknowns=None):
    """The homotopy paths of each unknown in the complex plane, one line per unknown and
    path; circles mark the starts, crosses the ends.

    The solution must come from ``recover(..., record_paths=True)`` (a homotopy solver).
    ``unknowns`` selects some (indices in the solver's order: sample by sample, inputs
    then labels); colours follow the unknown, so every path of ``x_0`` has one colour.

    Examples
    ========

    >>> from symbolic_inversion import Network, recover, simulate
    >>> from symbolic_inversion.plot import plot_paths
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=30)
    >>> solution = recover(trace, record_paths=True)
    >>> len(solution.stats["paths"]), len(plot_paths(solution).lines)  # 1 path, 4 unknowns
    (1, 4)
    """
    _solution(solution, "plot_paths")
    paths = [p for p in solution.stats.get("paths", []) if p.get("points")]
    if not paths:
        raise InputError("plot_paths: the solution has no recorded paths; recover with "
                         "record_paths=True (homotopy solvers only)")
    count = len(paths[0]["points"][0][1])
    chosen = list(range(count)) if unknowns is None else list(unknowns)
    names = _unknown_names(solution, count)
    colours = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    ax = _axes(ax, size=(6, 4.5))
    for number, path in enumerate(paths):
        for k in chosen:
            real = [point[1][k][0] for point in path["points"]]
            imaginary = [point[1][k][1] for point in path["points"]]
            colour = colours[k % len(colours)]
            ax.plot(real, imaginary, "-", color=colour, linewidth=1,
                    label=names[k] if number == 0 else None)
            ax.scatter(real[:1], imaginary[:1], marker="o", color=colour, s=18)
            ax.scatter(real[-1:], imaginary[-1:], marker="x", color=colour, s=30)
    ax.grid(alpha=0.3)  # the real axis, where the data must end, stays visible
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    ax.set_title(f"{len(paths)} homotopy path{'s' if len(paths) != 1 else ''} "
                 f"(o start, x end)")
    if len(chosen) <= 12:
        ax.legend(fontsize=8, ncol=2)
    return ax


# -- the loss oracle --------------------------------------------------------------------

@boundary("plot_loss_line")
def plot_loss_line(loss, base, direction, span=(-1, 1), points=200, dps=None, ax=None):
    """The loss along the line ``base + t direction`` for ``t`` in ``span``, with its
    kinks (vertical lines) found by :func:`symbolic_inversion.oracle.kinks.kinks_along_line`.

    ``loss`` is a black box as for :func:`~symbolic_inversion.reconstruct_from_loss`
    (exact rationals in, exact out; or float-valued with ``dps``).  The kinks are in
    ``ax.kinks``.

    Examples
    ========

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.oracle import LossOracle
    >>> from symbolic_inversion.plot import plot_loss_line
    >>> oracle = LossOracle(Network([1, 1, 1], ["relu", "identity"]), [["2"]], [["3"]])
    >>> ax = plot_loss_line(oracle, [0, 1, 1, 0], [1, 0, 0, 0], points=50)
    >>> ax.kinks, len(ax.lines)           # the curve and one kink
    ([Fraction(-1, 2)], 2)
    """
    from fractions import Fraction

    from ..limits import check_int
    from ..oracle.kinks import kinks_along_line
    # every point is one call of the loss, kept for the figure
    points = check_int(points, "points", minimum=2, limit="max_trace_values")
    kinks = kinks_along_line(loss, base, direction, span, dps)
    low, high = (Fraction(str(v)) for v in span)
    ts = [low + (high - low) * Fraction(k, points - 1) for k in range(points)]
    if dps is None:
        base = [Fraction(str(v)) if not isinstance(v, Fraction) else v for v in base]
        direction = [Fraction(str(v)) if not isinstance(v, Fraction) else v
                     for v in direction]
        values = [loss([b + t * d for b, d in zip(base, direction)]) for t in ts]
    else:
        with mpmath.workdps(dps):
            values = [loss([mpmath.mpf(b) + mpmath.mpf(t.numerator) / t.denominator
                            * mpmath.mpf(d) for b, d in zip(base, direction)]) for t in ts]
    ax = _axes(ax)
    ax.plot([float(t) for t in ts], [float(v) for v in values], "-", label="loss")
    for number, kink in enumerate(kinks):
        ax.axvline(float(kink), color="red", linestyle="--", linewidth=0.8,
                   label="kink" if number == 0 else None)
    ax.set_xlabel("t (parameters base + t direction)")
    ax.set_ylabel("loss")
    ax.set_title(f"{len(kinks)} kink{'s' if len(kinks) != 1 else ''} along the line")
    ax.legend()
    ax.kinks = kinks
    return ax
