"""Federated rounds (FedAvg): K local steps per recorded step, clients' weighted means.

The traces come from ``tests/generator.py``'s ``federated_trace``: a separate FedAvg
loop over SymPy-free mpmath gradients, sharing no code with ``simulate`` or the system
evaluator, so agreement with it is evidence, not a tautology."""

import mpmath
import numpy as np
import pytest

from symbolic_inversion import Network, Status, Trace, recover, simulate
from symbolic_inversion.solvers.solution import match_samples

from generator import federated_trace


def _data(network, n, seed, classes=False):
    rng = np.random.default_rng(seed)
    X = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (n, network.input_width))]
    m = network.output_width
    if classes:
        Y = [[str(int(k == c)) for c in range(m)] for k in rng.integers(0, m, n)]
    else:
        Y = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (n, m))]
    init = [f"{v:.4f}" for v in rng.uniform(-0.8, 0.8, network.num_parameters)]
    return X, Y, init


def _error(solution, X, Y):
    with mpmath.workdps(80):
        truth = [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y])
                 for x, y in zip(X, Y)]
        got = [(list(x), list(y)) for x, y in solution.samples]
        return match_samples(got, truth)[1]


@pytest.mark.parametrize("clients", [None, [(2, "3"), (2, "1")]])
def test_simulate_trains_the_rounds_the_independent_generator_trains(clients):
    network = Network([2, 3, 1], ["tanh", "identity"])
    X, Y, init = _data(network, 4, 0)
    optimizer = {"name": "gd", "lr": "0.3", "local_steps": 3}
    want = federated_trace(network, X, Y, init, {"name": "gd", "lr": "0.3"}, 2, 3,
                           clients=clients)
    got = simulate(network, X, Y, optimizer=optimizer, lr="0.3", epochs=2, init=init,
                   dps=60, clients=None if clients is None else
                   [{"samples": c, "weight": w} for c, w in clients])
    with mpmath.workdps(70):
        for a, b in zip(got.to_dict()["parameters"], want["parameters"]):
            assert max(abs(mpmath.mpf(p) - mpmath.mpf(q)) for p, q in zip(a, b)) < 1e-55


def test_fedavg_with_three_local_steps_is_recovered_to_its_digits():
    """Issue 25's first exact case: 2-3-1 tanh/identity, n = 4, K = 3 local full-batch
    steps per recorded step, 4 recorded steps (60 digits)."""
    network = Network([2, 3, 1], ["tanh", "identity"])
    X, Y, init = _data(network, 4, 0)
    trace = Trace.from_dict(federated_trace(network, X, Y, init,
                                            {"name": "gd", "lr": "0.3"}, 4, 3))
    assert trace.optimizer.local_steps == 3
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 30
    assert _error(solution, X, Y) < mpmath.mpf(10) ** -solution.digits


@pytest.mark.slow
def test_a_cross_entropy_classifier_with_five_local_steps_is_recovered_with_its_classes():
    """Issue 25's second exact case: 4-8-3 tanh/identity with cross-entropy, n = 6,
    K = 5 local full-batch steps per round, 2 rounds seen (60 digits; 163 s on a
    shared core)."""
    network = Network([4, 8, 3], ["tanh", "identity"])
    X, Y, init = _data(network, 6, 0, classes=True)
    trace = Trace.from_dict(federated_trace(network, X, Y, init, {"name": "gd", "lr": "0.5"},
                                            2, 5, loss="cross_entropy"))
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 30
    assert _error(solution, X, Y) < mpmath.mpf(10) ** -solution.digits
    assert sorted(solution.classes) == sorted(row.index("1") for row in Y)


@pytest.mark.slow
def test_local_minibatch_epochs_are_never_called_inconsistent():
    """Two local epochs of minibatches of 2 per round (K = 4, n = 4, the order recorded):
    the paths run on the one-step approximation, so fits from their ends that share a
    minimum are no evidence against an exact trace (they were: 'inconsistent', residual
    1e58 times the allowance); the search goes on and reaches the data."""
    network = Network([2, 3, 1], ["tanh", "identity"])
    X, Y, init = _data(network, 4, 0)
    rng = np.random.default_rng(100)
    batches = []
    for _ in range(4):
        rounds = []
        for _ in range(2):
            order = rng.permutation(4).tolist()
            rounds += [order[:2], order[2:]]
        batches.append(rounds)
    trace = Trace.from_dict(federated_trace(network, X, Y, init, {"name": "sgd", "lr": "0.3"},
                                            4, 4, batches=batches))
    solution = recover(trace)
    assert solution.status is not Status.INCONSISTENT, solution.message
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 30
    assert _error(solution, X, Y) < mpmath.mpf(10) ** -solution.digits


