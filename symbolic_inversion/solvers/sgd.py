r"""Randomized learning: minibatch SGD, momentum and weight decay (Open Question 3).

The paper expects randomized learning to make the inversion system infeasible to even
form.  What the trace reveals per step is the mean gradient over that step's batch
(:meth:`Trace.observed_gradients` undoes momentum and weight decay exactly), so the
difficulty depends on the case:

``per_sample``
    Batch size 1, schedule known or not: every step is a one-sample closed form (the
    ratio trick).  The samples of all steps are merged into the dataset when they agree
    within their error bounds; each sample comes with how often it was seen.
``joint``
    Known schedule (or full batch, e.g. with momentum): one joint system in which step
    ``j`` involves only its batch, solved by multistart variable projection in float64
    and Gauss-Newton refinement at the working precision.
``schedule_search``
    Unknown schedule with batches larger than 1: every schedule consistent with "each
    sample once per epoch" (up to relabelling the samples) gets its own joint system;
    all consistent datasets are reported, and one dataset is reported as *the* answer
    only when it is the only consistent dataset found.

:func:`solve_sgd` picks the case from the trace.
"""

import itertools
import math
import time

import mpmath
import numpy as np

from ..arithmetic import get_arithmetic
from ..errors import InputError, NotSupportedError, boundary
from ..system import InversionSystem
from ..trace import Trace  # noqa: F401 (re-exported as in 0.1)
from .evaluation import real_arithmetic
from .judge import Judge, elapsed
from .options import solver
from .projection import ProjectedSystem, projected_fit
from .ratio import one_sample_input
from .solution import Solution, Status, same_dataset

__all__ = ["solve_sgd", "solve_per_sample", "solve_joint", "solve_schedule_search",
           "epoch_schedules", "same_dataset", "recovered_fraction"]

# Unknown-schedule search stops before more schedules than this: each one is a cold solve.
MAX_SCHEDULES = 400


def _with_schedule(trace, batches):
    """The same observation with a schedule attached (an assignment being tested)."""
    return trace.with_batches(batches)  # dtype, loss_reduction, known terms kept


@boundary("recovered_fraction")
def recovered_fraction(solution, inputs, labels, tolerance):
    """Fraction of the true samples ``(inputs, labels)`` that ``solution`` determines.

    A sample counts when it is within ``tolerance`` (max norm) of a sample of a
    ``CONVERGED`` solution, or, for ``NOT_UNIQUE``, of a sample present in *every*
    consistent dataset listed (what the trace pins down despite the ambiguity).  Any
    other status recovers nothing.  For measurements against known data.

    >>> from symbolic_inversion.solvers.solution import Solution, Status
    >>> found = Solution([([0.5], [0.25]), ([0.7], [0.1])], Status.CONVERGED)
    >>> recovered_fraction(found, [[0.5], [0.9]], [[0.25], [0.3]], 1e-9)
    0.5
    >>> recovered_fraction(found, [0.5, 0.9], [0.25, 0.3], "1e-9")  # flat, as simulate
    0.5
    """
    from ..samples import sample_rows
    if not isinstance(solution, Solution):
        raise InputError(f"recovered_fraction: expected a Solution, got "
                         f"{type(solution).__name__}")
    inputs = sample_rows(inputs, "inputs")
    labels = sample_rows(labels, "labels", count=len(inputs))
    if solution.status is Status.CONVERGED:
        datasets = [solution.samples]
    elif solution.status is Status.NOT_UNIQUE and solution.stats.get("datasets"):
        datasets = [[(s["x"], s["y"]) for s in d] for d in solution.stats["datasets"]]
    else:
        return 0.0
    # the distances at the solution's precision (the truth's decimals are exact there)
    with mpmath.workdps(max(50, solution.stats.get("dps") or 0)):
        tolerance = _tolerance(tolerance)
        truth = [[mpmath.mpf(str(v)) for v in x + y] for x, y in zip(inputs, labels)]

        def near(sample, dataset):
            return any(max(abs(a - mpmath.mpf(b))
                           for a, b in zip(sample, list(x) + list(y))) <= tolerance
                       for x, y in dataset)
        return sum(all(near(sample, d) for d in datasets) for sample in truth) / len(truth)


