"""Variable projection in float64 (solvers/projection.py) and its use by the pipeline."""

import random

import mpmath
import numpy as np
import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion.solvers import recover
from symbolic_inversion.solvers.executors import one_blas_thread
from symbolic_inversion.solvers.pipeline import projected_search
from symbolic_inversion.solvers.projection import (FitCode, ProjectedSystem, projected_fit,
                                                   random_inputs)
from symbolic_inversion.solvers.tracking import PathCode
from symbolic_inversion.system import InversionSystem


def _instance(layers, activations, n, steps, seed, digits=40):
    rng = random.Random(f"test_projection:{layers}:{seed}")
    d, m = layers[0], layers[-1]
    xs = [[f"{rng.uniform(-1, 1):.6f}" for _ in range(d)] for _ in range(n)]
    ys = [[f"{rng.uniform(-1, 1):.6f}" for _ in range(m)] for _ in range(n)]
    network = Network(layers, activations)
    init = [f"{rng.uniform(-1, 1):.6f}" for _ in range(network.num_parameters)]
    trace = simulate(network, xs, ys, lr="0.1", epochs=steps, init=init, dps=digits)
    return trace, np.array(xs, dtype=float), np.array(ys, dtype=float)


def _matched(found, truth):
    """Max error after matching the samples (greedy: the samples are far apart here)."""
    unused, worst = list(range(len(truth))), 0.0
    for row in found:
        k = min(unused, key=lambda k: np.max(np.abs(row - truth[k])))
        unused.remove(k)
        worst = max(worst, float(np.max(np.abs(row - truth[k]))))
    return worst


def test_kaufman_jacobian_matches_finite_differences_of_the_projected_residual():
    trace, xs, _ = _instance([2, 3, 1], ["tanh", "identity"], 3, 2, seed=1)
    projected = ProjectedSystem(InversionSystem.from_trace(trace))
    X = xs + 0.05
    _, r, J = projected.evaluate(X)
    h = 1e-6
    numeric = np.empty_like(J)
    for k in range(X.size):
        step = np.zeros(X.size)
        step[k] = h
        plus = projected.evaluate(X + step.reshape(X.shape))[1]
        minus = projected.evaluate(X - step.reshape(X.shape))[1]
        numeric[:, k] = (plus - minus) / (2 * h)
    # Kaufman's Jacobian drops a term that vanishes with the residual: compare near the
    # data, where the residual is small, to the size of that residual
    scale = np.max(np.abs(numeric))
    assert np.max(np.abs(J - numeric)) <= 0.05 * scale


def test_labels_are_the_least_squares_labels_of_the_multiprecision_system():
    trace, xs, ys = _instance([2, 3, 1], ["tanh", "identity"], 3, 2, seed=2)
    system = InversionSystem.from_trace(trace)
    projected = ProjectedSystem(system)
    labels = projected.labels(xs)
    with mpmath.workdps(40):
        exact = system.solve_labels([[mpmath.mpf(float(v)) for v in row] for row in xs])
    assert np.allclose(labels, np.array(exact, dtype=float), atol=1e-12)
    # at the true inputs the least-squares labels are the true labels
    assert np.max(np.abs(labels - ys)) < 1e-10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_from_near_the_truth_reaches_it(seed):
    trace, xs, _ = _instance([2, 4, 1], ["tanh", "identity"], 4, 2, seed=seed)
    projected = ProjectedSystem(InversionSystem.from_trace(trace))
    rng = np.random.default_rng(seed)
    fit = projected_fit(projected, xs + 0.02 * rng.standard_normal(xs.shape))
    assert fit.code is FitCode.ROOT
    assert _matched(fit.inputs, xs) < 1e-8
    assert fit.error < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_truth_of_an_ill_conditioned_trace_is_not_vouched_for_in_double(seed):
    # 1-4-1 tanh/tanh, five samples, one step (13 equations, 10 unknowns), two inputs
    # 2e-3 apart: the residual at the exact data is at double rounding, but double
    # precision cannot bound the inputs from it (the judge decides, in multiprecision)
    network = Network([1, 4, 1], ["tanh", "tanh"])
    rng = random.Random(seed)
    init = [f"{rng.uniform(-1, 1):.6f}" for _ in range(network.num_parameters)]
    xs = ["-0.229579", "-0.308313", "-0.306465", "-0.422055", "-0.069812"]
    ys = ["-0.435958", "0.377119", "-0.745581", "0.417538", "-0.090820"]
    trace = simulate(network, xs, ys, lr="0.1", epochs=1, init=init, dps=60)
    projected = ProjectedSystem(InversionSystem.from_trace(trace))
    fit = projected_fit(projected, np.array([[float(x)] for x in xs]))
    assert fit.relative < 1e-13
    assert fit.error > 1e-3
    assert fit.code is FitCode.ILL_CONDITIONED and not fit.root


def test_random_inputs_lie_in_the_box():
    values = random_inputs(np.random.default_rng(0), (50, 3), scale=2.0)
    assert values.shape == (50, 3) and np.all(np.abs(values) <= 2.0)


def test_projected_search_returns_the_data_as_a_real_endpoint():
    trace, xs, ys = _instance([2, 3, 1], ["tanh", "identity"], 3, 2, seed=3)
    path, info = projected_search(trace, None, None, random.Random(0), 40)
    assert path.code is PathCode.SUCCESS
    found = np.array([float(v) for v in path.real]).reshape(3, 3)
    truth = np.concatenate([xs, ys], axis=1)
    assert _matched(found, truth) < 1e-8
    assert info["fits"]["root"] == 1


def test_four_eight_one_network_is_recovered_by_the_default_pipeline():
    # 40 unknowns: before the projected search, every homotopy path of this case ran
    # past 240 s (bench_networks, "4-8-1 n8")
    trace, xs, ys = _instance([4, 8, 1], ["tanh", "identity"], 8, 2, seed=4, digits=50)
    solution = recover(trace)
    assert solution.status.value == "converged"
    found = np.array([[float(v) for v in list(x) + list(y)] for x, y in solution.samples])
    truth = np.concatenate([xs, ys], axis=1)
    assert _matched(found, truth) <= 10.0 ** -solution.digits + 1e-15
    assert solution.digits >= 40


def test_one_blas_thread_limits_blas_inside_the_context_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with one_blas_thread():
        inside = [p["num_threads"] for p in threadpoolctl.threadpool_info()
                  if p["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
