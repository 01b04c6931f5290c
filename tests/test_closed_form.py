"""The ratio trick: its symbolic form, its evaluation at 60 digits, unidentifiable steps.

References: the paper's formulas (Example 1, eq. (11)) typed in by hand, and the data
that generated each trace.
"""

import mpmath
import pytest
import sympy as sp

from symbolic_inversion import (InputError, Network, NotSupportedError, Status, Trace,
                                one_sample_closed_form, recover, simulate)

NEURON = Network([1, 1], "tanh")


def test_single_neuron_closed_form_is_the_papers_ratio_trick():
    form = one_sample_closed_form(NEURON)
    w0, b0, w1, b1 = sp.symbols("w^{(0)} b^{(0)} w^{(1)} b^{(1)}", real=True)
    (x,), _ = NEURON.sample_symbols(0)
    c = sp.Symbol("c_0")
    assert form.ratios == [x]
    assert sp.simplify(form.inputs[0] - (w0 - w1) / (b0 - b1)) == 0
    T = sp.tanh(w0 * x + b0)
    assert sp.simplify(form.labels[0] - (T - c / (1 - T**2))) == 0
    latex = " ".join(form.latex().split())
    assert latex.startswith(r"\begin{aligned}") and "x_{0} &=" in latex


def test_closed_form_of_a_deeper_network_is_a_ratio_of_first_layer_gradients():
    network = Network([3, 4, 2], ["tanh", "sigmoid"])
    for row in (0, 3):
        form = one_sample_closed_form(network, row=row)
        x, _ = network.sample_symbols(0)
        assert form.ratios == list(x)
        now, later = form.symbols["now"], form.symbols["next"]
        bias = 12 + row  # W1 is 4 x 3 = 12 entries, then b1
        for i in range(3):
            expected = (now[3 * row + i] - later[3 * row + i]) / (now[bias] - later[bias])
            assert sp.simplify(form.inputs[i] - expected) == 0
    with pytest.raises(InputError, match="row"):
        one_sample_closed_form(network, row=4)
    with pytest.raises(NotSupportedError, match="bias"):
        one_sample_closed_form(Network([2, 1], bias=False))


def _evaluate(form, trace, step=0, dps=70):
    """The symbolic closed form with the trace's numbers substituted, at ``dps`` digits."""
    network = trace.network
    now = [sp.Float(str(v), dps) for v in trace.parameters[step]]
    later = [sp.Float(str(v), dps) for v in trace.parameters[step + 1]]
    lr = sp.Float(str(trace.lr), dps)
    subs = dict(zip(form.symbols["now"], now))
    subs.update(zip(form.symbols["next"], later))
    x = [sp.N(e.xreplace(subs), dps) for e in form.inputs]
    subs.update(zip(form.symbols["x"], x))
    # c_o: half the observed gradient of output bias o (one sample)
    last_bias = network.layer_slices()[-1][1]
    c = [(now[p] - later[p]) / (2 * lr) for p in range(last_bias.start, last_bias.stop)]
    subs.update(zip(form.symbols["c"], c))
    y = [sp.N(e.xreplace(subs), dps) for e in form.labels]
    return x, y


@pytest.mark.parametrize("network,x,y", [
    (NEURON, ["0.6"], ["0.5"]),
    (NEURON, ["-1.37"], ["0.25"]),
    (Network([3, 4, 2], ["tanh", "sigmoid"]), ["0.3", "-0.2", "0.7"], ["0.25", "0.8"]),
    (Network([3, 4, 2], ["sigmoid", "identity"]), ["1.5", "0.45", "-0.05"], ["-0.3", "2.0"]),
])
def test_one_sample_60_digit_trace_gives_x_and_y_to_1e_40(network, x, y):
    trace = simulate(network, [x], [y], "0.1", epochs=3, dps=60, seed=4)
    before = mpmath.mp.dps
    solution = recover(trace)
    assert mpmath.mp.dps == before
    assert solution.status is Status.CONVERGED and solution.ok
    (got_x, got_y), = solution.samples
    with mpmath.workdps(80):
        truth_x = [mpmath.mpf(v) for v in x]
        truth_y = [mpmath.mpf(v) for v in y]
        error = max(abs(a - b) for a, b in zip(got_x + got_y, truth_x + truth_y))
    assert error < mpmath.mpf("1e-40")
    assert solution.digits >= 40 and mpmath.mpf(10) ** -solution.digits >= error
    # the printed closed form, evaluated at 70 digits, says the same
    form = one_sample_closed_form(network)
    sym_x, sym_y = _evaluate(form, trace)
    with mpmath.workdps(80):
        assert max(abs(mpmath.mpf(str(a)) - b)
                   for a, b in zip(sym_x + sym_y, truth_x + truth_y)) < mpmath.mpf("1e-40")


