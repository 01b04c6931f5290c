r"""Loss black boxes: the MSE loss of a ReLU network on a fixed dataset.

A :class:`LossOracle` is what :func:`~symbolic_inversion.oracle.reconstruct_from_loss`
is pointed at in demonstrations and tests: a callable that takes a parameter vector in
the trace order and returns ``L(theta) = (1/n) sum_i ||f_theta(x_i) - y_i||^2``.  The
reconstruction sees only these values; the dataset stays inside the oracle.

The exact oracle runs the network's layer-wise program
(:mod:`symbolic_inversion.program`) in its exact ``rational`` arithmetic and the loss of
:mod:`symbolic_inversion.losses` (MSE, the paper's reduction), which is orders of
magnitude faster than substituting into a SymPy expression.  With ``dps`` it computes in
mpmath at that many digits and returns an ``mpf``, as a float-valued loss would.

Numbers given to the oracle are parsed strictly: ints, Fractions, SymPy Rationals,
decimal strings and ``"p/q"`` strings.  Text is never evaluated as code.
"""

import re
from fractions import Fraction

import mpmath
import numpy as np

try:  # gmpy2's rationals are several times faster than Fraction
    from gmpy2 import mpq
except ImportError:  # pragma: no cover - gmpy2 is an optional extra
    mpq = Fraction

from ..arithmetic import get_arithmetic
from ..errors import InputError, boundary
from ..limits import check, check_int, current, how_to_raise
from ..losses import get_loss
from ..network import Network
from ..program import layerwise_program

__all__ = ["LossOracle", "parse_rational", "to_fraction"]

# ASCII digits only (``\d`` admits every Unicode digit)
_RATIONAL = re.compile(r"[ \t]*([+-]?[0-9]+)[ \t]*/[ \t]*([0-9]+)[ \t]*")
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE]([+-]?[0-9]{1,6}))?")  # as exact.py


