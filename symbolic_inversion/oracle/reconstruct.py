r"""Reconstruction of a ReLU network's architecture and training data from its loss.

:func:`reconstruct_from_loss` sees only loss values ``L(theta)`` at parameter vectors
of its choosing (trace order) and returns a :class:`LossReconstruction`.

1. **Architecture** (:mod:`.architecture`): depth from the degree along lines, layer
   blocks by bisection, widths and bias from which parameters interact.
2. **Inputs** (:mod:`.kinks`): kink hyperplanes in one first-layer neuron's
   parameters; their normals are ``(x_i, 1)`` (exact inputs with a bias) or ``x_i``'s
   direction (without).
3. **Weights and labels**: once the inputs (or directions) are known the loss is
   *linear* in the remaining unknowns,

   .. math:: L(\theta) = \sum_j w_j \|f_\theta(x_j)\|^2
             - 2 \sum_j f_\theta(x_j) \cdot u_j + s,
             \qquad w_j = \frac{m_j}{n},\ u_j = \frac{1}{n}\sum_{x_i = x_j} y_i,

   so a square exact linear solve in loss values at random parameters gives the
   multiplicities ``m_j / n`` (hence ``n``) and the labels; this is the information
   in the jumps of the piecewise polynomial, read off globally.  Without a bias,
   ``f(c u) = c f(u)`` for ``c > 0`` turns the same solve into one for ``c^2 / n`` and
   ``c y / n``, with ``u`` and ``-u`` as separate regressors (which fixes the sign).
4. **Verification**: the rebuilt network and dataset must reproduce the loss at fresh
   random parameters, exactly in exact arithmetic.
"""

import math
import time
from contextlib import nullcontext

import mpmath

from ..arithmetic import get_arithmetic
from ..errors import InputError, boundary
from ..limits import check_int
from ..network import Network
from ..program import layerwise_program
from ..report.progress import Progress
from .arithmetic import ExactField, FloatField, determined, make_rng, solve
from .architecture import discover_architecture
from .kinks import find_hyperplanes, first_layer_indices
from .probe import LossProbe
from .result import LossReconstruction

__all__ = ["reconstruct_from_loss"]


