"""Cold-start recovery from exact single-neuron traces, next to the paper's baselines.

    python benchmarks/bench_recover.py [--sizes 2,4,8,12,16,24] [--datasets 5]
        [--no-baselines] [--backends auto,mpmath,flint] [--baseline REV [--repeat K]]
        [--workers N | --scheduler ADDRESS] [--progress]

This checkout's toolkit runs as a study (``symbolic_inversion.study``: one grid per
backend, on ``--workers N`` local processes or a Dask ``--scheduler``; its cells are
exactly the datasets below).  ``--baseline REV`` runs the toolkit of that git revision
beside it instead: both versions case by case in worker processes of their own, taking
turns (see ``versions.py``; older revisions have no study module), each dataset up to
``--repeat`` times per version, the fastest kept.

For every n: ``--datasets`` random datasets (x, y uniform in [0, 1], 6 decimals, seeded),
the paper's neuron (w = b = 0.5, lr = 0.1), E = 2n steps of full-batch GD recorded to
40 + 4n digits.  A recovery *succeeds* when its status is ``converged`` and the data are
within the precision law ``10^(2.2 n - digits + 5)`` of the truth (after matching the
samples).  Baselines, on the same traces, from the paper's starting point generalized
(Mathematica's ``{x0 0.5, x1 0, y 0}``: x evenly spaced from 0.5 down to 0, y = 0):

* ``fsolve``: ``scipy.optimize.fsolve`` on the square system (first n steps), float64;
* ``root-lm``: ``scipy.optimize.root(method="lm")`` on all 2n steps, float64;
* ``findroot``: ``mpmath.findroot`` (multidimensional Newton with the toolkit's analytic
  Jacobian) on the square system at the trace's digits + 10, at most 50 iterations.

Prints one table row per n and method: successes, ``located`` (the answer is within 1e-3
of the truth whatever the method claimed: float64 baselines can locate the data but
never reach the precision law), the worst error of the successes, median and maximum
time per dataset.
"""

import argparse
import os
import random
import statistics
import sys
import time

import mpmath
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if "symbolic_inversion" not in sys.modules:  # a Versions worker has put its version first
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from versions import Versions, has_module  # noqa: E402
from symbolic_inversion import InversionSystem, Network, simulate  # noqa: E402
from symbolic_inversion.solvers import recover  # noqa: E402

NEURON = Network([1, 1], "tanh")


def study_config(sizes, datasets, backend):
    """The toolkit's side as a study grid: the same datasets and traces as
    :func:`instance` (a study cell draws its data from ``random.Random(1000 n + seed)``,
    inputs then labels, 6 decimals)."""
    return {"networks": [{"layers": [1, 1], "activations": ["tanh"], "init": ["0.5", "0.5"]}],
            "samples": sizes, "seeds": datasets, "digits": ["40+4n"], "steps": "2n",
            "lr": "0.1", "backend": backend}


def case_of_record(record):
    """A study record as :func:`run_case` reports a case."""
    n, digits = record["samples"], record["digits"]
    error = mpmath.inf if record["error"] is None else mpmath.mpf(repr(record["error"]))
    claimed = record["status"] == "converged"
    return {"claimed": claimed, "error": mpmath.nstr(error, 5),
            "ok": bool(claimed and error <= law(n, digits)), "near": bool(error <= 1e-3),
            "time": record.get("recover_time", record["time"]),
            "crash": record.get("reason") if record["status"] in ("error", "timeout")
            else None}


def instance(n, seed):
    """The trace of dataset ``seed`` at ``n`` samples (what a study cell simulates;
    written out here for the baseline revision, which has no study module)."""
    rng = random.Random(1000 * n + seed)
    xs = [f"{rng.uniform(0, 1):.6f}" for _ in range(n)]
    ys = [f"{rng.uniform(0, 1):.6f}" for _ in range(n)]
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=2 * n, init=["0.5", "0.5"],
                     dps=40 + 4 * n)
    return trace, xs, ys


