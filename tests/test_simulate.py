"""Training at any precision (symbolic_inversion.simulate) against independent
computations, and the re-simulation of recovered data.

References: gradient descent written out by hand with mpmath at 120 digits (single
neuron from the paper's eqs. (1)-(6); a 2-3-1 network with hand-written backprop), a
float64 loop with numpy, the data that generated each trace.
"""

import mpmath
import numpy as np
import pytest

import symbolic_inversion
from symbolic_inversion import InputError, Network
from symbolic_inversion.paper import example_2_trace
from symbolic_inversion.simulate import Resimulation, resimulate, simulate

NEURON = Network([1, 1], "tanh")
X4, Y4 = [0.6, 0.2, 0.1, 0.9], [0.5, 0.4, 0.3, 0.6]


def pairs(xs, ys):
    return [([x], [y]) for x, y in zip(xs, ys)]


def _neuron_gd(xs, ys, w, b, lr, epochs, momentum="0", weight_decay="0"):
    """The paper's eqs. (1)-(6), with PyTorch's momentum and weight decay, at 120 digits."""
    with mpmath.workdps(120):
        xs = [mpmath.mpf(v) for v in xs]
        ys = [mpmath.mpf(v) for v in ys]
        w, b, lr = mpmath.mpf(w), mpmath.mpf(b), mpmath.mpf(lr)
        mu, wd = mpmath.mpf(momentum), mpmath.mpf(weight_decay)
        n = len(xs)
        vw = vb = mpmath.mpf(0)
        path, gradients = [(w, b)], []
        for _ in range(epochs):
            yhat = [mpmath.tanh(w * x + b) for x in xs]
            base = [2 * (t - y) * (1 - t**2) for t, y in zip(yhat, ys)]
            db = mpmath.fsum(base) / n
            dw = mpmath.fsum(x * e for x, e in zip(xs, base)) / n
            gradients.append((dw, db))
            vw = mu * vw + dw + wd * w
            vb = mu * vb + db + wd * b
            w, b = w - lr * vw, b - lr * vb
            path.append((w, b))
        return path, gradients


def _two_layer_gd(X, Y, theta, lr, epochs):
    """GD on a 2-3-1 tanh/identity network with hand-written backprop at 120 digits.

    Parameter layout from the spec: W1 (3x2 row-major), b1 (3), W2 (1x3), b2 (1).
    """
    with mpmath.workdps(120):
        X = [[mpmath.mpf(v) for v in x] for x in X]
        Y = [mpmath.mpf(y[0]) for y in Y]
        theta = [mpmath.mpf(v) for v in theta]
        lr = mpmath.mpf(lr)
        path = [list(theta)]
        for _ in range(epochs):
            W1 = [theta[0:2], theta[2:4], theta[4:6]]
            b1, W2, b2 = theta[6:9], theta[9:12], theta[12]
            grad = [mpmath.mpf(0)] * 13
            for x, y in zip(X, Y):
                h = [mpmath.tanh(W1[k][0] * x[0] + W1[k][1] * x[1] + b1[k]) for k in range(3)]
                out = mpmath.fsum(W2[k] * h[k] for k in range(3)) + b2
                d_out = 2 * (out - y) / len(X)  # d loss / d out
                for k in range(3):
                    d_hidden = d_out * W2[k] * (1 - h[k] ** 2)
                    grad[2 * k] += d_hidden * x[0]
                    grad[2 * k + 1] += d_hidden * x[1]
                    grad[6 + k] += d_hidden
                    grad[9 + k] += d_out * h[k]
                grad[12] += d_out
            theta = [t - lr * g for t, g in zip(theta, grad)]
            path.append(list(theta))
        return path


def _max_difference(trace, path):
    with mpmath.workdps(120):
        return max(abs(mpmath.mpf(str(v)) - mpmath.mpf(r))
                   for vector, reference in zip(trace.parameters, path)
                   for v, r in zip(vector, reference))


@pytest.mark.parametrize("xs,ys", [(["0.6"], ["0.5"]),
                                   (["0.6", "0.2", "0.1", "0.9"], ["0.5", "0.4", "0.3", "0.6"])])
