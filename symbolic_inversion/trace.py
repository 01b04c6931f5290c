"""Step 3 of the workflow: training traces, what an observer of training sees.

A :class:`Trace` holds the parameter vectors after every optimizer step, the network,
the optimizer (:class:`~symbolic_inversion.optimizers.Optimizer`) and the number of
samples.  Numbers are kept as :class:`decimal.Decimal` so a 60-digit trace read from a
file is written back character for character; numeric code asks for them as mpmath
numbers at its own working precision.

This module reads, validates and writes traces; training itself (:func:`simulate`, kept
importable from here) lives in :mod:`symbolic_inversion.simulate`.

Reading a trace validates it field by field; the file is data, never code (no ``eval``,
no ``sympify``, no pickle).
"""

import json
from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np

from .errors import InputError, boundary
from .exact import to_decimal
from .files import array_size, loads, read_text, write_text
from .limits import check, check_int, current
from .network import Network
from .optimizers import OPTIMIZERS, Optimizer  # noqa: F401 (OPTIMIZERS: as in 0.1)

__all__ = ["Trace", "simulate", "read_trace", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "symbolic-inversion-trace"
FORMAT_VERSION = 1


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
    optimizer : Optimizer or dict, optional
        An :class:`~symbolic_inversion.optimizers.Optimizer` or the file's object
        ``{"name": "gd" | "sgd", "batch_size": B, "momentum": mu, "weight_decay": wd}``
        (default plain ``gd``); its learning rate is ``lr``.
    batches : list of lists of int, optional
        The sample indices of each step, when the observer knows the schedule.
    loss_reduction : ``"sum_outputs"`` (default) or ``"mean"``
        ``L = (1/n) sum_i ||f(x_i) - y_i||^2`` (the paper's, the toolkit's) or PyTorch's
        ``nn.MSELoss()`` default, the mean over samples *and* the ``m`` outputs
        (``1/m`` times the first: the system's right-hand sides carry the factor ``m``).
    dtype : ``"float32"``, ``"float64"`` or None
        The parameters were produced by training in that binary format: each value is
        the exact binary number it names, and the uncertainty of the observed gradients
        comes from the optimizer's rounding (:mod:`symbolic_inversion.floats`).
    known : list of (x, y) or ``{"x": ..., "y": ...}``, optional
        Samples the observer already knows (e.g. its own, in a protocol); part of the
        ``samples`` count.  An optional ``"index"`` places a sample in the schedule
        (default: the last indices).  Recovery returns the others.

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

    @boundary("trace")
    def __init__(self, network, lr, samples, parameters, optimizer=None, batches=None,
                 extra=None, loss_reduction=None, dtype=None, known=None):
        if not isinstance(network, Network):
            raise InputError("network: expected a Network")
        self.network = network
        check("max_parameters", network.num_parameters,
              f"parameters of network {list(network.layers)}")
        lr = to_decimal(lr, "optimizer.lr")
        if lr <= 0:
            raise InputError(f"optimizer.lr: the learning rate must be positive, got {lr}")
        self.samples = check_int(samples, "samples", minimum=1)
        from .floats import check_dtype
        self.dtype = check_dtype(dtype)
        self.loss_reduction = _check_reduction(loss_reduction)
        self.parameters = self._check_parameters(parameters)
        if isinstance(optimizer, Optimizer):
            optimizer = optimizer if optimizer.lr == lr else optimizer.replace(lr=lr)
        else:
            optimizer = Optimizer.from_dict(dict(optimizer or {"name": "gd"}, lr=lr))
        self.optimizer = optimizer.check_samples(self.samples)
        self.batches = self._check_batches(batches)
        self.known = _check_known(known, self)
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
        # before a single number is converted: a million steps must not take gigabytes
        check("max_trace_values", size * len(parameters),
              f"parameters: values in {len(parameters)} vectors of {size}")
        checked = []
        for j, vector in enumerate(parameters):
            if not isinstance(vector, (list, tuple)) or len(vector) != size:
                got = len(vector) if isinstance(vector, (list, tuple)) else type(vector).__name__
                raise InputError(
                    f"parameters[{j}]: expected {size} values for network "
                    f"{list(self.network.layers)} (bias={self.network.bias}), got {got}")
            if self.dtype is not None:
                from .floats import binary_value
                checked.append([binary_value(v, self.dtype, f"parameters[{j}][{p}]")
                                for p, v in enumerate(vector)])
                continue
            checked.append([to_decimal(v, f"parameters[{j}][{p}]") for p, v in enumerate(vector)])
        return checked

    def _check_batches(self, batches):
        if batches is None:
            return None
        if not isinstance(batches, (list, tuple)) or len(batches) != self.steps:
            raise InputError(f"batches: expected one list of sample indices per step "
                             f"({self.steps}), got "
                             f"{len(batches) if isinstance(batches, (list, tuple)) else batches!r}")
        if self.optimizer.name != "sgd":
            raise InputError(f"batches: only an sgd trace has a schedule; optimizer.name "
                             f"{self.optimizer.name!r} uses every sample at every step")
        size = self.optimizer.batch_size
        checked = []
        for j, batch in enumerate(batches):
            if not isinstance(batch, (list, tuple)) or not batch or not all(
                    isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                    and 0 <= i < self.samples for i in batch) or len(set(batch)) != len(batch):
                shown = repr(batch) if len(repr(batch)) < 60 else repr(batch)[:57] + "..."
                raise InputError(f"batches[{j}]: expected distinct sample indices in "
                                 f"0..{self.samples - 1}, got {shown}")
            # the solvers pick their method from batch_size (1: one sample per step):
            # a schedule that disagrees would be solved as something it is not
            if size is not None and len(batch) > size:
                raise InputError(f"batches[{j}]: {len(batch)} samples exceed "
                                 f"optimizer.batch_size {size}")
            checked.append([int(i) for i in batch])
        return checked

    # -- what numeric code needs ---------------------------------------------------------

    @property
    def steps(self):
        """The number of optimizer steps ``E`` (parameter vectors minus one)."""
        return len(self.parameters) - 1

    @property
    def lr(self):
        """The learning rate (a Decimal), ``optimizer.lr``."""
        return self.optimizer.lr

    @property
    def momentum(self):
        return self.optimizer.momentum

    @property
    def weight_decay(self):
        return self.optimizer.weight_decay

    @property
    def digits(self):
        """The trace's precision in significant digits: the median over recorded values.

        Writers often drop trailing zeros (``"0.5"`` for ``0.50000000``, ``"0.4810773"``
        for ``0.48107730``), so a value written with fewer digits than the others is
        taken as exact at the trace's precision rather than as a 1-digit value.
        A binary-float trace (``dtype``) has the format's round-trip digits (17, 9).
        """
        if self.dtype is not None:
            from .floats import round_trip_digits
            return round_trip_digits(self.dtype)
        counts = sorted(_significant_digits(v) for vector in self.parameters
                        for v in vector if v)
        return counts[(len(counts) - 1) // 2] if counts else 1

    def last_places(self):
        """Each recorded value's own unit in the last place (a Decimal per value, in the
        shape of :attr:`parameters`).

        A non-zero value written with fewer digits than the trace's :attr:`digits` is
        read at the trace's precision (writers drop trailing zeros); a value written with
        more counts with its own, finer, last place.  A zero has no magnitude to scale
        the trace's digits by, so it counts with the last place it is written with
        (``"0.0"``: ``0.1``): it vouches for that much and no more, and being one value
        it loosens only the equations it enters, never the whole trace.

        >>> from symbolic_inversion import Network, Trace
        >>> trace = Trace(Network([1, 1]), "0.1", 1,
        ...               [["0.5000", "0.0"], ["0.4925", "0.0120"]])
        >>> [[str(u) for u in row] for row in trace.last_places()]
        [['0.0001', '0.1'], ['0.0001', '0.00001']]
        """
        if self.dtype is not None:
            raise InputError("last_places: a binary-float trace (dtype) is exact per value")
        digits = self.digits

        def last_place(value):
            written = value.as_tuple().exponent
            if not value:
                return Decimal(1).scaleb(written)
            return Decimal(1).scaleb(min(written, value.adjusted() + 1 - digits))
        return [[last_place(v) for v in vector] for vector in self.parameters]

    @property
    def resolution(self):
        """The trace's absolute precision: the largest of the :meth:`last_places` (a
        correctly rounded value is within half of its own).  Bounds that must hold for
        every value use it; the judging of a recovery uses each value's own
        (:meth:`gradient_uncertainties`)."""
        return max(u for row in self.last_places() for u in row)

    def theta(self, step):
        """Parameter vector ``step`` as mpmath numbers at the current precision."""
        return [mpmath.mpf(str(v)) for v in self.parameters[step]]

    def batch(self, step):
        """Sample indices used by ``step`` (all samples for full-batch training)."""
        if self.batches is not None:
            return self.batches[step]
        if self.optimizer.name == "gd":
            return list(range(self.samples))
        raise InputError("batches: the schedule of this sgd trace is not recorded")

    def gradient_uncertainty(self):
        """Bound on the error of every entry of :meth:`observed_gradients` (mpmath number):
        the largest of :meth:`gradient_uncertainties`.

        Each recorded parameter is within half a unit in its last place
        (:attr:`resolution`); :meth:`Optimizer.gradient_uncertainty
        <symbolic_inversion.optimizers.Optimizer.gradient_uncertainty>` carries it
        through the inverse step.
        """
        if self.dtype is not None:
            from .floats import gradient_uncertainty
            return gradient_uncertainty(self)
        return self.optimizer.gradient_uncertainty(self.resolution)

    def gradient_uncertainties(self):
        """Bound on the error of each entry of :meth:`observed_gradients`, entry by entry
        (``steps`` lists of mpmath numbers).

        Entry ``p`` of step ``j`` depends on parameter ``p`` at steps ``j - 1`` (momentum),
        ``j`` and ``j + 1``: the largest of their own last places enters
        :meth:`Optimizer.gradient_uncertainty
        <symbolic_inversion.optimizers.Optimizer.gradient_uncertainty>`.  So one coarse
        value (``"0.0"`` among 60-digit numbers) loosens its own equations only.

        >>> import mpmath
        >>> from symbolic_inversion import Network, Trace
        >>> trace = Trace(Network([1, 1]), "0.1", 1,
        ...               [["0.5000", "0.0"], ["0.4925", "0.0120"], ["0.4851", "0.0238"]])
        >>> with mpmath.workdps(15):
        ...     [[mpmath.nstr(u, 3) for u in row] for row in trace.gradient_uncertainties()]
        [['0.001', '1.0'], ['0.001', '0.0001']]
        """
        if self.dtype is not None:
            bound = self.gradient_uncertainty()
            return [[bound] * self.network.num_parameters for _ in range(self.steps)]
        places = self.last_places()
        reach = 1 if self.optimizer.momentum else 0
        uncertainties = []
        for j in range(self.steps):
            rows = places[max(j - reach, 0): j + 2]
            uncertainties.append([self.optimizer.gradient_uncertainty(max(row[p] for row in rows))
                                  for p in range(len(places[j]))])
        return uncertainties

    @property
    def gradient_scale(self):
        """The factor (a Fraction) that turns the trace's loss gradient into the toolkit's
        convention (``sum_outputs``): ``m`` for ``loss_reduction="mean"``, else 1.

        >>> from symbolic_inversion import Network, Trace
        >>> Trace(Network([3, 4, 2]), "0.1", 1, [[0] * 26] * 2,
        ...       loss_reduction="mean").gradient_scale
        Fraction(2, 1)
        """
        if self.loss_reduction == "mean":
            return Fraction(self.network.output_width)
        return Fraction(1)

    def unknown_part(self):
        """The trace as seen after subtracting the :attr:`known` samples: the other
        ``n - k`` samples (indices renumbered, schedule kept), with the known ones in
        :attr:`offset` (``(points, full batch sizes, batches of the known ones)``), or
        the trace itself when nothing is known."""
        if not self.known:
            return self
        positions = [point[1] for point in self.known]
        others = [i for i in range(self.samples) if i not in positions]
        renumber = {old: new for new, old in enumerate(others)}
        full = [self.batch(j) for j in range(self.steps)]
        batches = [[renumber[i] for i in batch if i in renumber] for batch in full]
        if any(not batch for batch in batches):
            raise InputError("known: a step uses only known samples; recovery of the "
                             "others needs every step to use one of them")
        optimizer = self.optimizer
        if optimizer.batch_size is not None:
            optimizer = optimizer.replace(batch_size=min(optimizer.batch_size, len(others)))
        reduced = Trace(self.network, self.lr, len(others), self.parameters,
                        optimizer=optimizer,
                        batches=None if batches == [list(range(len(others)))] * self.steps
                        and optimizer.name == "gd" else batches,
                        extra=self.extra, loss_reduction=self.loss_reduction)
        reduced.dtype = self.dtype
        reduced.parameters = self.parameters
        reduced.offset = ([point[0] for point in self.known], [len(b) for b in full],
                          [[positions.index(i) for i in batch if i in positions]
                           for batch in full])
        reduced.full_samples = self.samples
        return reduced

    offset = None

    def with_batches(self, batches):
        """The same observation (every field kept) with another schedule ``batches``."""
        import copy
        new = copy.copy(self)
        new.batches = new._check_batches(batches)
        return new

    def with_known(self, known):
        """The same observation with :attr:`known` samples (a list of ``(x, y)`` pairs
        or ``{"x": ..., "y": ...}``; ``None``: none)."""
        import copy
        new = copy.copy(self)
        new.known = _check_known(known, self)
        return new

    def observed_gradients(self):
        r"""The loss gradient at every step, as the trace reveals it (mpmath numbers).

        Undoes the optimizer (:meth:`Optimizer.observed_gradients
        <symbolic_inversion.optimizers.Optimizer.observed_gradients>`): for plain GD
        ``g_j = (theta_j - theta_{j+1}) / lr``; momentum and weight decay are removed.

        >>> import mpmath
        >>> from symbolic_inversion import Network, Trace
        >>> trace = Trace(Network([1, 1]), "0.1", 1, [["0.500", "0.500"], ["0.489", "0.482"]])
        >>> with mpmath.workdps(20):
        ...     print([mpmath.nstr(g, 5) for g in trace.observed_gradients()[0]])
        ...     print(mpmath.nstr(trace.gradient_uncertainty(), 5))
        ['0.11', '0.18']
        0.01
        """
        thetas = [self.theta(j) for j in range(self.steps + 1)]
        return self.optimizer.observed_gradients(thetas, mpmath.mpf)

    # -- file format ---------------------------------------------------------------

    def to_dict(self):
        optimizer = self.optimizer.to_dict()
        data = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                "network": self.network.to_dict(), "loss": "mse",
                "optimizer": optimizer, "samples": self.samples,
                "parameters": [[str(v) for v in vector] for vector in self.parameters]}
        if self.batches is not None:
            data["batches"] = self.batches
        if self.loss_reduction != "sum_outputs":
            data["loss_reduction"] = self.loss_reduction
        if self.dtype is not None:
            from .floats import shortest
            data["dtype"] = self.dtype
            data["parameters"] = [[shortest(v, self.dtype) for v in vector]
                                  for vector in self.parameters]
        if self.known:
            data["known"] = [dict({"x": [str(v) for v in x], "y": [str(v) for v in y]},
                                  index=index) for (x, y), index in
                             ((_split_point(point, self.network), index)
                              for point, index in self.known)]
        data.update(self.extra)
        return data

    def to_json(self, indent=1):
        """The trace file text: one line per key and one per parameter vector.

        ``indent=None`` gives a single line.
        """
        data = self.to_dict()
        if indent is None:
            return _dumps(data)
        pad = " " * indent

        def value(key, item):
            if key in ("parameters", "batches"):
                rows = f",\n{pad * 2}".join(json.dumps(row) for row in item)
                return f"[\n{pad * 2}{rows}\n{pad}]"
            return _dumps(item)
        body = ",\n".join(f"{pad}{json.dumps(k)}: {value(k, v)}" for k, v in data.items())
        return "{\n" + body + "\n}"

    @boundary("trace.write")
    def write(self, path):
        """Write the trace file; a failure (a directory, a missing folder, a full disk)
        is an :class:`InputError` naming the path and the reason."""
        write_text(path, self.to_json() + "\n", "trace")

    @classmethod
    @boundary("trace")
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
        fields = {"format", "version", "network", "loss", "optimizer", "samples",
                  "parameters", "batches", "loss_reduction", "dtype", "known"}
        extra = {k: v for k, v in data.items() if k not in fields}
        return cls(net, optimizer["lr"], data["samples"], data["parameters"],
                   optimizer=optimizer, batches=data.get("batches"), extra=extra,
                   loss_reduction=data.get("loss_reduction"), dtype=data.get("dtype"),
                   known=data.get("known"))

    @classmethod
    def from_state_dicts(cls, state_dicts, network, optimizer, samples, dtype=None,
                         loss_reduction=None):
        """A trace from saved PyTorch checkpoints (state dicts of tensors or numpy arrays);
        see :func:`symbolic_inversion.torch.trace_from_state_dicts`."""
        from .torch import trace_from_state_dicts
        return trace_from_state_dicts(state_dicts, network, optimizer, samples, dtype,
                                      loss_reduction)

    @classmethod
    @boundary("trace")
    def from_json(cls, text):
        """A trace from the file's text (bounded and strict: :func:`~symbolic_inversion.
        files.loads`: duplicate keys, deep nesting and overlong numbers are refused)."""
        _check_size_before_parsing(text)
        return cls.from_dict(loads(text, "trace"))

    @classmethod
    @boundary("trace")
    def read(cls, path):
        """Read and validate a trace file (a regular file of at most ``max_file_bytes``,
        UTF-8; see :mod:`symbolic_inversion.files`)."""
        return cls.from_json(read_text(path, "trace"))

    def __repr__(self):
        return (f"<Trace {self.network!r}, lr={self.lr}, samples={self.samples}, "
                f"steps={self.steps}, digits={self.digits}, optimizer={self.optimizer.name}>")

    def _repr_html_(self):
        from .report.display import trace_html
        return trace_html(self)


def _check_size_before_parsing(text):
    """Refuse, from the text alone, a trace with more parameter values than the limit
    ``max_trace_values``: parsed, 600,001 steps took 260 MB and 20-32 s to be refused.
    (Only text with that many commas can hold that many values.)"""
    if not isinstance(text, str):
        return   # (loads says what it expected)
    limit = current().max_trace_values
    if text.count(",") < limit:
        return
    size = array_size(text, "parameters")
    if size is not None:
        check("max_trace_values", size[1], f"parameters: values in {size[0]} vectors")


LOSS_REDUCTIONS = ("sum_outputs", "mean")


def _dumps(item):
    """JSON text of ``item``; a :class:`Decimal` (a JSON number read from an unknown field,
    kept exact) is written back as the number it was."""
    if isinstance(item, Decimal):
        return str(item) if item.is_finite() else json.dumps(str(item))
    if isinstance(item, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v)}"
                               for k, v in item.items()) + "}"
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(_dumps(v) for v in item) + "]"
    return json.dumps(item)


