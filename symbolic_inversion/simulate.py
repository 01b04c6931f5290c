r"""Training at any precision, and training replayed from recovered data.

:func:`simulate` trains a network on any loss of :mod:`~symbolic_inversion.losses` with
any optimizer of :mod:`~symbolic_inversion.optimizers` (full-batch gradient descent as
in the paper's eqs. (1)-(6), minibatch SGD, momentum, Nesterov, Adam, AdamW, a known
learning-rate schedule), in mpmath at ``dps`` significant digits or in float64 with
numpy.  Every step works from the *rounded* parameters the
observer sees, so a ``dps``-digit trace satisfies the update equations to ``dps`` digits.

:func:`resimulate` trains again from recovered data and reports, step by step, how many
digits of the trace it reproduces.

The update equations are those of :class:`~symbolic_inversion.optimizers.Optimizer`
(written once there); the gradient is the network's layer-wise program
(:func:`~symbolic_inversion.program.layerwise_program`), the same that evaluates the
inversion system, in mpmath or float64 (:mod:`symbolic_inversion.arithmetic`).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import mpmath
import numpy as np

from .arithmetic import get_arithmetic
from .program import layerwise_program
from .errors import InputError, boundary
from .exact import to_decimal
from .limits import check, check_int, check_time
from .network import Network
from .optimizers import Optimizer
from .precision import resimulate_dps, simulate_dps
from .samples import exact_points, sample_columns
from .trace import Trace

__all__ = ["simulate", "resimulate", "Resimulation"]


@boundary("simulate")
def simulate(network, inputs, labels, lr, epochs, init=None, dps=50, backend="mpmath",
             optimizer="gd", batch_size=None, momentum=0, weight_decay=0, seed=None,
             record_batches=True, loss_reduction=None, dtype=None, loss="mse",
             clients=None):
    """Train ``network`` on ``(inputs, labels)`` and record the trace.

    Parameters
    ==========

    network : Network
    inputs, labels : sequences
        One list per sample (a flat list for one-dimensional data).  For a classifying
        loss (``cross_entropy``) a flat list of integers is a list of class indices
        (one-hot labels); probability vectors are soft labels.
    lr : number or decimal string, or a list with one per step (a schedule)
    epochs : int
        Passes over the data.  Full-batch training makes one step per epoch; minibatch
        training (``batch_size``) ``ceil(n / batch_size)`` steps per epoch, on a fresh
        shuffle each epoch.
    init : sequence, optional
        Initial parameters in trace order; default uniform in ``[0, 1]`` from ``seed``.
    dps : int
        Significant digits of the recorded parameters (mpmath backend); the gradient is
        computed with guard digits from the rounded parameters (the optimizer's state,
        which the observer does not see, is kept at the working precision).
    backend : ``"mpmath"``, ``"numpy"`` or ``"exact"``
        ``"numpy"`` trains in float64 (``dps`` is then 17, round-trip digits).
        ``"exact"`` trains a piecewise-linear network (``relu``, ``leaky_relu``,
        ``identity``) by full-batch GD on MSE in exact rational arithmetic (the
        layer-wise program's ``rational`` arithmetic) and records
        every parameter exactly (``dps`` is ignored): a step stays a terminating decimal
        when the data, the initial parameters and ``lr * 2 / n`` are, e.g. ``n`` a power
        of 2 with decimal ``lr``; otherwise :class:`InputError` says which step and
        parameter.
    optimizer : ``"gd"``, ``"sgd"``, ``"adam"``, ``"adamw"``, an
        :class:`~symbolic_inversion.optimizers.Optimizer` or the trace file's optimizer
        object (a dict: every option, e.g. ``{"name": "adam", "betas": ["0.8", "0.99"]}``)
    batch_size, momentum, weight_decay :
        Options for an optimizer given by name (PyTorch's conventions); ``batch_size``
        makes minibatch steps (required for ``sgd``).
    seed : int
        Drives a numpy ``Generator`` for the initial parameters and the shuffles.
    record_batches : bool
        Record the per-step sample indices (the schedule) in the trace.
    loss : ``"mse"`` (default), ``"cross_entropy"`` or ``"bce_with_logits"``
    loss_reduction : str, optional
        The loss's reduction (default: the loss's own; for MSE ``"sum_outputs"``, the
        paper's; ``"mean"`` is PyTorch's ``nn.MSELoss()``); recorded in the trace.
    dtype : ``"float32"``, ``"float64"`` or None
        Train in that binary format (like PyTorch on a CPU: the gradient computed in
        float64 and rounded to the format, every update step rounded in the format);
        the trace records the exact binary values (``dps`` is ignored).
    clients : list, optional
        Federated rounds (FedAvg) of several clients: ``[{"samples": n_c, "weight":
        w_c}, ...]`` (the next ``n_c`` samples are client ``c``'s; the counts sum to
        ``n``).  With clients or ``local_steps`` in the optimizer, ``epochs`` counts
        rounds: every recorded step is the weighted mean of the clients' parameters after
        ``local_steps`` steps each from the recorded ones (the state reset every round
        unless ``reset_state`` is false); minibatch local steps (one client) take the
        next ``local_steps`` batches of passes over shuffled data.

    Examples
    ========

    The paper's Table 1 (``x = 0.6, y = 0.5``, ``w = b = 0.5``, ``lr = 0.1``):

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.simulate import simulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6], [0.5], lr="0.1", epochs=4,
    ...                  init=[0.5, 0.5], dps=20)
    >>> [[f"{float(v):.3f}" for v in theta] for theta in trace.parameters]
    [['0.500', '0.500'], ['0.489', '0.482'], ['0.479', '0.464'], ['0.469', '0.448'], ['0.460', '0.433']]

    A federated round: two clients of one sample each, three local steps each:

    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
    ...                  epochs=2, init=["0.5", "0.5"], dps=20,
    ...                  optimizer={"name": "gd", "lr": "0.1", "local_steps": 3},
    ...                  clients=[{"samples": 1, "weight": "1"}, {"samples": 1, "weight": "1"}])
    >>> trace.steps, trace.rounds, [str(v)[:8] for v in trace.parameters[1]]
    (2, True, ['0.479098', '0.447348'])

    A classifier trained with Adam on cross-entropy (class indices as labels):

    >>> net = Network([2, 3, 3], ["tanh", "identity"])
    >>> trace = simulate(net, [[0.1, 0.2], [0.3, -0.4]], [2, 0], lr="0.01", epochs=2,
    ...                  seed=0, loss="cross_entropy", optimizer="adam", dps=30)
    >>> trace.loss, trace.optimizer.name, trace.steps
    (Loss('cross_entropy', reduction='mean'), 'adam', 2)
    """
    from .losses import get_loss
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    check("max_parameters", network.num_parameters,
          f"parameters of network {list(network.layers)}")
    rule_of_loss = get_loss(loss, loss_reduction)
    X = sample_columns(inputs, network.input_width, "x")
    Y = _labels(labels, network.output_width, rule_of_loss, len(X))
    n = len(X)
    epochs = check_int(epochs, "epochs", minimum=1)
    if not isinstance(backend, str) or backend not in ("mpmath", "numpy", "exact"):
        raise InputError(f"backend: expected 'mpmath', 'numpy' or 'exact', got {backend!r}")
    dps = check_int(dps, "dps", minimum=5, limit="max_dps")
    rule = _optimizer(optimizer, lr, batch_size, momentum, weight_decay, n)
    size = rule.batch_size or n
    steps = epochs * -(-n // size)
    rule.check_steps(steps) if rule.schedule is not None else None
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
    from .floats import check_dtype
    dtype = check_dtype(dtype)

    from .trace import _check_clients
    clients = _check_clients(clients, n)
    rounds = rule.local_steps > 1 or clients is not None
    K = rule.local_steps
    schedule = []
    if rule.minibatch:
        # passes over shuffled data: epochs of them, or (rounds) enough for every local step
        needed = epochs * K if rounds else epochs * -(-n // size)
        while len(schedule) < needed:
            order = [int(i) for i in rng.permutation(n)]
            schedule += [order[k:k + size] for k in range(0, n, size)]
        schedule = schedule[:needed]
    elif not rounds:
        schedule = [list(range(n)) for _ in range(epochs)]
    plan = _round_plan(schedule, rounds, rule, clients, n, epochs)
    batches = schedule if (rule.minibatch and record_batches) else None

    if (backend == "exact" or dtype is not None) and rounds:
        from .errors import NotSupportedError
        raise NotSupportedError("simulate: federated rounds train in mpmath or float64 "
                                "(backend mpmath or numpy, no dtype)")
    if backend == "exact":
        if rule.name != "gd" or getattr(rule, "momentum", 0) or rule.weight_decay or \
                dtype is not None or rule.schedule is not None or rule_of_loss.name != "mse":
            raise InputError("backend: 'exact' trains by plain full-batch gd on mse (no "
                             "sgd, momentum, weight decay, schedule, other loss or dtype)")
        recorded = _train_exact(network, X, Y, rule.lr, init, epochs, rule_of_loss)
        return Trace(network, rule.lr, n, recorded, loss=rule_of_loss)
    if dtype is not None:
        return _simulate_binary(network, X, Y, init, rule, schedule, dtype, batches,
                                rule_of_loss)
    if backend == "numpy":
        arithmetic, working = get_arithmetic("float64"), 17
        record = lambda v: f"{float(v):.16e}"  # noqa: E731 - all 17 digits of a double
    else:
        arithmetic, working = get_arithmetic("mpmath"), simulate_dps(dps)
        record = lambda v: mpmath.nstr(v, dps, strip_zeros=False)  # noqa: E731
    program = layerwise_program(network, rule_of_loss)
    with arithmetic.workdps(working):
        xs, ys = arithmetic.asarray(X), arithmetic.asarray(Y)
        theta, state = arithmetic.asarray(init), None
        recorded = [[record(t) for t in theta]]
        for index, round_ in enumerate(plan):
            mean = None
            for weight, local in round_:
                local_theta = theta
                if rounds and rule.reset_state:
                    state = None
                for batch in local:
                    check_time()
                    gradient = program.mean_gradient(local_theta, xs[batch], ys[batch],
                                                     arithmetic, rule_of_loss)
                    local_theta, state = rule.step(local_theta, gradient, state, index,
                                                   arithmetic.number)
                share = local_theta if len(round_) == 1 else \
                    local_theta * arithmetic.rational(weight.numerator, weight.denominator)
                mean = share if mean is None else mean + share
            recorded.append([record(t) for t in mean])
            theta = arithmetic.asarray(recorded[-1])
    return Trace(network, rule.lr, n, recorded, optimizer=rule, batches=batches,
                 loss=rule_of_loss,
                 clients=None if clients is None else
                 [{"samples": count, "weight": str(weight)} for count, weight in clients])


def _round_plan(schedule, rounds, rule, clients, n, epochs):
    """Per recorded step, ``[(client weight, [batch of each local step])]``: one step of
    one batch without rounds; with them, every client's samples ``local_steps`` times
    (full batch) or the next ``local_steps`` minibatches (one client)."""
    from fractions import Fraction
    if not rounds:
        return [[(Fraction(1), [batch])] for batch in schedule]
    K = rule.local_steps
    if rule.minibatch:
        return [[(Fraction(1), schedule[j * K:(j + 1) * K])] for j in range(epochs)]
    groups = [(Fraction(1), list(range(n)))] if clients is None else []
    if clients is not None:
        total, start = sum(Fraction(w) for _, w in clients), 0
        for count, weight in clients:
            groups.append((Fraction(weight) / total, list(range(start, start + count))))
            start += count
    return [[(weight, [indices] * K) for weight, indices in groups] for _ in range(epochs)]


def _labels(labels, width, loss, count):
    """Labels as lists of Decimals; class indices become one-hot vectors for a
    classifying loss."""
    if loss.classifies and width > 1 and not isinstance(labels, (str, bytes, dict)) \
            and hasattr(labels, "__iter__"):
        values = list(labels)
        if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                          for v in values):
            for i, k in enumerate(values):
                if not 0 <= k < width:
                    raise InputError(f"y[{i}]: class {k} is not in 0..{width - 1}")
            labels = [[int(k == c) for c in range(width)] for k in values]
    return sample_columns(labels, width, "y", count=count)


def _optimizer(optimizer, lr, batch_size, momentum, weight_decay, samples):
    """The :class:`Optimizer` of :func:`simulate`'s arguments."""
    if isinstance(optimizer, (Optimizer, dict)):
        rule = Optimizer.from_dict(dict(optimizer.to_dict() if isinstance(
            optimizer, Optimizer) else optimizer, lr=lr if lr is not None else
            (optimizer.lr if isinstance(optimizer, Optimizer) else optimizer.get("lr"))))
        return rule.check_samples(samples)
    if not isinstance(optimizer, str):
        raise InputError(f"optimizer: expected a name, an Optimizer or an object, got "
                         f"{type(optimizer).__name__}")
    options = {}
    if batch_size is not None:
        options["batch_size"] = check_int(batch_size, "batch_size", minimum=1,
                                          maximum=samples)
    if momentum:
        options["momentum"] = momentum
    if weight_decay:
        options["weight_decay"] = weight_decay
    if optimizer == "gd" and "batch_size" in options:  # (full-batch gd would ignore it)
        raise InputError("batch_size: only sgd takes a batch size; gd uses every sample at "
                         "every step")
    return Optimizer.from_dict(dict(options, name=optimizer, lr=lr)).check_samples(samples)


