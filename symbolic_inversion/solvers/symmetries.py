"""Data symmetries: transformations of a dataset that leave every gradient unchanged.

A trace determines its data only up to such a transformation, so a solver that finds one
dataset has found one *representative*: reporting it as ``converged`` would be a silent
wrong answer.  Two kinds are found:

* **of the network family**, before solving (:func:`family_symmetries`), from the
  architecture and the recorded parameters alone:

  ``sign``
      every activation is odd (``tanh``, ``identity``) and no layer has a bias: the
      network is an odd function of its input for every parameter value, so
      ``(x_i, y_i) -> (-x_i, -y_i)`` leaves sample ``i``'s gradient term
      ``J_f(x_i)^T (f(x_i) - y_i)`` unchanged, for each sample separately.  With a
      ``sigmoid`` output layer instead (``sigmoid(-z) = 1 - sigmoid(z)``, the hidden
      activations odd, no biases) ``f(-x) = 1 - f(x)`` with a constant 1, and
      ``(x_i, y_i) -> (-x_i, 1 - y_i)`` does the same (``label_offset`` 1);
  ``moments``
      every activation is the identity (a linear network): the gradient depends on the
      data only through the moments ``sum x x^T``, ``sum y x^T`` (and ``sum x``,
      ``sum y`` with biases); when the samples have more unknowns than there are moments,
      every dataset with the same moments explains the trace;
  ``invisible_inputs``
      every first-layer neuron has zero outgoing weights at every step used: no gradient
      reaches the first layer, so the inputs never enter the trace;

* **of the dataset found** (:func:`dataset_symmetries`): ``duplicate_samples`` (two
  samples agree: the trace determines the pair only to second order, and the Jacobian
  is singular there) and the relu findings of
  :func:`~symbolic_inversion.identifiability.data_symmetries` (``inactive_sample``,
  ``dead_relu``).

Each symmetry is a dict with ``kind`` and ``message`` (JSON-ready); a
:class:`~symbolic_inversion.solvers.solution.Solution` lists them in ``symmetries``, and a
dataset known only up to one of them has status ``not_unique`` with one representative
listed (:func:`report_symmetries`).

Examples
========

>>> from symbolic_inversion import Network, simulate
>>> trace = simulate(Network([1, 1], "tanh", bias=False), ["0.6", "-0.2"], ["0.5", "0.4"],
...                  lr="0.1", epochs=4, init=["0.5"], dps=40)
>>> [s["kind"] for s in family_symmetries(trace)]
['sign']
>>> trace = simulate(Network([1, 1], "identity"), ["0.6", "0.2", "0.1"],
...                  ["0.5", "0.4", "0.3"], lr="0.1", epochs=4, init=["0.5", "0.5"], dps=40)
>>> [s["kind"] for s in family_symmetries(trace)]
['moments']
"""

from fractions import Fraction

import mpmath
import numpy as np

from .solution import Status

__all__ = ["family_symmetries", "dataset_symmetries", "moment_count", "report_symmetries",
           "sign_offset", "ODD_ACTIVATIONS"]

ODD_ACTIVATIONS = frozenset({"tanh", "identity"})
# Output activations symmetric about a point: a(-z) = offset - a(z).
POINT_SYMMETRIC = {"tanh": 0, "identity": 0, "sigmoid": 1}


def sign_offset(network):
    """The label offset ``c`` of the family's sign symmetry ``(x, y) -> (-x, c - y)``, or
    ``None`` when the family has none (module docstring).

    >>> from symbolic_inversion import Network
    >>> sign_offset(Network([2, 3, 1], ["tanh", "sigmoid"], bias=False))
    1
    >>> sign_offset(Network([2, 3, 1], ["sigmoid", "identity"], bias=False)) is None
    True
    """
    if network.bias or not set(network.activations[:-1]) <= ODD_ACTIVATIONS:
        return None
    return POINT_SYMMETRIC.get(network.activations[-1])