def test_60_digit_single_neuron_trace_agrees_with_120_digit_hand_gd_to_1e_50(xs, ys):
    trace = simulate(Network([1, 1], "tanh"), xs, ys, "0.1", epochs=12,
                     init=["0.5", "0.5"], dps=60)
    path, _ = _neuron_gd(xs, ys, "0.5", "0.5", "0.1", 12)
    assert trace.steps == 12 and trace.digits >= 59
    assert _max_difference(trace, path) < mpmath.mpf("1e-50")
    # and it is really 60 digits, not luck at 1e-50
    assert _max_difference(trace, path) < mpmath.mpf("1e-58")


def test_60_digit_multilayer_trace_agrees_with_hand_written_backprop_to_1e_50():
    X = [["0.3", "-0.8"], ["0.55", "0.1"], ["-0.2", "0.45"]]
    Y = [["0.2"], ["-0.4"], ["0.7"]]
    init = ["0.11", "-0.42", "0.73", "0.05", "-0.61", "0.37", "0.2", "-0.1", "0.3",
            "0.52", "-0.83", "0.44", "0.06"]
    trace = simulate(Network([2, 3, 1], ["tanh", "identity"]), X, Y, "0.25", epochs=6,
                     init=init, dps=60)
    path = _two_layer_gd(X, Y, init, "0.25", 6)
    assert _max_difference(trace, path) < mpmath.mpf("1e-50")


def test_momentum_and_weight_decay_follow_pytorch_and_are_undone_exactly():
    xs, ys = ["0.6", "0.2"], ["0.5", "0.4"]
    trace = simulate(Network([1, 1], "tanh"), xs, ys, "0.1", epochs=6, init=["0.5", "0.5"],
                     dps=60, momentum="0.9", weight_decay="0.01")
    path, gradients = _neuron_gd(xs, ys, "0.5", "0.5", "0.1", 6, "0.9", "0.01")
    assert _max_difference(trace, path) < mpmath.mpf("1e-50")
    with mpmath.workdps(80):
        observed = trace.observed_gradients()
        assert max(abs(g - r) for o, ref in zip(observed, gradients)
                   for g, r in zip(o, ref)) < mpmath.mpf("1e-50")


def test_numpy_backend_is_a_float64_gd_loop():
    x, y = np.array([0.6, 0.2, 0.1]), np.array([0.5, 0.4, 0.3])
    trace = simulate(Network([1, 1], "tanh"), x.tolist(), y.tolist(), 0.1, epochs=8,
                     init=[0.5, 0.5], backend="numpy")
    w, b = 0.5, 0.5
    expected = [(w, b)]
    for _ in range(8):  # the paper's Appendix A
        y_hat = np.tanh(w * x + b)
        base = 2 * (y_hat - y) * (1 - y_hat**2)
        w, b = w - 0.1 * np.mean(x * base), b - 0.1 * np.mean(base)
        expected.append((w, b))
    got = [(float(v[0]), float(v[1])) for v in trace.parameters]
    assert np.allclose(got, expected, rtol=0, atol=1e-15)
    assert got != [(0.5, 0.5)] * 9


def test_simulate_refuses_bad_arguments():
    net = Network([1, 1], "tanh")
    with pytest.raises(InputError, match="lr"):
        simulate(net, [0.6], [0.5], lr=-1, epochs=2, init=[0.5, 0.5])
    with pytest.raises(InputError, match="epochs"):
        simulate(net, [0.6], [0.5], lr=0.1, epochs=0, init=[0.5, 0.5])
    with pytest.raises(InputError, match="y: expected 1 samples"):
        simulate(net, [0.6], [0.5, 0.4], lr=0.1, epochs=2, init=[0.5, 0.5])
    with pytest.raises(InputError, match="init"):
        simulate(net, [0.6], [0.5], lr=0.1, epochs=2, init=[0.5])
    with pytest.raises(InputError, match="x"):
        simulate(net, [], [], lr=0.1, epochs=2)
    with pytest.raises(InputError, match="not a finite number"):
        simulate(net, [float("nan")], [0.5], lr=0.1, epochs=2, init=[0.5, 0.5])
    with pytest.raises(InputError, match="backend"):
        simulate(net, [0.6], [0.5], lr=0.1, epochs=2, init=[0.5, 0.5], backend="torch")


