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

import enum
import math
from dataclasses import dataclass

import mpmath
import numpy as np

from ..limits import check_time
from ..precision import newton_tolerance, precision_floor
from .endgame import ANCHOR_RATIO, cauchy_endgame
from .newton import newton

__all__ = ["PathCode", "PathResult", "TrackerOptions", "Tracker", "random_gamma",
           "STALLED_NEAR_END", "DIVERGED"]

# a path stopped past this t is next to its endpoint (refinement can finish it)
STALLED_NEAR_END = 0.999
# far outside any data a network is trained on: the path heads for a root at infinity
DIVERGED = 1e6


class PathCode(enum.Enum):
    """How a path ended."""

    SUCCESS = "success"                # a real endpoint at t = 1
    COMPLEX_END = "complex_end"        # converged at t = 1 to a non-real root
    AT_INFINITY = "at_infinity"        # |u| grew without bound
    STALLED = "stalled"                # the step size fell below its minimum
    SINGULAR = "singular"              # the Jacobian on the path is singular
    ENDGAME_FAILED = "endgame_failed"  # Newton did not converge at t = 1
    MAX_STEPS = "max_steps"
    NO_START = "no_start"              # the homotopy could not give a start point
    NO_ROOT = "no_root"                # a least-squares search settled at no root

    @property
    def ended_at_root(self):
        return self in (PathCode.SUCCESS, PathCode.COMPLEX_END)


@dataclass
class PathResult:
    """The end of one path.

    ``u``: the endpoint (arithmetic numbers) or ``None``; ``real``: its real part as
    mpmath numbers when the endpoint is real; ``last`` / ``t``: where a failed path
    stopped (near ``t = 1`` usually next to a root the tracking precision cannot resolve);
    ``imaginary``: the largest imaginary part of a converged endpoint.
    """

    code: PathCode
    u: object = None
    steps: int = 0
    newton: int = 0
    reason: str = ""
    t: float = None
    last: object = None
    real: list = None
    imaginary: float = None
    endgame_jump: bool = False
    winding: int = None

    @property
    def ok(self):
        return self.code is PathCode.SUCCESS

    @property
    def stalled_near_end(self):
        return (not self.code.ended_at_root and self.code is not PathCode.AT_INFINITY
                and self.last is not None and self.t is not None
                and self.t >= STALLED_NEAR_END)


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


