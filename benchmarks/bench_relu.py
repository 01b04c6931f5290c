"""ReLU networks: how large a batch one gradient step gives away, exactly.

One command, one table: ``python benchmarks/bench_relu.py`` (under 10 minutes on 2 shared
cores; ``--quick`` about one; ``--large`` the 784-1024-1 cells; ``--full`` the whole grid).  For input dimension ``d``, hidden
width ``w`` (a ``d-w-1`` relu/identity network with biases) and batch ``n``: random
short-decimal data and parameters, one full-batch GD step recorded

- exactly (``simulate(..., backend="exact")``: the trace holds the exact step), and
- in float64 (``backend="numpy"``: what PyTorch would record),

then ``recover(trace, method="relu")``.  Columns: status; for exact traces whether every
input and label came back *equal* (rationals) to the truth; for float64 traces the
largest error and the digits the solver vouched for; the recovery time (simulation not
counted).  Per row the batches grow until the first failure, which is reported with its
reason; larger batches are not tried.
"""

import os

# One BLAS thread: the small products of the pattern search lose badly to thread
# oversubscription on a shared machine (set before numpy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402

from symbolic_inversion import Network, recover, simulate  # noqa: E402

SPEAR = ("SPEAR (Dimitrov et al., NeurIPS 2024): exact batches up to about b = 25 from one "
         "float64 gradient of a fully connected ReLU layer (widths 200-2000), at a cost "
         "exponential in b")

GRIDS = {
    "quick": {100: {64: [4, 8, 16], 256: [8, 16, 32]}},
    "default": {100: {64: [4, 8, 16, 32], 256: [16, 32, 64], 1024: [32, 64, 128]},
                784: {256: [16, 32, 64]}},
    "large": {784: {1024: [64, 128]}},
    "full": {d: {w: [4, 8, 16, 32, 64, 128] for w in (64, 128, 256, 512, 1024)}
             for d in (100, 784)},
}


class CellTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CellTimeout()


def _decimal(value, places):
    text = f"{value:.{places}f}"
    return text if float(text) else "0." + "0" * (places - 1) + "1"


def problem(d, w, n, seed):
    rng = np.random.default_rng(seed)
    network = Network([d, w, 1], ["relu", "identity"])
    X = [[_decimal(v, 2) for v in rng.uniform(-1, 1, d)] for _ in range(n)]
    Y = [[_decimal(v, 2) for v in rng.uniform(-1, 1, 1)] for _ in range(n)]
    init = [_decimal(v, 3) for v in rng.normal(0, 1 / np.sqrt(d), network.num_parameters)]
    return network, X, Y, init


def _max_error(found, X, Y):
    """Largest error after matching each true sample to its nearest recovered one."""
    truth = [np.array([float(v) for v in x + y]) for x, y in zip(X, Y)]
    got = [np.array([float(v) for v in list(x) + list(y)]) for x, y in found]
    if len(got) != len(truth):
        return float("inf")
    return max(min(np.max(np.abs(t - g)) for g in got) for t in truth)


def run_relu(trace, limit):
    """``(solution, seconds)`` of ``recover(trace, method="relu")``; the solution is
    ``None`` when ``limit`` seconds passed first."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    started = time.perf_counter()
    try:
        return recover(trace, method="relu"), time.perf_counter() - started
    except CellTimeout:
        return None, limit
    finally:
        signal.alarm(0)


def cell(d, w, n, kind, seed, limit):
    network, X, Y, init = problem(d, w, n, seed)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init,
                     backend="exact" if kind == "exact" else "numpy")
    solution, elapsed = run_relu(trace, limit)
    if solution is None:
        return {"status": "timeout", "time": limit, "reason": f"over {limit} s"}
    row = {"status": solution.status.value, "time": elapsed, "reason": solution.detail,
           "digits": solution.digits}
    if kind == "exact" and solution.samples:
        truth = sorted((tuple(Fraction(v) for v in x), tuple(Fraction(v) for v in y))
                       for x, y in zip(X, Y))
        found = sorted((tuple(x), tuple(y)) for x, y in solution.samples)
        row["exact"] = solution.stats.get("exact") and truth == found
    elif solution.samples:
        row["error"] = _max_error(solution.samples, X, Y)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="d = 100, widths 64 and 256")
    size.add_argument("--large", action="store_true",
                      help="d = 784, width 1024: batches 64 and 128 (about 10 minutes)")
    size.add_argument("--full", action="store_true", help="the whole grid (hours)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=300, help="seconds per recovery")
    parser.add_argument("--kinds", default="exact,float64")
    args = parser.parse_args(argv)
    grid = GRIDS["quick" if args.quick else "large" if args.large else
                 "full" if args.full else "default"]
    print(f"# ReLU batches from one GD step ({SPEAR})")
    print()
    print("| d | width | trace | n | status | exact / error (digits vouched) | time (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    failures = []
    for d, widths in grid.items():
        for w, batches in widths.items():
            for kind in args.kinds.split(","):
                for n in batches:
                    row = cell(d, w, n, kind, args.seed, args.limit)
                    if kind == "exact" and "exact" in row:
                        quality = "equal" if row["exact"] else "NOT equal"
                    elif "error" in row:
                        quality = f"{row['error']:.1e} ({row['digits']})"
                    else:
                        quality = "-"
                    print(f"| {d} | {w} | {kind} | {n} | {row['status']} | {quality} | "
                          f"{row['time']:.1f} |", flush=True)
                    if row["status"] != "converged":
                        failures.append(f"d={d}, width={w}, {kind}: first failure at n={n}: "
                                        f"{row['status']} ({row['reason']})")
                        break
    print()
    for line in failures or ["no failure in this grid"]:
        print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
