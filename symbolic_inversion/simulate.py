r"""Training at any precision, and training replayed from recovered data.

:func:`simulate` trains a network by full-batch gradient descent (the paper's eqs.
(1)-(6)), minibatch SGD, momentum and weight decay, in mpmath at ``dps`` significant
digits or in float64 with numpy.  Every step works from the *rounded* parameters the
observer sees, so a ``dps``-digit trace satisfies the update equations to ``dps`` digits.

:func:`resimulate` trains again from recovered data and reports, step by step, how many
digits of the trace it reproduces.

The update equations are those of :class:`~symbolic_inversion.optimizers.Optimizer`
(written once there); the gradient is the network's layer-wise program
(:func:`~symbolic_inversion.codegen.layerwise_program`), the same that evaluates the
inversion system, in mpmath or float64 (:mod:`symbolic_inversion.arithmetic`).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import mpmath
import numpy as np

from .arithmetic import get_arithmetic
from .codegen import layerwise_program
from .errors import InputError, boundary
from .exact import to_decimal
from .limits import check, check_int, check_time
from .network import Network
from .optimizers import OPTIMIZERS, Optimizer
from .precision import resimulate_dps, simulate_dps
from .samples import exact_points, sample_columns
from .trace import Trace

__all__ = ["simulate", "resimulate", "Resimulation", "mean_gradient"]


def mean_gradient(program, arithmetic, theta, inputs, labels):
    """The MSE gradient ``(2/n) sum_i B_i (f_i - y_i)`` at ``theta`` (1-D array) over the
    ``n`` rows of ``inputs`` ``(n, d)`` and ``labels`` ``(n, m)``, from the network's
    layer-wise program (:func:`~symbolic_inversion.codegen.layerwise_program`, the one
    evaluator of the inversion system) in ``arithmetic``.

    >>> import numpy as np
    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.arithmetic import get_arithmetic
    >>> from symbolic_inversion.codegen import layerwise_program
    >>> float64 = get_arithmetic("float64")
    >>> g = mean_gradient(layerwise_program(Network([1, 1], "identity")), float64,
    ...                   np.array([0.5, 0.5]), np.array([[1.0]]), np.array([[0.0]]))
    >>> g  # f = w x + b = 1, (2/1) (f - y) (x, 1)
    array([2., 2.])
    """
    sums = program.half_gradient_sums(theta[None, :], inputs, labels, arithmetic=arithmetic)
    return sums[0] * arithmetic.rational(2, len(inputs))


@boundary("simulate")
def simulate(network, inputs, labels, lr, epochs, init=None, dps=50, backend="mpmath",
             optimizer="gd", batch_size=None, momentum=0, weight_decay=0, seed=None,
             record_batches=True, loss_reduction=None, dtype=None):
    """Train ``network`` on ``(inputs, labels)`` and record the trace.

    Parameters
    ==========

    network : Network
    inputs, labels : sequences
        One list per sample (a flat list for one-dimensional data).
    lr : number or decimal string
    epochs : int
        Passes over the data.  Full-batch GD makes one step per epoch; SGD makes
        ``ceil(n / batch_size)`` steps per epoch, on a fresh shuffle each epoch.
    init : sequence, optional
        Initial parameters in trace order; default uniform in ``[0, 1]`` from ``seed``.
    dps : int
        Significant digits of the recorded parameters (mpmath backend); the gradient is
        computed with guard digits from the rounded parameters.
    backend : ``"mpmath"``, ``"numpy"`` or ``"exact"``
        ``"numpy"`` trains in float64 (``dps`` is then 17, round-trip digits).
        ``"exact"`` trains a ``relu``/``identity`` network by full-batch GD in exact
        rational arithmetic and records every parameter exactly (``dps`` is ignored): a
        step stays a terminating decimal when the data, the initial parameters and
        ``lr * 2 / n`` are, e.g. ``n`` a power of 2 with decimal ``lr``; otherwise
        :class:`InputError` says which step and parameter.
    optimizer : ``"gd"`` or ``"sgd"``
    batch_size, momentum, weight_decay, seed :
        SGD options (PyTorch's momentum convention); ``seed`` drives a numpy
        ``Generator`` for the initial parameters and the shuffles.
    record_batches : bool
        Record the per-step sample indices (the schedule) in the trace.
    loss_reduction : ``"sum_outputs"`` (default) or ``"mean"``
        The loss convention (``"mean"``: PyTorch's ``nn.MSELoss()``, the gradient over
        ``m`` outputs is ``1/m`` of the toolkit's); recorded in the trace.
    dtype : ``"float32"``, ``"float64"`` or None
        Train in that binary format (like PyTorch on a CPU: the gradient computed in
        float64 and rounded to the format, every update step rounded in the format);
        the trace records the exact binary values (``dps`` is ignored).

    Examples
    ========

    The paper's Table 1 (``x = 0.6, y = 0.5``, ``w = b = 0.5``, ``lr = 0.1``):

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.simulate import simulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6], [0.5], lr="0.1", epochs=4,
    ...                  init=[0.5, 0.5], dps=20)
    >>> [[f"{float(v):.3f}" for v in theta] for theta in trace.parameters]
    [['0.500', '0.500'], ['0.489', '0.482'], ['0.479', '0.464'], ['0.469', '0.448'], ['0.460', '0.433']]
    """
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    check("max_parameters", network.num_parameters,
          f"parameters of network {list(network.layers)}")
    X = sample_columns(inputs, network.input_width, "x")
    Y = sample_columns(labels, network.output_width, "y", count=len(X))
    n = len(X)
    lr_decimal = to_decimal(lr, "lr")
    if lr_decimal <= 0:
        raise InputError(f"lr: the learning rate must be positive, got {lr}")
    epochs = check_int(epochs, "epochs", minimum=1)
    if not isinstance(backend, str) or backend not in ("mpmath", "numpy", "exact"):
        raise InputError(f"backend: expected 'mpmath', 'numpy' or 'exact', got {backend!r}")
    dps = check_int(dps, "dps", minimum=5, limit="max_dps")
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "sgd":
        if batch_size is None:
            raise InputError("batch_size: required for sgd")
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=n)
    elif batch_size is not None:  # (full-batch gd would silently ignore it)
        raise InputError("batch_size: only sgd takes a batch size; gd uses every sample at "
                         "every step")
    steps = epochs * (1 if optimizer == "gd" else -(-n // batch_size))
    # the trace is checked before any training: a million steps must not run first
    check("max_trace_values", network.num_parameters * (steps + 1),
          f"values of a trace of {steps} steps of {network.num_parameters} parameters")
    if seed is not None:
        seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    if init is None:
        init = [repr(float(v)) for v in rng.uniform(0, 1, network.num_parameters)]
    if isinstance(init, (str, bytes)) or not hasattr(init, "__len__"):
        raise InputError(f"init: expected a list of {network.num_parameters} numbers, got "
                         f"{type(init).__name__}")
    init = list(init)
    if len(init) != network.num_parameters:
        raise InputError(f"init: expected {network.num_parameters} parameters for "
                         f"{list(network.layers)}, got {len(init)}")
    init = [to_decimal(v, f"init[{p}]") for p, v in enumerate(init)]
    mu, wd = to_decimal(momentum, "momentum"), to_decimal(weight_decay, "weight_decay")
    if not 0 <= mu < 1:
        raise InputError(f"momentum: must be in [0, 1), got {momentum}")
    if wd < 0:
        raise InputError(f"weight_decay: must be non-negative, got {weight_decay}")
    rule = Optimizer(optimizer, lr_decimal, mu, wd,
                     batch_size if optimizer == "sgd" else None)
    from .floats import check_dtype
    from .trace import _check_reduction
    dtype, loss_reduction = check_dtype(dtype), _check_reduction(loss_reduction)
    scale = network.output_width if loss_reduction == "mean" else 1

    schedule = []
    for _ in range(epochs):
        if optimizer == "gd":
            schedule.append(list(range(n)))
        else:
            order = [int(i) for i in rng.permutation(n)]
            schedule += [order[k:k + batch_size] for k in range(0, n, batch_size)]

    if backend == "exact":
        if optimizer != "gd" or mu or wd or dtype is not None:
            raise InputError("backend: 'exact' trains by plain full-batch gd (no sgd, "
                             "momentum, weight decay or dtype)")
        recorded = _train_exact(network, X, Y, lr_decimal, init, epochs, loss_reduction)
        return Trace(network, lr_decimal, n, recorded, loss_reduction=loss_reduction)
    if dtype is not None:
        return _simulate_binary(network, X, Y, init, rule, schedule, dtype, scale,
                                record_batches, loss_reduction)
    if backend == "numpy":
        arithmetic, working = get_arithmetic("float64"), 17
        record = lambda v: f"{float(v):.16e}"  # noqa: E731 - all 17 digits of a double
    else:
        arithmetic, working = get_arithmetic("mpmath"), simulate_dps(dps)
        record = lambda v: mpmath.nstr(v, dps, strip_zeros=False)  # noqa: E731
    program = layerwise_program(network)
    with arithmetic.workdps(working):
        xs, ys = arithmetic.asarray(X), arithmetic.asarray(Y)
        theta, velocity = arithmetic.asarray(init), None
        recorded = [[record(t) for t in theta]]
        for batch in schedule:
            check_time()
            gradient = mean_gradient(program, arithmetic, theta, xs[batch], ys[batch])
            if scale != 1:
                gradient = gradient * arithmetic.rational(1, scale)
            theta, velocity = rule.step(theta, gradient, velocity, number=arithmetic.number)
            recorded.append([record(t) for t in theta])
            theta = arithmetic.asarray(recorded[-1])

    batches = schedule if (optimizer == "sgd" and record_batches) else None
    return Trace(network, lr_decimal, n, recorded, optimizer=rule, batches=batches,
                 loss_reduction=loss_reduction)


def _train_exact(network, X, Y, lr, init, epochs, reduction):
    """Parameter vectors of exact full-batch GD (relu/identity networks), as exact
    decimals."""
    from fractions import Fraction

    from .piecewise import PIECEWISE_LINEAR
    from .piecewise import mean_gradient as piecewise_gradient
    from .rational import format_rational, terminates
    if not all(name in PIECEWISE_LINEAR for name in network.activations):
        raise InputError(f"backend: 'exact' needs piecewise-linear activations "
                         f"{PIECEWISE_LINEAR}, got {list(network.activations)}")
    xs = [[Fraction(v) for v in x] for x in X]
    ys = [[Fraction(v) for v in y] for y in Y]
    theta = [Fraction(v) for v in init]
    step = Fraction(lr)
    # Decimal objects, not text: the Trace then skips parsing 10^5-10^6 strings
    recorded = [[Decimal(format_rational(t)) for t in theta]]
    for epoch in range(epochs):
        gradient = piecewise_gradient(network, theta, xs, ys, reduction)
        theta = [t - step * g for t, g in zip(theta, gradient)]
        for p, value in enumerate(theta):
            if not terminates(value):
                raise InputError(
                    f"backend: exact step {epoch + 1} gives parameter {p} = "
                    f"{value.numerator}/{value.denominator}, not a terminating decimal; "
                    f"choose lr so that lr * 2 / n is a terminating decimal (n = {len(xs)})")
        recorded.append([Decimal(format_rational(t)) for t in theta])
    return recorded


def _simulate_binary(network, X, Y, init, rule, schedule, dtype, scale, record_batches,
                     loss_reduction):
    """Training in float32/float64 the way PyTorch's SGD does it on a CPU: the mean
    gradient (float64 layer-wise program, rounded to the format), then the optimizer's
    update with every operation in the format (:meth:`Optimizer.step` on numpy arrays of
    the format, coefficients rounded to it)."""
    from .floats import DTYPES
    kind = DTYPES[dtype][0]
    float64, program = get_arithmetic("float64"), layerwise_program(network)
    xs, ys = float64.asarray(X), float64.asarray(Y)
    theta = np.asarray([kind(float(v)) for v in init], dtype=kind)
    velocity, recorded = None, [list(theta)]
    for batch in schedule:
        gradient = mean_gradient(program, float64, theta.astype(np.float64), xs[batch],
                                 ys[batch]) / scale
        theta, velocity = rule.step(theta, gradient.astype(kind), velocity)
        theta = theta.astype(kind)
        recorded.append(list(theta))
    batches = schedule if (rule.name == "sgd" and record_batches) else None
    return Trace(network, rule.lr, len(X), recorded, optimizer=rule, batches=batches,
                 loss_reduction=loss_reduction, dtype=dtype)


@dataclass
class Resimulation:
    """Training replayed from recovered data, compared with the trace step by step.

    Attributes
    ==========

    digits : list of int
        For every step ``j = 1..E``: the fewest significant digits, over all
        parameters, in which the replayed ``theta_j`` agrees with the trace (the
        trace's own digits when it rounds to exactly the recorded number).
    differences : list of mpf
        The largest absolute difference per step.
    """

    digits: list
    differences: list
    dps: int

    @property
    def min_digits(self):
        return min(self.digits)

    def to_dict(self):
        return {"digits": self.digits, "min_digits": self.min_digits,
                "differences": [mpmath.nstr(v, 3) for v in self.differences],
                "dps": self.dps}

    def __str__(self):
        return "digits matching per step: " + " ".join(
            f"{j}:{d}" for j, d in enumerate(self.digits, 1))


def _matching_digits(value, recorded):
    """Significant digits of ``recorded`` (a Decimal) that ``value`` reproduces."""
    exponent = recorded.as_tuple().exponent
    significant = len(recorded.as_tuple().digits)
    if _to_decimal_places(value, exponent) == recorded:
        return significant
    difference = abs(value - mpmath.mpf(str(recorded)))
    scale = abs(mpmath.mpf(str(recorded))) or mpmath.mpf(10) ** exponent
    digits = int(mpmath.floor(-mpmath.log10(difference / scale)))
    return max(0, min(significant, digits))


def _to_decimal_places(value, exponent):
    """``value`` rounded to the decimal place ``10**exponent`` (half even)."""
    text = mpmath.nstr(value, mpmath.mp.dps, strip_zeros=False, min_fixed=1, max_fixed=0)
    with localcontext() as context:
        context.prec = mpmath.mp.dps + 10
        return Decimal(text).quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)


@boundary("resimulate")
def resimulate(trace, samples, dps=None, rounding=True):
    """Train again from ``samples`` and compare with the trace, step by step.

    Parameters
    ==========

    trace : Trace
    samples : list of (x, y) or Solution
    dps : int, optional
        Working precision (default
        :func:`~symbolic_inversion.precision.resimulate_dps`: the trace's digits plus 20).
    rounding : bool
        Continue every step from the parameters rounded to the trace's decimal places,
        as an observer's records (and :func:`~symbolic_inversion.simulate`) do;
        ``False`` trains at full working precision.

    Examples
    ========

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.simulate import simulate, resimulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6, 0.2], [0.5, 0.4], lr="0.1",
    ...                  epochs=3, init=[0.5, 0.5], dps=30)
    >>> resimulate(trace, [([0.6], [0.5]), ([0.2], [0.4])]).digits
    [30, 30, 30]
    >>> resimulate(trace, [([0.6], [0.5]), ([0.2], [0.401])]).digits
    [3, 3, 3]
    """
    if not isinstance(trace, Trace):
        raise InputError("resimulate: expected a Trace")
    network = trace.network
    points = exact_points(samples, network)
    if len(points) != trace.samples:
        raise InputError(f"samples: the trace has {trace.samples} samples, got {len(points)}")
    if dps is None:
        dps = resimulate_dps(trace)
    arithmetic, program = get_arithmetic("mpmath"), layerwise_program(network)
    d = network.input_width
    digits, differences = [], []
    with arithmetic.workdps(dps):
        data = arithmetic.asarray([[mpmath.mpf(v.numerator) / v.denominator for v in point]
                                   for point in points])
        inputs, labels = data[:, :d], data[:, d:]
        theta, velocity = arithmetic.asarray(trace.theta(0)), None
        for step in range(trace.steps):
            batch = trace.batch(step)
            gradient = mean_gradient(program, arithmetic, theta, inputs[batch], labels[batch])
            if trace.gradient_scale != 1:
                gradient = gradient * arithmetic.rational(1, int(trace.gradient_scale))
            theta, velocity = trace.optimizer.step(theta, gradient, velocity,
                                                   number=arithmetic.number)
            recorded = trace.parameters[step + 1]
            digits.append(min(_matching_digits(t, r) for t, r in zip(theta, recorded)))
            differences.append(max(abs(t - mpmath.mpf(str(r)))
                                   for t, r in zip(theta, recorded)))
            if rounding:
                theta = arithmetic.asarray(
                    [_to_decimal_places(t, r.as_tuple().exponent)
                     for t, r in zip(theta, recorded)])
    return Resimulation(digits, differences, dps)
