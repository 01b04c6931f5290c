r"""Optimizers: update equations with state, one class each, registered by name.

An :class:`Optimizer` is what a trace says about training (its hyperparameters, exact
decimals as the trace file writes them) and owns the update equation

.. math:: \theta_{j+1} = U(\theta_j, g_j, s_j), \qquad s_{j+1} = S(\theta_j, g_j, s_j),

written once (:meth:`Optimizer.step`) and generic over the numbers it is given: lists or
numpy arrays of :class:`~fractions.Fraction` (exact), mpmath numbers (any precision),
python-flint numbers, intervals, float32/float64 (rounded as PyTorch rounds), and the
dual numbers of :class:`Dual` (the update's derivative, for the inversion system).

=========  ====================================================  ===================
name       update (PyTorch's ``torch.optim``, same order)        observed gradient
=========  ====================================================  ===================
``gd``     SGD on the full batch: ``d = g + wd theta``,          linear inverse,
           ``v = mu v + (1 - tau) d`` (``v = d`` at the first    every step
           step), ``theta -= lr (d + mu v if nesterov else v)``
``sgd``    the same on minibatches (``batch_size``)
``adam``   ``d = g + wd theta``, ``m = b1 m + (1 - b1) d``,      the first step (a
           ``v = b2 v + (1 - b2) d^2``,                          closed form); later
           ``theta -= lr m_hat / (sqrt(v_hat) + eps)``           steps are ambiguous
           with bias corrections
``adamw``  ``theta *= 1 - lr wd`` first, then Adam without wd    (see below)
=========  ====================================================  ===================

``lr`` is one decimal or a list with one value per recorded step (a schedule the observer
knows, e.g. ``torch.optim.lr_scheduler.StepLR``).

**Inverting a step.**  SGD's update is linear in the gradient, so the observer reads
every gradient off consecutive parameter vectors exactly
(:meth:`Optimizer.observed_gradients`).  Adam's first step from a zero state is
``theta_0 - theta_1 = lr d / (|d| + eps)`` per coordinate: ``d = eps k / (1 - |k|)`` with
``k = (theta_0 - theta_1) / lr``, which loses ``log10(|d| / eps)`` digits to the
cancellation in ``1 - |k|`` (the float32 and float64 measurements are in
``docs/pytorch.md``).  Later steps are not invertible: given the state, ``d -> k`` is
not monotonic (``k (sqrt(v_hat) + eps) = m_hat`` is a quadratic in ``d`` whose two roots
both satisfy the sign condition whenever ``|k| > (1 - b1) / (1 - b1^t) *
sqrt((1 - b2^t) / (1 - b2))``, e.g. ``|k| > 0.74`` at the second step, which is most
steps of early training).  So the update equation itself enters the inversion system
(:class:`~symbolic_inversion.system.SystemEvaluator`'s *update form*): its rows are the
normalised updates ``(theta_j - theta_{j+1}) / lr_j`` predicted from the data, with the
state carried through every earlier step.

Examples
========

>>> from fractions import Fraction
>>> from symbolic_inversion.optimizers import Optimizer
>>> opt = Optimizer("gd", "0.1", momentum="0.5")
>>> opt
Optimizer('gd', lr=0.1, momentum=0.5)
>>> opt.to_dict()
{'name': 'gd', 'lr': '0.1', 'momentum': '0.5'}
>>> theta, velocity = opt.step([Fraction(1)], [Fraction(2)])
>>> theta, velocity
([Fraction(4, 5)], [Fraction(2, 1)])
>>> opt.step(theta, [Fraction(2)], velocity, index=1)[0]
[Fraction(1, 2)]
>>> opt.observed_gradients([[Fraction(1)], [Fraction(4, 5)], [Fraction(1, 2)]])
[[Fraction(2, 1)], [Fraction(2, 1)]]

Adam's first step, undone:

>>> import mpmath
>>> adam = Optimizer("adam", "0.01")
>>> with mpmath.workdps(40):
...     theta, state = adam.step([mpmath.mpf(1)], [mpmath.mpf("0.25")])
...     g = adam.observed_gradients([[mpmath.mpf(1)], theta])
>>> mpmath.nstr(g[0][0], 25)
'0.25'
"""

import math
from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from .errors import InputError, NotSupportedError
from .exact import to_decimal

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "Dual", "register_optimizer",
           "optimizer_names"]

#: Optimizer classes by trace name (``gd`` and ``sgd`` are one class).
OPTIMIZER_CLASSES = {}


