"""Cold-start recovery across networks (issue 11), next to an older version of the toolkit.

    python benchmarks/bench_networks.py [--datasets 5] [--baseline 0fc847c]
        [--baseline-datasets K] [--quick] [--cases NAME,...] [--timeout S] [--repeat K]
        [--neuron-scale [SIZES]]

For every case: ``--datasets`` random datasets (inputs and labels uniform in [-1, 1], 6
decimals, seeded; initial parameters uniform in [-1, 1], seeded), full-batch GD with
lr 0.1 recorded exactly to the case's digits, then ``recover(trace)``.  A recovery
*succeeds* when

* the data are identifiable: status ``converged`` and the data within the digits vouched
  for (``10^-digits``, after matching the samples);
* the network family has a data symmetry: status ``not_unique`` with that symmetry named
  and the representative equal to the truth up to it (sign: per-sample signs; moments:
  the same moments; duplicate samples: within 1e-10);
* the trace is square with a wrong learning rate ("lr off"): the report says ``square``
  (such a trace cannot test its own consistency).

``--baseline REV`` runs that revision's toolkit on the same traces in a second process
(``versions.py``), on only the first ``--baseline-datasets`` datasets (it is slow: up to
minutes per dataset), each under ``--timeout`` seconds (a timeout is a failure).  The
table prints, per case and version: unknowns, successes, statuses, the worst error and
the fewest digits vouched for, median and maximum time per dataset.  ``--repeat K``
runs every dataset up to K times per version, the versions taking turns, and keeps the
fastest (:meth:`versions.Worker.fastest`): what ``side_by_side.py`` uses, so a short
case's time is the recovery's and not a one-off cost's.

``--neuron-scale`` (issue 26) runs only the paper's neuron at n = 24, 32, 48, 64 (or the
comma-separated ``SIZES``) on three input ranges, [0, 1] (labels in [0, 1], as the
paper), [-1, 1.5] and [-3, 3] (labels in [-0.8, 0.9]): E = 2n steps, 40 + 4n digits,
init (0.5, 0.5); the worst time matters as much as the median.  These rows are not in
the default run (minutes per dataset).
"""

import argparse
import os
import random
import signal
import statistics
import sys
import time

import mpmath

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if "symbolic_inversion" not in sys.modules:  # a Versions worker has put its version first
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from versions import Versions  # noqa: E402
from symbolic_inversion import Network, simulate  # noqa: E402
from symbolic_inversion.solvers import recover  # noqa: E402

# name: (layers, activations, bias, n, steps, digits, kind, symmetry)
CASES = {
    "1-1 tanh n3": ([1, 1], "tanh", True, 3, 6, 60, "random", None),
    "2-3-1 n4 E1": ([2, 3, 1], ["tanh", "identity"], True, 4, 1, 60, "random", None),
    "2-3-1 n4 E2": ([2, 3, 1], ["tanh", "identity"], True, 4, 2, 60, "random", None),
    "3-5-2 sig n6 E1": ([3, 5, 2], ["sigmoid", "identity"], True, 6, 1, 60, "random", None),
    "3-5-2 sig n6 E2": ([3, 5, 2], ["sigmoid", "identity"], True, 6, 2, 60, "random", None),
    "1-4-1 n5 E1": ([1, 4, 1], ["tanh", "tanh"], True, 5, 1, 60, "random", None),
    "1-4-1 n5 E2": ([1, 4, 1], ["tanh", "tanh"], True, 5, 2, 60, "random", None),
    "2-4-4-1 n4 E1": ([2, 4, 4, 1], ["tanh", "tanh", "identity"], True, 4, 1, 60, "random",
                      None),
    "2-3-1 nobias n3": ([2, 3, 1], ["tanh", "identity"], False, 3, 2, 60, "random", "sign"),
    "1-1 identity n4": ([1, 1], "identity", True, 4, 4, 60, "random", "moments"),
    "1-1 tanh nobias n2": ([1, 1], "tanh", False, 2, 8, 60, "random", "sign"),
    "1-1 tanh far n3": ([1, 1], "tanh", True, 3, 6, 60, "far", None),
    "1-1 tanh dup n3": ([1, 1], "tanh", True, 3, 6, 60, "duplicate", "duplicate_samples"),
    "1-1 tanh lr-off n4": ([1, 1], "tanh", True, 4, 4, 60, "lr_off", "square"),
    "4-8-1 n8": ([4, 8, 1], ["tanh", "identity"], True, 8, 2, 60, "random", None),
    "8-16-1 n16": ([8, 16, 1], ["tanh", "identity"], True, 16, 1, 60, "random", None),
    "8-16-1 n16 E2": ([8, 16, 1], ["tanh", "identity"], True, 16, 2, 60, "random", None),
    "8-16-1 n16 E4": ([8, 16, 1], ["tanh", "identity"], True, 16, 4, 60, "random", None),
    "8-16-1 n16 E8": ([8, 16, 1], ["tanh", "identity"], True, 16, 8, 60, "random", None),
    "neuron n8": ([1, 1], "tanh", True, 8, 16, 72, "random", None),
    "neuron n16": ([1, 1], "tanh", True, 16, 32, 104, "random", None),
    "neuron n24": ([1, 1], "tanh", True, 24, 48, 136, "random", None),
    "neuron n32": ([1, 1], "tanh", True, 32, 64, 168, "random", None),
}
# The neuron at scale (issue 26), only with --neuron-scale: name -> (n, low, high)
NEURON_RANGES = {"[0,1]": (0, 1), "[-1,1.5]": (-1, 1.5), "[-3,3]": (-3, 3)}
NEURON_SIZES = [24, 32, 48, 64]


