"""The cold-start recovery pipeline: a front end over the tracker and the judge.

1. **Count**: fewer equations than unknowns is refused at once (``underdetermined``).
2. **Global search** on a square subsystem (the first steps): one *path* per attempt
   (:class:`~symbolic_inversion.solvers.homotopies.MomentHomotopy` or
   :class:`~symbolic_inversion.solvers.homotopies.ParameterHomotopy`, followed by the
   :class:`~symbolic_inversion.solvers.tracking.Tracker`), each with its own random
   ``gamma`` / start, in complex multiprecision at
   :func:`~symbolic_inversion.precision.tracking_dps`.
3. **Judgement** by the :class:`~symbolic_inversion.solvers.judge.Judge`: Gauss-Newton on
   *all* steps at :func:`~symbolic_inversion.precision.refine_dps`, then the candidate
   must explain every step of the trace to its rounding, including the steps the global
   search did not use, and the Jacobian must have full rank.  A wrong root of the square
   subsystem is rejected here and the next attempt runs.
4. **Uniqueness**: when the trace has no equations beyond the unknowns, nothing can
   reject a wrong root; a second independent path must then reach the same dataset, and
   two different datasets that both explain the trace give ``not_unique`` (the judge's
   ``"confirm"`` policy).
5. **Fallbacks**: a path that stalled next to ``t = 1`` is refined from where it stopped;
   when no path reaches a real root, the real parts of complex endpoints start
   least-squares fits, and a trace whose paths end at roots far from any dataset is
   called ``inconsistent``.
"""

import random
import time

import mpmath

from ..precision import refine_dps, tracking_dps
from ..report.progress import Progress
from ..system import InversionSystem
from .evaluation import backend_name, real_arithmetic, trace_evaluator
from .homotopies import MomentHomotopy, ParameterHomotopy, solve_steps, taylor_radius
from .judge import Judge, elapsed
from .options import solver
from .solution import Solution, Status, same_dataset
from .tracking import PathCode, PathResult, Tracker, TrackerOptions, random_gamma

__all__ = ["run_pipeline", "PATHS", "same_dataset", "solve_cold_start", "solve_moments",
           "solve_homotopy", "parameter_homotopy_path", "moment_homotopy_path"]


def _track(homotopy_of, trace, steps, arithmetic, rng, dps, record=None, **info):
    """Track one path in the complex sibling of ``arithmetic`` at ``dps`` digits
    (``record``: a list for the path's points, see :meth:`Tracker.track`)."""
    complex_ = arithmetic.complexify()
    with complex_.workdps(dps):
        evaluator = trace_evaluator(trace, complex_, steps)
        homotopy = homotopy_of(evaluator, complex_)
        gamma = random_gamma(rng)
        path = Tracker(complex_, TrackerOptions(dps)).track(homotopy, gamma, record=record)
    return path, dict({"gamma": mpmath.nstr(gamma, 6)}, **info)


def parameter_homotopy_path(trace, steps, arithmetic, rng, dps, record=None):
    """One path of the parameter homotopy on ``steps``: ``(PathResult, info)``."""
    return _track(lambda ev, A: ParameterHomotopy(ev, A, rng), trace, steps, arithmetic,
                  rng, dps, record)


def moment_homotopy_path(trace, steps, arithmetic, rng, dps, record=None):
    """One path of the moment homotopy on ``steps``: ``(PathResult, info)``."""
    network = trace.network
    if network.input_width != 1 or network.output_width != 1:
        return PathResult(PathCode.NO_START, reason="the moment homotopy needs one input "
                          "and one output"), {}
    if any(len(trace.batch(j)) != trace.samples for j in steps):
        return PathResult(PathCode.NO_START, reason="the moment homotopy needs full "
                          "batches (every sample at every step)"), {}
    radius = taylor_radius(trace, steps)
    return _track(lambda ev, A: MomentHomotopy(ev, A, rng, radius, len(steps)), trace,
                  steps, arithmetic, rng, dps, record, radius=radius)


PATHS = {"homotopy": parameter_homotopy_path, "moments": moment_homotopy_path}


def _schedule(method, attempts):
    """Which path to run at each attempt: a list of kinds is tried in turn."""
    if isinstance(method, (list, tuple)):
        return [method[k % len(method)] for k in range(attempts)]
    return [method] * attempts


