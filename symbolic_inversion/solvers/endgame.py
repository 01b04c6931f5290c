r"""The Cauchy endgame: a path's endpoint as the mean of loops around ``t = 1``.

Near ``t = 1`` a path to an isolated root is a Puiseux series in ``(1 - t)^{1/c}``; the
*winding number* ``c`` is 1 at a regular root and larger where several paths meet (a
singular root: two samples that coincide, a merged cluster).  Going once around the
circle ``t = 1 - rho e^{i theta}`` takes the path to the next of its ``c`` branches;
after ``c`` loops it is back where it started, and Cauchy's integral formula gives the
endpoint as a mean over the loops,

.. math:: u(1) = \frac{1}{2 \pi c} \int_0^{2 \pi c} u\bigl(1 - \rho e^{i\theta}\bigr)
          \, d\theta ,

which the trapezoid rule on ``c * points`` equally spaced nodes computes with an error
that falls geometrically with ``points`` (the ratio of ``rho`` to the distance of the
next singularity).  The loops stay a distance ``rho`` from ``t = 1``, where the Jacobian
is far better conditioned than at the end: they finish paths that the tracker cannot
follow to the end (steps that shrink to nothing next to an ill-conditioned root, Newton
failing at a singular one).  As in Bertini and HomotopyContinuation.jl the endgame is
entered only when the path's points behave like a Puiseux series (the distances between
points ``4x`` closer to ``t = 1`` shrink like a ``1/c``-th power, the same ``c`` twice
running: :func:`puiseux_winding`), and it may cost at most what the path did.

The tracker (:mod:`~symbolic_inversion.solvers.tracking`) supplies the path's calculus:
``velocity(u, t)`` (``du/dt``) and ``correct(u, t, tolerance, iterations)`` (Newton on
the homotopy at a complex ``t``); the endgame knows nothing about the homotopy.
"""

import math
from dataclasses import dataclass

import mpmath

from ..precision import precision_floor
from .path_result import PathCode, PathResult

__all__ = ["CauchyResult", "cauchy_endgame", "cauchy_finish", "keep_anchor",
           "puiseux_exponent", "puiseux_winding", "ANCHOR_RATIO"]

# The tracker keeps a point each time 1 - t has fallen by this factor past its endgame
# start: the candidate radii of the loops, and the samples of the Puiseux test.
ANCHOR_RATIO = 4.0
# A loop starts at least this many times farther from t = 1 than where the tracker
# stopped (there the steps had already failed).
CLEARANCE = 16.0
# ... and no nearer than this: at radius rho the branches of a path with winding number c
# are about rho^(1/c) apart, and a loop must not mistake a neighbouring branch (within
# the closing tolerance) for its start
MIN_RADIUS = 1e-8


@dataclass
class CauchyResult:
    """The endgame's outcome: ``u`` the estimate of the endpoint (``None`` on failure),
    ``winding`` the winding number, ``radius`` the loop's ``rho``, ``error`` an estimate
    of the trapezoid rule's error (the mean over half the nodes against the mean over
    all), ``steps`` the node-to-node steps taken, ``reason`` why it failed."""

    u: object = None
    winding: int = 0
    radius: float = None
    error: float = None
    steps: int = 0
    reason: str = ""


def puiseux_exponent(anchors, norm):
    """The exponent ``1/c`` of ``|u(t_k) - u(t_{k+1})| ~ (1 - t_k)^{1/c}`` from the last
    three ``anchors`` (``(t, u)`` pairs, ``t`` increasing), or ``None`` with fewer.

    >>> import numpy as np
    >>> anchors = [(1 - 4.0 ** -k, np.array([1 + 2.0 ** -k])) for k in range(3, 7)]
    >>> round(puiseux_exponent(anchors, lambda v: float(np.max(np.abs(v)))), 6)
    0.5
    """
    if len(anchors) < 3:
        return None
    (t0, u0), (t1, u1), (t2, u2) = anchors[-3:]
    first, second = norm(u1 - u0), norm(u2 - u1)
    if not (first > 0 and second > 0) or not math.isfinite(first + second):
        return None
    return math.log(first / second) / math.log((1 - t0) / (1 - t1))


# Both exponents of the last two triples of anchors must lie this close to one 1/c
EXPONENT_TOLERANCE = 0.05


