"""solvers/span.py: every sample of a smooth network's batch from one gradient step.

The traces are made by ``simulate`` (exact 60-digit decimals, or float64 training); the
recovered data are compared with the data the trace was made from."""

import mpmath
import numpy as np
import pytest

from symbolic_inversion import Network, recover, simulate
from symbolic_inversion.solvers import Status
from symbolic_inversion.precision import refine_dps
from symbolic_inversion.solvers.evaluation import real_arithmetic
from symbolic_inversion.solvers.judge import Judge
from symbolic_inversion.solvers.span import layer_span, span_applies, span_start
from symbolic_inversion.system import InversionSystem


def _problem(layers, activations, n, seed, loss="mse"):
    """Random short-decimal parameters (fan-in scaled) and data."""
    rng = np.random.default_rng(seed)
    network = Network(layers, activations)
    init = []
    for (_, bias), fan_in, fan_out in zip(network.layer_slices(), network.layers[:-1],
                                          network.layers[1:]):
        init += [f"{v:.5f}" for v in rng.uniform(-1, 1, fan_in * fan_out) / np.sqrt(fan_in)]
        init += [f"{v:.5f}" for v in rng.uniform(-0.5, 0.5, fan_out)]
    X = [[f"{v:.4f}" for v in row] for row in rng.uniform(-1, 1, (n, layers[0]))]
    if loss == "cross_entropy":
        Y = [int(c) for c in rng.integers(0, layers[-1], n)]
    else:
        Y = [[f"{v:.4f}" for v in row] for row in rng.uniform(-1, 1, (n, layers[-1]))]
    return network, init, X, Y


def _largest_error(samples, X, Y, dps=80):
    """The largest difference between recovered samples and the truth (each recovered
    sample matched with the nearest true input), at ``dps`` digits."""
    with mpmath.workdps(dps):
        truth = [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y])
                 for x, y in zip(X, Y)]
        worst = mpmath.mpf(0)
        for x, y in samples:
            errors = [max(abs(a - b) for a, b in zip(x + y, tx + ty)) for tx, ty in truth]
            worst = max(worst, min(errors))
        return worst


@pytest.mark.parametrize("layers, n, seed", [
    ([12, 16, 1], 6, 3),    # the 12-16-1 tanh with six samples
    ([10, 16, 3], 5, 4),    # several outputs
])
def test_samples_from_one_exact_step(layers, n, seed):
    network, init, X, Y = _problem(layers, ["tanh", "identity"], n, seed=seed)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, dps=60)
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.stats["paths"][0]["path"] == "span"
    assert solution.digits >= 30
    assert len(solution.samples) == n
    # the digits vouched for hold against the data the trace was made from
    assert _largest_error(solution.samples, X, Y) < mpmath.mpf(10) ** -solution.digits


def test_start_of_a_float64_cross_entropy_classifier():
    network, init, X, Y = _problem([16, 32, 4], ["gelu", "identity"], 8, seed=5,
                                   loss="cross_entropy")
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, dtype="float64",
                     loss="cross_entropy")
    start = span_start(trace, seed=0)
    assert start.code == "found", start.reason
    truth = np.array(X, dtype=float)
    onehot = np.eye(4)[Y]
    match = [int(np.abs(truth - x).max(axis=1).argmin()) for x in start.inputs]
    assert sorted(match) == list(range(8))
    assert np.abs(start.inputs - truth[match]).max() < 1e-8
    # labels from the signals and the loss's link: the one-hot classes
    assert np.abs(start.labels - onehot[match]).max() < 1e-8


def test_a_start_that_does_not_explain_every_step_is_not_converged():
    # two steps whose second comes from other labels: the first step's samples are
    # found, the judge refines them on both steps and refuses them
    network, init, X, Y = _problem([8, 12, 1], ["tanh", "identity"], 4, seed=6)
    trace = simulate(network, X, Y, lr="0.1", epochs=2, init=init, dps=60)
    other = simulate(network, X, [[str(-float(y[0]))] for y in Y], lr="0.1", epochs=2,
                     init=init, dps=60)
    trace.parameters[2] = other.parameters[2]
    start = span_start(trace, seed=0)
    assert start.code == "found"
    judge = Judge(InversionSystem.from_trace(trace), refine_dps(trace),
                  real_arithmetic(None), "span")
    verdict = judge.judge([[mpmath.mpf(float(v)) for v in x] for x in start.inputs],
                          [[mpmath.mpf(float(v)) for v in y] for y in start.labels])
    assert verdict.status is Status.INCONSISTENT