def _tolerance(value):
    """A non-negative finite tolerance as an mpmath number (an mpmath number kept as it
    is, anything else read as a decimal)."""
    from ..exact import to_decimal
    if not isinstance(value, mpmath.mpf):
        value = mpmath.mpf(str(to_decimal(value, "tolerance")))
    if not mpmath.isfinite(value) or value < 0:
        raise InputError(f"tolerance: expected a non-negative number, got {value}")
    return value


# -- batch size 1: closed form per step, then merge repeats ---------------------------------

def _one_step_labels(trace, step, x, gradient):
    """Labels of the single sample behind ``step``: ``B y = B f - g / 2`` (least squares,
    from the system evaluator's per-sample terms at the working precision)."""
    arithmetic = get_arithmetic("mpmath")
    # per-sample terms ignore batches: any schedule will do for an unrecorded one
    known = trace if trace.batches is not None else _with_schedule(trace, [[0]] * trace.steps)
    evaluator = InversionSystem.from_trace(known).evaluator(arithmetic, [step])
    Bf, B = evaluator.sample_terms(arithmetic.asarray([x]))
    rhs = Bf[0, 0] - arithmetic.asarray(list(gradient)) / 2
    labels = arithmetic.lstsq(B[0, 0], rhs, method="qr")
    if not labels.ok:
        return [mpmath.nan] * trace.network.output_width
    return list(labels.x)


@solver
def solve_per_sample(trace, options):
    """Batch size 1: one closed form per step, repeats merged into the dataset.

    The schedule is not needed.  Every step whose first-layer bias moved measurably gives
    ``(x, y)`` with an error bound; estimates that agree within their bounds are the same
    sample seen again.  The merged assignment of steps to samples is then checked as one
    joint system over all steps by the :class:`~symbolic_inversion.solvers.judge.Judge`.

    ``stats["counts"]`` says how often each sample was seen; ``stats["epoch_consistent"]``
    whether every complete epoch saw every sample exactly once.

    Examples
    ========

    >>> from symbolic_inversion import Network, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.1, 0.5, 0.9], [0.3, 0.6, 0.2],
    ...                  lr="0.1", epochs=2, init=[0.5, 0.5], dps=40, optimizer="sgd",
    ...                  batch_size=1, seed=1, record_batches=False)
    >>> solution = solve_per_sample(trace, dps=60)
    >>> solution.status.value, solution.digits >= 30, solution.stats["counts"]
    ('converged', True, [2, 2, 2])
    >>> sorted(round(float(x[0]), 12) for x in solution.inputs)
    [0.1, 0.5, 0.9]
    """
    dps, steps = options.dps, options.steps
    started = time.perf_counter()
    if not trace.network.bias:
        raise NotSupportedError("per-sample recovery: the ratio trick needs a first-layer bias")
    if (trace.optimizer.batch_size or trace.samples) != 1:
        raise NotSupportedError("per-sample recovery: needs batch size 1")
    total_steps = trace.steps if steps is None else steps
    if not 1 <= total_steps <= trace.steps:
        raise InputError(f"steps: the trace has {trace.steps} steps, asked for {total_steps}")
    n = trace.samples
    with mpmath.workdps(dps):
        gradients = trace.observed_gradients()[:total_steps]
        clusters = []  # each: {"x", "bound", "steps"}
        silent = []
        for step in range(total_steps):
            x, bound, _ = one_sample_input(trace, gradients, step)
            if x is None:
                silent.append(step)
                continue
            for cluster in clusters:
                gap = max(abs(a - b) for a, b in zip(cluster["x"], x))
                if gap <= 2 * (cluster["bound"] + bound) + mpmath.mpf(10) ** (5 - dps):
                    cluster["steps"].append(step)
                    if bound < cluster["bound"]:
                        cluster["x"], cluster["bound"] = x, bound
                    break
            else:
                clusters.append({"x": x, "bound": bound, "steps": [step]})
        stats = {"method": "per_sample", "dps": dps, "steps_used": total_steps,
                 "distinct_samples_seen": len(clusters), "silent_steps": silent}
        if len(clusters) > n:
            stats["time"] = elapsed(started)
            return Solution([], Status.INCONSISTENT, None, 0, stats,
                            f"{len(clusters)} different samples were seen but the trace "
                            f"declares {n}")
        _assign_silent_steps(clusters, silent, n, total_steps)
        assigned = [None] * total_steps
        for index, cluster in enumerate(clusters):
            for step in cluster["steps"]:
                assigned[step] = index
        counts = [len(cluster["steps"]) for cluster in clusters]
        stats["counts"] = counts
        # one sample per step: a sample seen in too few steps has no equation to spare,
        # whatever the totals (the GD path's square-trace caveat, sample by sample)
        network = trace.network
        stats["square"] = any(count * network.num_parameters
                              <= network.input_width + network.output_width
                              for count in counts)
        stats["epoch_consistent"] = _epoch_consistent(assigned, len(clusters), n)
        inputs = [cluster["x"] for cluster in clusters]
        if len(clusters) < n or None in assigned:
            labels = [_one_step_labels(trace, c["steps"][0], c["x"], gradients[c["steps"][0]])
                      for c in clusters]
            stats["time"] = elapsed(started)
            unplaced = [s for s, a in enumerate(assigned) if a is None]
            why = (f"only {len(clusters)} of the {n} samples were seen distinctly in "
                   f"{total_steps} steps" if len(clusters) < n else
                   f"steps {unplaced} moved no first-layer bias and could not be assigned")
            return Solution(list(zip(inputs, labels)), Status.UNIDENTIFIABLE, None, 0, stats,
                            why + "; the samples listed are those seen, not the whole dataset")
        # The assignment found is a schedule: judge it as one joint system.
        system = InversionSystem.from_trace(
            _with_schedule(trace, [[index] for index in assigned]
                           + _tail_batches(trace, total_steps)), total_steps)
        labels = system.solve_labels(inputs)
        # the one candidate goes through the judge (refined on every step, assessed)
        judge = Judge(system, dps, real_arithmetic(options.backend), "per_sample",
                      started=started, stats=stats)
        solution = judge.judge(inputs, labels)
    if solution.ok and not stats["epoch_consistent"]:
        solution.detail = ("every step is explained, but some epoch did not see every sample "
                           "exactly once: the trace may not come from shuffled epochs")
    return solution


