"""Step 5 of the workflow: solvers for the inversion system, picked by name.

``recover(trace)`` chooses a method from the problem (``method="auto"``); every method
returns a :class:`Solution` whose status says whether the data can be trusted.

=============== ==========================================================
name            when
=============== ==========================================================
``closed_form`` one sample, first-layer bias: the ratio trick (exact)
``cold_start``  several samples, full-batch gd: homotopy paths from no initial guess,
                Gauss-Newton refinement on every step, judged against the whole trace
``moments``     the moment (tail) homotopy alone (one input, one output)
``homotopy``    the parameter homotopy on the right-hand side alone (any network)
``sgd``         minibatch (sgd) traces: picks one of
                ``per_sample`` (batch size 1), ``known_schedule`` (batches recorded
                or full batch), ``schedule_search`` (unknown schedule, batch > 1)
=============== ==========================================================
"""

import contextlib
import time

import mpmath
import numpy as np

from ..errors import InputError, NotSupportedError, boundary
from ..limits import BudgetExceeded, budget_seconds, deadline
from ..precision import check_learning_rate, default_dps
from ..report.progress import Progress
from ..trace import Trace
from .executors import one_blas_thread
from .judge import elapsed
from .options import RecoverOptions, make_options
from .ratio import solve_closed_form
from .sgd import solve_joint, solve_per_sample, solve_schedule_search, solve_sgd
from .solution import RecoveryError, Solution, Status
from .symmetries import (annotate, client_grouping, family_symmetries,
                         solve_moments_only)
from .pipeline import solve_cold_start, solve_homotopy, solve_moments
from .relu import solve_relu, supports_relu

__all__ = ["recover", "SOLVERS", "default_dps", "Solution", "Status", "RecoveryError",
           "RecoverOptions"]

SOLVERS = {"closed_form": solve_closed_form}
SOLVERS.update({"cold_start": solve_cold_start, "moments": solve_moments,
                "homotopy": solve_homotopy})
SOLVERS.update({"sgd": solve_sgd, "per_sample": solve_per_sample,
                "known_schedule": solve_joint, "schedule_search": solve_schedule_search})
SOLVERS.update({"relu": solve_relu})


def _choose(trace):
    optimizer = trace.optimizer
    # the ratio trick divides one step's gradients: a federated round's K local steps
    # are not one gradient (its closed form saw no step at all and said unidentifiable)
    if trace.samples == 1 and trace.network.bias and not optimizer.minibatch and \
            not trace.rounds:
        return "closed_form"
    # full-batch training with momentum, decay or a schedule is undone step by step into
    # the gradient form: the cold start solves it (measured: 2-4-3 cross-entropy with
    # Nesterov, n = 5, 0.5 s against 23-33 s for the sgd solvers' multistart; the neuron
    # with momentum, n = 6, 0.6 s against 18 s)
    if optimizer.invertible and optimizer.minibatch:
        return "sgd"
    if optimizer.minibatch and trace.batches is None:
        where = ("local steps of federated rounds" if trace.rounds else
                 f"optimizer {optimizer.name}")
        raise NotSupportedError(f"optimizer {optimizer.name} with minibatches: the "
                                f"schedule must be recorded (batches); the schedule "
                                f"search covers plain sgd steps recorded one by one, not "
                                f"{where}")
    if trace.samples > 1 and not supports_relu(trace.network):
        return "relu"
    return "cold_start"


