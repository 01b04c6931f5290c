r"""The optimizer: one step of training, and the same step undone.

:class:`Optimizer` is the typed description a trace carries (``gd`` or ``sgd``, the
learning rate, momentum, weight decay, batch size), its numbers exact decimals as the
trace file writes them.  It owns the update equations, written once here:

.. math:: d_t = g_t + \lambda\,\theta_t,\qquad v_{t+1} = \mu\,v_t + d_t,\qquad
          \theta_{t+1} = \theta_t - \eta\,v_{t+1},\qquad v_0 = 0

(PyTorch's ``torch.optim.SGD`` without dampening or Nesterov, in its order of
operations), and their inverse, the gradient an observer reads off consecutive
parameter vectors:

.. math:: v_{t+1} = (\theta_t - \theta_{t+1}) / \eta,\qquad
          g_t = v_{t+1} - \mu\,v_t - \lambda\,\theta_t .

Both are generic over the number type: lists of :class:`~fractions.Fraction` (exact
right-hand sides), of mpmath numbers (any precision), of floats, or numpy arrays (any
dtype, vectorised).  The coefficients are converted from the exact decimals with the
number type of the data, so float32 training rounds them as float32 training does.
"""

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Optional

import mpmath
import numpy as np

from .errors import InputError
from .exact import to_decimal

__all__ = ["Optimizer", "OPTIMIZERS"]

OPTIMIZERS = ("gd", "sgd")
_FIELDS = ("name", "lr", "batch_size", "momentum", "weight_decay")


def _converter(sample):
    """A function from a decimal string to the number type of ``sample``."""
    if isinstance(sample, np.ndarray):
        if sample.dtype == object:
            return _converter(sample.flat[0]) if sample.size else Fraction
        return sample.dtype.type
    if isinstance(sample, (list, tuple)):
        return _converter(sample[0]) if sample else Fraction
    if isinstance(sample, Fraction) or isinstance(sample, int):
        return Fraction
    if isinstance(sample, Decimal):
        return Decimal
    if isinstance(sample, mpmath.mpf):
        return mpmath.mpf
    if isinstance(sample, (float, np.floating)):
        return type(sample)
    return type(sample)  # e.g. flint.arb, mpmath.iv.mpf: both read decimal strings


def _map(function, *vectors):
    """``function`` elementwise: vectorised on numpy arrays, a list for sequences.

    The functions put the coefficient on the right (``v * mu``): a scalar on the left
    would get the first say, and an mpmath interval reads a 2-element array as the
    endpoints of an interval instead of deferring to numpy.
    """
    if isinstance(vectors[0], np.ndarray):
        return function(*vectors)
    return [function(*values) for values in zip(*vectors)]


