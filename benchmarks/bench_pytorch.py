"""The table the paper asked for: how much of the data a PyTorch training run leaks.

For every network x n x dtype: train in PyTorch 2.x on the CPU (``nn.Sequential``,
``torch.optim.SGD`` lr 0.1, full batch, ``nn.MSELoss()`` with its default mean, ``2 n``
steps, at least ``ceil(unknowns / parameters) + 1``), data uniform in [0, 1] and a
random initialisation from the seed; record with ``TraceRecorder``; ``recover``.  A
sample counts as recovered when the status is ``converged`` and the sample is within
``10^-digits`` of a recovered one (``digits`` = the decimals the toolkit vouches for,
at least 1); the table shows the mean fraction, the median digits vouched for and the
statuses (c converged, p precision_limited, n not_converged, i inconsistent, ...).

Run: ``python benchmarks/bench_pytorch.py [seeds]`` (needs ``pip install torch``; the
default 3 seeds take a few minutes on one core).
"""

import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

from symbolic_inversion import recover
from symbolic_inversion.torch import TraceRecorder

NETWORKS = [("1-1 tanh", [1, 1], [nn.Tanh]),
            ("2-2-1 tanh/id", [2, 2, 1], [nn.Tanh, None]),
            ("3-4-2 tanh/id", [3, 4, 2], [nn.Tanh, None])]
SIZES = {"1-1 tanh": (1, 2, 4, 6), "2-2-1 tanh/id": (1, 2, 3), "3-4-2 tanh/id": (1, 3)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def model_of(layers, activations, dtype):
    modules = []
    for k, activation in enumerate(activations):
        modules.append(nn.Linear(layers[k], layers[k + 1]))
        if activation is not None:
            modules.append(activation())
    return nn.Sequential(*modules).to(dtype)


def run_case(layers, activations, n, dtype, seed):
    torch.manual_seed(seed)
    X = torch.rand(n, layers[0], dtype=dtype)
    Y = torch.rand(n, layers[-1], dtype=dtype)
    model = model_of(layers, activations, dtype)
    parameters = sum(p.numel() for p in model.parameters())
    steps = max(2 * n, -(-n * (layers[0] + layers[-1]) // parameters) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = TraceRecorder(model, optimizer, samples=n)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.MSELoss()(model(X), Y).backward()
        optimizer.step()
        recorder.record()
    started = time.perf_counter()
    solution = recover(recorder.trace())
    elapsed = time.perf_counter() - started
    recovered = 0
    if solution.ok and solution.samples:
        got = [np.array([float(v) for v in list(x) + list(y)]) for x, y in solution.samples]
        tolerance = 10.0 ** -max(solution.digits, 1)
        for x, y in zip(X.double().numpy(), Y.double().numpy()):
            truth = np.concatenate([x, y])
            recovered += min(np.abs(g - truth).max() for g in got) <= tolerance
    return recovered / n, solution.digits, solution.status.value, elapsed


def main(seeds=3):
    print(f"{'network':<14} {'n':>2} {'dtype':<8} {'recovered':>9} {'digits':>6}  "
          f"{'statuses':<10} {'time s':>6}")
    for name, layers, activations in NETWORKS:
        for n in SIZES[name]:
            for dtype_name, dtype in DTYPES.items():
                results = [run_case(layers, activations, n, dtype, seed)
                           for seed in range(seeds)]
                fraction = statistics.mean(r[0] for r in results)
                digits = statistics.median(r[1] for r in results)
                statuses = "".join(r[2][0] for r in results)
                seconds = statistics.mean(r[3] for r in results)
                print(f"{name:<14} {n:>2} {dtype_name:<8} {fraction:>9.2f} {digits:>6g}  "
                      f"{statuses:<10} {seconds:>6.1f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