def moment_count(network):
    """How many numbers a linear network's gradient can see of the data: the entries of
    ``sum x x^T`` (symmetric), ``sum y x^T`` and, with biases, ``sum x`` and ``sum y``.

    >>> from symbolic_inversion import Network
    >>> moment_count(Network([1, 1], "identity")), moment_count(Network([2, 3, 1], "identity"))
    (4, 8)
    """
    d, m = network.input_width, network.output_width
    return d * (d + 1) // 2 + m * d + ((d + m) if network.bias else 0)


def _first_layer_silent(trace):
    """Whether every first-layer neuron has zero outgoing weights at every step."""
    network = trace.network
    if network.depth < 2:
        return False
    weights = network.layer_slices()[1][0]
    # the trace's own numbers, stopping at the first nonzero weight: converting every
    # parameter to mpmath first took minutes for a 784-1024-10 network (profiled)
    return all(v == 0 for j in range(trace.steps) for v in trace.parameters[j][weights])


def client_grouping(trace):
    """Which client held which sample, as far as a trace of federated rounds (several
    ``clients``) tells: ``None`` for a trace of one client, else a dict (JSON-ready)
    with ``groups`` (per client its ``weight`` and the indices of its samples in the
    recovered dataset, which keeps the clients' order), ``identified`` and ``message``.

    ``identified`` is

    ``"groups"``
        each client's samples are a group the round determines: its local steps depend
        on them jointly (``local_steps > 1``, or an optimizer whose update is not linear
        in the gradient); clients with equal sample counts and weights could still
        trade places as wholes, listed in ``interchangeable``;
    ``"partly"``
        one linear local step: the round is ``sum_c w_c c(n_c) sum_(i in c) g_i`` with
        ``c(n_c)`` the loss's batch factor; a sample's client shows only through its
        per-sample weight ``w_c c(n_c)``, so the clients of equal per-sample weight
        (``pooled``) pool their samples;
    ``"no"``
        every client has the same per-sample weight (FedAvg's ``n_c / n`` with the mean
        loss): the round is one gradient of the pooled samples.

    >>> from symbolic_inversion import Network, Trace
    >>> clients = [{"samples": 2, "weight": "2"}, {"samples": 1, "weight": "1"}]
    >>> trace = Trace(Network([1, 1], "tanh"), "0.1", 3, [["0.5", "0.5"], ["0.49", "0.48"]],
    ...               clients=clients)
    >>> grouping = client_grouping(trace)
    >>> grouping["identified"], [g["samples"] for g in grouping["groups"]]
    ('no', [[0, 1], [2]])
    """
    if trace.clients is None or len(trace.clients) < 2:
        return None
    groups = [{"client": k, "weight": str(weight), "samples": indices}
              for k, (weight, indices) in enumerate(trace.client_samples())]
    outputs = trace.network.output_width
    if trace.optimizer.local_steps > 1 or not trace.optimizer.invertible:
        alike = {}
        for k, (count, weight) in enumerate(trace.clients):
            alike.setdefault((count, Fraction(weight)), []).append(k)
        interchangeable = [ks for ks in alike.values() if len(ks) > 1]
        message = ("each client's samples form a group the rounds determine (its local "
                   "steps depend on them jointly)")
        if interchangeable:
            message += "; clients " + ", ".join(
                " and ".join(map(str, ks)) for ks in interchangeable) + \
                " have equal sample counts and weights: which of them is which is not " \
                "identifiable"
        return {"identified": "groups", "groups": groups,
                "interchangeable": interchangeable, "message": message}
    by_weight = {}
    for k, (count, weight) in enumerate(trace.clients):
        per_sample = Fraction(weight) * trace.loss.factor(count, outputs)
        by_weight.setdefault(per_sample, []).append(k)
    pooled = [ks for ks in by_weight.values() if len(ks) > 1]
    if len(by_weight) == 1:
        return {"identified": "no", "groups": groups, "pooled": pooled,
                "message": "one linear local step with equal per-sample weights: the round "
                           "is one gradient of the pooled samples, which client held which "
                           "sample is not identifiable (the groups listed are the "
                           "recovered dataset's order, not a finding)"}
    if not pooled:
        return {"identified": "groups", "groups": groups, "interchangeable": [],
                "message": "one linear local step: a sample's client shows through its "
                           "per-sample weight, a different one for every client"}
    return {"identified": "partly", "groups": groups, "pooled": pooled,
            "message": "one linear local step: a sample's client shows only through its "
                       "per-sample weight; clients " + "; ".join(
                           " and ".join(map(str, ks)) for ks in pooled) +
                       " share one and pool their samples"}