def puiseux_winding(anchors, norm, max_winding):
    """The winding number ``c <= max_winding`` whose ``1/c`` both of the last two
    :func:`puiseux_exponent` estimates match to :data:`EXPONENT_TOLERANCE`, or ``None``:
    the test that the path has settled into its Puiseux series (measured: where it has
    not, e.g. the single neuron at n = 24 stalling next to t = 1, the estimates wander
    between -0.5 and 0.8 and loops never close).

    >>> import numpy as np
    >>> anchors = [(1 - 4.0 ** -k, np.array([1 + 2.0 ** -k])) for k in range(3, 7)]
    >>> puiseux_winding(anchors, lambda v: float(np.max(np.abs(v))), 4)
    2
    """
    last, before = puiseux_exponent(anchors, norm), puiseux_exponent(anchors[:-1], norm)
    if last is None or before is None:
        return None
    for c in range(1, max_winding + 1):
        if abs(last - 1 / c) <= EXPONENT_TOLERANCE and \
                abs(before - 1 / c) <= EXPONENT_TOLERANCE:
            return c
    return None


def cauchy_endgame(arithmetic, velocity, correct, anchors, stopped_at, norm, points=8,
                   max_loops=4, tolerance=1e-6, closing=1e-6, radii=2, exhausted=None):
    """Loops around ``t = 1`` from the ``anchors`` (a list of ``(t, u)`` on the path,
    ``t`` increasing, each about :data:`ANCHOR_RATIO` times nearer ``t = 1`` than the
    one before) at least :data:`CLEARANCE` times farther from the end than
    ``stopped_at`` (and at least :data:`MIN_RADIUS` from it), where the path up to the
    anchor behaves like a Puiseux series of winding number at most ``max_loops``
    (:func:`puiseux_winding`); the nearest such
    anchor first, then up to ``radii - 1`` farther ones when a loop fails.  A
    :class:`CauchyResult`.

    ``velocity(u, t)``: ``du/dt`` or ``None`` (singular); ``correct(u, t, tolerance,
    iterations)``: Newton on the homotopy at ``t`` (arithmetic numbers) to the relative
    ``tolerance`` or, with ``tolerance=None``, to the working precision; ``u`` or
    ``None``; ``norm``: the arithmetic's max-norm.  ``tolerance``: the relative accuracy
    of the steps between nodes; a loop is closed when it returns to its start within
    ``closing`` (relative); ``points`` nodes per loop, at most ``max_loops`` loops.
    ``exhausted()``: whether the caller's budget is spent (checked at every step).
    """
    A = arithmetic
    room = 1.0 - stopped_at
    eligible = []
    for k in reversed(range(len(anchors))):
        t, u = anchors[k]
        if 1.0 - t >= max(CLEARANCE * room, MIN_RADIUS) and \
                puiseux_winding(anchors[:k + 1], norm, max_loops) is not None:
            eligible.append((t, u))
    if not eligible:
        return CauchyResult(reason="no point of the path far enough from t = 1 where "
                            "it behaves like a Puiseux series")
    failures, steps = [], 0
    for t_anchor, u_anchor in eligible[:radii]:
        result = _loops(A, velocity, correct, t_anchor, u_anchor, points, max_loops,
                        tolerance, closing, exhausted or (lambda: False))
        steps += result.steps
        result.steps = steps
        if result.u is not None:
            return result
        failures.append(f"rho = {1 - t_anchor:.1e}: {result.reason}")
        if result.reason == SPENT:
            break
    return CauchyResult(steps=steps, reason="; ".join(failures))


def keep_anchor(state, endgame):
    """Keep the tracker's new point (``state.t``, ``state.u``) as an anchor when it is
    past ``endgame`` and :data:`ANCHOR_RATIO` times nearer ``t = 1`` than the last."""
    anchors, t = state.anchors, state.t
    if endgame <= t < 1.0 and (not anchors or 1.0 - t <= (1.0 - anchors[-1][0])
                               / ANCHOR_RATIO):
        anchors.append((t, state.u))


