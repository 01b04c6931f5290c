"""How tight the rounding bounds of a float32 trace are: bound over true error.

For PyTorch float32 runs (``nn.Sequential``, ``torch.optim.SGD`` lr 0.1, full batch,
``nn.MSELoss()``, random data in [-1, 1]) and the toolkit's own float32 simulation of
a cross-entropy classifier, every seed:

- per equation, the bound on the observed gradient's rounding at the true data
  (:meth:`InversionSystem.rhs_uncertainties` with the data: backpropagation's running
  error analysis) over the true rounding (the residual of the exact system at the true
  data, computed at 40 digits): ``min`` must stay above 1, the median says how tight;
  beside it the data-free bound (``gamma_K`` times the largest gradient entry);
- end to end, ``recover``'s status, the decimals it vouches for, its error bound and the
  true error of the recovered data (the best matching of recovered to true samples).

Run: ``python benchmarks/bench_float_bounds.py [seeds]`` (default 4 seeds, about 12
minutes on one core; needs ``pip install torch``).
"""

import itertools
import sys
import time

import mpmath
import numpy as np
import torch

from symbolic_inversion import InversionSystem, Network, recover, simulate
from symbolic_inversion.torch import TraceRecorder


def torch_run(widths, activation, n, steps, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(activation())
    model = torch.nn.Sequential(*layers)
    X = torch.rand(n, widths[0]) * 2 - 1
    Y = torch.rand(n, widths[-1]) * 2 - 1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = TraceRecorder(model, optimizer, n)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(X), Y).backward()
        optimizer.step()
        recorder.record()
    return recorder.trace(), X.double().tolist(), Y.double().tolist()


def classifier_run(widths, n, steps, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, widths[0])).round(4).tolist()
    Y = np.eye(widths[-1])[rng.integers(0, widths[-1], n)].tolist()
    trace = simulate(Network(widths, ["tanh", "identity"]), X, Y, lr="0.1", epochs=steps,
                     seed=seed, dtype="float32", loss="cross_entropy")
    return trace, X, Y


CASES = [("torch 3-4-1 tanh, MSE", lambda s: torch_run([3, 4, 1], torch.nn.Tanh, 4, 6, s)),
         ("torch 4-6-2 sigmoid, MSE", lambda s: torch_run([4, 6, 2], torch.nn.Sigmoid, 5, 8, s)),
         ("float32 2-3-3 tanh, CE", lambda s: classifier_run([2, 3, 3], 3, 6, s))]


def measure(make, seed):
    trace, X, Y = make(seed)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(40):
        xs = [[mpmath.mpf(v) for v in x] for x in X]
        ys = [[mpmath.mpf(v) for v in y] for y in Y]
        true = [abs(v) for v in system.residual(xs, ys)]
        at_data = [float(b / t) for b, t in zip(system.rhs_uncertainties(xs, ys), true) if t]
        free = [float(b / t) for b, t in zip(system.rhs_uncertainties(), true) if t]
    started = time.perf_counter()
    solution = recover(trace)
    seconds = time.perf_counter() - started
    truth = [list(x) + list(y) for x, y in zip(X, Y)]
    got = [[float(v) for v in list(x) + list(y)] for x, y in solution.samples]
    error = min((max(abs(a - b) for g, t in zip(order, truth) for a, b in zip(g, t))
                 for order in itertools.permutations(got)), default=float("nan"))
    return (min(at_data), float(np.median(at_data)), min(free), float(np.median(free)),
            solution.status.value, solution.digits,
            float(solution.stats.get("error_bound", float("nan"))), error, seconds)


def main(seeds=4):
    print(f"{'run':26} {'seed':>4} {'min':>6} {'median':>7} {'free min':>9} "
          f"{'free med':>9}  {'status':18} {'digits':>6} {'bound':>9} {'true err':>9} "
          f"{'time s':>7}")
    for name, make in CASES:
        for seed in range(seeds):
            row = measure(make, seed)
            print(f"{name:26} {seed:4d} {row[0]:6.2f} {row[1]:7.1f} {row[2]:9.1f} "
                  f"{row[3]:9.0f}  {row[4]:18} {row[5]:6d} {row[6]:9.2e} {row[7]:9.2e} "
                  f"{row[8]:7.1f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