@boundary("reconstruct_from_loss")
def reconstruct_from_loss(loss, num_parameters, *, layers=None, bias=None, dps=None,
                          seed=0, max_depth=8, output_activation=None, max_attempts=None,
                          verify_points=3, parameter_type=None, progress=None):
    r"""Recover the architecture and the training data of a ReLU network from its loss.

    Parameters
    ==========

    loss : callable
        The black box: takes a list of ``num_parameters`` numbers (trace order: layer
        by layer from the input, ``W`` row-major then the bias) and returns
        ``(1/n) sum_i ||f(x_i) - y_i||^2``.  In exact mode it receives
        :class:`~fractions.Fraction` values (or ``parameter_type`` values) and must
        return an exact rational (Fraction, int, SymPy Rational, gmpy2 mpq).
    num_parameters : int
        Length of the parameter vector.
    layers : list of int, optional
        Known widths (input to output): skips the architecture discovery.  Needs
        ``bias`` too.
    bias : bool, optional
        Whether the layers have biases (with ``layers``).
    dps : int, optional
        mpmath mode for a float-valued loss: work at ``dps`` digits and treat
        quantities below ``10**(-0.6 dps)`` (relative) as zero.  ``None`` (default)
        is exact rational arithmetic.
    seed : int
        Seed of the random parameter points (results are reproducible).
    max_depth : int
        Largest number of weight layers considered when measuring the degree.
    output_activation : {"identity", "relu"}, optional
        Fix the output activation instead of trying ``identity`` then ``relu``.
    max_attempts : int, optional
        How many (first-layer neuron, base point) pairs to search for kinks before
        giving up; default ``2 * width + 2``.
    verify_points : int
        Fresh random parameter points at which the rebuilt loss must match.
    parameter_type : callable, optional
        Exact mode: convert each parameter before calling ``loss``
        (e.g. ``sympy.Rational``).
    progress : None, bool or callable
        One event per phase (``architecture``, ``inputs``, ``labels``, ``verification``,
        ``done``); ``True`` writes them on stderr (see
        :mod:`symbolic_inversion.report.progress`).

    Returns
    =======

    LossReconstruction
        ``.layers``, ``.samples``, ``.bias``, ``.depth``, ``.unidentifiable``,
        ``.evaluations``, ``.time``, ``.verified``, ``.status``.

    Examples
    ========

    A 2-2-1 ReLU network with biases, two hidden samples; the reconstruction sees only
    loss values:

    >>> from fractions import Fraction
    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.oracle import LossOracle, reconstruct_from_loss
    >>> network = Network([2, 2, 1], ["relu", "identity"], bias=True)
    >>> oracle = LossOracle(network, inputs=[["1/2", "3"], ["-2", "1"]], labels=[["2"], ["-1/3"]])
    >>> result = reconstruct_from_loss(oracle, oracle.num_parameters, seed=1)
    >>> result.status, result.layers, result.num_samples
    ('recovered', [2, 2, 1], 2)
    >>> sorted((s["x"], s["y"]) for s in result.samples)
    [([Fraction(-2, 1), Fraction(1, 1)], [Fraction(-1, 3)]), ([Fraction(1, 2), Fraction(3, 1)], [Fraction(2, 1)])]
    >>> result.verified, result.evaluations == oracle.evaluations
    (True, True)
    """
    started = time.perf_counter()
    num_parameters = check_int(num_parameters, "num_parameters", minimum=1,
                               limit="max_oracle_parameters")
    if dps is not None:
        dps = check_int(dps, "dps", minimum=5, limit="max_dps")
    field = ExactField() if dps is None else FloatField(dps)
    reporter = Progress.create(progress, "oracle")
    probe = LossProbe(loss, num_parameters, field, parameter_type,
                      progress=reporter if reporter.active else None)
    if output_activation not in (None, "identity", "relu"):
        raise InputError(f"output_activation: expected 'identity' or 'relu', "
                         f"got {output_activation!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed: expected an integer, got {seed!r}")
    rng = make_rng(seed)
    with mpmath.workdps(dps) if dps is not None else nullcontext():
        result = _reconstruct(probe, rng, layers, bias, max_depth, output_activation,
                              max_attempts, verify_points)
    result.evaluations = probe.evaluations
    result.evaluation_counts = dict(probe.counts)
    result.time = time.perf_counter() - started
    result.arithmetic = field.description
    result.dps = dps
    reporter.event("done", status=result.status, evaluations=result.evaluations)
    if reporter is not progress:
        reporter.close()
    return result


def _check_layers(layers, bias, num_parameters):
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise InputError(f"layers: expected a list of widths, got {layers!r}")
    if not isinstance(bias, bool):
        raise InputError("bias: must be True or False when layers are given")
    network = Network(list(layers), "relu", bias)
    if network.num_parameters != num_parameters:
        raise InputError(f"layers: {list(layers)} with bias={bias} has "
                         f"{network.num_parameters} parameters, not {num_parameters}")
    return list(network.layers)


