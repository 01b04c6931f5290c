"""Exact rational arithmetic: matrices over Q and exact number formatting.

An exact trace (parameters written as the exact results of training, e.g. by
``simulate(..., backend="exact")``) gives exact observed gradients: every rank, null
space and linear solve on them can be done in rationals, with no threshold anywhere.
This module holds what that needs:

- matrices over Q as lists of rows of :class:`fractions.Fraction`, multiplied, solved
  and row-reduced with python-flint's ``fmpq_mat`` when it is installed (fast,
  multimodular) and with plain ``fractions`` otherwise; both give identical results;
- :func:`format_rational`: a rational as an exact decimal string, or ``p/q`` when its
  decimal expansion does not terminate;
- :func:`to_fraction`: exact conversion of the toolkit's numbers (decimal strings,
  ``Decimal``, ``int``, ``Fraction``) to ``Fraction``.

Examples
========

>>> from fractions import Fraction
>>> from symbolic_inversion.rational import solve, format_rational
>>> solve([[2, 1], [1, 3]], [[3], [4]])
[[Fraction(1, 1)], [Fraction(1, 1)]]
>>> format_rational(Fraction(-3, 8)), format_rational(Fraction(1, 3))
('-0.375', '1/3')
"""

from decimal import Decimal
from fractions import Fraction

import numpy as np

__all__ = ["flint_available", "to_fraction", "format_rational", "matmul", "solve",
           "rref", "nullspace", "rank", "terminates"]


def _load_flint():
    try:
        import flint
    except ImportError:  # pragma: no cover - flint is in the ``fast`` extra
        return None
    return flint if hasattr(flint, "fmpq_mat") else None


# Module state so tests can compare both paths: ``monkeypatch.setattr(rational, "_FLINT", None)``.
_FLINT = _load_flint()


def flint_available():
    """Whether python-flint's ``fmpq_mat`` does the heavy lifting."""
    return _FLINT is not None


