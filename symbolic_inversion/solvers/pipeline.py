"""The cold-start recovery pipeline: a front end over the tracker and the judge.

1. **Count**: fewer equations than unknowns is refused at once (``underdetermined``).
2. **Global search**: one attempt at a time, each of a *kind*: a *path* on a square
   subsystem (the first steps) of the
   :class:`~symbolic_inversion.solvers.homotopies.MomentHomotopy` or the
   :class:`~symbolic_inversion.solvers.homotopies.ParameterHomotopy`, followed by the
   :class:`~symbolic_inversion.solvers.tracking.Tracker` with its own random ``gamma``
   and start (complex128 first, multiprecision at
   :func:`~symbolic_inversion.precision.tracking_dps` where double fails); or a
   *projected search* (:func:`projected_search`): float64 least-squares fits of the
   inputs on every step with the labels eliminated, from random starts; or the *span
   start* (:func:`~symbolic_inversion.solvers.span.span_search`, tried first where one
   step's first-layer gradient has rank ``n``): each sample from its own small system.
   Paths that end at complex roots or stall are polished by the same float64 fit from
   their real part.
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
   when the judge rejects that, a parameter path *restarts* from the real part of where
   it stopped (:data:`RESTARTS`; the neuron from n = 32), and when one of its samples
   vanishes (clustered data) the *split endgame*
   (:func:`split_starts`) starts short paths with that sample next to each other one;
   rounds beyond the third run on small systems (:func:`rounds_for`); when no path
   reaches a real root, the real parts of complex endpoints start
   least-squares fits, and a trace whose paths end at roots far from any dataset is
   called ``inconsistent``.
"""

import math
import random
import time

import mpmath
import numpy as np

from ..errors import NotSupportedError
from ..precision import double_tracking_dps, refine_dps, tracking_dps
from ..report.progress import Progress
from ..system import InversionSystem, system_counts
from .evaluation import backend_name, real_arithmetic, trace_evaluator
from .executors import one_blas_thread
from .homotopies import MomentHomotopy, ParameterHomotopy, solve_steps, taylor_radius
from .judge import Judge, elapsed
from .newton import gauss_newton
from .options import solver
from .projection import FitCode, ProjectedSystem, projected_fit, random_inputs
from .solution import Solution, Status, same_dataset
from .span import span_applies, span_search
from .symmetries import canonical_vector, suspect_pairs
from .tracking import PathCode, PathResult, Tracker, TrackerOptions, random_gamma

__all__ = ["run_pipeline", "PATHS", "same_dataset", "solve_cold_start", "solve_moments",
           "solve_homotopy", "parameter_homotopy_path", "moment_homotopy_path",
           "rescaled_moment_homotopy_path", "path_task",
           "rounds_for", "split_starts", "split_path"]


def _track(homotopy_of, trace, steps, arithmetic, rng, dps, record=None, max_steps=None,
           **info):
    """Track one path in the complex sibling of ``arithmetic`` at ``dps`` digits
    (``record``: a list for the path's points, see :meth:`Tracker.track`)."""
    complex_ = arithmetic.complexify()
    options = TrackerOptions(dps) if max_steps is None else TrackerOptions(dps, max_steps)
    with complex_.workdps(dps):
        evaluator = trace_evaluator(trace, complex_, steps)
        homotopy = homotopy_of(evaluator, complex_)
        gamma = random_gamma(rng)
        path = Tracker(complex_, options).track(homotopy, gamma, record=record)
    return path, dict({"gamma": mpmath.nstr(gamma, 6)}, **info)


def parameter_homotopy_path(trace, steps, arithmetic, rng, dps, record=None, used=None):
    """One path of the parameter homotopy on ``steps``: ``(PathResult, info)``."""
    return _track(lambda ev, A: ParameterHomotopy(ev, A, rng), trace, steps, arithmetic,
                  rng, dps, record)


def moment_homotopy_path(trace, steps, arithmetic, rng, dps, record=None, used=None,
                         rescale=False):
    """One path of the moment homotopy on ``steps``: ``(PathResult, info)``; in ``z = 2x -
    1`` (data in [0, 1]), or with ``rescale`` in the variable the trace's moments suggest
    (:func:`rescaled_moment_homotopy_path`)."""
    network = trace.network
    if network.input_width != 1 or network.output_width != 1:
        return PathResult(PathCode.NO_START, reason="the moment homotopy needs one input "
                          "and one output"), {}
    if any(len(trace.batch(j)) != trace.samples for j in steps):
        return PathResult(PathCode.NO_START, reason="the moment homotopy needs full "
                          "batches (every sample at every step)"), {}
    radius = taylor_radius(trace, steps)
    scales = []

    def homotopy(evaluator, arithmetic):
        """The homotopy in ``z = (x - c) / h``: ``c = h = 1/2`` (data in [0, 1]) unless
        the truncated system's first two moments put the data elsewhere; then ``c`` and
        ``h`` from those moments (twice at most: the moments of a better-centred Taylor
        head are better)."""
        moment = MomentHomotopy(evaluator, arithmetic, rng, radius, len(steps))
        for _ in range(SCALINGS if rescale else 0):
            scale = moment.data_scale()
            if scale is None or _covers(moment, *scale):
                break
            center, half = scale
            scales.append([float(center), float(half)])
            moment = MomentHomotopy(evaluator, arithmetic, rng,
                                    taylor_radius(trace, steps, float(center), float(half)),
                                    len(steps), center=center, half_width=half)
        return moment

    path, info = _track(homotopy, trace, steps, arithmetic, rng, dps, record, radius=radius)
    if scales:
        info["scales"] = scales
    return path, info


