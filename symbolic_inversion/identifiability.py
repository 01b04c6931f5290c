r"""Identifiability: can a trace determine the data at all, and from how many steps?

Three questions, from the coarsest to the finest:

1. **Counting** (:func:`exact_counts`).  ``n`` samples of a ``d``-input, ``m``-output
   network are ``n (d + m)`` unknowns; every step gives one equation per parameter,
   ``P``.  Beside it the paper's count (Section 3.1), which treats every *node* of every
   sample as unknown (``l L I`` unknowns for ``L`` layers of ``l`` nodes, ``I`` samples)
   and so asks for more steps than needed: hidden activations are functions of the
   input and the parameters, not unknowns.
2. **Generic rank** (:func:`generic_rank`).  Counting is necessary, not sufficient:
   equations can be dependent whatever the data (a linear network sees its data only
   through a few moments).  The rank of the system's Jacobian at random data is the
   number of independent equations, for almost every dataset.  It is computed in
   multiprecision, so a zero singular value shows up as ``10^-dps`` relative to the
   largest, far below the smallest genuine one: the *gap* between them (in decades) is
   reported and must be wide for the rank to be trusted.  The minimal number of steps
   ``E`` for local identifiability is the first ``E`` at which the rank equals the
   number of unknowns.
3. **Symmetries of a particular dataset** (:func:`data_symmetries`): neurons whose
   gradient vanishes (zero outgoing weights), dead relu units, samples with the same
   input (only the sum of their labels is seen), and, generally, the directions in
   which the data can move without changing the trace to first order.

Examples
========

>>> from symbolic_inversion import Network
>>> from symbolic_inversion.identifiability import exact_counts, generic_rank
>>> counts = exact_counts(Network([2, 3, 1], ["tanh", "identity"]), samples=3)
>>> counts["parameters"], counts["unknowns"], counts["min_steps"], counts["paper_min_steps"]
(13, 9, 1, 2)

A linear neuron sees its data only through four moments, so three samples (six
unknowns) are never identifiable, however many steps are observed:

>>> rank = generic_rank(Network([1, 1], "identity"), samples=3, max_steps=5, dps=30)
>>> rank.ranks, rank.min_steps, rank.trustworthy
([2, 4, 4, 4, 4], None, True)
"""

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from .errors import InputError, boundary
from .limits import check
from .network import Network
from .precision import rank_dps, symmetry_dps
from .program import layerwise_program
from .system import InversionSystem

__all__ = ["exact_counts", "paper_counts", "generic_rank", "RankReport", "numerical_rank",
           "data_symmetries", "identifiability_report", "analyze_identifiability",
           "format_identifiability"]


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}: must be a positive integer, got {value!r}")
    return int(value)


