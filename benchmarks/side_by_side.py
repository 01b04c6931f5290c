"""Every benchmark, this checkout next to an older revision, in one run.

    python benchmarks/side_by_side.py --baseline e76f688 [--rounds 2] [--only oracle,relu]

Benchmarks with a ``--baseline`` option of their own (``bench_networks``,
``bench_recover``, ``bench_symbolic``, ``bench_oracle``) alternate the versions case by
case and print both in one table; they are run once, with that option (and ``--repeat
3``: a case under a second runs up to three times per version, the fastest kept).  Every other benchmark runs as
each version's own script (the revision's ``benchmarks/`` and package, unpacked with
``git archive``; this checkout's for the current version), the two versions taking turns
``--rounds`` times (the order flipped each round), so both see the same machine load.
For each version the table of its fastest round is printed, then the wall time of every
round.  Cases absent from one version's script (features it did not have) appear in one
table only.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from versions import REPOSITORY, unpack_revision  # noqa: E402

# name: (arguments, whether the script alternates the versions itself)
BENCHMARKS = {
    "networks": (["--quick", "--baseline-datasets", "5", "--repeat", "3"], True),
    "recover": (["--sizes", "2,4,8", "--datasets", "3", "--no-baselines", "--repeat", "3"],
                True),
    "symbolic": (["--rounds", "3"], True),
    "oracle": (["--quick", "--repeat", "3"], True),
    "relu": (["--quick"], False),
    "sgd": ([], False),
    "certify": ([], False),
}


def run(root, script, arguments):
    """``(seconds, output)`` of ``root``'s ``benchmarks/<script>`` on ``root``'s package."""
    environment = dict(os.environ, PYTHONPATH=root)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, os.path.join(root, "benchmarks", script),
                           *arguments], cwd=root, env=environment, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - started
    output = done.stdout + (f"\n[exit {done.returncode}]\n{done.stderr[-2000:]}"
                            if done.returncode else "")
    return elapsed, output


def package_of(root):
    """Which ``symbolic_inversion`` a script run with ``root`` first imports."""
    code = "import symbolic_inversion; print(symbolic_inversion.__file__)"
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=root)).stdout.strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, metavar="REV",
                        help="the git revision to measure against (e.g. e76f688)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="turns per version for the benchmarks run as whole scripts")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    base_root, commit = unpack_revision(args.baseline, ("symbolic_inversion", "benchmarks"))
    versions = [(f"baseline {commit}", base_root), ("current", REPOSITORY)]
    for label, root in versions:
        location = package_of(root)
        if not location.startswith(root):
            sys.exit(f"{label}: the package imported from {root} is {location!r}")
        print(f"{label}: {location}")
    for name in names:
        arguments, alternates = BENCHMARKS[name]
        script = f"bench_{name}.py"
        print(f"\n## {script} {' '.join(arguments)}\n", flush=True)
        if alternates:
            elapsed, output = run(REPOSITORY, script, [*arguments, "--baseline",
                                                       args.baseline])
            print(output.rstrip())
            print(f"\nwall time (both versions, alternating): {elapsed:.1f} s", flush=True)
            continue
        rounds = {label: [] for label, _ in versions}
        for turn in range(args.rounds):
            for label, root in (versions if turn % 2 == 0 else versions[::-1]):
                if not os.path.exists(os.path.join(root, "benchmarks", script)):
                    continue
                rounds[label].append(run(root, script, arguments))
        for label, results in rounds.items():
            if not results:
                print(f"### {label}: no {script}")
                continue
            elapsed, output = min(results, key=lambda result: result[0])
            times = ", ".join(f"{seconds:.1f}" for seconds, _ in results)
            print(f"### {label} (fastest of {len(results)} rounds; wall s: {times})\n")
            print(output.rstrip() + "\n", flush=True)


if __name__ == "__main__":
    main()