def test_where_the_span_start_does_not_apply_it_says_why():
    network, init, X, Y = _problem([3, 8, 1], ["tanh", "identity"], 4, seed=7)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, dps=40)
    assert "rank bound" in span_applies(trace)       # n = 4 = fan-in + 1
    assert span_start(trace).code == "no_start"
    relu = Network([3, 8, 1], ["relu", "identity"])
    trace = simulate(relu, X[:2], Y[:2], lr="0.1", epochs=1, init=init, dps=40)
    assert "smooth" in span_applies(trace)
    linear = Network([3, 8, 1], ["identity", "identity"])
    trace = simulate(linear, X[:2], Y[:2], lr="0.1", epochs=1, init=init, dps=40)
    assert "nonlinear" in span_applies(trace)


def test_a_gradient_without_a_rank_gap_is_refused_with_its_singular_values():
    G = np.random.default_rng(0).normal(size=(10, 6))
    reason = layer_span(G, 3)
    assert isinstance(reason, str) and "no rank gap" in reason
    low = np.outer(np.arange(1, 11), np.arange(1, 7)).astype(float)
    assert "rank below" in layer_span(low, 3)


def test_a_search_without_rounds_reports_how_many_samples_it_found():
    network, init, X, Y = _problem([8, 12, 1], ["tanh", "identity"], 4, seed=8)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, dps=40)
    start = span_start(trace, rounds=0)
    assert start.code == "no_root" and "0 of 4 samples" in start.reason


def test_a_spurious_root_is_dropped_by_the_dual_test():
    # 12-16-1 with n = 8: each sample's 8 equations in 7 unknowns have one spare, and
    # the first round finds a root 0.2 away from every sample besides 7 samples; it
    # fails c_i^T S^-1 a_j = 0 against them and is dropped, the 8th sample is found
    network, init, X, Y = _problem([12, 16, 1], ["tanh", "identity"], 8, seed=0)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, dps=60)
    start = span_start(trace, seed=0)
    assert start.code == "found", start.reason
    truth = np.array(X, dtype=float)
    match = [int(np.abs(truth - x).max(axis=1).argmin()) for x in start.inputs]
    assert sorted(match) == list(range(8))
    assert np.abs(start.inputs - truth[match]).max() < 1e-8
    assert np.abs(start.labels - np.array(Y, dtype=float)[match]).max() < 1e-8


def test_start_of_a_float32_pytorch_digits_classifier():
    # one float32 PyTorch step of a 64-256-10 tanh classifier on 8 of scikit-learn's
    # digits: float32's rounding leaves a gap of only a few digits at n = 8, rank n is
    # taken anyway (n is known) and every image is found to float32's accuracy
    torch = pytest.importorskip("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    from symbolic_inversion.torch import TraceRecorder
    digits = datasets.load_digits()
    chosen = np.random.default_rng(0).choice(len(digits.data), 8, replace=False)
    X = torch.tensor(digits.data[chosen] / 16.0, dtype=torch.float32)
    classes = torch.tensor(digits.target[chosen])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Tanh(),
                                torch.nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss()
    recorder = TraceRecorder(model, optimizer, loss=criterion, samples=8)
    criterion(model(X), classes).backward()
    optimizer.step()
    recorder.record()
    trace = recorder.trace()
    assert trace.dtype == "float32"
    start = span_start(trace, seed=0)
    assert start.code == "found", start.reason
    truth = X.numpy().astype(float)
    match = [int(np.abs(truth - x).max(axis=1).argmin()) for x in start.inputs]
    assert sorted(match) == list(range(8))
    assert np.abs(start.inputs - truth[match]).max() < 1e-3
    assert start.labels.argmax(axis=1).tolist() == classes.numpy()[match].tolist()