def _record(path, info, kind):
    """The JSON-able summary of a path."""
    info = dict(info, path=kind, code=path.code.value, path_steps=path.steps,
                newton=path.newton, reason=path.reason)
    if path.imaginary is not None:
        info["imaginary"] = path.imaginary
    if path.stalled_near_end:
        info["stalled_at"] = path.t
    return info


def _endpoint(path, arithmetic):
    """Where a path that did not reach a real root ended (complex root or a stall next to
    ``t = 1``), as mpmath numbers; ``None`` otherwise."""
    to_mp = arithmetic.to_mpmath
    if path.code is PathCode.COMPLEX_END:
        return [to_mp(v) for v in path.u]
    if path.stalled_near_end:
        return [to_mp(v) for v in path.last]
    return None


def run_pipeline(trace, method, dps=None, steps=None, backend=None, attempts=4, seed=0,
                 homotopy_steps=None, progress=None, record_paths=False):
    """Recover the data of ``trace`` with global paths of kind ``method``.

    Parameters
    ==========

    trace : Trace
    method : str or list of str
        A key of :data:`PATHS`, or a list tried in turn (one path per attempt).
    dps : int, optional
        Precision of the refinement (raised to :func:`~symbolic_inversion.precision.
        refine_dps` if lower).
    steps : int, optional
        Use only the first ``steps`` steps.
    backend : ``"mpmath"``, ``"arb"`` (``"flint"``) or ``None`` (arb if installed)
    attempts : int
        Paths tried before giving up.
    seed : int
        Seeds the random ``gamma`` and start data: results are reproducible.
    progress : None, bool, callable or Progress
        Events per phase and per path (see :mod:`symbolic_inversion.report.progress`).
    record_paths : bool
        Keep the points of every path in ``stats["paths"][k]["points"]``
        (``[t, [[re, im] per unknown]]`` per accepted step), for plotting.
    """
    started = time.perf_counter()
    progress = Progress.create(progress)
    arithmetic = real_arithmetic(backend)
    system = InversionSystem.from_trace(trace, steps)
    counts = system.counts
    name = method if isinstance(method, str) else "+".join(method)
    base = {"method": name, "backend": backend_name(arithmetic),
            "equations": counts["equations"], "unknowns": counts["unknowns"]}
    progress.event("count", equations=counts["equations"], unknowns=counts["unknowns"])
    if counts["equations"] < counts["unknowns"]:
        base["time"] = elapsed(started)
        return Solution([], Status.UNDERDETERMINED, None, 0, base,
                        f"{counts['equations']} equations for {counts['unknowns']} unknowns: "
                        f"at least {counts['min_steps']} steps are needed")
    spare = counts["equations"] > counts["unknowns"]
    track_dps = tracking_dps(trace)
    history = []
    judge = Judge(system, refine_dps(trace, dps), arithmetic, name,
                  policy="first" if spare else "confirm", started=started,
                  stats=dict(base, tracking_dps=track_dps, paths=history))
    square = solve_steps(trace, square=homotopy_steps)
    complex_ends = []

    def judged(u, info, attempt):
        """The judge's verdict on ``u`` (refined on every step), reported as progress."""
        progress.event("refine", attempt=attempt + 1, of=attempts)
        final = judge.add(judge.judge_vector(u, info, attempts=attempt + 1))
        progress.event("judge", attempt=attempt + 1, of=attempts, status=info.get("status"))
        return final

    schedule = _schedule(method, attempts)
    for attempt in range(attempts):
        kind = schedule[attempt]
        if attempt and history[-1].get("refined_from_stall") and history[-1]["path"] == kind:
            # a stall that refinement could not rescue means a nearly singular end of this
            # kind's path (measured at n = 24: clustered inputs): give another kind a turn
            kind = next((k for k in schedule[attempt:] if k != kind), kind)
        # string seeds: consecutive integer seeds give nearly equal first draws (gammas)
        rng = random.Random(f"symbolic_inversion:{seed}:{attempt}")
        progress.event("search", attempt=attempt + 1, of=attempts, kind=kind)
        points = [] if record_paths else None
        path, info = PATHS[kind](trace, square, arithmetic, rng, track_dps, record=points)
        info = _record(path, info, kind)
        if record_paths:
            info["points"] = points
        history.append(info)
        progress.event("path", attempt=attempt + 1, of=attempts, kind=kind,
                       status="real root" if path.real is not None else path.reason or "?")
        u = path.real
        endpoint = _endpoint(path, arithmetic.complexify())
        if u is None and path.stalled_near_end:
            # Stalled just before t = 1: usually next to a root that is too ill-conditioned
            # for the tracking precision (measured at n = 24); refine it on every step at
            # the refinement precision, and let the judge decide.
            u = [mpmath.re(v) for v in endpoint]
            info["refined_from_stall"] = True
        if u is None:
            if endpoint is not None:
                complex_ends.append((attempt, info, endpoint))
            continue
        final = judged(u, info, attempt)
        if final is not None:
            return final
    if not judge.accepted and complex_ends:
        # No path reached a real root.  The real parts of the complex roots start a real
        # least-squares fit on every step: it may still reach the data (then the judge
        # vouches for it), and otherwise its residual measures how far the trace is from
        # anything a dataset of this size explains.
        tried = []
        for attempt, info, endpoint in complex_ends:
            start = [mpmath.re(v) for v in endpoint]
            if any(max(abs(a - b) for a, b in zip(start, other)) < 1e-6 for other in tried):
                continue
            tried.append(start)
            info["least_squares_from_real_part"] = True
            final = judged(start, info, attempt)
            if final is not None:
                return final
    stats = dict(base, attempts=len(history), paths=history)
    if judge.accepted:
        return judge.verdict(stats, "")
    stats["time"] = elapsed(started)
    # A path "decides" when it ends at a root of the square subsystem (a real one, then
    # refined and judged, or a complex one) or diverges to infinity.  Paths that stalled
    # say nothing about the trace.
    decided = sum(1 for h in history if h["code"] in ("success", "complex_end", "at_infinity"))
    best = judge.best_rejected()
    if best is not None:
        # Only a residual far above the rounding allowance, from at least two paths that
        # ended at roots, says "no such dataset"; just above it, the trace may be too
        # short or too rounded for n samples.
        if best.status is Status.INCONSISTENT and spare and decided >= 2 \
                and best.residual > 1000 * best.stats["tolerance"]:
            best.stats.update(stats)
            best.detail = (f"{decided} of {len(history)} paths ended at roots of the square "
                           f"subsystem or at infinity, none of them a dataset that explains "
                           f"the trace; the best real least-squares fit found on all "
                           f"{system.steps} steps leaves residual "
                           f"{mpmath.nstr(best.residual, 3)} (the trace's rounding allows "
                           f"{mpmath.nstr(best.stats['tolerance'], 3)}): no dataset of "
                           f"{trace.samples} samples was found that explains the trace")
            return best
        return Solution(best.samples, Status.NOT_CONVERGED, best.residual, 0, stats,
                        f"{len(history)} paths tried; the best candidate is "
                        f"{best.status.value}: {best.detail}")
    reasons = "; ".join(sorted({h.get('reason') or '?' for h in history}))
    return Solution([], Status.NOT_CONVERGED, None, 0, stats,
                    f"none of {len(history)} paths reached a real root ({reasons})")


