r"""The span start: every sample from one gradient step, one sample at a time.

For any feed-forward network and loss, the gradient of the first weight layer in one
step is a sum of one rank-one term per sample (the observation behind SPEAR and the
ReLU solver, :mod:`~symbolic_inversion.solvers.relu`, here for smooth activations):

.. math:: G = [\partial L/\partial W_1 \;|\; \partial L/\partial b_1]
          = c \sum_i \delta_i \tilde x_i^T, \qquad
          \delta_i = K(x_i)\, \rho_i,

with ``xtilde_i = [x_i; 1]``, ``rho_i = ell(f(x_i)) - y_i`` the sample's residual (the
loss's link, :mod:`~symbolic_inversion.losses`; ``c`` its reduction factor, moved to the
right-hand side as in the inversion system) and ``K(x)`` the back-propagation of an
output residual down to the first layer's pre-activation, ``K(x) = S_1 W_2^T S_2 \cdots
W_L^T S_L`` (``S_l`` the diagonal of activation slopes of layer ``l``).  When the
``n`` samples are fewer than the layer's width ``w`` and its fan-in plus one, ``G`` has
rank ``n`` (generically) and

- **row space**: every ``xtilde_i`` lies in the ``n``-dimensional row space of ``G``; with
  its last coordinate 1, ``x_i`` lies in an affine space of dimension ``n - 1``:
  ``x = x_0 + M s``, ``s`` in ``R^(n-1)``;
- **column space**: every ``delta_i = K(x_i) rho_i`` lies in the column space of ``G``:
  ``Q^T K(x_i) rho = 0`` with ``Q`` the ``w x (w - n)`` complement of that space.

Each sample's equations are independent of the other samples': ``w - n`` equations in
``(n - 1) + m`` unknowns ``(s, rho)`` (``rho`` up to scale), whose roots are, generically,
exactly the ``n`` samples.  The residual is taken relative, ``Q^T a / |a|`` with ``a =
K(x) rho``, so that saturated units (``a -> 0`` far from the data) are no root.

Method (float64, numpy):

1. ``G`` from the inversion system's right-hand side of the first step (the optimizer
   undone, known samples' terms removed: :class:`~symbolic_inversion.system.
   SystemEvaluator`); its singular values must show rank ``n`` with a clear gap
   (:func:`layer_span`), else the start does not apply (``no_start``, with the reason).
2. Levenberg-Marquardt on every start at once (batched): the Jacobian in ``rho``
   analytic, in ``s`` by forward differences (one batched forward pass of the layer-wise
   program, :mod:`~symbolic_inversion.program`, for all starts and directions).  Starts:
   first the rows of ``G`` scaled to a last coordinate of 1 (each a weighted mean of the
   samples, often dominated by one), then random points of the affine space, in rounds,
   until ``n`` distinct roots are found or the budget is spent.
3. With more than ``n`` roots, the ``n`` that explain ``G`` are chosen by the linear
   least-squares fit ``G = sum_i K(x_i) rho_i xtilde_i^T`` (largest ``|rho_i|``).
4. Labels: with the inputs known the system is linear in the labels; the least-squares
   labels on the first step's equations (:meth:`SystemEvaluator.solve_labels
   <symbolic_inversion.system.SystemEvaluator.solve_labels>`).

The result is a *start*: the cold-start pipeline (:mod:`~symbolic_inversion.solvers.
pipeline`, kind ``"span"``) hands it to the :class:`~symbolic_inversion.solvers.judge.
Judge`, which refines it on every step of the trace and alone decides the status.

Limits: the first layer needs a bias (the affine normalisation); ``n`` below
``min(w, fan-in + 1)``, with the gradient's rank visible in double (a binary-float
trace's rounding may leave a small gap: rank ``n`` is taken when ``sigma_{n+1} <=
NOISY_RANK_GAP sigma_n``, and roots are accepted to a residual scaled by that ratio;
the start is then only as good as float32's digits, the judge decides); the first step must use
every sample in the gradient form (full-batch gd, or momentum's first step); a
search that finds fewer than ``n`` roots ends as ``no_root`` with the count.  Samples
with equal inputs merge into one root.

Examples
========

Six samples through a 12-16-1 tanh/identity network, from one exact 60-digit step:

>>> import numpy as np
>>> from symbolic_inversion import Network, simulate
>>> from symbolic_inversion.solvers.span import span_start
>>> net = Network([12, 16, 1], ["tanh", "identity"])
>>> rng = np.random.default_rng(1)
>>> init = [f"{v:.4f}" for v in rng.uniform(-0.5, 0.5, net.num_parameters)]
>>> X = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (6, 12))]
>>> Y = [[f"{v:.3f}"] for v in rng.uniform(-1, 1, 6)]
>>> trace = simulate(net, X, Y, lr="0.1", epochs=1, init=init, dps=60)
>>> start = span_start(trace, seed=0)
>>> start.code, len(start.inputs)
('found', 6)
>>> truth = np.array(X, dtype=float)
>>> found = np.array(sorted(start.inputs.tolist()))
>>> bool(np.abs(found - truth[np.lexsort(truth.T[::-1])]).max() < 1e-8)
True
"""