def rescaled_moment_homotopy_path(trace, steps, arithmetic, rng, dps, record=None,
                                  used=None):
    """One moment path in the variable ``z = (x - c) / h`` that the truncated system's
    first two moments suggest (the data's mean and spread; ``c = h = 1/2`` when they put
    the data in [0, 1]).  Those moments are only as good as the Taylor heads: with data
    far outside the default disk they can point the wrong way (measured: bench_networks'
    "far" dataset, inputs 5 and 8, rescaled to c = 1.06, h = 0.74: 14 paths, 15 s,
    against one default path, 0.3 s), and with data in [-1, 1.5] or [-3, 3] they are what
    reaches the data (n = 24: one path, 58 s, against eight default ones, 235 s); so the
    cold start gives the two variables alternate turns."""
    return moment_homotopy_path(trace, steps, arithmetic, rng, dps, record, used,
                                rescale=True)


# Rescalings of a moment path (:func:`rescaled_moment_homotopy_path`) before it sets out
SCALINGS = 2


def _covers(moment, center, half):
    """Whether the interval ``center +- half`` lies within the homotopy's interval
    ``c +- 1.25 h`` and is not much narrower (data in [0, 1] keep ``c = h = 1/2``)."""
    c, h = moment.center_value, moment.half_width
    return abs(center - c) + half <= 1.25 * h and half >= h / 4


# Starts per projected search: each a float64 fit of milliseconds (tens of unknowns) to
# tens of seconds (144 unknowns: 300 iterations of a 161 x 128 least-squares step); the
# count falls with the unknowns so that a search costs about the same everywhere.
FITS_PER_SEARCH = 16