def error_to_truth(inputs, labels, xs, ys, dps):
    """Max error after matching the samples (sorted by input; inputs are distinct)."""
    with mpmath.workdps(dps):
        truth = sorted((mpmath.mpf(x), mpmath.mpf(y)) for x, y in zip(xs, ys))
        found = sorted((mpmath.mpf(x[0]), mpmath.mpf(y[0])) for x, y in zip(inputs, labels))
        if len(found) != len(truth):
            return mpmath.inf
        return max(max(abs(a - c), abs(b - d)) for (a, b), (c, d) in zip(truth, found))


def law(n, digits):
    return mpmath.mpf(10) ** (2.2 * n - digits + 5)


def paper_start(n):
    xs = [0.5 * (1 - i / (n - 1)) for i in range(n)] if n > 1 else [0.5]
    return xs, [0.0] * n


def _float_terms(theta, x, y):
    """Per-step sums of the neuron's terms in float64 (either version's program)."""
    if has_module("program"):
        from symbolic_inversion.program import layerwise_program
        return layerwise_program(NEURON).term_sums(np.asarray([theta]), x[:, None],
                                                   y[:, None], arithmetic="float64")[0]
    else:
        from symbolic_inversion.codegen import layerwise_program
        return layerwise_program(NEURON).half_gradient_sums(
            np.asarray([theta]), x[:, None], y[:, None], arithmetic="float64")[0]


def float_residual(trace, steps):
    with mpmath.workdps(40):
        gradients = trace.observed_gradients()
        thetas = [[float(v) for v in trace.theta(j)] for j in range(steps)]
        rhs = [[float(len(trace.batch(j)) * g / 2) for g in gradients[j]]
               for j in range(steps)]
    n = trace.samples

    def F(u):
        x, y = u[:n], u[n:]
        values = []
        for theta, side in zip(thetas, rhs):
            terms = _float_terms(theta, np.asarray(x, dtype=float), np.asarray(y, dtype=float))
            values += [float(t) - s for t, s in zip(terms, side)]
        return np.array(values)
    return F


def run_scipy(trace, kind):
    import scipy.optimize as so
    n = trace.samples
    xs, ys = paper_start(n)
    u0 = np.array(xs + ys)
    with np.errstate(all="ignore"):
        if kind == "fsolve":
            u, _, flag, _ = so.fsolve(float_residual(trace, n), u0, full_output=True)
            claimed = flag == 1
        else:
            result = so.root(float_residual(trace, trace.steps), u0, method="lm")
            u, claimed = result.x, bool(result.success)
    return [[v] for v in u[:n]], [[v] for v in u[n:]], claimed


def run_findroot(trace):
    n = trace.samples
    system = InversionSystem.from_trace(trace, n)
    xs, ys = paper_start(n)
    with mpmath.workdps(max(3 * n + 30, trace.digits + 10)):
        def split(values):
            return [[values[2 * i]] for i in range(n)], [[values[2 * i + 1]] for i in range(n)]

        def F(*values):
            return system.residual(*split(values))

        def J(*values):
            return system.jacobian(*split(values))
        start = [v for pair in zip(xs, ys) for v in pair]
        try:
            root = mpmath.findroot(F, start, J=J, maxsteps=50, verify=True)
            claimed = True
        except (ValueError, ZeroDivisionError, TypeError, ArithmeticError):
            # not converged, singular Jacobian, or mpmath's LU tripping over a NaN pivot
            return None, None, False
        inputs, labels = split([root[k] for k in range(2 * n)])
        return [[+v for v in x] for x in inputs], [[+v for v in y] for y in labels], claimed


def recover_with(trace, backend):
    """``recover`` on ``backend`` (``None``: the default), in either version's API."""
    try:
        return recover(trace, backend=backend)
    except TypeError:  # versions before RecoverOptions: only the pipeline took a backend
        from symbolic_inversion.solvers.pipeline import solve_cold_start
        return solve_cold_start(trace, backend=backend) if backend else recover(trace)