import time
from dataclasses import dataclass, field

import mpmath
import numpy as np

from ..activations import get_activation
from ..arithmetic import get_arithmetic
from ..limits import check_time
from ..system import InversionSystem
from .executors import one_blas_thread
from .path_result import PathCode, PathResult

__all__ = ["span_applies", "layer_span", "LayerSpan", "SpanStart", "span_start",
           "span_search"]

# Singular values of G: rank n needs sigma_n above this (relative to sigma_1) ...
RANK_FLOOR = 1e-11
# ... and a gap: sigma_{n+1} at most this fraction of sigma_n.
RANK_GAP = 1e-4
# A binary-float trace (float32) records G with noise that can leave only a few digits of
# gap: the sample count n is known, so rank n is taken when sigma_{n+1} is at most this
# fraction of sigma_n (the tail is rounding noise, measured: 6.6e-4 on a float32 digits
# classifier, 64-256-10 tanh, b = 16) ...
NOISY_RANK_GAP = 0.1
# ... and a root's relative residual may then be this many times the tail's relative size
# (the subspaces are off by about sigma_{n+1} / sigma_n: Wedin's bound)
NOISE_FACTOR = 15
# A start is a root when its relative residual |Q^T a| / |a| falls below this (double
# resolves the roots of a rank-n gradient to about 1e-12; float64 traces' own rounding
# leaves more: the judge decides on every step).
ROOT_RESIDUAL = 1e-7
# The per-sample equations of a federated round's one-step approximation (:func:`local_path`)
# are themselves approximate: the true samples' relative residual, measured on 64-32-10
# GELU and tanh digits clients (K = 5, lr 0.1, three datasets each), 0.002-0.011; roots are
# accepted to this, and the judge refines them on the exact K-step map.
APPROXIMATE_ROOT = 0.03
# ... and in the rounds after the first, whose equations carry the found roots' errors
DEFLATED_RESIDUAL = 1e-5
# Two roots closer than this (relative to 1 + |x|) are one sample.
SAME_ROOT = 1e-5
# Levenberg-Marquardt iterations per round of starts, and rounds before giving up.
ITERATIONS = 60
ROUNDS = 40
# random starts per round (besides the rows of G in the first round)
STARTS = 32
# forward-difference step in s (relative to 1 + |s|)
DIFFERENCE = 1e-7


def span_applies(trace, used=None):
    """Why the span start does not apply to ``trace`` (``""`` when it does): analytic
    activations, a first-layer bias, the gradient form with every sample in the first
    step, and ``n`` below the first layer's rank bound ``min(w, fan-in + 1)``."""
    network = trace.network
    if any(get_activation(name).piecewise_linear for name in network.activations[:-1]):
        # relu's slopes are constant between kinks, identity's everywhere: K(x) then
        # does not pin x down
        return ("needs smooth nonlinear hidden activations (relu networks: "
                "method='relu')")
    output = network.activations[-1]
    if get_activation(output).piecewise_linear and output != "identity":
        return f"needs a smooth or identity output activation, got {output}"
    if not network.bias:
        return "needs a first-layer bias (the row space's affine normalisation)"
    if network.depth < 2:
        return "needs a hidden layer (one weight layer has rank-one gradients)"
    if trace.rounds:
        return "federated rounds: a round is not one gradient"
    n = trace.samples
    bound = min(network.layers[1], network.input_width + 1)
    if n >= bound:
        return (f"n = {n} samples reach the first layer's rank bound min(width "
                f"{network.layers[1]}, fan-in + 1 = {network.input_width + 1}) = {bound}")
    if n < 2:
        return "one sample: the closed form applies"
    width, m = network.layers[1], network.output_width
    if width - n <= (n - 1) + (m - 1):
        # fewer equations per sample than unknowns: its roots are not isolated
        return (f"each sample's equations are not overdetermined: width - n = {width - n} "
                f"column-space equations for (n - 1) + (m - 1) = {n + m - 2} unknowns")
    try:
        system = InversionSystem.from_trace(trace, 1 if used is None else min(used, 1))
    except Exception as error:  # noqa: BLE001 - a trace this start cannot read
        return f"no first-step system ({error})"
    if system.form != "gradient":
        return f"the first step is not a gradient ({system.form} form: {trace.optimizer.name})"
    if sorted(system.batch(0)) != list(range(system.samples)):
        return "the first step does not use every sample"
    return ""


