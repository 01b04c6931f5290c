"""Speed of the symbolic layer on a 4-16-16-2 tanh network with 8 samples.

Run: ``python benchmarks/bench_symbolic.py`` (about 30 s).  Prints two tables:

1. deriving the per-sample terms by symbolic backpropagation, then building the
   straight-line programs and lambdifying them (numpy and mpmath) for the terms
   ``(f, B)`` and for the Jacobian of ``B (f - y)`` with respect to the data
   (goal: everything under 10 s);
2. evaluating the system's residual (``E * P`` numbers) and its Jacobian with respect
   to all ``n (d + m)`` data values in float64, by the layer-wise compiled path
   (:class:`~symbolic_inversion.codegen.LayerwiseFloat64`), by the scalar lambdified
   programs (vectorized over samples), and by the hand-written numpy implementation
   below (goal: compiled within 3x of hand-written), with the largest difference
   between them.
"""

import sys
import time

import numpy as np

from symbolic_inversion import Network
from symbolic_inversion.codegen import CompiledNetwork, LayerwiseFloat64

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


# -- the compiled paths --------------------------------------------------------------

def scalar_residual(compiled, thetas, X, Y, sides):
    out = []
    for theta, side in zip(thetas, sides):
        per_sample = compiled.half_gradient(theta, list(X.T), list(Y.T), "numpy")
        out.append(np.array([np.sum(g) for g in per_sample]) - side)
    return np.concatenate(out)


def scalar_jacobian(compiled, thetas, X, Y):
    network = compiled.network
    d, m, P = network.input_width, network.output_width, network.num_parameters
    n, k = len(X), d + m
    function = compiled._jacobian_function("numpy")
    J = np.zeros((len(thetas) * P, n * k))
    for e, theta in enumerate(thetas):
        dx = np.array([np.broadcast_to(v, (n,)) for v in
                       function(list(theta), list(X.T), list(Y.T))]).reshape(P, d, n)
        _, B = compiled.terms(theta, list(X.T), "numpy")
        B = np.array([[np.broadcast_to(v, (n,)) for v in row] for row in B])  # (P, m, n)
        block = np.concatenate([dx, -B], axis=1)                              # (P, k, n)
        J[e * P:(e + 1) * P] = block.transpose(0, 2, 1).reshape(P, n * k)
    return J


def best_time(function, repeat=7):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    network = Network(LAYERS, "tanh")
    rng = np.random.default_rng(0)
    P = network.num_parameters
    thetas = rng.normal(0, 0.5, (STEPS, P))
    X = rng.uniform(-1, 1, (SAMPLES, LAYERS[0]))
    Y = rng.uniform(-1, 1, (SAMPLES, LAYERS[-1]))
    sides = rng.normal(0, 0.1, (STEPS, P))

    print(f"network {LAYERS} tanh, {P} parameters, {SAMPLES} samples, {STEPS} steps: "
          f"{STEPS * P} equations, {SAMPLES * (LAYERS[0] + LAYERS[-1])} unknowns\n")
    phases = []
    started = time.perf_counter()
    compiled = CompiledNetwork(network)
    phases.append(("derive f, B by symbolic backprop", time.perf_counter() - started))
    for target in ("numpy", "mpmath"):
        t = time.perf_counter()
        compiled._function(target)
        phases.append((f"program + lambdify terms ({target})", time.perf_counter() - t))
    for target in ("numpy", "mpmath"):
        t = time.perf_counter()
        compiled._jacobian_function(target)
        phases.append((f"program + lambdify Jacobian ({target})", time.perf_counter() - t))
    t = time.perf_counter()
    layerwise = LayerwiseFloat64(network)
    phases.append(("layer-wise float64 (activations)", time.perf_counter() - t))
    total = time.perf_counter() - started
    print(f"{'derivation and compilation':<42} {'seconds':>8}")
    for name, seconds in phases:
        print(f"{name:<42} {seconds:8.2f}")
    print(f"{'total (goal < 10 s)':<42} {total:8.2f}\n")

    flat_sides = sides.ravel()
    reference_r = hand_residual(thetas, X, Y, sides)
    reference_J = hand_jacobian(thetas, X, Y)
    candidates = {
        "hand-written numpy": (lambda: hand_residual(thetas, X, Y, sides),
                               lambda: hand_jacobian(thetas, X, Y)),
        "compiled, layer-wise": (
            lambda: (layerwise.half_gradient_sums(thetas, X, Y) - sides).ravel(),
            lambda: layerwise.jacobian(thetas, X, Y)),
        "compiled, scalar program": (lambda: scalar_residual(compiled, thetas, X, Y, sides),
                                     lambda: scalar_jacobian(compiled, thetas, X, Y)),
    }
    base = {}
    print(f"{'float64 evaluation':<26} {'residual ms':>11} {'x hand':>7} "
          f"{'Jacobian ms':>11} {'x hand':>7} {'max |diff|':>10}")
    for name, (residual, jacobian) in candidates.items():
        r_time, j_time = best_time(residual), best_time(jacobian)
        diff = max(np.abs(residual() - reference_r).max(),
                   np.abs(jacobian() - reference_J).max())
        base.setdefault("r", r_time)
        base.setdefault("j", j_time)
        print(f"{name:<26} {1e3 * r_time:11.3f} {r_time / base['r']:7.2f} "
              f"{1e3 * j_time:11.3f} {j_time / base['j']:7.2f} {diff:10.1e}")
    assert flat_sides.shape == reference_r.shape
    return 0


if __name__ == "__main__":
    sys.exit(main())
