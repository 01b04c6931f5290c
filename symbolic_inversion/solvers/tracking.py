r"""The path tracker: predictor, corrector, step control and endgame, for any homotopy.

As in HomotopyContinuation.jl, the tracker knows nothing about which homotopy it
follows.  A homotopy is an object with ``evaluate(u, s) -> (H, H_u, H_s)`` (square, in
a complex arithmetic) and a start point at ``s = 0``; the tracker follows the path with
the complex "gamma trick" reparametrisation

.. math:: s = \frac{t}{t + \gamma (1 - t)}, \qquad t: 0 \to 1,

(``gamma`` a random complex number: the path then avoids the real folds where a real
homotopy turns back; measured: with real ``gamma`` most paths fail from n = 5).

- **Predictor**: classical fourth-order Runge-Kutta on ``du/dt = -H_u^{-1} H_s ds/dt``
  (``"rk4"``, four evaluations and solves per step), or the cubic Hermite extrapolation
  of the last two points and their tangents (``"hermite"``: one evaluation, the tangent
  at the current point; Runge-Kutta for the first step).  Measured on the moment
  homotopy: retrying a failed Hermite step with Runge-Kutta cost more evaluations
  (n = 24: 252 -> 320) and did not prevent a stall.  With the Hermite predictor the
  corrector solves for the tangent at its last iterate with the same matrix (two
  right-hand sides) and the next step starts from it: one evaluation per step fewer.
  A homotopy may name its predictor (attribute ``predictor``); otherwise
  :class:`TrackerOptions` does (default ``"rk4"``).  A step retried from the same point
  reuses its tangent.
- **Corrector**: :func:`~symbolic_inversion.solvers.newton.newton` at the new ``t``, at
  most four iterations to a relative tolerance (1e-6), failing as soon as a correction
  stops contracting or exceeds a tenth of ``|u|``.
- **Step control**: halve on failure, double after two successes (at most ``max_step``).
- **Endgame**: past ``t = endgame`` a failed step first tries Newton on the target system
  directly (at most three times); at ``t = 1`` Newton runs to the working precision.
  Where the path still cannot be finished (the step size falls below its minimum, the
  steps run out, or Newton fails at ``t = 1``: an ill-conditioned or singular root), the
  *Cauchy endgame* (:mod:`~symbolic_inversion.solvers.endgame`) loops around ``t = 1``
  from a point of the path farther out, if the path's last points behave like a
  Puiseux series; its mean over the loops is the endpoint, polished by Newton at
  ``t = 1`` (at a singular root, where Newton cannot converge, it is the path's ``last``
  point at ``t = 1`` for the caller to refine).

The outcome is a :class:`PathResult` with a :class:`PathCode`; nothing raises.  The
precision comes from :class:`TrackerOptions` (``dps``), never from mpmath's global state.
"""

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from ..precision import newton_tolerance, precision_floor
from .endgame import cauchy_finish, keep_anchor
from .loop import iterate
from .newton import newton
from .path_result import DIVERGED, STALLED_NEAR_END, PathCode, PathResult

__all__ = ["PathCode", "PathResult", "TrackerOptions", "TrackerState", "Tracker",
           "Corrector", "random_gamma", "STALLED_NEAR_END", "DIVERGED"]

@dataclass
class TrackerOptions:
    """Step control of the tracker; ``dps`` is the tracking precision (required);
    ``predictor``: ``"rk4"`` or ``"hermite"`` (module docstring); ``cauchy``: whether the
    Cauchy endgame runs, with ``cauchy_points`` nodes per loop and at most
    ``cauchy_loops`` loops (the largest winding number it finds)."""

    dps: int
    max_steps: int = 600
    min_step: float = 1e-12
    initial_step: float = 0.05
    max_step: float = 0.25
    tolerance: float = 1e-6
    endgame: float = 0.9
    endgame_jumps: int = 3
    real_tolerance: float = 1e-6
    predictor: str = "rk4"
    cauchy: bool = True
    cauchy_points: int = 8
    cauchy_loops: int = 4


def random_gamma(rng):
    """A random unit complex number away from the real axis (angle in [0.3, 2.8])."""
    angle = rng.uniform(0.3, 2.8)
    return mpmath.mpc(math.cos(angle), math.sin(angle))


def _scalar(arithmetic, value):
    return arithmetic.number(value)