def test_the_public_import_paths():
    from symbolic_inversion.verify import resimulate as from_verify
    assert symbolic_inversion.simulate is simulate
    assert from_verify is resimulate and symbolic_inversion.resimulate is resimulate


# -- re-simulation --------------------------------------------------------------------

@pytest.fixture(scope="module")
def trace_4_long():
    return simulate(NEURON, X4, Y4, lr="0.1", epochs=6, init=[0.5, 0.5], dps=60)


def test_resimulation_reproduces_every_digit_of_an_exact_trace(trace_4_long):
    replay = resimulate(trace_4_long, pairs(X4, Y4))
    assert isinstance(replay, Resimulation) and replay.digits == [60] * 6


def test_resimulation_of_wrong_labels_loses_digits(trace_4_long):
    replay = resimulate(trace_4_long, pairs(X4, [Y4[0] + 1e-3] + Y4[1:]))
    # A label error of 1e-3 moves the first step by about lr * (2/n) * B * 1e-3, a few
    # 1e-5 on parameters near 0.5: three to four digits survive, never all 60.
    assert all(2 <= d <= 5 for d in replay.digits)
    first_step = mpmath.mpf("0.1") * 2 / 4 * (1 - mpmath.tanh(mpmath.mpf("0.8")) ** 2) * 1e-3
    assert abs(replay.differences[0] / first_step - 1) < 0.1


def test_resimulation_of_example_2_findroot_digits_matches_the_seven_digits():
    # Mathematica's FindRoot on the paper's eq. (12), 12 digits: 7 digits of every step.
    root = [(["0.599960998957"], ["0.500027133746"]), (["0.200117798297"], ["0.400006731222"])]
    assert resimulate(example_2_trace(), root).digits == [7, 7]


def test_resimulation_with_momentum_weight_decay_and_minibatches():
    trace = simulate(NEURON, X4, Y4, lr="0.1", epochs=4, init=[0.5, 0.5], dps=50,
                     optimizer="sgd", batch_size=2, momentum="0.9", weight_decay="0.01",
                     seed=3)
    assert resimulate(trace, pairs(X4, Y4)).digits == [50] * trace.steps
    assert min(resimulate(trace, pairs(X4, Y4)[::-1]).digits) < 10


def test_resimulation_refuses_bad_input(trace_4_long):
    with pytest.raises(InputError, match="4 samples"):
        resimulate(trace_4_long, pairs(X4[:2], Y4[:2]))
    with pytest.raises(InputError, match="samples\\[1\\]\\[0\\]"):
        resimulate(trace_4_long, [([0.6], [0.5]), (["exp(1)"], [0.5])] + pairs(X4[2:], Y4[2:]))
    with pytest.raises(InputError, match="Trace"):
        resimulate("trace.json", pairs(X4, Y4))


def test_exact_backend_trains_leaky_relu_networks_exactly():
    # one exact GD step of a leaky relu network: theta - lr * SymPy's gradient, exactly
    from fractions import Fraction

    import sympy as sp
    network = Network([2, 3, 1], ["leaky_relu:0.25", "identity"])
    X, Y = [["0.5", "-0.25"], ["-0.75", "1"]], [["0.5"], ["-1"]]
    init = ["0.5", "-0.25", "0.75", "0.5", "-1", "0.25", "0", "0.5", "-0.5", "1", "0.5",
            "-0.25", "0.25"]
    trace = simulate(network, X, Y, lr="0.5", epochs=1, init=init, backend="exact")
    gradient = network.gradient([[sp.Rational(v) for v in x] for x in X],
                                [[sp.Rational(v) for v in y] for y in Y],
                                theta=[sp.Rational(v) for v in init])
    expected = [Fraction(v) - Fraction(1, 2) * Fraction(str(g)) for v, g in zip(init, gradient)]
    assert [Fraction(v) for v in trace.parameters[1]] == expected
