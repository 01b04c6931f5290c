r"""The homotopies the tracker follows: each gives ``start()`` and ``evaluate(u, s)``.

Both are built on the system evaluator (residual and Jacobian of the inversion system on
the chosen steps, in a complex arithmetic) and squared up by
:class:`~symbolic_inversion.solvers.randomized.RandomizedSystem` when the steps give more
equations than unknowns.  ``evaluate(u, s)`` returns ``(H, H_u, H_s)``.

:class:`ParameterHomotopy` (any network)
    The system reads ``F(u) = G`` with ``F`` the sum of the per-sample terms ``B (f - y)``
    at the observed parameters and ``G`` the observed (half, batch-scaled) gradients.
    Random data ``u~`` solves ``F(u) = G~`` with ``G~ = F(u~)``; the homotopy is
    ``H(u, s) = F(u) - (1 - s) G~ - s G``.

:class:`MomentHomotopy` (one input, one output)
    With ``z = (x - c) / h`` each step's equations are sums over the samples of two
    kernels, ``[B f]_p(x)`` and ``B_p(x)`` (the latter times the label).  Expand every
    kernel in its Taylor series in ``z`` and keep the *head* (degree ``<= n`` for
    ``B f``, ``<= n - 1`` for ``B``):

    .. math:: \sum_i \mathrm{head}[Bf]_p(z_i) - y_i\, \mathrm{head}[B]_p(z_i)
              = \sum_{k=1}^{n} a_{pk}\,\mu_k - \sum_{k=0}^{n-1} b_{pk}\,\nu_k + n\,a_{p0},

    linear in the power sums ``mu_k = sum_i z_i^k`` and ``nu_k = sum_i y_i z_i^k``.
    Newton's identities turn the ``mu_k`` into the polynomial with roots ``z_i``, a
    Vandermonde solve turns the ``nu_k`` into the labels: the start.  The homotopy then
    switches the *tail* (kernel minus head) on,
    ``H(x, y, s) = sum_i [(1-s) head + s kernel](x_i, y_i) - G``: at ``s = 1`` it is
    exactly the inversion system.  Taylor coefficients come from the trapezoid rule on a
    circle inside the kernels' disk of analyticity, the kernel values at the circle's
    nodes from the evaluator (complex arithmetic).  ``c = h = 1/2`` (data in [0, 1]) unless
    the truncated system's first two moments, linear in the data's power sums, put the
    data elsewhere: then ``c`` and ``h`` are their mean and spread
    (:meth:`MomentHomotopy.data_scale`, used by the pipeline's moment paths).  Measured on the
    single neuron with data in [0, 1] (other ranges: docs/recovery.md): paths
    of a few dozen steps, reliable up to at least n = 24; at n = 32 (bench_networks, 5
    datasets) paths often stall next to t = 1 (refined from there; on one dataset the
    refinement failed and a parameter-homotopy path found the data).
"""

import math

import mpmath
import numpy as np

from .randomized import RandomizedSystem

__all__ = ["ParameterHomotopy", "MomentHomotopy", "taylor_radius",
           "power_sums_to_polynomial", "solve_steps"]

CENTER = mpmath.mpf(1) / 2
HALF_WIDTH = mpmath.mpf(1) / 2
# The data's half width in standard deviations (uniform data: sqrt(3))
SPREAD = mpmath.sqrt(3)