@dataclass(frozen=True)
class Optimizer:
    """What a trace says about the optimizer; exact, validated, immutable.

    Parameters
    ==========

    name : ``"gd"`` or ``"sgd"``
        Full-batch gradient descent (the paper's eqs. (5)-(6)) or minibatch SGD.
    lr : decimal string or number
        The learning rate, positive.
    momentum : decimal string or number
        In ``[0, 1)``, PyTorch's convention (``0``: none).
    weight_decay : decimal string or number
        Non-negative L2 weight decay (``0``: none).
    batch_size : int, optional
        Minibatch size, required for ``sgd``.

    Examples
    ========

    >>> from fractions import Fraction
    >>> from symbolic_inversion.optimizers import Optimizer
    >>> opt = Optimizer("gd", "0.1", momentum="0.5")
    >>> opt
    Optimizer(name='gd', lr=Decimal('0.1'), momentum=Decimal('0.5'), weight_decay=Decimal('0'), batch_size=None)
    >>> opt.to_dict()
    {'name': 'gd', 'lr': '0.1', 'momentum': '0.5'}
    >>> theta, velocity = opt.step([Fraction(1)], [Fraction(2)])
    >>> theta, velocity
    ([Fraction(4, 5)], [Fraction(2, 1)])
    >>> opt.step(theta, [Fraction(2)], velocity)[0]
    [Fraction(1, 2)]
    >>> opt.observed_gradients([[Fraction(1)], [Fraction(4, 5)], [Fraction(1, 2)]])
    [[Fraction(2, 1)], [Fraction(2, 1)]]
    >>> Optimizer("adam", "0.1")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: optimizer.name: unknown optimizer 'adam'; known: gd, sgd
    """

    name: str
    lr: Decimal
    momentum: Decimal = Decimal(0)
    weight_decay: Decimal = Decimal(0)
    batch_size: Optional[int] = None

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise InputError(f"optimizer.name: unknown optimizer {self.name!r}; known: "
                             f"{', '.join(OPTIMIZERS)}")
        lr = to_decimal(self.lr, "optimizer.lr")
        if lr <= 0:
            raise InputError(f"optimizer.lr: the learning rate must be positive, got "
                             f"{self.lr}")
        values = {"lr": lr}
        for key in ("momentum", "weight_decay"):
            value = getattr(self, key)
            value = Decimal(0) if value is None else to_decimal(value, f"optimizer.{key}")
            if value < 0 or (key == "momentum" and value >= 1):
                raise InputError(f"optimizer.{key}: out of range: {value}")
            values[key] = value
        size = self.batch_size
        if size is not None and (isinstance(size, bool)
                                 or not isinstance(size, (int, np.integer)) or size < 1):
            raise InputError(f"optimizer.batch_size: must be a positive integer, got {size!r}")
        if size is None and self.name == "sgd":
            raise InputError("optimizer.batch_size: required for sgd")
        if size is not None and self.name == "gd":  # (it was read, then ignored)
            raise InputError("optimizer.batch_size: only an sgd trace has a batch size; "
                             "optimizer.name 'gd' uses every sample at every step")
        values["batch_size"] = None if size is None else int(size)
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # -- the file format -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data):
        """From the trace file's ``optimizer`` object (unknown keys are ignored).

        >>> Optimizer.from_dict({"name": "sgd", "lr": "0.05", "batch_size": 2,
        ...                      "momentum": "0.9"}).to_dict()
        {'name': 'sgd', 'lr': '0.05', 'batch_size': 2, 'momentum': '0.9'}
        >>> Optimizer.from_dict({"name": "sgd", "lr": "0.05"})
        Traceback (most recent call last):
        ...
        symbolic_inversion.errors.InputError: optimizer.batch_size: required for sgd
        """
        if isinstance(data, Optimizer):
            return data
        if not isinstance(data, dict):
            raise InputError("optimizer: expected an object with name and lr")
        if "lr" not in data:
            raise InputError("optimizer.lr: missing")
        return cls(data.get("name", "gd"), data["lr"], data.get("momentum"),
                   data.get("weight_decay"), data.get("batch_size"))

    def to_dict(self):
        """The trace file's ``optimizer`` object; zero momentum and decay are left out."""
        data = {"name": self.name, "lr": str(self.lr)}
        if self.batch_size is not None:
            data["batch_size"] = self.batch_size
        for key in ("momentum", "weight_decay"):
            if getattr(self, key):
                data[key] = str(getattr(self, key))
        return data

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def check_samples(self, samples):
        """Refuse a batch size larger than the sample count."""
        if self.batch_size is not None and self.batch_size > samples:
            raise InputError(f"optimizer.batch_size: must be an integer in 1..{samples}, "
                             f"got {self.batch_size!r}")
        return self

    # Compatibility with the dictionaries of version 0.1 (``trace.optimizer["name"]``).
    def __getitem__(self, key):
        data = self.to_dict()
        if key not in data:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    # -- arithmetic ------------------------------------------------------------------

    def coefficients(self, number=Fraction):
        """``(lr, momentum, weight_decay)`` converted by ``number`` from decimal strings.

        >>> Optimizer("gd", "0.1").coefficients(float)
        (0.1, 0.0, 0.0)
        """
        return tuple(number(str(value)) for value in
                     (self.lr, self.momentum, self.weight_decay))

    def step(self, theta, gradient, velocity=None, number=None):
        """One optimizer step: ``(theta_next, velocity_next)``.

        ``theta`` and ``gradient`` are lists of numbers (Fraction, mpf, float, ...)
        or numpy arrays; ``velocity`` is the previous step's (``None``: ``v_0 = 0``).
        ``number`` converts a decimal string to the arithmetic's number type (default:
        the type of ``theta``'s entries).

        >>> import numpy as np
        >>> Optimizer("gd", "0.5", weight_decay="0.1").step(np.array([1.0, 2.0]),
        ...                                                 np.array([1.0, 0.0]))[0]
        array([0.45, 1.9 ])
        """
        lr, mu, wd = self.coefficients(number or _converter(theta))
        # Zero momentum and decay are skipped by their exact value (an interval or ball
        # zero is not falsy, and skipping keeps float rounding to PyTorch's own).
        direction = (_map(lambda g, t: g + t * wd, gradient, theta) if self.weight_decay
                     else gradient)
        if velocity is None or not self.momentum:
            velocity = direction
        else:
            velocity = _map(lambda v, d: v * mu + d, velocity, direction)
        return _map(lambda t, v: t - v * lr, theta, velocity), velocity

    def observed_gradients(self, thetas, number=None):
        """The gradient of every step, undone from consecutive parameter vectors.

        ``thetas`` are the parameter vectors ``theta_0 .. theta_E``; returns ``E``
        gradients.  Exact with Fractions; at the working precision with mpmath.

        >>> from fractions import Fraction
        >>> Optimizer("gd", "0.1", weight_decay="0.5").observed_gradients(
        ...     [[Fraction(1)], [Fraction(9, 10)]])
        [[Fraction(1, 2)]]
        """
        thetas = list(thetas)
        if not thetas:
            return []
        lr, mu, wd = self.coefficients(number or _converter(thetas[0]))
        gradients, velocity = [], None
        for now, later in zip(thetas, thetas[1:]):
            new_velocity = _map(lambda a, b: (a - b) / lr, now, later)
            gradient = new_velocity
            if self.momentum and velocity is not None:
                gradient = _map(lambda g, v: g - v * mu, gradient, velocity)
            if self.weight_decay:
                gradient = _map(lambda g, t: g - t * wd, gradient, now)
            gradients.append(gradient)
            velocity = new_velocity
        return gradients

    def gradient_uncertainty(self, resolution):
        """Bound on the error of an observed gradient entry when every parameter is
        within ``resolution / 2`` of the truth (an mpmath number at the current
        precision).

        A gradient is a difference of two parameters over ``lr``, momentum adds the
        previous step's difference and weight decay subtracts ``wd theta_j``, itself
        rounded by half a unit.

        >>> import mpmath
        >>> with mpmath.workdps(15):
        ...     print(Optimizer("gd", "0.1", momentum="0.5").gradient_uncertainty("1e-7"))
        1.5e-6
        """
        resolution = mpmath.mpf(str(resolution))
        lr, mu, wd = self.coefficients(mpmath.mpf)
        return resolution * ((1 + mu) / lr + wd / 2)
