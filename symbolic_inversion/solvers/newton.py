r"""The one Newton / Gauss-Newton iteration of the toolkit, with one stopping rule.

``newton(evaluate, u, arithmetic)`` iterates ``u <- u + lambda * delta`` where ``delta``
solves ``J delta = -F`` (``method="lu"``: square), or minimises ``|J delta + F|``
(``"qr"`` or ``"normal"``: the normal equations ``J^T J delta = -J^T F``, Gauss-Newton).
Every solver uses it: the tracker's corrector and its final Newton at ``t = 1``, the
refinement on every step of a trace (:func:`gauss_newton`), the SGD solvers' polishing
and the certificate's square Newton (:func:`square_newton`).

The stopping rule (``corr`` is the max-norm of the correction, ``scale = 1 + |u|``):

- ``corr <= tolerance * scale``: ``CONVERGED``;
- the correction stopped contracting (``corr > contraction * previous``): at the precision
  floor (``corr < floor * scale``, ``PRECISION_FLOOR``: converged as far as the working
  precision allows) or else ``STALLED``;
- ``corr > max_correction * scale`` or not finite: ``DIVERGED``;
- the linear solve failed (numerically singular matrix): ``SINGULAR``;
- a damped step that never decreased the residual: ``STALLED``;
- ``max_iterations`` used up: ``MAX_ITERATIONS``.

Nothing here raises on a singular matrix or a diverging iteration: they are codes with a
reason, for the caller to report.  Precision: run inside ``arithmetic.workdps(dps)``
(or pass ``dps=`` and it does so); ``tolerance`` and ``floor`` default to
:func:`~symbolic_inversion.precision.newton_tolerance` and
:func:`~symbolic_inversion.precision.precision_floor` of ``dps``.

Examples
========

Start 1e-6 away from Example 2's data and polish (exact 40-digit trace):

>>> import mpmath
>>> from symbolic_inversion import Network, simulate
>>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
...                  epochs=4, init=["0.5", "0.5"], dps=40)
>>> start = [[mpmath.mpf("0.600001")], [mpmath.mpf("0.2")]], [[mpmath.mpf("0.5")],
...                                                          [mpmath.mpf("0.4")]]
>>> inputs, labels, info = gauss_newton(trace, *start, dps=60)
>>> info["converged"], mpmath.nstr(inputs[0][0], 25), mpmath.nstr(labels[1][0], 25)
(True, '0.6', '0.4')
"""

import enum
import math
from dataclasses import dataclass

from ..precision import newton_tolerance, precision_floor
from .loop import iterate

__all__ = ["NewtonCode", "NewtonResult", "NewtonIteration", "newton", "gauss_newton",
           "square_newton"]


class NewtonCode(enum.Enum):
    CONVERGED = "converged"
    PRECISION_FLOOR = "precision_floor"
    STALLED = "stalled"
    DIVERGED = "diverged"
    SINGULAR = "singular"
    MAX_ITERATIONS = "max_iterations"

    @property
    def converged(self):
        return self in (NewtonCode.CONVERGED, NewtonCode.PRECISION_FLOOR)


@dataclass
class NewtonResult:
    """Where the iteration stopped and why.

    ``u`` is the last accepted point (the start if no step was accepted); ``residual`` and
    ``correction`` are max-norms (Python floats) of the residual at ``u`` and of the last
    correction; ``F`` and ``J`` the residual and Jacobian at ``u`` when known.
    """

    u: object
    converged: bool
    iterations: int
    residual: float
    correction: float
    code: NewtonCode
    reason: str = ""
    F: object = None
    J: object = None


def _finite(value):
    return value == value and value != math.inf