@dataclass
class TrackerState:
    """Where a path is: the point ``u`` at ``t``, the step ``dt`` and its run of
    successes, the tangent at ``u`` (kept for a retry from the same point), the previous
    point (the Hermite predictor's), the endgame's anchors and jumps, the counts, and the
    :class:`PathResult` once the path has one."""

    homotopy: object
    gamma: object
    u: object
    t: float = 0.0
    dt: float = 0.0
    streak: int = 0
    steps: int = 0
    iterations: int = 0
    jumps: int = 0
    tangent: object = None
    previous: tuple = None
    anchors: list = field(default_factory=list)
    evaluations: int = 0
    predictor: str = "rk4"
    record: list = None
    result: PathResult = None


class Corrector:
    """The tracker's corrector for :func:`~symbolic_inversion.solvers.loop.iterate`:
    Newton at the new ``t`` with the tracker's rules (at most four iterations, each
    correction at most half the previous one and below a tenth of ``|u|``), solving for
    the tangent with the same matrix: the tangent at the last iterate (within the
    tolerance of the endpoint) is the next step's, one evaluation and solve fewer per
    step.  Its result is ``(u, tangent, iterations)``, ``u`` ``None`` on failure."""

    max_steps = 4

    def __init__(self, tracker, state, t_new):
        self.tracker, self.state = tracker, state
        self.s_new, self.ds_dt = tracker.s_of(t_new)

    def init(self, candidate):
        return {"u": candidate, "previous": None, "iteration": 0, "done": None}

    def step(self, current):
        tracker, A = self.tracker, self.tracker.arithmetic
        current["iteration"] += 1
        u = current["u"]
        H, Hu, Hs = tracker.evaluate(self.state, u, self.s_new)
        right = np.empty((len(H), 2), dtype=H.dtype)
        right[:, 0], right[:, 1] = -H, -(Hs * self.ds_dt)
        solved = A.solve(Hu, right)
        if not solved.ok:
            current["done"] = (None, None, current["iteration"])
            return current
        delta, tangent = solved.x[:, 0], solved.x[:, 1]
        correction, scale = A.norm(delta), 1.0 + A.norm(u)
        if not math.isfinite(correction) or correction > 0.1 * scale:
            current["done"] = (None, None, current["iteration"])
            return current
        u = u + delta
        if hasattr(A, "mid"):
            u = A.mid(u)
        current["u"] = u
        if correction <= tracker.options.tolerance * scale:
            current["done"] = (u, tangent, current["iteration"])
        elif current["previous"] is not None and correction > 0.5 * current["previous"]:
            current["done"] = (None, None, current["iteration"])
        current["previous"] = correction
        return current

    def terminate(self, current):
        return current["done"]

    def exhausted(self, current):
        return None, None, self.max_steps


