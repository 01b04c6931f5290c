"""Shared small problems for the certificate tests (imported by name; fixtures are in
conftest.py).

Reference values come from outside the code under test: the data that generated a
simulated trace, the root of the paper's Example 2 printed by Mathematica's FindRoot
(refined here by a plain Newton iteration, which the certificate does not trust), and
exact rationals for the enclosures of decimal numbers.
"""

import importlib.util

import pytest

from symbolic_inversion import Network

HAVE_FLINT = importlib.util.find_spec("flint") is not None
# python-flint is an optional extra: on a core install the arb back end is not there to
# test (and certify(..., backend="arb") refuses it with an InputError, tested below).
BACKENDS = ["iv", pytest.param("arb", marks=pytest.mark.skipif(
    not HAVE_FLINT, reason="python-flint not installed (core install)"))]
NEURON = Network([1, 1], "tanh")
X4, Y4 = [0.6, 0.2, 0.1, 0.9], [0.5, 0.4, 0.3, 0.6]
# Mathematica's FindRoot on the paper's eq. (12) (shared/notes/numerics.md, 12 digits).
FINDROOT = {"x": ["0.599960998957", "0.200117798297"],
            "y": ["0.500027133746", "0.400006731222"]}


def pairs(xs, ys):
    return [([x], [y]) for x, y in zip(xs, ys)]