def register_optimizer(cls):
    """Class decorator: make the :class:`Optimizer` subclass ``cls`` known by each of its
    :attr:`~Optimizer.names`."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)) or not cls.names:
        raise InputError("register_optimizer: expected an Optimizer subclass with names")
    for name in cls.names:
        OPTIMIZER_CLASSES[name] = cls
    return cls


def optimizer_names():
    """Every registered optimizer name."""
    return list(OPTIMIZER_CLASSES)


# -- numbers ------------------------------------------------------------------------

class Dual:
    """Forward-mode dual numbers over arrays: a value ``(P,)`` and its tangents ``(P, K)``.

    Enough arithmetic for the update equations (``+ - * /``, :func:`sqrt`, comparisons
    on values), so that :meth:`Optimizer.step` differentiates itself.

    >>> import numpy as np
    >>> x = Dual(np.array([4.0]), np.array([[1.0, 0.0]]))
    >>> y = sqrt(x) * 3 + x
    >>> y.value, y.tangent
    (array([10.]), array([[1.75, 0.  ]]))
    """

    __array_ufunc__ = None      # numpy defers: ``array - dual`` is ``dual.__rsub__``
    __slots__ = ("value", "tangent")

    def __init__(self, value, tangent):
        self.value, self.tangent = value, tangent

    @staticmethod
    def _parts(other):
        if isinstance(other, Dual):
            return other.value, other.tangent
        return other, None

    def _vec(self, factor):
        # a (P,) factor scales every tangent of its entry
        return factor[..., None] if isinstance(factor, np.ndarray) and factor.ndim else factor

    def __add__(self, other):
        value, tangent = self._parts(other)
        return Dual(self.value + value, self.tangent if tangent is None else
                    self.tangent + tangent)

    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.value, -self.tangent)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        value, tangent = self._parts(other)
        out = self.tangent * self._vec(value)
        if tangent is not None:
            out = out + tangent * self._vec(self.value)
        return Dual(self.value * value, out)

    __rmul__ = __mul__

    def __truediv__(self, other):
        value, tangent = self._parts(other)
        quotient = self.value / value
        out = self.tangent / self._vec(value)
        if tangent is not None:
            out = out - tangent * self._vec(quotient / value)
        return Dual(quotient, out)

    def __rtruediv__(self, other):
        quotient = other / self.value
        return Dual(quotient, -self.tangent * self._vec(quotient / self.value))


def _first(values):
    flat = np.ravel(values) if isinstance(values, np.ndarray) else values
    return flat[0] if len(flat) else None


def sqrt(values):
    """Square roots in the number type of ``values`` (arrays, lists or :class:`Dual`)."""
    if isinstance(values, Dual):
        root = sqrt(values.value)
        return Dual(root, values.tangent / values._vec(2 * root))
    if isinstance(values, np.ndarray) and values.dtype != object:
        return np.sqrt(values)
    array = np.asarray(values, dtype=object)
    sample = _first(array)
    if isinstance(sample, Fraction):
        raise NotSupportedError("Adam: a square root has no exact rational value; use "
                                "mpmath or python-flint numbers")
    if isinstance(sample, (mpmath.iv.mpf, mpmath.iv.mpc)):
        function = mpmath.iv.sqrt
    elif isinstance(sample, (mpmath.mpf, mpmath.mpc)):
        function = mpmath.sqrt
    elif hasattr(sample, "sqrt"):     # python-flint numbers
        function = type(sample).sqrt
    else:
        function = mpmath.sqrt
    return np.frompyfunc(function, 1, 1)(array)


def _scalar_sqrt(value):
    """The square root of one number, in its own type (float32 stays float32)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return np.sqrt(value)
    if isinstance(value, np.generic):
        return np.sqrt(value)
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return math.sqrt(value)
    array = np.empty(1, dtype=object)
    array[0] = value
    return sqrt(array)[0]


def _converter(sample):
    """A function from a decimal string to the number type of ``sample``."""
    if isinstance(sample, Dual):
        return _converter(sample.value)
    if isinstance(sample, np.ndarray):
        if sample.dtype == object:
            return _converter(sample.flat[0]) if sample.size else Fraction
        return sample.dtype.type
    if isinstance(sample, (list, tuple)):
        return _converter(sample[0]) if sample else Fraction
    if isinstance(sample, (Fraction, int)):
        return Fraction
    if isinstance(sample, Decimal):
        return Decimal
    if isinstance(sample, mpmath.mpf):
        return mpmath.mpf
    return type(sample)  # floats, flint.arb, mpmath.iv.mpf: all read decimal strings


def _array(values):
    """``(array, was_list)``: lists become object arrays (numbers unchanged)."""
    if isinstance(values, (np.ndarray, Dual)):
        return values, False
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array, True


def _out(array, as_list):
    return list(array) if as_list else array


def _arrays(state):
    """A state given as lists (as :meth:`Optimizer.step` returns for lists) as arrays."""
    if isinstance(state, list):
        return _array(state)[0]
    if isinstance(state, tuple):
        return tuple(_arrays(part) for part in state)
    return state


def _lists(state):
    if isinstance(state, np.ndarray):
        return list(state)
    if isinstance(state, tuple):
        return tuple(_lists(part) for part in state)
    return state


def _check_fraction(value, field, low=None, high=None, high_open=True):
    value = Decimal(0) if value is None else to_decimal(value, field)
    if (low is not None and value < low) or (high is not None and (
            value >= high if high_open else value > high)):
        raise InputError(f"{field}: out of range: {value}")
    return value


def _check_flag(value, field):
    if value is None:
        return False
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{field}: expected true or false, got {value!r}")
    return bool(value)