class Tracker:
    """Follows a homotopy from its start at ``t = 0`` to ``t = 1`` in ``arithmetic`` (a
    complex one) at ``options.dps`` digits: a solver of
    :func:`~symbolic_inversion.solvers.loop.iterate` whose state is a
    :class:`TrackerState` and whose step is one predictor-corrector step.

    >>> import mpmath, numpy as np
    >>> from symbolic_inversion.arithmetic import get_arithmetic
    >>> class Square:  # x^2 = (1 - s) 1 + s 4: from x = 1 to x = 2
    ...     def start(self):
    ...         return get_arithmetic("mpc").asarray([1])
    ...     def evaluate(self, u, s):
    ...         return (np.array([u[0] ** 2 - 1 - 3 * s]), np.array([[2 * u[0]]]),
    ...                 np.array([-3 + 0 * s]))
    >>> path = Tracker(get_arithmetic("mpc"), TrackerOptions(dps=40)).track(
    ...     Square(), mpmath.mpc(0.6, 0.8))
    >>> path.code, mpmath.nstr(path.real[0], 30)
    (<PathCode.SUCCESS: 'success'>, '2.0')
    """

    def __init__(self, arithmetic, options):
        self.arithmetic = arithmetic
        self.options = options

    def track(self, homotopy, gamma, start=None, record=None):
        """A :class:`PathResult` for ``homotopy`` (``start`` defaults to
        ``homotopy.start()``).  ``record``, a list, receives ``[t, [[re, im] per
        unknown]]`` at the start, after every accepted step and at the end (for plots)."""
        with self.arithmetic.workdps(self.options.dps):
            if start is None:
                start = homotopy.start()
            if start is None:
                return PathResult(PathCode.NO_START, reason=getattr(
                    homotopy, "start_failure", "no start point"))
            state = self.init(homotopy, start, gamma, record)
            # a step beyond max_steps ends the path (MAX_STEPS), so the loop never runs out
            return self._classify(iterate(self, state, self.options.max_steps + 1))

    # -- the solver -----------------------------------------------------------------

    def init(self, homotopy, start, gamma, record=None):
        A, o = self.arithmetic, self.options
        self._gamma = _scalar(A, gamma)
        self._one = _scalar(A, 1)
        u = A.mid(start) if hasattr(A, "mid") else start
        state = TrackerState(homotopy, gamma, u, dt=o.initial_step,
                             predictor=getattr(homotopy, "predictor", o.predictor),
                             record=record)
        self.note(state, 0.0, u)
        return state

    def step(self, state):
        A, o = self.arithmetic, self.options
        state.steps += 1
        if state.steps > o.max_steps:
            return self._end(state, cauchy_finish(self, state, PathResult(
                PathCode.MAX_STEPS, None, state.steps, state.iterations, "too many steps",
                t=state.t, last=state.u)))
        t = state.t
        dt = state.dt = min(state.dt, 1.0 - t)
        if state.tangent is None:   # a retry from the same point keeps its tangent
            state.tangent = self.velocity(state, state.u, t)
        if state.tangent is None or not math.isfinite(A.norm(state.tangent)):
            return self._end(state, PathResult(PathCode.SINGULAR, None, state.steps,
                                               state.iterations,
                                               "singular Jacobian on the path", t=t))
        if state.predictor == "hermite" and state.previous is not None:
            candidate = self.hermite(state.u, t, dt, state.tangent, state.previous)
        else:
            candidate = self.runge_kutta(state, state.u, t, dt, state.tangent)
        if candidate is None:
            state.dt, state.streak = dt / 2, 0
            return state
        if state.predictor == "hermite":
            corrector = Corrector(self, state, t + dt)
            corrected, next_tangent, spent = iterate(corrector, corrector.init(candidate),
                                                     Corrector.max_steps)
            converged = corrected is not None
        else:
            s_new, _ = self.s_of(t + dt)
            result = newton(self.at(state, s_new), candidate, A, method="lu",
                            tolerance=o.tolerance, floor=0.0, max_iterations=4,
                            max_correction=0.1, evaluate_end=False)
            corrected, next_tangent, spent = result.u, None, result.iterations
            converged = result.converged
        state.iterations += spent
        if converged:
            state.previous = (t, state.u, state.tangent)
            state.u, state.t, state.tangent = corrected, t + dt, next_tangent
            self.note(state, state.t, state.u)
            keep_anchor(state, o.endgame)
            state.streak += 1
            if state.streak >= 2:
                state.dt, state.streak = min(2 * dt, o.max_step), 0
            if A.norm(state.u) > 1e8:
                return self._end(state, PathResult(PathCode.AT_INFINITY, None, state.steps,
                                                   state.iterations,
                                                   "the path went to infinity", t=state.t))
            return state
        state.dt, state.streak = dt / 2, 0
        if t >= o.endgame and state.jumps < o.endgame_jumps:
            # Endgame: near t = 1 the path is steep (the root is ill-conditioned); Newton
            # on the target system from here usually converges.  A wrong root reached
            # this way is rejected later against the whole trace.
            state.jumps += 1
            end = self.final_newton(state, state.u, 25)
            state.iterations += end.iterations
            if end.converged:
                self.note(state, 1.0, end.u)
                return self._end(state, PathResult(PathCode.SUCCESS, end.u, state.steps,
                                                   state.iterations, "endgame jump", t=t,
                                                   endgame_jump=True))
        if state.dt < o.min_step:
            return self._end(state, cauchy_finish(self, state, PathResult(
                PathCode.STALLED, None, state.steps, state.iterations,
                f"step size fell below {o.min_step} at t = {t:.6f}", t=t, last=state.u)))
        return state

    def terminate(self, state):
        if state.result is not None:
            return state.result
        if state.t < 1.0:
            return None
        end = self.final_newton(state, state.u, 40)
        state.iterations += end.iterations
        if not end.converged or not math.isfinite(self.arithmetic.norm(end.u)):
            return cauchy_finish(self, state, PathResult(
                PathCode.ENDGAME_FAILED, None, state.steps, state.iterations,
                "Newton did not converge at t = 1", t=state.t, last=state.u))
        self.note(state, 1.0, end.u)
        return PathResult(PathCode.SUCCESS, end.u, state.steps, state.iterations)

    def exhausted(self, state):   # pragma: no cover - step ends the path first
        return state.result

    @staticmethod
    def _end(state, result):
        state.result = result
        return state

    # -- the path's calculus (the endgame uses it too) ------------------------------

    def note(self, state, t, u):
        if state.record is not None:
            values = [self.arithmetic.to_mpmath(v) for v in u]
            state.record.append([float(t), [[float(mpmath.re(v)), float(mpmath.im(v))]
                                            for v in values]])

    def s_of(self, t):
        """``(s, ds/dt)`` of the gamma trick at ``t`` (a float on the path, an arithmetic
        number in the endgame's loops)."""
        A = self.arithmetic
        t_b = _scalar(A, mpmath.mpf(t)) if isinstance(t, (float, int)) else t
        denominator = t_b + self._gamma * (self._one - t_b)
        return t_b / denominator, self._gamma / (denominator * denominator)

    def evaluate(self, state, u, s):
        state.evaluations += 1   # what the Cauchy endgame's budget counts
        return state.homotopy.evaluate(u, s)

    def at(self, state, s):
        return lambda v: self.evaluate(state, v, s)[:2]

    def velocity(self, state, u, t):
        s, ds_dt = self.s_of(t)
        _, Hu, Hs = self.evaluate(state, u, s)
        solved = self.arithmetic.solve(Hu, -(Hs * ds_dt))
        return solved.x if solved.ok else None

    def runge_kutta(self, state, u, t, dt, k1):
        A = self.arithmetic
        half = _scalar(A, mpmath.mpf(dt) / 2)
        full = _scalar(A, mpmath.mpf(dt))
        k2 = self.velocity(state, u + k1 * half, t + dt / 2)
        if k2 is None:
            return None
        k3 = self.velocity(state, u + k2 * half, t + dt / 2)
        if k3 is None:
            return None
        k4 = self.velocity(state, u + k3 * full, t + dt)
        if k4 is None:
            return None
        step = u + (k1 + k2 * 2 + k3 * 2 + k4) * (full / 6)
        return self._finite(step)

    def hermite(self, u, t, dt, tangent, previous):
        # the cubic through (t0, u0, v0) and (t, u, v), extrapolated to t + dt: no
        # evaluation beyond the tangent at u, which the step needs anyway
        t0, u0, v0 = previous
        h = t - t0
        theta = (t + dt - t0) / h
        square, cube = theta * theta, theta * theta * theta
        weights = [2 * cube - 3 * square + 1, (cube - 2 * square + theta) * h,
                   -2 * cube + 3 * square, (cube - square) * h]
        w = [_scalar(self.arithmetic, mpmath.mpf(c)) for c in weights]
        return self._finite(u0 * w[0] + v0 * w[1] + u * w[2] + tangent * w[3])

    def _finite(self, step):
        A = self.arithmetic
        if hasattr(A, "mid"):
            step = A.mid(step)
        size = A.norm(step)
        return step if size == size and size != math.inf else None

    def final_newton(self, state, u, iterations):
        """Newton on the target system (``t = 1``) to the working precision."""
        return newton(self.at(state, self._one), u, self.arithmetic, method="lu",
                      tolerance=newton_tolerance(self.options.dps),
                      floor=precision_floor(self.options.dps), max_iterations=iterations,
                      evaluate_end=False)

    def correct_at(self, state, u, t, tolerance, iterations):
        """The endgame's corrector at a complex ``t``: to ``tolerance`` (a loop's inner
        steps) or to the working precision (``None``: its nodes); ``None`` on failure."""
        dps = self.options.dps
        result = newton(self.at(state, self.s_of(t)[0]), u, self.arithmetic, method="lu",
                        tolerance=newton_tolerance(dps) if tolerance is None else tolerance,
                        floor=precision_floor(dps) if tolerance is None else 0.0,
                        max_iterations=iterations, max_correction=0.1, evaluate_end=False)
        return result.u if result.converged else None

    def _classify(self, path):
        """Real or complex endpoint; a stall next to ``t = 1`` far out is at infinity."""
        A = self.arithmetic
        if path.code is PathCode.SUCCESS:
            values = [A.to_mpmath(v) for v in path.u]
            scale = 1 + max(abs(v) for v in values)
            imaginary = max(abs(mpmath.im(v)) for v in values)
            path.imaginary = float(imaginary)
            if imaginary > self.options.real_tolerance * scale:
                path.code = PathCode.COMPLEX_END
                path.reason = f"the path ended at a complex root (|Im| = {float(imaginary):.1e})"
            else:
                path.real = [mpmath.re(v) for v in values]
        elif path.last is not None and path.t is not None and path.t >= STALLED_NEAR_END:
            size = A.norm(path.last)
            if size > DIVERGED:
                path.code = PathCode.AT_INFINITY
                path.reason = (f"the path went to infinity (|u| = {size:.1e} at "
                               f"t = {path.t:.6f})")
        return path
