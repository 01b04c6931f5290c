"""Real training, exactly: classifiers on cross-entropy (hard and soft labels), Adam,
AdamW, SGD with Nesterov momentum, a learning-rate schedule, new activations.

Traces are exact (60 digits), written by the independent generator of
``tests/generator.py`` (its own loss formulas differentiated by SymPy, its own
optimizer updates) and by :func:`simulate`; every recovery must be ``converged`` with
the data right to the digits vouched for (at least 30) and the classes exact.
"""

import mpmath
import numpy as np
import pytest

from generator import exact_trace
from symbolic_inversion import Network, Status, Trace, recover, simulate
from symbolic_inversion.solvers.solution import match_samples

NET = Network([2, 4, 3], ["tanh", "identity"])
GELU = Network([3, 5, 4], ["gelu", "identity"])


def _data(network, n, seed, loss="cross_entropy", soft=False):
    rng = np.random.default_rng(seed)
    X = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (n, network.input_width))]
    m = network.output_width
    if loss != "cross_entropy":
        Y = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (n, m))]
    elif soft:
        P = rng.dirichlet(np.ones(m), n).round(3)
        P[:, -1] = 1 - P[:, :-1].sum(axis=1)
        Y = [[f"{v:.3f}" for v in row] for row in P]
    else:
        Y = [[str(int(k == c)) for c in range(m)] for k in rng.integers(0, m, n)]
    init = [f"{v:.4f}" for v in rng.uniform(-0.8, 0.8, network.num_parameters)]
    return X, Y, init


def _check(trace, X, Y, classes=True):
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 30
    with mpmath.workdps(80):
        truth = [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y])
                 for x, y in zip(X, Y)]
        order, error = match_samples([(list(x), list(y)) for x, y in solution.samples],
                                     truth)
        assert error < mpmath.mpf(10) ** -solution.digits
    if classes:
        expected = [y.index("1") if "1" in y else None for y in Y]
        assert [solution.classes[order.index(i)] for i in range(len(Y))] == expected
    return solution


@pytest.mark.parametrize("optimizer,steps,lrs", [
    ({"name": "gd", "lr": "0.5"}, 4, None),
    ({"name": "adam", "lr": "0.05"}, 3, None),
    ({"name": "gd", "lr": "0.3", "momentum": "0.9", "nesterov": True}, 4, None),
    ({"name": "gd", "lr": "0.5"}, 4, ["0.5", "0.4", "0.3", "0.2"]),
], ids=["gd", "adam", "nesterov", "schedule"])
def test_classifier_from_the_independent_generator(optimizer, steps, lrs):
    X, Y, init = _data(NET, 5, seed=1)
    trace = Trace.from_dict(exact_trace(NET, X, Y, init, optimizer, steps,
                                        loss="cross_entropy", lrs=lrs))
    _check(trace, X, Y)


def test_soft_labels_come_back_as_probability_vectors_without_a_class():
    X, Y, init = _data(NET, 5, seed=2, soft=True)
    trace = Trace.from_dict(exact_trace(NET, X, Y, init, {"name": "gd", "lr": "0.5"}, 4,
                                        loss="cross_entropy"))
    solution = _check(trace, X, Y, classes=False)
    assert solution.classes == [None] * 5


def test_adamw_with_more_unknowns_than_one_step_shows():
    """30 unknowns, 27 equations a step: Adam's later steps are not invertible, so the
    search runs on the selected gradient form and the judge on the update form."""
    X, Y, init = _data(NET, 6, seed=0)
    trace = Trace.from_dict(exact_trace(NET, X, Y, init, {"name": "adamw", "lr": "0.05"},
                                        3, loss="cross_entropy"))
    _check(trace, X, Y)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_gelu_classifier_simulated(optimizer):
    X, Y, init = _data(GELU, 5, seed=3)
    trace = simulate(GELU, X, Y, lr="0.5" if optimizer == "gd" else "0.01", epochs=3,
                     init=init, dps=60, loss="cross_entropy", optimizer=optimizer)
    _check(trace, X, Y)


def test_mse_regression_trained_with_adam():
    network = Network([2, 3, 1], ["tanh", "identity"])
    X, Y, init = _data(network, 4, seed=4, loss="mse")
    trace = Trace.from_dict(exact_trace(network, X, Y, init, {"name": "adam", "lr": "0.05"},
                                        6, loss="mse"))
    _check(trace, X, Y, classes=False)


def test_one_sample_closed_form_covers_cross_entropy_and_adam():
    X, Y, init = _data(NET, 1, seed=5)
    for optimizer in ({"name": "gd", "lr": "0.5"}, {"name": "adam", "lr": "0.05"}):
        trace = Trace.from_dict(exact_trace(NET, X, Y, init, optimizer, 2,
                                            loss="cross_entropy"))
        solution = _check(trace, X, Y)
        assert solution.stats["method"] == "closed_form"
