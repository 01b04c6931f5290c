"""Any feed-forward network: closed forms and multi-layer recovery (the compiled
programs are tested in test_codegen.py)."""

import itertools

import mpmath
import sympy as sp

from symbolic_inversion import Network, one_sample_closed_form, recover, simulate
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
