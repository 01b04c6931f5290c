"""ReLU networks with several outputs: every sample of a batch from one gradient step
(the alternating pattern search of symbolic_inversion.solvers.relu)."""

from fractions import Fraction

import numpy as np

from symbolic_inversion import Network, get_loss, recover, simulate
from symbolic_inversion.solvers import Status
from symbolic_inversion.solvers import relu
from symbolic_inversion.solvers.relu import find_patterns, realizable
from tests.test_relu import _exact_multiset, _problem


def _true_patterns(network, init, X):
    """The first layer's activation patterns of the true inputs, in rationals."""
    d, w = network.layers[0], network.layers[1]
    (weights, bias), _ = network.layer_slices()
    W = [[Fraction(v) for v in init[weights][k * d:(k + 1) * d]] for k in range(w)]
    b = [Fraction(v) for v in init[bias]]
    return [np.array([sum(a * Fraction(v) for a, v in zip(row, x)) + bk > 0
                      for row, bk in zip(W, b)]) for x in X]


def test_sixteen_samples_through_48_128_10_from_one_exact_step():
    network, X, Y, init = _problem([48, 128, 10], 16, seed=5)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace, method="relu")
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.stats["exact"] and solution.residual == 0
    assert "alternating" in solution.stats["discovery"]
    assert all(isinstance(v, Fraction) for x, y in solution.samples for v in x + y)
    assert _exact_multiset(solution.samples) == _exact_multiset(zip(X, Y))


def test_the_search_finds_every_pattern_of_32_samples_through_64_256_10():
    network, X, Y, init = _problem([64, 256, 10], 32, seed=0)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    (w1, b1), (w2, _) = network.layer_slices()
    first, second = trace.parameters[0], trace.parameters[1]
    gradient = [(Fraction(a) - Fraction(b)) / Fraction("0.1") for a, b in zip(first, second)]
    G = np.hstack([np.array([float(v) for v in gradient[w1]]).reshape(256, 64),
                   np.array([float(v) for v in gradient[b1]])[:, None]])
    W_out = np.array([float(v) for v in first[w2]]).reshape(10, 256)
    W_layer = np.hstack([np.array([float(v) for v in first[w1]]).reshape(256, 64),
                         np.array([float(v) for v in first[b1]])[:, None]])
    rowspace = np.linalg.svd(G, full_matrices=False)[2][:32]
    accept = realizable(W_layer, rowspace, bias=True, nonnegative=False)
    patterns, how = find_patterns(G, W_out, 32, accept=accept)
    assert "alternating" in how
    truth = _true_patterns(network, first, X)
    assert sorted(p.tobytes() for p in patterns) == sorted(s.tobytes() for s in truth)


def test_the_last_pattern_follows_from_the_coefficients_of_the_others():
    # the coefficient vectors a_i (delta_i = U a_i) of every sample but one fix the last
    # sample's input up to scale, hence its pattern: compared with the true patterns of
    # the simulated inputs, for each sample left out in turn, on two batches
    for seed, n in ((1, 16), (2, 20)):
        network, X, Y, init = _problem([24, 96, 4], n, seed=seed)
        trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
        (w1, b1), (w2, _) = network.layer_slices()
        first, second = trace.parameters[0], trace.parameters[1]
        gradient = [(Fraction(a) - Fraction(b)) / Fraction("0.1")
                    for a, b in zip(first, second)]
        G = np.hstack([np.array([float(v) for v in gradient[w1]]).reshape(96, 24),
                       np.array([float(v) for v in gradient[b1]])[:, None]])
        W_out = np.array([float(v) for v in first[w2]]).reshape(4, 96)
        W_layer = np.hstack([np.array([float(v) for v in first[w1]]).reshape(96, 24),
                             np.array([float(v) for v in first[b1]])[:, None]])
        truth = _true_patterns(network, first, X)
        # the true deltas s_i o (W_out^T r_i), their coefficients in the basis U
        X_f = np.array([[float(v) for v in x] for x in X])
        hidden = np.maximum(X_f @ W_layer[:, :-1].T + W_layer[:, -1], 0)
        b2 = network.layer_slices()[1][1]
        outputs = hidden @ W_out.T + np.array([float(v) for v in first[b2]])
        residuals = outputs - np.array([[float(v) for v in y] for y in Y])
        deltas = (residuals @ W_out) * np.array(truth, float)
        U, S, Vt = np.linalg.svd(G, full_matrices=False)
        U, S, Vt = U[:, :n], S[:n], Vt[:n]
        coefficients = deltas @ U
        for left_out in range(n):
            others = [a for i, a in enumerate(coefficients) if i != left_out]
            (pattern,) = relu._last_pattern(S, Vt, others, W_layer, True)
            assert np.array_equal(pattern, truth[left_out])


def test_cross_entropy_from_a_float64_step_gives_inputs_and_classes():
    network, X, _, init = _problem([40, 96, 5], 8, seed=6)
    classes = [int(c) for c in np.random.default_rng(7).integers(0, 5, 8)]
    trace = simulate(network, X, classes, lr="0.1", epochs=1, init=init,
                     loss="cross_entropy", backend="numpy")
    solution = recover(trace, method="relu")
    assert solution.status is Status.CONVERGED, solution.message
    assert not solution.stats["exact"] and solution.digits >= 6
    loss = get_loss("cross_entropy")
    found = sorted(([float(v) for v in x], loss.label_class([float(v) for v in y], 1e-6))
                   for x, y in solution.samples)
    truth = sorted(([float(v) for v in x], c) for x, c in zip(X, classes))
    for (x, c), (x_true, c_true) in zip(found, truth):
        assert c == c_true
        assert max(abs(a - b) for a, b in zip(x, x_true)) < 10.0 ** -solution.digits


def test_a_search_out_of_time_says_how_many_patterns_it_found(monkeypatch):
    network, X, Y, init = _problem([48, 128, 10], 16, seed=5)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    monkeypatch.setattr(relu, "SEARCH_SECONDS", 0.0)
    solution = recover(trace, method="relu")
    assert solution.status is Status.NOT_CONVERGED
    assert "found 0 of 16 activation patterns" in solution.message


def test_depth_two_with_ten_outputs_exact():
    # 48 units in the last hidden layer: the alternating search, not the exhaustive one
    network, X, Y, init = _problem([24, 64, 48, 10], 8, seed=8)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace, method="relu")
    assert solution.status is Status.CONVERGED, solution.message
    assert "alternating" in solution.stats["discovery"] and solution.stats["exact"]
    assert _exact_multiset(solution.samples) == _exact_multiset(zip(X, Y))


def test_a_wrong_pattern_among_those_found_is_not_an_accusation(monkeypatch):
    # a support that passed the float tests by accident in place of a true one: the
    # decomposition fails, and that says the search is incomplete, not the trace wrong
    network, X, Y, init = _problem([48, 128, 10], 16, seed=5)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    search = relu.find_patterns

    def one_wrong(*args, **kwargs):
        patterns, how = search(*args, **kwargs)
        wrong = patterns[0].copy()
        wrong[np.flatnonzero(wrong)[:3]] = False
        return [wrong] + patterns[1:], how
    monkeypatch.setattr(relu, "find_patterns", one_wrong)
    solution = recover(trace, method="relu")
    assert solution.status is Status.NOT_CONVERGED, solution.message
    assert "one of them may be wrong" in solution.message