def family_symmetries(trace):
    """Symmetries of the data that follow from the network family (module docstring)."""
    network = trace.network
    activations = set(network.activations)
    found = []
    offset = sign_offset(network)
    if offset is not None:
        why, image, choices = ("no biases and odd activations", "-y_i", "sign choices") \
            if offset == 0 else (f"no biases, odd hidden activations and a "
                                 f"{network.activations[-1]} output (f(-x) = {offset} - "
                                 f"f(x))", f"{offset} - y_i", "one choice")
        found.append({
            "kind": "sign", "label_offset": offset,
            "message": f"{why}: each sample (x_i, y_i) may be replaced by (-x_i, {image}) "
                       f"without changing any gradient, so 2^{trace.samples} datasets "
                       f"({choices} per sample) explain the trace equally well"})
    d, m = network.input_width, network.output_width
    if activations == {"identity"} and trace.samples * (d + m) > moment_count(network):
        found.append({
            "kind": "moments",
            "message": f"a linear network: the gradients see the data only through "
                       f"{moment_count(network)} moments (sum x x^T, sum y x^T"
                       + (", sum x, sum y" if network.bias else "")
                       + f"), fewer than the {trace.samples * (d + m)} unknowns: every "
                       "dataset with these moments explains the trace"})
    if _first_layer_silent(trace):
        found.append({
            "kind": "invisible_inputs",
            "message": "every first-layer neuron has zero outgoing weights at every step: "
                       "no gradient reaches the first layer and the inputs never enter the "
                       "trace"})
    return found


def dataset_symmetries(trace, samples, tolerance):
    """Symmetries at a found dataset: duplicate samples (within ``tolerance``)."""
    found = []
    flat = [list(x) + list(y) for x, y in samples]
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            if max(abs(a - b) for a, b in zip(flat[i], flat[j])) <= tolerance:
                found.append({
                    "kind": "duplicate_samples", "samples": [i, j],
                    "message": f"samples {i} and {j} coincide: the trace determines the "
                               "pair only to second order (the Jacobian is singular there), "
                               "so nearby pairs explain it to about half the digits"})
    return found


def report_symmetries(solution, symmetries):
    """``solution`` with ``symmetries`` named: a dataset that explains the trace but is
    known only up to one of them is ``not_unique`` (never ``converged``), listed as one
    representative."""
    if not symmetries:
        return solution
    solution.symmetries = list(solution.symmetries) + list(symmetries)
    explains = solution.status in (Status.CONVERGED, Status.UNIDENTIFIABLE)
    if explains and solution.samples:
        solution.status = Status.NOT_UNIQUE
        kinds = ", ".join(sorted({s["kind"] for s in symmetries}))
        solution.detail = (f"one representative listed: the data are determined only up "
                           f"to a symmetry ({kinds}; see symmetries)"
                           + (f"; {solution.detail}" if solution.detail else ""))
    return solution


# -- representatives ----------------------------------------------------------------------