@dataclass
class LayerSpan:
    """The first layer's gradient ``G`` (``w x (d + 1)``, SVD ``U S V^T``) split by its
    rank ``n``: ``rows`` (``n x (d + 1)``) and ``columns`` (``w x n``) are orthonormal
    bases of its row and column spaces, ``singular`` its singular values; ``x = x0 + M
    s`` parametrises the affine space where samples not yet found lie, ``Q`` spans the
    complement of the space where their signals ``delta`` lie (:meth:`deflated`)."""

    G: np.ndarray
    rows: np.ndarray
    columns: np.ndarray
    singular: np.ndarray
    x0: np.ndarray = None
    M: np.ndarray = None
    Q: np.ndarray = None
    #: the complement of the whole column space (``w x (w - n)``), before any deflation
    complement: np.ndarray = None

    @property
    def free(self):
        """Dimension of the affine space (``n - 1`` before any sample is found)."""
        return self.M.shape[1]

    def inputs(self, s):
        """Inputs at the affine coordinates ``s`` (``(..., free)``)."""
        return self.x0 + s @ self.M.T

    def coordinates(self, X):
        """Least-squares affine coordinates of inputs ``X`` (``(N, d)``)."""
        if not self.free:
            return np.zeros((len(X), 0))
        return np.linalg.lstsq(self.M, (X - self.x0).T, rcond=None)[0].T

    def deflated(self, found_inputs, found_signals):
        """The span restricted to the samples not yet found, given the inputs and
        signals ``delta_i`` (any scale) of found ones.  With ``c_i`` the row-space
        coordinates of ``xtilde_i`` and ``a_i = U^T delta_i``, ``U^T G V = S = sum_i a_i
        c_i^T`` gives ``c_i^T S^-1 a_j = [i = j]``: every other sample ``j`` has
        ``c_j^T S^-1 a_i = 0`` (a linear constraint on its input) and ``c_i^T S^-1 a_j =
        0`` (on its signal)."""
        n, d = len(self.rows), self.G.shape[1] - 1
        sigma = self.singular[:n]
        constraints, values = [self.rows[:, -1]], [1.0]
        extra = []
        for x, delta in zip(found_inputs, found_signals):
            c = self.rows @ np.append(x, 1.0)
            a = self.columns.T @ delta
            constraints.append(a / sigma / (np.linalg.norm(a / sigma) + 1e-300))
            values.append(0.0)
            extra.append(self.columns @ (c / sigma))
        constraints = np.array(constraints)
        c0 = np.linalg.lstsq(constraints, np.array(values), rcond=None)[0]
        null = np.linalg.svd(constraints)[2][len(constraints):].T
        Q = self.complement
        if extra:
            Q = np.linalg.qr(np.concatenate([Q, np.array(extra).T], axis=1))[0]
        return LayerSpan(self.G, self.rows, self.columns, self.singular,
                         (self.rows.T @ c0)[:d], (self.rows.T @ null)[:d], Q, self.complement)


def layer_span(G, n, gap=RANK_GAP):
    """The :class:`LayerSpan` of ``G`` for ``n`` samples, or a reason (a string) when
    its singular values do not show rank ``n`` (``sigma_{n+1} <= gap sigma_n``)."""
    U, singular, Vt = np.linalg.svd(G, full_matrices=True)
    top = singular[0] if singular.size else 0.0
    if not top > 0 or not np.isfinite(top):
        return "the first layer's gradient is zero or not finite"
    shown = ", ".join(f"{v / top:.1e}" for v in singular[max(n - 2, 0):n + 2])
    if singular[n - 1] < RANK_FLOOR * top:
        return (f"the first layer's gradient has rank below n = {n} (relative singular "
                f"values {shown}): samples share a direction or are invisible")
    if n < len(singular) and singular[n] > gap * singular[n - 1]:
        return (f"the first layer's gradient shows no rank gap at n = {n} (relative "
                f"singular values {shown}: rounding too coarse, or more samples)")
    if not np.linalg.norm(Vt[:n, -1]) > 0:
        return "the row space has no bias coordinate"
    whole = LayerSpan(G, Vt[:n], U[:, :n], singular, complement=U[:, n:])
    return whole.deflated([], [])