def newton(evaluate, u, arithmetic, method="lu", dps=None, tolerance=None, floor=None,
           max_iterations=40, contraction=0.5, max_correction=None, damping=0, rows=None,
           first=None, stop_on_stall=True, evaluate_end=True):
    """Newton (``method="lu"``) or Gauss-Newton (``"qr"``, ``"normal"``) from ``u``.

    Parameters
    ==========

    evaluate : callable
        ``evaluate(u) -> (F, J)``: residual (1-D array) and Jacobian (2-D array).
    u : 1-D array of the arithmetic's numbers
    arithmetic : Arithmetic
        Supplies ``solve`` / ``lstsq`` (results with ``ok``), ``norm`` and ``workdps``.
    dps : int, optional
        Working precision: the iteration runs inside ``arithmetic.workdps(dps)`` and the
        default ``tolerance`` / ``floor`` follow from it.  ``None``: already inside.
    tolerance, floor : float, optional
        Relative thresholds of the stopping rule (module docstring); ``floor=0`` turns
        "stopped contracting" into ``STALLED`` always (the tracker's corrector).
    max_correction : float, optional
        Relative size of a correction that counts as divergence.
    damping : int
        Halve a step that increases the residual at most this many times (line search);
        ``0`` takes full steps.
    rows : list of int, optional
        Use only these rows of ``F`` and ``J`` (a square subsystem for ``"lu"``).
    first : (F, J), optional
        The residual and Jacobian at ``u`` when the caller already has them.
    stop_on_stall : bool
        Whether a correction that stopped contracting above the floor ends the iteration
        (``STALLED``); damped Gauss-Newton (whose residual never grows) may go on instead,
        as its convergence is only linear when the residual is not zero.
    evaluate_end : bool
        Evaluate the residual at the final point (``residual``, ``F``, ``J`` of the
        result); ``False`` saves that evaluation (the tracker), and the result then
        reports the residual before the last correction, with ``F = J = None``.
    """
    if dps is not None:
        with arithmetic.workdps(dps):
            return newton(evaluate, u, arithmetic, method, None,
                          newton_tolerance(dps) if tolerance is None else tolerance,
                          precision_floor(dps) if floor is None else floor,
                          max_iterations, contraction, max_correction, damping, rows, first,
                          stop_on_stall, evaluate_end)
    if tolerance is None or floor is None:
        raise TypeError("newton: give dps, or both tolerance and floor")
    solver = NewtonIteration(evaluate, arithmetic, method, tolerance, floor, contraction,
                             max_correction, damping, rows, stop_on_stall, evaluate_end)
    return iterate(solver, solver.init(u, first), max_iterations)


@dataclass
class NewtonState:
    """Where a Newton iteration is: the point ``u``, the residual ``F`` and Jacobian
    ``J`` there, their sizes, the last correction, and its outcome once it has one."""

    u: object
    F: object
    J: object
    size: float
    value: float
    iteration: int = 0
    previous: float = None
    correction: float = math.inf
    outcome: NewtonResult = None


class NewtonIteration:
    """One (Gauss-)Newton iteration for :func:`~symbolic_inversion.solvers.loop.iterate`
    (the arguments are :func:`newton`'s)."""

    def __init__(self, evaluate, arithmetic, method, tolerance, floor, contraction,
                 max_correction, damping, rows, stop_on_stall, evaluate_end):
        self.evaluate, self.arithmetic, self.method = evaluate, arithmetic, method
        self.tolerance, self.floor, self.contraction = tolerance, floor, contraction
        self.max_correction, self.damping, self.rows = max_correction, damping, rows
        self.stop_on_stall, self.evaluate_end = stop_on_stall, evaluate_end
        self.norm = arithmetic.norm
        self.clean = getattr(arithmetic, "mid", None)
        # the line search's merit: Gauss-Newton minimises the 2-norm of the residual (on
        # an inconsistent system, e.g. a float32 trace, a good step may raise the max-norm)
        self.merit = self.norm if method == "lu" else \
            (lambda values: _two_norm(arithmetic, values))

    def system(self, point):
        F, J = self.evaluate(point)
        if self.rows is not None:
            F, J = F[self.rows], J[self.rows]
        return F, J

    def init(self, u, first=None):
        F, J = self.system(u) if first is None else first
        size = self.norm(F)
        return NewtonState(u, F, J, size, self.merit(F) if self.damping else size)

    def _end(self, state, code, reason, converged=False):
        state.outcome = NewtonResult(state.u, converged, state.iteration, state.size,
                                     state.correction, code, reason, state.F, state.J)
        return state

    def step(self, state):
        A, norm, tolerance = self.arithmetic, self.norm, self.tolerance
        state.iteration += 1
        F, J, u = state.F, state.J, state.u
        solved = A.solve(J, -F) if self.method == "lu" else \
            A.lstsq(J, -F, method=self.method)
        state.correction = correction = norm(solved.x) if solved.ok else math.nan
        if not solved.ok or not _finite(correction):
            return self._end(state, NewtonCode.SINGULAR,
                             solved.reason or "the linear system is numerically singular")
        scale = 1.0 + norm(u)
        if self.max_correction is not None and correction > self.max_correction * scale:
            return self._end(state, NewtonCode.DIVERGED,
                             f"correction {correction:.1e} exceeds "
                             f"{self.max_correction:g} (relative)")
        accepted = self._line_search(state, solved.x, correction, scale)
        if accepted is None:
            return self._end(state, NewtonCode.STALLED,
                             "no step along the correction decreased the residual")
        state.u, F_trial, J_trial, trial_value = accepted
        if self.damping:
            state.F, state.J, state.size, state.value = \
                F_trial, J_trial, norm(F_trial), trial_value
        if correction <= tolerance * scale:
            code = NewtonCode.CONVERGED
        elif state.previous is not None and correction > self.contraction * state.previous \
                and (self.stop_on_stall or correction < self.floor * scale):
            code = (NewtonCode.PRECISION_FLOOR if correction < self.floor * scale
                    else NewtonCode.STALLED)
        else:
            state.previous = correction
            if not self.damping:
                state.F, state.J = self.system(state.u)
                state.size = norm(state.F)
            return state
        if not self.damping:
            state.F, state.J = self.system(state.u) if self.evaluate_end else (None, None)
            state.size = norm(state.F) if self.evaluate_end else state.size
        reason = "" if code.converged else (f"the correction stopped contracting at "
                                            f"{correction:.1e}")
        return self._end(state, code, reason, code.converged and (
            not self.evaluate_end or _finite(state.size)))

    def _line_search(self, state, delta, correction, scale):
        """``(u, F, J, merit)`` of the accepted step (``F``, ``J`` and the merit only
        when damping), or ``None`` when no halving of the step decreased the residual."""
        A, clean, merit = self.arithmetic, self.clean, self.merit
        u, F, J, value = state.u, state.F, state.J, state.value
        factor = 1
        for _ in range(self.damping + 1):
            trial = u + delta if factor == 1 else u + delta * factor
            if clean is not None:
                trial = clean(trial)
            if not self.damping:
                return trial, None, None, None
            F_trial, J_trial = self.system(trial)
            trial_value = merit(F_trial)
            if trial_value <= value * (1 + 1e-6) or correction <= self.tolerance * scale:
                return trial, F_trial, J_trial, trial_value
            if self.method != "lu":
                # geodesic acceleration (Transtrum & Sethna): along a curved valley of an
                # ill-conditioned least-squares problem the step's second-order term
                # dominates; remove it with the same Jacobian and try again (measured:
                # a float64 PyTorch trace of 4 samples, 1.5e-5 from the fit, converges
                # in 2 iterations instead of stalling)
                linear = F + A.matmul(J, delta) * factor
                bend = A.lstsq(J, linear - F_trial, method=self.method)
                if bend.ok:
                    bent = trial + bend.x
                    if clean is not None:
                        bent = clean(bent)
                    F_bent, J_bent = self.system(bent)
                    bent_value = merit(F_bent)
                    if bent_value <= value * (1 + 1e-6):
                        return bent, F_bent, J_bent, bent_value
            factor = factor / 2
        return None

    def terminate(self, state):
        return state.outcome

    def exhausted(self, state):
        return NewtonResult(state.u, False, state.iteration, state.size, state.correction,
                            NewtonCode.MAX_ITERATIONS,
                            f"{state.iteration} iterations without convergence",
                            state.F, state.J)