def _check_reduction(value):
    if value is None:
        return "sum_outputs"
    if not isinstance(value, str) or value not in LOSS_REDUCTIONS:
        raise InputError(f"loss_reduction: expected 'sum_outputs' or 'mean', got {value!r}")
    return value


def _split_point(point, network):
    d = network.input_width
    return point[:d], point[d:]


def _check_known(known, trace):
    """``known`` as a list of ``(exact point x + y as Decimals, sample index)``."""
    if known is None:
        return None
    if not isinstance(known, (list, tuple)):
        raise InputError("known: expected a list of samples {\"x\": [...], \"y\": [...]}")
    if len(known) >= trace.samples:
        raise InputError(f"known: {len(known)} known samples leave nothing to recover of "
                         f"{trace.samples}")
    d, m = trace.network.input_width, trace.network.output_width
    checked, used = [], set()
    for k, sample in enumerate(known):
        index = None
        if isinstance(sample, dict):
            if "x" not in sample or "y" not in sample:
                raise InputError(f"known[{k}]: expected an object with x and y")
            index = sample.get("index")
            sample = (sample["x"], sample["y"])
        try:
            x, y = sample
        except (TypeError, ValueError):
            raise InputError(f"known[{k}]: expected a pair (x, y)") from None
        x = list(x) if isinstance(x, (list, tuple, np.ndarray)) else [x]
        y = list(y) if isinstance(y, (list, tuple, np.ndarray)) else [y]
        if len(x) != d or len(y) != m:
            raise InputError(f"known[{k}]: expected {d} input and {m} label values, got "
                             f"{len(x)} and {len(y)}")
        point = [to_decimal(v, f"known[{k}]") for v in x + y]
        if index is None:
            index = trace.samples - len(known) + k
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < trace.samples or index in used:
            raise InputError(f"known[{k}].index: expected a distinct sample index in "
                             f"0..{trace.samples - 1}, got {index!r}")
        used.add(index)
        checked.append((point, index))
    return checked


@boundary("read_trace")
def read_trace(path):
    """Read and validate a trace file (see ``docs/trace-format``).

    >>> import os, tempfile
    >>> from symbolic_inversion import Network, Trace
    >>> path = os.path.join(tempfile.mkdtemp(), "trace.json")
    >>> Trace(Network([1, 1]), "0.1", 1, [["0.500", "0.500"], ["0.489", "0.482"]]).write(path)
    >>> read_trace(path)
    <Trace Network([1, 1], ['tanh'], bias=True), lr=0.1, samples=1, steps=1, digits=3, optimizer=gd>
    """
    return Trace.read(path)




def __getattr__(name):
    # ``from symbolic_inversion.trace import simulate`` keeps working; training lives in
    # :mod:`symbolic_inversion.simulate` (imported lazily: it needs this module).
    if name == "simulate":
        from .simulate import simulate
        return simulate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
