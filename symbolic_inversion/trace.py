"""Step 3 of the workflow: training traces, what an observer of training sees.

A :class:`Trace` holds the parameter vectors after every optimizer step, the network,
the optimizer (:class:`~symbolic_inversion.optimizers.Optimizer`) and the number of
samples.  Numbers are kept as :class:`decimal.Decimal` so a 60-digit trace read from a
file is written back character for character; numeric code asks for them as mpmath
numbers at its own working precision.

This module reads, validates and writes traces; training itself lives in
:mod:`symbolic_inversion.simulate`.

Reading a trace validates it field by field; the file is data, never code (no ``eval``,
no ``sympify``, no pickle).  An unknown key at the top level or in ``network`` or
``optimizer`` is refused with its name (a typo must not silently change the meaning);
keys that begin with ``x-`` are an extension namespace, kept and written back unread.
"""

import json
from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np

from .errors import InputError, boundary
from .exact import to_decimal, to_decimals
from .files import array_size, loads, read_text, write_text
from .limits import check, check_int, current
from .losses import Loss, get_loss
from .network import Network
from .optimizers import Optimizer

__all__ = ["Trace", "read_trace", "FORMAT_NAME", "FORMAT_VERSION", "TOP_LEVEL_FIELDS"]

FORMAT_NAME = "symbolic-inversion-trace"
FORMAT_VERSION = 1


def _as_written(number):
    """``(significant digits, exponent of the last place)`` of a Decimal as written (a
    zero has no significant digits), from its text: ``as_tuple`` builds a tuple of
    every digit and took twice as long on a trace of 1.6 million values."""
    mantissa, _, power = str(number).lstrip("-").partition("E")
    point = mantissa.find(".")
    exponent = (int(power) if power else 0) - (len(mantissa) - point - 1 if point >= 0 else 0)
    return len(mantissa.replace(".", "").lstrip("0")), exponent