def test_a_dead_first_layer_neuron_is_skipped_not_divided_by():
    # relu neuron 0 has a large negative bias: its bias gradient is exactly zero.
    network = Network([2, 3, 1], ["relu", "identity"])
    init = ["0.4", "0.1", "0.2", "-0.3", "0.5", "0.6", "-50", "0.3", "0.2",
            "0.7", "-0.4", "0.5", "0.1"]
    trace = simulate(network, [["0.8", "0.35"]], [["0.9"]], "0.1", epochs=2, init=init, dps=60)
    assert trace.parameters[0][6] == trace.parameters[1][6]  # b1[0] did not move
    solution = recover(trace)
    assert solution.ok
    with mpmath.workdps(80):
        assert abs(solution.inputs[0][0] - mpmath.mpf("0.8")) < mpmath.mpf("1e-40")
        assert abs(solution.labels[0][0] - mpmath.mpf("0.9")) < mpmath.mpf("1e-40")


def test_a_step_where_the_bias_does_not_move_is_unidentifiable():
    # the sample is already fit: y = tanh(0.5 * 0.6 + 0.5) to 80 digits, so the gradient is
    # below the trace's 60 digits and b_j == b_{j+1} at every step.
    with mpmath.workdps(80):
        fitted = mpmath.nstr(mpmath.tanh(mpmath.mpf("0.8")), 80)
    trace = simulate(NEURON, ["0.6"], [fitted], "0.1", epochs=3, init=["0.5", "0.5"], dps=60)
    assert all(vector[1] == trace.parameters[0][1] for vector in trace.parameters)
    solution = recover(trace)
    assert solution.status is Status.UNIDENTIFIABLE and not solution.ok
    assert solution.samples == [] and "nothing to divide by" in solution.message
    # a hand-written trace where nothing moves says the same
    frozen = Trace(NEURON, "0.1", 1, [["0.5", "0.5"]] * 3)
    assert recover(frozen).status is Status.UNIDENTIFIABLE


def test_a_trace_from_two_samples_labelled_one_is_inconsistent_not_garbage():
    trace = simulate(NEURON, ["0.6", "0.2"], ["0.5", "0.4"], "0.1", epochs=3,
                     init=["0.5", "0.5"], dps=40)
    lying = Trace(NEURON, trace.lr, 1, trace.parameters)
    solution = recover(lying)
    assert solution.status is Status.INCONSISTENT and solution.digits == 0


def test_example_1_from_the_papers_three_digit_table():
    # Table 1 as printed; the paper: x = 0.055 / 0.090 ~ 0.6, then y ~ 0.5
    trace = Trace(NEURON, "0.1", 1, [["0.500", "0.500"], ["0.489", "0.482"]])
    solution = recover(trace)
    (x,), (y,) = solution.samples[0]
    assert abs(x - mpmath.mpf("0.055") / mpmath.mpf("0.090")) < mpmath.mpf("1e-12")
    T = mpmath.tanh(mpmath.mpf("0.5") * x + mpmath.mpf("0.5"))
    assert abs(y - (T - mpmath.mpf("0.090") / (1 - T**2))) < mpmath.mpf("1e-12")
    assert abs(x - mpmath.mpf("0.6")) < mpmath.mpf("0.02")
    assert abs(y - mpmath.mpf("0.5")) < mpmath.mpf("0.01")
    assert solution.digits <= 2  # three printed decimals cannot vouch for more
