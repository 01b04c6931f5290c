"""Smooth networks from ONE gradient step (FedSGD): the span start (issue 24).

One command, one table: ``python benchmarks/bench_fedsgd.py`` (about 2 minutes on 2 shared
cores; ``--seeds 3`` three datasets per row; ``--baseline 120`` also runs the cold start
without the span start, each cell cut at that many seconds; ``--max-seconds 120`` gives
every recovery that budget, ``recover(..., max_seconds=120)``, whose end is a status;
``--rows 7 --batch 32`` one row at another batch size).  For each row: random data
and fan-in scaled parameters (short decimals), one full-batch GD step recorded

- ``exact``: 60 significant digits (``simulate(..., dps=60)``; smooth activations have
  no exact rational step), or
- ``float64``: trained in float64 (``simulate(..., dtype="float64")``: what PyTorch on a
  CPU records), or
- ``float32``: PyTorch itself, float32, one ``loss.backward()`` and ``SGD.step()`` of a
  digits classifier (scikit-learn's 8 x 8 digits, PyTorch's default initialisation;
  ``torch_digits.py``), recorded by ``TraceRecorder`` (rows left out without torch),

then ``recover(trace)``.  Columns: network, activation, loss, dtype, batch ``b``; the
status, the digits vouched for, the largest true error (each true sample matched with
the nearest recovered one, inputs and labels, at 80 digits), the recovery time
(simulation not counted) and the kind of start that led to the answer.

Before the span start (issue 24's measurements, same machine): 12-16-1 tanh n = 6 exact,
no answer in 300 s; 20-32-3 tanh n = 8 exact, converged in 83 s; 64-256-10 tanh or gelu
with cross-entropy, b = 32, float64: nothing (the judge's multiprecision refinement of a
19,210 x 2,368 Jacobian did not finish its first iteration in 3 minutes).
"""

import os

# One BLAS thread: many small products; threads only wait on a shared machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import mpmath  # noqa: E402
import numpy as np  # noqa: E402

from symbolic_inversion import Network, recover, simulate  # noqa: E402
from torch_digits import available, digits_step  # noqa: E402

# (layers, activation of the hidden layer, loss, dtype, batch)
ROWS = [
    ([12, 16, 1], "tanh", "mse", "exact", 6),
    ([20, 32, 3], "tanh", "mse", "exact", 8),
    ([20, 32, 3], "gelu", "cross_entropy", "exact", 8),
    ([12, 16, 1], "tanh", "mse", "float64", 6),
    ([64, 256, 10], "tanh", "cross_entropy", "float64", 32),
    ([64, 256, 10], "gelu", "cross_entropy", "float64", 32),
    ([64, 256, 10], "tanh", "cross_entropy", "float32", 16),
    ([64, 256, 10], "gelu", "cross_entropy", "float32", 16),
]
ROWS = [tuple(row) for row in ROWS]


class CellTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CellTimeout()


def problem(layers, activation, loss, n, seed):
    """Network, fan-in scaled initial parameters, inputs in [-1, 1] (4 decimals) and
    labels (classes for cross-entropy)."""
    rng = np.random.default_rng(seed)
    network = Network(layers, [activation, "identity"])
    init = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        init += [f"{v:.5f}" for v in rng.uniform(-1, 1, fan_in * fan_out) / np.sqrt(fan_in)]
        init += [f"{v:.5f}" for v in rng.uniform(-0.5, 0.5, fan_out)]
    X = [[f"{v:.4f}" for v in row] for row in rng.uniform(-1, 1, (n, layers[0]))]
    if loss == "cross_entropy":
        Y = [int(c) for c in rng.integers(0, layers[-1], n)]
        labels = np.eye(layers[-1])[Y].tolist()
    else:
        Y = [[f"{v:.4f}" for v in row] for row in rng.uniform(-1, 1, (n, layers[-1]))]
        labels = Y
    return network, init, X, Y, labels