@boundary("recover")
def recover(trace, method="auto", dps=None, steps=None, backend=None, seed=0, attempts=None,
            verify=False, known=None, executor=None, progress=None, record_paths=False,
            max_seconds=None):
    """Recover the training data behind ``trace``.

    Parameters
    ==========

    trace : Trace
    method : str
        A name from ``SOLVERS`` or ``"auto"``.
    dps : int, optional
        Working precision in decimal digits (default
        :func:`~symbolic_inversion.precision.default_dps`).  mpmath's global precision is
        never changed.
    steps : int, optional
        Use only the first ``steps`` steps of the trace (default: all).
    backend : ``"mpmath"``, ``"arb"`` (alias ``"flint"``) or ``None``/``"auto"``
        Arithmetic of the solvers (arb if python-flint is installed).
    seed : int
        Seeds every random choice (paths, starts): results are reproducible.
    attempts : int, optional
        Paths (cold start) or starts (SGD solvers) to try; default: the solver's own.
    verify : bool
        Raise :class:`RecoveryError` unless the status is ``converged``.
    known : list of (x, y), optional
        Samples the observer knows (its own): their contribution leaves the right-hand
        sides and only the other samples are solved for (default: the trace's
        ``known`` field).  See :mod:`symbolic_inversion.protocol`.
    executor : concurrent.futures.Executor, optional
        Independent homotopy paths of a round run on it (a ``ProcessPoolExecutor``, or a
        Dask ``distributed`` client's ``get_executor()``; not threads: mpmath's
        precision is global to a process); the result is the serial one for the same
        ``seed``.  Default: serial, in this process.
    progress : None, bool or callable
        ``True`` draws a progress bar on stderr (tqdm if installed); a callable receives
        one event (a dict) per phase and per path; see
        :mod:`symbolic_inversion.report.progress`.  Nothing is ever printed on stdout.
    record_paths : bool
        Keep the points of every homotopy path in ``solution.stats["paths"]`` (for
        :func:`symbolic_inversion.plot.plot_paths`).
    max_seconds : float, optional
        A time budget for the recovery: once spent, the solvers stop at their next safe
        point (a tracker step, a Newton iteration, a judged candidate, an iteration of a
        search) and the status is ``not_converged``, saying so; nothing is vouched for.
        Default (``None`` or ``0``): no budget.  Unlike the command line's
        ``--max-seconds`` (an error ending the command), the answer is a status.

    Examples
    ========

    One sample through the paper's neuron, from an exact 60-digit trace:

    >>> from symbolic_inversion import Network, simulate, recover
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6], [0.5], lr="0.1", epochs=3,
    ...                  init=[0.5, 0.5], dps=60)
    >>> solution = recover(trace)
    >>> solution.status.value, solution.digits >= 50
    ('converged', True)
    >>> [mpmath.nstr(v[0], 30) for v in solution.samples[0]]
    ['0.6', '0.5']

    Progress as events, one per phase and per path:

    >>> events = []
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=50)
    >>> solution = recover(trace, progress=events.append)
    >>> [e["phase"] for e in events]
    ['start', 'count', 'search', 'path', 'refine', 'judge', 'done']
    >>> events[-1]["status"]
    'converged'
    """
    if not isinstance(trace, Trace):
        raise InputError("recover: expected a Trace")
    check_learning_rate(trace)
    if not isinstance(method, str):
        raise InputError(f"method: expected 'auto' or a solver's name, got "
                         f"{type(method).__name__}")
    if not isinstance(verify, (bool, np.bool_)):
        raise InputError(f"verify: expected True or False, got {type(verify).__name__}")
    if known is not None:
        trace = trace.with_known(known)
    target = trace.unknown_part()  # the trace itself unless samples are known
    options = make_options(target, method, dps, steps, backend, seed, attempts, executor)
    name = _choose(target) if method == "auto" else method
    if not isinstance(name, str) or name not in SOLVERS:
        raise InputError(f"method: unknown solver {name!r}; known: {', '.join(SOLVERS)}")
    seconds = budget_seconds(max_seconds, "max_seconds") if max_seconds is not None else 0
    reporter = Progress.create(progress, "recover")
    options = options.with_(progress=reporter, record_paths=bool(record_paths))
    started = time.perf_counter()
    try:
        with one_blas_thread(), (deadline(seconds, _budget_spent(seconds)) if seconds
                                 else contextlib.nullcontext()):
            solution = _recover(trace, target, name, options, reporter)
    except _BudgetSpent as spent:
        solution = Solution([], Status.NOT_CONVERGED, None, 0,
                            {"method": name, "max_seconds": seconds,
                             "time": elapsed(started)}, str(spent))
    finally:
        if reporter is not progress:
            reporter.close()
    if verify:
        solution.raise_for_status()
    return solution


class _BudgetSpent(BudgetExceeded):
    """``recover``'s own time budget, told apart from an enclosing one (a command's
    ``--max-seconds``, a study's cell timeout), which still ends the whole run."""


def _budget_spent(seconds):
    return lambda: _BudgetSpent(
        f"the time budget of {seconds:g} s (max_seconds) was spent before a verdict: the "
        f"search was stopped and nothing is vouched for; a larger budget, more recorded "
        f"steps or fewer unknowns may decide it")


def _recover(trace, target, name, options, reporter):
    """The chosen solver, then the honest report (symmetries, binary floats, known
    samples)."""
    reporter.event("start", method=name, samples=target.samples, steps=target.steps)
    moments_only = [s for s in family_symmetries(target) if s["kind"] == "moments"]
    if moments_only and name in ("cold_start", "moments", "homotopy"):
        solution = solve_moments_only(target, options, moments_only)
    else:
        solution = SOLVERS[name](target, options)
    solution = annotate(target, solution, options)
    if "dp_sgd" in target.extra:  # DP-SGD with a stated noise level: never converged
        from ..dpsgd import dp_estimate
        solution = dp_estimate(target, solution)
    elif target.dtype is not None:
        from .float_verdict import judge_binary
        solution = judge_binary(target, solution)
    if target is not trace:
        from ..protocol import known_report
        solution = known_report(trace, solution)
    if target.loss.classifies and solution.samples and solution.digits >= 1:
        # a one-hot label to the digits vouched for is a class, exactly
        tolerance = mpmath.mpf(10) ** -min(solution.digits, 10 ** 4)
        solution.classes = [target.loss.label_class(y, tolerance) for _, y in
                            solution.samples]
    if solution.samples and len(solution.samples) == target.samples:
        solution.clients = client_grouping(target)
    if solution.status is Status.CONVERGED and solution.digits < 1:
        # whatever the solver: "converged" with no digit vouched for claims nothing
        solution.status = Status.PRECISION_LIMITED
        solution.detail = "no digit of the data is vouched for" + (
            f"; {solution.detail}" if solution.detail else "")
    reporter.event("done", status=solution.status.value, digits=solution.digits)
    return solution