def _reconstruct(probe, rng, layers, bias, max_depth, output_activation, max_attempts,
                 verify_points):
    field = probe.field
    diagnostics = []
    if layers is not None:
        layers = _check_layers(layers, bias, probe.num_parameters)
        diagnostics.append("architecture given by the caller, not discovered")
    else:
        for base_points in (3, 6, 12):
            # Dead neurons at every base point delay a layer boundary or hide an
            # interaction; the self-consistency checks notice, and more points fix it.
            finding = discover_architecture(probe, rng, max_depth=max_depth,
                                            base_points=base_points)
            if finding.consistent:
                break
            diagnostics.append(f"architecture with {base_points} base points not "
                               f"self-consistent: {'; '.join(finding.mismatches)}")
        if finding.layers is None and finding.depth == 1:
            return _single_layer(depth=1, diagnostics=diagnostics)
        if finding.layers is None:
            return LossReconstruction(
                "failed", "no architecture is consistent with the loss: "
                + "; ".join(finding.mismatches), depth=finding.depth,
                diagnostics=[f"layer blocks {finding.block_sizes}"])
        layers, bias = finding.layers, finding.bias
        diagnostics.append(f"architecture: degree {2 * finding.depth} along generic lines, "
                           f"layer blocks {finding.block_sizes}, "
                           f"{finding.checks} interaction tests")
        diagnostics += [f"architecture check failed: {m}" for m in finding.mismatches]
    depth = len(layers) - 1
    base_result = dict(layers=layers, depth=depth, bias=bias, diagnostics=diagnostics)
    if depth < 2:
        return _single_layer(**base_result)

    width = layers[1]
    attempts = max_attempts or 2 * width + 2
    activations = ([output_activation] if output_activation
                   else ["identity", "relu"])
    directions = []
    fitted = None
    for attempt in range(attempts):
        neuron = attempt % width
        probe.phase = "inputs"
        base = [field.random(rng) for _ in range(probe.num_parameters)]
        if attempt % 2 == 0:
            # Positive weights and biases beyond the first layer keep every deeper
            # neuron on: every sample reaches the output through neuron k, and the
            # only kinks are neuron k's own.
            start = layers[0] * layers[1] + (layers[1] if bias else 0)
            base[start:] = [field.positive(rng) for _ in base[start:]]
        found, info = find_hyperplanes(probe, base, first_layer_indices(layers, bias, neuron),
                                       rng, bias)
        if not found:
            diagnostics.append(f"first-layer neuron {neuron} showed no kinks at base point "
                               f"{attempt} (dead for every sample, or its outgoing weights "
                               f"are zero there): trying another")
            continue
        if info["unmatched"] or info["unresolved"]:
            diagnostics.append(f"attempt {attempt}: {info['unmatched']} kinks not matched to "
                               f"a hyperplane, {info['unresolved']} intervals unresolved")
        new = [d for d in found if not any(_same(field, d, known) for known in directions)]
        directions += new
        if not new and fitted is not None:
            continue
        probe.phase = "labels"
        for activation in activations:
            network = Network(layers, ["relu"] * (depth - 1) + [activation], bias)
            fitted = _fit_weights(probe, rng, network, directions)
            if fitted is not None:
                break
        if fitted is not None:
            break
    if fitted is None:
        return LossReconstruction(
            "failed", f"no dataset built from the {len(directions)} input directions found "
                      f"reproduces the loss", directions=directions, **base_result)
    network, weights = fitted
    samples, num_samples, unidentifiable, offset = _samples(field, network, weights)
    if samples is None:
        return LossReconstruction("failed", unidentifiable[-1], directions=directions,
                                  unidentifiable=unidentifiable,
                                  output_activation=network.activations[-1], **base_result)
    zero = [d for d in range(layers[0]) if all(s["x"][d] == 0 for s in samples)]
    if zero and len(samples) > 0 and field.exact:
        unidentifiable += [f"input coordinate {d} is zero for every sample: the loss does "
                           f"not depend on the first-layer weights on it, so only the "
                           f"parameter layout says that this coordinate exists"
                           for d in zero]

    probe.phase = "verification"
    verified = _verify(probe, rng, network, samples, offset, verify_points)
    user = [{"x": [field.to_user(v) for v in s["x"]], "y": [field.to_user(v) for v in s["y"]],
             "multiplicity": s["multiplicity"]} for s in samples]
    if not verified:
        status, message = "unverified", ("the rebuilt dataset does not reproduce the loss "
                                          "at fresh parameter points")
    elif unidentifiable:
        status, message = "ambiguous", ("the rebuilt dataset reproduces the loss, but "
                                        f"{len(unidentifiable)} thing(s) are not identifiable")
    else:
        status, message = "recovered", (f"{num_samples} samples and the architecture "
                                        f"recovered and verified")
    return LossReconstruction(
        status, message, output_activation=network.activations[-1], samples=user,
        num_samples=num_samples, directions=[[field.to_user(v) for v in d] for d in directions],
        unidentifiable=unidentifiable, verified=verified, **base_result)


