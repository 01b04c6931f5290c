"""solvers/ratio.py: the ratio trick evaluates the formula closed_form.py derives."""

import mpmath
import sympy as sp

from symbolic_inversion import Network, one_sample_closed_form, simulate
from symbolic_inversion.solvers.ratio import one_sample_input, ratio_formula


def test_ratio_formula_is_the_derived_one():
    network = Network([3, 4, 2], ["tanh", "sigmoid"])
    form = one_sample_closed_form(network, row=0)
    ratio = ratio_formula(network)
    values = [mpmath.mpf("0.7"), mpmath.mpf("0.2"), mpmath.mpf("0.9"), mpmath.mpf("0.4")]
    weights, bias = network.layer_slices()[0]
    symbols = [form.symbols["now"][weights.start], form.symbols["next"][weights.start],
               form.symbols["now"][bias.start], form.symbols["next"][bias.start]]
    expected = form.inputs[0].xreplace(dict(zip(symbols, [sp.Float(str(v)) for v in values])))
    assert abs(ratio(*values) - mpmath.mpf(str(sp.N(expected, 30)))) < 1e-25


def test_every_neuron_gives_the_input_with_an_error_bound():
    network = Network([3, 4, 2], ["sigmoid", "identity"])
    x = ["0.3", "-0.7", "0.45"]
    trace = simulate(network, [x], [["0.2", "-0.9"]], lr="0.1", epochs=2, dps=60, seed=1)
    with mpmath.workdps(80):
        gradients = trace.observed_gradients()
        best, bound, estimates = one_sample_input(trace, gradients, 0)
        assert len(estimates) == 4 and bound < 1e-50
        for estimate, _ in estimates:
            assert max(abs(a - mpmath.mpf(b)) for a, b in zip(estimate, x)) < 1e-50