class Trace:
    """What an observer saw of training: parameters after every optimizer step.

    Parameters
    ==========

    network : Network
    lr : decimal string or number, or a list of them
        The learning rate, positive; a list gives one per step (a known schedule).
    samples : int
        ``n``, the number of training samples (public, as in the paper).
    parameters : list of lists
        ``parameters[j]`` is the parameter vector after ``j`` steps, in trace order.
    optimizer : Optimizer or dict, optional
        An :class:`~symbolic_inversion.optimizers.Optimizer` or the file's object
        (``{"name": "gd" | "sgd" | "adam" | "adamw", ...}``, default plain ``gd``); its
        learning rate is ``lr``.
    batches : list of lists of int, optional
        The sample indices of each step, when the observer knows the schedule.
    loss_reduction : str, optional
        The loss's reduction (:mod:`~symbolic_inversion.losses`); for ``mse``
        ``"sum_outputs"`` (default: ``L = (1/n) sum_i ||f(x_i) - y_i||^2``, the paper's)
        or ``"mean"`` (PyTorch's ``nn.MSELoss()``: the mean over samples *and* the ``m``
        outputs); for ``cross_entropy`` and ``bce_with_logits`` ``"mean"`` (default,
        PyTorch's) or ``"sum"``.
    dtype : ``"float32"``, ``"float64"`` or None
        The parameters were produced by training in that binary format: each value is
        the exact binary number it names, and the uncertainty of the observed gradients
        comes from the optimizer's rounding (:mod:`symbolic_inversion.floats`).
    known : list of (x, y) or ``{"x": ..., "y": ...}``, optional
        Samples the observer already knows (e.g. its own, in a protocol); part of the
        ``samples`` count.  An optional ``"index"`` places a sample in the schedule
        (default: the last indices).  Recovery returns the others.
    loss : str or Loss, optional
        ``"mse"`` (default), ``"cross_entropy"`` or ``"bce_with_logits"``
        (:mod:`~symbolic_inversion.losses`).
    clients : list of ``{"samples": n_c, "weight": w_c}``, optional
        A federated round (FedAvg): every recorded step is the weighted mean of the
        clients' parameters after their ``optimizer.local_steps`` local steps, each from
        the recorded parameters on its own samples (client ``c`` holds the next ``n_c``
        sample indices); the counts sum to ``samples``.

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
                 extra=None, loss_reduction=None, dtype=None, known=None, loss=None,
                 clients=None):
        if not isinstance(network, Network):
            raise InputError("network: expected a Network")
        self.network = network
        check("max_parameters", network.num_parameters,
              f"parameters of network {list(network.layers)}")
        self.samples = check_int(samples, "samples", minimum=1)
        from .floats import check_dtype
        self.dtype = check_dtype(dtype)
        self.loss = _check_loss(loss, loss_reduction)
        self.parameters = self._check_parameters(parameters)
        if isinstance(optimizer, Optimizer):
            optimizer = optimizer if optimizer.lr == _as_lr(lr) else optimizer.replace(lr=lr)
        else:
            optimizer = Optimizer.from_dict(dict(optimizer or {"name": "gd"}, lr=lr))
        self.optimizer = optimizer.check_samples(self.samples).check_steps(self.steps)
        self.clients = _check_clients(clients, self.samples)
        if self.clients is not None and self.optimizer.minibatch:
            from .errors import NotSupportedError
            raise NotSupportedError("clients: minibatch local steps of several clients are "
                                    "not supported (full-batch local steps are)")
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
        max_digits = current().max_number_digits
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
            checked.append(to_decimals(vector, f"parameters[{j}]", max_digits))
        return checked

    def _check_batches(self, batches):
        if batches is None:
            return None
        expected = self.steps * self.optimizer.local_steps
        if not isinstance(batches, (list, tuple)) or len(batches) != expected:
            per = ("step" if self.optimizer.local_steps == 1 else
                   f"local step ({self.optimizer.local_steps} per recorded step)")
            raise InputError(f"batches: expected one list of sample indices per {per} "
                             f"({expected}), got "
                             f"{len(batches) if isinstance(batches, (list, tuple)) else batches!r}")
        if not self.optimizer.minibatch:
            raise InputError(f"batches: only a minibatch trace (optimizer.batch_size) has a "
                             f"schedule; optimizer {self.optimizer.name!r} without a batch "
                             f"size uses every sample at every step")
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
        """The learning rate, ``optimizer.lr`` (a Decimal, or a tuple for a schedule:
        :meth:`Optimizer.lr_at <symbolic_inversion.optimizers.Optimizer.lr_at>` gives a
        step's)."""
        return self.optimizer.lr

    @property
    def loss_reduction(self):
        """The loss's reduction (``loss.reduction``)."""
        return self.loss.reduction

    @property
    def momentum(self):
        return getattr(self.optimizer, "momentum", 0)

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
        return self._per_parameters("digits", self._median_digits)

    def _median_digits(self):
        digits, _ = self._written()
        counts = np.sort(digits[digits > 0])   # zeros have no significant digits
        return int(counts[(len(counts) - 1) // 2]) if len(counts) else 1

    def _written(self):
        """``(digits, exponents)``: the significant digits and the exponent of the last
        written place of every recorded value, int arrays in the shape of
        :attr:`parameters` (a zero has 0 digits): one pass over the Decimals, shared by
        :attr:`digits` and :meth:`last_places`."""
        def scan():
            shape = (len(self.parameters), self.network.num_parameters)
            written = [_as_written(v) for vector in self.parameters for v in vector]
            counts = np.fromiter((d for d, _ in written), dtype=int, count=len(written))
            exponents = np.fromiter((e for _, e in written), dtype=int, count=len(written))
            return counts.reshape(shape), exponents.reshape(shape)
        return self._per_parameters("written", scan)

    def _per_parameters(self, name, compute):
        """``compute()``, worked out once per parameter list (a recovery asks for the
        digits and the last places many times: a pass over every recorded value each)."""
        cache = self.__dict__.setdefault("_parameter_cache", {})
        if name not in cache or cache[name][0] is not self.parameters:
            cache[name] = (self.parameters, compute())
        return cache[name][1]

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
        def build():
            exponents = self.last_place_exponents()
            unit = {int(e): Decimal(1).scaleb(int(e)) for e in np.unique(exponents)}
            return [[unit[e] for e in row] for row in exponents.tolist()]
        return [list(row) for row in self._per_parameters("last_places", build)]

    def last_place_exponents(self):
        """The decimal exponent of each recorded value's :meth:`last_places` (an int
        array in the shape of :attr:`parameters`): what bounds over every value need,
        without a Decimal per value.

        >>> from symbolic_inversion import Network, Trace
        >>> Trace(Network([1, 1]), "0.1", 1,
        ...       [["0.5000", "0.0"], ["0.4925", "0.0120"]]).last_place_exponents().tolist()
        [[-4, -1], [-4, -5]]
        """
        if self.dtype is not None:
            raise InputError("last_places: a binary-float trace (dtype) is exact per value")
        digits, exponents = self._written()
        # a non-zero value's own place, or the trace's digits below its leading digit
        leading = exponents + digits - 1
        return np.where(digits > 0, np.minimum(exponents, leading + 1 - self.digits),
                        exponents)

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
        if self.optimizer.local_steps > 1 or self.clients is not None:
            raise InputError("batches: a round of local steps has no single batch; see "
                             "round_batches()")
        if self.batches is not None:
            return self.batches[step]
        if not self.optimizer.minibatch:
            return list(range(self.samples))
        raise InputError("batches: the schedule of this minibatch trace is not recorded")

    @property
    def rounds(self):
        """Whether a recorded step is a federated round (local steps, or clients)."""
        return self.optimizer.local_steps > 1 or self.clients is not None

    def client_samples(self):
        """``[(weight, sample indices)]`` of every client (one client holding every
        sample when the trace names none), weights as Fractions summing to 1."""
        if self.clients is None:
            return [(Fraction(1), list(range(self.samples)))]
        total = sum(Fraction(w) for _, w in self.clients)
        out, start = [], 0
        for count, weight in self.clients:
            out.append((Fraction(weight) / total, list(range(start, start + count))))
            start += count
        return out

    def round_batches(self, step):
        """Per client, ``(weight, [batch of each local step])`` of recorded step
        ``step``: the client's samples at every local step (full batch), or the recorded
        minibatches of the round."""
        K = self.optimizer.local_steps
        if self.optimizer.minibatch:
            if self.batches is None:
                raise InputError("batches: the schedule of this minibatch trace is not "
                                 "recorded")
            return [(Fraction(1), self.batches[step * K:(step + 1) * K])]
        return [(weight, [indices] * K) for weight, indices in self.client_samples()]

    def gradient_uncertainty(self):
        """Bound on the error of every entry of :meth:`observed_gradients` (mpmath number):
        the largest of :meth:`gradient_uncertainties`.

        Each recorded parameter is within half a unit in its last place
        (:attr:`resolution`); :meth:`Optimizer.gradient_uncertainty
        <symbolic_inversion.optimizers.Optimizer.gradient_uncertainty>` carries it
        through the inverse step.
        """
        if self.dtype is not None:
            from .floats import gradient_uncertainty, round_bounds
            if self.rounds:   # the normalised updates' bounds, as without a dtype
                return max(b for step in round_bounds(self) for b in step)
            return gradient_uncertainty(self)
        if not self.optimizer.invertible:
            return max(max(row) for row in self.gradient_uncertainties())
        return self.optimizer.gradient_uncertainty(self.resolution)

    def gradient_uncertainties(self, inputs=None, labels=None):
        """Bound on the error of each entry of :meth:`observed_gradients`, entry by entry
        (``steps`` lists of mpmath numbers).

        A trace with a ``dtype`` computed its gradients in binary floats: given the
        dataset being judged (``inputs``, ``labels``, the unknown samples), their rounding
        is bounded entry by entry at that dataset
        (:func:`~symbolic_inversion.floats.gradient_bounds`); without one, by the
        largest entry's bound everywhere.

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
            if inputs is not None and not self.rounds:
                from .floats import gradient_bounds
                return gradient_bounds(self, inputs, labels)
            bound = self.gradient_uncertainty()
            steps = self.optimizer.invertible_steps(self.steps)
            return [[bound] * self.network.num_parameters for _ in range(steps)]
        places = self.last_places()
        if not self.optimizer.invertible:  # the first step's closed form, entry by entry
            gradient = self.observed_gradients()[0]
            return [self.optimizer.first_step_uncertainties(
                gradient, [max(places[0][p], places[1][p]) for p in range(len(gradient))])]
        reach = (self.steps if self.optimizer.nesterov else 1) if self.momentum else 0
        uncertainties = []
        for j in range(self.steps):
            rows = places[max(j - reach, 0): j + 2]
            uncertainties.append([self.optimizer.gradient_uncertainty(
                max(row[p] for row in rows), j) for p in range(len(places[j]))])
        return uncertainties

    def update_uncertainties(self):
        """Bound on the error of each observed normalised update ``(theta_j -
        theta_{j+1}) / lr_j`` (the right-hand sides of the update form of the system,
        for optimizers without an inverse), entry by entry: ``steps`` lists of mpmath
        numbers."""
        if self.dtype is not None:
            from .floats import round_bounds, update_bounds
            return round_bounds(self) if self.rounds else update_bounds(self)
        places = self.last_places()
        return [[self.optimizer.update_uncertainty(max(places[j][p], places[j + 1][p]), j)
                 for p in range(len(places[j]))] for j in range(self.steps)]

    def gradient_factor(self, step):
        """``c`` (a Fraction) of step ``step``: the loss gradient is ``c`` times the sum of
        the batch's terms ``B_i (ell(f_i) - y_i)`` (:meth:`Loss.factor
        <symbolic_inversion.losses.Loss.factor>` for the step's full batch, known
        samples included).

        >>> from symbolic_inversion import Network, Trace
        >>> Trace(Network([3, 4, 2]), "0.1", 4, [[0] * 26] * 2,
        ...       loss_reduction="mean").gradient_factor(0)
        Fraction(1, 4)
        """
        offset = self.offset
        size = offset[1][step] if offset is not None else len(self.batch(step))
        return self.loss.factor(size, self.network.output_width)

    def unknown_part(self):
        """The trace as seen after subtracting the :attr:`known` samples: the other
        ``n - k`` samples (indices renumbered, schedule kept), with the known ones in
        :attr:`offset` (``(points, full batch sizes, batches of the known ones)``), or
        the trace itself when nothing is known."""
        if not self.known:
            return self
        if self.rounds:
            from .errors import NotSupportedError
            raise NotSupportedError("known: known samples in federated rounds (local steps "
                                    "or clients) are not supported")
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
                        batches=None if not optimizer.minibatch else batches,
                        extra=self.extra, loss=self.loss)
        reduced.dtype = self.dtype
        reduced.parameters = self.parameters
        reduced.offset = ([point[0] for point in self.known], [len(b) for b in full],
                          [[positions.index(i) for i in batch if i in positions]
                           for batch in full])
        reduced.full_samples = self.samples
        return reduced

    offset = None
    #: the federated trace whose searches run on this one-step approximation (set by the
    #: cold start, :func:`~symbolic_inversion.solvers.pipeline.run_pipeline`: the span
    #: start then follows the local steps' path, :func:`~symbolic_inversion.solvers.span.
    #: local_path`); ``None`` for a trace an attacker approximated on purpose
    approximates = None

    def one_step_approximation(self):
        """The trace as if every federated round were one full-batch gradient step of
        the round's effective learning rate (``local_steps`` times ``lr``; with momentum
        ``mu`` restarted each round, ``sum_k (1 - mu^k) / (1 - mu)``): what an attacker
        gets by ignoring the local steps, and the solvers' start for the exact K-step
        map.  The clients' samples are pooled (exact for FedAvg's weights ``n_c / n``).

        >>> from symbolic_inversion import Network, simulate
        >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
        ...                  lr="0.1", epochs=2, init=["0.5", "0.5"], dps=20,
        ...                  optimizer={"name": "gd", "lr": "0.1", "local_steps": 3})
        >>> trace.one_step_approximation().optimizer
        Optimizer('gd', lr=['0.3', '0.3'])
        """
        if not self.rounds:
            return self
        K = self.optimizer.local_steps
        mu = Decimal(str(getattr(self.optimizer, "momentum", 0) or 0))
        gain = Decimal(K) if not mu else sum((1 - mu ** k) / (1 - mu)
                                             for k in range(1, K + 1))
        rates = [self.optimizer.lr_at(j) * gain for j in range(self.steps)]
        approximation = Trace(self.network, [str(r) for r in rates], self.samples,
                              self.parameters, optimizer={"name": "gd"}, loss=self.loss)
        approximation.dtype = self.dtype
        return approximation

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
        Adam and AdamW reveal the first step's gradient only (later steps enter the
        inversion system as update equations).

        >>> import mpmath
        >>> from symbolic_inversion import Network, Trace
        >>> trace = Trace(Network([1, 1]), "0.1", 1, [["0.500", "0.500"], ["0.489", "0.482"]])
        >>> with mpmath.workdps(20):
        ...     print([mpmath.nstr(g, 5) for g in trace.observed_gradients()[0]])
        ...     print(mpmath.nstr(trace.gradient_uncertainty(), 5))
        ['0.11', '0.18']
        0.01
        """
        steps = self.optimizer.invertible_steps(self.steps)
        thetas = [self.theta(j) for j in range(steps + 1)]
        return self.optimizer.observed_gradients(thetas, mpmath.mpf)

    # -- file format ---------------------------------------------------------------

    def to_dict(self):
        optimizer = self.optimizer.to_dict()
        data = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                "network": self.network.to_dict(), "loss": self.loss.name,
                "optimizer": optimizer, "samples": self.samples,
                "parameters": [[str(v) for v in vector] for vector in self.parameters]}
        if self.batches is not None:
            data["batches"] = self.batches
        if self.clients is not None:
            data["clients"] = [{"samples": count, "weight": str(weight)}
                               for count, weight in self.clients]
        if self.loss.reduction != self.loss.default_reduction:
            data["loss_reduction"] = self.loss.reduction
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
        _refuse_misplaced(data)
        for key in ("network", "optimizer", "samples", "parameters"):
            if key not in data:
                raise InputError(f"{key}: missing")
        network = data["network"]
        if not isinstance(network, dict):
            raise InputError("network: expected an object with layers, activations, bias")
        _refuse_unknown(network, ("layers", "activations", "bias"), "network.",
                        "network")
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
        extra = {k: v for k, v in data.items() if k in _EXTRA_FIELDS or _extension(k)}
        # the parameters' count first: a million steps is refused before it is parsed
        check("max_parameters", net.num_parameters,
              f"parameters of network {list(net.layers)}")
        if isinstance(data["parameters"], list):
            check("max_trace_values", net.num_parameters * len(data["parameters"]),
                  f"parameters: values in {len(data['parameters'])} vectors of "
                  f"{net.num_parameters}")
        return cls(net, optimizer["lr"], data["samples"], data["parameters"],
                   optimizer=optimizer, batches=data.get("batches"), extra=extra,
                   loss_reduction=data.get("loss_reduction"), dtype=data.get("dtype"),
                   known=data.get("known"), loss=data.get("loss", "mse"),
                   clients=data.get("clients"))

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


#: Every key a trace file may have at its top level (besides ``x-`` extensions).
TOP_LEVEL_FIELDS = ("format", "version", "network", "loss", "loss_reduction", "optimizer",
                    "samples", "parameters", "batches", "dtype", "known", "dp_sgd",
                    "clients")
# fields read elsewhere from ``extra`` (the DP-SGD noise of an Opacus run)
_EXTRA_FIELDS = ("dp_sgd",)


def _extension(key):
    return isinstance(key, str) and key.startswith("x-")


#: Keys of the nested objects: at the top level they are a misplaced field, not metadata.
_NESTED_FIELDS = ("layers", "activations", "bias", "lr", "momentum", "dampening",
                  "nesterov", "weight_decay", "betas", "eps", "amsgrad", "batch_size",
                  "local_steps", "reset_state")


def _refuse_misplaced(data):
    """Every top-level key is a field or an ``x-`` extension: a misspelt field or a
    nested one written at the top level must not silently leave its default in force,
    and a field of a newer version must not be read as absent."""
    import difflib
    for key in data:
        if key in TOP_LEVEL_FIELDS or _extension(key):
            continue
        shown = str(key) if len(str(key)) <= 40 else str(key)[:37] + "..."
        if key in _NESTED_FIELDS:
            owner = "network" if key in ("layers", "activations", "bias") else "optimizer"
            raise InputError(f"{shown}: belongs inside {owner!r} ({owner}.{key}), "
                             "not at the top level")
        close = difflib.get_close_matches(str(key).lower(), TOP_LEVEL_FIELDS, n=1,
                                          cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"{shown}: unknown key at the top level{hint}; known: "
                         f"{', '.join(TOP_LEVEL_FIELDS)} (and x-... extensions, kept "
                         "unread)")


def _refuse_unknown(data, known, prefix, where):
    """A nested object's keys (the top level's are :func:`_refuse_misplaced`'s)."""
    for key in data:
        if key not in known:
            shown = str(key) if len(str(key)) <= 40 else str(key)[:37] + "..."
            raise InputError(f"{prefix}{shown}: unknown key at {where}; known: "
                             f"{', '.join(known)}")


def _as_lr(lr):
    """``lr`` as an optimizer stores it (a Decimal or a tuple), for comparison."""
    from .optimizers import _check_lr
    return _check_lr(lr)


def _check_clients(clients, samples):
    """``clients`` as ``[(samples, weight Decimal)]`` (``None`` stays ``None``)."""
    if clients is None:
        return None
    if not isinstance(clients, (list, tuple)) or not clients:
        raise InputError("clients: expected a list of {\"samples\": n, \"weight\": w}")
    checked = []
    for k, client in enumerate(clients):
        if not isinstance(client, dict) or set(client) - {"samples", "weight"} or \
                "samples" not in client:
            raise InputError(f"clients[{k}]: expected an object with samples and weight")
        count = check_int(client["samples"], f"clients[{k}].samples", minimum=1)
        weight = to_decimal(client.get("weight", count), f"clients[{k}].weight")
        if weight <= 0:
            raise InputError(f"clients[{k}].weight: must be positive, got {weight}")
        checked.append((count, weight))
    total = sum(count for count, _ in checked)
    if total != samples:
        raise InputError(f"clients: the clients' samples sum to {total}, the trace has "
                         f"{samples}")
    return checked


def _check_loss(loss, reduction):
    """The trace's :class:`~symbolic_inversion.losses.Loss` from a name (default mse) and
    a reduction (default the loss's own)."""
    if loss is None:
        loss = "mse"
    if isinstance(loss, Loss):
        return get_loss(loss, reduction)
    return get_loss(loss, reduction)


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


def _check_reduction(value, loss="mse"):
    """A reduction checked against ``loss`` (default: the loss's own)."""
    return get_loss(loss, value).reduction


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