def fits_per_search(unknowns):
    """Starts of one projected search: ``FITS_PER_SEARCH`` up to 40 unknowns, then fewer
    (at least 2)."""
    return max(2, min(FITS_PER_SEARCH, (40 * FITS_PER_SEARCH) // max(unknowns, 1)))


def projected_search(trace, steps, arithmetic, rng, dps, record=None, used=None):
    """Least-squares fits of the inputs with the labels projected out
    (:mod:`~symbolic_inversion.solvers.projection`), in float64 on the first ``used``
    steps (all: ``None``), from :func:`fits_per_search` random starts: ``(PathResult,
    info)``.  The first fit that reaches a root (in double, with a residual that bounds
    the inputs) ends as ``SUCCESS`` with ``real`` the unknowns; otherwise ``NO_ROOT``.
    Not a path: ``steps`` (the square subsystem) is not used."""
    projected = ProjectedSystem(search_system(trace, used))
    generator = np.random.default_rng(rng.getrandbits(64))
    codes, iterations, best = {}, 0, None
    fits = fits_per_search(projected.evaluator.unknowns)
    # A binary-float trace's rounding, not double's, sets the floor of the residual: a fit
    # at that floor whose residual does not bound the inputs in double may still be the
    # data (measured: a float64 PyTorch classifier, 6 samples, 3 Adam steps, whose fits
    # next to the data all ended ill-conditioned, the judge then vouching for 5 digits);
    # the judge refines it on every step under the rounding model and alone decides
    # (converged with its digits, or precision_limited).
    noisy = trace.dtype is not None
    for k in range(fits):
        # starts widen with the attempt: data are not always in [-1, 1]
        fit = projected_fit(projected, random_inputs(generator, projected.shape,
                                                     scale=1.0 + k // 4))
        iterations += fit.iterations
        codes[fit.code.value] = codes.get(fit.code.value, 0) + 1
        if fit.root or (noisy and fit.code is FitCode.ILL_CONDITIONED):
            return (PathResult(PathCode.SUCCESS, steps=iterations, newton=k + 1,
                               real=projected.unknowns(fit)),
                    {"fits": codes, "fit_error": fit.error})
        if best is None or fit.relative < best.relative:
            best = fit
    text = ", ".join(f"{c} {code}" for code, c in codes.items())
    return (PathResult(PathCode.NO_ROOT, steps=iterations, newton=fits,
                       reason=f"{fits} projected fits found no root ({text}; "
                              f"best relative residual {best.relative:.2g})"),
            {"fits": codes})


def search_system(trace, used=None):
    """The system a projected search fits: the first ``used`` steps (all: ``None``); for
    an optimizer whose later steps are not invertible (Adam), its invertible first
    steps' gradient form (labels linear: variable projection applies) when they have at
    least as many equations as unknowns, else the update form on every step."""
    system = InversionSystem.from_trace(trace, used)
    if system.form == "update":
        if hasattr(trace.optimizer, "select_gradients") and not trace.optimizer.amsgrad:
            return InversionSystem.from_trace(trace, used, form="selected")
        invertible = trace.optimizer.invertible_steps(system.steps)
        first = InversionSystem.from_trace(trace, invertible) if invertible else None
        if first is not None and first.counts["equations"] >= first.counts["unknowns"]:
            return first
    return system


def polish(projected, u):
    """A float64 projected fit from the inputs of the flat vector ``u`` (a path's
    endpoint): the unknowns (mpmath) if it reaches a root, else ``None``."""
    rows = np.array([float(mpmath.re(v)) for v in u]).reshape(projected.shape[0], -1)
    fit = projected_fit(projected, rows[:, :projected.shape[1]])
    return projected.unknowns(fit) if fit.root else None


# The split endgame.  Measured on 1-4-1 tanh/tanh with one step (dataset 1: two inputs
# 2e-3 apart): most parameter paths stall just before t = 1 next to a configuration with
# the close pair merged into one sample and a fifth sample whose contribution to every
# gradient vanishes (relative weight 0 to 2e-4; the others 0.19 to 0.79), free to wander.
# Refinement from there creeps (Gauss-Newton stalls at once); a parameter path started
# with the vanishing sample placed next to the merged one reaches the data in 36 to 72
# steps (6 of 6 trials), next to another sample in 1 of 2.
VANISHING = 1e-2     # a sample's weight, relative to the largest, below which it vanishes
SPLIT_SPREAD = 3e-3  # how far from its new neighbour the vanishing sample starts
SPLIT_STEPS = 200    # a split path is short: the data are near its start
# ... on systems this small (measured at 10 unknowns; not measured on larger systems whose
# paths also stall, such as the neuron's from n = 24, where each split path costs more)
SPLIT_UNKNOWNS = 30


# The restart.  Measured on the neuron with n = 32 and inputs in [-1, 1.5] (issue 26):
# every moment path (either variable, 32 or all 64 steps, 126 or 190 digits) creeps to
# t = 1 like log(1 - t) and stalls next to a complex point whose outer samples are the
# data's to 1e-5 and whose middle ones are complex-conjugate pairs 0.01-0.06 off the real
# axis; Gauss-Newton from its real part does not reach the data, though the data's
# Jacobian on those steps loses only 54 digits (126 are tracked).  A parameter path from
# that real part (its own random gamma and squaring-up) reaches the data in 14 steps.
# Each restart is one short path (``SPLIT_STEPS``); a few per search bound its cost.
RESTARTS = 3


def split_starts(projected, endpoint, rng):
    """Start data for paths from the end of a stalled path (``endpoint``, a flat vector):
    when one sample's contribution to the gradients vanishes (:meth:`~symbolic_inversion.
    solvers.projection.ProjectedSystem.sample_weights`), it is placed next to each other
    sample in turn, heaviest first, and the labels are fitted (float64).  ``[]`` when no
    sample vanishes."""
    n, d = projected.shape
    rows = np.array([float(mpmath.re(v)) for v in endpoint]).reshape(n, -1)
    X, Y = rows[:, :d], rows[:, d:]
    weights = projected.sample_weights(X, Y)
    if weights is None or not weights.max() > 0:
        return []
    weak = int(np.argmin(weights))
    if weights[weak] > VANISHING * weights.max():
        return []
    starts = []
    for j in np.argsort(-weights):
        if j == weak:
            continue
        direction = np.array([rng.gauss(0, 1) for _ in range(d)])
        moved = X.copy()
        moved[weak] = X[j] + SPLIT_SPREAD * (1 + np.max(np.abs(X[j]))) * \
            direction / np.linalg.norm(direction)
        labels = projected.labels(moved)
        if labels is not None:
            starts.append([mpmath.mpf(float(v))
                           for v in projected.evaluator.join(moved, labels)])
    return starts


def split_path(trace, steps, arithmetic, rng, dps, start):
    """One parameter-homotopy path from the data ``start`` (a flat vector, see
    :func:`split_starts`), at most ``SPLIT_STEPS`` steps: ``(PathResult, info)``."""
    return _track(lambda ev, A: ParameterHomotopy(ev, A, rng, start), trace, steps,
                  arithmetic, rng, dps, max_steps=SPLIT_STEPS)


PATHS = {"homotopy": parameter_homotopy_path, "moments": moment_homotopy_path,
         "moments_rescaled": rescaled_moment_homotopy_path, "projected": projected_search,
         "span": span_search}


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
    if path.winding is not None:
        info["winding"] = path.winding   # the Cauchy endgame ended the path
    return info


# The kind that works for every network: each parameter path has its own random start
# and gamma, and many leave for infinity early (measured: 1-4-1 tanh/tanh with one step,
# where these paths alone reach the data), so only stalls make it give its turns.
FALLBACK = "homotopy"
# A path that ends (stalled, singular, at infinity) by this t has not set out: its
# kind's start system does not lead into these data.
SET_OUT = 0.1


def _failed_at_start(path):
    return path.code in (PathCode.STALLED, PathCode.SINGULAR, PathCode.AT_INFINITY) and \
        path.t is not None and path.t <= SET_OUT


def _endpoint(path, arithmetic):
    """Where a path that did not reach a real root ended (complex root or a stall next to
    ``t = 1``), as mpmath numbers; ``None`` otherwise."""
    to_mp = arithmetic.to_mpmath
    if path.code is PathCode.COMPLEX_END:
        return [to_mp(v) for v in path.u]
    if path.stalled_near_end:
        return [to_mp(v) for v in path.last]
    return None


# Adaptive precision (issue 11): parameter-homotopy paths are tracked in hardware
# complex128 first; a path that stalls, meets a singular Jacobian or whose final Newton
# fails there is tracked again, the same path (same gamma and start), in multiprecision
# at ``tracking_dps``; so is a real endpoint whose refinement on every step did not
# settle (the pipeline asks for it).  Endpoints reached in double are refined by the
# judge in multiprecision like any other.
DOUBLE_KINDS = ("homotopy",)
# searches that run in float64 only (their candidates are refined by the judge)
DOUBLE_ONLY = ("projected", "span")
DOUBLE_FINAL = (PathCode.SUCCESS, PathCode.COMPLEX_END, PathCode.AT_INFINITY,
                PathCode.MAX_STEPS, PathCode.NO_START)


def path_task(trace, kind, square, backend, seed, attempt, dps, precision="adaptive",
              record=False, used=None):
    """One path as an independent, picklable task (what an executor's worker runs):
    ``(PathResult, info)`` with the endpoints as mpmath numbers.  The path's randomness
    comes from ``(seed, attempt)`` alone, so serial and parallel runs agree.
    ``precision``: ``"adaptive"`` (complex128 first where the kind allows, see
    ``DOUBLE_KINDS``) or ``"multiprecision"``; ``record``: keep the path's points in
    ``info["points"]`` (for plots); ``used``: the steps the pipeline uses (``None``:
    all; the projected search fits on them)."""
    with one_blas_thread():
        return _path_task(trace, kind, square, backend, seed, attempt, dps, precision,
                          record, used)


def _path_task(trace, kind, square, backend, seed, attempt, dps, precision, record, used):
    double = None
    if precision == "adaptive" and kind in DOUBLE_KINDS:
        with np.errstate(all="ignore"):  # overflow in double is a failed path, not news
            path, info = _one_path(trace, kind, square, "float64", seed, attempt,
                                   double_tracking_dps(), record, used)
        if path.code in DOUBLE_FINAL and not path.stalled_near_end:
            return path, dict(info, precision="double")
        double = path.code.value
    if kind in DOUBLE_ONLY:
        path, info = _one_path(trace, kind, square, backend, seed, attempt, dps, record, used)
        return path, dict(info, precision="double")
    path, info = _one_path(trace, kind, square, backend, seed, attempt, dps, record, used)
    return path, dict(info, precision="multiprecision",
                      **({"double": double} if double else {}))


def _one_path(trace, kind, square, backend, seed, attempt, dps, record=False, used=None):
    arithmetic = real_arithmetic(backend)
    # string seeds: consecutive integer seeds give nearly equal first draws (gammas)
    rng = random.Random(f"symbolic_inversion:{seed}:{attempt}")
    # kinds registered in PATHS before ``used`` existed take the five arguments and record
    steps_used = {} if used is None else {"used": used}
    if record:  # the path's points, for plots (``recover(..., record_paths=True)``)
        points = []
        path, info = PATHS[kind](trace, square, arithmetic, rng, dps, record=points,
                                 **steps_used)
        info = dict(info, points=points)
    else:
        path, info = PATHS[kind](trace, square, arithmetic, rng, dps, **steps_used)
    to_mp = arithmetic.complexify().to_mpmath
    for name in ("u", "last"):
        value = getattr(path, name)
        if value is not None:
            setattr(path, name, [to_mp(v) for v in value])
    return path, info


class _PathRunner:
    """Runs :func:`path_task` in order (no executor) or submits a round's paths to a
    ``concurrent.futures`` executor and collects them in attempt order; a path whose
    kind the serial rule changed is rerun with that kind, so results equal serial."""

    def __init__(self, executor, *arguments):
        self.executor, self.arguments, self.futures = executor, arguments, {}

    def _submit(self, attempt, kind, precision="adaptive"):
        trace, square, backend, seed, dps, record, used = self.arguments
        return self.executor.submit(path_task, trace, kind, square, backend, seed, attempt,
                                    dps, precision, record, used)

    def submit(self, attempts, schedule):
        if self.executor is not None:
            for attempt in attempts:
                self.futures[attempt] = (schedule[attempt],
                                         self._submit(attempt, schedule[attempt]))

    def result(self, attempt, kind, precision="adaptive"):
        if self.executor is None:
            trace, square, backend, seed, dps, record, used = self.arguments
            return path_task(trace, kind, square, backend, seed, attempt, dps, precision,
                             record, used)
        if precision != "adaptive":
            return self._submit(attempt, kind, precision).result()
        planned, future = self.futures.pop(attempt, (None, None))
        if planned != kind:
            if future is not None:
                future.cancel()
            future = self._submit(attempt, kind)
        return future.result()

    def cancel(self):
        for _, future in self.futures.values():
            future.cancel()
        self.futures.clear()


def run_pipeline(trace, method, dps=None, steps=None, backend=None, attempts=4, seed=0,
                 homotopy_steps=None, rounds=1, executor=None, progress=None,
                 record_paths=False):
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
        Paths tried before giving up (per round).
    rounds : int
        Rounds of ``attempts`` paths before giving up; rounds after the first take the
        kinds of ``method`` from the other end of the list.  Rounds beyond
        :data:`ROUNDS` run only while the candidates so far are no evidence that the
        trace is inconsistent (:func:`inconsistency_evidence`).
    executor : concurrent.futures.Executor, optional
        Runs a round's paths in parallel (:func:`path_task`); results are those of the
        serial run for the same seed.
    seed : int
        Seeds the random ``gamma`` and start data: results are reproducible.
    progress : None, bool, callable or Progress
        Events per phase and per path (see :mod:`symbolic_inversion.report.progress`).
    record_paths : bool
        Keep the points of every path in ``stats["paths"][k]["points"]``
        (``[t, [[re, im] per unknown]]`` per accepted step), for plotting.
    """
    started = time.perf_counter()
    if "relu" in trace.network.activations:
        # Paths are tracked through complex space, where relu's step has no meaning.
        raise NotSupportedError("homotopy paths need analytic activations; relu networks: "
                                "method='relu' (relu hidden layers, identity output)")
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
    base["square"] = not spare
    track_dps = tracking_dps(trace)
    history = []
    judge = Judge(system, refine_dps(trace, dps), arithmetic, name,
                  policy="first" if spare else "confirm", started=started,
                  stats=dict(base, tracking_dps=track_dps, paths=history),
                  least_dps=dps or 0)
    square = solve_steps(trace, square=homotopy_steps)
    complex_ends = []
    # federated rounds: the searches run on the one-step approximation (each round one
    # step of the round's effective learning rate), the judge refines on the K-step map
    search = trace.one_step_approximation()
    approximate = search is not trace
    if approximate:
        search.approximates = trace

    def reported(start, info, attempt, judging):
        """The judge's verdict on a candidate (refined on every step), reported."""
        progress.event("refine", attempt=attempt + 1, of=total)
        final = judge.add(judging(start))
        progress.event("judge", attempt=attempt + 1, of=total, status=info.get("status"))
        return final

    # Giving up needs more than one round: when no dataset was accepted after
    # ``attempts`` paths, further rounds of as many paths run with the kinds taken in
    # turn from the other end of the list (row 1 of issue 11: moment paths failed where
    # parameter paths succeed), each path with its own gamma, squaring-up and start.
    total = attempts * rounds
    schedule = _schedule(method, attempts)
    schedule += _schedule(list(reversed(method)) if isinstance(method, (list, tuple))
                          else method, total - attempts)
    runner = _PathRunner(executor, search, square, backend, seed, track_dps, record_paths,
                         steps)
    projected = None  # float64 projected fits polish endpoints that are not real roots
    blind = set()     # kinds of search that cannot resolve these data
    stalls = {}       # per kind, paths that stalled before the end

    def run_path(attempt):
        """Run, record and judge the path of ``attempt``: the final solution, or
        ``None`` to go on."""
        nonlocal projected
        if attempt in bounds:  # a round's paths are independent: submit them all
            runner.submit(range(attempt, bounds[bounds.index(attempt) + 1]), schedule)
        kind = schedule[attempt]
        if attempt and history[-1].get("refined_from_stall") and history[-1]["path"] == kind:
            # a stall that refinement could not rescue means a nearly singular end of this
            # kind's path (measured at n = 24: clustered inputs): give another kind a turn
            kind = next((k for k in schedule[attempt:] if k != kind), kind)
        if kind in blind:
            # the kinds that can still resolve the data take turns (all blind: as planned)
            others = [k for k in dict.fromkeys(schedule + [FALLBACK]) if k not in blind]
            kind = others[attempt % len(others)] if others else kind
        progress.event("search", attempt=attempt + 1, of=total, kind=kind)
        path, info = runner.result(attempt, kind)
        info = _record(path, info, kind)
        history.append(info)
        fits = info.get("fits", {})
        if path.code is PathCode.NO_ROOT and \
                2 * fits.get("ill_conditioned", 0) >= sum(fits.values()):
            # most fits reached residuals at double rounding that do not bound the
            # inputs: double precision cannot resolve these data (measured: 1-4-1
            # tanh/tanh with one step; the single neuron from n = 8); paths instead
            blind.add(kind)
        if (path.code is PathCode.STALLED and not path.stalled_near_end) or \
                (kind != FALLBACK and _failed_at_start(path)):
            stalls[kind] = stalls.get(kind, 0) + 1
            if stalls[kind] >= 2:
                # the same kind stalled mid-path (or failed as it set out) twice, each
                # time from its own random start: its paths cross ill-conditioned ground
                # here (measured: moment paths on 1-4-1 tanh/tanh networks, which stall
                # or leave for infinity in their first steps); others take its turns
                blind.add(kind)
        progress.event("path", attempt=attempt + 1, of=total, kind=kind,
                       status="real root" if path.real is not None else path.reason or "?")
        u = path.real
        endpoint = _endpoint(path, arithmetic.complexify())
        if u is None and endpoint is not None:
            # a complex root or a stall: its real part may lie in a root's basin of the
            # projected fit on every step (milliseconds in double; the judge decides)
            if projected is None:
                projected = ProjectedSystem(search_system(search, steps))
            with np.errstate(all="ignore"):
                u = polish(projected, endpoint)
            if u is not None:
                info["polished"] = True
        if u is None and path.stalled_near_end:
            # Stalled just before t = 1: usually next to a root that is too ill-conditioned
            # for the tracking precision (measured at n = 24); refine it on every step at
            # the refinement precision, and let the judge decide.
            u = [mpmath.re(v) for v in endpoint]
            info["refined_from_stall"] = True
        if u is None:
            if endpoint is not None:
                complex_ends.append((attempt, info, endpoint))
            return None
        if info.get("polished") and endpoint is not None:
            complex_ends.append((attempt, info, endpoint))  # for the inconsistency test
        progress.event("refine", attempt=attempt + 1, of=total)
        verdict = judge.judge_vector(canonical_vector(trace, u), info, attempts=attempt + 1)
        if info.get("precision") == "double" and verdict.status not in judge.accept \
                and not verdict.stats.get("refine_converged"):
            # the refinement did not settle from the double endpoint: track the same path
            # in multiprecision (the root may be too ill-conditioned for double)
            path, again = runner.result(attempt, kind, precision="multiprecision")
            if path.real is not None:
                info.update(_record(path, again, kind))
                verdict = judge.judge_vector(canonical_vector(trace, path.real), info,
                                             attempts=attempt + 1)
        final = judge.add(verdict)
        progress.event("judge", attempt=attempt + 1, of=total, status=info.get("status"))
        if final is not None:
            runner.cancel()
            return final
        pairs = suspect_pairs(verdict.samples) if verdict.status is Status.INCONSISTENT \
            else []
        if pairs:
            # two samples of the refined candidate coincide: Gauss-Newton creeps along
            # the singular direction of a duplicated sample and cannot settle; the caller
            # (:func:`~symbolic_inversion.solvers.symmetries.annotate`) ties them and
            # judges the tied dataset
            runner.cancel()
            stats = dict(base, attempts=len(history), paths=history,
                         time=elapsed(started))
            return Solution(verdict.samples, Status.NOT_CONVERGED, verdict.residual, 0,
                            stats, f"samples {pairs} of the best "
                            f"candidate coincide; refinement cannot settle at a duplicated "
                            f"sample ({verdict.detail})")
        if info.get("refined_from_stall") and splits_left > 0:
            final = split(endpoint, attempt, info)
            if final is not None:
                runner.cancel()
                return final
        # after the split endgame: on small systems (1-4-1, clustered inputs) it is what
        # was measured to finish such stalls
        if info.get("refined_from_stall") and restarts_left > 0:
            final = restart(endpoint, attempt, info)
            if final is not None:
                runner.cancel()
                return final
        return None

    def restart(endpoint, attempt, info):
        """A parameter path from the real part of a stalled path's end
        (:data:`RESTARTS`): its real endpoint judged; the final solution, or ``None``."""
        nonlocal restarts_left
        restarts_left -= 1
        rng = random.Random(f"symbolic_inversion:{seed}:{attempt}:restart")
        progress.event("restart", attempt=attempt + 1, of=total)
        start = [mpmath.re(v) for v in endpoint]
        path, _ = split_path(search, square, arithmetic, rng, track_dps, start)
        record = {"path": "restart", "code": path.code.value, "steps": path.steps}
        info["restart"] = record
        if path.real is None:
            return None
        # not independent of the stalled path: no evidence of inconsistency
        verdict = judge.judge_vector(canonical_vector(trace, path.real), record,
                                     attempts=attempt + 1, split=True)
        return judge.add(verdict)

    def split(endpoint, attempt, info):
        """The split endgame (:func:`split_starts`) from a stalled path's end: paths from
        its vanishing sample placed next to each other sample (at most ``samples - 1``
        per search, up to ``SPLIT_UNKNOWNS`` unknowns), their real endpoints judged; the
        final solution, or ``None``."""
        nonlocal splits_left
        rng = random.Random(f"symbolic_inversion:{seed}:{attempt}:split")
        with np.errstate(all="ignore"):
            starts = split_starts(projected, endpoint, rng)
        for start in starts:
            if splits_left <= 0:
                break
            splits_left -= 1
            progress.event("split", attempt=attempt + 1, of=total)
            path, _ = split_path(search, square, arithmetic, rng, track_dps, start)
            record = {"path": "split", "code": path.code.value, "steps": path.steps}
            info.setdefault("splits", []).append(record)
            if path.real is None:
                continue
            # not independent of the stalled path: no evidence of inconsistency
            verdict = judge.judge_vector(canonical_vector(trace, path.real), record,
                                         attempts=attempt + 1, split=True)
            final = judge.add(verdict)
            if final is not None:
                return final
        return None

    def fit_complex_ends():
        """Least-squares fits from the real parts of complex endpoints (at most
        ``ENDPOINT_FITS`` in all): the final solution, or ``None``."""
        if judge.accepted:
            return None
        # No path reached a real root.  The real parts of the complex roots start a real
        # least-squares fit on every step: it may still reach the data (then the judge
        # vouches for it), and otherwise its residual measures how far the trace is from
        # anything a dataset of this size explains.
        for attempt, info, endpoint in complex_ends:
            start = canonical_vector(trace, [mpmath.re(v) for v in endpoint])
            if any(max(abs(a - b) for a, b in zip(start, other)) < 1e-6 for other in tried):
                continue
            if len(tried) >= ENDPOINT_FITS:
                break
            tried.append(start)
            info["least_squares_from_real_part"] = True
            final = reported(start, info, attempt,
                             lambda v: _fit(judge, v, info, attempts=attempt + 1))
            if final is not None:
                return final
        return None

    # Rounds beyond ``ROUNDS`` (small systems, :func:`rounds_for`) are for hard exact
    # data (clustered inputs); they run only when the fits of the first rounds are no
    # evidence that the trace is inconsistent: on a noisy trace they would not change
    # the verdict, only delay it.
    first = attempts * min(rounds, ROUNDS)
    bounds = sorted({0, attempts, first, total})
    tried = []  # starts of the least-squares fits from complex endpoints
    # split paths this search may still take (:func:`split_starts`)
    splits_left = system.samples - 1 if counts["unknowns"] <= SPLIT_UNKNOWNS else 0
    restarts_left = RESTARTS
    begin = 0
    for end in bounds[bounds.index(first):]:
        for attempt in range(begin, end):
            final = run_path(attempt)
            if final is not None:
                return final
        final = fit_complex_ends()
        if final is not None:
            return final
        if judge.accepted or inconsistency_evidence(judge.rejected, counts,
                                                    approximate=approximate)["inconsistent"]:
            break
        begin = end
    runner.cancel()
    if not judge.accepted and spare and any(h["code"] != "no_start" for h in history) \
            and not inconsistency_evidence(judge.rejected, counts,
                                           approximate=approximate)["inconsistent"]:
        # Independent least-squares fits from random data: they may reach the data, and
        # otherwise they are the independent starts the inconsistency test asks for.
        # They are not evidence of inconsistency (random fits of an exact trace often
        # share a local minimum), so they are marked and left out of the test.
        fits = judge.stats.setdefault("random_fits", [])
        for k in range(EXTRA_FITS):
            rng = random.Random(f"symbolic_inversion:{seed}:fit:{k}")
            info = {"start": "random", "seed": k}
            fits.append(info)
            start = [mpmath.mpf(rng.uniform(-1, 1)) for _ in range(counts["unknowns"])]
            final = judge.add(_fit(judge, start, info, random_start=True))
            if final is not None:
                return final
    stats = dict(base, attempts=len(history), paths=history)
    if judge.accepted:
        return judge.verdict(stats, "")
    stats["time"] = elapsed(started)
    best = judge.best_rejected()
    if best is not None and all(s.stats.get("random_start") for s in judge.rejected):
        reasons = "; ".join(sorted({h.get('reason') or '?' for h in history}))
        return Solution(best.samples, Status.NOT_CONVERGED, best.residual, 0, stats,
                        f"none of {len(history)} paths reached a real root "
                        f"({_path_summary(history)}; {reasons}); {len(judge.rejected)} "
                        f"least-squares fits from random data did not reach a dataset "
                        f"either (best residual {mpmath.nstr(best.residual, 3)})"
                        f"{_more_steps(counts)}")
    if best is not None:
        evidence = inconsistency_evidence(judge.rejected, counts, approximate=approximate)
        stats["inconsistency_test"] = evidence
        if evidence["inconsistent"]:
            best.stats.update(stats)
            best.detail = (f"{evidence['fits']} least-squares fits on all {system.steps} "
                           f"steps from the endpoints of {len(history)} paths; "
                           f"{evidence['agreeing']} of them reached the same smallest "
                           f"residual {mpmath.nstr(best.residual, 3)}, "
                           f"{mpmath.nstr(best.residual / best.stats['tolerance'], 2)} "
                           f"times what the trace's rounding allows "
                           f"({mpmath.nstr(best.stats['tolerance'], 3)}), with "
                           f"{evidence['spare']} equations beyond the unknowns: no dataset "
                           f"of {trace.samples} samples explains the trace")
            return best
        advice = _more_steps(counts, " the trace is too short to show inconsistency: "
                                     "record more steps")
        if approximate:
            advice += ("; the paths ran on the one-step approximation of the rounds' "
                       "local steps, so fits from their ends are no evidence of "
                       "inconsistency")
        return Solution(best.samples, Status.NOT_CONVERGED, best.residual, 0, stats,
                        f"{len(history)} paths tried ({_path_summary(history)}); the "
                        f"best candidate is {best.status.value}: {best.detail}{advice}")
    reasons = "; ".join(sorted({h.get('reason') or '?' for h in history}))
    return Solution([], Status.NOT_CONVERGED, None, 0, stats,
                    f"none of {len(history)} paths reached a real root "
                    f"({_path_summary(history)}; {reasons}){_more_steps(counts)}")


# why a search that found nothing on a short trace should be given more steps
WIDER_BASINS = (", record more steps: spare equations widen the searches' basins "
                "(measured: 8-16-1 with 16 samples is found from 4 steps, not from 1)")


def _more_steps(counts, why=WIDER_BASINS):
    """Advice for a trace with fewer spare equations than unknowns (else ``""``)."""
    spare = counts["equations"] - counts["unknowns"]
    if spare >= counts["unknowns"]:
        return ""
    return f"; with {spare} equations beyond the {counts['unknowns']} unknowns{why}"


def _path_summary(history):
    """``"3 diverged, 4 stalled, 5 ended complex"``: how the paths ended."""
    words = {"at_infinity": "diverged", "stalled": "stalled", "complex_end": "ended complex",
             "success": "ended at real roots that do not explain the trace",
             "singular": "met a singular Jacobian", "no_start": "had no start point",
             "no_root": "projected searches found no root"}
    counts = {}
    for h in history:
        key = words.get(h["code"], h["code"])
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{c} {k}" for k, c in counts.items())


# The ``inconsistent`` test (positive evidence, issue 11).  A trace is called
# inconsistent only when (1) it has at least as many equations beyond the unknowns as
# there are unknowns (a square system always has roots: it cannot test its own
# consistency; with one or two spare equations, measured on 2-3-1 networks with n = 4 and
# one step, four paths' fits shared a local minimum 1e49 times the rounding), (2) at least ``fits`` least-squares fits
# on every step, each from a different path's endpoint (a real root of the square
# subsystem or the real part of a complex one; fits from random data do not count),
# *settled* (Gauss-Newton converged or its last correction is below ``SETTLED``: a
# stationary point, not a slide along a valley towards saturated units), (3) the
# smallest residual is reached by at least two of them (the same minimum found
# independently, within ``same_minimum`` relative), and (4) it exceeds ``factor`` times
# the rounding allowance.  Measured: an exact 1-1 tanh n = 3 trace whose two complex-end
# fits slid to the same valley floor (a sample at x = -9.2, residual 0.09) was called
# inconsistent before (2) asked for settled fits.  Measured false alarms and power: docs/recovery.md, "Networks".
INCONSISTENCY = {"fits": 2, "same_minimum": 0.01, "factor": 1000}
# Rounds of ``attempts`` paths before giving up: at least ``ROUNDS``, and on small
# systems, whose paths are cheap, up to ``MAX_ROUNDS`` (``ROUND_UNKNOWNS`` over the
# unknowns: a search costs about the same whatever its size).  Measured on 1-4-1
# tanh/tanh with one step (10 unknowns, 6 paths a round), benchmark datasets 0-39: 36
# recovered within 3 rounds, all 40 within 8; the late ones needed 19, 20, 22 and 38
# paths (clustered inputs: in the last, three within 0.2, two of them 2e-3 apart, and the
# Jacobian loses 18 digits at the data).  Large systems (8-16-1: 144 unknowns) keep 3.
ROUNDS = 3
MAX_ROUNDS = 8
ROUND_UNKNOWNS = 80


def rounds_for(unknowns):
    """Rounds of paths before a search gives up on ``unknowns`` unknowns.

    >>> rounds_for(10), rounds_for(20), rounds_for(144)
    (8, 4, 3)
    """
    return max(ROUNDS, min(MAX_ROUNDS, ROUND_UNKNOWNS // max(unknowns, 1)))


EXTRA_FITS = 4
# Multiprecision least-squares fits from endpoints that are not real roots: each takes
# seconds, and the float64 projected fits have already polished every endpoint; enough
# for the inconsistency test (``INCONSISTENCY["fits"]`` settled fits that agree) with a
# margin, and a bound on the time a failing search takes.
ENDPOINT_FITS = 2 * INCONSISTENCY["fits"]
FIT_ITERATIONS = 150
SETTLED = 1e-8


def _fit(judge, u, info, **stats):
    """A least-squares fit on every step from the flat vector ``u`` (a long Gauss-Newton,
    so that it settles at a minimum), then judged."""
    system = judge.system
    width = system.network.input_width + system.network.output_width
    d = system.network.input_width
    rows = [u[i * width:(i + 1) * width] for i in range(system.samples)]
    inputs, labels, polish = gauss_newton(
        system.trace, [r[:d] for r in rows], [r[d:] for r in rows], judge.dps,
        steps=system.steps, arithmetic=judge.arithmetic, system=system,
        max_iterations=FIT_ITERATIONS)
    info["fit_iterations"] = polish["iterations"]
    return judge.judge(inputs, labels, info, **stats)


def _settled(solution):
    """A least-squares fit that stopped moving: Gauss-Newton converged, or its last
    correction is below ``SETTLED`` (linear convergence at a non-zero residual)."""
    return bool(solution.stats.get("refine_converged")) or \
        solution.stats.get("refine_correction", math.inf) <= SETTLED


def inconsistency_evidence(rejected, counts, rule=INCONSISTENCY, approximate=False):
    """The ``inconsistent`` test on the rejected candidates of a search (a dict: the
    counts behind the verdict and ``inconsistent`` itself).

    ``approximate``: the paths ran on an approximation of the system (federated rounds:
    the one-step approximation of the K-step map), so their endpoints are not starts in
    the system's own basins and fits from them that share a minimum are no evidence
    (measured: an exact 2-3-1 FedAvg trace, minibatches of 2, K = 4, whose two fits
    agreed at a residual 1e58 times the allowance)."""
    fits = sorted((s for s in rejected if s.status is Status.INCONSISTENT and _settled(s)
                   and not s.stats.get("random_start") and not s.stats.get("split")
                   # a float64 judgement takes three Gauss-Newton steps: no minimum
                   and s.stats.get("judged_in") != "float64"
                   and s.residual is not None
                   and mpmath.isfinite(s.residual)), key=lambda s: s.residual)
    spare = counts["equations"] - counts["unknowns"]
    evidence = {"spare": spare, "fits": len(fits), "agreeing": 0, "inconsistent": False}
    if not fits:
        return evidence
    best = fits[0]
    evidence["agreeing"] = sum(1 for s in fits
                               if s.residual <= best.residual * (1 + rule["same_minimum"]))
    evidence["ratio"] = float(best.residual / best.stats["tolerance"])
    evidence["inconsistent"] = bool(spare >= counts["unknowns"] and len(fits) >= rule["fits"]
                                    and evidence["agreeing"] >= 2
                                    and evidence["ratio"] > rule["factor"]
                                    and not approximate)
    if approximate:
        evidence["approximate_search"] = True
    return evidence


def _run(trace, kinds, options):
    return run_pipeline(trace, kinds, options.dps, options.steps, options.backend,
                        options.attempts_or(6), options.seed,
                        rounds=1 if options.attempts is not None
                        else rounds_for(system_counts(trace.network,
                                                      trace.samples)["unknowns"]),
                        executor=options.executor, progress=options.progress,
                        record_paths=options.record_paths)


@solver
def solve_moments(trace, options):
    """Moment homotopy paths (one input, one output), refined and judged."""
    return _run(trace, ["moments", "moments_rescaled"], options)


@solver
def solve_homotopy(trace, options):
    """Parameter homotopy paths (any network), refined and judged."""
    return _run(trace, "homotopy", options)


@solver
def solve_cold_start(trace, options):
    """The default for several samples: attempts take turns among moment homotopy paths
    (one input and one output only), projected least-squares searches in float64
    (:func:`projected_search`: cheap, and reliable where double precision resolves the
    data) and parameter homotopy paths; first the span start
    (:mod:`~symbolic_inversion.solvers.span`) where one step's first-layer gradient of a
    smooth network has rank ``n``.

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
        kinds = ["moments", "projected", "moments_rescaled", "homotopy"]
    else:
        kinds = ["projected", "projected", "homotopy"]
    # the searches run on federated rounds' one-step approximation (run_pipeline), the
    # span start too (its local-steps path: span.local_path)
    if not span_applies(trace.one_step_approximation(), options.steps):
        # one step's first-layer gradient has rank n: each sample alone from its own
        # small system (:mod:`~symbolic_inversion.solvers.span`), in float64; measured
        # on 20-32-3 tanh with n = 8 from one exact step: under a second against 83 s
        kinds = ["span"] + kinds
    return _run(trace, kinds, options)
