"""Compatibility: the backends of version 0.1.0 over :mod:`symbolic_inversion.arithmetic`.

A backend is a real arithmetic (``"mpmath"``, or ``"flint"`` = ``arb``) whose numbers
may also be complex (``mpc``/``acb``), with list-based linear algebra.  New code uses
:func:`symbolic_inversion.arithmetic.get_arithmetic` and the system evaluator
(:meth:`InversionSystem.evaluator`); this module only forwards.

Examples
========

>>> import mpmath
>>> from symbolic_inversion.backends import get_backend
>>> backend = get_backend("mpmath")
>>> with backend.workdps(30):
...     solution = backend.solve([[2, 1], [1, 3]], [3, 5])
...     [mpmath.nstr(backend.to_mpmath(v), 20) for v in solution]
['0.8', '1.4']
"""

import mpmath
import numpy as np

from .arithmetic import flint, get_arithmetic
from .errors import InputError

__all__ = ["Backend", "get_backend", "available_backends"]


class Backend:
    """Numbers, precision and list-based linear algebra of one real arithmetic and its
    complex sibling (the interface of version 0.1.0)."""

    def __init__(self, name, arithmetic):
        self.name = name
        self.arithmetic = arithmetic
        self.complex = arithmetic.complexify()

    def workdps(self, dps):
        return self.arithmetic.workdps(dps)

    def _for(self, values):
        values = list(values)
        return self.complex if any(_is_complex(v) for v in values) else self.arithmetic

    def number(self, value):
        """A backend number from an mpmath number, int, or decimal string."""
        return (self.complex if _is_complex(value) else self.arithmetic).number(value)

    def to_mpmath(self, value):
        return self.complex.to_mpmath(value)

    def solve(self, rows, rhs):
        """Solve ``rows @ u = rhs`` (lists): a list, NaNs for a singular matrix."""
        arithmetic = self._for([v for row in rows for v in row] + list(rhs))
        result = arithmetic.solve(np.array(rows, dtype=object), np.array(list(rhs), dtype=object))
        if not result.ok:
            return [arithmetic.number(mpmath.nan)] * len(rhs)
        return list(result.x)

    def matmul(self, left, right):
        """The product of two matrices given as lists of rows."""
        arithmetic = self._for([v for row in list(left) + list(right) for v in row])
        left, right = arithmetic.asarray(left), arithmetic.asarray(right)
        product = arithmetic.mid(arithmetic.matmul(left, right))
        return [list(row) for row in np.asarray(product, dtype=object)]

    def least_squares(self, rows, rhs):
        """``u`` minimizing ``||rows @ u - rhs||`` by the normal equations."""
        arithmetic = self._for([v for row in rows for v in row] + list(rhs))
        result = arithmetic.lstsq(np.array(rows, dtype=object),
                                  np.array(list(rhs), dtype=object), method="normal")
        if not result.ok:
            return [arithmetic.number(mpmath.nan)] * len(rows[0])
        return list(result.x)

    def magnitude(self, value):
        """``|value|`` as a Python float (for step-size control only)."""
        return float(self.complex.magnitudes(np.array([value], dtype=object))[0])

    def norm(self, values):
        return max((self.magnitude(v) for v in values), default=0.0)

    def clean(self, value):
        """``value`` without accumulated error information (ball midpoints for flint)."""
        return self.arithmetic.mid(value) if flint is not None and isinstance(
            value, (flint.arb, flint.acb)) else value

    def roots(self, coefficients):
        """Roots of ``sum coefficients[k] z^k`` (complex, at the working precision)."""
        return self.arithmetic.roots(coefficients)


def _is_complex(value):
    return isinstance(value, (complex, mpmath.mpc)) or (
        flint is not None and isinstance(value, flint.acb))


_BACKENDS = {}


def available_backends():
    """Names of the backends that can run here (``"mpmath"`` always)."""
    return ["mpmath"] + (["flint"] if flint is not None else [])


def get_backend(name=None):
    """The backend called ``name``; ``None`` or ``"auto"``: flint if installed, else mpmath."""
    if isinstance(name, Backend):
        return name
    if name is not None and not isinstance(name, str):
        raise InputError(f"backend: expected 'mpmath', 'flint' or 'auto', got "
                         f"{type(name).__name__}")
    if name in (None, "auto"):
        name = "flint" if flint is not None else "mpmath"
    if name not in ("mpmath", "flint"):
        raise InputError(f"backend: expected 'mpmath', 'flint' or 'auto', got {name!r}")
    if name not in _BACKENDS:
        _BACKENDS[name] = Backend(name, get_arithmetic("arb" if name == "flint" else "mpmath"))
    return _BACKENDS[name]
