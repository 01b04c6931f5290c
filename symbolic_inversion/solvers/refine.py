r"""Refinement: Gauss-Newton on the whole (overdetermined) system, in mpmath or flint.

A global method lands near a root; refinement polishes it to what the trace supports,
using *every* step of the trace.  Each iteration solves the normal equations
``J^T J delta = -J^T F``, so the working precision must cover the square of the
condition number: about ``5n + 40`` digits for ``n`` samples of the single neuron
(:func:`refine_dps`).  A step that increases the residual is halved (at most eight
times).

Examples
========

Start 1e-6 away from Example 2's data and polish (exact 40-digit trace):

>>> import mpmath
>>> from symbolic_inversion import Network, simulate
>>> from symbolic_inversion.solvers.refine import gauss_newton
>>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
...                  epochs=4, init=["0.5", "0.5"], dps=40)
>>> start = [[mpmath.mpf("0.600001")], [mpmath.mpf("0.2")]], [[mpmath.mpf("0.5")],
...                                                          [mpmath.mpf("0.4")]]
>>> inputs, labels, info = gauss_newton(trace, *start, dps=60)
>>> info["converged"], mpmath.nstr(inputs[0][0], 25), mpmath.nstr(labels[1][0], 25)
(True, '0.6', '0.4')
"""

import mpmath

from ..backends import get_backend
from .homotopy import TraceEquations

__all__ = ["gauss_newton", "refine_dps"]


def refine_dps(trace, dps=None):
    """Working precision for refinement.

    The largest of: ``2.5`` digits per unknown plus 40 (``5n + 40`` for the single
    neuron: the normal equations square the condition number); the trace's digits plus
    ``1.1`` digits per unknown plus 20; and ``dps``.  The second term is the noise floor:
    rounding in the residual (relative ``10^-dps``) is amplified by ``1 / sigma_min^2``
    in the normal equations and leaves a residual of about ``10^-dps / sigma_min``, with
    ``sigma_min ~ 10^(-2.2 n)``; it must stay below the trace's rounding
    (measured at n = 24: 160 digits left residual 5e-130 against an allowance of 5e-134).
    """
    unknowns = trace.samples * (trace.network.input_width + trace.network.output_width)
    return max(int(2.5 * unknowns) + 40, trace.digits + int(1.1 * unknowns) + 20, dps or 0)


def gauss_newton(trace, inputs, labels, dps, steps=None, backend=None, max_iterations=30):
    """Polish ``(inputs, labels)`` against the first ``steps`` steps (default all).

    Returns ``(inputs, labels, info)`` as mpmath numbers; ``info`` has ``iterations``,
    ``converged`` (the last correction reached the working precision or stopped
    shrinking at a tiny size), ``residual`` (max norm) and ``correction``.
    """
    backend = get_backend(backend)
    steps = trace.steps if steps is None else steps
    with backend.workdps(dps):
        equations = TraceEquations(trace, range(steps), backend)
        u = [backend.number(v) for v in equations.join(inputs, labels)]
        rhs = equations.rhs

        def residual(point):
            F, J = equations.evaluate(point)
            return [f - g for f, g in zip(F, rhs)], J

        F, J = residual(u)
        size = backend.norm(F)
        scale = 1.0 + backend.norm(u)
        floor = 10.0 ** (8 - dps) * scale
        info = {"iterations": 0, "converged": False, "backend": backend.name, "dps": dps}
        previous = None
        correction = float("inf")
        for iteration in range(1, max_iterations + 1):
            info["iterations"] = iteration
            delta = backend.least_squares(J, [-f for f in F])
            correction = backend.norm(delta)
            if correction != correction:  # NaN: singular normal equations
                break
            factor = backend.number(1)
            for _ in range(8):
                trial = [backend.clean(a + factor * d) for a, d in zip(u, delta)]
                F_trial, J_trial = residual(trial)
                trial_size = backend.norm(F_trial)
                if trial_size <= size * (1 + 1e-6) or correction <= floor:
                    break
                factor = factor / 2
            else:
                break
            u, F, J, size = trial, F_trial, J_trial, trial_size
            if correction <= floor or (previous is not None and correction > 0.5 * previous
                                       and correction < 10.0 ** (-dps / 3) * scale):
                info["converged"] = True
                break
            previous = correction
        inputs, labels = equations.split([backend.to_mpmath(v) for v in u])
        info["residual"] = backend.to_mpmath(max(F, key=backend.magnitude))
        info["residual"] = abs(info["residual"])
        info["correction"] = correction
        return [list(x) for x in inputs], [list(y) for y in labels], info
