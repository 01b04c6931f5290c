"""Certificates across sample counts, trace lengths and interval back ends.

Single neuron ``tanh(w x + b)``, full-batch GD, lr 0.1, w0 = b0 = 0.5, data uniform in
[0, 1] (seeded), exact traces of ``digits`` digits.  For each case: the true data are
certified (radius = distance from them to the proved exact solution of the trace's
exact-decimal system), then the same data with the first input moved by 1e-3.

Run: ``python benchmarks/bench_certify.py`` (about a minute on 2 cores).
"""

import time

import mpmath
import numpy as np

from symbolic_inversion import Network, simulate
from symbolic_inversion.verify import certify, resimulate

NEURON = Network([1, 1], "tanh")


def case(n, steps, digits, backend, seed=1):
    rng = np.random.default_rng(seed)
    xs = [f"{v:.3f}" for v in rng.uniform(0, 1, n)]
    ys = [f"{v:.3f}" for v in rng.uniform(0, 1, n)]
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=steps, init=["0.5", "0.5"], dps=digits)
    data = [([x], [y]) for x, y in zip(xs, ys)]
    started = time.perf_counter()
    good = certify(trace, data, backend=backend)
    elapsed = time.perf_counter() - started
    wrong = [([f"{float(xs[0]) + 1e-3:.6f}"], [ys[0]])] + data[1:]
    bad = certify(trace, wrong, backend=backend)
    replay = resimulate(trace, data)
    return good, bad, elapsed, replay


def text(value):
    return "-" if value is None else mpmath.nstr(value, 2)


def main():
    print(f"{'n':>3} {'E':>3} {'digits':>6} {'backend':>7} {'dps':>4} {'certified':>9} "
          f"{'radius':>9} {'unique':>9} {'tolerance':>9} {'time s':>7} "
          f"{'x0+1e-3':>8} {'resim':>5}")
    for n, steps, digits in [(2, 2, 7), (2, 4, 30), (4, 4, 60), (4, 8, 60), (6, 6, 60),
                             (6, 12, 60), (8, 8, 80), (12, 12, 100)]:
        for backend in ("iv", "arb"):
            good, bad, elapsed, replay = case(n, steps, digits, backend)
            print(f"{n:>3} {steps:>3} {digits:>6} {backend:>7} {good.dps:>4} "
                  f"{str(good.certified):>9} {text(good.radius):>9} "
                  f"{text(good.uniqueness_radius):>9} {text(good.tolerance):>9} "
                  f"{elapsed:>7.2f} {'refused' if not bad.certified else 'ACCEPTED':>8} "
                  f"{replay.min_digits:>5}")


if __name__ == "__main__":
    main()
