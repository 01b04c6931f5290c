r"""The one iterative loop of the solvers: ``init``, ``step``, ``terminate``.

As in optimistix, a solver is a small object with three methods and a state it owns:

- ``init(...)`` makes the state from the starting point;
- ``step(state)`` advances it by one iteration (one Newton or Gauss-Newton correction,
  one Levenberg-Marquardt trial, one corrector iteration, one predictor-corrector step of
  a path) and returns it;
- ``terminate(state)`` returns the result when the iteration is over, else ``None``;
- ``exhausted(state)`` the result when ``max_steps`` steps were taken without it.

:func:`iterate` drives every one of them (Newton, Gauss-Newton and the certificate's
square Newton in :mod:`~symbolic_inversion.solvers.newton`, the tracker's corrector and
the path itself in :mod:`~symbolic_inversion.solvers.tracking`, Levenberg-Marquardt in
:mod:`~symbolic_inversion.solvers.projection`), so the time budget and interrupts are
checked at the same safe point of each: before every step.

Examples
========

Halving an interval until it is small, as a solver:

>>> class Bisect:
...     def init(self, low, high):
...         return [low, high, 0]
...     def step(self, state):
...         low, high, count = state
...         middle = (low + high) / 2
...         return [middle, high, count + 1] if middle * middle < 2 else [low, middle, count + 1]
...     def terminate(self, state):
...         return state if state[1] - state[0] < 1e-6 else None
...     def exhausted(self, state):
...         return None
>>> solver = Bisect()
>>> low, high, steps = iterate(solver, solver.init(1.0, 2.0), max_steps=100)
>>> round(low, 5), steps
(1.41421, 20)
"""

from ..limits import check_time

__all__ = ["iterate"]


def iterate(solver, state, max_steps):
    """Run ``solver`` from ``state``: at most ``max_steps`` steps, the time budget and
    held interrupts checked before each (:func:`~symbolic_inversion.limits.check_time`);
    the first non-``None`` ``terminate(state)``, else ``exhausted(state)``."""
    for _ in range(max_steps):
        check_time()
        state = solver.step(state)
        result = solver.terminate(state)
        if result is not None:
            return result
    return solver.exhausted(state)