def _train_exact(network, X, Y, lr, init, epochs, loss):
    """Parameter vectors of exact full-batch GD (piecewise-linear networks: the
    layer-wise program in rational arithmetic), as exact decimals."""
    from .activations import get_activation
    from .rational import format_rational, terminates
    linear = [name for name in network.activations if get_activation(name).piecewise_linear]
    if len(linear) < len(network.activations):
        raise InputError(f"backend: 'exact' needs piecewise-linear activations (relu, "
                         f"leaky_relu, identity), got {list(network.activations)}")
    rational = get_arithmetic("rational")
    program = layerwise_program(network, loss)
    xs, ys = rational.asarray(X), rational.asarray(Y)
    theta = rational.asarray(init)
    step = rational.number(lr)
    # Decimal objects, not text: the Trace then skips parsing 10^5-10^6 strings
    recorded = [[Decimal(format_rational(t)) for t in theta]]
    for epoch in range(epochs):
        theta = theta - step * program.mean_gradient(theta, xs, ys, rational, loss)
        for p, value in enumerate(theta):
            if not terminates(value):
                raise InputError(
                    f"backend: exact step {epoch + 1} gives parameter {p} = "
                    f"{value.numerator}/{value.denominator}, not a terminating decimal; "
                    f"choose lr so that lr * 2 / n is a terminating decimal (n = {len(xs)})")
        recorded.append([Decimal(format_rational(t)) for t in theta])
    return recorded