def _check_lr(lr):
    if isinstance(lr, (list, tuple)):
        if not lr:
            raise InputError("optimizer.lr: an empty schedule")
        values = tuple(to_decimal(v, f"optimizer.lr[{k}]") for k, v in enumerate(lr))
        for k, value in enumerate(values):
            if value <= 0:
                raise InputError(f"optimizer.lr[{k}]: the learning rate must be positive, "
                                 f"got {value}")
        return values
    value = to_decimal(lr, "optimizer.lr")
    if value <= 0:
        raise InputError(f"optimizer.lr: the learning rate must be positive, got {lr}")
    return value


def _check_batch_size(size):
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"optimizer.batch_size: must be a positive integer, got {size!r}")
    return int(size)


# -- the base class ----------------------------------------------------------------

class Optimizer:
    """An optimizer of a trace: hyperparameters, the update equation, its inverse.

    ``Optimizer(name, lr, ...)`` makes the registered class of ``name`` (``gd``, ``sgd``,
    ``adam``, ``adamw``); see :class:`SGD`, :class:`Adam`, :class:`AdamW` for the
    options.  Instances are immutable and compare by their fields.
    """

    names = ()
    #: whether the update rule can be undone (a linear inverse, step by step)
    rule_invertible = True
    #: the option names of the trace file's ``optimizer`` object, besides name and lr
    options = ()
    #: the options of federated rounds, every optimizer's
    round_options = ("local_steps", "reset_state")

    @property
    def invertible(self):
        """Whether every recorded step's gradient can be read off the parameters: the
        rule can be undone and each recorded step is one optimizer step (no local steps
        in between)."""
        return self.rule_invertible and self.local_steps == 1

    def __new__(cls, name=None, *args, **kwargs):
        if cls is Optimizer:
            if not isinstance(name, str) or name not in OPTIMIZER_CLASSES:
                shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
                raise InputError(f"optimizer.name: unknown optimizer {shown}; known: "
                                 f"{', '.join(OPTIMIZER_CLASSES)}")
            cls = OPTIMIZER_CLASSES[name]
        return super().__new__(cls)

    def _set(self, **values):
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key, value):
        raise AttributeError("an Optimizer is immutable; use replace()")

    def _common(self, name, lr, weight_decay, batch_size, local_steps, reset_state):
        if name not in self.names:
            raise InputError(f"optimizer.name: {type(self).__name__} is one of "
                             f"{', '.join(self.names)}, got {name!r}")
        if isinstance(local_steps, bool) or not isinstance(local_steps, (int, np.integer)) \
                or local_steps < 1:
            raise InputError(f"optimizer.local_steps: must be a positive integer, got "
                             f"{local_steps!r}")
        self._set(name=name, lr=_check_lr(lr),
                  weight_decay=_check_fraction(weight_decay, "optimizer.weight_decay", 0),
                  batch_size=_check_batch_size(batch_size), local_steps=int(local_steps),
                  reset_state=_check_flag(True if reset_state is None else reset_state,
                                          "optimizer.reset_state"))

    # -- identity and the file format ------------------------------------------------

    @property
    def all_options(self):
        return self.options + self.round_options

    def fields(self):
        """Every field (``name``, ``lr``, the options) as stored."""
        return dict({"name": self.name, "lr": self.lr},
                    **{key: getattr(self, key) for key in self.all_options})

    def __eq__(self, other):
        return type(other) is type(self) and other.fields() == self.fields()

    def __hash__(self):
        return hash(tuple(self.fields().items()))

    def __reduce__(self):
        return Optimizer.from_dict, (self.to_dict(),)

    def __repr__(self):
        shown = [f"{self.name!r}", f"lr={_text(self.lr)}"]
        for key, value in self.to_dict().items():
            if key not in ("name", "lr"):
                shown.append(f"{key}={_text(value)}")
        return f"Optimizer({', '.join(shown)})"

    def _defaults(self):
        """The options' default values (left out of :meth:`to_dict`)."""
        return {}

    def _repr_latex_(self):
        from .report.display import math_block, optimizer_latex
        return math_block(optimizer_latex(self))

    def to_dict(self):
        """The trace file's ``optimizer`` object (options at their defaults left out)."""
        data = {"name": self.name, "lr": _text(self.lr)}
        defaults = dict(self._defaults(), local_steps=1, reset_state=True)
        for key in self.all_options:
            value = getattr(self, key)
            if key in defaults and value == defaults[key]:
                continue
            data[key] = _text(value)
        return data

    @classmethod
    def from_dict(cls, data):
        """From the trace file's ``optimizer`` object; an unknown key is an
        :class:`InputError` naming it (a typo must not silently mean plain GD).

        >>> Optimizer.from_dict({"name": "sgd", "lr": "0.05", "batch_size": 2,
        ...                      "momentum": "0.9"}).to_dict()
        {'name': 'sgd', 'lr': '0.05', 'momentum': '0.9', 'batch_size': 2}
        >>> Optimizer.from_dict({"name": "sgd", "lr": "0.05"})
        Traceback (most recent call last):
        ...
        symbolic_inversion.errors.InputError: optimizer.batch_size: required for sgd
        >>> Optimizer.from_dict({"name": "gd", "lr": "0.1", "momentun": "0.9"})
        Traceback (most recent call last):
        ...
        symbolic_inversion.errors.InputError: optimizer.momentun: unknown option for gd; known: name, lr, momentum, weight_decay, batch_size, dampening, nesterov, local_steps, reset_state
        """
        if isinstance(data, Optimizer):
            return data
        if not isinstance(data, dict):
            raise InputError("optimizer: expected an object with name and lr")
        if "lr" not in data:
            raise InputError("optimizer.lr: missing")
        name = data.get("name", "gd")
        if not isinstance(name, str) or name not in OPTIMIZER_CLASSES:
            Optimizer(name)  # the error naming the known optimizers
        target = OPTIMIZER_CLASSES[name]
        known = ("name", "lr") + target.options + target.round_options
        for key in data:
            if key not in known:
                shown = key if len(str(key)) <= 40 else str(key)[:37] + "..."
                raise InputError(f"optimizer.{shown}: unknown option for {name}; known: "
                                 f"{', '.join(known)}")
        return target(name, data["lr"], **{k: data[k] for k in known[2:] if k in data})

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        values = dict(self.fields(), **changes)
        name = values.pop("name")
        return type(self)(name, **values) if type(self) is not Optimizer else \
            Optimizer(name, **values)

    # -- schedule and batches ---------------------------------------------------------

    @property
    def schedule(self):
        """The learning rates of a schedule (a tuple), or ``None`` for a constant one."""
        return self.lr if isinstance(self.lr, tuple) else None

    def lr_at(self, step):
        """The learning rate of step ``step`` (a Decimal)."""
        if isinstance(self.lr, tuple):
            if not 0 <= step < len(self.lr):
                raise InputError(f"optimizer.lr: the schedule has {len(self.lr)} values, "
                                 f"step {step} has none")
            return self.lr[step]
        return self.lr

    def check_steps(self, steps):
        """Refuse a schedule whose length is not ``steps``."""
        if isinstance(self.lr, tuple) and len(self.lr) != steps:
            raise InputError(f"optimizer.lr: a schedule of {len(self.lr)} values for "
                             f"{steps} steps")
        return self

    @property
    def minibatch(self):
        """Whether steps use minibatches (``batch_size`` given)."""
        return self.batch_size is not None

    def check_samples(self, samples):
        """Refuse a batch size larger than the sample count."""
        if self.batch_size is not None and self.batch_size > samples:
            raise InputError(f"optimizer.batch_size: must be an integer in 1..{samples}, "
                             f"got {self.batch_size!r}")
        return self

    # -- the update equation ------------------------------------------------------------

    def number(self, value, number):
        return number(str(value))

    def step(self, theta, gradient, state=None, index=0, number=None):
        """One optimizer step: ``(theta_next, state_next)``.

        ``theta`` and ``gradient`` are lists of numbers or numpy arrays (or :class:`Dual`
        gradients); ``state`` the previous step's (``None``: the initial state);
        ``index`` the step's index (schedules, bias corrections); ``number`` converts a
        decimal string to the numbers' type (default: the type of ``theta``'s entries).
        The result has the type of ``theta`` (a list for a list).
        """
        number = number or _converter(theta)
        theta_array, as_list = _array(theta)
        gradient_array, _ = _array(gradient)
        new_theta, new_state = self._step(theta_array, gradient_array, _arrays(state),
                                          index, number)
        return _out(new_theta, as_list), (_lists(new_state) if as_list else new_state)

    def _step(self, theta, gradient, state, index, number):
        raise NotImplementedError

    # -- symbolic form -------------------------------------------------------------

    def symbolic_update(self):
        r"""The update equations of a generic step ``j`` and parameter ``p`` as SymPy
        equations, in terms of the loss gradient ``d^{(j)}_p`` (the learning rate is the
        symbol ``eta``; the other coefficients are the optimizer's values).

        >>> for equation in Optimizer("gd", "0.1", momentum="0.9").symbolic_update():
        ...     print(equation)
        Eq(v^{(j + 1)}_{p}, d^{(j)}_{p} + 9*v^{(j)}_{p}/10)
        Eq(\theta^{(j + 1)}_{p}, \theta^{(j)}_{p} - eta*v^{(j + 1)}_{p})
        """
        raise NotImplementedError

    @staticmethod
    def _symbols(*names):
        names = [r"\theta" if name == "theta" else name for name in names]
        return [sp.Symbol(f"{name}^{{(j)}}_{{p}}") for name in names] + \
            [sp.Symbol(f"{name}^{{(j + 1)}}_{{p}}") for name in names]

    # -- the inverse -----------------------------------------------------------------

    def invertible_steps(self, steps):
        """How many leading steps' gradients :meth:`observed_gradients` reads exactly
        (none when a recorded step holds several local steps)."""
        return steps if self.local_steps == 1 else 0

    def observed_gradients(self, thetas, number=None):
        """The gradient of every invertible step, undone from consecutive parameter
        vectors ``theta_0 .. theta_E`` (lists or arrays; the result has their type)."""
        raise NotImplementedError

    def gradient_uncertainty(self, resolution, step=0):
        """Bound on the error of an observed gradient entry of ``step`` when every
        parameter is within ``resolution / 2`` of the truth (mpmath, working precision)."""
        raise NotImplementedError

    def update_uncertainty(self, resolution, step=0):
        """Bound on the error of an observed normalised update
        ``(theta_j - theta_{j+1}) / lr_j`` when every parameter is within
        ``resolution / 2`` of the truth."""
        resolution = mpmath.mpf(str(resolution))
        return resolution / mpmath.mpf(str(self.lr_at(step)))