class Tracker:
    """Follows a homotopy from its start at ``t = 0`` to ``t = 1`` in ``arithmetic`` (a
    complex one) at ``options.dps`` digits.

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
            return self._classify(self._track(homotopy, start, gamma, record))

    def _track(self, homotopy, start, gamma, record=None):
        A, o = self.arithmetic, self.options

        def note(t, u):
            if record is not None:
                values = [A.to_mpmath(v) for v in u]
                record.append([float(t), [[float(mpmath.re(v)), float(mpmath.im(v))]
                                          for v in values]])
        norm = A.norm
        gamma_b = _scalar(A, gamma)
        one = _scalar(A, 1)
        final_tolerance = newton_tolerance(o.dps)
        floor = precision_floor(o.dps)

        def s_of(t):
            # t: a float on the path, an arithmetic (complex) number in the endgame's loops
            t_b = _scalar(A, mpmath.mpf(t)) if isinstance(t, (float, int)) else t
            denominator = t_b + gamma_b * (one - t_b)
            return t_b / denominator, gamma_b / (denominator * denominator)

        evaluations = 0   # of the homotopy: what the Cauchy endgame's budget counts

        def evaluate(u, s):
            nonlocal evaluations
            evaluations += 1
            return homotopy.evaluate(u, s)

        def at(s):
            return lambda v: evaluate(v, s)[:2]

        def velocity(u, t):
            s, ds_dt = s_of(t)
            _, Hu, Hs = evaluate(u, s)
            solved = A.solve(Hu, -(Hs * ds_dt))
            return solved.x if solved.ok else None

        def runge_kutta(u, t, dt, k1):
            half = _scalar(A, mpmath.mpf(dt) / 2)
            full = _scalar(A, mpmath.mpf(dt))
            k2 = velocity(u + k1 * half, t + dt / 2)
            if k2 is None:
                return None
            k3 = velocity(u + k2 * half, t + dt / 2)
            if k3 is None:
                return None
            k4 = velocity(u + k3 * full, t + dt)
            if k4 is None:
                return None
            step = u + (k1 + k2 * 2 + k3 * 2 + k4) * (full / 6)
            if hasattr(A, "mid"):
                step = A.mid(step)
            size = norm(step)
            return step if size == size and size != math.inf else None

        def final_newton(u, iterations):
            return newton(at(one), u, A, method="lu", tolerance=final_tolerance,
                          floor=floor, max_iterations=iterations, evaluate_end=False)

        def correct_at(u, t, tolerance, iterations):
            # the endgame's corrector: to ``tolerance`` (a loop's inner steps) or to the
            # working precision (``None``: its nodes)
            result = newton(at(s_of(t)[0]), u, A, method="lu",
                            tolerance=final_tolerance if tolerance is None else tolerance,
                            floor=floor if tolerance is None else 0.0,
                            max_iterations=iterations, max_correction=0.1,
                            evaluate_end=False)
            return result.u if result.converged else None

        anchors = []   # points past t = endgame, each ANCHOR_RATIO times nearer t = 1

        def cauchy(failure):
            # The Cauchy endgame where the tracker stopped next to t = 1: the failure
            # itself when it does not apply or does not close its loops
            if not o.cauchy or failure.t is None or failure.t < o.endgame:
                return failure
            # The endgame may cost at most what the path did (measured before the
            # budget: on the neuron n = 24, loops that never closed cost ten times the
            # path).  A loop is closed when it is back at its start to the precision
            # floor: its nodes are corrected to the working precision, and a
            # neighbouring branch may be as near as rho^(1/c).
            budget = 2 * evaluations
            loops = cauchy_endgame(A, velocity, correct_at, anchors, failure.t, norm,
                                   o.cauchy_points, o.cauchy_loops, o.tolerance, floor,
                                   exhausted=lambda: evaluations > budget)
            spent = failure.steps + loops.steps
            if loops.u is None:
                failure.reason += f"; Cauchy endgame: {loops.reason}"
                failure.steps = spent
                return failure
            how = (f"Cauchy endgame (winding number {loops.winding}, radius "
                   f"{loops.radius:.1e})")
            end = final_newton(loops.u, 40)
            if end.converged and math.isfinite(norm(end.u)):
                note(1.0, end.u)
                return PathResult(PathCode.SUCCESS, end.u, spent, failure.newton +
                                  end.iterations, how, t=1.0, winding=loops.winding)
            # a singular root (winding number above 1) or an ill-conditioned one: Newton
            # does not converge there; the loops' mean is the best estimate of the
            # endpoint (to about loops.error), for the caller to refine
            why = ("a singular root" if loops.winding > 1 else
                   "an ill-conditioned root, or a branch point inside the loop")
            note(1.0, loops.u)
            return PathResult(PathCode.ENDGAME_FAILED, None, spent, failure.newton,
                              f"{how}: Newton did not converge at t = 1 from its estimate "
                              f"({why}; estimate error {loops.error:.1e})",
                              t=1.0, last=loops.u, winding=loops.winding)

        def hermite(u, t, dt, tangent, previous):
            # the cubic through (t0, u0, v0) and (t, u, v), extrapolated to t + dt: no
            # evaluation beyond the tangent at u, which the step needs anyway
            t0, u0, v0 = previous
            h = t - t0
            theta = (t + dt - t0) / h
            square, cube = theta * theta, theta * theta * theta
            weights = [2 * cube - 3 * square + 1, (cube - 2 * square + theta) * h,
                       -2 * cube + 3 * square, (cube - square) * h]
            w = [_scalar(A, mpmath.mpf(c)) for c in weights]
            step = u0 * w[0] + v0 * w[1] + u * w[2] + tangent * w[3]
            if hasattr(A, "mid"):
                step = A.mid(step)
            size = norm(step)
            return step if size == size and size != math.inf else None

        def correct(candidate, t_new):
            # Newton at t_new (the rules of newton() with the tracker's options: at most
            # four iterations, each correction at most half the previous one and below a
            # tenth of |u|), solving for the tangent with the same matrix: the tangent
            # at the last iterate (within the tolerance of the endpoint) is the next
            # step's, one evaluation and solve fewer per step.
            # Returns (u, tangent, iterations), u None on failure.
            s_new, ds_dt = s_of(t_new)
            u, previous = candidate, None
            for iteration in range(1, 5):
                H, Hu, Hs = evaluate(u, s_new)
                right = np.empty((len(H), 2), dtype=H.dtype)
                right[:, 0], right[:, 1] = -H, -(Hs * ds_dt)
                solved = A.solve(Hu, right)
                if not solved.ok:
                    return None, None, iteration
                delta, tangent = solved.x[:, 0], solved.x[:, 1]
                correction, scale = norm(delta), 1.0 + norm(u)
                if not math.isfinite(correction) or correction > 0.1 * scale:
                    return None, None, iteration
                u = u + delta
                if hasattr(A, "mid"):
                    u = A.mid(u)
                if correction <= o.tolerance * scale:
                    return u, tangent, iteration
                if previous is not None and correction > 0.5 * previous:
                    return None, None, iteration
                previous = correction
            return None, None, 4

        u = A.mid(start) if hasattr(A, "mid") else start
        note(0.0, u)
        jumps, t, dt, streak, steps, iterations = 0, 0.0, o.initial_step, 0, 0, 0
        tangent, previous = None, None
        predictor = getattr(homotopy, "predictor", o.predictor)
        while t < 1.0:
            check_time()   # a time budget, or an interrupt held for a safe point
            steps += 1
            if steps > o.max_steps:
                return cauchy(PathResult(PathCode.MAX_STEPS, None, steps, iterations,
                                         "too many steps", t=t, last=u))
            dt = min(dt, 1.0 - t)
            if tangent is None:   # a retry from the same point keeps its tangent
                tangent = velocity(u, t)
            if tangent is None or not math.isfinite(norm(tangent)):
                return PathResult(PathCode.SINGULAR, None, steps, iterations,
                                  "singular Jacobian on the path", t=t)
            if predictor == "hermite" and previous is not None:
                candidate = hermite(u, t, dt, tangent, previous)
            else:
                candidate = runge_kutta(u, t, dt, tangent)
            if candidate is None:
                dt, streak = dt / 2, 0
                continue
            if predictor == "hermite":
                corrected, next_tangent, spent = correct(candidate, t + dt)
                converged = corrected is not None
            else:
                s_new, _ = s_of(t + dt)
                result = newton(at(s_new), candidate, A, method="lu", tolerance=o.tolerance,
                                floor=0.0, max_iterations=4, max_correction=0.1,
                                evaluate_end=False)
                corrected, next_tangent, spent = result.u, None, result.iterations
                converged = result.converged
            iterations += spent
            if converged:
                previous = (t, u, tangent)
                u, t, tangent = corrected, t + dt, next_tangent
                note(t, u)
                if t >= o.endgame and t < 1.0 and (not anchors or 1.0 - t <= (
                        1.0 - anchors[-1][0]) / ANCHOR_RATIO):
                    anchors.append((t, u))
                streak += 1
                if streak >= 2:
                    dt, streak = min(2 * dt, o.max_step), 0
                if norm(u) > 1e8:
                    return PathResult(PathCode.AT_INFINITY, None, steps, iterations,
                                      "the path went to infinity", t=t)
                continue
            dt, streak = dt / 2, 0
            if t >= o.endgame and jumps < o.endgame_jumps:
                # Endgame: near t = 1 the path is steep (the root is ill-conditioned);
                # Newton on the target system from here usually converges.  A wrong root
                # reached this way is rejected later against the whole trace.
                jumps += 1
                end = final_newton(u, 25)
                iterations += end.iterations
                if end.converged:
                    note(1.0, end.u)
                    return PathResult(PathCode.SUCCESS, end.u, steps, iterations,
                                      "endgame jump", t=t, endgame_jump=True)
            if dt < o.min_step:
                return cauchy(PathResult(PathCode.STALLED, None, steps, iterations,
                                         f"step size fell below {o.min_step} at "
                                         f"t = {t:.6f}", t=t, last=u))
        end = final_newton(u, 40)
        iterations += end.iterations
        if not end.converged or not math.isfinite(norm(end.u)):
            return cauchy(PathResult(PathCode.ENDGAME_FAILED, None, steps, iterations,
                                     "Newton did not converge at t = 1", t=t, last=u))
        note(1.0, end.u)
        return PathResult(PathCode.SUCCESS, end.u, steps, iterations)

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
