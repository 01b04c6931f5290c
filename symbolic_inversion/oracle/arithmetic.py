"""The two arithmetics of the loss reconstruction: exact rationals and mpmath.

Every algorithm in :mod:`symbolic_inversion.oracle` is written once against a small
interface (:class:`ExactField`, :class:`FloatField`): make numbers, decide whether a
number is zero, take square roots, solve linear systems.  In the exact field "zero"
means zero and every answer is a rational; in the float field "zero" means below a
tolerance derived from the working precision.
"""

import random
from fractions import Fraction

import mpmath

from ..errors import InputError
from .blackbox import mpq as _mpq, to_fraction


__all__ = ["ExactField", "FloatField"]


class ExactField:
    """Rational arithmetic (``gmpy2.mpq`` inside, :class:`~fractions.Fraction` outside).

    >>> from symbolic_inversion.oracle.arithmetic import ExactField
    >>> field = ExactField()
    >>> root = field.sqrt(field.number("9/4"))  # an mpq, or a Fraction without gmpy2
    >>> field.to_user(root), field.sqrt(field.number(2))
    (Fraction(3, 2), None)
    """

    exact = True
    description = "exact rationals"

    def number(self, value):
        if isinstance(value, str):
            numerator, _, denominator = value.partition("/")
            return _mpq(int(numerator), int(denominator or 1))
        if type(value) is _mpq:
            return value
        fraction = to_fraction(value)
        return _mpq(fraction.numerator, fraction.denominator)

    def loss_value(self, value):
        """Read a black-box loss value; refuse floats, which cannot be exact."""
        if isinstance(value, float) or isinstance(value, mpmath.mpf):
            raise InputError("loss: returned a float in exact mode; pass dps=... to "
                             "reconstruct from a float-valued loss")
        try:
            return self.number(value)
        except (TypeError, ValueError):
            raise InputError(f"loss: returned {type(value).__name__}, not a number") from None

    def to_user(self, value):
        return Fraction(int(value.numerator), int(value.denominator))

    def random(self, rng, scale=1, denominator=256):
        return _mpq(rng.randint(-denominator, denominator), denominator) * scale

    def positive(self, rng, denominator=256):
        """A random number in ``[1/4, 5/4]``."""
        return _mpq(rng.randint(denominator // 4, 5 * denominator // 4), denominator)

    def is_zero(self, value, scale=None):
        return value == 0

    def sqrt(self, value):
        """The exact rational square root, or ``None`` if there is none."""
        if value < 0:
            return None
        numerator, denominator = int(value.numerator), int(value.denominator)
        root_n, root_d = _isqrt(numerator), _isqrt(denominator)
        if root_n * root_n != numerator or root_d * root_d != denominator:
            return None
        return _mpq(root_n, root_d)

    def tiny(self, width, bits=20):
        return self.number(width) * _mpq(1, 2 ** bits)

    def half(self):
        return _mpq(1, 2)

    def text(self, value):
        value = self.to_user(value)
        return str(value.numerator) if value.denominator == 1 else str(value)


def _isqrt(value):
    import math
    return math.isqrt(value)


class FloatField:
    """mpmath arithmetic at ``dps`` digits with tolerances derived from the precision.

    A quantity is zero when it is below ``10**(-tolerance_digits)`` relative to its
    scale; by default ``tolerance_digits`` is 60 % of ``dps`` (derived quantities lose
    digits to finite differences and eliminations).
    """

    exact = False

    def __init__(self, dps, tolerance_digits=None):
        if isinstance(dps, bool) or not isinstance(dps, int) or dps < 10:
            raise InputError(f"dps: expected an integer of at least 10, got {dps!r}")
        self.dps = dps
        self.tolerance_digits = tolerance_digits or max(4, int(0.6 * dps))
        self.description = f"mpmath, {dps} digits"

    @property
    def tolerance(self):
        return mpmath.mpf(10) ** (-self.tolerance_digits)

    def number(self, value):
        if isinstance(value, (Fraction, int)) or hasattr(value, "numerator"):
            fraction = to_fraction(value)
            return mpmath.mpf(fraction.numerator) / fraction.denominator
        return mpmath.mpf(value)

    def loss_value(self, value):
        try:
            number = mpmath.mpf(value) if not hasattr(value, "numerator") else self.number(value)
        except (TypeError, ValueError):
            raise InputError(f"loss: returned {type(value).__name__}, not a number") from None
        if not mpmath.isfinite(number):
            raise InputError(f"loss: returned a non-finite value {value}")
        return number

    def to_user(self, value):
        return mpmath.mpf(value)

    def random(self, rng, scale=1, denominator=256):
        return mpmath.mpf(rng.randint(-denominator, denominator)) / denominator * scale

    def positive(self, rng, denominator=256):
        return mpmath.mpf(rng.randint(denominator // 4, 5 * denominator // 4)) / denominator

    def is_zero(self, value, scale=None):
        scale = 1 if scale is None else max(abs(scale), mpmath.mpf(10) ** (-self.dps))
        return abs(value) <= self.tolerance * scale

    def sqrt(self, value):
        if value < -self.tolerance:
            return None
        return mpmath.sqrt(max(value, 0))

    def tiny(self, width, bits=20):
        # Finite differences of order 3 on points h apart lose about 3 log10(1/h)
        # digits, so the float field steps further than the exact one.
        return mpmath.mpf(width) / 2 ** max(4, min(bits, self.dps // 4))

    def half(self):
        return mpmath.mpf(1) / 2

    def text(self, value):
        return mpmath.nstr(value, self.tolerance_digits)


def row_reduce(field, rows, scale=None):
    """Reduced row echelon form of ``rows`` (a list of lists); returns ``(rows, pivots)``.

    Pivots are chosen by largest magnitude, which is harmless for rationals and
    necessary for floats.
    """
    rows = [list(r) for r in rows]
    if not rows:
        return rows, []
    columns = len(rows[0])
    if scale is None:
        scale = max((abs(v) for r in rows for v in r), default=1) or 1
    pivots, top = [], 0
    for column in range(columns):
        if top == len(rows):
            break
        best = max(range(top, len(rows)), key=lambda i: abs(rows[i][column]))
        if field.is_zero(rows[best][column], scale):
            continue
        rows[top], rows[best] = rows[best], rows[top]
        pivot = rows[top][column]
        rows[top] = [v / pivot for v in rows[top]]
        for i in range(len(rows)):
            if i != top and not (field.exact and rows[i][column] == 0):
                factor = rows[i][column]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[top])]
        pivots.append(column)
        top += 1
    return rows, pivots


def solve(field, matrix, rhs):
    """The unique solution of ``matrix @ u = rhs`` (more rows than columns allowed).

    Returns ``(solution, reason)``: ``solution`` is ``None`` when the system is
    inconsistent or its solution is not unique, and ``reason`` says which.
    """
    augmented = [list(row) + [value] for row, value in zip(matrix, rhs)]
    columns = len(matrix[0])
    scale = max((abs(v) for r in augmented for v in r), default=1) or 1
    reduced, pivots = row_reduce(field, augmented, scale)
    if columns in pivots:
        return None, "inconsistent"
    if len(pivots) < columns:
        return None, "not unique"
    return [reduced[i][columns] for i in range(columns)], "unique"


def determined(field, matrix, rhs):
    """The unknowns of a consistent ``matrix @ u = rhs`` that every solution shares.

    Returns a dict ``{column: value}`` (empty when the system is inconsistent).
    """
    augmented = [list(row) + [value] for row, value in zip(matrix, rhs)]
    columns = len(matrix[0])
    scale = max((abs(v) for r in augmented for v in r), default=1) or 1
    reduced, pivots = row_reduce(field, augmented, scale)
    if columns in pivots:
        return {}
    free = [c for c in range(columns) if c not in pivots]
    return {pivot: reduced[i][columns] for i, pivot in enumerate(pivots)
            if all(field.is_zero(reduced[i][c], scale) for c in free)}


def nullspace(field, rows, columns):
    """A basis of the right null space of ``rows`` (``columns`` wide)."""
    reduced, pivots = row_reduce(field, rows) if rows else ([], [])
    basis = []
    for free in (c for c in range(columns) if c not in pivots):
        vector = [field.number(0)] * columns
        vector[free] = field.number(1)
        for i, pivot in enumerate(pivots):
            vector[pivot] = -reduced[i][free]
        basis.append(vector)
    return basis


def make_rng(seed):
    return random.Random(seed)