def _text(value):
    if isinstance(value, tuple):
        return [_text(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


# -- SGD -----------------------------------------------------------------------------

@register_optimizer
class SGD(Optimizer):
    """``torch.optim.SGD``: ``gd`` (every sample at every step) or ``sgd`` (minibatches of
    ``batch_size``).

    Parameters
    ==========

    name : ``"gd"`` or ``"sgd"``
    lr : decimal string or number, or a list of them (one per step)
    momentum : in ``[0, 1)`` (``0``: none)
    weight_decay : non-negative L2 decay, added to the gradient
    batch_size : int, required for ``sgd`` (``gd`` takes none)
    dampening : in ``[0, 1]``; nesterov : bool (needs momentum and no dampening, as
        PyTorch)
    """

    names = ("gd", "sgd")
    options = ("momentum", "weight_decay", "batch_size", "dampening", "nesterov")

    def __init__(self, name, lr, momentum=0, weight_decay=0, batch_size=None, dampening=0,
                 nesterov=False, local_steps=1, reset_state=True):
        self._common(name, lr, weight_decay, batch_size, local_steps, reset_state)
        self._set(momentum=_check_fraction(momentum, "optimizer.momentum", 0, 1),
                  dampening=_check_fraction(dampening, "optimizer.dampening", 0, 1, False),
                  nesterov=_check_flag(nesterov, "optimizer.nesterov"))
        if name == "sgd" and self.batch_size is None:
            raise InputError("optimizer.batch_size: required for sgd")
        if name == "gd" and self.batch_size is not None:
            raise InputError("optimizer.batch_size: gd uses every sample at every step; "
                             "a minibatch trace names sgd")
        if self.nesterov and (not self.momentum or self.dampening):
            raise InputError("optimizer.nesterov: needs a momentum and zero dampening "
                             "(as torch.optim.SGD)")

    def _defaults(self):
        return {"momentum": 0, "weight_decay": 0, "batch_size": None, "dampening": 0,
                "nesterov": False}

    def coefficients(self, number=Fraction, step=0):
        """``(lr, momentum, weight_decay)`` of ``step`` converted by ``number``.

        >>> Optimizer("gd", "0.1").coefficients(float)
        (0.1, 0.0, 0.0)
        """
        return tuple(number(str(value)) for value in
                     (self.lr_at(step), self.momentum, self.weight_decay))

    def symbolic_update(self):
        eta = sp.Symbol("eta", positive=True)
        theta, velocity, theta_next, velocity_next = self._symbols("theta", "v")
        direction = sp.Symbol("d^{(j)}_{p}") + _rational(self.weight_decay) * theta
        if not self.momentum:
            return [sp.Eq(theta_next, theta - eta * direction)]
        mu = _rational(self.momentum)
        rows = [sp.Eq(velocity_next, mu * velocity + (1 - _rational(self.dampening))
                      * direction)]
        step = direction + mu * velocity_next if self.nesterov else velocity_next
        return rows + [sp.Eq(theta_next, theta - eta * step)]

    def _step(self, theta, gradient, velocity, index, number):
        lr, mu, wd = self.coefficients(number, index)
        # Zero options are skipped by their exact value (an interval or ball zero is not
        # falsy), which also keeps float rounding to PyTorch's own operations.
        direction = gradient + theta * wd if self.weight_decay else gradient
        if not self.momentum:
            return theta - direction * lr, None
        if velocity is None:
            velocity = direction
        elif self.dampening:
            velocity = velocity * mu + direction * number(str(1 - self.dampening))
        else:
            velocity = velocity * mu + direction
        update = direction + velocity * mu if self.nesterov else velocity
        return theta - update * lr, velocity

    def observed_gradients(self, thetas, number=None):
        """Every step's gradient: exact with Fractions, at the working precision with
        mpmath.

        >>> from fractions import Fraction
        >>> Optimizer("gd", "0.1", weight_decay="0.5").observed_gradients(
        ...     [[Fraction(1)], [Fraction(9, 10)]])
        [[Fraction(1, 2)]]
        >>> nesterov = Optimizer("gd", "0.1", momentum="0.9", nesterov=True)
        >>> thetas = [[Fraction(1)]]
        >>> state = None
        >>> for index, g in enumerate([Fraction(3), Fraction(-1)]):
        ...     theta, state = nesterov.step(thetas[-1], [g], state, index)
        ...     thetas.append(theta)
        >>> nesterov.observed_gradients(thetas)
        [[Fraction(3, 1)], [Fraction(-1, 1)]]
        """
        thetas = list(thetas)
        if not thetas:
            return []
        number = number or _converter(thetas[0])
        gradients, velocity = [], None
        for index, (now, later) in enumerate(zip(thetas, thetas[1:])):
            now_array, as_list = _array(now)
            later_array, _ = _array(later)
            lr, mu, wd = self.coefficients(number, index)
            update = (now_array - later_array) / lr
            if not self.momentum:
                direction = update
            elif velocity is None:  # the first step: v = d
                direction = update / (1 + mu) if self.nesterov else update
                velocity = direction
            else:
                keep = number(str(1 - self.dampening))
                if self.nesterov:   # update = d + mu (mu v + d)
                    direction = (update - velocity * (mu * mu)) / (1 + mu)
                else:               # update = mu v + (1 - tau) d
                    direction = (update - velocity * mu) / keep
                velocity = velocity * mu + direction * keep
            gradient = direction - now_array * wd if self.weight_decay else direction
            gradients.append(_out(gradient, as_list))
        return gradients

    def gradient_uncertainty(self, resolution, step=0):
        """Bound on the error of an observed gradient entry of ``step`` when every
        parameter is within ``resolution / 2`` of the truth.

        A gradient is a difference of two parameters over ``lr``; momentum removes the
        previous step's difference (itself observed: ``v_j = (theta_{j-1} - theta_j) /
        lr_{j-1}``), dampening divides by ``1 - tau``, and weight decay subtracts ``wd
        theta_j``, itself rounded by half a unit.  With Nesterov the velocity is not
        observed but carried; its error contracts by ``mu / (1 + mu)`` a step, so the
        direction's error stays below ``(1 + mu^2) / (1 + mu)`` of one difference's.

        >>> import mpmath
        >>> with mpmath.workdps(15):
        ...     print(Optimizer("gd", "0.1", momentum="0.5").gradient_uncertainty("1e-7", 1))
        1.5e-6
        """
        resolution = mpmath.mpf(str(resolution))
        lr, mu, wd = self.coefficients(mpmath.mpf, step)
        decay = resolution * wd / 2
        if not self.momentum:
            return resolution / lr + decay
        if self.nesterov:
            return resolution * (1 + mu * mu) / (1 + mu) / lr + decay
        if step == 0:
            return resolution / lr + decay
        previous = mpmath.mpf(str(self.lr_at(step - 1)))
        keep = 1 - mpmath.mpf(str(self.dampening))
        return resolution * (1 / lr + mu / previous) / keep + decay


# -- Adam ----------------------------------------------------------------------------

@register_optimizer
class Adam(Optimizer):
    """``torch.optim.Adam``: ``betas``, ``eps``, ``weight_decay`` (added to the gradient),
    ``amsgrad``; bias corrections as PyTorch.  State ``(m, v, v_max, t)`` starts at zero."""

    names = ("adam",)
    rule_invertible = False
    options = ("betas", "eps", "weight_decay", "amsgrad", "batch_size")
    default_weight_decay = Decimal(0)
    decoupled = False

    def __init__(self, name, lr, betas=("0.9", "0.999"), eps="1e-8", weight_decay=None,
                 amsgrad=False, batch_size=None, local_steps=1, reset_state=True):
        if weight_decay is None:
            weight_decay = self.default_weight_decay
        self._common(name, lr, weight_decay, batch_size, local_steps, reset_state)
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise InputError(f"optimizer.betas: expected two decimal strings, got {betas!r}")
        betas = tuple(_check_fraction(b, f"optimizer.betas[{k}]", 0, 1)
                      for k, b in enumerate(betas))
        eps = to_decimal(eps, "optimizer.eps")
        if eps <= 0:
            raise InputError(f"optimizer.eps: must be positive, got {eps}")
        self._set(betas=betas, eps=eps, amsgrad=_check_flag(amsgrad, "optimizer.amsgrad"))

    def _defaults(self):
        return {"betas": (Decimal("0.9"), Decimal("0.999")), "eps": Decimal("1e-8"),
                "weight_decay": self.default_weight_decay, "amsgrad": False,
                "batch_size": None}

    def symbolic_update(self):
        r"""Adam's update of step ``j`` (moments from zero at ``j = 0``).

        >>> for equation in Optimizer("adam", "0.01").symbolic_update():
        ...     print(equation)
        Eq(m^{(j + 1)}_{p}, d^{(j)}_{p}/10 + 9*m^{(j)}_{p}/10)
        Eq(v^{(j + 1)}_{p}, d^{(j)}_{p}**2/1000 + 999*v^{(j)}_{p}/1000)
        Eq(\theta^{(j + 1)}_{p}, \theta^{(j)}_{p} - eta*m^{(j + 1)}_{p}/((1 - (9/10)**(j + 1))*(sqrt(v^{(j + 1)}_{p}/(1 - (999/1000)**(j + 1))) + 1/100000000)))
        """
        eta = sp.Symbol("eta", positive=True)
        j = sp.Symbol("j", integer=True, nonnegative=True)
        theta, m, v, theta_next, m_next, v_next = self._symbols("theta", "m", "v")
        b1, b2 = (_rational(b) for b in self.betas)
        wd, eps = _rational(self.weight_decay), _rational(self.eps)
        gradient = sp.Symbol("d^{(j)}_{p}")
        start = theta * (1 - eta * wd) if self.decoupled else theta
        direction = gradient if self.decoupled else gradient + wd * theta
        c1 = 1 - sp.Pow(b1, j + 1, evaluate=False)
        c2 = 1 - sp.Pow(b2, j + 1, evaluate=False)
        return [sp.Eq(m_next, b1 * m + (1 - b1) * direction),
                sp.Eq(v_next, b2 * v + (1 - b2) * direction ** 2),
                sp.Eq(theta_next, start - eta * (m_next / c1) / (sp.sqrt(v_next / c2) + eps))]

    def _step(self, theta, gradient, state, index, number):
        lr = number(str(self.lr_at(index)))
        b1, b2 = (number(str(b)) for b in self.betas)
        eps = number(str(self.eps))
        if self.decoupled and self.weight_decay:
            theta = theta * (1 - lr * number(str(self.weight_decay)))
        direction = gradient
        if self.weight_decay and not self.decoupled:
            direction = gradient + theta * number(str(self.weight_decay))
        if state is None:
            m = direction * (1 - b1)
            v = direction * direction * (1 - b2)
            t = 1
            v_max = v if self.amsgrad else None
        else:
            m_old, v_old, v_max, t = state
            m = m_old * b1 + direction * (1 - b1)
            v = v_old * b2 + direction * direction * (1 - b2)
            t += 1
            if self.amsgrad:
                v_max = _maximum(v_max, v)
        correction1 = 1 - b1 ** t
        correction2 = 1 - b2 ** t
        second = v_max if self.amsgrad else v
        # PyTorch's order: denom = sqrt(v) / sqrt(c2) + eps; theta -= (lr / c1) m / denom
        denominator = sqrt(second) / _scalar_sqrt(correction2) + eps
        new_theta = theta - m * (lr / correction1) / denominator
        return new_theta, (m, v, v_max, t)

    def invertible_steps(self, steps):
        return min(steps, 1) if self.local_steps == 1 else 0

    def select_gradients(self, thetas, model_gradients):
        """The gradients that explain the observed steps, the ambiguity of every step
        after the first resolved towards ``model_gradients`` (what the data at hand
        predict): a float64 ``(E, P)`` array.

        Step by step and coordinate by coordinate the state (``m``, ``v``) is carried
        through the gradients already selected, and of the (at most two) roots of
        ``k (sqrt(v_hat) + eps) = m_hat`` (module docstring) that satisfy the sign
        condition the one nearest the model's gradient is taken.  At the true data the
        model's gradients are roots, so the selection returns them exactly: a search in
        this *selected gradient form* is a gradient-form search (labels linear), and its
        candidates are judged on the update form.  Float64, for searches only; without
        a real root the vertex of the quadratic (the nearest real value) stands in.
        ``amsgrad`` is not covered (:class:`NotSupportedError`).
        """
        if self.amsgrad:
            raise NotSupportedError("adam: amsgrad's running maximum is not inverted; the "
                                    "update form is searched instead")
        thetas = np.asarray(thetas, dtype=float)
        model = np.asarray(model_gradients, dtype=float)
        steps = len(model)
        b1, b2 = (float(b) for b in self.betas)
        eps, wd = float(self.eps), float(self.weight_decay)
        m = v = None
        out = np.empty_like(model)
        for j in range(steps):
            lr = float(self.lr_at(j))
            now = thetas[j] * (1 - lr * wd) if self.decoupled else thetas[j]
            k = (now - thetas[j + 1]) / lr
            decay = wd * thetas[j] if (wd and not self.decoupled) else 0.0
            target = model[j] + decay                 # the direction d the model predicts
            c1, c2 = 1 - b1 ** (j + 1), 1 - b2 ** (j + 1)
            if m is None:
                d = eps * k / (1 - np.abs(k))
            else:
                A, a = b1 * m / c1, (1 - b1) / c1
                V, b = b2 * v / c2, (1 - b2) / c2
                C = A - k * eps
                quadratic = a * a - k * k * b
                linear = 2 * a * C
                constant = C * C - k * k * V
                d = _nearest_valid_root(quadratic, linear, constant, C, a, k, target)
            out[j] = d - decay
            m = d * (1 - b1) if m is None else b1 * m + (1 - b1) * d
            v = d * d * (1 - b2) if v is None else b2 * v + (1 - b2) * d * d
        return out


    def observed_gradients(self, thetas, number=None):
        """The gradient of the first step (from the zero state), in closed form:
        ``d = eps k / (1 - |k|)`` with ``k = (theta_0 - theta_1) / lr`` per coordinate,
        minus the weight decay's ``wd theta_0``.  Later steps are not invertible (module
        docstring): they enter the system as update equations."""
        thetas = list(thetas)
        if len(thetas) < 2:
            return []
        number = number or _converter(thetas[0])
        now, as_list = _array(thetas[0])
        later, _ = _array(thetas[1])
        lr, eps = number(str(self.lr_at(0))), number(str(self.eps))
        if self.decoupled and self.weight_decay:
            now = now * (1 - lr * number(str(self.weight_decay)))
        k = (now - later) / lr
        magnitude = _absolute(k)
        direction = k * eps / (1 - magnitude)
        gradient = direction - now * number(str(self.weight_decay)) \
            if self.weight_decay and not self.decoupled else direction
        return [_out(gradient, as_list)]

    def gradient_uncertainty(self, resolution, step=0):
        """Bound on the error of the first step's observed gradient (the only one read):
        ``|dd/dk| = eps / (1 - |k|)^2`` times the error of ``k``, ``resolution / lr``;
        with ``|k|`` up to ``1 - eps / G`` for a gradient ``G`` the factor is ``G^2 /
        eps``, so this bound needs the observed gradient's size: it is given per entry by
        :meth:`first_step_uncertainties`; here the worst case over ``|d| <= 1/eps``."""
        resolution = mpmath.mpf(str(resolution))
        return resolution / mpmath.mpf(str(self.lr_at(0))) * \
            (1 / mpmath.mpf(str(self.eps)))

    def first_step_uncertainties(self, gradient, resolutions):
        """Per entry of the first step's observed ``gradient`` (mpmath numbers), the
        bound on its error when the entry's two parameters are within ``resolutions[p] /
        2`` of the truth: ``(|d| + eps)^2 / eps`` (the derivative of ``d = eps k / (1 -
        |k|)``, with ``|d| + 2 eps`` for the change of ``d`` itself) times the error of
        ``k``, ``resolution / lr``, plus the decay's half unit."""
        eps = mpmath.mpf(str(self.eps))
        lr = mpmath.mpf(str(self.lr_at(0)))
        wd = mpmath.mpf(str(self.weight_decay))
        out = []
        for g, resolution in zip(gradient, resolutions):
            resolution = mpmath.mpf(str(resolution))
            size = abs(g) + wd + 2 * eps
            out.append(resolution / lr * size * size / eps * 2 + resolution * wd)
        return out

    def update_uncertainty(self, resolution, step=0):
        resolution = mpmath.mpf(str(resolution))
        lr = mpmath.mpf(str(self.lr_at(step)))
        # AdamW's decay uses theta_j itself: its half unit scaled by wd
        return resolution / lr + resolution * mpmath.mpf(str(self.weight_decay))


@register_optimizer
class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay (``theta *= 1 - lr wd``
    first; default ``wd = 0.01``)."""

    names = ("adamw",)
    default_weight_decay = Decimal("0.01")
    decoupled = True


def _nearest_valid_root(quadratic, linear, constant, C, a, k, target):
    """Per coordinate, the root ``d`` of ``quadratic d^2 + linear d + constant = 0`` with
    ``C + a d`` of the sign of ``k`` that is nearest ``target`` (vectorised, float64);
    the vertex where no root is real and valid."""
    with np.errstate(all="ignore"):
        discriminant = linear * linear - 4 * quadratic * constant
        root = np.sqrt(np.maximum(discriminant, 0))
        degenerate = np.abs(quadratic) < 1e-300
        first = np.where(degenerate, -constant / linear, (-linear - root) / (2 * quadratic))
        second = np.where(degenerate, first, (-linear + root) / (2 * quadratic))
        vertex = np.where(degenerate, first, -linear / (2 * quadratic))
    candidates = np.stack([first, second])
    valid = (np.sign(C + a * candidates) * np.sign(k) >= 0) & np.isfinite(candidates) & \
        (discriminant >= 0)
    distance = np.where(valid, np.abs(candidates - target), np.inf)
    best = np.argmin(distance, axis=0)
    chosen = np.take_along_axis(candidates, best[None], axis=0)[0]
    return np.where(np.isfinite(np.min(distance, axis=0)), chosen,
                    np.where(np.isfinite(vertex), vertex, target))


def _rational(value):
    """A decimal as a SymPy Rational (exact)."""
    return sp.Rational(str(value))


def _absolute(values):
    if isinstance(values, np.ndarray) and values.dtype != object:
        return np.abs(values)
    return np.frompyfunc(abs, 1, 1)(values)


def _maximum(a, b):
    if isinstance(a, Dual):
        take = _greater(b.value, a.value)
        value = np.where(take, b.value, a.value)
        tangent = np.where(take[..., None], b.tangent, a.tangent)
        return Dual(value, tangent)
    if isinstance(a, np.ndarray) and a.dtype != object:
        return np.maximum(a, b)
    return np.where(_greater(b, a), b, a)


def _greater(a, b):
    return np.asarray([bool(x > y) for x, y in zip(np.ravel(a), np.ravel(b))]).reshape(
        np.shape(a))


#: The registered names (version 0.1 exported the tuple ``("gd", "sgd")``).
OPTIMIZERS = tuple(OPTIMIZER_CLASSES)
