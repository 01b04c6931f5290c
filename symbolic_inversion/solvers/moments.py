r"""The moment ("tail") homotopy, for networks with one input and one output.

With ``z = (x - 1/2) / (1/2)`` each step's equations are sums over the samples of two
kernels, ``[B f]_p(x)`` and ``B_p(x)`` (the latter times the label).  Expand every kernel
in its Taylor series in ``z`` and keep the *head* (degree ``<= n`` for ``B f``,
``<= n - 1`` for ``B``):

.. math:: \sum_i \mathrm{head}[Bf]_p(z_i) - y_i\, \mathrm{head}[B]_p(z_i)
          = \sum_{k=1}^{n} a_{pk}\,\mu_k - \sum_{k=0}^{n-1} b_{pk}\,\nu_k + n\,a_{p0},

linear in the power sums ``mu_k = sum_i z_i^k`` and ``nu_k = sum_i y_i z_i^k``: ``2n``
unknowns, one solution.  Newton's identities turn the ``mu_k`` into the polynomial with
roots ``z_i``, a Vandermonde solve turns the ``nu_k`` into the labels.  The homotopy then
switches the *tail* (kernel minus head) on,

.. math:: H(x, y, s) = \sum_i \big[(1-s)\,\mathrm{head} + s\,\mathrm{kernel}\big](x_i, y_i) - G,

with ``s = t / (t + gamma (1 - t))`` and complex ``gamma``: at ``t = 1`` it is exactly the
inversion system (no truncation remains).  Taylor coefficients come from the trapezoid
rule on a circle inside the kernels' disk of analyticity (its radius is estimated from the
first layer's nearest complex singularity).  Measured on the single neuron: paths of a few
dozen steps, reliable up to at least n = 24 (see ``benchmarks/bench_recover.py``).
"""

import math

import mpmath

from .homotopy import TraceEquations, combine, combine_matrix, path_info, \
    random_gamma, square_rows, track

__all__ = ["moment_homotopy_path", "taylor_radius", "power_sums_to_polynomial"]

CENTER = mpmath.mpf(1) / 2
HALF_WIDTH = mpmath.mpf(1) / 2


def taylor_radius(trace, steps):
    """A radius (in ``z``) inside which every step's kernels are analytic.

    For ``tanh`` and ``sigmoid`` first layers the pre-activation ``W_k x + b_k`` must stay
    away from the poles at ``i pi / 2`` (``tanh``) or ``i pi`` (``sigmoid``); deeper layers
    are not examined, so the radius is also capped at 2 (data in ``[0, 1]`` is ``|z| <= 1``).
    """
    network = trace.network
    weights, bias = network.layer_slices()[0]
    pole = {"tanh": math.pi / 2, "sigmoid": math.pi}.get(network.activations[0])
    radius = 2.0
    if pole is None:
        return 1.5
    for j in steps:
        theta = [float(v) for v in trace.parameters[j]]
        for k in range(network.layers[1]):
            w = theta[weights.start + k]
            b = theta[bias.start + k] if network.bias else 0.0
            if w == 0:
                continue
            # nearest singularity in x: (i*pole - b) / w ; in z: (x - 1/2) / (1/2)
            x_pole = complex(-b, pole) / w
            radius = min(radius, 0.6 * abs((x_pole - 0.5) / 0.5))
    return max(radius, 0.25)


def power_sums_to_polynomial(power_sums):
    """Coefficients (constant term first) of the monic polynomial whose roots have the
    given power sums ``p_1..p_n`` (Newton's identities).

    >>> import mpmath
    >>> [int(c) for c in power_sums_to_polynomial([mpmath.mpf(3), mpmath.mpf(5)])]
    [2, -3, 1]
    """
    n = len(power_sums)
    e = [power_sums[0] * 0 + 1]
    for k in range(1, n + 1):
        total = 0 * power_sums[0]
        for i in range(1, k + 1):
            term = e[k - i] * power_sums[i - 1]
            total = total + term if i % 2 == 1 else total - term
        e.append(total / k)
    coefficients = [None] * (n + 1)
    for k in range(n + 1):
        coefficients[n - k] = e[k] if k % 2 == 0 else -e[k]
    return coefficients


