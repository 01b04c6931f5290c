"""Open Question 3, measured: fraction of the dataset recovered from SGD traces.

Single neuron tanh(w x + b), n = 4 samples uniform in [0, 1] (6 decimals), lr 0.1,
w0 = b0 = 0.5, 60-digit traces, recovery with ``recover()`` at 80 digits.  A sample
counts as recovered when it is within 1e-20 of the data that generated the trace and the
solver vouches for it (``recovered_fraction``).  Run: ``python benchmarks/bench_sgd.py``.
"""

import sys
import time

import mpmath
import numpy as np

from symbolic_inversion import Network, simulate
from symbolic_inversion.solvers import recover
from symbolic_inversion.solvers.sgd import recovered_fraction

NEURON = Network([1, 1], "tanh")


def measure(n, batch_size, epochs, known, seed, dps=60):
    rng = np.random.default_rng(seed)
    inputs = [float(v) for v in np.round(rng.uniform(0, 1, n), 6)]
    labels = [float(v) for v in np.round(rng.uniform(0, 1, n), 6)]
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=epochs, init=[0.5, 0.5],
                     dps=dps, optimizer="sgd", batch_size=batch_size, seed=seed,
                     record_batches=known)
    started = time.perf_counter()
    solution = recover(trace, dps=dps + 20)
    elapsed = time.perf_counter() - started
    with mpmath.workdps(dps + 20):
        truth_x = [[mpmath.mpf(repr(v))] for v in inputs]
        truth_y = [[mpmath.mpf(repr(v))] for v in labels]
        fraction = recovered_fraction(solution, truth_x, truth_y, mpmath.mpf(10) ** -20)
    return fraction, solution, elapsed


def main(seeds=(1, 2, 3), max_epochs=4):
    print(f"{'B':>2} {'epochs':>6} {'schedule':>8} {'recovered':>9}  {'status (per seed)':<45} "
          f"{'time s':>7}")
    for batch_size in (1, 2, 4):
        for epochs in range(1, max_epochs + 1):
            for known in ((False,) if batch_size in (1, 4) else (True, False)):
                results = [measure(4, batch_size, epochs, known, seed) for seed in seeds]
                fraction = sum(r[0] for r in results) / len(results)
                statuses = ",".join(r[1].status.value for r in results)
                seconds = sum(r[2] for r in results) / len(results)
                label = "n/a" if batch_size == 4 else ("known" if known else "unknown")
                print(f"{batch_size:>2} {epochs:>6} {label:>8} {fraction:>9.2f}  "
                      f"{statuses:<45} {seconds:>7.1f}", flush=True)


if __name__ == "__main__":
    main(max_epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 4)