def neuron_scale_cases(sizes=NEURON_SIZES):
    """The --neuron-scale rows: ``{name: case}`` in the format of ``CASES``."""
    return {f"neuron n{n} x{label}": ([1, 1], "tanh", True, n, 2 * n, 40 + 4 * n,
                                       f"range:{low}:{high}", None)
            for n in sizes for label, (low, high) in NEURON_RANGES.items()}


CASES.update(neuron_scale_cases())
DEFAULT = [name for name in CASES if not name.startswith("neuron n") or " x" not in name]
QUICK = ["1-1 tanh n3", "2-3-1 n4 E1", "2-3-1 n4 E2", "1-4-1 n5 E1", "2-3-1 nobias n3",
         "1-1 identity n4", "1-1 tanh nobias n2", "1-1 tanh far n3", "1-1 tanh dup n3",
         "1-1 tanh lr-off n4", "neuron n8"]


def instance(name, seed):
    """The trace of case ``name`` for dataset ``seed`` and the true data (strings)."""
    layers, activations, bias, n, steps, digits, kind, _ = CASES[name]
    network = Network(layers, activations, bias=bias)
    rng = random.Random(f"bench_networks:{name}:{seed}")
    d, m = layers[0], layers[-1]
    xs = [[f"{rng.uniform(-1, 1):.6f}" for _ in range(d)] for _ in range(n)]
    ys = [[f"{rng.uniform(-1, 1):.6f}" for _ in range(m)] for _ in range(n)]
    if kind == "far":
        xs[0], xs[1] = ["5"], ["8"]
    if kind == "duplicate":
        xs[1], ys[1] = list(xs[0]), list(ys[0])
    if kind.startswith("range:"):  # the neuron on other data (issue 26)
        low, high = (float(v) for v in kind.split(":")[1:])
        ys_range = (0, 1) if (low, high) == (0, 1) else (-0.8, 0.9)
        xs = [[f"{rng.uniform(low, high):.6f}"] for _ in range(n)]
        ys = [[f"{rng.uniform(*ys_range):.6f}"] for _ in range(n)]
        init = ["0.5", "0.5"]
    elif name.startswith("neuron"):  # the paper's neuron: x, y in [0, 1], w = b = 0.5
        xs = [[f"{rng.uniform(0, 1):.6f}"] for _ in range(n)]
        ys = [[f"{rng.uniform(0, 1):.6f}"] for _ in range(n)]
        init = ["0.5", "0.5"]
    else:
        init = [f"{rng.uniform(-1, 1):.6f}" for _ in range(network.num_parameters)]
    trace = simulate(network, xs, ys, lr="0.1", epochs=steps, init=init, dps=digits)
    if kind == "lr_off":  # the file's learning rate is off by 1e-6
        from symbolic_inversion import Trace
        trace = Trace(network, "0.100001", n, trace.parameters)
    return trace, xs, ys


def _truth(xs, ys):
    return [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y]) for x, y in zip(xs, ys)]


def _canonical(samples):
    return [([-v for v in x], [-v for v in y]) if x[0] < 0 else (list(x), list(y))
            for x, y in samples]


def _matched_error(found, truth):
    """Max error after the best matching (greedy beyond 7 samples)."""
    import itertools
    if len(found) != len(truth):
        return mpmath.inf
    flat_f = [list(x) + list(y) for x, y in found]
    flat_t = [list(x) + list(y) for x, y in truth]

    def cost(order):
        return max(max(abs(a - b) for a, b in zip(flat_f[i], flat_t[k]))
                   for i, k in enumerate(order))
    if len(flat_t) <= 7:
        return min(cost(order) for order in itertools.permutations(range(len(flat_t))))
    unused, order = list(range(len(flat_t))), []
    for a in flat_f:
        best = min(unused, key=lambda k: max(abs(u - v) for u, v in zip(a, flat_t[k])))
        unused.remove(best)
        order.append(best)
    return cost(order)