def to_fraction(value):
    """An exact :class:`Fraction` from an int, a ``Fraction``, a ``Decimal`` or a
    decimal string (never from a float: binary floats are converted exactly too, but
    callers should not rely on that).

    >>> to_fraction("0.125"), to_fraction(Decimal("-2.5e-3"))
    (Fraction(1, 8), Fraction(-1, 400))
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        return Fraction(Decimal(value))
    return Fraction(value)


def _twos_and_fives(q):
    """``(a, b, rest)`` with ``q = 2**a * 5**b * rest``."""
    twos = (q & -q).bit_length() - 1
    q >>= twos
    fives = 0
    while q % 5 == 0:
        q //= 5
        fives += 1
    return twos, fives, q


def terminates(value):
    """Whether ``value`` (a Fraction, or any exact rational with ``denominator``: gmpy2's
    mpq, python-flint's fmpq) has a terminating decimal expansion.

    >>> terminates(Fraction(3, 40)), terminates(Fraction(1, 6))
    (True, False)
    """
    return _twos_and_fives(int(value.denominator))[2] == 1


def format_rational(value):
    """The exact text of a rational: a terminating decimal, else ``p/q``.

    >>> format_rational(Fraction(5)), format_rational(Fraction(-1, 16))
    ('5', '-0.0625')
    >>> format_rational(Fraction(2, 7))
    '2/7'
    """
    if not hasattr(value, "denominator"):   # text, Decimal, float
        value = to_fraction(value)
    # any exact rational in lowest terms (Fraction, mpq, fmpq): its two integers
    numerator, denominator = int(value.numerator), int(value.denominator)
    twos, fives, rest = _twos_and_fives(denominator)
    if rest != 1:
        return f"{numerator}/{denominator}"
    places = max(twos, fives)
    scaled = abs(numerator) * (2 ** (places - twos) * 5 ** (places - fives))
    digits = str(scaled).rjust(places + 1, "0")
    text = digits[:len(digits) - places] + ("." + digits[len(digits) - places:] if places else "")
    return ("-" if numerator < 0 else "") + text


# -- matrices over Q: lists of rows of Fractions ------------------------------------------

def _as_rows(matrix):
    return [[to_fraction(v) for v in row] for row in matrix]


def _to_flint(rows):
    fmpq = _FLINT.fmpq
    ncols = len(rows[0]) if rows else 0
    return _FLINT.fmpq_mat(len(rows), ncols,
                           [fmpq(v.numerator, v.denominator) for row in rows for v in row])


def _from_flint(matrix):
    entries = matrix.entries()
    ncols = matrix.ncols()
    values = [Fraction(int(v.p), int(v.q)) for v in entries]
    return [values[r * ncols:(r + 1) * ncols] for r in range(matrix.nrows())]


def matmul(A, B):
    """The exact product ``A B`` of two rational matrices (lists of rows).

    >>> matmul([[1, 2]], [[Fraction(1, 2)], [Fraction(1, 4)]])
    [[Fraction(1, 1)]]
    """
    A, B = _as_rows(A), _as_rows(B)
    if not A or not B:
        return [[] for _ in A]
    if _FLINT is not None:
        return _from_flint(_to_flint(A) * _to_flint(B))
    product = np.array(A, dtype=object).dot(np.array(B, dtype=object))
    return [[Fraction(v) for v in row] for row in product.tolist()]


def _rref_fractions(rows):
    """Reduced row echelon form by Gauss-Jordan elimination in Fractions."""
    rows = [list(row) for row in rows]
    pivots, r = [], 0
    ncols = len(rows[0]) if rows else 0
    for c in range(ncols):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c]), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        inverse = 1 / rows[r][c]
        rows[r] = [v * inverse for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c]:
                factor = rows[i][c]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r])]
        pivots.append(c)
        r += 1
        if r == len(rows):
            break
    return rows, pivots


def rref(A):
    """``(R, pivots)``: the reduced row echelon form of ``A`` and its pivot columns.

    >>> R, pivots = rref([[1, 2, 3], [2, 4, 7]])
    >>> R, pivots
    ([[Fraction(1, 1), Fraction(2, 1), Fraction(0, 1)], [Fraction(0, 1), Fraction(0, 1), Fraction(1, 1)]], [0, 2])
    """
    A = _as_rows(A)
    if not A:
        return [], []
    if _FLINT is not None:
        reduced, rank_ = _FLINT.fmpq_mat.rref(_to_flint(A))
        R = _from_flint(reduced)[:rank_]
        pivots = [next(c for c, v in enumerate(row) if v) for row in R]
        return R, pivots
    R, pivots = _rref_fractions(A)
    return R[:len(pivots)], pivots


def rank(A):
    """The exact rank of ``A``.

    >>> rank([[1, 2], [2, 4]])
    1
    """
    return len(rref(A)[1])


def nullspace(A):
    """A basis of ``{v : A v = 0}`` (list of vectors), from the reduced echelon form.

    >>> nullspace([[1, 1, 0], [0, 0, 1]])
    [[Fraction(-1, 1), Fraction(1, 1), Fraction(0, 1)]]
    """
    A = _as_rows(A)
    ncols = len(A[0])
    R, pivots = rref(A)
    free = [c for c in range(ncols) if c not in set(pivots)]
    basis = []
    for f in free:
        v = [Fraction(0)] * ncols
        v[f] = Fraction(1)
        for row, p in zip(R, pivots):
            v[p] = -row[f]
        basis.append(v)
    return basis


def solve(A, B):
    """The exact solution ``X`` of ``A X = B`` for square ``A``; ``None`` if ``A`` is
    singular.

    >>> solve([[1, 2], [2, 4]], [[1], [2]]) is None
    True
    """
    A, B = _as_rows(A), _as_rows(B)
    if _FLINT is not None:
        try:
            return _from_flint(_to_flint(A).solve(_to_flint(B)))
        except ZeroDivisionError:
            return None
    n = len(A)
    augmented = [a + b for a, b in zip(A, B)]
    R, pivots = _rref_fractions(augmented)
    if pivots[:n] != list(range(n)) or len(pivots) > n:
        return None
    return [row[n:] for row in R[:n]]