def _run(trace, kinds, options):
    return run_pipeline(trace, kinds, options.dps, options.steps, options.backend,
                        options.attempts_or(6), options.seed, progress=options.progress,
                        record_paths=options.record_paths)


@solver
def solve_moments(trace, options):
    """Moment homotopy paths (one input, one output), refined and judged."""
    return _run(trace, "moments", options)


@solver
def solve_homotopy(trace, options):
    """Parameter homotopy paths (any network), refined and judged."""
    return _run(trace, "homotopy", options)


@solver
def solve_cold_start(trace, options):
    """The default for several samples: moment homotopy paths where the network has one
    input and one output (two of every three attempts), parameter homotopy otherwise.

    Examples
    ========

    The paper's Table 2 data from an exact 50-digit trace of four steps:

    >>> import mpmath
    >>> from symbolic_inversion import Network, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=50)
    >>> solution = solve_cold_start(trace)
    >>> solution.status.value, solution.digits >= 40
    ('converged', True)
    >>> sorted(mpmath.nstr(x[0], 30) for x in solution.inputs)
    ['0.2', '0.6']
    """
    network = trace.network
    if network.input_width == 1 and network.output_width == 1:
        kinds = ["moments", "moments", "homotopy"]
    else:
        kinds = ["homotopy"]
    return _run(trace, kinds, options)
