"""The recovery pipeline shared by the global solvers.

1. **Count**: fewer equations than unknowns is refused at once (``underdetermined``).
2. **Global search** on a square subsystem (the first steps): one *path* per attempt
   (moment homotopy, parameter homotopy or a least-squares start), each with its own
   random ``gamma`` / start, in complex multiprecision at :func:`tracking_dps`.
3. **Refinement**: Gauss-Newton on *all* steps at :func:`refine_dps` (labels and inputs
   together; the labels enter linearly and converge in one step).
4. **Judgement** by :func:`assess`: the candidate must explain every step of the trace
   to its rounding, including the steps the global search did not use, and the Jacobian
   must have full rank.  A wrong root of the square subsystem is rejected here and the
   next attempt runs.
5. **Uniqueness**: when the trace has no equations beyond the unknowns, nothing can
   reject a wrong root; a second independent path must then reach the same dataset, and
   two different datasets that both explain the trace give ``not_unique``.
"""

import random
import time

import mpmath

from ..backends import get_backend
from ..errors import NotSupportedError
from ..system import InversionSystem
from .assess import assess
from .homotopy import parameter_homotopy_path, solve_steps, tracking_dps
from .refine import gauss_newton, refine_dps
from .solution import Solution, Status, same_dataset

__all__ = ["run_pipeline", "PATHS", "same_dataset", "solve_cold_start", "solve_moments",
           "solve_homotopy"]


def _moment_path(*args):
    from .moments import moment_homotopy_path
    return moment_homotopy_path(*args)


PATHS = {"homotopy": parameter_homotopy_path, "moments": _moment_path}


def _schedule(method, attempts):
    """Which path to run at each attempt: ``auto`` mixes methods."""
    if isinstance(method, (list, tuple)):
        return [method[k % len(method)] for k in range(attempts)]
    return [method] * attempts