def first_layer_jacobians(program, theta, X):
    """``K(x)^T`` for every row of ``X``: ``(N, m, w)``, the first layer's pre-activation
    signal of each output direction (``delta = K rho``), by the layer-wise program's
    forward pass and the compiled activations' slopes.  ``theta`` of shape ``(T, P)``
    (the points of a local-steps path, :func:`local_path`): the mean over its rows."""
    if np.ndim(theta) == 2:
        return sum(first_layer_jacobians(program, point, X) for point in theta) / len(theta)
    arithmetic = get_arithmetic("float64")
    pre, post = program.layer_values(theta[None, :], X, arithmetic=arithmetic)
    slopes = [None if activation.slope is None else activation.slope(z[0], a[0])
              for activation, z, a in zip(program.activations(arithmetic), pre, post[1:])]
    blocks = program.blocks(theta)
    m = program.network.output_width
    rows = np.broadcast_to(np.eye(m), (len(X), m, m)).copy()
    if slopes[-1] is not None:
        rows = rows * slopes[-1][:, None, :]
    for layer in range(len(blocks) - 1, 0, -1):
        rows = rows @ blocks[layer][0]
        if slopes[layer - 1] is not None:
            rows = rows * slopes[layer - 1][:, None, :]
    return rows


def local_path(trace, theta):
    """The parameters at which a one-step approximation's gradient was taken (``(T,
    P)``), or ``theta`` itself (``(P,)``).  A federated round of K plain local steps
    (``trace`` from :meth:`Trace.one_step_approximation
    <symbolic_inversion.trace.Trace.one_step_approximation>`) sums K gradients taken
    along the way from ``theta_0`` to ``theta_1``; the row space of their first layer is
    still the samples' (every term is ``delta xtilde^T``), and their signals are
    ``sum_k K(x; theta_k) rho_k``: with ``theta_k`` on the straight line between the
    recorded ends (second order in the learning rate, where ``theta_0`` alone is first
    order) and one ``rho``, the column-space equations keep their form.  Measured on a
    64-32-10 GELU digits client (K = 5, lr 0.1): the true samples' relative residual
    0.004-0.005 with the path, 0.09-0.10 at ``theta_0`` alone."""
    original = getattr(trace, "approximates", None)
    K = original.optimizer.local_steps if original is not None else 1
    if K <= 1:
        return theta
    end = np.array([float(v) for v in trace.parameters[1]])
    return np.array([theta + k / K * (end - theta) for k in range(K)])


class _Residual:
    """The per-sample equations ``F(s, rho) = Q^T a / |a|``, ``a = K(x(s))^T rho``, and
    their Jacobian, for a batch of starts."""

    def __init__(self, span, program, theta):
        self.span, self.program, self.theta = span, program, theta

    def values(self, s, rho, jacobian=True):
        """``(F, J)`` of shapes ``(S, w - n)`` and ``(S, w - n, n - 1 + m)``."""
        span = self.span
        S, k = s.shape
        if jacobian:
            steps = DIFFERENCE * (1 + np.abs(s))                       # (S, k)
            shifted = s[:, None, :] + np.eye(k)[None] * steps[:, None, :]
            points = np.concatenate([s[:, None, :], shifted], axis=1)  # (S, 1 + k, k)
        else:
            points = s[:, None, :]
        K = first_layer_jacobians(self.program, self.theta,
                                  span.inputs(points.reshape(S * points.shape[1], k)))
        K = K.reshape(S, points.shape[1], *K.shape[1:])                # (S, 1+k, m, w)
        a = (rho[:, None, None, :] @ K)[:, :, 0, :]                    # (S, 1+k, w)
        size = np.linalg.norm(a, axis=2, keepdims=True)
        size = np.where(size > 0, size, 1e-300)
        F_all = (a @ span.Q) / size                                    # (S, 1+k, w-n)
        F = F_all[:, 0]
        if not jacobian:
            return F, None
        ds = (F_all[:, 1:] - F[:, None, :]) / steps[:, :, None]        # (S, k, w-n)
        K0 = K[:, 0]                                                   # (S, m, w)
        projected = K0 @ span.Q                                        # (S, m, w-n)
        along = (K0 @ a[:, 0, :, None])[:, :, 0] / size[:, 0] ** 2     # (S, m)
        drho = (projected - along[:, :, None] * F[:, None, :] * size[:, 0, :, None]) \
            / size[:, 0, :, None]                                      # (S, m, w-n)
        return F, np.concatenate([ds, drho], axis=1).transpose(0, 2, 1)