def _moments(samples):
    xs = [x[0] for x, _ in samples]
    ys = [y[0] for _, y in samples]
    return [sum(xs), sum(x * x for x in xs), sum(ys), sum(x * y for x, y in zip(xs, ys))]


def run_case(name, seed, timeout=600):
    """One dataset of one case, in the version this process imports (JSON in and out)."""
    symmetry = CASES[name][7]
    trace, xs, ys = instance(name, seed)
    started = time.perf_counter()

    def expire(*_):
        raise TimeoutError
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(timeout))
    try:
        solution = recover(trace)
    except TimeoutError:
        return {"status": "timeout", "ok": False, "error": "inf", "digits": 0,
                "time": time.perf_counter() - started}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    status = solution.status.value
    kinds = {s["kind"] for s in getattr(solution, "symmetries", [])}
    with mpmath.workdps(trace.digits + 20):
        truth = _truth(xs, ys)
        found = [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y])
                 for x, y in solution.samples]
        if symmetry == "sign":
            error = _matched_error(_canonical(found), _canonical(truth))
        elif symmetry == "moments" and found:
            error = max(abs(a - b) for a, b in zip(_moments(found), _moments(truth)))
        else:
            error = _matched_error(found, truth)
        if symmetry is None:
            ok = status == "converged" and error <= mpmath.mpf(10) ** -solution.digits
        elif symmetry == "square":
            ok = bool(getattr(solution, "square", False)) and status != "inconsistent"
        else:
            tolerance = mpmath.mpf("1e-10") if symmetry != "sign" else \
                mpmath.mpf(10) ** -max(solution.digits, 10)
            ok = status == "not_unique" and symmetry in kinds and error <= tolerance
    return {"status": status, "ok": bool(ok), "error": mpmath.nstr(error, 3),
            "digits": solution.digits, "time": elapsed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run the toolkit of this git revision (e.g. 0fc847c)")
    parser.add_argument("--baseline-datasets", type=int, default=None, metavar="K",
                        help="run the baseline on the first K datasets only (default all)")
    parser.add_argument("--quick", action="store_true", help="the small cases only")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="run each dataset up to K times per version and keep the "
                             "fastest (runs over 1 s are not repeated; default 1)")
    parser.add_argument("--cases", default=None, help="comma-separated case names")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds per recovery before it counts as a failure")
    parser.add_argument("--neuron-scale", nargs="?", const="24,32,48,64", default=None,
                        metavar="SIZES", help="only the neuron at these sizes on three "
                        "data ranges (issue 26; default 24,32,48,64)")
    args = parser.parse_args(argv)
    if args.neuron_scale:
        sizes = [int(v) for v in args.neuron_scale.split(",")]
        CASES.update(neuron_scale_cases(sizes))
        names = list(neuron_scale_cases(sizes))
    else:
        names = args.cases.split(",") if args.cases else \
            (QUICK if args.quick else DEFAULT)
    baseline_k = args.datasets if args.baseline_datasets is None else args.baseline_datasets
    print(f"exact traces, lr 0.1, {args.datasets} datasets per case (baseline: "
          f"{baseline_k if args.baseline else 0}); success = converged within the digits "
          f"vouched for, or not_unique with the data's symmetry named (lr-off: 'square')")
    header = (f"{'case':>20} {'n':>3} {'E':>3} {'unk':>4} {'version':>16} {'success':>8} "
              f"{'statuses':>34} {'max err':>9} {'min dig':>7} {'median s':>8} {'max s':>7}")
    print(header)
    print("-" * len(header))
    with Versions(args.baseline) as versions:
        for name in names:
            layers, _, _, n, steps, _, _, _ = CASES[name]
            unknowns = n * (layers[0] + layers[-1])
            rows = {}
            for seed in range(args.datasets):
                for worker in versions.workers:
                    if worker.label != "current" and seed >= baseline_k:
                        continue
                    result = worker.fastest("bench_networks", "run_case", args.repeat,
                                            name=name, seed=seed, timeout=args.timeout)
                    rows.setdefault(worker.label, []).append(result)
            for label, results in rows.items():
                good = sum(r["ok"] for r in results)
                statuses = {}
                for r in results:
                    statuses[r["status"]] = statuses.get(r["status"], 0) + 1
                text = ",".join(f"{k}:{v}" for k, v in statuses.items())
                errors = [mpmath.mpf(r["error"]) for r in results if r["ok"]]
                worst = mpmath.nstr(max(errors), 2) if errors else "-"
                digits = min((r["digits"] for r in results if r["ok"]), default="-")
                times = [r["time"] for r in results]
                print(f"{name:>20} {n:>3} {steps:>3} {unknowns:>4} {label:>16} "
                      f"{good:>5}/{len(results):<2} {text:>34} {worst:>9} {digits!s:>7} "
                      f"{statistics.median(times):>8.2f} {max(times):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