def _reduced_newton(trace, system, u, columns, dps, arithmetic, damping_mu=None):
    """Gauss-Newton on every step in reduced unknowns ``v`` with ``u = expand(v)``:
    ``columns[c]`` is the entry of ``v`` that unknown ``c`` of the full vector takes (a
    tie of duplicate samples).  ``damping_mu`` adds Levenberg-Marquardt rows
    ``sqrt(mu) I`` (a minimum-norm-like step where the Jacobian is rank deficient: a
    point of a solution manifold).  Returns ``(inputs, labels)`` as mpmath numbers."""
    import numpy as np

    from ..precision import newton_tolerance, precision_floor
    from .evaluation import trace_evaluator
    from .newton import newton

    with arithmetic.workdps(dps):
        evaluator = trace_evaluator(trace, arithmetic, range(system.steps), system=system)
        size = max(columns) + 1
        expand = np.array(columns)
        lm = arithmetic.asarray([mpmath.sqrt(mpmath.mpf(damping_mu))]) if damping_mu else None

        def evaluate(v):
            F, J = evaluator.evaluate(v[expand])
            reduced = arithmetic.zeros((J.shape[0], size))
            for c, target in enumerate(columns):
                reduced[:, target] = reduced[:, target] + J[:, c]
            if lm is None:
                return F, reduced
            eye = arithmetic.zeros((size, size))
            for k in range(size):
                eye[k, k] = lm[0]
            return (np.concatenate([F, arithmetic.zeros(size)]),
                    np.concatenate([reduced, eye], axis=0))

        v = arithmetic.zeros(size)
        for c, target in enumerate(columns):
            v[target] = u[c]
        result = newton(evaluate, v, arithmetic, method="normal",
                        tolerance=newton_tolerance(dps, guard=8), floor=precision_floor(dps),
                        max_iterations=60, damping=8, stop_on_stall=False)
        X, Y = evaluator.split(result.u[expand])
        to_mp = arithmetic.to_mpmath
        return [[to_mp(a) for a in x] for x in X], [[to_mp(a) for a in y] for y in Y]


def tied_representative(trace, system, samples, pairs, dps, arithmetic):
    """Refine ``samples`` with each pair in ``pairs`` tied to one sample (the duplicate
    samples' reduced system has full rank where the full one is singular)."""
    width = trace.network.input_width + trace.network.output_width
    owner = list(range(len(samples)))
    for i, j in pairs:
        owner[j] = owner[i]
    kept = sorted(set(owner))
    columns = [kept.index(owner[i]) * width + c for i in range(len(samples))
               for c in range(width)]
    u = [v for x, y in samples for v in list(x) + list(y)]
    with arithmetic.workdps(dps):
        u = arithmetic.asarray(u)
    return _reduced_newton(trace, system, u, columns, dps, arithmetic)


