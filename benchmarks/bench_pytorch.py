"""The table the paper asked for: how much of the data a PyTorch training run leaks.

Every row trains in PyTorch 2.x on the CPU, records the run with ``TraceRecorder``
(full batch, the loss module declared) and calls ``recover``:

* MSE regressions: ``nn.Sequential`` networks, ``torch.optim.SGD`` lr 0.1,
  ``nn.MSELoss()``, ``2 n`` steps (at least ``ceil(unknowns / parameters) + 1``), data
  uniform in [0, 1];
* classifiers as people write them: ``class MLP(nn.Module)`` 2-4-3 with a tanh or GELU
  hidden layer (a function call in ``forward``), ``nn.CrossEntropyLoss()`` on class
  indices, 6 samples, 3 steps, ``torch.optim.SGD`` lr 0.5 or ``torch.optim.Adam`` lr
  0.05; inputs uniform in [-1, 1], classes uniform.

A sample counts as recovered when the status is ``converged`` and the sample (inputs and
label vector) is within ``10^-digits`` of a recovered one (``digits`` = the decimals the
toolkit vouches for, at least 1) and, for a classifier, its class is right; the table
shows the mean fraction, the median digits vouched for and the statuses (c converged, p
precision_limited, n not_converged, i inconsistent, ...).  A second table measures how
many digits of the gradient Adam's first step keeps (``|u| = lr |g| / (|g| + eps)``
undone as ``g = eps k / (1 - |k|)``) in float32 and float64.

Run: ``python benchmarks/bench_pytorch.py [seeds]`` (needs ``pip install torch``; the
default 3 seeds take about half an hour on one shared core, most of it the float32
classifiers' searches that end ``precision_limited``).
"""

import math
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from symbolic_inversion import recover
from symbolic_inversion.torch import TraceRecorder

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class MLP(nn.Module):
    """A classifier as people write it: the activation is a function call."""

    def __init__(self, activation):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 4), nn.Linear(4, 3)
        self.activation = activation

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(torch.tanh(h) if self.activation == "tanh" else F.gelu(h))


def sequential(layers, activations):
    modules = []
    for k, activation in enumerate(activations):
        modules.append(nn.Linear(layers[k], layers[k + 1]))
        if activation is not None:
            modules.append(activation())
    return nn.Sequential(*modules)


REGRESSIONS = [("1-1 tanh", [1, 1], [nn.Tanh], (1, 2, 4, 6)),
               ("2-2-1 tanh/id", [2, 2, 1], [nn.Tanh, None], (1, 2, 3)),
               ("3-4-2 tanh/id", [3, 4, 2], [nn.Tanh, None], (1, 3))]
CLASSIFIERS = [("MLP 2-4-3 tanh", "tanh"), ("MLP 2-4-3 gelu", "gelu")]
OPTIMIZERS = {"sgd": lambda p: torch.optim.SGD(p, lr=0.5),
              "adam": lambda p: torch.optim.Adam(p, lr=0.05)}


def _recovered(solution, truth, classes=None):
    """How many true samples (inputs + label vectors) a converged solution holds."""
    if not solution.ok or not solution.samples:
        return 0
    got = [np.array([float(v) for v in list(x) + list(y)]) for x, y in solution.samples]
    tolerance = 10.0 ** -max(solution.digits, 1)
    count = 0
    for k, sample in enumerate(truth):
        distances = [np.abs(g - sample).max() for g in got]
        nearest = int(np.argmin(distances))
        right_class = classes is None or solution.classes[nearest] == classes[k]
        count += distances[nearest] <= tolerance and right_class
    return count


