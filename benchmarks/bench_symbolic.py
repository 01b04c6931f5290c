"""Speed of the symbolic layer on a 4-16-16-2 tanh network with 8 samples.

Run: ``python benchmarks/bench_symbolic.py [--baseline REV] [--rounds K]`` (about 30 s
per version and round; ``--baseline`` measures that git revision beside this checkout,
see ``versions.py``; ``--rounds`` measures K times, the versions taking turns, and keeps
each evaluation's least time).  Prints three tables:

1. deriving the per-sample terms by symbolic backpropagation (``f`` and ``B``, the
   source of truth for LaTeX and closed forms) and compiling the activations of the
   one numeric program (:class:`~symbolic_inversion.program.LayerwiseProgram`; goal:
   everything under 10 s);
2. evaluating the system's residual (``E * P`` numbers) and its Jacobian with respect
   to all ``n (d + m)`` data values in float64, by the layer-wise program and by the
   hand-written numpy implementation below (goal: within 3x of hand-written), with the
   largest difference between them;
3. the public ``InversionSystem.residual`` and ``.jacobian`` in mpmath at 60 digits.

With ``--baseline REV`` the same cases run in that version (e.g. e76f688, whose
``LayerwiseFloat64`` was the same program before losses and activations were objects).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if "symbolic_inversion" not in sys.modules:  # a Versions worker has put its version first
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from versions import Versions, has_module  # noqa: E402
from symbolic_inversion import Network  # noqa: E402

LAYERS, SAMPLES, STEPS = [4, 16, 16, 2], 8, 2


# -- the hand-written reference: tanh network, plain numpy --------------------------

def unpack(theta, layers=LAYERS):
    blocks, start = [], 0
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        W = theta[start:start + fan_in * fan_out].reshape(fan_out, fan_in)
        start += fan_in * fan_out
        b = theta[start:start + fan_out]
        start += fan_out
        blocks.append((W, b))
    return blocks


def hand_residual(thetas, X, Y, sides):
    """sum_i B_i (f_i - y_i) - sides, for every step (tanh everywhere)."""
    out = []
    for theta, side in zip(thetas, sides):
        blocks = unpack(theta)
        hs = [X]
        for W, b in blocks:
            hs.append(np.tanh(hs[-1] @ W.T + b))
        delta = (hs[-1] - Y) * (1 - hs[-1] ** 2)
        grads = []
        for layer in reversed(range(len(blocks))):
            grads.append((delta.T @ hs[layer]).ravel())
            grads.append(delta.sum(axis=0))
            if layer:
                delta = (delta @ blocks[layer][0]) * (1 - hs[layer] ** 2)
        flat = []
        for gb, gW in zip(grads[1::2][::-1], grads[0::2][::-1]):
            flat += [gW, gb]
        out.append(np.concatenate(flat) - side)
    return np.concatenate(out)


def hand_jacobian(thetas, X, Y):
    """d/d(x_i, y_i) of the per-step sums: forward mode through backprop, by hand."""
    n, d = X.shape
    m = Y.shape[1]
    k = d + m
    rows = []
    for theta in thetas:
        blocks = unpack(theta)
        hs, dhs = [X], [np.broadcast_to(np.eye(k)[:, :d], (n, k, d))]
        for W, b in blocks:
            a = np.tanh(hs[-1] @ W.T + b)
            da = (1 - a ** 2)[:, None, :] * (dhs[-1] @ W.T)
            hs.append(a)
            dhs.append(da)
        r = hs[-1] - Y
        dr = dhs[-1] - np.eye(k)[None, :, d:]
        s = 1 - hs[-1] ** 2
        delta = r * s
        ddelta = dr * s[:, None, :] - 2 * (r * hs[-1])[:, None, :] * dhs[-1]
        grads = []
        for layer in reversed(range(len(blocks))):
            h, dh = hs[layer], dhs[layer]
            gW = ddelta[:, :, :, None] * h[:, None, None, :] \
                + delta[:, None, :, None] * dh[:, :, None, :]
            grads.append((gW.reshape(n, k, -1), ddelta))
            if layer:
                W = blocks[layer][0]
                back, dback = delta @ W, ddelta @ W
                s_prev = 1 - hs[layer] ** 2
                delta = back * s_prev
                ddelta = dback * s_prev[:, None, :] - 2 * (back * hs[layer])[:, None, :] * dh
        flat = []
        for gW, gb in reversed(grads):
            flat += [gW, gb]
        J = np.concatenate(flat, axis=2)              # (n, k, P)
        rows.append(J.transpose(2, 0, 1).reshape(J.shape[2], n * k))
    return np.concatenate(rows)


# -- the numeric program (this version's, or a baseline's) ---------------------------

def layerwise(network):
    """``(terms, jacobian)`` of the version this process imports: the layer-wise program
    (``symbolic_inversion.program``), or before it existed ``codegen.LayerwiseFloat64``."""
    if has_module("program"):
        from symbolic_inversion.program import LayerwiseProgram
        program = LayerwiseProgram(network)
        return (lambda *a: program.term_sums(*a, arithmetic="float64"),
                lambda *a: program.jacobian(*a, arithmetic="float64"))
    else:
        from symbolic_inversion.codegen import LayerwiseFloat64
        program = LayerwiseFloat64(network)
        return program.half_gradient_sums, program.jacobian


def best_time(function, repeat=7):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def measure():
    """Derivation/compilation phases and float64 evaluation times (JSON), in the version
    this process imports."""
    network = Network(LAYERS, "tanh")
    rng = np.random.default_rng(0)
    P = network.num_parameters
    thetas = rng.normal(0, 0.5, (STEPS, P))
    X = rng.uniform(-1, 1, (SAMPLES, LAYERS[0]))
    Y = rng.uniform(-1, 1, (SAMPLES, LAYERS[-1]))
    sides = rng.normal(0, 0.1, (STEPS, P))
    phases = []
    started = time.perf_counter()
    x = network.sample_symbols(0)[0]
    network.forward(x)
    network.output_jacobian_transpose(x)
    phases.append(("derive f, B by symbolic backprop", time.perf_counter() - started))
    t = time.perf_counter()
    program_terms, program_jacobian = layerwise(network)
    program_terms(thetas, X, Y)          # compiles the activations for float64
    phases.append(("layer-wise program (activations compiled)", time.perf_counter() - t))
    phases.append(("total (goal < 10 s)", time.perf_counter() - started))

    reference_r = hand_residual(thetas, X, Y, sides)
    reference_J = hand_jacobian(thetas, X, Y)
    candidates = {
        "hand-written numpy": (lambda: hand_residual(thetas, X, Y, sides),
                               lambda: hand_jacobian(thetas, X, Y)),
        "layer-wise program": (lambda: (program_terms(thetas, X, Y) - sides).ravel(),
                               lambda: program_jacobian(thetas, X, Y)),
    }
    evaluations = []
    for name, (residual, jacobian) in candidates.items():
        diff = max(np.abs(residual() - reference_r).max(),
                   np.abs(jacobian() - reference_J).max())
        evaluations.append((name, best_time(residual), best_time(jacobian), float(diff)))
    return {"phases": phases, "evaluations": evaluations,
            "multiprecision": multiprecision_times()}


def multiprecision_times(dps=60):
    """``InversionSystem.residual`` and ``.jacobian`` at ``dps`` digits (public API in
    every version): the path the solvers take at high precision."""
    import mpmath
    from symbolic_inversion import InversionSystem, simulate
    rows = []
    for layers, activations, n in (([1, 1], "tanh", 8), ([1, 1], "tanh", 24),
                                   ([3, 5, 2], ["sigmoid", "identity"], 6)):
        network = Network(layers, activations)
        rng = np.random.default_rng(n)
        xs = [[f"{v:.4f}" for v in rng.uniform(0, 1, layers[0])] for _ in range(n)]
        ys = [[f"{v:.4f}" for v in rng.uniform(0, 1, layers[-1])] for _ in range(n)]
        init = [f"{v:.4f}" for v in rng.uniform(-0.5, 0.5, network.num_parameters)]
        steps = -(-2 * n * (layers[0] + layers[-1]) // network.num_parameters)
        trace = simulate(network, xs, ys, lr="0.1", epochs=steps, init=init, dps=dps)
        system = InversionSystem.from_trace(trace)
        with mpmath.workdps(dps):
            inputs = [[mpmath.mpf(v) for v in x] for x in xs]
            labels = [[mpmath.mpf(v) for v in y] for y in ys]
            residual = best_time(lambda: system.residual(inputs, labels), repeat=3)
            jacobian = best_time(lambda: system.jacobian(inputs, labels), repeat=3)
        rows.append((f"{'-'.join(map(str, layers))} n={n} E={steps}", residual, jacobian))
    return rows


def fastest(measured):
    """The least time of every evaluation over several :func:`measure` results of one
    version (names and differences from the first).  The derivation phases are the
    first round's: later rounds in the same process find SymPy's caches warm."""
    first = measured[0]
    return {"phases": first["phases"],
            "evaluations": [(name, min(m["evaluations"][k][1] for m in measured),
                             min(m["evaluations"][k][2] for m in measured), diff)
                            for k, (name, _, _, diff) in enumerate(first["evaluations"])],
            "multiprecision": [(name, min(m["multiprecision"][k][1] for m in measured),
                                min(m["multiprecision"][k][2] for m in measured))
                               for k, (name, _, _) in enumerate(first["multiprecision"])]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also measure the package at this git revision, side by side")
    parser.add_argument("--rounds", type=int, default=1, metavar="K",
                        help="measure K times, the versions taking turns, and keep each "
                             "entry's least time (default 1)")
    args = parser.parse_args(argv)
    network = Network(LAYERS, "tanh")
    P = network.num_parameters
    print(f"network {LAYERS} tanh, {P} parameters, {SAMPLES} samples, {STEPS} steps: "
          f"{STEPS * P} equations, {SAMPLES * (LAYERS[0] + LAYERS[-1])} unknowns\n")
    with Versions(args.baseline) as versions:
        rounds = [versions.call("bench_symbolic", "measure") for _ in range(args.rounds)]
    results = [(label, fastest([r[k][1] for r in rounds]))
               for k, (label, _) in enumerate(rounds[0])]
    labels = [label for label, _ in results]
    print(f"{'derivation and compilation (s)':<42}" + "".join(f"{l:>18}" for l in labels))
    for k, (name, _) in enumerate(results[0][1]["phases"]):
        print(f"{name:<42}" + "".join(f"{r['phases'][k][1]:18.2f}" for _, r in results))
    print(f"\n{'float64 evaluation':<26} {'version':>16} {'residual ms':>11} {'x hand':>7} "
          f"{'Jacobian ms':>11} {'x hand':>7} {'max |diff|':>10}")
    for label, result in results:
        (_, r_hand, j_hand, _) = result["evaluations"][0]
        for name, r_time, j_time, diff in result["evaluations"]:
            print(f"{name:<26} {label:>16} {1e3 * r_time:11.3f} {r_time / r_hand:7.2f} "
                  f"{1e3 * j_time:11.3f} {j_time / j_hand:7.2f} {diff:10.1e}")
    print(f"\n{'mpmath, 60 digits':<26} {'version':>16} {'residual ms':>11} {'Jacobian ms':>11}")
    for label, result in results:
        for name, r_time, j_time in result["multiprecision"]:
            print(f"{name:<26} {label:>16} {1e3 * r_time:11.1f} {1e3 * j_time:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
