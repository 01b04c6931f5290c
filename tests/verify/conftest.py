"""Fixtures of the certificate tests (the shared problems are in verify_problems.py)."""

import mpmath
import pytest

from symbolic_inversion import InversionSystem, simulate
from symbolic_inversion.paper import example_2_trace

from verify_problems import FINDROOT, NEURON, X4, Y4


@pytest.fixture(scope="session")
def example_2_root():
    """The root of the 7-digit system, refined from FindRoot's digits by Newton at 80
    digits (an input to the proof, not part of it)."""
    system = InversionSystem.from_trace(example_2_trace())
    with mpmath.workdps(80):
        X = [[mpmath.mpf(v)] for v in FINDROOT["x"]]
        Y = [[mpmath.mpf(v)] for v in FINDROOT["y"]]
        for _ in range(6):
            step = mpmath.lu_solve(system.jacobian(X, Y), mpmath.matrix(system.residual(X, Y)))
            X = [[X[i][0] - step[2 * i]] for i in range(2)]
            Y = [[Y[i][0] - step[2 * i + 1]] for i in range(2)]
    return list(zip(X, Y))


@pytest.fixture(scope="session")
def trace_4_square():
    return simulate(NEURON, X4, Y4, lr="0.1", epochs=4, init=[0.5, 0.5], dps=60)


@pytest.fixture(scope="session")
def trace_4_long():
    return simulate(NEURON, X4, Y4, lr="0.1", epochs=6, init=[0.5, 0.5], dps=60)