def _tail_batches(trace, used):
    """Placeholder batches for steps beyond those used (never evaluated)."""
    return [[0]] * (trace.steps - used)


def _assign_silent_steps(clusters, silent, n, total_steps):
    """Steps that moved no bias belong, by "each sample once per epoch", to the one sample
    their epoch has not seen yet, when exactly one is missing."""
    if not silent or len(clusters) != n:
        return
    owner = {step: k for k, c in enumerate(clusters) for step in c["steps"]}
    for step in silent:
        epoch = range(step - step % n, min(step - step % n + n, total_steps))
        seen = {owner[s] for s in epoch if s in owner}
        missing = [k for k in range(n) if k not in seen]
        if len(missing) == 1 and sum(1 for s in epoch if s not in owner) == 1:
            clusters[missing[0]]["steps"].append(step)
            owner[step] = missing[0]


def _epoch_consistent(assigned, distinct, n):
    for start in range(0, len(assigned) - n + 1, n):
        if sorted(a for a in assigned[start:start + n] if a is not None) != list(range(n)):
            return False
    return distinct == n


# -- known schedule: one joint system --------------------------------------------------

def _multistart_inputs(system, starts, seed, box):
    """Candidate inputs from float64 projected fits (the labels eliminated, see
    :mod:`~symbolic_inversion.solvers.projection`) from ``starts`` random starts in
    ``box``.

    Screening only: a fit counts when its residual is below ``SCREEN`` relative to the
    observed gradients (looser than a root in double: the joint systems of SGD schedules
    can be ill-conditioned, and every consistent dataset must reach the judge); the
    survivors are refined at full precision by the judge.
    """
    projected = ProjectedSystem(system)
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(starts):
        start = rng.uniform(box[0], box[1], projected.shape)
        fit = projected_fit(projected, start, max_iterations=200)
        if not np.all(np.isfinite(fit.inputs)) or not fit.relative <= SCREEN:
            continue
        if not any(np.max(np.abs(fit.inputs - other)) < 1e-7 for other in found):
            found.append(fit.inputs)
    return found


# a screening fit's residual, relative to the largest observed gradient
SCREEN = 1e-6


def _joint_solutions(system, options, starts, seed, box):
    """The judge of one joint system after every candidate from ``starts`` starts: every
    distinct consistent (or unidentifiable) dataset is kept in ``judge.accepted``."""
    judge = Judge(system, options.dps, real_arithmetic(options.backend), "joint",
                  policy="all", accept=(Status.CONVERGED, Status.UNIDENTIFIABLE))
    for inputs in _multistart_inputs(system, starts, seed, box):
        with mpmath.workdps(options.dps):
            X = [[mpmath.mpf(float(v)) for v in row] for row in inputs]
            Y = system.solve_labels(X)
        judge.add(judge.judge(X, Y))
    return judge