def true_error(samples, X, labels):
    """Largest error of the recovery: each true sample against its nearest recovered
    one (inputs and labels), at 80 digits; inf when samples are missing."""
    if len(samples) != len(X):
        return mpmath.inf
    with mpmath.workdps(80):
        found = [[mpmath.mpf(v) for v in list(x) + list(y)] for x, y in samples]
        worst = mpmath.mpf(0)
        for x, y in zip(X, labels):
            truth = [mpmath.mpf(v) for v in list(x) + list(y)]
            worst = max(worst, min(max(abs(a - b) for a, b in zip(truth, other))
                                   for other in found))
        return worst


def cell(row, seed, limit=None, span=True, max_seconds=None):
    layers, activation, loss, dtype, n = row
    if dtype == "float32":
        trace, X, labels = digits_step(layers, activation, loss, n, seed)
    else:
        network, init, X, Y, labels = problem(layers, activation, loss, n, seed)
        options = {"dtype": "float64"} if dtype == "float64" else {"dps": 60}
        trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, loss=loss,
                         **options)
    if not span:   # the cold start as it was: no span kind in its schedule
        from symbolic_inversion.solvers import pipeline
        original = pipeline.span_applies
        pipeline.span_applies = lambda trace, used=None: "disabled (baseline)"
    started = time.perf_counter()
    if limit:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(int(limit))
    try:
        solution = recover(trace, max_seconds=max_seconds)
        seconds = time.perf_counter() - started
        paths = solution.stats.get("paths") or []
        accepted = [p.get("path") for p in paths if p.get("status") == solution.status.value]
        return {"status": solution.status.value, "digits": solution.digits,
                "error": true_error(solution.samples, X, labels), "seconds": seconds,
                "start": accepted[-1] if accepted else "-"}
    except CellTimeout:
        return {"status": f"no answer in {limit} s", "digits": 0, "error": mpmath.inf,
                "seconds": time.perf_counter() - started, "start": "-"}
    finally:
        if limit:
            signal.alarm(0)
        if not span:
            pipeline.span_applies = original


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="datasets per row")
    parser.add_argument("--baseline", type=float, default=0,
                        help="also run the cold start without the span start, cut at "
                             "this many seconds (0: not run)")
    parser.add_argument("--rows", type=str, default="",
                        help="comma-separated row numbers (default: all)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="recover(..., max_seconds=S): the status when the budget is "
                             "spent (default: no budget)")
    parser.add_argument("--batch", type=int, default=None,
                        help="the batch size of every row chosen (default: each row's)")
    args = parser.parse_args(argv)
    rows = [ROWS[int(k)] for k in args.rows.split(",")] if args.rows else ROWS
    rows = [row for row in rows if row[3] != "float32" or available()]
    if args.batch:
        rows = [row[:4] + (args.batch,) for row in rows]
    print("One gradient step (FedSGD). For comparison (their papers, ReLU layers): SPEAR "
          "(Dimitrov et al., NeurIPS 2024)\nrecovers batches exactly up to about b = 25 "
          "from one float64 gradient, at a cost exponential in b;\nSPEAR++ (2025) reports "
          "about ten times larger batches with sparse dictionary learning. ReLU\nclassifiers:"
          " benchmarks/bench_relu_outputs.py; smooth activations: this table.\n")
    header = (f"{'network':<11} {'act':<5} {'loss':<14} {'dtype':<8} {'b':>3} {'seed':>4}  "
              f"{'status':<22} {'digits':>6} {'true error':>10} {'time':>8}  start")
    print(header)
    print("-" * len(header))
    for row in rows:
        layers, activation, loss, dtype, n = row
        for seed in range(args.seeds):
            runs = [("", cell(row, seed, max_seconds=args.max_seconds))]
            if args.baseline:
                runs.append((" (before)", cell(row, seed, args.baseline, span=False)))
            for tag, r in runs:
                name = "-".join(map(str, layers))
                print(f"{name:<11} {activation:<5} {loss:<14} {dtype:<8} {n:>3} {seed:>4}  "
                      f"{r['status'] + tag:<22} {r['digits']:>6} "
                      f"{mpmath.nstr(r['error'], 2):>10} {r['seconds']:>7.1f}s  {r['start']}",
                      flush=True)


if __name__ == "__main__":
    main()