def run_regression(layers, activations, n, dtype, seed):
    torch.manual_seed(seed)
    X = torch.rand(n, layers[0], dtype=dtype)
    Y = torch.rand(n, layers[-1], dtype=dtype)
    model = sequential(layers, activations).to(dtype)
    parameters = sum(p.numel() for p in model.parameters())
    steps = max(2 * n, -(-n * (layers[0] + layers[-1]) // parameters) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.MSELoss()
    solution, elapsed = train_and_recover(model, optimizer, criterion, X, Y, n, steps)
    truth = [np.concatenate([x, y]) for x, y in zip(X.double().numpy(), Y.double().numpy())]
    return _recovered(solution, truth) / n, solution.digits, solution.status.value, elapsed


def train_and_recover(model, optimizer, criterion, X, target, n, steps):
    """Full-batch training recorded step by step, then the recovery and its seconds."""
    recorder = TraceRecorder(model, optimizer, samples=n, loss=criterion)
    for _ in range(steps):
        optimizer.zero_grad()
        criterion(model(X), target).backward()
        optimizer.step()
        recorder.record()
    started = time.perf_counter()
    solution = recover(recorder.trace())
    return solution, time.perf_counter() - started


def run_classifier(activation, optimizer_name, dtype, seed, n=6, steps=3):
    torch.manual_seed(seed)
    model = MLP(activation).to(dtype)
    X = torch.rand(n, 2, dtype=dtype) * 2 - 1
    classes = torch.randint(0, 3, (n,))
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    criterion = nn.CrossEntropyLoss()
    solution, elapsed = train_and_recover(model, optimizer, criterion, X, classes, n, steps)
    truth = [np.concatenate([x, np.eye(3)[c]]) for x, c in zip(X.double().numpy(),
                                                              classes.tolist())]
    fraction = _recovered(solution, truth, classes.tolist()) / n
    return fraction, solution.digits, solution.status.value, elapsed


def adam_first_step_digits(dtype, seeds=20, lr=0.05):
    """Digits of the gradient kept by Adam's first step, undone from the parameters:
    per coordinate ``-log10(|g_observed - g| / |g|)`` against the gradient PyTorch
    computed (float64 autograd on the same values), over ``seeds`` classifiers; the
    median, the 10th percentile and the share of coordinates with no digit."""
    from symbolic_inversion.torch import optimizer_of
    digits = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model = MLP("tanh").to(dtype)
        X = torch.rand(6, 2, dtype=dtype) * 2 - 1
        classes = torch.randint(0, 3, (6,))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        before = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(model(X), classes).backward()
        gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
        optimizer.step()
        after = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
        rule = optimizer_of(optimizer)
        observed = rule.observed_gradients([before.numpy(), after.numpy()])[0]
        with np.errstate(all="ignore"):
            relative = np.abs(observed - gradient.numpy()) / np.abs(gradient.numpy())
        for value in relative[np.abs(gradient.numpy()) > 0]:
            digits.append(0.0 if not np.isfinite(value) or value >= 1 else
                          -math.log10(max(value, 1e-17)))
    digits = np.array(digits)
    return float(np.median(digits)), float(np.percentile(digits, 10)), \
        float(np.mean(digits == 0))


def main(seeds=3):
    header = (f"{'network':<16} {'loss':<4} {'optim':<5} {'n':>2} {'dtype':<8} "
              f"{'recovered':>9} {'digits':>6}  {'statuses':<10} {'time s':>6}")
    print(header)

    def row(name, loss, optimizer, n, dtype_name, results):
        fraction = statistics.mean(r[0] for r in results)
        digits = statistics.median(r[1] for r in results)
        statuses = "".join(r[2][0] for r in results)
        seconds = statistics.mean(r[3] for r in results)
        print(f"{name:<16} {loss:<4} {optimizer:<5} {n:>2} {dtype_name:<8} {fraction:>9.2f} "
              f"{digits:>6g}  {statuses:<10} {seconds:>6.1f}", flush=True)

    for name, activation in CLASSIFIERS:
        for optimizer in OPTIMIZERS:
            for dtype_name, dtype in DTYPES.items():
                results = [run_classifier(activation, optimizer, dtype, seed)
                           for seed in range(seeds)]
                row(name, "ce", optimizer, 6, dtype_name, results)
    for name, layers, activations, sizes in REGRESSIONS:
        for n in sizes:
            for dtype_name, dtype in DTYPES.items():
                results = [run_regression(layers, activations, n, dtype, seed)
                           for seed in range(seeds)]
                row(name, "mse", "sgd", n, dtype_name, results)
    print()
    print("Adam's first step undone (lr 0.05, eps 1e-8; 20 classifiers, 27 gradient "
          "entries each):")
    print(f"{'dtype':<8} {'median digits':>13} {'10th pct':>8} {'no digit':>8}")
    for dtype_name, dtype in DTYPES.items():
        median, low, none = adam_first_step_digits(dtype)
        print(f"{dtype_name:<8} {median:>13.1f} {low:>8.1f} {none:>8.0%}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