def test_the_rounding_allowance_of_a_float64_round_covers_float64s_rounding():
    """``floats.round_bounds``: rounds trained in float64 (numpy), each compared with the
    same round from the same recorded parameters at 40 digits; the difference over the
    learning rate stays inside the allowance, entry by entry (measured: 3% of it)."""
    from symbolic_inversion.floats import round_bounds
    network = Network([2, 3, 1], ["tanh", "identity"])
    X, Y, init = _data(network, 4, 0)
    optimizer = {"name": "gd", "lr": "0.3", "local_steps": 3}
    clients = [{"samples": 2, "weight": "2"}, {"samples": 2, "weight": "2"}]
    data = simulate(network, X, Y, lr="0.3", epochs=3, init=init, backend="numpy",
                    optimizer=optimizer, clients=clients).to_dict()
    trace = Trace.from_dict(dict(data, dtype="float64"))
    with mpmath.workdps(40):
        bounds = round_bounds(trace)
        assert trace.gradient_uncertainty() == max(max(row) for row in bounds)
        worst = 0
        for j in range(trace.steps):
            exact = simulate(network, X, Y, lr="0.3", epochs=1, optimizer=optimizer,
                             init=[str(v) for v in trace.parameters[j]], dps=40,
                             clients=clients)
            for a, b, bound in zip(exact.parameters[1], trace.parameters[j + 1], bounds[j]):
                error = abs(mpmath.mpf(str(a)) - mpmath.mpf(str(b))) / mpmath.mpf("0.3")
                worst = max(worst, error / bound)
        assert 0 < worst < 1


def test_unknown_minibatch_order_in_rounds_is_refused_with_the_reason():
    """The refusal named "sgd only" for an sgd trace; it names the rounds now."""
    from symbolic_inversion import NotSupportedError
    network = Network([1, 1], "tanh")
    trace = simulate(network, ["0.6", "0.2"], ["0.5", "0.4"], lr="0.25", epochs=2,
                     init=["0.5", "0.5"], dps=30, seed=0, record_batches=False,
                     optimizer={"name": "sgd", "lr": "0.25", "local_steps": 2,
                                "batch_size": 1})
    with pytest.raises(NotSupportedError, match="not local steps of federated rounds"):
        recover(trace)


def _neuron_rounds(clients, local_steps, optimizer="gd", rounds=4):
    xs, ys = ["0.6", "-0.3", "0.9"][:sum(c["samples"] for c in clients)], \
        ["0.5", "-0.2", "0.1"][:sum(c["samples"] for c in clients)]
    return simulate(Network([1, 1], "tanh"), xs, ys, lr="0.3", epochs=rounds,
                    init=["0.5", "0.5"], dps=50, clients=clients,
                    optimizer={"name": optimizer, "lr": "0.3", "local_steps": local_steps})


@pytest.mark.parametrize("clients, local_steps, optimizer, identified, shared", [
    # FedAvg's weights n_c / n, one gd step: one gradient of the pooled samples
    ([{"samples": 2, "weight": "2"}, {"samples": 1, "weight": "1"}], 1, "gd", "no", [[0, 1]]),
    # one step, per-sample weights 3/2 against 1: every client shows
    ([{"samples": 2, "weight": "3"}, {"samples": 1, "weight": "1"}], 1, "gd", "groups", []),
    # three clients, two of them with per-sample weight 1/2: those two pool
    ([{"samples": 1, "weight": "1"}, {"samples": 1, "weight": "1"},
      {"samples": 1, "weight": "3"}], 1, "gd", "partly", [[0, 1]]),
    # Adam's step is not linear in the gradient: groups, equal clients interchangeable
    ([{"samples": 1, "weight": "1"}, {"samples": 1, "weight": "1"}], 1, "adam", "groups",
     [[0, 1]]),
    # several local steps: groups
    ([{"samples": 2, "weight": "2"}, {"samples": 1, "weight": "1"}], 3, "gd", "groups", []),
])
def test_the_client_grouping_says_what_the_rounds_determine(clients, local_steps, optimizer,
                                                            identified, shared):
    from symbolic_inversion.solvers.symmetries import client_grouping
    grouping = client_grouping(_neuron_rounds(clients, local_steps, optimizer, rounds=1))
    assert grouping["identified"] == identified, grouping["message"]
    assert grouping.get("pooled", grouping.get("interchangeable")) == shared
    starts = np.cumsum([0] + [c["samples"] for c in clients])
    assert [g["samples"] for g in grouping["groups"]] == \
        [list(range(a, b)) for a, b in zip(starts[:-1], starts[1:])]