def _single_layer(**known):
    return LossReconstruction(
        "failed", "a single weight layer has no kinks: the loss is a quadratic in the "
        "parameters and reveals only moments of the data", **known,
        unidentifiable=["with one weight layer the loss is polynomial: only the moments "
                        "sum x x^T, sum y x^T and sum y y^T (over n) are determined, and "
                        "the widths only up to d_1 (d_0 + bias) = number of parameters"])


def _same(field, u, v):
    scale = max(abs(a) for a in list(u) + list(v)) or 1
    return all(field.is_zero(a - b, scale) for a, b in zip(u, v))


def _program_arithmetic(field):
    """The layer-wise program's arithmetic for the field's numbers."""
    return get_arithmetic("rational" if field.exact else "mpmath")


def _outputs(field, network, theta, points):
    """``f(x)`` at every point (lists of the field's numbers), by the layer-wise program."""
    outputs = layerwise_program(network).forward(theta, points,
                                                 arithmetic=_program_arithmetic(field))
    return [[field.number(v) for v in row] for row in outputs[0].tolist()]


def _loss(field, network, theta, inputs, labels):
    """The MSE loss of the dataset at ``theta`` (a field number), by the program."""
    return field.number(layerwise_program(network, "mse").loss_value(
        theta, inputs, labels, _program_arithmetic(field)))


def _regressor_inputs(network, directions):
    if network.bias:
        return [list(d) for d in directions]
    # Without a bias f(c u) = c f(u) for c > 0 only: +u and -u are different inputs.
    return [list(d) for d in directions] + [[-v for v in d] for d in directions]


def _fit_weights(probe, rng, network, directions, extra=2):
    """Solve the loss for ``w_j = m_j / n``, ``u_j`` and ``s``; ``None`` if inconsistent."""
    field = probe.field
    points = _regressor_inputs(network, directions)
    outputs = network.output_width
    unknowns = len(points) * (1 + outputs) + 1
    values, squares, linear = [], [], []
    for _ in range(unknowns + extra):
        theta = [field.random(rng) for _ in range(network.num_parameters)]
        values.append(probe(theta))
        outs = _outputs(field, network, theta, points)
        squares.append([sum(v * v for v in f) for f in outs])
        linear.append([[-2 * v for v in f] for f in outs])

    def system(keep):
        return [[row[j] for j in keep] + [v for j in keep for v in lin[j]] + [field.number(1)]
                for row, lin in zip(squares, linear)]

    keep = list(range(len(points)))
    solution, reason = solve(field, system(keep), values)
    if solution is None and reason == "not unique" and not network.bias:
        # f(u) - f(-u) is linear in u for a bias-free ReLU network, so with more
        # directions than input dimensions the label regressors of +u and -u are
        # dependent.  The weights c^2/n still are determined: keep the rays that
        # carry a sample and solve again.
        known = determined(field, system(keep), values)
        if all(j in known for j in keep):
            keep = [j for j in keep if not field.is_zero(known[j], 1)]
            if keep:
                solution, reason = solve(field, system(keep), values)
    if solution is None:
        return None
    count = len(keep)
    weights = []
    for position, j in enumerate(keep):
        u = solution[count + position * outputs: count + (position + 1) * outputs]
        weights.append((points[j], solution[position], u))
    return network, (weights, solution[-1])


def _rational_multiplier(field, weights):
    """Smallest ``n`` with every ``w n`` an integer (floats: within tolerance)."""
    if field.exact:
        return math.lcm(*(int(w.denominator) for w in weights))
    for n in range(1, 10_000):
        if all(field.is_zero(w * n - mpmath.nint(w * n), 1) for w in weights):
            return n
    return None