def parse_rational(value, field):
    """An exact :class:`~fractions.Fraction` from a number or a number written as text.

    Accepts ints, Fractions, SymPy Rationals, finite floats (their exact binary value),
    decimal strings (``"0.25"``, ``"1e-3"``) and ratios of integers (``"3/7"``).
    Anything else is refused with an :class:`~symbolic_inversion.errors.InputError`
    naming ``field``; text is matched against a pattern, never evaluated.

    Examples
    ========

    >>> from symbolic_inversion.oracle import parse_rational
    >>> parse_rational("3/7", "x"), parse_rational("-0.25", "x"), parse_rational(2, "x")
    (Fraction(3, 7), Fraction(-1, 4), Fraction(2, 1))
    >>> parse_rational("__import__('os')", "samples[0].x[1]")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: samples[0].x[1]: not a rational number: "__import__('os')"
    """
    if isinstance(value, bool):
        raise InputError(f"{field}: expected a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip(" \t")
        limits = current()
        if len(text) > 2 * limits.max_number_digits + 8:
            raise InputError(f"{field}: a number of {len(text)} characters exceeds the limit "
                             f"max_number_digits = {limits.max_number_digits} "
                             f"({how_to_raise('max_number_digits')})")
        ratio = _RATIONAL.fullmatch(text)
        if ratio:
            for part in ratio.groups():
                check("max_number_digits", len(part.lstrip("+-")), f"{field}: digits")
            denominator = int(ratio.group(2))
            if denominator == 0:
                raise InputError(f"{field}: zero denominator in {text!r}")
            return Fraction(int(ratio.group(1)), denominator)
        decimal = _DECIMAL.fullmatch(text)
        if decimal:
            check("max_number_digits", sum(c.isdigit() for c in text.split("e")[0].split("E")[0]),
                  f"{field}: digits")
            # an exact rational of 1e999999 has a million digits: refused, not computed
            if decimal.group(1) is not None:
                check("max_oracle_exponent", abs(int(decimal.group(1))), f"{field}: exponent")
            return Fraction(text)
        shown = text if len(text) < 60 else text[:57] + "..."
        raise InputError(f'{field}: not a rational number: "{shown}"')
    try:
        return to_fraction(value)
    except (TypeError, ValueError):
        raise InputError(f"{field}: expected a rational number, got {value!r}") from None


def to_fraction(value):
    """Convert an exact rational of any supported type to a :class:`~fractions.Fraction`.

    >>> import sympy
    >>> from symbolic_inversion.oracle import to_fraction
    >>> to_fraction(sympy.Rational(-3, 4)), to_fraction(5)
    (Fraction(-3, 4), Fraction(5, 1))
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite number: {value}")
        return Fraction(value)
    numerator = getattr(value, "numerator", None)
    denominator = getattr(value, "denominator", None)
    if numerator is None:  # SymPy Rational spells them p and q
        numerator, denominator = getattr(value, "p", None), getattr(value, "q", None)
    if numerator is None or denominator is None:
        raise TypeError(f"not an exact rational: {value!r}")
    numerator, denominator = int(numerator), int(denominator)
    return Fraction(numerator, denominator)


def _relu_network(network):
    if not isinstance(network, Network):
        raise InputError(f"network: expected a Network, got {type(network).__name__}")
    unsupported = sorted(set(network.activations) - {"relu", "identity"})
    if unsupported:
        raise InputError(f"network.activations: the loss oracle is piecewise polynomial only "
                         f"for relu and identity, got {', '.join(unsupported)}")
    return network


class LossOracle:
    r"""The MSE loss of a ReLU network on a hidden dataset, as a black box.

    Parameters
    ==========

    network : Network
        Widths, activations (``relu`` or ``identity``) and bias flag.
    inputs, labels : sequences of sequences of numbers
        The training samples; numbers are parsed exactly (see :func:`parse_rational`).
    dps : int, optional
        If given, compute in mpmath at ``dps`` digits and return ``mpf`` values, as a
        float-valued loss would; otherwise compute and return exact Fractions.

    Attributes
    ==========

    evaluations : int
        How many times the loss has been evaluated (reset with :meth:`reset_count`).

    Examples
    ========

    >>> from fractions import Fraction
    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.oracle import LossOracle
    >>> network = Network([1, 1, 1], ["relu", "identity"])
    >>> oracle = LossOracle(network, inputs=[["2"]], labels=[["3"]])
    >>> oracle.num_parameters
    4
    >>> oracle([1, 0, 1, 0])     # f(2) = relu(2) = 2, loss (2 - 3)^2
    Fraction(1, 1)
    >>> oracle([Fraction(1, 2), 0, 3, 1]), oracle.evaluations
    (Fraction(1, 1), 2)
    """

    # the reconstruction's probe may pass its own exact numbers (gmpy2 mpq) or mpf as they
    # are: this black box reads every exact rational type and mpmath number
    takes_field_numbers = True

    @boundary("oracle")
    def __init__(self, network, inputs, labels, dps=None):
        self.network = _relu_network(network)
        # the reconstruction probes grow with the square of the width
        check("max_oracle_parameters", network.num_parameters,
              f"oracle: parameters of network {list(network.layers)}")
        inputs, labels = list(inputs), list(labels)
        if not inputs:
            raise InputError("samples: need at least one sample")
        if len(inputs) != len(labels):
            raise InputError(f"samples: {len(inputs)} inputs but {len(labels)} labels")
        self.inputs = [self._vector(x, network.input_width, f"samples[{i}].x")
                       for i, x in enumerate(inputs)]
        self.labels = [self._vector(y, network.output_width, f"samples[{i}].y")
                       for i, y in enumerate(labels)]
        if dps is not None:
            dps = check_int(dps, "dps", minimum=5, limit="max_dps")
        self.dps = dps
        self.evaluations = 0
        self._size = network.num_parameters
        self.loss = get_loss("mse")   # (1/n) sum_i ||f(x_i) - y_i||^2
        self._program = layerwise_program(network, self.loss)
        self._rational = get_arithmetic("rational")
        self._exact_inputs = self._rational.asarray(self.inputs)
        self._exact_labels = self._rational.asarray(self.labels)
        self._rounded_data = None

    @staticmethod
    def _vector(values, width, field):
        values = list(values) if not isinstance(values, (str, bytes)) else None
        if values is None or len(values) != width:
            raise InputError(f"{field}: expected {width} numbers")
        return [parse_rational(v, f"{field}[{d}]") for d, v in enumerate(values)]

    @property
    def num_parameters(self):
        return self.network.num_parameters

    @property
    def num_samples(self):
        return len(self.inputs)

    def _repr_html_(self):
        from ..report.display import loss_oracle_html
        return loss_oracle_html(self)

    def reset_count(self):
        self.evaluations = 0

    def __repr__(self):
        mode = "exact" if self.dps is None else f"dps={self.dps}"
        return f"LossOracle({self.network!r}, n={self.num_samples}, {mode})"

    def __call__(self, theta):
        theta = list(theta)
        if len(theta) != self._size:
            raise InputError(f"parameters: expected {self._size} values, "
                             f"got {len(theta)}")
        self.evaluations += 1
        program = self._program
        if self.dps is None:
            rational = self._rational
            params = np.empty((1, len(theta)), dtype=object)
            params[0] = [_exact(rational.kind, v) for v in theta]
            return rational.fraction(program.converted_loss_value(
                params, self._exact_inputs, self._exact_labels, rational, self.loss))
        arithmetic = get_arithmetic("mpmath")
        with arithmetic.workdps(self.dps):
            if self._rounded_data is None:   # the samples rounded once, at the oracle's dps
                self._rounded_data = (arithmetic.asarray(self.inputs),
                                      arithmetic.asarray(self.labels))
            params = arithmetic.asarray([theta])
            return +program.converted_loss_value(params, *self._rounded_data, arithmetic,
                                                 self.loss)


def _exact(kind, value):
    """``value`` as the rational arithmetic's ``kind``, exactly (:func:`to_fraction`);
    Fractions, ints and the reconstruction's own rationals (``mpq``) without the
    detour."""
    cls = type(value)
    if cls is kind:
        return value
    if cls is int:
        return kind(value)
    if cls is Fraction:   # the reconstruction's probes: ints for numerator and denominator
        return kind(value.numerator, value.denominator)
    if cls is not mpq:
        value = to_fraction(value)
    return kind(int(value.numerator), int(value.denominator))