@solver
def solve_joint(trace, options, starts=None, box=(-1.0, 2.0)):
    """Known schedule (or full batch, e.g. with momentum): one joint system.

    Step ``j`` involves only the samples of ``trace.batch(j)``.  Candidates come from
    ``starts`` random starts in ``box`` (float64 Levenberg-Marquardt with the labels
    eliminated), then Gauss-Newton at ``dps`` digits and an honest assessment.  Distinct
    consistent datasets are all kept: more than one gives ``NOT_UNIQUE``.

    Examples
    ========

    Momentum 0.9, full batch, two samples:

    >>> from symbolic_inversion import Network, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6, 0.2], [0.5, 0.4], lr="0.1",
    ...                  epochs=4, init=[0.5, 0.5], dps=50, momentum="0.9")
    >>> solution = solve_joint(trace, dps=70, starts=8)
    >>> solution.status.value, solution.digits >= 30
    ('converged', True)
    >>> sorted(round(float(x[0]), 12) for x in solution.inputs)
    [0.2, 0.6]
    """
    started = time.perf_counter()
    starts = starts or options.attempts_or(30)
    system = InversionSystem.from_trace(trace, options.steps)
    stats = {"method": "joint", "dps": options.dps, "starts": starts,
             "steps_used": system.steps, "equations": system.counts["equations"],
             "unknowns": system.counts["unknowns"]}
    if system.counts["equations"] < system.counts["unknowns"]:
        return _too_few_equations(system, stats, started)
    judge = _joint_solutions(system, options, starts, options.seed, box)
    judge.started = started
    stats["consistent_datasets"] = len(judge.accepted)
    return judge.verdict(stats, f"no start of {starts} converged to data explaining the "
                         f"trace")


def _too_few_equations(system, stats, started):
    stats["time"] = elapsed(started)
    counts = system.counts
    return Solution([], Status.UNDERDETERMINED, None, 0, stats,
                    f"{counts['steps']} steps give {counts['equations']} equations for "
                    f"{counts['unknowns']} unknowns")


# -- unknown schedule, batches larger than 1 -------------------------------------------

def _epoch_partitions(n, sizes):
    """Every ordered partition of ``range(n)`` into consecutive batches of ``sizes``."""
    if not sizes:
        yield []
        return
    remaining = list(range(n))

    def extend(rest, sizes):
        if not sizes:
            yield []
            return
        for first in itertools.combinations(rest, sizes[0]):
            left = [i for i in rest if i not in first]
            for tail in extend(left, sizes[1:]):
                yield [list(first)] + tail
    yield from extend(remaining, list(sizes))