def _initial_rho(residual, s):
    """Per start, the residual direction that best fits the column space at ``x(s)``:
    the smallest right singular vector of ``Q^T K(x)^T``."""
    K = first_layer_jacobians(residual.program, residual.theta, residual.span.inputs(s))
    projected = (K @ residual.span.Q).transpose(0, 2, 1)              # (S, w-n, m)
    _, _, Vt = np.linalg.svd(projected)
    return Vt[:, -1, :]


def _levenberg_marquardt(residual, s, rho, iterations=ITERATIONS, root=ROOT_RESIDUAL):
    """Batched Levenberg-Marquardt from every start: ``(s, rho, |F|)`` at the end
    (a start stops well below ``root``, the residual of a root)."""
    F, J = residual.values(s, rho)
    value = np.linalg.norm(F, axis=1)
    damping = np.full(len(s), 1e-3)
    active = np.isfinite(value)
    k = s.shape[1]
    for _ in range(iterations):
        check_time()
        active &= value > root * 1e-5
        if not active.any():
            break
        index = np.flatnonzero(active)
        Ja, Fa = J[index], F[index]
        gram = np.einsum("sri,srj->sij", Ja, Ja)
        diagonal = np.einsum("sii->si", gram)
        scaled = gram + damping[index, None, None] * (
            np.eye(gram.shape[1])[None] * (diagonal[:, :, None] + 1e-12))
        rhs = -np.einsum("sri,sr->si", Ja, Fa)
        try:
            delta = np.linalg.solve(scaled, rhs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = np.stack([np.linalg.lstsq(A, b, rcond=None)[0]
                              for A, b in zip(scaled, rhs)])
        trial_s = s[index] + delta[:, :k]
        trial_rho = rho[index] + delta[:, k:]
        trial_rho /= np.linalg.norm(trial_rho, axis=1, keepdims=True) + 1e-300
        trial_F, trial_J = residual.values(trial_s, trial_rho)
        trial_value = np.linalg.norm(trial_F, axis=1)
        better = np.isfinite(trial_value) & (trial_value < value[index])
        good = index[better]
        s[good], rho[good] = trial_s[better], trial_rho[better]
        F[good], J[good], value[good] = trial_F[better], trial_J[better], trial_value[better]
        damping[good] = np.maximum(damping[good] / 3, 1e-12)
        bad = index[~better]
        damping[bad] *= 4
        active[bad] &= damping[bad] < 1e8
    return s, rho, value


@dataclass
class SpanStart:
    """What the span search found: ``code`` (``"found"``, ``"no_start"`` or
    ``"no_root"``), the ``inputs`` (``(n, d)`` floats) and ``labels`` when found, the
    ``reason`` otherwise, and ``stats``."""

    code: str
    inputs: np.ndarray = None
    labels: np.ndarray = None
    reason: str = ""
    stats: dict = field(default_factory=dict)


def _new_roots(roots, X, rho):
    """The rows of ``X`` (with their ``rho``) that are neither in ``roots`` nor repeated
    (within ``SAME_ROOT``)."""
    new = []
    for x, r in zip(X, rho):
        if all(np.abs(x - other).max() > SAME_ROOT * (1 + np.abs(other).max())
               for other in [root for root, _ in roots + new]):
            new.append((x, r))
    return new


# |c_i^T S^-1 a_j| relative to the diagonal's above which two roots cannot both be samples
DUAL_TOLERANCE = 1e-3
# ... and between the roots of a one-step approximation's equations, which are 1e-2 off
# the samples and so are their duals: measured on 64-32-10 tanh digits clients (K = 5,
# float64; the larger of a pair's two entries), true pairs up to 0.11 (the allowance 0.03
# dropped two of four images and the search timed out), a spurious root 0.43-0.92 against
# the true ones; a spurious root kept is rejected by the judge on the exact K-step map
APPROXIMATE_DUAL = 0.12


def _dual_consistent(span, program, theta, roots, new, tolerance=DUAL_TOLERANCE):
    """The roots of ``roots + new`` that can be samples together: samples satisfy
    ``c_i^T S^-1 a_j = [i = j]`` (:meth:`LayerSpan.deflated`), a spurious root of the
    per-sample equations (possible when they have few spare equations) does not; the
    root in most conflicts goes first (a new one before an old one), until none is
    left."""
    if not new:
        return roots
    everything = roots + new
    X = np.array([x for x, _ in everything])
    K = first_layer_jacobians(program, theta, X)
    sigma = span.singular[:len(span.rows)]
    c = np.concatenate([X, np.ones((len(X), 1))], axis=1) @ span.rows.T      # (R, n)
    a = np.stack([span.columns.T @ (k.T @ r) for k, (_, r) in zip(K, everything)])
    dual = c @ (a / sigma).T                                                    # (R, R)
    scale = np.sqrt(np.abs(np.diag(dual)))
    with np.errstate(all="ignore"):
        relative = np.abs(dual) / np.outer(scale, scale)
    conflict = ~(relative <= tolerance)
    np.fill_diagonal(conflict, ~(scale > 0))
    conflict = conflict | conflict.T
    keep = list(range(len(everything)))
    old = len(roots)
    while True:
        counts = {i: sum(conflict[i, j] for j in keep if j != i) + conflict[i, i]
                  for i in keep}
        worst = max(keep, key=lambda i: (counts[i], i >= old))
        if counts[worst] == 0:
            break
        keep.remove(worst)
    return [everything[i] for i in keep]


def _choose(span, program, theta, roots, n):
    """The ``n`` roots that explain ``G``: the least-squares fit ``G = sum_i K(x_i)^T
    rho_i xtilde_i^T`` over every root, the ``n`` with the largest ``|rho_i|``."""
    X = np.array(roots)
    K = first_layer_jacobians(program, theta, X)                       # (R, m, w)
    tilde = np.concatenate([X, np.ones((len(X), 1))], axis=1)         # (R, d+1)
    columns = np.einsum("rmw,rc->rmwc", K, tilde).reshape(len(X) * K.shape[1], -1)
    rho = np.linalg.lstsq(columns.T, span.G.reshape(-1), rcond=None)[0]
    weight = np.linalg.norm(rho.reshape(len(X), -1), axis=1)
    return X[np.sort(np.argsort(-weight)[:n])]


def _starts(span, row_starts, rng, count, spread):
    """Affine coordinates of starts: the rows of ``G`` as inputs (projected on the
    current affine space) first, then random points of it."""
    s = span.coordinates(row_starts) if len(row_starts) else np.zeros((0, span.free))
    s = s[np.linalg.norm(s, axis=1) < 10 * spread * np.sqrt(span.free + 1)]
    s = s[rng.permutation(len(s))[:count]]
    random = rng.normal(size=(max(count - len(s), count // 4), span.free)) * spread
    return np.concatenate([s, random])


def labels_from_signals(program, theta, G, X):
    """The labels of the inputs ``X`` (``(n, d)``) that explain the first layer's
    gradient ``G`` (in the system's units, the loss's factor moved to the right): the
    signals ``delta_i`` by the linear solve ``G = sum_i delta_i xtilde_i^T``, each
    residual ``rho_i`` by least squares from ``delta_i = K(x_i) rho_i``, and ``y_i =
    ell(f(x_i)) - rho_i`` (the loss's link, :meth:`Loss.link
    <symbolic_inversion.losses.Loss.link>`: labels enter linearly).  ``None`` when
    the inputs do not determine them (``xtilde`` rank deficient, or not finite)."""
    tilde = np.concatenate([X, np.ones((len(X), 1))], axis=1)          # (n, d+1)
    if np.linalg.matrix_rank(tilde) < len(X):
        return None
    signals = np.linalg.lstsq(tilde.T, G.T, rcond=None)[0]             # (n, w)
    K = first_layer_jacobians(program, theta, X)                       # (n, m, w)
    rho = np.stack([np.linalg.lstsq(k.T, delta, rcond=None)[0]
                    for k, delta in zip(K, signals)])
    arithmetic = get_arithmetic("float64")
    points = theta if np.ndim(theta) == 2 else theta[None, :]
    links = [program.loss.link(program.forward(point[None, :], X, arithmetic=arithmetic)[0],
                               arithmetic) for point in points]
    labels = sum(links) / len(links) - rho
    return labels if np.all(np.isfinite(labels)) else None


def span_start(trace, used=None, seed=0, rounds=ROUNDS, starts=STARTS):
    """The span search on ``trace``'s first step (see the module docstring): a
    :class:`SpanStart`; float64 throughout.  ``used``: the steps the caller uses (the
    start reads only the first)."""
    with one_blas_thread():   # many small matrices: BLAS threads only wait (executors.py)
        return _span_start(trace, used, seed, rounds, starts)


def _span_start(trace, used, seed, rounds, starts):
    started = time.perf_counter()
    why = span_applies(trace, used)
    if why:
        return SpanStart("no_start", reason=f"span start: {why}")
    system = InversionSystem.from_trace(trace, 1)
    evaluator = system.evaluator("float64", [0])
    network, n = trace.network, system.samples
    d, w = network.input_width, network.layers[1]
    theta = local_path(trace, np.asarray(evaluator.thetas[0], dtype=float))
    rhs = np.asarray(evaluator.rhs, dtype=float)
    weights, bias = network.layer_slices()[0]
    G = np.concatenate([rhs[weights].reshape(w, d), rhs[bias][:, None]], axis=1)
    stats = {"samples": n}
    if not np.all(np.isfinite(G)):
        return SpanStart("no_start", reason="span start: the first gradient is not finite",
                         stats=stats)
    # a binary-float trace's rounding may leave little gap: n is known, take rank n
    span = layer_span(G, n, RANK_GAP if trace.dtype is None else NOISY_RANK_GAP)
    if isinstance(span, str):
        return SpanStart("no_start", reason=f"span start: {span}", stats=stats)
    stats["rank_gap"] = float(span.singular[n] / span.singular[n - 1]) \
        if n < len(span.singular) else 0.0
    # the roots' residual allowance: the exact subspaces' or the noisy ones'
    root = max(ROOT_RESIDUAL, NOISE_FACTOR * stats["rank_gap"],
               APPROXIMATE_ROOT if np.ndim(theta) == 2 else 0)
    deflated_root = max(DEFLATED_RESIDUAL, 10 * root)
    program = evaluator.program
    whole = span
    rng = np.random.default_rng(seed)
    roots, tried, rounds_used = [], 0, 0
    # the rows of G with a clear bias entry, as inputs: weighted means of the samples
    usable = np.abs(G[:, -1]) > 1e-8 * np.abs(G).max()
    row_starts = G[usable, :d] / G[usable, -1:]
    row_starts = row_starts[np.all(np.isfinite(row_starts), axis=1)]
    spread = max(1.0, float(np.linalg.norm(span.x0)) / np.sqrt(n))
    with np.errstate(all="ignore"):
        while len(roots) < n and rounds_used < rounds:
            rounds_used += 1
            residual = _Residual(span, program, theta)
            if span.free == 0:      # one sample left: the constraints fix its input
                s = np.zeros((1, 0))
            else:
                s = _starts(span, row_starts, rng, starts, spread * (1 + rounds_used // 3))
            tried += len(s)
            rho = _initial_rho(residual, s)
            s, rho, value = _levenberg_marquardt(residual, s, rho, root=root)
            ok = np.isfinite(value) & (value < (deflated_root if roots else root))
            # the one point the constraints leave, if it is no root to the allowance:
            # under a binary float's rounding the found roots' errors add up in the
            # constraints (a float32 gelu classifier, b = 16: 15 of 16, then over 200 s of
            # other searches); it is handed over as it is, and the judge, on every step,
            # decides
            last = (span.inputs(s)[0], rho[0]) if trace.dtype is not None and \
                span.free == 0 and len(roots) == n - 1 and np.isfinite(value[0]) else None
            if not ok.any() and span.free == 0:
                if last is not None:
                    roots = roots + [last]
                    stats["last_from_constraints"] = float(value[0])
                break
            if not ok.any():
                continue
            # each candidate polished on its own equations without the deflation's
            # constraints (they carry the found roots' errors): a root of those or none
            X_new, rho_new = span.inputs(s[ok]), rho[ok]
            s_whole, rho_new, value = _levenberg_marquardt(
                _Residual(whole, program, theta), whole.coordinates(X_new), rho_new, root=root)
            order = np.argsort(value)
            good = order[value[order] < root]
            new = _new_roots(roots, whole.inputs(s_whole[good]), rho_new[good])
            kept = _dual_consistent(whole, program, theta, roots, new, max(
                DUAL_TOLERANCE, root, APPROXIMATE_DUAL if np.ndim(theta) == 2 else 0))
            if len(kept) <= len(roots) and span.free == 0:
                if last is not None:
                    roots = roots + [last]
                    stats["last_from_constraints"] = float(value.min())
                break    # the one point the constraints leave is no root: none is left
            if len(kept) == len(roots) and all(a is b for a, b in zip(kept, roots)):
                continue
            roots = kept
            if len(roots) < n:
                X_found = np.array([x for x, _ in roots])
                K = first_layer_jacobians(program, theta, X_found)
                signals = [k.T @ r for k, (_, r) in zip(K, roots)]
                span = whole.deflated(X_found, signals)
    if np.ndim(theta) == 2 and len(roots) == n - 1 and span.free == 0:
        # the approximate equations of a one-step approximation may leave the one input
        # the deflation fixes a residual above the allowance (measured: 2 of 6 digits
        # clients); it is the start's last sample, and the exact K-step polish and the
        # judge decide
        roots.append((span.inputs(np.zeros((1, 0)))[0], None))
        stats["last_by_deflation"] = True
    stats.update(starts=tried, rounds=rounds_used, roots=len(roots),
                 seconds=round(time.perf_counter() - started, 3))
    if len(roots) < n:
        return SpanStart("no_root", reason=f"span start: {len(roots)} of {n} samples "
                         f"found as roots of the per-sample equations from {tried} starts",
                         stats=stats)
    roots = [x for x, _ in roots]
    X = roots if len(roots) == n else _choose(whole, program, theta, roots, n)
    X = np.array(X)
    labels = labels_from_signals(program, theta, G, X)
    if labels is None:
        return SpanStart("no_root", reason="span start: the labels are not determined by "
                         "the inputs found", stats=stats)
    return SpanStart("found", X, labels, stats=stats)


def span_search(trace, steps, arithmetic, rng, dps, record=None, used=None):
    """The span start as a kind of the cold-start pipeline (:data:`~symbolic_inversion.
    solvers.pipeline.PATHS`): ``(PathResult, info)``, ``SUCCESS`` with the unknowns in
    ``real`` (the judge refines them on every step), else ``NO_START`` or ``NO_ROOT``
    with the reason.  Not a path: ``steps`` (the square subsystem) is not used."""
    start = span_start(trace, used, seed=rng.getrandbits(32))
    info = dict(start.stats)
    if start.code == "no_start":
        return PathResult(PathCode.NO_START, reason=start.reason), info
    if start.code == "no_root":
        return PathResult(PathCode.NO_ROOT, reason=start.reason,
                          newton=info.get("starts", 0)), info
    inputs, labels = start.inputs, start.labels
    if getattr(trace, "approximates", None) is not None:
        inputs, labels = _polish_on_rounds(trace.approximates, inputs, labels, used, info)
    u = np.concatenate([inputs, labels], axis=1).reshape(-1)
    return (PathResult(PathCode.SUCCESS, newton=info.get("starts", 0),
                       real=[mpmath.mpf(float(v)) for v in u]), info)


# Gauss-Newton iterations of that polish (measured from the span start of 64-32-10 digits
# clients, K = 5: 3-4 iterations from about 1e-2 to float64's last bits)
ROUNDS_POLISH_ITERATIONS = 12


def _polish_on_rounds(trace, inputs, labels, used, info):
    """A start found on the one-step approximation of federated rounds, polished on the
    rounds' exact K-step map in float64 (the shared :func:`~symbolic_inversion.solvers.
    newton.gauss_newton` on the local form): the start is about as far from the data as
    the approximation is wrong (1e-2 on 64-32-10 digits clients), and the judge's own
    refinement of a binary-float trace this large is float64's few steps
    (:func:`~symbolic_inversion.solvers.judge.judged_in_float64`).  The unpolished start
    when the polish does not end finite; the judge decides either way."""
    from .newton import gauss_newton
    started = time.perf_counter()
    try:
        X, Y, polish = gauss_newton(trace, inputs.tolist(), labels.tolist(), 16,
                                    steps=used, arithmetic=get_arithmetic("float64"),
                                    max_iterations=ROUNDS_POLISH_ITERATIONS)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as error:
        info["rounds_polish"] = f"failed: {error}"
        return inputs, labels
    X, Y = np.array(X, dtype=float), np.array(Y, dtype=float)
    info["rounds_polish"] = {"iterations": polish["iterations"],
                             "converged": bool(polish["converged"]),
                             "residual": float(polish["residual"]),
                             "seconds": round(time.perf_counter() - started, 3)}
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        return inputs, labels
    return X, Y

