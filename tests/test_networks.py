"""Any feed-forward network: closed forms, compiled Jacobians, multi-layer recovery."""

import itertools

import mpmath
import numpy as np
import pytest
import sympy as sp

from symbolic_inversion import (InversionSystem, Network, compile_network,
                                one_sample_closed_form, recover, simulate)
from symbolic_inversion.codegen import LayerwiseFloat64, shared_subexpressions
from symbolic_inversion.solvers.ratio import one_sample_input

NET_342 = Network([3, 4, 2], ["sigmoid", "identity"])
X_342, Y_342 = ["0.3", "-0.7", "0.45"], ["0.2", "-0.9"]


def _error(recovered, truth):
    return max(abs(v - mpmath.mpf(t)) for v, t in zip(recovered, truth))


def test_one_sample_through_342_in_closed_form_to_1e40():
    trace = simulate(NET_342, [X_342], [Y_342], lr="0.1", epochs=2, dps=60, seed=1)
    solution = recover(trace, method="closed_form")
    assert solution.ok and solution.digits >= 40
    with mpmath.workdps(80):
        x, y = solution.samples[0]
        assert _error(x, X_342) < mpmath.mpf(10) ** -40
        assert _error(y, Y_342) < mpmath.mpf(10) ** -40


def test_every_row_with_a_bias_gradient_gives_the_same_input():
    trace = simulate(NET_342, [X_342], [Y_342], lr="0.1", epochs=2, dps=60, seed=1)
    with mpmath.workdps(80):
        gradients = trace.observed_gradients()
        for step in range(trace.steps):
            _, _, estimates = one_sample_input(trace, gradients, step)
            assert len(estimates) == 4  # all four first-layer neurons moved
            for x, bound in estimates:
                assert _error(x, X_342) < mpmath.mpf(10) ** -50 and bound < 1e-50


def test_symbolic_closed_form_evaluates_to_the_data():
    trace = simulate(NET_342, [X_342], [Y_342], lr="0.1", epochs=1, dps=60, seed=1)
    with mpmath.workdps(80):
        now, later = trace.theta(0), trace.theta(1)
        c = [g / 2 for g in trace.observed_gradients()[0][-2:]]  # output-bias gradients
        for row in range(4):
            form = one_sample_closed_form(NET_342, row=row)
            values = dict(zip(form.symbols["now"], now))
            values.update(zip(form.symbols["next"], later))
            x = [sp.N(e.xreplace(values), 70) for e in form.inputs]
            values.update(zip(form.symbols["x"], x))
            values.update(zip(form.symbols["c"], c))
            y = [sp.N(e.xreplace(values), 70) for e in form.labels]
            assert _error([mpmath.mpf(str(v)) for v in x], X_342) < mpmath.mpf(10) ** -50
            assert _error([mpmath.mpf(str(v)) for v in y], Y_342) < mpmath.mpf(10) ** -50


def test_one_sample_per_step_in_general():
    # Batch size 1: every step reveals the sample it used, by the same ratio trick.
    inputs = [X_342, ["-0.2", "0.5", "0.9"], ["0.8", "0.1", "-0.3"]]
    labels = [Y_342, ["0.4", "0.3"], ["-0.6", "0.7"]]
    trace = simulate(NET_342, inputs, labels, lr="0.1", epochs=1, dps=60, seed=1,
                     optimizer="sgd", batch_size=1, record_batches=False)
    solution = recover(trace)
    assert solution.ok
    with mpmath.workdps(80):
        for x, y in zip(inputs, labels):
            assert min(max(_error(rx, x), _error(ry, y)) for rx, ry in solution.samples) \
                < mpmath.mpf(10) ** -40


def test_three_samples_through_231_from_two_steps_cold_start():
    network = Network([2, 3, 1], ["tanh", "identity"])
    inputs = [["0.3", "-0.6"], ["0.8", "0.1"], ["-0.4", "0.5"]]
    labels = [["0.2"], ["-0.5"], ["0.7"]]
    trace = simulate(network, inputs, labels, lr="0.5", epochs=2, dps=60, seed=3)
    solution = recover(trace)  # no initial guess
    assert solution.ok and solution.digits >= 20
    with mpmath.workdps(80):
        best = min(
            max(max(_error(x, inputs[i]), _error(y, labels[i]))
                for (x, y), i in zip(solution.samples, order))
            for order in itertools.permutations(range(3)))
    assert best < mpmath.mpf(10) ** -20


NETWORKS = [Network([2, 3, 1], ["tanh", "identity"]),
            Network([3, 4, 2], ["sigmoid", "relu"]),
            Network([2, 3, 2, 2], "tanh", bias=False),
            Network([1, 2, 1], ["sigmoid", "tanh"])]


@pytest.mark.parametrize("network", NETWORKS, ids=str)
def test_compiled_jacobian_matches_finite_differences(network):
    compiled = compile_network(network)
    rng = np.random.default_rng(4)
    with mpmath.workdps(50):
        theta = [mpmath.mpf(float(v)) for v in rng.normal(0, 0.7, network.num_parameters)]
        x = [mpmath.mpf(float(v)) for v in rng.uniform(0.1, 1, network.input_width)]
        y = [mpmath.mpf(float(v)) for v in rng.uniform(-1, 1, network.output_width)]
        J = compiled.sample_jacobian(theta, x, y)
        h = mpmath.mpf(10) ** -20
        for d in range(network.input_width):
            up, down = list(x), list(x)
            up[d] += h
            down[d] -= h
            g_up = compiled.half_gradient(theta, up, y)
            g_down = compiled.half_gradient(theta, down, y)
            for p in range(network.num_parameters):
                assert abs((g_up[p] - g_down[p]) / (2 * h) - J[p][d]) < mpmath.mpf(10) ** -30


@pytest.mark.parametrize("network", NETWORKS, ids=str)
def test_layerwise_float64_matches_the_mpmath_system(network):
    rng = np.random.default_rng(1)
    X = rng.uniform(0.1, 1, (3, network.input_width)).round(4)
    Y = rng.uniform(-1, 1, (3, network.output_width)).round(4)
    trace = simulate(network, X.tolist(), Y.tolist(), lr="0.3", epochs=2, dps=30, seed=2)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(30):
        xs = [[mpmath.mpf(str(v)) for v in x] for x in X]
        ys = [[mpmath.mpf(str(v)) for v in y] for y in Y]
        J = np.array(system.jacobian(xs, ys).tolist(), dtype=float)
        residual = np.array([float(r) for r in system.residual(xs, ys)])
        sides = np.array([[float(v) for v in side] for side in system.observed()])
        thetas = np.array([[float(v) for v in trace.theta(j)] for j in range(2)])
    fast = LayerwiseFloat64(network)
    assert np.abs(fast.jacobian(thetas, X, Y) - J).max() < 1e-13
    fast_residual = (fast.half_gradient_sums(thetas, X, Y) - sides).ravel()
    assert np.abs(fast_residual - residual).max() < 1e-13


def test_shared_subexpressions_program_equals_the_expressions():
    network = Network([2, 3, 1], "tanh")
    x = network.sample_symbols(0)[0]
    outputs = list(network.output_jacobian_transpose(x))
    program, reduced = shared_subexpressions(outputs)
    values = dict(zip(network.parameter_symbols(), [0.1 * k - 0.4 for k in range(13)]))
    values.update(zip(x, [0.3, -0.2]))
    for symbol, expr in program:
        values[symbol] = expr.xreplace(values)
    for full, short in zip(outputs, reduced):
        assert abs(float(full.xreplace(values)) - float(short.xreplace(values))) < 1e-14