def epoch_schedules(n, batch_size, steps):
    """All schedules of ``steps`` steps in which every epoch uses each sample once, up to
    relabelling the samples (the first epoch is fixed to ``[0..B-1], [B..2B-1], ...``).

    >>> len(epoch_schedules(4, 2, 4))   # two epochs: second epoch free, up to swaps in a batch
    3
    >>> epoch_schedules(4, 2, 4)[0]
    [[0, 1], [2, 3], [0, 1], [2, 3]]
    """
    per_epoch = -(-n // batch_size)
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    first = [list(range(k * batch_size, min((k + 1) * batch_size, n))) for k in range(per_epoch)]
    epochs = -(-steps // per_epoch)
    later = []
    for e in range(1, epochs):
        count = min(per_epoch, steps - e * per_epoch)
        later.append([p[:count] for p in _epoch_partitions(n, sizes)])
    # Relabellings that keep the first epoch's batches: permutations inside each batch.
    symmetries = [sum(parts, ()) for parts in itertools.product(
        *[itertools.permutations(batch) for batch in first])]
    seen, schedules = set(), []
    for choice in itertools.product(*later):
        canonical = min(
            tuple(tuple(sorted(relabel[i] for i in batch)) for epoch in choice for batch in epoch)
            for relabel in symmetries)
        if canonical not in seen:
            seen.add(canonical)
            schedule = (first + [list(b) for b in canonical])[:steps]
            schedules.append(schedule)
    return schedules


def _schedule_count(n, batch_size, steps):
    per_epoch = -(-n // batch_size)
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    ways = math.factorial(n)
    for size in sizes:
        ways //= math.factorial(size)
    return ways ** max(-(-steps // per_epoch) - 1, 0)


@solver
def solve_schedule_search(trace, options, starts=None, box=(-1.0, 2.0),
                          max_schedules=MAX_SCHEDULES):
    """Unknown schedule, batches larger than 1: search every consistent schedule.

    Each schedule in which every epoch uses each sample exactly once (up to relabelling)
    gets a joint system solved from ``starts`` random starts.  The consistent datasets are
    compared as multisets: one dataset (possibly from several schedules) is reported as
    ``CONVERGED`` with ``stats["consistent_schedules"]``; several give ``NOT_UNIQUE``
    with all of them in ``stats["datasets"]`` and no dataset as the answer.  The search
    is local per schedule, so "only consistent dataset" means "only one found";
    ``stats`` records how hard it looked.
    """
    started = time.perf_counter()
    dps, seed, starts = options.dps, options.seed, starts or options.attempts_or(12)
    total = trace.steps if options.steps is None else options.steps
    n, size = trace.samples, trace.optimizer.batch_size or trace.samples
    count = _schedule_count(n, size, total)
    stats = {"method": "schedule_search", "dps": dps, "starts": starts, "steps_used": total,
             "schedules": count}
    if count > max_schedules:
        stats["time"] = elapsed(started)
        return Solution([], Status.NOT_CONVERGED, None, 0, stats,
                        f"{count} schedules are consistent with shuffled epochs, more than "
                        f"the {max_schedules} this search tries; record the schedule "
                        f"(batches) or train with batch size 1")
    counts = InversionSystem(trace.network, n, total).counts
    stats.update(equations=counts["equations"], unknowns=counts["unknowns"])
    if counts["equations"] < counts["unknowns"]:
        return _too_few_equations(InversionSystem(trace.network, n, total), stats, started)
    schedules = epoch_schedules(n, size, total)
    stats["schedules"] = len(schedules)
    found, consistent = [], []
    for number, schedule in enumerate(schedules):
        system = InversionSystem.from_trace(
            _with_schedule(trace, schedule + [[0]] * (trace.steps - total)), total)
        judge = _joint_solutions(system, options, starts, seed + number, box)
        solutions = judge.accepted
        if solutions:
            consistent.append(schedule)
        for solution in solutions:
            if solution.status is Status.UNIDENTIFIABLE:
                stats["time"] = elapsed(started)
                stats["schedule"] = schedule
                return Solution([], Status.UNIDENTIFIABLE, solution.residual, 0, stats,
                                "under the schedule in stats['schedule'] the data are not "
                                "locally identifiable: a continuum of datasets explains "
                                "the trace")
            match = next((f for f in found if same_dataset(
                f[0].samples, solution.samples, judge.match_tolerance(solution, f[0]))),
                None)
            if match is None:
                found.append((solution, [schedule]))
            else:
                match[1].append(schedule)
    stats["consistent_schedules"] = len(consistent)
    if len(found) == 1:
        stats["schedules_of_answer"] = found[0][1]
    merged = Judge(None, dps, None, "schedule_search", policy="all", started=started)
    merged.accepted = [s for s, _ in found]
    result = merged.verdict(stats, f"no dataset explains the trace under any of the "
                            f"{len(schedules)} schedules searched ({starts} starts each)")
    if result.ok:
        result.stats["method"] = "schedule_search"
        result.detail = (f"the only dataset found consistent with any of the "
                         f"{len(schedules)} schedules ({starts} starts each)")
    return result


# -- dispatch ---------------------------------------------------------------------------

@solver
def solve_sgd(trace, options):
    """Randomized or momentum training: pick the case from what the trace records.

    - batch size 1 (schedule known or not): :func:`solve_per_sample`;
    - schedule known, or full batch: :func:`solve_joint`;
    - schedule unknown, batches larger than 1: :func:`solve_schedule_search`.
    """
    size = trace.optimizer.batch_size or trace.samples
    if size == 1 and trace.network.bias:
        return solve_per_sample(trace, options)
    if trace.batches is not None or trace.optimizer.name == "gd" or size >= trace.samples:
        if trace.batches is None and trace.optimizer.name == "sgd":
            trace = _with_schedule(trace, [list(range(trace.samples))] * trace.steps)
        return solve_joint(trace, options)
    return solve_schedule_search(trace, options)