def _failure(reason):
    return None, None, [reason], None


def _samples(field, network, fitted):
    """Inputs, labels, multiplicities and ``n`` from the solved weights."""
    weights, mean_square = fitted
    unidentifiable = []
    present = [(x, w, u) for x, w, u in weights if not field.is_zero(w, 1)]
    if any(w < 0 for _, w, _ in present):
        return _failure("a sample weight m/n came out negative: the directions found "
                            "do not describe the loss")
    if not present:
        return _failure("no sample has a non-zero weight")
    if network.bias:
        total = sum(w for _, w, _ in present)
        if not field.is_zero(total - 1, 1):
            return _failure(f"the sample weights m/n add up to {field.text(total)}, "
                                f"not 1")
        n = _rational_multiplier(field, [w for _, w, _ in present])
        if n is None:
            return _failure("the sample weights are not multiples of 1/n")
        samples = []
        for x, w, u in present:
            multiplicity = int(mpmath.nint(w * n)) if not field.exact else int(w * n)
            samples.append({"x": x, "y": [v * n / multiplicity for v in u],
                            "multiplicity": multiplicity})
        repeated = [s for s in samples if s["multiplicity"] > 1]
        for s in repeated:
            unidentifiable.append(
                f"input [{', '.join(field.text(v) for v in s['x'])}] occurs "
                f"{s['multiplicity']} times: identical inputs give one kink hyperplane and "
                f"only the mean of their labels is identified")
        spread = mean_square * n - sum(s["multiplicity"] * sum(v * v for v in s["y"])
                                       for s in samples)
        if repeated and not field.is_zero(spread, abs(mean_square * n) + 1):
            unidentifiable.append(
                f"the labels of repeated inputs differ (their squared spread adds up to "
                f"{field.text(spread)}); the individual labels are not identified")
        elif not repeated and not field.is_zero(spread, abs(mean_square * n) + 1):
            return _failure("the mean squared label does not match the labels found")
        return samples, n, unidentifiable, (spread / n if repeated else field.number(0))

    # Without a bias: one sample per ray assumed, so n is the number of rays.
    n = len(present)
    samples = []
    for x, alpha, beta in present:
        scale = field.sqrt(alpha * n)
        if scale is None or field.is_zero(scale, 1):
            return _failure("without a bias the scale c of an input solves c^2 = n w; "
                                "it has no rational solution here, so some input occurs "
                                "more than once or inputs are positively parallel")
        samples.append({"x": [scale * v for v in x], "y": [b * n / scale for b in beta],
                        "multiplicity": 1})
    spread = mean_square * n - sum(sum(v * v for v in s["y"]) for s in samples)
    if not field.is_zero(spread, abs(mean_square * n) + 1):
        return _failure("without a bias: the mean squared label does not match the "
                            "labels found under the one-sample-per-direction assumption "
                            "(repeated or positively parallel inputs?)")
    unidentifiable += [
        "without a bias (x, y, n) -> (c x, c y, c^2 n) leaves the loss unchanged; the scale "
        "was fixed by assuming that every input direction occurs once (n = number of "
        "directions)",
        "without a bias positively parallel inputs (x and c x, c > 0) give one hyperplane "
        "and one regressor; they are assumed absent",
    ]
    return samples, n, unidentifiable, field.number(0)


def _verify(probe, rng, network, samples, offset, points):
    field = probe.field
    inputs, labels = [], []
    for s in samples:
        inputs += [s["x"]] * s["multiplicity"]
        labels += [s["y"]] * s["multiplicity"]
    for _ in range(points):
        theta = [field.random(rng, scale=2) for _ in range(network.num_parameters)]
        observed = probe(theta)
        # offset: the label spread of repeated inputs, a constant the mean labels miss
        rebuilt = _loss(field, network, theta, inputs, labels) + offset
        if not field.is_zero(observed - rebuilt, abs(observed) + 1):
            return False
    return True
