"""Symbolic networks: the backprop gradient against sympy.diff and finite differences.

References: ``sympy.diff`` of the symbolic MSE loss (an independent differentiation of
the forward pass) and central finite differences of the loss at 60 digits.
"""

import itertools
import random

import mpmath
import pytest
import sympy as sp

from symbolic_inversion import ACTIVATIONS, InputError, Network

ARCHITECTURES = [
    ([1, 1], "tanh", True),
    ([1, 1], "sigmoid", False),
    ([2, 1], "identity", True),
    ([2, 2, 1], ["tanh", "sigmoid"], True),
    ([1, 2, 2], ["relu", "identity"], True),
    ([2, 3], "relu", False),
    ([2, 2, 1], ["sigmoid", "tanh"], False),
]


def _random_point(net, seed):
    rng = random.Random(seed)
    theta = [sp.Rational(rng.randint(-90, 90), 100) for _ in range(net.num_parameters)]
    data = []
    for _ in range(2):
        x = [sp.Rational(rng.randint(-90, 90), 100) for _ in range(net.input_width)]
        y = [sp.Rational(rng.randint(-90, 90), 100) for _ in range(net.output_width)]
        data.append((x, y))
    return theta, data


def _symbols(net, n=2):
    inputs, labels = zip(*(net.sample_symbols(i) for i in range(n)))
    return list(inputs), list(labels)


@pytest.mark.parametrize("layers,activations,bias", ARCHITECTURES)
def test_backprop_gradient_equals_sympy_diff_of_the_loss(layers, activations, bias):
    net = Network(layers, activations, bias)
    inputs, labels = _symbols(net)
    theta = net.parameter_symbols()
    loss = net.loss(inputs, labels)
    gradient = net.gradient(inputs, labels)
    reference = [sp.diff(loss, p) for p in theta]
    assert len(gradient) == len(reference) == net.num_parameters
    # Compare at rational points away from relu's kink, at 50 digits: symbolic
    # simplification cannot decide Heaviside(z, 0) == Heaviside(z) in general.
    for seed in range(2):
        values, data = _random_point(net, seed)
        subs = dict(zip(theta, values))
        for (x, y), (xs, ys) in zip(data, zip(inputs, labels)):
            subs.update(zip(xs, x))
            subs.update(zip(ys, y))
        for g, r in zip(gradient, reference):
            a, b = g.xreplace(subs).evalf(50), r.xreplace(subs).evalf(50)
            assert abs(a - b) < sp.Float("1e-45"), (g, r)
            assert b.is_number


def test_single_neuron_gradient_is_the_papers_eqs_3_and_4_exactly():
    net = Network([1, 1], "tanh")
    (x0,), (y0,) = net.sample_symbols(0)
    (x1,), (y1,) = net.sample_symbols(1)
    w, b = net.parameter_symbols()
    grad = net.gradient([[x0], [x1]], [[y0], [y1]])

    def base(x, y):  # the paper's eq. (3)/(4) summand
        t = sp.tanh(w * x + b)
        return 2 * (t - y) * (1 - t**2)
    assert sp.simplify(grad[0] - (x0 * base(x0, y0) + x1 * base(x1, y1)) / 2) == 0
    assert sp.simplify(grad[1] - (base(x0, y0) + base(x1, y1)) / 2) == 0


@pytest.mark.parametrize("layers,activations,bias", ARCHITECTURES)
def test_gradient_equals_central_finite_differences_at_60_digits(layers, activations, bias):
    net = Network(layers, activations, bias)
    inputs, labels = _symbols(net)
    theta = net.parameter_symbols()
    values, data = _random_point(net, 7)
    subs = {}
    for (x, y), (xs, ys) in zip(data, zip(inputs, labels)):
        subs.update(zip(xs, x))
        subs.update(zip(ys, y))
    loss = sp.lambdify([theta], net.loss(inputs, labels).xreplace(subs),
                       modules=[{"Heaviside": lambda z, h=0: mpmath.mpf(z > 0)}, "mpmath"])
    gradient = sp.lambdify([theta], list(net.gradient(inputs, labels).xreplace(subs)),
                           modules=[{"Heaviside": lambda z, h=0: mpmath.mpf(z > 0)}, "mpmath"])
    with mpmath.workdps(60):
        point = [mpmath.mpf(v.p) / v.q for v in values]
        exact = gradient(point)
        h = mpmath.mpf("1e-20")
        for p in range(net.num_parameters):
            up, down = list(point), list(point)
            up[p] += h
            down[p] -= h
            difference = (loss(up) - loss(down)) / (2 * h)
            assert abs(difference - exact[p]) < mpmath.mpf("1e-35"), (p, difference, exact[p])