def _simulate_binary(network, X, Y, init, rule, schedule, dtype, batches, loss):
    """Training in float32/float64 the way PyTorch does it on a CPU: the mean gradient
    (float64 layer-wise program, rounded to the format), then the optimizer's update
    with every operation in the format (:meth:`Optimizer.step` on numpy arrays of the
    format, coefficients rounded to it)."""
    from .floats import DTYPES
    kind = DTYPES[dtype][0]
    float64, program = get_arithmetic("float64"), layerwise_program(network, loss)
    xs, ys = float64.asarray(X), float64.asarray(Y)
    theta = np.asarray([kind(float(v)) for v in init], dtype=kind)
    state, recorded = None, [list(theta)]
    for index, batch in enumerate(schedule):
        gradient = program.mean_gradient(theta.astype(np.float64), xs[batch], ys[batch],
                                         float64, loss)
        theta, state = rule.step(theta, gradient.astype(kind), state, index)
        theta = theta.astype(kind)
        recorded.append(list(theta))
    return Trace(network, rule.lr, len(X), recorded, optimizer=rule, batches=batches,
                 loss=loss, dtype=dtype)


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

    def _repr_html_(self):
        from .report.display import resimulation_html
        return resimulation_html(self)

    def __str__(self):
        return "digits matching per step: " + " ".join(
            f"{j}:{d}" for j, d in enumerate(self.digits, 1))


