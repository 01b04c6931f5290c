"""Exact numbers from user input: decimal strings in, :class:`~decimal.Decimal` or
:class:`~fractions.Fraction` out, never code.

Files and command lines give numbers as text; a trace's 60 digits must survive a round
trip, so they are read as decimals (exact) and refused, with a message naming the field,
when they are anything but a plain finite decimal number.
"""

import json
import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import mpmath
import numpy as np

from .errors import InputError
from .limits import current, how_to_raise

__all__ = ["to_decimal", "to_decimals", "mpf_fraction"]

# ASCII digits only, nothing around them: the trace format's documented pattern (``\d``
# would admit every Unicode digit, ``strip()`` surrounding whitespace)
# the documented pattern [+-]digits[.digits][e[+-]digits], ASCII digits on both sides of
# the point ("49." and ".49" are not in it)
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_MAX_EXPONENT = 10_000


def to_decimal(value, field, max_digits=None):
    """A finite :class:`Decimal` from a decimal string, an int, a float or a Decimal.

    Anything else, including strings that are not plain decimal numbers, is refused
    with a message naming ``field``; so is a number of more than ``max_digits`` digits
    (default: the limit ``max_number_digits`` in force; a caller converting many values
    reads it once and passes it).

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
    elif isinstance(value, (int, np.integer)):
        number = Decimal(int(value))
    elif isinstance(value, float):
        number = Decimal(repr(float(value))) if math.isfinite(value) else Decimal("NaN")
    elif isinstance(value, str):
        text = value
        if max_digits is None:
            max_digits = current().max_number_digits
        if len(text) > max_digits + 8:  # sign, point and exponent besides the digits
            raise InputError(f"{field}: a number of {len(text)} characters exceeds the limit "
                             f"max_number_digits = {max_digits} "
                             f"({how_to_raise('max_number_digits')})")
        if not _DECIMAL.fullmatch(text):
            shown = text if len(text) < 60 else text[:57] + "..."
            raise InputError(f"{field}: not a decimal number: {json.dumps(shown)}")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
            raise InputError(f"{field}: not a decimal number: {json.dumps(text)}") from None
    elif isinstance(value, (mpmath.mpf, np.floating)):
        return to_decimal(str(value) if isinstance(value, mpmath.mpf) else float(value), field,
                          max_digits)
    else:
        raise InputError(f"{field}: expected a number, got {type(value).__name__}")
    if not number.is_finite():
        raise InputError(f"{field}: not a finite number: {value}")
    if max_digits is None:
        max_digits = current().max_number_digits
    if len(number.as_tuple().digits) > max_digits:
        raise InputError(f"{field}: a number of {len(number.as_tuple().digits)} digits exceeds "
                         f"the limit max_number_digits = {max_digits} "
                         f"({how_to_raise('max_number_digits')})")
    # Decimal arithmetic on the trace (resolution, exact right-hand sides) overflows its
    # context far before this; no trained parameter is anywhere near these magnitudes.
    if not -_MAX_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        raise InputError(f"{field}: exponent out of range (at most 1e+/-{_MAX_EXPONENT}): "
                         f"{number:.3e}")
    return number


def to_decimals(values, field, max_digits=None):
    """:func:`to_decimal` of every entry of ``values``, the ``p``-th named
    ``field[p]``: a list of Decimals.  Plain decimal strings no longer than
    ``max_digits`` characters (a trace's values) take a short path, measured 3x faster
    on the 1.6 million values of a 784-1024-10 trace; anything else, and every refusal,
    goes through :func:`to_decimal`.

    >>> to_decimals(["0.25", 3, "-1e-2"], "x")
    [Decimal('0.25'), Decimal('3'), Decimal('-0.01')]
    >>> to_decimals(["0.25", "nan"], "x")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: x[1]: not a decimal number: "nan"
    """
    if max_digits is None:
        max_digits = current().max_number_digits
    match, out = _DECIMAL.fullmatch, []
    for p, value in enumerate(values):
        # a string of at most max_digits characters has at most that many digits, and
        # the pattern admits only finite numbers: the exponent is all that is left
        if type(value) is str and len(value) <= max_digits and match(value):
            number = Decimal(value)
            if -_MAX_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
                out.append(number)
                continue
        out.append(to_decimal(value, f"{field}[{p}]", max_digits))
    return out


def mpf_fraction(value):
    """The exact binary value of an mpf as a :class:`Fraction`.

    ``mpmath.mpf(value)`` would round to the current precision, so the bits are read
    directly (``man_exp`` drops the sign; ``_mpf_`` keeps it).

    >>> import mpmath
    >>> mpf_fraction(mpmath.mpf("-0.75"))
    Fraction(-3, 4)
    """
    value = value if isinstance(value, mpmath.mpf) else mpmath.mpf(value)
    sign, man, exp, _ = value._mpf_
    if not man and exp:
        raise InputError(f"not a finite number: {value}")
    number = Fraction(int(man)) * (Fraction(2) ** int(exp))
    return -number if sign else number
