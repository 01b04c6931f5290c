"""One float32 PyTorch step of a digits classifier (cross-entropy, mean): ``recover``
must say ``converged`` with digits that hold against the true images and classes."""

import numpy as np
import pytest

from symbolic_inversion import recover
from symbolic_inversion.solvers.solution import match_samples


def digits_step(activation, hidden, samples, seed):
    """``(trace, images, one-hot labels)`` of one float32 SGD step of a
    64-``hidden``-10 classifier on ``samples`` distinct scikit-learn digits."""
    torch = pytest.importorskip("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    from symbolic_inversion.torch import TraceRecorder
    digits = datasets.load_digits()
    chosen = np.random.default_rng(seed).choice(len(digits.data), samples, replace=False)
    X = torch.tensor(digits.data[chosen] / 16.0, dtype=torch.float32)
    classes = torch.tensor(digits.target[chosen])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), activation(),
                                torch.nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss()
    recorder = TraceRecorder(model, optimizer, loss=criterion, samples=samples)
    criterion(model(X), classes).backward()
    optimizer.step()
    recorder.record()
    trace = recorder.trace()
    assert trace.dtype == "float32"
    return trace, X.numpy().astype(float), np.eye(10)[classes.numpy()]


def matched(solution, images, labels):
    """``(order, largest error)``: the recovered samples paired with the true ones (their
    order is not identifiable) and the largest error of inputs and labels."""
    order, error = match_samples(
        [([float(v) for v in x], [float(v) for v in y]) for x, y in solution.samples],
        [(list(x), list(y)) for x, y in zip(images, labels)])
    return order, float(error)


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_relu_digits_classifier(seed):
    torch = pytest.importorskip("torch")
    trace, images, labels = digits_step(torch.nn.ReLU, 128, 8, seed)
    solution = recover(trace)
    assert solution.stats["method"] == "relu"
    assert solution.status.value == "converged", solution.detail
    assert solution.digits >= 3
    order, error = matched(solution, images, labels)
    assert error <= 10.0 ** -solution.digits
    assert solution.classes == labels.argmax(axis=1)[order].tolist()


@pytest.mark.parametrize("activation", ["Tanh", "GELU"])
def test_float32_smooth_digits_classifier(activation):
    # the span start and the float64 judge; float32's rounding moves the least-squares
    # fit of a smooth classifier by about 1e-4 (labels up to 1.5e-3 at 64-256-10,
    # b = 16), so fewer digits are vouched for than with ReLU, but they hold
    torch = pytest.importorskip("torch")
    trace, images, labels = digits_step(getattr(torch.nn, activation), 128, 8, 0)
    solution = recover(trace)
    assert solution.status.value == "converged", solution.detail
    assert solution.digits >= 2
    order, error = matched(solution, images, labels)
    assert error <= 10.0 ** -solution.digits
    assert solution.classes == labels.argmax(axis=1)[order].tolist()