def cauchy_finish(tracker, state, failure):
    """The Cauchy endgame where the tracker stopped next to ``t = 1`` (``failure``: a
    :class:`~symbolic_inversion.solvers.path_result.PathResult` with ``t`` and ``last``):
    the path's result from the loops' mean, or ``failure`` itself (its reason extended)
    when the endgame does not apply or does not close its loops.

    The endgame may cost at most what the path did (measured before the budget: on the
    neuron n = 24, loops that never closed cost ten times the path).  A loop is closed
    when it is back at its start to the precision floor: its nodes are corrected to the
    working precision, and a neighbouring branch may be as near as ``rho^(1/c)``.
    """
    o, A = tracker.options, tracker.arithmetic
    if not o.cauchy or failure.t is None or failure.t < o.endgame:
        return failure
    budget = 2 * state.evaluations
    loops = cauchy_endgame(
        A, lambda u, t: tracker.velocity(state, u, t),
        lambda u, t, tolerance, iterations: tracker.correct_at(state, u, t, tolerance,
                                                               iterations),
        state.anchors, failure.t, A.norm, o.cauchy_points, o.cauchy_loops, o.tolerance,
        precision_floor(o.dps), exhausted=lambda: state.evaluations > budget)
    spent = failure.steps + loops.steps
    if loops.u is None:
        failure.reason += f"; Cauchy endgame: {loops.reason}"
        failure.steps = spent
        return failure
    how = f"Cauchy endgame (winding number {loops.winding}, radius {loops.radius:.1e})"
    end = tracker.final_newton(state, loops.u, 40)
    if end.converged and math.isfinite(A.norm(end.u)):
        tracker.note(state, 1.0, end.u)
        return PathResult(PathCode.SUCCESS, end.u, spent, failure.newton + end.iterations,
                          how, t=1.0, winding=loops.winding)
    # a singular root (winding number above 1) or an ill-conditioned one: Newton does not
    # converge there; the loops' mean is the best estimate of the endpoint (to about
    # loops.error), for the caller to refine
    why = ("a singular root" if loops.winding > 1 else
           "an ill-conditioned root, or a branch point inside the loop")
    tracker.note(state, 1.0, loops.u)
    return PathResult(PathCode.ENDGAME_FAILED, None, spent, failure.newton,
                      f"{how}: Newton did not converge at t = 1 from its estimate ({why}; "
                      f"estimate error {loops.error:.1e})", t=1.0, last=loops.u,
                      winding=loops.winding)


SPENT = "the budget is spent"


def _loops(A, velocity, correct, t_anchor, u_anchor, points, max_loops, tolerance, closing,
           exhausted):
    one = mpmath.mpf(1)
    rho = one - mpmath.mpf(t_anchor)

    def t_at(theta):
        return A.number(one - rho * mpmath.expj(theta))

    start = correct(u_anchor, t_at(0), None, 8)
    if start is None:
        return CauchyResult(radius=float(rho), reason="Newton failed at the loop's start")
    scale = 1.0 + A.norm(start)
    nodes, u, steps = [start], start, 0
    width = 2 * mpmath.pi / points
    for loop in range(1, max_loops + 1):
        for k in range(points):
            theta = width * ((loop - 1) * points + k)
            u, spent = _advance(A, velocity, correct, u, theta, width, t_at, tolerance,
                                exhausted)
            steps += spent
            if u is None:
                return CauchyResult(radius=float(rho), steps=steps, reason=SPENT
                                    if exhausted() else
                                    f"the loop failed at node {k + 1} of loop {loop}")
            nodes.append(u)
        if A.norm(u - start) <= closing * scale:
            samples = nodes[:-1]
            mean = sum(samples[1:], samples[0]) * A.number(mpmath.mpf(1) / len(samples))
            half = sum(samples[2::2], samples[0]) * A.number(mpmath.mpf(2) / len(samples))
            return CauchyResult(mean, loop, float(rho), A.norm(mean - half), steps)
    return CauchyResult(radius=float(rho), steps=steps,
                        reason=f"the path did not return to its start in {max_loops} loops")


def _advance(A, velocity, correct, u, theta, width, t_at, tolerance, exhausted, depth=3):
    """``u`` at the angle ``theta + width`` from ``u`` at ``theta``: fourth-order
    Runge-Kutta in the angle, corrected at the node to the working precision; the step
    is split in halves (at most ``depth`` times) where the corrector fails."""
    minus_i = A.number(mpmath.mpc(0, -1))

    def rate(v, angle):
        t = t_at(angle)
        du_dt = velocity(v, t)
        # dt/dtheta = -i rho e^{i theta} = -i (1 - t)
        return None if du_dt is None else du_dt * (minus_i * (A.number(1) - t))

    def step(v, angle, h, final):
        k1 = rate(v, angle)
        k2 = None if k1 is None else rate(v + k1 * A.number(h / 2), angle + h / 2)
        k3 = None if k2 is None else rate(v + k2 * A.number(h / 2), angle + h / 2)
        k4 = None if k3 is None else rate(v + k3 * A.number(h), angle + h)
        if k4 is None:
            return None
        guess = v + (k1 + k2 * 2 + k3 * 2 + k4) * A.number(h / 6)
        return correct(guess, t_at(angle + h), None if final else tolerance, 8 if final else 4)

    spent, pieces = 0, 1
    for _ in range(depth + 1):
        h, v = width / pieces, u
        for piece in range(pieces):
            if exhausted():
                return None, spent
            spent += 1
            v = step(v, theta + piece * h, h, piece == pieces - 1)
            if v is None:
                break
        if v is not None:
            return v, spent
        pieces *= 2
    return None, spent