def run_case(n, seed, method="toolkit", backend=None):
    """One dataset, one method, in the version this process imports (JSON in and out)."""
    trace, xs, ys = instance(n, seed)
    digits = trace.digits
    started = time.perf_counter()
    crash = None
    if method == "toolkit":
        try:
            solution = recover_with(trace, backend)
            inputs, labels, claimed = solution.inputs, solution.labels, solution.ok
        except Exception as error:  # a version that crashes on a case: a failure, counted
            inputs, labels, claimed, crash = None, None, False, type(error).__name__
    elif method == "findroot":
        inputs, labels, claimed = run_findroot(trace)
    else:
        inputs, labels, claimed = run_scipy(trace, method)
    elapsed = time.perf_counter() - started
    error = error_to_truth(inputs, labels, xs, ys, digits + 20) \
        if inputs is not None else mpmath.inf
    return {"claimed": bool(claimed), "error": mpmath.nstr(error, 5),
            "ok": bool(claimed and error <= law(n, digits)), "near": bool(error <= 1e-3),
            "time": elapsed, "crash": crash}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,8,12,16,24")
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--backends", default="auto",
                        help="comma-separated: auto, mpmath, flint (default: auto)")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run the toolkit of this git revision, side by side "
                             "(e.g. 0fc847c, the version before the numerical core)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="run this checkout's study on N local processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run this checkout's study on a Dask scheduler")
    parser.add_argument("--progress", action="store_true", help="a bar on stderr")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="with --baseline: run each dataset up to K times per version "
                             "and keep the fastest (runs over 1 s are not repeated)")
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    backends = [None if b == "auto" else b for b in args.backends.split(",")]
    others = [] if args.no_baselines else ["fsolve", "root-lm", "findroot"]
    print(f"cold start, exact traces, E = 2n, trace digits 40 + 4n, "
          f"{args.datasets} datasets per n; success = converged and error <= "
          f"10^(2.2n - digits + 5)")
    header = f"{'n':>3} {'digits':>6} {'version':>16} {'method':>15} {'success':>8} " \
             f"{'located':>8} {'max error':>10} {'bound':>9} {'median s':>9} {'max s':>7} " \
             f"{'crashes':>8}"
    print(header)
    print("-" * len(header))
    from symbolic_inversion.solvers.executors import make_executor
    from symbolic_inversion.study import run_study
    executor = make_executor(scheduler=args.scheduler) if args.scheduler else None
    studies = {} if args.baseline else {
        backend: run_study(study_config(sizes, args.datasets, backend), executor=executor,
                           workers=args.workers, progress=args.progress).records
        for backend in backends}
    with Versions(args.baseline) as versions:
        for n in sizes:
            rows = {}
            for seed in range(args.datasets):
                for backend in backends:
                    name = f"toolkit/{backend or 'auto'}"
                    if args.baseline:   # both versions the same way, taking turns
                        for worker in versions.workers:
                            result = worker.fastest("bench_recover", "run_case", args.repeat,
                                                    n=n, seed=seed, backend=backend)
                            rows.setdefault((worker.label, name), []).append(result)
                        continue
                    record = next(r for r in studies[backend]
                                  if r["samples"] == n and r["seed"] == seed)
                    rows.setdefault(("current", name), []).append(case_of_record(record))
                for method in others:
                    result = versions.workers[-1].call("bench_recover", "run_case", n=n,
                                                       seed=seed, method=method)
                    rows.setdefault(("current", method), []).append(result)
            for (label, name), results in rows.items():
                good = [mpmath.mpf(r["error"]) for r in results if r["ok"]]
                times = [r["time"] for r in results]
                worst = mpmath.nstr(max(good), 2) if good else "-"
                located = sum(1 for r in results if r["near"])
                print(f"{n:>3} {40 + 4 * n:>6} {label:>16} {name:>15} "
                      f"{len(good):>5}/{len(results):<2} {located:>5}/{len(results):<2} "
                      f"{worst:>10} {mpmath.nstr(law(n, 40 + 4 * n), 2):>9} "
                      f"{statistics.median(times):>9.2f} {max(times):>7.2f} "
                      f"{sum(1 for r in results if r.get('crash')):>8}", flush=True)


if __name__ == "__main__":
    main()
