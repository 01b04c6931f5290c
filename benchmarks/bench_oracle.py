"""Reconstruction from the loss alone: loss evaluations and time across sizes.

Run ``python benchmarks/bench_oracle.py`` (add ``--quick`` for a short table;
``--baseline REV [--repeat K]`` runs that git revision's toolkit beside this checkout,
case by case in worker processes taking turns, each case up to K times per version, the
fastest kept: see ``versions.py``).  Each row
builds an exact black box from a random ReLU network's dataset, reconstructs the
architecture and the data from loss values only, and checks them against the hidden
dataset (exact equality in exact mode, 10^-20 in the mpmath rows).
"""

import argparse
import os
import random
import sys
import time
from fractions import Fraction

import mpmath

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if "symbolic_inversion" not in sys.modules:  # a Versions worker has put its version first
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from versions import Versions  # noqa: E402
from symbolic_inversion import Network  # noqa: E402
from symbolic_inversion.oracle import LossOracle, reconstruct_from_loss  # noqa: E402

CASES = [  # (layers, samples, bias, dps)
    ([3, 2, 1], 3, True, None),
    ([2, 3, 1], 2, True, None),
    ([3, 4, 2], 4, True, None),
    ([5, 4, 1], 6, True, None),
    ([4, 3, 2, 1], 4, True, None),
    ([3, 3, 3, 2], 5, True, None),
    ([3, 2, 2, 2, 1], 3, True, None),
    ([2, 2, 2, 2, 2, 1], 3, True, None),
    ([2, 2, 2, 2, 2, 2, 1], 3, True, None),
    ([6, 5, 1], 8, True, None),
    ([3, 2, 1], 3, False, None),
    ([3, 3, 2, 1], 4, False, None),
    ([3, 2, 1], 3, True, 50),
    ([3, 3, 2, 1], 4, True, 50),
    ([3, 2, 1], 3, True, 30),
]
QUICK = CASES[:3] + CASES[10:11] + CASES[12:13]


def dataset(layers, n, seed):
    rng = random.Random(seed)

    def number():
        return Fraction(rng.randint(-9, 9), rng.randint(1, 7))

    return ([[number() for _ in range(layers[0])] for _ in range(n)],
            [[number() for _ in range(layers[-1])] for _ in range(n)])


def run(layers, n, bias, dps, seed=0):
    network = Network(layers, ["relu"] * (len(layers) - 2) + ["identity"], bias=bias)
    inputs, labels = dataset(layers, n, seed)
    oracle = LossOracle(network, inputs, labels, dps=dps)
    started = time.perf_counter()
    result = reconstruct_from_loss(oracle, oracle.num_parameters, dps=dps, seed=seed)
    elapsed = time.perf_counter() - started
    truth = sorted(zip(map(tuple, oracle.inputs), map(tuple, oracle.labels)))
    if dps is None:
        found = sorted((tuple(s["x"]), tuple(s["y"])) for s in result.samples)
        data_ok = found == truth
    else:
        with mpmath.workdps(dps):
            data_ok = len(result.samples) == n and all(
                min(max(abs(a - b) for a, b in zip(s["x"] + s["y"], x + y))
                    for x, y in truth) < mpmath.mpf(10) ** -20 for s in result.samples)
    return result, elapsed, data_ok and result.layers == layers


def run_case(index):
    """Case ``index`` of :data:`CASES` in the version this process imports (JSON in and
    out, for ``versions.py``)."""
    layers, n, bias, dps = CASES[index]
    result, elapsed, correct = run(layers, n, bias, dps)
    counts = result.evaluation_counts
    # without a bias "correct" means: right under the stated one-sample-per-direction
    # assumption, with the ambiguity reported (status ambiguous)
    expected = "recovered" if bias else "ambiguous"
    return {"status": result.status, "architecture": counts.get("architecture", 0),
            "evaluations": result.evaluations, "time": elapsed,
            "correct": bool(correct and result.status == expected)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small cases only")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run the toolkit of this git revision, case by case")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="run each case up to K times per version and keep the fastest "
                             "(runs over 1 s are not repeated; default 1)")
    args = parser.parse_args(argv)
    header = (f"{'architecture':<22} {'bias':<5} {'n':>3} {'arith':<6} {'version':>16} "
              f"{'status':<10} {'arch evals':>10} {'data evals':>10} {'total':>7} "
              f"{'time s':>7}  correct")
    print(header)
    print("-" * len(header))
    failures = 0
    with Versions(args.baseline) as versions:
        for case in (QUICK if args.quick else CASES):
            layers, n, bias, dps = case
            index = CASES.index(case)
            for worker in versions.workers:
                row = worker.fastest("bench_oracle", "run_case", args.repeat, index=index)
                failures += worker.label == "current" and not row["correct"]
                data = row["evaluations"] - row["architecture"]
                print(f"{str(layers):<22} {'yes' if bias else 'no':<5} {n:>3} "
                      f"{'exact' if dps is None else str(dps) + 'd':<6} {worker.label:>16} "
                      f"{row['status']:<10} {row['architecture']:>10} {data:>10} "
                      f"{row['evaluations']:>7} {row['time']:>7.2f}  "
                      f"{'yes' if row['correct'] else 'NO'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
