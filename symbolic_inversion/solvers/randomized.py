"""Squaring up an overdetermined system, as HomotopyContinuation.jl's ``RandomizedSystem``.

A system of ``rows > unknowns`` equations ``F(u) = 0`` is replaced by ``R F(u) = 0`` with
``R`` an ``unknowns x rows`` matrix of random complex Gaussian entries: every root of the
full system is a root of the combined one, and the combination is generically
nonsingular.  Roots of the square system that are not roots of the full one are rejected
afterwards against the whole trace (the judge).
"""

import mpmath
import numpy as np

__all__ = ["RandomizedSystem"]


class RandomizedSystem:
    """``R F`` for a random complex ``R`` (``R`` is ``None`` when already square).

    >>> import random
    >>> from symbolic_inversion.solvers.evaluation import real_arithmetic
    >>> arithmetic = real_arithmetic("mpmath").complexify()
    >>> RandomizedSystem(2, 2, arithmetic, random.Random(0)).R is None
    True
    >>> RandomizedSystem(3, 2, arithmetic, random.Random(0)).R.shape
    (2, 3)
    """

    def __init__(self, rows, unknowns, arithmetic, rng):
        self.rows, self.unknowns = rows, unknowns
        self.arithmetic = arithmetic
        self.R = None
        if rows != unknowns:
            self.R = arithmetic.asarray([[mpmath.mpc(rng.gauss(0, 1), rng.gauss(0, 1))
                                          for _ in range(rows)] for _ in range(unknowns)])

    def vector(self, values):
        """``R values`` for a residual vector."""
        if self.R is None:
            return values
        return self._product(values.reshape(-1, 1)).reshape(-1)

    def matrix(self, values):
        """``R values`` for a Jacobian."""
        if self.R is None:
            return values
        return self._product(values)

    def _product(self, values):
        matmul = getattr(self.arithmetic, "matmul", None)
        return matmul(self.R, values) if matmul is not None else np.dot(self.R, values)