def run_pipeline(trace, method, dps=None, steps=None, backend=None, attempts=4, seed=0,
                 homotopy_steps=None):
    """Recover the data of ``trace`` with global paths of kind ``method``.

    Parameters
    ==========

    trace : Trace
    method : str or list of str
        A key of :data:`PATHS`, or a list tried in turn (one path per attempt).
    dps : int, optional
        Precision of the refinement (raised to :func:`refine_dps` if lower).
    steps : int, optional
        Use only the first ``steps`` steps.
    backend : ``"mpmath"``, ``"flint"`` or ``None`` (flint if installed)
    attempts : int
        Paths tried before giving up.
    seed : int
        Seeds the random ``gamma`` and start data: results are reproducible.
    """
    started = time.perf_counter()
    if "relu" in trace.network.activations:
        # Paths are tracked through complex space, where relu's step has no meaning.
        raise NotSupportedError("homotopy paths need analytic activations; relu networks: "
                                "method='relu' (relu hidden layers, identity output)")
    backend = get_backend(backend)
    system = InversionSystem.from_trace(trace, steps)
    counts = system.counts
    name = method if isinstance(method, str) else "+".join(method)
    base = {"method": name, "backend": backend.name, "equations": counts["equations"],
            "unknowns": counts["unknowns"]}
    if counts["equations"] < counts["unknowns"]:
        base["time"] = round(time.perf_counter() - started, 4)
        return Solution([], Status.UNDERDETERMINED, None, 0, base,
                        f"{counts['equations']} equations for {counts['unknowns']} unknowns: "
                        f"at least {counts['min_steps']} steps are needed")
    spare = counts["equations"] > counts["unknowns"]
    track_dps = tracking_dps(trace)
    polish_dps = refine_dps(trace, dps)
    square = solve_steps(trace, square=homotopy_steps)
    history, accepted, rejected, complex_ends = [], [], [], []
    d = trace.network.input_width
    width = d + trace.network.output_width

    def judge(u, attempt, info):
        """Refine ``u`` on every step and let :func:`assess` decide."""
        inputs = [u[i * width: i * width + d] for i in range(trace.samples)]
        labels = [u[i * width + d: (i + 1) * width] for i in range(trace.samples)]
        inputs, labels, polish = gauss_newton(trace, inputs, labels, polish_dps,
                                              steps=system.steps, backend=backend)
        info["refine_iterations"] = polish["iterations"]
        with mpmath.workdps(polish_dps):
            stats = dict(base, attempts=attempt + 1, tracking_dps=track_dps,
                         refine_iterations=polish["iterations"], paths=history)
            solution = assess(system, inputs, labels, name, started, polish_dps, stats)
        info["status"] = solution.status.value
        return solution

    def settle(solution):
        """``None`` to go on searching, or the final :class:`Solution`."""
        if not solution.ok:
            rejected.append(solution)
            return None
        if spare:
            return solution
        if any(not same_dataset(solution.samples, other.samples,
                                mpmath.mpf(10) ** (-max(other.digits, 3)))
               for other in accepted):
            first = accepted[0]
            return Solution(first.samples + solution.samples, Status.NOT_UNIQUE,
                            solution.residual, 0, solution.stats,
                            "two different datasets explain every step (both listed); the "
                            "trace has no spare steps to tell them apart, add steps")
        accepted.append(solution)
        if len(accepted) == 2:
            accepted[0].detail = ("square system: no spare steps to reject other roots; "
                                  "two independent paths reached this dataset")
            accepted[0].stats["time"] = round(time.perf_counter() - started, 4)
            return accepted[0]
        return None

    schedule = _schedule(method, attempts)
    for attempt in range(attempts):
        kind = schedule[attempt]
        if attempt and history[-1].get("refined_from_stall") and history[-1]["path"] == kind:
            # a stall that refinement could not rescue means a nearly singular end of this
            # kind's path (measured at n = 24: clustered inputs): give another kind a turn
            kind = next((k for k in schedule[attempt:] if k != kind), kind)
        # string seeds: consecutive integer seeds give nearly equal first draws (gammas)
        rng = random.Random(f"symbolic_inversion:{seed}:{attempt}")
        u, info = PATHS[kind](trace, square, backend, rng, track_dps)
        endpoint = info.pop("endpoint", None)
        info = dict(info, path=kind)
        history.append(info)
        if u is None and endpoint is not None and "stalled_at" in info:
            # Stalled just before t = 1: usually next to a root that is too ill-conditioned
            # for the tracking precision (measured at n = 24); refine it on every step at
            # the refinement precision, and let assess judge.
            u = [mpmath.re(v) for v in endpoint]
            info["refined_from_stall"] = True
        if u is None:
            if endpoint is not None:
                complex_ends.append((attempt, info, endpoint))
            continue
        final = settle(judge(u, attempt, info))
        if final is not None:
            return final
    if not accepted and complex_ends:
        # No path reached a real root.  The real parts of the complex roots start a real
        # least-squares fit on every step: it may still reach the data (then assess
        # vouches for it), and otherwise its residual measures how far the trace is from
        # anything a dataset of this size explains.
        tried = []
        for attempt, info, endpoint in complex_ends:
            start = [mpmath.re(v) for v in endpoint]
            if any(max(abs(a - b) for a, b in zip(start, other)) < 1e-6 for other in tried):
                continue
            tried.append(start)
            info["least_squares_from_real_part"] = True
            final = settle(judge(start, attempt, info))
            if final is not None:
                return final
    stats = dict(base, attempts=len(history), paths=history,
                 time=round(time.perf_counter() - started, 4))
    if accepted:
        solution = accepted[0]
        solution.detail = ("square system: no spare steps to reject other roots and only one "
                           "path reached this dataset")
        return solution
    # A path "decides" when it ends at a root of the square subsystem (a real one, then
    # refined and judged, or a complex one) or diverges to infinity.  Paths that stalled
    # say nothing about the trace.
    decided = sum(1 for h in history
                  if "imaginary" in h or "went to infinity" in (h.get("reason") or ""))
    if rejected:
        best = min(rejected, key=lambda s: s.residual if mpmath.isfinite(s.residual)
                   else mpmath.inf)
        # Only a residual far above the rounding allowance, from at least two paths that
        # ended at roots, says "no such dataset"; just above it, the trace may be too
        # short or too rounded for n samples.
        if best.status is Status.INCONSISTENT and spare and decided >= 2 \
                and best.residual > 1000 * best.stats["tolerance"]:
            best.stats.update(stats)
            best.detail = (f"{decided} of {len(history)} paths ended at roots of the square "
                           f"subsystem or at infinity, none of them a dataset that explains the trace; the "
                           f"best real least-squares fit found on all {system.steps} steps leaves "
                           f"residual {mpmath.nstr(best.residual, 3)} (the trace's rounding "
                           f"allows {mpmath.nstr(best.stats['tolerance'], 3)}): no dataset of "
                           f"{trace.samples} samples was found that explains the trace")
            return best
        return Solution(best.samples, Status.NOT_CONVERGED, best.residual, 0, stats,
                        f"{len(history)} paths tried; the best candidate is "
                        f"{best.status.value}: {best.detail}")
    reasons = "; ".join(sorted({h.get('reason') or '?' for h in history}))
    return Solution([], Status.NOT_CONVERGED, None, 0, stats,
                    f"none of {len(history)} paths reached a real root ({reasons})")


def solve_moments(trace, dps=None, steps=None, backend=None, attempts=6, seed=0):
    """Moment homotopy paths (one input, one output), refined and judged."""
    return run_pipeline(trace, "moments", dps, steps, backend, attempts, seed)


def solve_homotopy(trace, dps=None, steps=None, backend=None, attempts=6, seed=0):
    """Parameter homotopy paths (any network), refined and judged."""
    return run_pipeline(trace, "homotopy", dps, steps, backend, attempts, seed)


def solve_cold_start(trace, dps=None, steps=None, backend=None, attempts=6, seed=0):
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
    return run_pipeline(trace, kinds, dps, steps, backend, attempts, seed)
