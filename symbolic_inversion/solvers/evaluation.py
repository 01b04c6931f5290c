"""Where the solvers get their arithmetic and the system evaluator (one place).

Every solver evaluates the inversion system through
:meth:`~symbolic_inversion.system.InversionSystem.evaluator` (arithmetic, steps) in an :mod:`~symbolic_inversion.arithmetic` (mpmath, arb, their complex siblings, float64
for screening); this module only names the choices.
"""

from ..arithmetic import LinearSolve, get_arithmetic
from ..system import InversionSystem

__all__ = ["real_arithmetic", "trace_evaluator", "backend_name", "LinearSolve"]


def real_arithmetic(name=None):
    """The real arithmetic called ``name`` (``None``/``"auto"``: arb if python-flint is
    installed, else mpmath; the old backend name ``"flint"`` means arb)."""
    return get_arithmetic(name)


def backend_name(arithmetic):
    """The user-facing backend name of an arithmetic (``"flint"`` for arb/acb)."""
    return {"arb": "flint", "acb": "flint", "mpc": "mpmath"}.get(arithmetic.name,
                                                                arithmetic.name)


def trace_evaluator(trace, arithmetic, steps=None, system=None):
    """The evaluator of ``trace``'s inversion system on ``steps`` (default: all) in
    ``arithmetic``; evaluate inside ``arithmetic.workdps``.  Without a ``system``, the
    gradient form where the optimizer reveals the gradients of these steps (Adam: its
    first), else the update form."""
    if system is None:
        last = max(steps) + 1 if steps else None
        system = InversionSystem.from_trace(trace, last)
    return system.evaluator(arithmetic, None if steps is None else list(steps))
