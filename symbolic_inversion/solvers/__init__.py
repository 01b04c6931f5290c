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
``sgd``         sgd traces and gd with momentum or weight decay: picks one of
                ``per_sample`` (batch size 1), ``known_schedule`` (batches recorded
                or full batch), ``schedule_search`` (unknown schedule, batch > 1)
=============== ==========================================================
"""

import mpmath

from ..errors import InputError, NotSupportedError
from ..trace import Trace
from .closed_form import solve_closed_form
from .sgd import solve_joint, solve_per_sample, solve_schedule_search, solve_sgd
from .solution import RecoveryError, Solution, Status
from .pipeline import solve_cold_start, solve_homotopy, solve_moments
from .relu import solve_relu, supports_relu

__all__ = ["recover", "SOLVERS", "default_dps", "Solution", "Status", "RecoveryError"]

SOLVERS = {"closed_form": solve_closed_form}
SOLVERS.update({"cold_start": solve_cold_start, "moments": solve_moments,
                "homotopy": solve_homotopy})
SOLVERS.update({"sgd": solve_sgd, "per_sample": solve_per_sample,
                "known_schedule": solve_joint, "schedule_search": solve_schedule_search})
SOLVERS.update({"relu": solve_relu})


def default_dps(trace):
    """Working precision for a trace: its digits plus 20 guard digits, at least 30."""
    return max(30, trace.digits + 20)


def _choose(trace):
    if trace.samples == 1 and trace.network.bias and trace.optimizer["name"] == "gd":
        return "closed_form"
    if trace.optimizer["name"] == "sgd" or trace.momentum or trace.weight_decay:
        return "sgd"
    if trace.samples > 1 and not supports_relu(trace.network):
        return "relu"
    return "cold_start"


def recover(trace, method="auto", dps=None, steps=None, verify=False):
    """Recover the training data behind ``trace``.

    Parameters
    ==========

    trace : Trace
    method : str
        A name from ``SOLVERS`` or ``"auto"``.
    dps : int, optional
        Working precision in decimal digits (default :func:`default_dps`).  mpmath's
        global precision is restored afterwards.
    steps : int, optional
        Use only the first ``steps`` steps of the trace (default: all).
    verify : bool
        Raise :class:`RecoveryError` unless the status is ``converged``.

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
    """
    if not isinstance(trace, Trace):
        raise InputError("recover: expected a Trace")
    if dps is None:
        dps = default_dps(trace)
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 10:
        raise InputError(f"dps: must be an integer of at least 10, got {dps!r}")
    name = _choose(trace) if method == "auto" else method
    if name not in SOLVERS:
        raise InputError(f"method: unknown solver {name!r}; known: {', '.join(SOLVERS)}")
    solution = SOLVERS[name](trace, dps=dps, steps=steps)
    if verify:
        solution.raise_for_status()
    return solution
