"""Issue 11's ``inconsistent`` test (solvers/pipeline.py ``inconsistency_evidence``): power
on small noise added to an exact trace, no false alarm on the exact trace itself."""

import random

import mpmath
import pytest

from symbolic_inversion import Network, Trace, simulate
from symbolic_inversion.solvers import Solution, Status, recover
from symbolic_inversion.solvers.pipeline import (INCONSISTENCY, ROUNDS, inconsistency_evidence,
                                                 rounds_for)

NEURON = Network([1, 1], "tanh")


def traces(seed, noise):
    rng = random.Random(f"power:1-1 tanh n3 E6:{seed}")
    xs = [[f"{rng.uniform(-1, 1):.6f}"] for _ in range(3)]
    ys = [[f"{rng.uniform(-1, 1):.6f}"] for _ in range(3)]
    exact = simulate(NEURON, xs, ys, lr="0.1", epochs=6, dps=60, seed=seed)
    with mpmath.workdps(80):
        noisy = [exact.parameters[0]] + [
            [mpmath.nstr(mpmath.mpf(str(v)) + mpmath.mpf(noise) * rng.gauss(0, 1), 60)
             for v in p] for p in exact.parameters[1:]]
    return exact, Trace(NEURON, "0.1", 3, noisy)


@pytest.mark.slow  # 44 s on the core install (mpmath), loaded machine
@pytest.mark.parametrize("seed", [2])
def test_small_noise_is_inconsistent_and_the_exact_trace_is_not(seed):
    exact, noisy = traces(seed, "1e-20")
    assert recover(exact).status is Status.CONVERGED
    solution = recover(noisy)
    assert solution.status is Status.INCONSISTENT, solution.message
    evidence = solution.stats["inconsistency_test"]
    assert evidence["inconsistent"] and evidence["agreeing"] >= 2
    assert evidence["spare"] >= 6 and evidence["ratio"] > INCONSISTENCY["factor"]
    assert "no dataset of 3 samples" in solution.detail
    # the rounds a small system may take beyond ROUNDS are for hard exact data: with the
    # evidence in hand after the third round they do not run
    assert len(solution.stats["paths"]) <= 6 * ROUNDS < 6 * rounds_for(6)


def test_no_evidence_without_enough_spare_equations():
    assert not inconsistency_evidence([], {"equations": 13, "unknowns": 12})["inconsistent"]


def test_fits_that_are_not_independent_are_no_evidence():
    # two settled fits at the same residual, a million times the rounding allowance,
    # with enough spare equations: evidence, unless they came from random data or from
    # the split endgame's paths (started at one stalled path's end)
    def fit(**marks):
        stats = dict(refine_converged=True, tolerance=mpmath.mpf("1e-50"), **marks)
        return Solution([], Status.INCONSISTENT, mpmath.mpf("1e-44"), 0, stats)
    counts = {"equations": 18, "unknowns": 6}
    assert inconsistency_evidence([fit(), fit()], counts)["inconsistent"]
    for marks in ({"random_start": True}, {"split": True}):
        evidence = inconsistency_evidence([fit(**marks), fit(**marks)], counts)
        assert evidence["fits"] == 0 and not evidence["inconsistent"]
