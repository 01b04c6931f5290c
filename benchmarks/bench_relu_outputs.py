"""ReLU networks with several outputs: how large a batch one gradient step gives away.

One command, one table: ``python benchmarks/bench_relu_outputs.py`` (d-w-10 networks,
d = 64 and 100, w = 256; batches 8 to 64; MSE and cross-entropy; about 20 minutes on 2
shared cores), ``--quick`` (batches 8 and 16), ``--large`` (784-1024-10 at b = 64 and 128,
784-2048-10 at b = 256, 784-512-256-10 and 100-256-10 at b = 64; the default limits
admit these networks).  ``--seeds 0,1,2`` runs every cell on several random batches.  ``--baseline /path/to/checkout`` runs every cell a second
time with that checkout's package (e.g. ``/work/main``: the version before the
alternating search) in a subprocess and prints its status next to this one.

Traces as in ``bench_relu.py``: random short-decimal inputs, labels and parameters, one
full-batch GD step recorded exactly (``simulate(..., backend="exact")``, MSE only: the
softmax of cross-entropy makes the step irrational) and in float64 (``backend="numpy"``:
what PyTorch would record); cross-entropy labels are random classes.  Then
``recover(trace, method="relu")``.  Columns: status; patterns found of n; for exact traces
whether every input and label came back *equal* (rationals) to the truth, for float64
traces the largest error of inputs and labels (classes for cross-entropy: whether each
recovered label is the one-hot of the true class) and the digits vouched for; the
recovery time (simulation not counted).  ``--kinds float32`` (with torch and
scikit-learn installed): PyTorch itself, float32, one ``loss.backward()`` and
``SGD.step()`` on ``n`` of scikit-learn's 8 x 8 digits with PyTorch's default
initialisation (``torch_digits.py``; d = 64 networks only), recorded by
``TraceRecorder``; the same columns.
"""

import os

# One BLAS thread: the small products of the pattern search lose badly to thread
# oversubscription on a shared machine (set before numpy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402

from symbolic_inversion import Network, get_loss, simulate  # noqa: E402
from bench_relu import SPEAR, _decimal, run_relu  # noqa: E402
from torch_digits import digits_step  # noqa: E402

GRIDS = {
    "quick": [((64, 256, 10), [8, 16]), ((100, 256, 10), [8, 16])],
    "default": [((64, 256, 10), [8, 16, 32, 64]), ((100, 256, 10), [8, 16, 32, 64])],
    "large": [((784, 1024, 10), [64, 128]), ((784, 2048, 10), [256]),
              ((784, 512, 256, 10), [64]), ((100, 256, 10), [64])],
}


def problem(layers, n, loss, seed):
    """Network, inputs, labels (classes for cross-entropy) and initial parameters."""
    rng = np.random.default_rng(seed)
    network = Network(list(layers), ["relu"] * (len(layers) - 2) + ["identity"])
    X = [[_decimal(v, 2) for v in rng.uniform(-1, 1, layers[0])] for _ in range(n)]
    if loss == "mse":
        Y = [[_decimal(v, 2) for v in rng.uniform(-1, 1, layers[-1])] for _ in range(n)]
    else:
        Y = [int(c) for c in rng.integers(0, layers[-1], n)]
    init = [_decimal(v, 3) for v in rng.normal(0, 1 / np.sqrt(layers[0]),
                                               network.num_parameters)]
    return network, X, Y, init


def cell(layers, n, loss, kind, seed, limit):
    """One recovery: a dict of status, patterns, quality and time."""
    if kind == "float32":
        trace, X, onehot = digits_step(layers, "relu", loss, n, seed)
        Y = [int(np.argmax(y)) for y in onehot] if loss != "mse" else onehot
    else:
        network, X, Y, init = problem(layers, n, loss, seed)
        trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, loss=loss,
                         backend="exact" if kind == "exact" else "numpy")
    started = time.perf_counter()
    try:
        solution, elapsed = run_relu(trace, limit)
    except Exception as error:   # the old version refuses cross-entropy by name
        return {"status": type(error).__name__, "time": time.perf_counter() - started,
                "reason": str(error)[:200]}
    if solution is None:
        return {"status": "timeout", "time": limit, "reason": f"over {limit} s"}
    row = {"status": solution.status.value, "time": elapsed,
           "reason": solution.detail, "digits": solution.digits,
           "patterns": solution.stats.get("patterns_found")}
    if not solution.samples:
        return row
    if loss == "mse" and kind == "exact":
        truth = sorted((tuple(Fraction(v) for v in x), tuple(Fraction(v) for v in y))
                       for x, y in zip(X, Y))
        found = sorted((tuple(Fraction(v) for v in x), tuple(Fraction(v) for v in y))
                       for x, y in solution.samples)
        row["equal"] = bool(solution.stats.get("exact")) and truth == found
        return row
    # float: match each true sample to the nearest recovered input
    got = [(np.array([float(v) for v in x]), [float(v) for v in y])
           for x, y in solution.samples]
    error, classes_right = 0.0, len(got) == n
    ce = get_loss("cross_entropy")
    for x, y in zip(X, Y):
        x = np.array([float(v) for v in x])
        found_x, found_y = min(got, key=lambda pair: np.max(np.abs(pair[0] - x)))
        error = max(error, float(np.max(np.abs(found_x - x))))
        if loss == "mse":
            error = max(error, max(abs(a - float(b)) for a, b in zip(found_y, y)))
        else:
            # one-hot to the digits vouched for (float32: about 4)
            classes_right &= ce.label_class(
                found_y, max(1e-6, 10.0 ** -solution.digits)) == y
    row["error"] = error
    if loss != "mse":
        row["classes"] = bool(classes_right)
    return row