def test_parameter_order_is_the_trace_order_of_the_spec():
    # layer by layer, W (out x in) row-major, then the bias: check by writing the
    # forward pass of a 2-3-1 network by hand from the flat vector.
    net = Network([2, 3, 1], ["tanh", "identity"], bias=True)
    theta = sp.symbols("t0:13")
    assert net.num_parameters == 2 * 3 + 3 + 3 * 1 + 1 == 13
    x = sp.symbols("u0:2")
    hidden = [sp.tanh(theta[2 * k] * x[0] + theta[2 * k + 1] * x[1] + theta[6 + k])
              for k in range(3)]
    output = sum(theta[9 + k] * hidden[k] for k in range(3)) + theta[12]
    assert sp.simplify(net.forward(x, theta)[0] - output) == 0
    assert net.parameter_names() == [
        "W1[0,0]", "W1[0,1]", "W1[1,0]", "W1[1,1]", "W1[2,0]", "W1[2,1]",
        "b1[0]", "b1[1]", "b1[2]", "W2[0,0]", "W2[0,1]", "W2[0,2]", "b2[0]"]
    # W[k][i] connects input i to neuron k: its per-sample gradient carries x_i
    (xs, ys) = net.sample_symbols(0)
    g = net.half_gradient(xs, ys)
    assert sp.simplify(g[1] / g[6]) == xs[1]  # W1[0,1] over b1[0]
    assert sp.simplify(g[4] / g[8]) == xs[0]  # W1[2,0] over b1[2]


def test_parameter_order_without_bias_and_single_neuron_names():
    assert Network([1, 1]).parameter_names() == ["w", "b"]
    net = Network([2, 2], "identity", bias=False)
    theta = sp.symbols("t0:4")
    x = sp.symbols("u0:2")
    assert list(net.forward(x, theta)) == [theta[0] * x[0] + theta[1] * x[1],
                                           theta[2] * x[0] + theta[3] * x[1]]


def test_num_parameters_by_hand():
    assert Network([3, 4, 2]).num_parameters == 3 * 4 + 4 + 4 * 2 + 2 == 26
    assert Network([3, 4, 2], bias=False).num_parameters == 20
    assert Network([1, 1]).num_parameters == 2
    assert Network([5, 1, 1, 1], "tanh").num_parameters == 6 + 2 + 2


def test_backprop_stays_small_compared_with_expanded_diff():
    # The reason for backprop: shared sub-expressions.  Entries are products of the
    # forward pass's pieces, so their operation count grows linearly with depth.
    net = Network([2, 3, 3, 1], "tanh")
    x, y = net.sample_symbols(0)
    B = net.output_jacobian_transpose(x)
    sizes = [sp.count_ops(entry) for entry in B]
    reduced, _ = sp.cse(list(B))
    assert sum(sp.count_ops(e) for e in reduced) < sum(sizes)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forms_agree(name):
    activation = ACTIVATIONS[name]
    z = sp.Symbol("z", real=True)
    with mpmath.workdps(40):
        for value in ("-0.7", "0.3", "1.9"):
            symbolic = activation.symbolic(z).subs(z, sp.Float(value, 40)).evalf(40)
            numeric = activation.mpmath(mpmath.mpf(value))
            assert abs(mpmath.mpf(str(symbolic)) - numeric) < mpmath.mpf("1e-35")
            assert abs(float(activation.numpy(float(value))) - float(numeric)) < 1e-15
            derivative = sp.diff(activation.symbolic(z), z).subs(z, sp.Float(value, 40))
            a = activation.symbolic(z).subs(z, sp.Float(value, 40))
            stated = activation.derivative(sp.Float(value, 40), a)
            assert abs(sp.N(derivative - stated, 40)) < 1e-35


@pytest.mark.parametrize("arguments,field", [
    (([1],), "network.layers"),
    (([2, 0, 1],), "network.layers"),
    (([2, -1],), "network.layers"),
    (([2.0, 1],), "network.layers"),
    (([True, 1],), "network.layers"),
    (("1,1",), "network.layers"),
    (([1, 1], "softmax"), "network.activations"),
    (([1, 2, 1], ["tanh"]), "network.activations"),
    (([1, 1], "tanh", "yes"), "network.bias"),
])
def test_bad_networks_are_refused_with_the_field_named(arguments, field):
    with pytest.raises(InputError, match=field):
        Network(*arguments)


def test_bad_shapes_are_refused():
    net = Network([2, 1])
    x, y = net.sample_symbols(0)
    with pytest.raises(InputError, match="x: expected 2"):
        net.forward([1])
    with pytest.raises(InputError, match="y: expected 1"):
        net.half_gradient(x, [1, 2])
    with pytest.raises(InputError, match="parameters: expected 3"):
        net.forward(x, [1, 2])
    with pytest.raises(InputError, match="at least one sample"):
        net.gradient([], [])
    with pytest.raises(InputError, match="as many labels"):
        net.loss([x], [y, y])


def test_networks_are_values():
    assert Network([1, 1], "tanh") == Network([1, 1], ["tanh"], True)
    assert Network([1, 1]) != Network([1, 1], bias=False)
    assert len({Network([1, 1]), Network([1, 1], "tanh")}) == 1
    assert list(itertools.chain(*Network([2, 2]).layer_slices())) == [
        slice(0, 4), slice(4, 6)]