def test_two_clients_with_local_steps_are_recovered_grouped_by_client():
    """Two clients of the paper's neuron (one sample each, weights 2 and 1), K = 2 local
    gd steps, 4 rounds: each client's sample comes back in its own group."""
    clients = [{"samples": 1, "weight": "2"}, {"samples": 1, "weight": "1"}]
    trace = _neuron_rounds(clients, 2)
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.clients["identified"] == "groups"
    truth = [("0.6", "0.5"), ("-0.3", "-0.2")]
    with mpmath.workdps(60):
        for group, (x, y) in zip(solution.clients["groups"], truth):
            (found_x, found_y), = [solution.samples[i] for i in group["samples"]]
            assert abs(found_x[0] - mpmath.mpf(x)) < mpmath.mpf(10) ** -solution.digits
            assert abs(found_y[0] - mpmath.mpf(y)) < mpmath.mpf(10) ** -solution.digits
    assert "client 0: samples 0" in str(solution)


def _digits_client_round(activation, seed, images=3, hidden=24, K=3, lr=0.1,
                         dtype="float64"):
    """One FedAvg client's round as the server sees it: PyTorch ``dtype``, scikit-learn's
    digits (64 pixels / 16), 64-hidden-10, cross-entropy, K full-batch SGD steps;
    the trace from the state dicts sent and returned (what docs/flower.md's recorder
    writes per client) and the true images and classes."""
    torch = pytest.importorskip("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    from symbolic_inversion.torch import trace_from_state_dicts
    digits = datasets.load_digits()
    picked = np.random.default_rng(seed).choice(len(digits.images), images, replace=False)
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    X = torch.tensor(digits.images[picked].reshape(images, -1) / 16.0, dtype=torch_dtype)
    y = torch.tensor(digits.target[picked])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden),
                                {"gelu": torch.nn.GELU, "tanh": torch.nn.Tanh}[activation](),
                                torch.nn.Linear(hidden, 10)).to(torch_dtype)
    sent = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(K):
        optimizer.zero_grad()
        torch.nn.CrossEntropyLoss()(model(X), y).backward()
        optimizer.step()
    trace = trace_from_state_dicts([sent, model.state_dict()], model,
                                   {"name": "gd", "lr": repr(lr), "local_steps": K},
                                   images, loss=torch.nn.CrossEntropyLoss())
    return trace, X.double().numpy(), y.tolist()


def _assert_images_and_classes(solution, X, classes):
    """Every true image matched by a recovered one within the digits vouched for (at
    least one), and its class."""
    got = np.array([[float(v) for v in x] for x in solution.inputs])
    order = [int(np.argmin(np.abs(got - x).max(axis=1))) for x in X]
    assert sorted(order) == list(range(len(X)))
    error = max(np.abs(got[k] - x).max() for k, x in zip(order, X))
    assert 1 <= solution.digits and error <= 10.0 ** -solution.digits
    assert [solution.classes[k] for k in order] == classes


@pytest.mark.parametrize("activation, seed", [("gelu", 0), ("tanh", 1)])
def test_a_pytorch_digits_clients_round_of_local_steps_is_recovered_from_the_span_start(
        activation, seed):
    # the span start on the one-step approximation (its local-steps path), polished on
    # the exact K-step map: 222 unknowns that the searches without it do not reach
    trace, X, classes = _digits_client_round(activation, seed)
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.detail
    assert solution.stats["paths"][0]["path"] == "span"
    _assert_images_and_classes(solution, X, classes)


@pytest.mark.parametrize("activation, seed", [("gelu", 0), ("tanh", 1)])
def test_a_float32_digits_clients_round_vouches_for_digits_that_hold(activation, seed):
    # float32 rounds: the images are found to float32's resolution (about 5e-7) and the
    # digits come from the weighted least-squares fit's statistical error; the
    # worst-case bound over every rounding error of the K local steps (0.3-0.4 here)
    # would vouch for none
    trace, X, classes = _digits_client_round(activation, seed, dtype="float32")
    assert trace.dtype == "float32"
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.detail
    assert "statistical" in solution.detail
    _assert_images_and_classes(solution, X, classes)
