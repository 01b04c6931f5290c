"""Step 3 of the workflow: training traces, what an observer of training sees.

A :class:`Trace` holds the parameter vectors after every optimizer step, the network,
the learning rate and the number of samples.  Numbers are kept as :class:`decimal.Decimal`
so a 60-digit trace read from a file is written back character for character; numeric
code asks for them as mpmath numbers at its own working precision.

:func:`simulate` trains a network by full-batch gradient descent (the paper's eqs.
(1)-(6)), minibatch SGD, momentum and weight decay, in mpmath at ``dps`` significant
digits or in float64 with numpy.  Every step works from the *rounded* parameters the
observer sees, so a ``dps``-digit trace satisfies the update equations to ``dps`` digits.

Reading a trace validates it field by field; the file is data, never code (no ``eval``,
no ``sympify``, no pickle).
"""

import contextlib
import json
import math
import re
from decimal import Decimal, InvalidOperation

import mpmath
import numpy as np

from .codegen import compile_network
from .errors import InputError
from .network import Network
from .piecewise import PIECEWISE_LINEAR
from .piecewise import mean_gradient as piecewise_gradient

__all__ = ["Trace", "simulate", "read_trace", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "symbolic-inversion-trace"
FORMAT_VERSION = 1
OPTIMIZERS = ("gd", "sgd")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MAX_NUMBER_LENGTH = 10_000
_MAX_EXPONENT = 10_000


def to_decimal(value, field):
    """A finite :class:`Decimal` from a decimal string, an int, a float or a Decimal.

    Anything else, including strings that are not plain decimal numbers, is refused
    with a message naming ``field``.

    >>> to_decimal("0.4925472", "lr")
    Decimal('0.4925472')
    >>> to_decimal("__import__('os')", "lr")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: lr: not a decimal number: "__import__('os')"
    """
    if isinstance(value, bool):
        raise InputError(f"{field}: expected a number, got {json.dumps(value)}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(float(value))) if math.isfinite(value) else Decimal("NaN")
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMBER_LENGTH or not _DECIMAL.fullmatch(text):
            shown = text if len(text) < 60 else text[:57] + "..."
            raise InputError(f"{field}: not a decimal number: {json.dumps(shown)}")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
            raise InputError(f"{field}: not a decimal number: {json.dumps(text)}") from None
    elif isinstance(value, (mpmath.mpf, np.floating)):
        return to_decimal(str(value) if isinstance(value, mpmath.mpf) else float(value), field)
    else:
        raise InputError(f"{field}: expected a number, got {type(value).__name__}")
    if not number.is_finite():
        raise InputError(f"{field}: not a finite number: {value}")
    # Decimal arithmetic on the trace (resolution, exact right-hand sides) overflows its
    # context far before this; no trained parameter is anywhere near these magnitudes.
    if not -_MAX_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        raise InputError(f"{field}: exponent out of range (at most 1e+/-{_MAX_EXPONENT}): "
                         f"{number:.3e}")
    return number


def _significant_digits(number):
    return len(number.as_tuple().digits)  # the coefficient carries no leading zeros


class Trace:
    """What an observer saw of training: parameters after every optimizer step.

    Parameters
    ==========

    network : Network
    lr : decimal string or number
        The learning rate, positive.
    samples : int
        ``n``, the number of training samples (public, as in the paper).
    parameters : list of lists
        ``parameters[j]`` is the parameter vector after ``j`` steps, in trace order.
    optimizer : dict, optional
        ``{"name": "gd" | "sgd", "batch_size": B, "momentum": mu, "weight_decay": wd}``.
    batches : list of lists of int, optional
        The sample indices of each step, when the observer knows the schedule.

    Examples
    ========

    The trace of the paper's Example 2 at the 7 digits of its Mathematica code:

    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1], "tanh"), lr="0.1", samples=2,
    ...               parameters=[["0.5000000", "0.5000000"],
    ...                           ["0.4925472", "0.4810773"],
    ...                           ["0.4855530", "0.4634884"]])
    >>> trace.steps, trace.digits
    (2, 7)
    >>> print(trace.to_json(indent=None)[:60])
    {"format": "symbolic-inversion-trace", "version": 1, "networ...
    >>> Trace.from_json(trace.to_json()).to_json() == trace.to_json()
    True
    """

    def __init__(self, network, lr, samples, parameters, optimizer=None, batches=None,
                 extra=None):
        if not isinstance(network, Network):
            raise InputError("network: expected a Network")
        self.network = network
        self.lr = to_decimal(lr, "optimizer.lr")
        if self.lr <= 0:
            raise InputError(f"optimizer.lr: the learning rate must be positive, got {lr}")
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) \
                or samples < 1:
            raise InputError(f"samples: must be a positive integer, got {samples!r}")
        self.samples = int(samples)
        self.parameters = self._check_parameters(parameters)
        self.optimizer = self._check_optimizer(dict(optimizer or {"name": "gd"}))
        self.batches = self._check_batches(batches)
        self.extra = dict(extra or {})

    # -- validation ----------------------------------------------------------------

    def _check_parameters(self, parameters):
        if not isinstance(parameters, (list, tuple)):
            raise InputError("parameters: expected a list of parameter vectors")
        if len(parameters) < 2:
            raise InputError(
                f"parameters: a trace needs at least two parameter vectors (one step), "
                f"got {len(parameters)}")
        size = self.network.num_parameters
        checked = []
        for j, vector in enumerate(parameters):
            if not isinstance(vector, (list, tuple)) or len(vector) != size:
                got = len(vector) if isinstance(vector, (list, tuple)) else type(vector).__name__
                raise InputError(
                    f"parameters[{j}]: expected {size} values for network "
                    f"{list(self.network.layers)} (bias={self.network.bias}), got {got}")
            checked.append([to_decimal(v, f"parameters[{j}][{p}]") for p, v in enumerate(vector)])
        return checked

    def _check_optimizer(self, optimizer):
        name = optimizer.get("name", "gd")
        if name not in OPTIMIZERS:
            raise InputError(f"optimizer.name: unknown optimizer {name!r}; known: "
                             f"{', '.join(OPTIMIZERS)}")
        checked = {"name": name}
        if "batch_size" in optimizer and optimizer["batch_size"] is not None:
            size = optimizer["batch_size"]
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= self.samples:
                raise InputError(f"optimizer.batch_size: must be an integer in 1..{self.samples}, "
                                 f"got {size!r}")
            checked["batch_size"] = size
        elif name == "sgd":
            raise InputError("optimizer.batch_size: required for sgd")
        for key in ("momentum", "weight_decay"):
            if optimizer.get(key) is not None:
                value = to_decimal(optimizer[key], f"optimizer.{key}")
                if value < 0 or (key == "momentum" and value >= 1):
                    raise InputError(f"optimizer.{key}: out of range: {value}")
                if value != 0:
                    checked[key] = value
        return checked

    def _check_batches(self, batches):
        if batches is None:
            return None
        if not isinstance(batches, (list, tuple)) or len(batches) != self.steps:
            raise InputError(f"batches: expected one list of sample indices per step "
                             f"({self.steps}), got "
                             f"{len(batches) if isinstance(batches, (list, tuple)) else batches!r}")
        checked = []
        for j, batch in enumerate(batches):
            if not isinstance(batch, (list, tuple)) or not batch or not all(
                    isinstance(i, int) and not isinstance(i, bool) and 0 <= i < self.samples
                    for i in batch) or len(set(batch)) != len(batch):
                raise InputError(f"batches[{j}]: expected distinct sample indices in "
                                 f"0..{self.samples - 1}, got {batch!r}")
            checked.append(list(batch))
        return checked

    # -- what numeric code needs ---------------------------------------------------------

    @property
    def steps(self):
        """The number of optimizer steps ``E`` (parameter vectors minus one)."""
        return len(self.parameters) - 1

    @property
    def momentum(self):
        return self.optimizer.get("momentum", Decimal(0))

    @property
    def weight_decay(self):
        return self.optimizer.get("weight_decay", Decimal(0))

    @property
    def digits(self):
        """The trace's precision in significant digits: the median over recorded values.

        Writers often drop trailing zeros (``"0.5"`` for ``0.50000000``, ``"0.4810773"``
        for ``0.48107730``), so a value written with fewer digits than the others is
        taken as exact at the trace's precision rather than as a 1-digit value.
        """
        counts = sorted(_significant_digits(v) for vector in self.parameters
                        for v in vector if v)
        return counts[(len(counts) - 1) // 2] if counts else 1

    @property
    def resolution(self):
        """The trace's absolute precision: the largest unit in the last place of any
        recorded value at the trace's :attr:`digits` (a value written with more digits
        counts with its own, finer, last place).  A correctly rounded value is within
        half of it."""
        digits = self.digits

        def last_place(value):
            written = value.as_tuple().exponent
            if not value:
                return written
            return min(written, value.adjusted() + 1 - digits)
        return max(Decimal(1).scaleb(last_place(v)) for vector in self.parameters for v in vector)

    def theta(self, step):
        """Parameter vector ``step`` as mpmath numbers at the current precision."""
        return [mpmath.mpf(str(v)) for v in self.parameters[step]]

    def batch(self, step):
        """Sample indices used by ``step`` (all samples for full-batch training)."""
        if self.batches is not None:
            return self.batches[step]
        if self.optimizer["name"] == "gd":
            return list(range(self.samples))
        raise InputError("batches: the schedule of this sgd trace is not recorded")

    def gradient_uncertainty(self):
        """Bound on the error of each entry of :meth:`observed_gradients` (mpmath number).

        Each recorded parameter is within half a unit in its last place
        (:attr:`resolution`); a gradient is a difference of two of them over ``lr``,
        momentum adds the previous step's difference and weight decay subtracts
        ``wd theta_j``, itself rounded by half a unit.
        """
        resolution = mpmath.mpf(str(self.resolution))
        lr = mpmath.mpf(str(self.lr))
        mu = mpmath.mpf(str(self.momentum))
        wd = mpmath.mpf(str(self.weight_decay))
        return resolution * ((1 + mu) / lr + wd / 2)

    def observed_gradients(self):
        r"""The loss gradient at every step, as the trace reveals it (mpmath numbers).

        Undoes the optimizer: for plain GD ``g_j = (theta_j - theta_{j+1}) / lr``; with
        momentum ``mu`` (PyTorch's convention) ``v_{j+1} = (theta_j - theta_{j+1}) / lr``
        and ``g_j = v_{j+1} - mu v_j``; with weight decay ``wd`` the term
        ``wd theta_j`` is removed.
        """
        lr = mpmath.mpf(str(self.lr))
        mu = mpmath.mpf(str(self.momentum))
        wd = mpmath.mpf(str(self.weight_decay))
        thetas = [self.theta(j) for j in range(self.steps + 1)]
        gradients, velocity = [], [mpmath.mpf(0)] * self.network.num_parameters
        for j in range(self.steps):
            new_velocity = [(a - b) / lr for a, b in zip(thetas[j], thetas[j + 1])]
            gradients.append([v - mu * old - wd * t for v, old, t
                              in zip(new_velocity, velocity, thetas[j])])
            velocity = new_velocity
        return gradients

    # -- file format ---------------------------------------------------------------

    def to_dict(self):
        optimizer = {"name": self.optimizer["name"], "lr": str(self.lr)}
        for key in ("batch_size", "momentum", "weight_decay"):
            if key in self.optimizer:
                value = self.optimizer[key]
                optimizer[key] = value if isinstance(value, int) else str(value)
        data = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                "network": self.network.to_dict(), "loss": "mse",
                "optimizer": optimizer, "samples": self.samples,
                "parameters": [[str(v) for v in vector] for vector in self.parameters]}
        if self.batches is not None:
            data["batches"] = self.batches
        data.update(self.extra)
        return data

    def to_json(self, indent=1):
        """The trace file text: one line per key and one per parameter vector.

        ``indent=None`` gives a single line.
        """
        data = self.to_dict()
        if indent is None:
            return json.dumps(data)
        pad = " " * indent

        def value(key, item):
            if key in ("parameters", "batches"):
                rows = f",\n{pad * 2}".join(json.dumps(row) for row in item)
                return f"[\n{pad * 2}{rows}\n{pad}]"
            return json.dumps(item)
        body = ",\n".join(f"{pad}{json.dumps(k)}: {value(k, v)}" for k, v in data.items())
        return "{\n" + body + "\n}"

    def write(self, path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise InputError("trace: expected a JSON object at the top level")
        if data.get("format") != FORMAT_NAME:
            raise InputError(f"format: expected {FORMAT_NAME!r}, got {data.get('format')!r}")
        # ``true == 1`` and ``Decimal("1.0") == 1`` in Python: insist on the integer.
        if type(data.get("version")) is not int or data.get("version") != FORMAT_VERSION:
            raise InputError(f"version: only version {FORMAT_VERSION} is known, "
                             f"got {data.get('version')!r}")
        if data.get("loss", "mse") != "mse":
            raise InputError(f"loss: only 'mse' is supported, got {data.get('loss')!r}")
        for key in ("network", "optimizer", "samples", "parameters"):
            if key not in data:
                raise InputError(f"{key}: missing")
        network = data["network"]
        if not isinstance(network, dict):
            raise InputError("network: expected an object with layers, activations, bias")
        for key in ("layers", "activations"):
            if key not in network:
                raise InputError(f"network.{key}: missing")
        if not isinstance(network["layers"], list):
            raise InputError(f"network.layers: expected a list of widths, got "
                             f"{network['layers']!r}")
        if not isinstance(network["activations"], list) or not all(
                isinstance(a, str) for a in network["activations"]):
            raise InputError("network.activations: expected a list of names")
        net = Network(network["layers"], network["activations"], network.get("bias", True))
        optimizer = data["optimizer"]
        if not isinstance(optimizer, dict) or "lr" not in optimizer:
            raise InputError("optimizer.lr: missing")
        known = {"format", "version", "network", "loss", "optimizer", "samples",
                 "parameters", "batches"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(net, optimizer["lr"], data["samples"], data["parameters"],
                   optimizer=optimizer, batches=data.get("batches"), extra=extra)

    @classmethod
    def from_json(cls, text):
        def refuse_constant(name):
            raise InputError(f"trace: {name} is not a finite number")
        try:
            data = json.loads(text, parse_float=Decimal, parse_constant=refuse_constant)
        except json.JSONDecodeError as error:
            raise InputError(f"trace: not valid JSON ({error})") from None
        except RecursionError:
            raise InputError("trace: JSON nested too deeply") from None
        return cls.from_dict(data)

    @classmethod
    def read(cls, path):
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"trace: cannot read {path}: {error}") from None
        return cls.from_json(text)

    def __repr__(self):
        return (f"<Trace {self.network!r}, lr={self.lr}, samples={self.samples}, "
                f"steps={self.steps}, digits={self.digits}, optimizer={self.optimizer['name']}>")


def read_trace(path):
    """Read and validate a trace file (see ``docs/trace-format``)."""
    return Trace.read(path)


# -- simulation -----------------------------------------------------------------------

def _as_samples(values, width, name, count=None):
    """Samples as a list of lists; a flat list is accepted for one-dimensional data."""
    values = list(values)
    if values and not isinstance(values[0], (list, tuple, np.ndarray)):
        if width != 1:
            raise InputError(f"{name}: expected one list of {width} values per sample")
        values = [[v] for v in values]
    if not values:
        raise InputError(f"{name}: need at least one sample")
    if count is not None and len(values) != count:
        raise InputError(f"{name}: expected {count} samples (one per input), got {len(values)}")
    for i, sample in enumerate(values):
        if len(sample) != width:
            raise InputError(f"{name}[{i}]: expected {width} values, got {len(sample)}")
    return [[to_decimal(v, f"{name}[{i}][{d}]") for d, v in enumerate(sample)]
            for i, sample in enumerate(values)]


def simulate(network, inputs, labels, lr, epochs, init=None, dps=50, backend="mpmath",
             optimizer="gd", batch_size=None, momentum=0, weight_decay=0, seed=None,
             record_batches=True):
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

    Examples
    ========

    The paper's Table 1 (``x = 0.6, y = 0.5``, ``w = b = 0.5``, ``lr = 0.1``):

    >>> from symbolic_inversion import Network, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6], [0.5], lr="0.1", epochs=4,
    ...                  init=[0.5, 0.5], dps=20)
    >>> [[f"{float(v):.3f}" for v in theta] for theta in trace.parameters]
    [['0.500', '0.500'], ['0.489', '0.482'], ['0.479', '0.464'], ['0.469', '0.448'], ['0.460', '0.433']]
    """
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    X = _as_samples(inputs, network.input_width, "x")
    Y = _as_samples(labels, network.output_width, "y", count=len(X))
    n = len(X)
    lr_decimal = to_decimal(lr, "lr")
    if lr_decimal <= 0:
        raise InputError(f"lr: the learning rate must be positive, got {lr}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"epochs: must be a positive integer, got {epochs!r}")
    if backend not in ("mpmath", "numpy", "exact"):
        raise InputError(f"backend: expected 'mpmath', 'numpy' or 'exact', got {backend!r}")
    if isinstance(dps, bool) or not isinstance(dps, int) or not 5 <= dps <= 100_000:
        raise InputError(f"dps: must be an integer of at least 5, got {dps!r}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "sgd":
        if batch_size is None:
            raise InputError("batch_size: required for sgd")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) \
                or not 1 <= batch_size <= n:
            raise InputError(f"batch_size: must be an integer in 1..{n}, got {batch_size!r}")
    rng = np.random.default_rng(seed)
    if init is None:
        init = [repr(float(v)) for v in rng.uniform(0, 1, network.num_parameters)]
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

    schedule = []
    for _ in range(epochs):
        if optimizer == "gd":
            schedule.append(list(range(n)))
        else:
            order = [int(i) for i in rng.permutation(n)]
            schedule += [order[k:k + batch_size] for k in range(0, n, batch_size)]

    if backend == "exact":
        if optimizer != "gd" or mu or wd:
            raise InputError("backend: 'exact' trains by plain full-batch gd (no sgd, "
                             "momentum or weight decay)")
        recorded = _train_exact(network, X, Y, lr_decimal, init, epochs)
        return Trace(network, lr_decimal, n, recorded)
    if all(name in PIECEWISE_LINEAR for name in network.activations):
        # relu/identity networks: matrix backpropagation, no symbolic gradient to
        # compile (a 100-256-1 network takes minutes to compile and milliseconds here).
        def mean_gradient(theta, inputs, labels, target):
            return piecewise_gradient(network, theta, inputs, labels)
    else:
        mean_gradient = compile_network(network).mean_gradient
    if backend == "numpy":
        record = lambda v: f"{float(v):.16e}"  # noqa: E731 - all 17 digits of a double
        convert = float
        target = "numpy"
        working = contextlib.nullcontext()
    else:
        record = lambda v: mpmath.nstr(v, dps, strip_zeros=False)  # noqa: E731
        convert = lambda d: mpmath.mpf(str(d))  # noqa: E731
        target = "mpmath"
        working = mpmath.workdps(dps + 15)
    with working:
        xs = [[convert(v) for v in x] for x in X]
        ys = [[convert(v) for v in y] for y in Y]
        theta = [convert(v) for v in init]
        lr_value, mu_value, wd_value = convert(lr_decimal), convert(mu), convert(wd)
        velocity = [0 * t for t in theta]
        recorded = [[record(t) for t in theta]]
        for batch in schedule:
            gradient = mean_gradient(theta, [xs[i] for i in batch], [ys[i] for i in batch],
                                     target)
            velocity = [mu_value * v + g + wd_value * t
                        for v, g, t in zip(velocity, gradient, theta)]
            theta = [t - lr_value * v for t, v in zip(theta, velocity)]
            recorded.append([record(t) for t in theta])
            theta = [convert(text) for text in recorded[-1]]

    options = {"name": optimizer}
    if optimizer == "sgd":
        options["batch_size"] = batch_size
    if mu:
        options["momentum"] = mu
    if wd:
        options["weight_decay"] = wd
    batches = schedule if (optimizer == "sgd" and record_batches) else None
    return Trace(network, lr_decimal, n, recorded, optimizer=options, batches=batches)


def _train_exact(network, X, Y, lr, init, epochs):
    """Parameter vectors of exact full-batch GD, as exact decimals."""
    from fractions import Fraction

    from .rational import format_rational, terminates
    xs = [[Fraction(v) for v in x] for x in X]
    ys = [[Fraction(v) for v in y] for y in Y]
    theta = [Fraction(v) for v in init]
    step = Fraction(lr)
    # Decimal objects, not text: the Trace then skips parsing 10^5-10^6 strings
    recorded = [[Decimal(format_rational(t)) for t in theta]]
    for epoch in range(epochs):
        gradient = piecewise_gradient(network, theta, xs, ys)
        theta = [t - step * g for t, g in zip(theta, gradient)]
        for p, value in enumerate(theta):
            if not terminates(value):
                raise InputError(
                    f"backend: exact step {epoch + 1} gives parameter {p} = "
                    f"{value.numerator}/{value.denominator}, not a terminating decimal; "
                    f"choose lr so that lr * 2 / n is a terminating decimal (n = {len(xs)})")
        recorded.append([Decimal(format_rational(t)) for t in theta])
    return recorded
