r"""Interval arithmetic for certificates: the inversion system evaluated over boxes.

The arithmetics are those of :mod:`symbolic_inversion.arithmetic`: mpmath's ``iv``
context (``backend="iv"``, default, no extra dependency) and python-flint's ``arb``
balls used as intervals (``backend="arb"``, faster, when installed); they give the same
verdicts.  The system is the one evaluator of
:meth:`InversionSystem.evaluator <symbolic_inversion.system.InversionSystem.evaluator>`
run in that arithmetic, so the proof and the solvers evaluate the same program.

The numbers of the system are read honestly: every parameter of the trace and every
right-hand side ``|B_j| / 2 * g_j`` (the optimizer's inverse step, computed in interval
arithmetic from the trace's decimal strings) becomes an interval that encloses it.  A
relu whose kink falls inside the box makes the system non-differentiable there:
:class:`NotDifferentiableError`.
"""

import numpy as np

from ..arithmetic import NotDifferentiableError, get_arithmetic
from ..errors import InputError, NotSupportedError

__all__ = ["INTERVAL_BACKENDS", "NotDifferentiableError", "IntervalSystem",
           "interval_arithmetic"]

# certify's backend names -> the arithmetic's names
INTERVAL_BACKENDS = {"iv": "iv", "arb": "arb_ball"}


def interval_arithmetic(backend):
    """The interval arithmetic of ``certify(..., backend=...)``: ``"iv"`` or ``"arb"``.

    Refused with an :class:`~symbolic_inversion.InputError` naming ``backend`` (and, for
    ``"arb"`` without python-flint, saying what to install).

    >>> interval_arithmetic("iv").name
    'iv'
    """
    if backend not in INTERVAL_BACKENDS:
        raise InputError(f"backend: expected one of {', '.join(INTERVAL_BACKENDS)}, "
                         f"got {backend!r}")
    try:
        return get_arithmetic(INTERVAL_BACKENDS[backend])
    except NotSupportedError:
        raise NotSupportedError(f"backend: {backend!r} needs python-flint "
                                "(pip install python-flint); use 'iv'") from None


class IntervalSystem:
    """The inversion system of ``system``'s steps over boxes, in an interval arithmetic.

    What :func:`~symbolic_inversion.verify.krawczyk.krawczyk` asks of a system:
    ``backend`` (the arithmetic) and :meth:`evaluate`.  Create and use it inside
    ``arithmetic.workdps``.
    """

    def __init__(self, system, arithmetic):
        self.backend = arithmetic
        self.evaluator = system.evaluator(arithmetic)

    def evaluate(self, rows, point, jacobian=False):
        """Residuals (and, with ``jacobian``, the Jacobian rows) of ``rows`` over
        ``point``, a list of intervals, one per unknown (sample by sample: x then y)."""
        residual, J = self.evaluator.evaluate(np.asarray(point, dtype=object), jacobian)
        values = list(residual[rows])
        return (values, J[rows].tolist()) if jacobian else values