class _Heads:
    """Taylor heads of every kernel of the square subsystem, evaluated in bulk."""

    def __init__(self, equations, backend, n, radius):
        self.backend = backend
        self.n = n
        number = backend.number
        points = max(4 * n + 16, 64)
        self.P = equations.network.num_parameters
        columns = []
        nodes = [mpmath.mpf(radius) * mpmath.expjpi(2 * mpmath.mpf(l) / points)
                 for l in range(points)]
        x_nodes = [number(CENTER + HALF_WIDTH * z) for z in nodes]
        for theta in equations.thetas:
            values = [equations.kernels(theta, [x]) for x in x_nodes]
            for p in range(self.P):
                columns.append([v[0][p] for v in values])     # B f
            for p in range(self.P):
                columns.append([v[1][p][0] for v in values])  # B
        # a_k = (1/N) sum_l K(z_l) z_l^{-k}
        inverse = [[number(z ** (-k) / points) for z in nodes] for k in range(n + 1)]
        values = [[columns[c][l] for c in range(len(columns))] for l in range(points)]
        coefficients = backend.matmul(inverse, values)   # (n + 1) x (steps * 2P)
        for column in range(len(columns)):
            if column % (2 * self.P) >= self.P:  # the B heads stop at degree n - 1
                coefficients[n][column] = 0 * coefficients[n][column]
        self.coefficients = coefficients

    def evaluate(self, zs):
        """Head values and z-derivatives at ``zs``: two ``len(zs) x columns`` matrices."""
        backend, n = self.backend, self.n
        one = backend.number(1)
        powers, slopes = [], []
        for z in zs:
            row, slope = [one], [0 * one]
            for k in range(1, n + 1):
                slope.append(k * row[-1])
                row.append(row[-1] * z)
            powers.append(row)
            slopes.append(slope)
        return backend.matmul(powers, self.coefficients), backend.matmul(slopes,
                                                                        self.coefficients)


def moment_homotopy_path(trace, steps, backend, rng, dps):
    """One path of the moment homotopy on ``steps``; returns ``(real u | None, info)``."""
    network = trace.network
    if network.input_width != 1 or network.output_width != 1:
        return None, {"reason": "the moment homotopy needs one input and one output"}
    n = trace.samples
    with backend.workdps(dps):
        number = backend.number
        equations = TraceEquations(trace, steps, backend)
        R = square_rows(equations, rng)
        radius = taylor_radius(trace, equations.steps)
        heads = _Heads(equations, backend, n, radius)
        P = heads.P
        half = number(HALF_WIDTH)
        center = number(CENTER)
        # s = 0: linear in (mu_1..mu_n, nu_0..nu_{n-1})
        A = heads.coefficients
        rows, rhs = [], []
        for k in range(len(equations.steps)):
            for p in range(P):
                a = [A[q][k * 2 * P + p] for q in range(n + 1)]
                b = [A[q][k * 2 * P + P + p] for q in range(n + 1)]
                rows.append(a[1:] + [-v for v in b[:n]])
                rhs.append(equations.rhs[k * P + p] - n * a[0])
        moments = backend.solve(combine_matrix(R, rows, backend), combine(R, rhs))
        if not all(math.isfinite(backend.magnitude(v)) for v in moments):
            return None, {"reason": "the truncated (linear) system is singular"}
        polynomial = power_sums_to_polynomial(moments[:n])
        zs = [backend.clean(number(z)) for z in backend.roots(polynomial)]
        vandermonde = [[z ** q for z in zs] for q in range(n)]
        labels = backend.solve(vandermonde, moments[n:])
        start = []
        for z, y in zip(zs, labels):
            start += [backend.clean(center + half * z), backend.clean(y)]

        rows, width = equations.rows, equations.unknowns
        zero = number(0)

        def homotopy(u, s):
            # d = m = 1: u = (x_0, y_0, x_1, y_1, ...); assembled directly (hot loop)
            inputs = [[u[2 * i]] for i in range(n)]
            ys = [u[2 * i + 1] for i in range(n)]
            zs = [(x[0] - center) / half for x in inputs]
            values, slopes = heads.evaluate(zs)
            full = equations.sample_terms(inputs)
            r = 1 - s
            H = [-g for g in equations.rhs]
            Hs = [zero] * rows
            J = [[zero] * width for _ in range(rows)]
            for k, per_sample in enumerate(full):
                base = k * 2 * P
                for i, (Bf, B, dBf, dB) in per_sample.items():
                    y, head, slope = ys[i], values[i], slopes[i]
                    for p in range(P):
                        row = k * P + p
                        hBf, hB = head[base + p], head[base + P + p]
                        bf, b = Bf[p], B[p][0]
                        mixed_B = r * hB + s * b
                        H[row] += r * hBf + s * bf - y * mixed_B
                        Hs[row] += (bf - hBf) - y * (b - hB)
                        target = J[row]
                        target[2 * i] = (r * (slope[base + p] - y * slope[base + P + p]) / half
                                         + s * (dBf[p][0] - y * dB[p][0][0]))
                        target[2 * i + 1] = -mixed_B
            return combine(R, H), combine_matrix(R, J, backend), combine(R, Hs)

        gamma = random_gamma(rng)
        path = track(homotopy, start, backend, gamma)
        return path_info(path, backend, gamma, radius=radius)