def manifold_representative(trace, system, dps, arithmetic, seed=0):
    """One dataset explaining a trace whose data form a manifold (a linear network's
    moments): Levenberg-Marquardt from seeded random data, uniform in ``[-1, 1]``."""
    import random
    rng = random.Random(f"symbolic_inversion:representative:{seed}")
    unknowns = trace.samples * (trace.network.input_width + trace.network.output_width)
    with arithmetic.workdps(dps):
        u = arithmetic.asarray([mpmath.mpf(rng.uniform(-1, 1)) for _ in range(unknowns)])
    return _reduced_newton(trace, system, u, list(range(unknowns)), dps, arithmetic,
                           damping_mu=mpmath.mpf(10) ** (-dps // 3))


# -- the report -----------------------------------------------------------------------------

SQUARE_NOTE = ("square trace: no equation beyond the unknowns, so the trace cannot test "
               "its own consistency (a wrong learning rate, sample count or network still "
               "gives a root); the digits vouched for are digits of a root of the system as "
               "written; record at least one more step to check it")

# samples closer than this (max norm) may be duplicates that a singular Jacobian kept
# apart: they are tied and refined together before the verdict
DUPLICATE_SUSPECT = mpmath.mpf("1e-8")


def _judged(trace, options, inputs, labels, method, started, stats):
    """Assess ``(inputs, labels)`` on every step at the refinement precision."""
    from ..precision import refine_dps
    from ..system import InversionSystem
    from .judge import assess
    system = InversionSystem.from_trace(trace, options.steps)
    dps = refine_dps(trace, options.dps)
    with mpmath.workdps(dps):
        return assess(system, inputs, labels, method, started, dps, stats)


def solve_moments_only(trace, options, symmetries):
    """A linear network with more unknowns than moments: one representative dataset
    (Levenberg-Marquardt from random data), reported ``not_unique`` with the symmetry."""
    import time

    from ..precision import refine_dps
    from ..system import InversionSystem
    from .evaluation import real_arithmetic
    started = time.perf_counter()
    system = InversionSystem.from_trace(trace, options.steps)
    arithmetic = real_arithmetic(options.backend)
    dps = refine_dps(trace, options.dps)
    inputs, labels = manifold_representative(trace, system, dps, arithmetic, options.seed)
    solution = _judged(trace, options, inputs, labels, "representative", started,
                       {"equations": system.counts["equations"],
                        "unknowns": system.counts["unknowns"]})
    if solution.status in (Status.CONVERGED, Status.UNIDENTIFIABLE):
        solution.digits = 0
        return report_symmetries(solution, symmetries)
    solution.status = Status.NOT_CONVERGED
    solution.symmetries = list(symmetries)
    solution.detail = ("no representative dataset found (Levenberg-Marquardt from random "
                       "data did not reach the trace's rounding); " + solution.detail)
    return solution


def suspect_pairs(samples):
    """Pairs ``(i, j)`` of samples within ``DUPLICATE_SUSPECT`` of each other (max norm):
    duplicates a singular Jacobian may have kept apart."""
    # a screening threshold: float distances do (exact results are Fractions; their
    # differences pair by pair were 50 s for 64 samples of 784 pixels)
    flat = np.array([[float(v) for v in list(x) + list(y)] for x, y in samples], dtype=float)
    threshold = float(DUPLICATE_SUSPECT)
    pairs = []
    for i in range(len(flat) - 1):
        distances = np.max(np.abs(flat[i + 1:] - flat[i]), axis=1)
        pairs += [(i, i + 1 + int(k)) for k in np.flatnonzero(distances <= threshold)]
    return pairs


def annotate(trace, solution, options):
    """The honest report of a solver's ``solution``: the family's symmetries named (a
    dataset known only up to one is ``not_unique``), duplicate samples tied and checked,
    and the square-trace note."""
    import time

    from ..system import InversionSystem
    from .evaluation import real_arithmetic
    if "square" not in solution.stats and "equations" in solution.stats \
            and "unknowns" in solution.stats:
        solution.stats["square"] = solution.stats["equations"] == solution.stats["unknowns"]
    symmetries = [s for s in family_symmetries(trace)
                  if s["kind"] not in {k["kind"] for k in solution.symmetries}]
    pairs = suspect_pairs(solution.samples) if solution.samples and \
        solution.status is not Status.NOT_UNIQUE else []
    if pairs and trace.samples == len(solution.samples):
        started = time.perf_counter()
        from ..precision import refine_dps
        system = InversionSystem.from_trace(trace, options.steps)
        inputs, labels = tied_representative(trace, system, solution.samples, pairs,
                                             refine_dps(trace, options.dps),
                                             real_arithmetic(options.backend))
        tied = _judged(trace, options, inputs, labels, solution.stats.get("method", "tied"),
                       started, dict(solution.stats, tied_samples=[list(p) for p in pairs]))
        if tied.status in (Status.CONVERGED, Status.UNIDENTIFIABLE):
            tied.digits = 0
            solution = tied
            symmetries += dataset_symmetries(trace, solution.samples,
                                             2 * DUPLICATE_SUSPECT)
    solution = report_symmetries(solution, symmetries)
    kinds = {s["kind"] for s in solution.symmetries}
    if solution.square and solution.status in (Status.CONVERGED, Status.NOT_UNIQUE) \
            and "moments" not in kinds:
        solution.detail = SQUARE_NOTE + (f"; {solution.detail}" if solution.detail else "")
    return solution


def canonical_vector(trace, u):
    """The representative of a flat vector of unknowns (sample by sample, inputs then
    labels) under the family's sign symmetry: each sample mapped by
    ``(x, y) -> (-x, c - y)`` when its first input coordinate is negative (``c``:
    :func:`sign_offset`; ``u`` itself when there is no sign symmetry).  Solvers judge
    canonical candidates, so the symmetric images of one dataset are one dataset."""
    offset = sign_offset(trace.network)
    if offset is None:
        return u
    d = trace.network.input_width
    width = d + trace.network.output_width
    out = list(u)
    for start in range(0, len(out), width):
        if out[start] < 0:
            out[start:start + d] = [-v for v in out[start:start + d]]
            out[start + d:start + width] = [offset - v for v in out[start + d:start + width]]
    return out