def _matching_digits(value, recorded, dps):
    """Significant digits of ``recorded`` (a Decimal) that ``value`` (computed at ``dps``
    digits) reproduces."""
    exponent = recorded.as_tuple().exponent
    significant = len(recorded.as_tuple().digits)
    if _to_decimal_places(value, exponent, dps) == recorded:
        return significant
    difference = abs(value - mpmath.mpf(str(recorded)))
    scale = abs(mpmath.mpf(str(recorded))) or mpmath.mpf(10) ** exponent
    digits = int(mpmath.floor(-mpmath.log10(difference / scale)))
    return max(0, min(significant, digits))


def _to_decimal_places(value, exponent, dps):
    """``value`` (computed at ``dps`` digits) rounded to the decimal place
    ``10**exponent`` (half even)."""
    text = mpmath.nstr(value, dps, strip_zeros=False, min_fixed=1, max_fixed=0)
    with localcontext() as context:
        context.prec = dps + 10
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
    arithmetic = get_arithmetic("mpmath")
    program = layerwise_program(network, trace.loss)
    d = network.input_width
    digits, differences = [], []
    with arithmetic.workdps(dps):
        data = arithmetic.asarray([[mpmath.mpf(v.numerator) / v.denominator for v in point]
                                   for point in points])
        inputs, labels = data[:, :d], data[:, d:]
        theta, state = arithmetic.asarray(trace.theta(0)), None
        for step in range(trace.steps):
            batch = trace.batch(step)
            gradient = program.mean_gradient(theta, inputs[batch], labels[batch],
                                             arithmetic, trace.loss)
            theta, state = trace.optimizer.step(theta, gradient, state, step,
                                                arithmetic.number)
            recorded = trace.parameters[step + 1]
            digits.append(min(_matching_digits(t, r, dps) for t, r in zip(theta, recorded)))
            differences.append(max(abs(t - mpmath.mpf(str(r)))
                                   for t, r in zip(theta, recorded)))
            if rounding:
                theta = arithmetic.asarray(
                    [_to_decimal_places(t, r.as_tuple().exponent, dps)
                     for t, r in zip(theta, recorded)])
    return Resimulation(digits, differences, dps)
