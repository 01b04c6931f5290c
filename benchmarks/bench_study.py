"""One study grid, three ways: serially, on ``--workers 2`` local processes, and on a Dask
``LocalCluster`` of 2 worker processes; the same results, and the wall time of each.

    python benchmarks/bench_study.py [--sizes 3,6,9,12] [--seeds 5] [--workers 2]
        [--no-cluster]

The grid (``symbolic_inversion.study``): 2 networks (the paper's neuron, tanh and sigmoid,
w = b = 0.5) x 4 sample counts x 5 seeds = 40 cells; each an exact trace of 40 + 4n
digits over 2n GD steps, recovered from a cold start.  The three runs must give
identical statuses, digits vouched for and errors (the script stops otherwise); it prints
the wall time of each (the cluster's start-up is shown apart), the speed-up over the
serial run, and the machine's load average (``os.getloadavg``) before and after, since
parallel wall times only mean something on idle cores.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from symbolic_inversion.study import record_key, run_study  # noqa: E402

COMPARED = ("status", "digits_vouched", "error", "error_bound", "trace_digits")


def grid(sizes, seeds):
    return {"networks": [{"layers": [1, 1], "activations": ["tanh"], "init": ["0.5", "0.5"]},
                         {"layers": [1, 1], "activations": ["sigmoid"],
                          "init": ["0.5", "0.5"]}],
            "samples": sizes, "seeds": seeds, "digits": ["40+4n"], "steps": "2n",
            "lr": "0.1"}


def outcome(records):
    return sorted((record_key(r),) + tuple(r.get(k) for k in COMPARED) for r in records)


def load():
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def timed(label, config, folder, **where):
    started = time.perf_counter()
    result = run_study(config, output=os.path.join(folder, f"{label}.jsonl"), **where)
    return result, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,6,9,12")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the Dask LocalCluster run")
    args = parser.parse_args(argv)
    config = grid([int(v) for v in args.sizes.split(",")], args.seeds)
    cells = 2 * len(config["samples"]) * args.seeds
    print(f"grid: 2 networks x n = {args.sizes} x {args.seeds} seeds = {cells} cells; "
          f"{os.cpu_count()} cores; load average before: {load()}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        serial, seconds = timed("serial", config, folder)
        runs.append(("serial (this process)", serial, seconds, None))
        print(f"  serial done in {seconds:.1f} s (load {load()})", flush=True)
        workers, seconds = timed("workers", config, folder, workers=args.workers)
        runs.append((f"--workers {args.workers}", workers, seconds, None))
        print(f"  workers done in {seconds:.1f} s (load {load()})", flush=True)
        if not args.no_cluster:
            import distributed
            started = time.perf_counter()
            with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                          processes=True, dashboard_address=None) as cluster, \
                    distributed.Client(cluster) as client:
                startup = time.perf_counter() - started
                dask, seconds = timed("cluster", config, folder, executor=client)
            runs.append((f"LocalCluster({args.workers} workers)", dask, seconds, startup))
            print(f"  cluster done in {seconds:.1f} s (load {load()})", flush=True)
    reference = outcome(serial.records)
    for label, result, _, _ in runs:
        if not result.complete or outcome(result.records) != reference:
            sys.exit(f"{label}: results differ from the serial run")
    print()
    print(serial.table())
    print()
    serial_seconds = runs[0][2]
    print(f"{'run':<26} {'wall s':>7} {'speed-up':>9} {'start-up s':>11} {'cell s':>7} "
          f"{'in parallel':>12} {'cell CPU s':>11} {'CPU/wall':>9} {'cells':>6} "
          f"{'successes':>10} {'same results':>13}")
    for label, result, seconds, startup in runs:
        successes = sum(r["ok"] for r in result.records)
        busy = sum(r["time"] for r in result.records)  # seconds inside cells, all workers
        cpu = sum(r["cpu_time"] for r in result.records)
        print(f"{label:<26} {seconds:>7.1f} {serial_seconds / seconds:>8.2f}x "
              f"{'-' if startup is None else f'{startup:.1f}':>11} {busy:>7.1f} "
              f"{busy / seconds:>12.2f} {cpu:>11.1f} {cpu / seconds:>9.2f} "
              f"{len(result.records):>6} {successes:>10} {'yes':>13}")
    print("cell s: the cells' wall times added up; in parallel: that over the run's wall "
          "time (1 serially, up to the workers);\ncell CPU s: the processor time the cells "
          "got; CPU/wall: the cores the run had on average (2 idle cores: up to 2)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