def solve_steps(trace, square=None):
    """The steps a square solve uses: the fewest leading steps with enough equations."""
    P = trace.network.num_parameters
    unknowns = trace.samples * (trace.network.input_width + trace.network.output_width)
    needed = -(-unknowns // P)
    return list(range(min(needed if square is None else square, trace.steps)))


class ParameterHomotopy:
    """``F(u) - (1 - s) G~ - s G`` from random data ``u~`` (uniform in [-1, 1]).

    The start box matters: measured on 1-4-1 tanh/tanh with one step (data in [-1, 1]),
    12 paths from starts in [0, 1] reached the data on 3 of 8 datasets, from starts in
    [-1, 1] on 7 of 8, mostly with the first or second path.

    ``evaluator`` is the system evaluator on the square subsystem's steps in a complex
    arithmetic; ``rng`` draws the squaring-up matrix, then the start data (or ``start``
    gives them: a flat vector of unknowns).
    """

    def __init__(self, evaluator, arithmetic, rng, start=None):
        self.evaluator = evaluator
        self.randomized = RandomizedSystem(evaluator.rows, evaluator.unknowns, arithmetic, rng)
        # sample by sample, inputs then labels: the order of the unknowns
        if start is None:
            start = [mpmath.mpf(rng.uniform(-1, 1)) for _ in range(evaluator.unknowns)]
        self._start = arithmetic.asarray(list(start))
        start_residual = evaluator.residual(self._start)
        # residual = F - G; G~ - G = residual(u~)
        self.offset = -start_residual                 # G - G~
        self.direction = self.randomized.vector(start_residual)   # dH/ds = G~ - G

    def start(self):
        return self._start

    def evaluate(self, u, s):
        residual, J = self.evaluator.evaluate(u)
        H = residual + self.offset * (1 - s)
        return self.randomized.vector(H), self.randomized.matrix(J), self.direction


def taylor_radius(trace, steps, center=0.5, half_width=0.5):
    """A radius (in ``z = (x - center) / half_width``) inside which every step's kernels
    are analytic.

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
            # nearest singularity in x: (i*pole - b) / w ; in z: (x - center) / half_width
            x_pole = complex(-b, pole) / w
            radius = min(radius, 0.6 * abs((x_pole - center) / half_width))
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


class MomentHomotopy:
    """The moment ("tail") homotopy of a one-input, one-output network.

    ``evaluator``: the system evaluator on the square subsystem's steps, complex
    arithmetic, every sample in every step (full batch), ``steps`` of them; ``radius``:
    the Taylor circle's radius in ``z`` (:func:`taylor_radius`).  ``rng`` draws the
    squaring-up matrix.
    """

    # The tracker's predictor for these paths (see tracking.py): the cubic Hermite
    # extrapolation costs one evaluation per step (Runge-Kutta: four, plus a tangent).
    # Measured on the single neuron, bench_networks datasets 0-2, evaluations per path
    # Runge-Kutta -> Hermite: n = 8 79/187/101 -> 60/118/77, n = 16 304/320/403 ->
    # 161/209/209, n = 24 398/418/516 -> 205/217/295; the same endpoints and digits.
    # Dataset 2 of n = 24 stalls next to t = 1 with either predictor (the pipeline
    # refines it from there).
    predictor = "hermite"

    def __init__(self, evaluator, arithmetic, rng, radius, steps, center=CENTER,
                 half_width=HALF_WIDTH):
        center, half_width = mpmath.mpf(center), mpmath.mpf(half_width)
        self.evaluator = evaluator
        self.arithmetic = arithmetic
        self.randomized = RandomizedSystem(evaluator.rows, evaluator.unknowns, arithmetic, rng)
        self.radius = radius
        self.n = n = evaluator.unknowns // 2
        self.steps = steps
        self.P = evaluator.rows // steps
        self.half = arithmetic.asarray([half_width])[0]
        self.center = arithmetic.asarray([center])[0]
        self.center_value, self.half_width = center, half_width
        self.start_failure = ""
        # Taylor coefficients of every kernel: a_k = (1/N) sum_l K(z_l) z_l^{-k}
        points = max(4 * n + 16, 64)
        nodes = [mpmath.mpf(radius) * mpmath.expjpi(2 * mpmath.mpf(l) / points)
                 for l in range(points)]
        x_nodes = arithmetic.asarray([[center + half_width * z] for z in nodes])
        Bf, B = evaluator.sample_terms(x_nodes)           # (E, N, P), (E, N, P, 1)
        values = np.concatenate([Bf, B[..., 0]], axis=2)  # (E, N, 2P)
        values = values.transpose(1, 0, 2).reshape(points, -1)
        inverse = arithmetic.asarray([[z ** (-k) / points for z in nodes]
                                      for k in range(n + 1)])
        coefficients = self._matmul(inverse, values)       # (n + 1, E * 2P)
        # The kernels are real on the real axis (real parameters), so their Taylor
        # coefficients at the real centre are real: the trapezoid rule's imaginary parts
        # are rounding.  Real coefficients make every product with them cheaper
        # (python-flint: acb x arb; mpmath: mpc x mpf).
        coefficients = _real_parts(coefficients).reshape(n + 1, self.steps, 2, self.P)
        coefficients[n, :, 1, :] = 0 * coefficients[n, :, 1, :]  # B heads: degree n - 1
        self.coefficients = coefficients.reshape(n + 1, -1)
        a = coefficients[:, :, 0, :].reshape(n + 1, -1)            # (n + 1, E P): B f
        b = coefficients[:, :, 1, :].reshape(n + 1, -1)            # B (degree n - 1)
        # The heads' sum over the samples needs only the moments:
        # sum_i head(z_i) = sum_k c_k mu_k.
        self._values = arithmetic.constant_matrix(np.concatenate([a, -b]))
        # Their derivatives d/dz sum_k c_k z^k = sum_k (k + 1) c_(k+1) z^k (per unit of
        # x): one product of the powers z_i^k (k < n) with [a', b', b] gives the
        # x-derivatives (a' - y_i b') and the y-derivatives (-b) of every sample; a
        # quarter fewer products than the powers and slopes times every coefficient.
        scale = np.array([k + 1 for k in range(n)], dtype=object)[:, None] / self.half
        self._slopes = arithmetic.constant_matrix(np.concatenate(
            [a[1:] * scale, b[1:] * scale, b[:n]], axis=1))      # (n, 3 E P)

    def _matmul(self, A, B):
        return self.arithmetic.matmul(A, B)

    def moments(self):
        """The solution of the truncated (heads only) system: the power sums
        ``mu_1..mu_n`` of the ``z_i`` then ``nu_0..nu_(n-1)``, or ``None`` (singular)."""
        A, n, P = self.arithmetic, self.n, self.P
        c = self.coefficients.reshape(n + 1, self.steps, 2, P)
        a, b = c[:, :, 0, :], c[:, :, 1, :]
        rows = np.concatenate([a[1:].reshape(n, -1).T, -b[:n].reshape(n, -1).T], axis=1)
        rhs = self.evaluator.rhs - n * a[0].reshape(-1)
        solved = A.solve(self.randomized.matrix(rows), self.randomized.vector(rhs))
        return solved.x if solved.ok else None

    def data_scale(self):
        """``(center, half_width)`` of the inputs as the truncated system sees them: the
        mean and spread (``SPREAD`` standard deviations, at least ``HALF_WIDTH``) from
        its first two moments, which are linear in the data's power sums; ``None`` when
        the system is singular or the moments are not those of real data."""
        moments = self.moments()
        if moments is None:
            return None
        n, A = self.n, self.arithmetic
        m1 = mpmath.re(A.to_mpmath(moments[0])) / n
        m2 = mpmath.re(A.to_mpmath(moments[1])) / n
        variance = m2 - m1 ** 2
        if not (mpmath.isfinite(m1) and mpmath.isfinite(variance)) or variance < 0:
            return None
        center = self.center_value + self.half_width * m1
        spread = self.half_width * mpmath.sqrt(variance)
        return center, max(SPREAD * spread, HALF_WIDTH)

    def start(self):
        """The root at ``s = 0`` (heads only: linear in the moments), or ``None``."""
        A, n, P = self.arithmetic, self.n, self.P
        c = self.coefficients.reshape(n + 1, self.steps, 2, P)
        # row (k, p): sum_q a_q mu_q - sum_q b_q nu_q = G_kp - n a_0
        a, b = c[:, :, 0, :], c[:, :, 1, :]                     # (n + 1, E, P)
        rows = np.concatenate([a[1:].reshape(n, -1).T, -b[:n].reshape(n, -1).T], axis=1)
        rhs = self.evaluator.rhs - n * a[0].reshape(-1)
        solved = A.solve(self.randomized.matrix(rows), self.randomized.vector(rhs))
        if not solved.ok:
            self.start_failure = "the truncated (linear) system is singular"
            return None
        moments = solved.x
        try:
            zs = A.asarray(A.roots(power_sums_to_polynomial(list(moments[:n]))))
        except mpmath.libmp.NoConvergence:  # (moments far outside the data's range)
            self.start_failure = "the roots of the start polynomial did not converge"
            return None
        if hasattr(A, "mid"):
            zs = A.mid(zs)
        vandermonde = A.asarray([[z ** q for z in zs] for q in range(n)])
        labels = A.solve(vandermonde, moments[n:])
        if not labels.ok:
            self.start_failure = "the start's Vandermonde system is singular (equal roots)"
            return None
        u = np.empty(2 * n, dtype=object)
        u[0::2] = zs * self.half + self.center
        u[1::2] = labels.x
        return A.mid(u) if hasattr(A, "mid") else u

    def evaluate(self, u, s):
        n = self.n
        xs, ys = u[0::2], u[1::2]
        zs = (xs - self.center) / self.half
        powers = np.empty((n, n + 1), dtype=object)             # z_i^k
        powers[:, 0] = zs[0] ** 0
        for k in range(1, n + 1):
            powers[:, k] = powers[:, k - 1] * zs
        moments = np.concatenate([powers.sum(axis=0), ys @ powers])   # mu_k, nu_k
        head_lhs = self._matmul(moments[None, :], self._values)[0]
        products = self._matmul(powers[:, :n], self._slopes)    # (n, 3 E P)
        m = products.shape[1] // 3
        residual, J_full = self.evaluator.evaluate(u)
        lhs = residual + self.evaluator.rhs
        r = 1 - s
        # array * scalar: mpmath's scalar * array converts the array through repr
        H = head_lhs * r + lhs * s - self.evaluator.rhs
        Hs = lhs - head_lhs
        J_head = np.empty((m, 2 * n), dtype=object)
        J_head[:, 0::2] = (products[:, :m] - ys[:, None] * products[:, m:2 * m]).T
        J_head[:, 1::2] = -products[:, 2 * m:].T
        Hu = J_head * r + J_full * s
        R = self.randomized
        return R.vector(H), R.matrix(Hu), R.vector(Hs)


def _real_parts(array):
    """Real parts of an array of complex numbers (numpy, mpmath or python-flint)."""
    if array.dtype != object:
        return array.real
    return np.frompyfunc(lambda v: v.real, 1, 1)(array)