@boundary("paper_counts")
def paper_counts(widths, depth, samples, steps=1):
    r"""The paper's count (Section 3.1) for ``depth + 1`` layers of ``widths`` nodes.

    ``l L I`` unknowns and ``l (l + 1) (L - 1) E`` equations, ``L = depth + 1``;
    returns the two numbers and the fewest ``E`` with equations >= unknowns.

    >>> paper_counts(4, 2, samples=10)
    {'unknowns': 120, 'equations': 40, 'min_steps': 3}
    """
    widths, depth = _check_positive(widths, "widths"), _check_positive(depth, "depth")
    samples, steps = _check_positive(samples, "samples"), _check_positive(steps, "steps")
    l, L = widths, depth + 1
    unknowns = l * L * samples
    per_step = l * (l + 1) * (L - 1)
    return {"unknowns": unknowns, "equations": per_step * steps,
            "min_steps": -(-unknowns // per_step)}


@boundary("exact_counts")
def exact_counts(network, samples, steps=None):
    """Exact equation and unknown counts, with the paper's beside them.

    Keys: ``parameters`` (equations per step), ``unknowns`` (``n (d + m)``),
    ``equations`` (``steps * parameters``), ``min_steps`` (fewest steps with as many
    equations as unknowns), ``paper_unknowns`` (every node of every sample:
    ``n * sum(widths)``), ``paper_min_steps`` (the steps the paper's count asks for)
    and ``paper_rule`` (its rough rule ``E >= I / l``, with ``l`` the widest layer).

    >>> from symbolic_inversion import Network
    >>> c = exact_counts(Network([784, 64, 10], ["relu", "identity"]), samples=10000)
    >>> c["parameters"], c["unknowns"], c["min_steps"], c["paper_min_steps"]
    (50890, 7940000, 157, 169)
    """
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    samples = _check_positive(samples, "samples")
    parameters = network.num_parameters
    unknowns = samples * (network.input_width + network.output_width)
    min_steps = -(-unknowns // parameters)
    steps = min_steps if steps is None else _check_positive(steps, "steps")
    paper_unknowns = samples * sum(network.layers)
    return {"samples": samples, "steps": steps, "parameters": parameters,
            "unknowns": unknowns, "equations": steps * parameters, "min_steps": min_steps,
            "paper_unknowns": paper_unknowns,
            "paper_min_steps": -(-paper_unknowns // parameters),
            "paper_rule": -(-samples // max(network.layers))}


# -- rank ---------------------------------------------------------------------------

def numerical_rank(matrix, dps, threshold=None):
    """Rank of an mpmath matrix from its singular values, with the gap that supports it.

    Singular values below ``threshold`` (default ``10^(-dps/2)`` relative to the
    largest) count as zero.  Returns ``(rank, gap, singular_values)`` where ``gap``
    is ``log10`` of the smallest non-zero over the largest zero singular value
    (``inf`` when none is zero): zeros computed at ``dps`` digits sit near
    ``10^-dps``, so a gap of many decades means the rank is not an accident of
    rounding.
    """
    with mpmath.workdps(dps):
        if matrix.rows == 0 or matrix.cols == 0:
            return 0, math.inf, []
        values = sorted((abs(s) for s in mpmath.svd_r(matrix, compute_uv=False)),
                        reverse=True)
        if values[0] == 0:
            return 0, math.inf, values
        cut = values[0] * (mpmath.mpf(10) ** (-dps / 2) if threshold is None else threshold)
        nonzero = [s for s in values if s > cut]
        zero = [s for s in values if s <= cut]
        if not zero:
            gap = math.inf
        elif zero[0] == 0:
            gap = math.inf
        else:
            gap = float(mpmath.log10(nonzero[-1] / zero[0])) if nonzero else 0.0
        return len(nonzero), gap, values


def _compress(J, rng, dps):
    """``R J`` with a random ``R`` of ``cols + 4`` rows when ``J`` is much taller.

    Generic rows span the row space of ``J`` with probability one, so the rank is kept
    while the singular value decomposition shrinks to (nearly) square.
    """
    keep = J.cols + 4
    if J.rows <= keep:
        return J
    with mpmath.workdps(dps):
        R = mpmath.matrix(rng.standard_normal((keep, J.rows)).tolist())
        return R * J


@dataclass
class RankReport:
    """Generic rank of the inversion system, step count by step count.

    Attributes
    ==========

    network, samples : the architecture and ``n``
    unknowns, parameters : ``n (d + m)`` and equations per step
    ranks : list of int
        ``ranks[E - 1]`` is the rank of the Jacobian using the first ``E`` steps.
    gaps : list of float
        The decades between the smallest non-zero and the largest zero singular value
        (``inf`` when the Jacobian has full column rank and no zero singular value).
    min_steps : int or None
        The first ``E`` with rank equal to the number of unknowns (local
        identifiability for almost every dataset); ``None`` if not reached by
        ``max_steps``.
    counting_min_steps : int
        What counting alone says.
    dps : working precision; ``trustworthy``: every gap wider than ``dps / 4`` decades.
    """

    network: Network
    samples: int
    unknowns: int
    parameters: int
    ranks: list
    gaps: list
    min_steps: object
    counting_min_steps: int
    dps: int
    detail: str = ""
    smallest_singular_values: list = field(default_factory=list)

    @property
    def trustworthy(self):
        return all(g > self.dps / 4 for g in self.gaps)

    @property
    def saturated(self):
        """The rank stopped growing below the number of unknowns (last two steps equal)."""
        return (self.min_steps is None and len(self.ranks) >= 2
                and self.ranks[-1] == self.ranks[-2] < self.unknowns)

    def _repr_html_(self):
        from .report.display import rank_report_html
        return rank_report_html(self)

    def to_dict(self):
        return {"layers": list(self.network.layers),
                "activations": list(self.network.activations), "bias": self.network.bias,
                "samples": self.samples, "unknowns": self.unknowns,
                "parameters": self.parameters, "ranks": self.ranks,
                "gaps_decades": [round(g, 1) if math.isfinite(g) else None
                                 for g in self.gaps],
                "min_steps": self.min_steps, "counting_min_steps": self.counting_min_steps,
                "dps": self.dps, "trustworthy": self.trustworthy,
                "saturated": self.saturated, "detail": self.detail}


def _random_trace(network, samples, steps, dps, seed, lr):
    """A GD trace of random data through ``network``: the generic point for the rank."""
    from .simulate import simulate
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1, 1, (samples, network.input_width)).round(6).tolist()
    labels = rng.uniform(-1, 1, (samples, network.output_width)).round(6).tolist()
    scale = [1 / math.sqrt(fan_in) for fan_in in network.layers[:-1]]
    init = []
    for (weights, bias), s in zip(network.layer_slices(), scale):
        init += (rng.uniform(-1, 1, weights.stop - weights.start) * 2 * s).round(6).tolist()
        if bias is not None:
            init += rng.uniform(-0.5, 0.5, bias.stop - bias.start).round(6).tolist()
    trace = simulate(network, inputs, labels, lr=lr, epochs=steps, init=init, dps=dps)
    return trace, inputs, labels


@boundary("generic_rank")
def generic_rank(network, samples, max_steps=None, dps=None, seed=0, lr="0.5"):
    """Rank of the inversion system's Jacobian at random data, for ``E = 1..max_steps``.

    Random inputs and labels in ``[-1, 1]``, a random initialization scaled by the
    fan-in, full-batch GD at ``dps`` digits; the Jacobian (with respect to all inputs
    and labels) at the true data is evaluated at ``dps`` digits and its rank read from
    the gap in its singular values (:func:`numerical_rank`).  ``max_steps`` defaults to
    two more than counting asks for.

    Returns a :class:`RankReport`.  Cost: one multiprecision SVD of an
    ``n (d + m)``-column matrix per ``E``; keep ``n (d + m)`` below about 100.
    """
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    samples = _check_positive(samples, "samples")
    counts = exact_counts(network, samples)
    max_steps = counts["min_steps"] + 2 if max_steps is None else \
        _check_positive(max_steps, "max_steps")
    # before random data and a trace are made for them (10^19 samples: numpy's
    # "Maximum allowed dimension exceeded")
    check("max_trace_values", counts["unknowns"], "unknowns")
    check("max_trace_values", network.num_parameters * (max_steps + 1),
          f"values in a trace of {max_steps} steps of {network.num_parameters} parameters")
    dps = _check_positive(rank_dps() if dps is None else dps, "dps")
    trace, inputs, labels = _random_trace(network, samples, max_steps, dps, seed, lr)
    rng = np.random.default_rng(seed + 1)
    ranks, gaps, smallest = [], [], []
    with mpmath.workdps(dps):
        system = InversionSystem.from_trace(trace, max_steps)
        data_x = [[mpmath.mpf(str(v)) for v in x] for x in inputs]
        data_y = [[mpmath.mpf(str(v)) for v in y] for y in labels]
        J = system.jacobian(data_x, data_y)
        P = network.num_parameters
        for steps in range(1, max_steps + 1):
            rows = J[:steps * P, :]
            rank, gap, values = numerical_rank(_compress(rows, rng, dps), dps)
            ranks.append(rank)
            gaps.append(gap)
            smallest.append(mpmath.nstr(values[min(rank, len(values)) - 1], 3)
                            if rank else "0")
    full = [E for E, r in enumerate(ranks, 1) if r == counts["unknowns"]]
    min_steps = full[0] if full else None
    if min_steps is None:
        detail = (f"rank {ranks[-1]} < {counts['unknowns']} unknowns after {max_steps} "
                  "steps: the data are not locally identifiable from these steps")
    elif min_steps > counts["min_steps"]:
        detail = (f"counting asks for {counts['min_steps']} steps, but the equations of the "
                  f"first steps are dependent: {min_steps} are needed")
    else:
        detail = "counting is exact here: the equations are independent"
    return RankReport(network, samples, counts["unknowns"], P, ranks, gaps, min_steps,
                      counts["min_steps"], dps, detail, smallest)


# -- symmetries of a dataset ------------------------------------------------------------

@boundary("data_symmetries")
def data_symmetries(trace, inputs, labels, dps=None, steps=None):
    """Reasons why this dataset is not (locally) identifiable from this trace.

    Returns a list of findings, each a dict with ``kind`` and ``message``:

    ``zero_gradient_neuron``
        a hidden neuron whose outgoing weights are all zero at every step used: its
        incoming weights and bias never receive a gradient, so their equations are
        ``0 = 0``;
    ``dead_relu``
        a relu unit whose pre-activation is negative for every sample at every step: it
        passes neither value nor gradient, its equations are ``0 = 0``;
    ``inactive_sample``
        a sample that switches on no relu unit of a layer at any step: its input is
        invisible (a relu network's generic rank therefore depends on the data);
    ``duplicate_input``
        samples with the same input: the gradient sees only the sum of their labels
        (and, if the labels agree too, the pair moves together to first order);
    ``null_direction``
        the Jacobian has a null space at the data: the unknowns that move along it
        (samples and coordinates), whatever the cause.

    An empty list means none was found and the Jacobian has full column rank.
    """
    network = trace.network
    dps = dps or symmetry_dps(trace)
    system = InversionSystem.from_trace(trace, steps)
    findings = []
    tolerance = 10 * mpmath.mpf(str(trace.resolution))
    with mpmath.workdps(dps):
        xs = [[mpmath.mpf(v) for v in x] for x in inputs]
        ys = [[mpmath.mpf(v) for v in y] for y in labels]
        thetas = [trace.theta(j) for j in range(system.steps)]
        slices = network.layer_slices()
        for layer in range(network.depth - 1):
            weights_next = slices[layer + 1][0]
            fan_in, width = network.layers[layer + 1], network.layers[layer + 2]
            for k in range(network.layers[layer + 1]):
                outgoing = [max(abs(theta[weights_next][o * fan_in + k])
                                for o in range(width)) for theta in thetas]
                if max(outgoing) <= tolerance:
                    findings.append({
                        "kind": "zero_gradient_neuron", "layer": layer + 1, "neuron": k,
                        "message": f"layer {layer + 1} neuron {k} has zero outgoing weights "
                                   "at every step: its incoming weights and bias get no "
                                   "gradient (their equations read 0 = 0)"})
        # pre-activations of every layer, sample and step: the layer-wise program
        values = layerwise_program(network, trace.loss).layer_values(
            thetas, xs, arithmetic="mpmath")[0]
        for layer, name in enumerate(network.activations):
            if name != "relu":
                continue
            pre = [per_step.tolist() for per_step in values[layer]]
            for i in range(len(xs)):
                if all(v <= 0 for per_step in pre for v in per_step[i]):
                    findings.append({
                        "kind": "inactive_sample", "layer": layer + 1, "sample": i,
                        "message": f"sample {i} switches on no relu unit of layer "
                                   f"{layer + 1} at any step: its input is invisible to "
                                   "the trace (only its label enters, through the biases "
                                   "after that layer)"})
            for k in range(network.layers[layer + 1]):
                if all(z[k] <= 0 for per_step in pre for z in per_step):
                    findings.append({
                        "kind": "dead_relu", "layer": layer + 1, "neuron": k,
                        "message": f"relu unit {k} of layer {layer + 1} is dead (negative "
                                   "pre-activation for every sample at every step): it "
                                   "passes no value and no gradient"})
        for i in range(len(xs)):
            for j in range(i + 1, len(xs)):
                if max(abs(a - b) for a, b in zip(xs[i], xs[j])) <= tolerance:
                    same_label = max(abs(a - b) for a, b in zip(ys[i], ys[j])) <= tolerance
                    findings.append({
                        "kind": "duplicate_input", "samples": [i, j],
                        "same_label": bool(same_label),
                        "message": f"samples {i} and {j} have the same input: the trace "
                                   "sees only the sum of their labels"
                                   + (" (and the labels agree: a duplicated sample)"
                                      if same_label else "")})
        J = system.jacobian(xs, ys)
        rank, gap, _ = numerical_rank(J, dps, threshold=mpmath.mpf(10) ** (-dps / 3))
        if rank < J.cols:
            findings += _null_directions(J, rank, network, dps)
    return findings


def _null_directions(J, rank, network, dps):
    """The unknowns that move along the Jacobian's null space, named."""
    width = network.input_width + network.output_width
    with mpmath.workdps(dps):
        _, _, V = mpmath.svd_r(J)
        null = [V[r, :] for r in range(rank, V.rows)]
        weight = [max(abs(v[c]) for v in null) for c in range(J.cols)]
        top = max(weight)
    names = []
    for c, w in enumerate(weight):
        if w > top / 100:
            sample, coordinate = divmod(c, width)
            names.append(f"x[{sample}][{coordinate}]" if coordinate < network.input_width
                         else f"y[{sample}][{coordinate - network.input_width}]")
    return [{"kind": "null_direction", "dimension": J.cols - rank, "unknowns": names,
             "message": f"{J.cols - rank} direction(s) in which the data can move without "
                        f"changing the trace to first order, involving {', '.join(names)}"}]


@boundary("identifiability_report")
def identifiability_report(network, samples, steps=None, dps=None, seed=0,
                           max_unknowns=120):
    """Counts, generic rank and minimal steps for an architecture: what ``analyze`` prints.

    The rank is measured only when ``n (d + m) <= max_unknowns`` (a multiprecision
    SVD per step count); otherwise only the counts are given, with ``rank`` ``None``.
    """
    counts = exact_counts(network, samples, steps)
    report = {"counts": counts, "rank": None}
    if counts["unknowns"] <= max_unknowns:
        max_steps = max(counts["steps"], counts["min_steps"] + 2)
        report["rank"] = generic_rank(network, samples, max_steps=max_steps, dps=dps,
                                      seed=seed).to_dict()
    else:
        report["detail"] = (f"{counts['unknowns']} unknowns: the generic rank is not "
                            f"measured above {max_unknowns}")
    return report


@boundary("analyze_identifiability")
def analyze_identifiability(trace, solution=None, dps=None, max_unknowns=120):
    """The identifiability part of ``analyze``: the trace's architecture, ``n`` and
    steps (counts, generic rank, minimal steps) and, when ``solution`` holds data,
    the symmetries found at it (:func:`data_symmetries`).  JSON-ready."""
    report = identifiability_report(trace.network, trace.samples, trace.steps, dps=dps,
                                    max_unknowns=max_unknowns)
    report["observed_steps"] = trace.steps
    if solution is not None and solution.samples:
        report["symmetries"] = data_symmetries(trace, solution.inputs, solution.labels)
    return report


def format_identifiability(report):
    """Readable lines for :func:`analyze_identifiability`'s report."""
    c = report["counts"]
    lines = [f"identifiability: {c['samples']} samples x {c['unknowns'] // c['samples']} "
             f"values = {c['unknowns']} unknowns; {c['parameters']} equations per step",
             f"  counting: at least {c['min_steps']} steps (the paper's count: "
             f"{c['paper_min_steps']}; its rule E >= I / l: {c['paper_rule']})"]
    rank = report.get("rank")
    if rank is None:
        lines.append(f"  generic rank: not measured ({report.get('detail', '')})")
    else:
        verdict = (f"locally identifiable from {rank['min_steps']} steps"
                   if rank["min_steps"] else "not locally identifiable within "
                   f"{len(rank['ranks'])} steps")
        lines.append(f"  generic rank by steps 1..{len(rank['ranks'])}: {rank['ranks']} "
                     f"({verdict}; {rank['detail']})")
        if "observed_steps" in report:
            seen = report["observed_steps"]
            enough = rank["min_steps"] is not None and seen >= rank["min_steps"]
            lines.append(f"  this trace has {seen} steps: "
                         + ("enough" if enough else "not enough") + " for local identifiability")
    for finding in report.get("symmetries", []):
        lines.append(f"  at the recovered data: {finding['message']}")
    if "symmetries" in report and not report["symmetries"]:
        lines.append("  at the recovered data: no symmetry found, the Jacobian has full rank")
    return lines