def _two_norm(arithmetic, values):
    """The 2-norm of ``values`` as a Python float, scaled so that tiny residuals of a
    high-precision trace (1e-200) do not underflow when squared."""
    magnitudes = arithmetic.magnitudes(values)
    largest = float(max(magnitudes, default=0.0))
    if not math.isfinite(largest) or largest == 0:
        return largest
    return largest * math.sqrt(sum((m / largest) ** 2 for m in magnitudes))


def gauss_newton(trace, inputs, labels, dps, steps=None, backend=None, max_iterations=30,
                 arithmetic=None, system=None):
    """Polish ``(inputs, labels)`` against the first ``steps`` steps (default all) by
    Gauss-Newton on the normal equations at ``dps`` digits, with step halving.

    Returns ``(inputs, labels, info)`` as mpmath numbers; ``info`` has ``iterations``,
    ``converged``, ``code``, ``reason``, ``residual`` (max norm, mpf) and ``correction``.
    ``system``: the trace's :class:`~symbolic_inversion.system.InversionSystem` when the
    caller has one (its evaluators, and their converted constants, are reused).
    """
    from .evaluation import real_arithmetic, trace_evaluator
    arithmetic = arithmetic or real_arithmetic(backend)
    steps = trace.steps if steps is None else steps
    with arithmetic.workdps(dps):
        evaluator = trace_evaluator(trace, arithmetic, range(steps), system=system)
        u = evaluator.join(arithmetic.asarray([list(x) for x in inputs]),
                           arithmetic.asarray([list(y) for y in labels]))
        result = newton(evaluator.evaluate, u, arithmetic, method="normal",
                        tolerance=newton_tolerance(dps, guard=8), floor=precision_floor(dps),
                        max_iterations=max_iterations, damping=8, stop_on_stall=False)
        X, Y = evaluator.split(result.u)
        to_mp = arithmetic.to_mpmath
        info = {"iterations": result.iterations, "converged": result.converged,
                "code": result.code.value, "reason": result.reason,
                "backend": arithmetic.name, "dps": dps, "correction": result.correction,
                "residual": max((abs(to_mp(v)) for v in result.F), default=0)}
        return ([[to_mp(v) for v in x] for x in X], [[to_mp(v) for v in y] for y in Y],
                info)


def square_newton(evaluate, u, arithmetic, rows, dps, max_iterations=60):
    """Newton on the square subsystem ``rows`` of ``evaluate`` at ``dps`` digits (the
    certificate's centre refinement): a :class:`NewtonResult`, never an exception."""
    return newton(evaluate, u, arithmetic, method="lu", dps=dps, rows=rows,
                  tolerance=newton_tolerance(dps, guard=3), max_iterations=max_iterations)