def baseline_cell(root, layers, n, loss, kind, seed, limit):
    """The same cell with the package of checkout ``root`` (a subprocess)."""
    command = [sys.executable, os.path.abspath(__file__), "--one",
               json.dumps([list(layers), n, loss, kind, seed, limit])]
    environment = dict(os.environ, PYTHONPATH=root)
    try:
        done = subprocess.run(command, env=environment, capture_output=True, text=True,
                              timeout=limit + 600)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "time": limit}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"status": "crashed", "time": 0, "reason": done.stderr[-200:]}


def _quality(row, loss, kind):
    if "equal" in row:
        return "equal" if row["equal"] else "NOT equal"
    if "error" in row:
        text = f"{row['error']:.1e} ({row['digits']})"
        if loss != "mse":
            text += ", classes " + ("right" if row["classes"] else "WRONG")
        return text
    return "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="batches 8 and 16")
    size.add_argument("--large", action="store_true",
                      help="784-1024-10 (b = 64, 128), 784-2048-10 (b = 256), "
                         "784-512-256-10 and 100-256-10 (b = 64)")
    parser.add_argument("--seeds", default="0", help="random batches, e.g. 0,1,2")
    parser.add_argument("--limit", type=int, default=300, help="seconds per recovery")
    parser.add_argument("--losses", default="mse,cross_entropy")
    parser.add_argument("--kinds", default="exact,float64")
    parser.add_argument("--batches", help="only these batch sizes (e.g. 64)")
    parser.add_argument("--baseline", metavar="CHECKOUT",
                        help="also run every cell with this checkout's package")
    parser.add_argument("--one", help=argparse.SUPPRESS)   # a baseline's subprocess
    args = parser.parse_args(argv)
    if args.one:
        layers, n, loss, kind, seed, limit = json.loads(args.one)
        print(json.dumps(cell(layers, n, loss, kind, seed, limit), default=str))
        return 0
    grid = GRIDS["quick" if args.quick else "large" if args.large else "default"]
    print("# ReLU networks with several outputs: batches from one GD step")
    print()
    print(f"{SPEAR}; SPEAR++ (2025) reports about ten times larger batches with sparse "
          "dictionary learning.")
    print()
    header = "| network | loss | trace | n | seed | status | patterns | " \
             "exact / error (digits) | time (s) |"
    if args.baseline:
        header += " baseline status | baseline patterns | baseline time (s) |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for layers, batches in grid:
        if args.batches:
            batches = [int(b) for b in args.batches.split(",")]
        name = "-".join(map(str, layers))
        for loss in args.losses.split(","):
            for kind in args.kinds.split(","):
                if kind == "exact" and loss != "mse":
                    continue   # softmax: no exact trace of rational data
                if kind == "float32" and layers[0] != 64:
                    continue   # PyTorch on the 8 x 8 digits
                for n in batches:
                    for seed in [int(v) for v in args.seeds.split(",")]:
                        row = cell(layers, n, loss, kind, seed, args.limit)
                        line = (f"| {name} | {loss} | {kind} | {n} | {seed} | "
                                f"{row['status']} | {row.get('patterns', '-')} | "
                                f"{_quality(row, loss, kind)} | {row['time']:.1f} |")
                        if args.baseline:
                            old = baseline_cell(args.baseline, layers, n, loss, kind,
                                                seed, args.limit)
                            line += (f" {old['status']} | {old.get('patterns', '-')} | "
                                     f"{old['time']:.1f} |")
                        print(line, flush=True)
                        if row["status"] != "converged":
                            print(f"|  |  |  |  |  | reason: {str(row.get('reason'))[:150]} |"
                                  + "  |" * (header.count("|") - 7), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
