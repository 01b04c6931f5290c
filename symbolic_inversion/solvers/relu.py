r"""ReLU networks: every sample of a large batch from one gradient step, exactly.

For a ReLU layer fed into the identity output layer the weight gradient of one step is
low rank (Dimitrov et al.'s SPEAR observation):

.. math:: G = [\partial L/\partial W \;|\; \partial L/\partial b]
          = \sum_i \delta_i \tilde h_i^T, \qquad
          \delta_i = s_i \circ (W_{out}^T r_i),

with ``htilde_i = [h_i, 1]`` the layer's input, ``s_i`` the 0/1 activation pattern of
sample ``i`` and ``r_i = c (ell(f(x_i)) - y_i)`` its output residual (``c = 2/n`` and
``ell`` the identity for the toolkit's MSE, ``c = 1/n`` and ``ell`` the softmax for
cross-entropy: any loss of :mod:`symbolic_inversion.losses`, the labels enter linearly).
With one output, row ``k`` divided by ``W_out[k]`` is the subset sum
``sum_{i active at k} r_i htilde_i``: in a basis of the row space, the rows of ``G`` are
a fixed linear image of points of the cube ``{0, 1}^n``, and every pattern ``s_i`` is a
*binary* vector in the column space of ``G``.

How the solver finds the patterns (no random subsets of ``n - 1`` rows, SPEAR's
exponential search):

1. The rows of the gradient, written in a basis of ``n`` of them and whitened, are
   searched for *two-level* directions: a direction ``a`` along which the rows take
   only two values is a pattern.  The contrast ``m4 - m3**2 - 1`` (fourth moment minus
   squared third moment minus one of the standardized projection) is ``>= 0`` for every
   distribution and ``0`` only for two-point ones; it is minimized by projected
   gradient descent from batches of random starts, each batch orthogonal to the
   directions already found.  Layers of at most 16 neurons are searched exhaustively.
   With several outputs ``delta_i`` is no longer a multiple of a fixed vector, but row
   ``k`` of it is either ``0`` (inactive) or ``w_k . r_i`` (``w_k`` the unit's known
   output weights): a sparse vector of the column space with a known structure.
   Batches of alternating searches from random vectors ``U a`` of the column space
   (half of them orthogonal to the coefficients found) fit ``r`` to the rows believed
   active, assign every row to the nearer of its two levels and move ``a`` towards
   the best fit of the clearest rows, then of all of them
   (:func:`_supports_by_alternation`), within a time budget (:data:`SEARCH_SECONDS`);
   small layers are searched exhaustively.
2. A candidate pattern is kept only if it lies in the column space of ``G`` and is a
   cell of the layer's hyperplane arrangement restricted to the row space (a linear
   program, with scipy): binary vectors in the column space by coincidence (sums such
   as ``s_5 + s_6 - s_11``) fail it.  Of the candidates, the set is chosen whose
   decomposition gives every sample an input with its own pattern.  With several
   outputs and more than ``2 (n + m)`` neurons a wrong support passes the ray test
   only by a coincidence of measure zero: there the program (about a second per
   pattern at 1024 neurons) runs only when the exact decomposition fails.
3. With the ``n`` patterns, ``G = D Htilde^T`` is *linear*: ``Htilde`` by an exact solve
   (python-flint's ``fmpq_mat`` where installed, ``fractions`` otherwise), each scale
   fixed by the bias coordinate ``1``; the residual factors ``r_i`` from the active rows;
   the rays ``diag(s_i) W_out^T e_i`` of several outputs by a square solve on
   float-pivoted rows checked exactly on every row (python-flint matrices);
   lower layers by the same linear solve with the now known ``delta`` (back-propagated
   through the patterns read off the recovered activations), down to the inputs.
4. Labels: ``y_i = f(x_i) - r_i / c`` (the link and ``c`` from the trace's
   :class:`~symbolic_inversion.losses.Loss`).  The result is accepted only if recomputing the
   gradient of *every* step of the trace from the recovered data gives the observed
   gradient: exactly (rationals) for exact traces, within the rounding of the trace
   otherwise.

An exact trace (decimal parameters that are the exact results of training, e.g.
``simulate(..., backend="exact")``) is recognized by the rank of its gradient being
exactly ``n``; floats decide nothing but where to look.  Other traces are solved in
mpmath at the working precision (float64 for traces of at most 17 digits) with the
tolerance of the trace's rounding.

Limits, reported as a status with the reason: a sample inactive at every neuron of the
layer (its ``delta`` is zero: its input is invisible), duplicate inputs (their residuals
merge), ``n`` above the rank bound (``n > width`` or ``n > fan-in + 1``), a zero
pre-activation at a kink (``relu'(0)`` is taken as 0, PyTorch's convention: said so),
and a search that did not find every pattern (``not_converged``, with the count: with
one output beyond about ``n = 48`` at width 256, ``benchmarks/bench_relu.py``; with
several outputs the alternating search finds every pattern of ``n = width / 8`` in
seconds, while at ``n = width / 4`` it needs about the whole time budget and may run
out of it, ``benchmarks/bench_relu_outputs.py``).
Cross-entropy and the other non-linear links make the gradient of rational data
irrational: such traces are rounded ones, never exact.
Without biases the network is positively homogeneous, ``(x_i, r_i) -> (t x_i, r_i / t)``
leaves every gradient unchanged, so inputs are known up to a positive factor per
sample (``not_unique``, directions exact, the symmetry named).

Examples
========

Four samples through a 3-6-1 relu/identity network, from one exact step:

>>> from symbolic_inversion import Network, simulate, recover
>>> net = Network([3, 6, 1], ["relu", "identity"])
>>> init = ["0.5", "-0.3", "0.2", "-0.4", "0.6", "0.1", "0.3", "0.3", "-0.5", "0.7",
...         "-0.2", "0.4", "-0.6", "0.5", "0.3", "0.2", "-0.1", "0.8",
...         "0.1", "0.2", "-0.1", "0.05", "0.1", "-0.2",
...         "0.9", "-0.7", "0.6", "0.8", "-0.5", "0.4", "0.1"]
>>> X = [["0.5", "0.2", "-0.3"], ["-0.4", "0.7", "0.1"], ["0.3", "-0.6", "0.8"],
...      ["0.9", "0.4", "0.6"]]
>>> trace = simulate(net, X, [["0.3"], ["-0.2"], ["0.5"], ["0.1"]], lr="0.1", epochs=1,
...                  init=init, backend="exact")
>>> solution = recover(trace)
>>> solution.status.value, solution.stats["exact"]
('converged', True)
>>> sorted([str(v) for v in x] for x, _ in solution.samples)
[['-2/5', '7/10', '1/10'], ['1/2', '1/5', '-3/10'], ['3/10', '-3/5', '4/5'], ['9/10', '2/5', '3/5']]
"""

import itertools
import math
import time
from fractions import Fraction

import mpmath
import numpy as np

from .. import rational
from ..errors import NotSupportedError
from ..arithmetic import get_arithmetic
from ..limits import check_time
from ..program import layerwise_program
from ..system import digits_from_error
from .judge import RESIDUAL_SLACK
from .span import NOISY_RANK_GAP
from .solution import Solution, Status

__all__ = ["solve_relu", "supports_relu", "find_patterns"]

EXHAUSTIVE_WIDTH = 16   # layers this narrow: every binary pattern is tried
SEARCH_SECONDS = 80.0   # several outputs: the pattern search's time budget
_FLOAT_DIGITS = 17      # traces with at most this many digits are solved in float64
_MEMBERSHIP = 1e-6      # float test "pattern in the column space" (binary vectors: O(1) off)
_STUCK = 1e-3           # misfit of an alternating search that found no pattern (~0.1-0.3)
# A pattern's float tests allow this many times the rounding's angle sigma_{r+1}/sigma_r
# (Wedin: the observed column space is that far from the exact one; a wrong support
# misses by O(1))
_NOISE_MARGIN = 100


def supports_relu(network):
    """Why ``network`` is outside this solver's class, or ``""`` if it is inside:
    hidden layers ``relu``, output layer ``identity``, at least one hidden layer."""
    if network.depth < 2:
        return "needs a hidden layer (a network with one weight layer has rank-1 gradients)"
    if any(name != "relu" for name in network.activations[:-1]):
        return "needs relu in every hidden layer"
    if network.activations[-1] != "identity":
        return "needs an identity output layer"
    return ""


# -- arithmetic: exact rationals or numbers with a tolerance ------------------------------

class _Numbers:
    """This solver's numbers, and the network's values and gradients in them: the
    layer-wise program (:mod:`symbolic_inversion.program`) of the trace's loss, in the
    program arithmetic matching the numbers (``rational`` for exact ones)."""

    def attach(self, network, loss):
        self.network, self.loss = network, loss
        self.program = layerwise_program(network, loss)
        return self

    def convert(self, values):
        """``values`` (nested lists of this solver's numbers) as an array of the
        program's numbers (floats and mpfs: as they are, without a conversion each)."""
        return np.asarray(values, dtype=self.program_arithmetic.dtype)

    def array(self, values):
        """A parameter vector or observed gradient as the program takes it."""
        return self.convert(values)

    def own(self, value):
        """A number of the program as one of this solver's numbers."""
        return value

    def blocks(self, theta):
        """``[(W, b), ...]`` per weight layer: ``W`` a list of rows, ``b`` a list or None."""
        return [(W.tolist(), None if b is None else b.tolist())
                for W, b in self.program.blocks(theta)]

    def values(self, theta, inputs):
        """``(pre, outputs)``: the pre-activations of every weight layer (lists of rows,
        the program's numbers: for signs and zeros) and the outputs (this solver's)."""
        pre, post = self.program.layer_values(self.array(theta), self.convert(inputs),
                                              arithmetic=self.program_arithmetic)
        return [z[0].tolist() for z in pre], \
            [[self.own(v) for v in row] for row in post[-1][0].tolist()]

    def outputs(self, theta, inputs):
        return self.values(theta, inputs)[1]

    def factor(self, samples):
        """``c`` of ``dL/df_i = c (ell(f_i) - y_i)`` for a batch of ``samples``."""
        factor = self.loss.factor(samples, self.network.output_width)
        return factor if self.exact else self.number(factor.numerator) / factor.denominator

    def _linked(self, outputs):
        """``ell(f_i)`` per sample; the outputs in the program's dtype (float64 arrays
        for floats: the links' exp works on those, not on object arrays of floats)."""
        values = np.array(outputs, dtype=object) if self.exact else self.convert(outputs)
        return self.loss.link(values, self.program_arithmetic)

    def residuals(self, outputs, labels, factor):
        """``c (ell(f_i) - y_i)`` per sample (the loss's link)."""
        linked = self._linked(outputs)
        return [[factor * (t - y) for t, y in zip(row, label)]
                for row, label in zip(linked.tolist(), labels)]

    def labels(self, outputs, residuals, factor):
        """The labels with these residuals: ``y_i = ell(f_i) - r_i / c``."""
        linked = self._linked(outputs)
        return [[t - r / factor for t, r in zip(row, residual)]
                for row, residual in zip(linked.tolist(), residuals)]

    def gradient(self, theta, inputs, labels):
        """The loss gradient (an array of the program's numbers)."""
        return self.program.mean_gradient(self.array(theta), self.convert(inputs),
                                          self.convert(labels), self.program_arithmetic,
                                          self.loss)

    def backpropagate(self, deltas, W):
        """``delta_i^T W`` for every sample's ``delta_i`` (rows of ``deltas``): one matrix
        product in the program's arithmetic (a sum per entry in Python took 400 s of the
        525 s of an exact 784-512-256-10 recovery at b = 64)."""
        A = self.program_arithmetic
        product = A.matmul(self.convert(deltas), self.convert(W))
        return [[self.own(v) for v in row] for row in product.tolist()]

    def gap(self, theta, inputs, labels, gradient):
        """The largest difference between the data's gradient and ``gradient``."""
        difference = self.gradient(theta, inputs, labels) - self.array(gradient)
        return self.own(max(abs(v) for v in difference.tolist()))


class _Exact(_Numbers):
    """Exact rationals: every test is an equality."""

    exact = True

    def __init__(self):
        self.program_arithmetic = get_arithmetic("rational")
        self._arrays = {}

    def convert(self, values):
        return self.program_arithmetic.asarray(values)

    def array(self, values):
        # Parameter vectors and observed gradients are converted once (the lists are
        # kept with their arrays, so that an id is never reused while cached).
        cached = self._arrays.get(id(values))
        if cached is None or cached[0] is not values:
            cached = (values, self.convert(values))
            self._arrays[id(values)] = cached
        return cached[1]

    def own(self, value):
        return self.program_arithmetic.fraction(value)

    def number(self, decimal_value):
        return Fraction(decimal_value)

    def rank(self, G, samples):
        """The rank of an exact layer gradient (float64 sees it: its rank is exact)."""
        return _float_rank(G)

    def zero(self, value, scale=1):
        return value == 0

    def fit(self, D, G):
        """``X`` with ``D X = G`` exactly (``D`` tall, full column rank), else None."""
        rows = _independent_rows(_floats(D))
        if rows is None:
            return None
        X = rational.solve([D[r] for r in rows], [G[r] for r in rows])
        # (a Fraction equals an int or a Fraction of the same value: no copies of G)
        if X is None or rational.matmul(D, X) != [list(row) for row in G]:
            return None
        return X


class _Numeric(_Numbers):
    """mpmath numbers (or floats for float64-sized traces) with a tolerance.

    ``tolerance`` bounds the error of an observed gradient entry (the final check);
    quantities derived by linear solves are compared with the looser ``loose``."""

    exact = False

    def __init__(self, use_float, tolerance):
        self.program_arithmetic = get_arithmetic("float64" if use_float else "mpmath")
        self.use_float = use_float
        self.tolerance = float(tolerance) if use_float else tolerance
        self.loose = 10 * (self.tolerance ** 0.5 if use_float else mpmath.sqrt(tolerance))

    def number(self, decimal_value):
        return float(decimal_value) if self.use_float else mpmath.mpf(str(decimal_value))

    def rank(self, G, samples):
        """The rank of the observed layer gradient ``G`` (floats) under the trace's
        rounding: the singular values above ``|E|_F``, the largest the rounding ``E``
        (each entry within :attr:`tolerance`) can leave; ``samples`` when those fall
        short but ``sigma_{n+1}`` is within that rounding and a gap
        ``sigma_{n+1} <= NOISY_RANK_GAP sigma_n`` separates it from ``sigma_n`` (the
        bound is a worst case: on a float32 digits classifier, 64-256-10 ReLU, b = 16,
        it was 3.2e-3 and ``sigma_{n+1}`` 3.1e-7, with ``sigma_n`` 4.7e-3)."""
        singular = np.linalg.svd(G, compute_uv=False) if G.size else np.zeros(0)
        if not singular.size or not singular[0] > 0:
            return 0
        rounding = float(self.tolerance) * math.sqrt(G.size)
        rank = int(np.sum(singular > max(singular[0] * 1e-9, rounding)))
        n = samples
        if rank < n < len(singular) and singular[n] <= rounding and \
                singular[n] <= NOISY_RANK_GAP * singular[n - 1]:
            return n
        return rank

    def zero(self, value, scale=1):
        return abs(value) <= self.loose * scale

    def fit(self, D, G):
        if _independent_rows(_floats(D)) is None:  # D without full column rank
            return None
        if self.use_float:
            A, B = np.array(D, float), np.array(G, float)
            X, *_ = np.linalg.lstsq(A, B, rcond=None)
            residual = np.max(np.abs(A @ X - B)) if B.size else 0.0
            scale = 1 + np.max(np.abs(X))
            return X.tolist() if residual <= self.loose * scale else None
        # The normal equations at twice the working precision (their error ~ cond^2
        # eps is then below the working precision's): Householder QR over every row in
        # mpmath costs seconds per 256-row ray, and the square block of pivot rows loses
        # the digits of its worse conditioning.
        with mpmath.workdps(2 * mpmath.mp.dps):
            solved = get_arithmetic("mpmath").lstsq(np.array(D, dtype=object),
                                                    np.array(G, dtype=object),
                                                    method="normal")
        if not solved.ok:
            return None
        X = [[+v for v in row] for row in solved.x.tolist()]   # at the working precision
        scale = 1 + max(abs(v) for row in X for v in row)
        residual = max(abs(sum(d * x for d, x in zip(drow, col)) - g)
                       for drow, grow in zip(D, G) for col, g in zip(zip(*X), grow))
        return X if residual <= self.loose * scale else None


def _floats(rows):
    return np.array([[float(v) for v in row] for row in rows], dtype=float)


def _independent_rows(matrix, count=None):
    """Indices of ``count`` (default: all columns) rows of ``matrix`` that are
    independent in float64 (pivoted QR of the transpose), or None."""
    count = matrix.shape[1] if count is None else count
    if matrix.shape[0] < count:
        return None
    # Rows are equilibrated, but a row of rounding noise must not be blown up to O(1).
    sizes = np.abs(matrix).max(axis=1, keepdims=True)
    scaled = matrix / np.maximum(sizes, max(float(sizes.max(initial=0)) * 1e-6, 1e-300))
    order, pivots = _pivoted_rows(scaled, count)
    if count and (len(order) < count or pivots[-1] <= 1e-12 * pivots[0]):
        return None
    return sorted(order)


def _pivoted_rows(matrix, count):
    """Greedy pivoting (QR with column pivoting of the transpose): ``count`` row indices,
    each the row farthest from the span of those before, and those distances."""
    residual = np.array(matrix, dtype=float)
    norms = np.einsum("ij,ij->i", residual, residual)
    order, pivots = [], []
    for _ in range(count):
        k = int(np.argmax(norms))
        if norms[k] <= 0:
            break
        q = residual[k] / np.sqrt(norms[k])
        order.append(k)
        pivots.append(float(np.sqrt(norms[k])))
        residual -= np.outer(residual @ q, q)
        norms = np.einsum("ij,ij->i", residual, residual)
        norms[order] = -1
    return order, pivots


def _float_rank(matrix):
    if not matrix.size:
        return 0
    singular = np.linalg.svd(matrix, compute_uv=False)
    return int(np.sum(singular > singular[0] * 1e-9)) if singular[0] > 0 else 0


# -- step 1: finding the activation patterns ---------------------------------------------

def _coordinates(G):
    """Rows of ``G`` (float) in the basis of ``r = rank`` of its rows: ``(K, R)`` with
    ``G = K G[R]``, so rows ``R`` map to unit vectors (pivoted QR picks ``R`` and the
    ``r`` columns that make ``G[R]`` square)."""
    r = _float_rank(G)
    R = sorted(_pivoted_rows(G, r)[0])
    C = sorted(_pivoted_rows(G[R].T, r)[0])
    K = np.linalg.solve(G[np.ix_(R, C)].T, G[:, C].T).T
    return K, R


def _whitened_starts(K, rng, found, starts):
    """Whitened rows ``Z`` of ``K`` (centered, unit covariance) and ``starts`` random
    unit directions orthogonal to the ``found`` ones; ``(None, None)`` if ``K`` is
    degenerate."""
    w, n = K.shape
    centered = K - K.mean(axis=0)
    values, vectors = np.linalg.eigh(centered.T @ centered / w)
    if values[0] <= values[-1] * 1e-12:
        return None, None
    Z = centered @ (vectors / np.sqrt(values))
    A = rng.standard_normal((n, starts))
    if found:
        F, _ = np.linalg.qr(np.array(found).T)
        A -= F @ (F.T @ A)
    return Z, A / np.linalg.norm(A, axis=0)


def _two_level_directions(K, rng, found, starts):
    """Projections of the rows of ``K`` minimizing the two-level contrast
    ``m4 - m3^2 - 1`` (zero exactly for two-point distributions), by projected gradient
    descent from ``starts`` random starts orthogonal to ``found``."""
    Z, A = _whitened_starts(K, rng, found, starts)
    if Z is None:
        return None, None
    w = Z.shape[0]
    previous = np.full(A.shape[1], np.inf)
    for iteration in range(1, 401):
        check_time()
        Y = Z @ A
        Y2 = Y * Y          # products, not **: numpy's float power is ~20x slower
        Y3 = Y2 * Y
        m3 = np.mean(Y3, axis=0)
        gradient = (4 * (Z.T @ Y3) - 6 * (Z.T @ Y2) * m3) / w
        gradient -= A * np.sum(gradient * A, axis=0)
        A -= 0.1 * gradient
        A /= np.linalg.norm(A, axis=0)
        if iteration % 25 == 0:
            # stop once every start has reached a two-point direction or stalled
            contrast = np.mean(Y2 * Y2, axis=0) - m3 * m3 - 1
            if np.all((contrast < 1e-8) | (previous - contrast < 1e-4)):
                break
            previous = contrast
    return Z @ A, A


def _supports_by_alternation(U, W_out, rng, found, starts, iterations=96, widening=80,
                             inner=10):
    """Several outputs: candidate patterns of ``starts`` alternating searches at once.

    ``delta_i = s_i o (W_out^T r_i)`` lies in the column space (orthonormal basis ``U``,
    ``q = U a``) and equals, row by row, either ``0`` (inactive) or ``w_k . r_i``
    (active).  From random ``a`` (half of them orthogonal to the coefficient vectors
    ``found`` already) each search alternates: ``r`` by least squares on the rows
    believed active, every row assigned to the nearer of its two levels, and ``a``
    (``|a| = 1``) moved towards the smallest eigenvector of
    ``U_I^T (1 - P) U_I`` (``P`` the projector on the active rows' output weights: ``r``
    eliminated), ``I`` the rows whose assignment is clearest.  Only half of the rows
    enter at first, then gradually all by iteration ``widening``: a wrong early decision
    on an ambiguous row would otherwise pin the search to a mixture of samples (the
    searches that find a pattern have it by then; the others are stuck: measured on
    64-256-10, b = 48 and 64).  ``a`` moves by ``inner`` power steps on
    ``1 - U_I^T (1 - P) U_I`` (products with ``U`` only: forming the ``n x n`` matrix
    per search and iteration costs ``n`` times more and finds fewer patterns,
    measured); an exact eigenvector polishes the end.  Returns the
    ``(patterns, coefficients, misfits)`` of the searches."""
    w, n = U.shape
    outputs = W_out.shape[0]
    A = rng.standard_normal((n, starts))
    if found:
        F, _ = np.linalg.qr(np.array(found).T)
        A[:, ::2] -= F @ (F.T @ A[:, ::2])
    A /= np.linalg.norm(A, axis=0)

    def weight_gram(W_t, weights, ridge):
        # W^T diag(weights_s) W for every search s: (starts, outputs, outputs); the
        # ridge for rows with no active unit (r is then arbitrary)
        return np.matmul(W_t.T[None] * weights.T[:, None, :], W_t) + ridge * np.eye(outputs)

    def levels(U, W_t, A, active, ridge):
        Q = U @ A
        rhs = (W_t.T @ (active * Q)).T[..., None]
        r = np.linalg.solve(weight_gram(W_t, active, ridge), rhs)[..., 0]
        V = W_t @ r.T
        return Q, V

    # The alternation's decisions need a few digits: float32 there (about twice as fast,
    # measured at 784-1024-10, with the same patterns found), float64 for the polish
    # and the misfit that decides which searches are tested.
    U32, W32 = U.astype(np.float32), W_out.T.astype(np.float32)
    A = A.astype(np.float32)
    active = np.ones((w, starts), np.float32)
    for iteration in range(iterations):
        check_time()
        Q, V = levels(U32, W32, A, active, 1e-6)
        active = (np.abs(Q - V) < np.abs(Q)).astype(np.float32)
        clarity = np.abs(np.abs(Q) - np.abs(Q - V)) / (np.abs(Q) + np.abs(V) + 1e-30)
        fraction = min(1.0, 0.5 + 0.5 * iteration / widening)
        kept = max(n + outputs + 2, int(fraction * w))
        include = (clarity >= -np.sort(-clarity, axis=0)[kept - 1]).astype(np.float32)
        weighted = include * active
        inverse = np.linalg.inv(weight_gram(W32, weighted, 1e-6))
        for _ in range(inner):
            Y = (U32 @ A) * include
            r = np.einsum("skl,sl->sk", inverse, (W32.T @ (Y * active)).T)
            Y -= (W32 @ r.T) * weighted
            A = A - U32.T @ (Y * include)
            A /= np.linalg.norm(A, axis=0)
    W_t = W_out.T
    active = active.astype(float)
    for _ in range(20):   # polish with every row and exact eigenvectors
        gram_w = weight_gram(W_t, active, 1e-12)
        UW = np.matmul(U.T[None] * active.T[:, None, :], W_t)
        gram = np.eye(n)[None] - UW @ np.linalg.solve(gram_w, np.transpose(UW, (0, 2, 1)))
        values, vectors = np.linalg.eigh(gram)
        A = vectors[:, :, 0].T
        Q, V = levels(U, W_t, A, active, 1e-12)
        again = (np.abs(Q - V) < np.abs(Q)).astype(float)
        if np.array_equal(again, active):
            break
        active = again
    # the smallest eigenvalue is the squared misfit of |U a| = 1 to its pattern's levels
    return active.T.astype(bool), A.T, np.sqrt(np.maximum(values[:, 0], 0))


def _split_two_levels(y):
    """The two-level split of ``y`` at its largest gap (a boolean pattern)."""
    ordered = np.sort(y)
    gaps = np.diff(ordered)
    k = int(np.argmax(gaps))
    return y > (ordered[k] + ordered[k + 1]) / 2


def _in_span(K, R, pattern):
    """Float test: the 0/1 vector ``pattern`` lies in the column space (``K s_R = s``)."""
    s = pattern.astype(float)
    return bool(np.max(np.abs(K @ s[R] - s)) < _MEMBERSHIP) and pattern.any()


def _ray_for_support(basis, W_out, active, noise=0.0):
    """Float test for several outputs: the direction ``diag(s) W_out^T e`` in the
    column space (orthonormal ``basis``) with support ``active``; returns it or None.
    ``noise``: the angle of the basis to the exact column space (rounding), which the
    direction may miss it by and leave on the inactive rows."""
    w, n = basis.shape
    block = np.hstack([basis, -(W_out.T * active[:, None])])
    _, singular, Vt = np.linalg.svd(block)
    level = max(1e-9, _NOISE_MARGIN * noise)
    if singular[-1] > level * singular[0] or (len(singular) > 1 and
                                              singular[-2] <= level * singular[0]):
        return None
    direction = basis @ Vt[-1, :n]
    largest = np.max(np.abs(direction))
    if largest < 1e-9 or np.any(np.abs(direction[~active]) > max(1e-7, _NOISE_MARGIN * noise)
                                * largest):
        return None
    return direction


def realizable(W_layer, rowspace, bias, nonnegative):
    """A float test for patterns: is ``s`` the activation pattern ``[W htilde > 0]`` of
    some layer input ``htilde`` in ``rowspace`` (rows spanning the inputs' span, last
    coordinate 1 with a bias, nonnegative entries after a ReLU layer)?  Binary vectors
    that lie in the column space by coincidence (sums such as ``s_5 + s_6 - s_11``)
    are no cell of the hyperplane arrangement and fail it.  Returns a callable, or None
    without scipy."""
    try:
        from scipy.optimize import linprog
    except ImportError:  # scipy is optional: the consistency of the decomposition decides
        return None
    V = np.asarray(rowspace, float)               # r x (fan_in + 1)
    M = W_layer @ V.T                             # pre-activations per coefficient
    r = V.shape[0]

    def test(pattern):
        # variables: coefficients a (r) and a margin t; maximize t <= 1
        sign = np.where(pattern, -1.0, 1.0)
        A_ub = np.hstack([sign[:, None] * M, np.where(pattern, 1.0, 0.0)[:, None]])
        b_ub = np.zeros(len(pattern))
        if nonnegative:
            inputs = V.T[:-1] if bias else V.T
            A_ub = np.vstack([A_ub, np.hstack([-inputs, np.zeros((len(inputs), 1))])])
            b_ub = np.concatenate([b_ub, np.zeros(len(inputs))])
        A_eq = np.hstack([V.T[-1:], [[0.0]]]) if bias else None
        result = linprog(np.r_[np.zeros(r), -1.0], A_ub=A_ub, b_ub=b_ub, A_eq=A_eq,
                         b_eq=[1.0] if bias else None,
                         bounds=[(None, None)] * r + [(None, 1.0)], method="highs")
        return result.status == 0 and -result.fun > 1e-9
    return test


def find_patterns(G, W_out, count, seed=0, budget=None, accept=None, seconds=None,
                  rank=None, layer=None):
    """Activation patterns (0/1 numpy vectors over the rows of ``G``) of the samples
    behind a layer gradient ``G`` (float, rows = neurons) of a ReLU layer feeding the
    identity output layer with weights ``W_out`` (outputs x neurons).

    Returns ``(patterns, how)``: at most ``count`` distinct patterns whose rays lie in
    the column space of ``G`` (and pass ``accept``, e.g. :func:`realizable`), and the
    search used.  Fewer than ``count`` means the search did not find them all.
    ``rank`` is the rank of ``G`` under its rounding (default: float64's,
    relative ``1e-9``); the singular values beyond it are taken as the rounding's, and
    the tests of a pattern allow what they do to the column space.
    ``layer = (W_layer, bias)`` (the layer's weights, the bias as last column) lets the
    search of several outputs complete the last pattern (:func:`_last_pattern`).
    """
    rng = np.random.default_rng(seed)
    w = G.shape[0]
    m = W_out.shape[0]
    visible = np.any(W_out != 0, axis=0)
    if m == 1:
        scaled = np.where(visible[:, None], G / np.where(visible, W_out[0], 1)[:, None], 0)
        K, R = _coordinates(scaled)
    else:
        U, noise, S, Vt = _column_space(G, rank)
    patterns, rejected = {}, set()

    def consider(pattern):
        pattern = pattern & visible
        key = pattern.tobytes()
        if key in patterns or key in rejected or not pattern.any():
            return False
        if (_in_span(K, R, pattern) if m == 1 else
                _ray_for_support(U, W_out, pattern, noise) is not None) and \
                (accept is None or accept(pattern)):
            patterns[key] = pattern
            return True
        rejected.add(key)
        return False

    if int(visible.sum()) <= EXHAUSTIVE_WIDTH:
        rows = np.flatnonzero(visible)
        for bits in itertools.product((False, True), repeat=len(rows)):
            pattern = np.zeros(w, bool)
            pattern[rows] = bits
            consider(pattern)
        return list(patterns.values()), "exhaustive"
    found = []
    if m > 1:
        return _alternating_patterns(U, noise, W_out, count, rng, consider, patterns,
                                     budget, seconds, layer, S, Vt)
    budget = budget if budget is not None else max(40, 6 * count)
    batch = 32 if count <= 64 else 64
    tried = 0
    while len(patterns) < count and tried < budget * batch // 16:
        Y, A = _two_level_directions(K, rng, found, batch)
        tried += batch
        if Y is None:
            break
        for column in range(Y.shape[1]):
            y = Y[:, column]
            candidates = [_split_two_levels(y), ~_split_two_levels(y)]
            if any([consider(c) for c in candidates]):
                found.append(A[:, column])
            if len(patterns) >= count:
                break
    return list(patterns.values()), f"two-level search ({tried} starts)"


def _column_space(G, rank=None):
    """An orthonormal basis ``U`` of the column space of ``G`` (``rank`` columns, default
    float64's rank), the relative size ``sigma_{r+1} / sigma_r`` of what is left out (the
    rounding's angle between the observed and the exact column space, Wedin: the scale
    of every float test of a pattern), and the singular values ``S`` and right singular
    vectors ``Vt`` kept with ``U`` (:func:`_last_pattern`)."""
    U, singular, Vt = np.linalg.svd(G, full_matrices=False)
    rank = _float_rank(G) if rank is None else rank
    noise = singular[rank] / singular[rank - 1] if 0 < rank < len(singular) else 0.0
    return U[:, :rank], float(noise), singular[:rank], Vt[:rank]


def _last_pattern(S, Vt, found, W_layer, bias):
    """The activation patterns the one sample still missing can have, from the
    coefficient vectors ``a_i`` (``delta_i = U a_i``) of all the others.

    With ``G = U S V^T = D Htilde^T`` and ``D = U A``: ``Htilde = V S A^{-T}``, so sample
    ``j``'s layer input ``htilde_j = V c_j`` has ``a_i^T S^{-1} c_j = 0`` for every
    ``i != j``.  With ``n - 1`` of the ``a_i`` known, ``c_j`` is their null vector, up to
    a scale fixed by the bias coordinate (its sign, without a bias: both are returned),
    and the pattern is ``[W htilde_j > 0]``.  The searches find the last pattern worst
    (measured: 63 of 64 for thousands of starts on some batches), since their starts
    orthogonal to the coefficients found are no longer random."""
    F = np.array(found) / S[None, :]
    c = np.linalg.svd(F)[2][-1]
    h = Vt.T @ c
    if bias:
        if abs(h[-1]) <= 1e-12 * np.max(np.abs(h)):
            return []
        return [W_layer @ (h / h[-1]) > 0]
    return [W_layer @ h > 0, W_layer @ -h > 0]


def _alternating_patterns(U, noise, W_out, count, rng, consider, patterns, budget,
                          seconds, layer=None, S=None, Vt=None):
    """The search of :func:`find_patterns` for several outputs: batches of alternating
    searches (:func:`_supports_by_alternation`) in the column space ``U`` until
    ``count`` patterns pass ``consider``, ``budget`` starts (default ``100 count``) or
    ``seconds`` (default :data:`SEARCH_SECONDS`) have passed."""
    started = time.perf_counter()
    # a pattern's misfit is the rounding's angle; a stuck search's ~0.1
    stuck = max(_STUCK, _NOISE_MARGIN * noise)
    budget = budget if budget is not None else max(256, 100 * count)
    seconds = SEARCH_SECONDS if seconds is None else seconds
    found, tried = [], 0
    while len(patterns) < count and tried < budget and \
            time.perf_counter() - started < seconds:
        # starts orthogonal to the coefficients found (pushed towards the samples still
        # missing), partly free: the missing coefficient vectors are not orthogonal to
        # the found ones, and a start confined to a tiny complement repeats itself
        batch = min(32, budget - tried)
        tried += batch
        for active, a, misfit in zip(*_supports_by_alternation(U, W_out, rng, found,
                                                              batch)):
            # a stuck search leaves a misfit of order 0.1 (a pattern: rounding only);
            # the exact tests of consider() cost an SVD and a linear program each
            if misfit < stuck and consider(active):
                found.append(a)
            if len(patterns) >= count:
                break
        if layer is not None and len(found) == count - 1 == len(patterns) and count > 1:
            for pattern in _last_pattern(S, Vt, found, *layer):
                if consider(pattern):
                    break
    return list(patterns.values()), f"alternating search ({tried} starts)"


# -- steps 3-4: values from patterns -------------------------------------------------------

def _layer_gradient(network, gradient, layer):
    """``[dW | db]`` of weight layer ``layer`` as a list of rows (neurons)."""
    weights, bias = network.layer_slices()[layer]
    fan_in, fan_out = network.layers[layer], network.layers[layer + 1]
    flat = gradient[weights]
    rows = [flat[k * fan_in:(k + 1) * fan_in] for k in range(fan_out)]
    if bias is not None:
        rows = [row + [b] for row, b in zip(rows, gradient[bias])]
    return rows


def _decompose(network, arithmetic, theta, gradient, patterns, factor):
    """Inputs, residuals and a reason, from the activation patterns of the last hidden
    layer: ``(inputs, residuals, None)`` or ``(None, None, reason)``."""
    layers = arithmetic.blocks(theta)
    top = network.depth - 2            # the last hidden layer's weight-layer index
    W_out = layers[-1][0]
    m = network.output_width
    zero = 0 * theta[0]
    # directions delta_i up to scale: s_i o (W_out^T e_i)
    directions = []
    G_top = _layer_gradient(network, gradient, top)
    if m == 1:
        directions = [[W_out[0][k] if s[k] else zero for k in range(len(s))] for s in patterns]
    else:
        # the columns spanning the column space: once, not per pattern (a 1024 x 785
        # gradient's float copy and SVD per pattern took minutes for b = 64)
        floats = _floats(G_top)
        basis_columns = _independent_rows(floats.T.copy(),
                                          arithmetic.rank(floats, len(patterns)))
        cache = {}
        for s in patterns:
            if getattr(arithmetic, "use_float", False):
                ray = _float_ray(arithmetic, floats, W_out, s, basis_columns)
            elif arithmetic.exact and rational.flint_available():
                ray = _flint_ray(G_top, floats, W_out, s, basis_columns, cache)
            else:
                ray = _exact_or_numeric_ray(arithmetic, G_top, W_out, s, basis_columns)
            if ray is None:
                return None, None, "a pattern's ray could not be computed"
            directions.append(ray)
    D = [list(row) for row in zip(*directions)]
    if arithmetic.exact and network.bias:
        # Exact rays come with arbitrary scales of many bits, and so does the solution
        # of D H = G, each row its sample's scale times [x_i, 1]: the bias column alone
        # gives the scales, and the rays rescaled by them make H = [x_i, 1] (measured on
        # 300-256-128-10, b = 32: a 32 x 32 solve with 257 right-hand sides, 1.55 s ->
        # 0.04 s; 123-bit entries -> 51)
        scales = arithmetic.fit(D, [[row[-1]] for row in G_top])
        if scales is not None and all(scale[0] != 0 for scale in scales):
            directions = [[v * scale[0] for v in direction]
                          for direction, scale in zip(directions, scales)]
            D = [list(row) for row in zip(*directions)]
    H = arithmetic.fit(D, G_top)
    if H is None:
        return None, None, (f"the {len(patterns)} patterns do not explain the gradient of "
                            f"layer {top + 1}")
    deltas, inputs_top = [], []
    for i, (direction, row) in enumerate(zip(directions, H)):
        if network.bias:
            scale = row[-1]
            # relative to the row where it is small: a ray's normalisation can make a
            # whole row small (float32, 64-256-10, b = 32: a bias coordinate of 0.05 read
            # as zero by float32's loose tolerance of 0.1)
            size = max(abs(v) for v in row)
            if arithmetic.zero(scale, size if size < 1 else 1):
                return None, None, f"sample {i}: zero bias coordinate"
            inputs_top.append([v / scale for v in row[:-1]])
        else:
            scale = _sign_without_bias(arithmetic, layers, top, row, patterns[i])
            if scale is None:
                return None, None, f"sample {i}: no sign makes its pattern consistent"
            inputs_top.append([v / scale for v in row])
        deltas.append([v * scale for v in direction])
    # residual factors e_i from the active rows: W_out[:, S]^T e = delta[S]
    residuals = []
    for i, (delta, s) in enumerate(zip(deltas, patterns)):
        active = [k for k in range(len(s)) if s[k]]
        A = [[W_out[o][k] for o in range(m)] for k in active]
        e = arithmetic.fit(A, [[delta[k]] for k in active])
        if e is None:
            return None, None, f"sample {i}: its delta is not W_out^T r on its active rows"
        residuals.append([v[0] for v in e])
    # back-propagation to the inputs: G_l = D_l Htilde_{l-1}^T, D_l known
    current = inputs_top
    for layer in range(top, 0, -1):
        W = layers[layer][0]
        new_deltas = []
        if any(not arithmetic.zero(v) and v < 0 for h in current for v in h):
            return None, None, f"negative activation recovered at layer {layer}"
        for h, back in zip(current, arithmetic.backpropagate(deltas, W)):
            new_deltas.append([b if not arithmetic.zero(v) and v > 0 else zero
                               for b, v in zip(back, h)])
        D = [list(row) for row in zip(*new_deltas)]
        H = arithmetic.fit(D, _layer_gradient(network, gradient, layer - 1))
        if H is None:
            return None, None, f"the recovered deltas do not explain layer {layer}'s gradient"
        if network.bias:
            if not all(arithmetic.zero(row[-1] - 1) for row in H):
                return None, None, f"layer {layer}: bias coordinate is not 1"
            current = [row[:-1] for row in H]
        else:
            current = H
        deltas = new_deltas
    return current, residuals, None


def _sign_without_bias(arithmetic, layers, top, row, pattern):
    """Without biases only the direction of a sample is identifiable: the sign that
    makes its pattern consistent (nonnegative activations, or ``[W h > 0] = s``)."""
    for sign in (1, -1):
        h = [sign * v for v in row]
        if top > 0:
            ok = all(arithmetic.zero(v) or v > 0 for v in h)
        else:
            W = layers[0][0]
            z = [sum((a * b for a, b in zip(Wk, h)), 0 * h[0]) for Wk in W]
            ok = all((zk > 0 and not arithmetic.zero(zk)) == bool(sk) or arithmetic.zero(zk)
                     for zk, sk in zip(z, pattern))
        if ok:
            return sign
    return None


def _float_ray_block(G, W, pattern, basis_columns):
    """The float side of every ray of several outputs (:func:`_float_ray`,
    :func:`_flint_ray`): ``(active, spanning, image, block, pivot)`` with ``image =
    diag(s) W^T P`` (``P`` the active neurons' spanning output weights), ``block = [B |
    -image]`` (``B`` the columns ``basis_columns`` of the float ``G``) and ``pivot`` the
    coordinate of ``f`` the float null vector of ``block`` shows largest; ``None`` when
    no ray exists (no spanning weights, or a null space of dimension above one)."""
    active = np.flatnonzero(pattern)
    weights = W[:, active].T
    spanning = _independent_rows(weights, _float_rank(weights))
    if basis_columns is None or not spanning:
        return None
    image = (W.T @ W[:, active[spanning]]) * np.asarray(pattern, float)[:, None]
    n = len(basis_columns)
    block = np.hstack([G[:, basis_columns], -image])
    _, singular, Vt = np.linalg.svd(block, full_matrices=False)
    if len(singular) > 1 and singular[-2] <= 1e-9 * singular[0]:
        return None
    pivot = n + int(np.argmax(np.abs(Vt[-1, n:])))
    return active, spanning, image, block, pivot


def _float_ray(arithmetic, G, W_out, pattern, basis_columns):
    """:func:`_exact_or_numeric_ray` in float64 arrays (``G`` one): the same null
    vector and least squares, without a Python number per entry (the list version took
    most of the time of a 784-1024-10 recovery at b = 64, three rays per pattern with
    the sensitivity estimate)."""
    found = _float_ray_block(G, np.asarray(W_out, float), pattern, basis_columns)
    if found is None:
        return None
    _, _, image, block, pivot = found
    others = np.r_[0:pivot, pivot + 1:block.shape[1]]
    D, rhs = block[:, others], -block[:, pivot]
    if _independent_rows(D) is None:
        return None
    x, *_ = np.linalg.lstsq(D, rhs, rcond=None)
    if np.max(np.abs(D @ x - rhs)) > arithmetic.loose * (1 + np.max(np.abs(x))):
        return None
    f = np.insert(x, pivot, 1.0)[len(basis_columns):]
    return (image @ f).tolist()


def _flint_ray(G, floats, W_out, pattern, basis_columns, cache):
    """:func:`_exact_or_numeric_ray` for exact numbers in python-flint matrices: the
    null vector from a square system (the ``n + r - 1`` rows that float pivoting finds
    independent, the coordinate the float null vector shows largest fixed at 1), then
    checked exactly on every row.  Its nonsingular block leaves a null space of
    dimension at most one, so the check passing gives the unique null vector of
    :func:`_exact_or_numeric_ray`, and failing means there is none (``None`` as there).
    The Python ``Fraction`` products and the tall echelon form took two thirds of an
    exact 100-256-10 recovery at b = 32 (profiled).  ``cache`` keeps the matrices of
    ``G`` and ``W_out`` between the patterns of one gradient."""
    flint = rational._FLINT
    m, w = len(W_out), len(G)
    if "B" not in cache:
        cache["W"] = _floats(W_out)
        cache["B"] = rational._to_flint(rational._as_rows(
            [[row[c] for c in basis_columns] for row in G])) \
            if basis_columns is not None else None
        cache["Wt"] = [[W_out[o][k] for o in range(m)] for k in range(w)]
    found = _float_ray_block(floats, cache["W"], pattern, basis_columns)
    if found is None:
        return None
    active, spanning, _, block_f, pivot = found
    n, r = len(basis_columns), len(spanning)
    zero = [0] * m
    masked = rational._to_flint(rational._as_rows(
        [row if pattern[k] else zero for k, row in enumerate(cache["Wt"])]))
    P = rational._to_flint(rational._as_rows(
        [[W_out[o][k] for k in active[spanning]] for o in range(m)]))
    image = masked * P                                          # diag(s) W^T P, w x r
    others = [c for c in range(n + r) if c != pivot]
    rows = _independent_rows(block_f[:, others])
    if rows is None:
        return None
    B = cache["B"]

    def entry(k, c):
        return B[k, c] if c < n else -image[k, c - n]
    square = flint.fmpq_mat(len(rows), n + r - 1, [entry(k, c) for k in rows for c in others])
    rhs = flint.fmpq_mat(len(rows), 1, [-entry(k, pivot) for k in rows])
    try:
        x = square.solve(rhs).entries()
    except ZeroDivisionError:
        return None
    v = list(x[:pivot]) + [flint.fmpq(1)] + list(x[pivot:])
    c_part = flint.fmpq_mat(n, 1, v[:n])
    f_part = flint.fmpq_mat(r, 1, v[n:])
    ray = image * f_part
    if B * c_part != ray:
        return None
    return [Fraction(int(e.p), int(e.q)) for e in ray.entries()]


def _exact_or_numeric_ray(arithmetic, G, W_out, pattern, basis_columns):
    """The direction ``diag(s) W_out^T e`` in the column space of ``G`` (several
    outputs): the null vector of ``[B | -diag(s) W_out^T P]`` with ``B`` a basis of the
    column space (the columns ``basis_columns`` of ``G``) and ``e = P f`` restricted to
    the span of the active neurons' output weights (other directions of ``e`` change
    nothing)."""
    m = len(W_out)
    active = [k for k in range(len(G)) if pattern[k]]
    spanning = _independent_rows(_floats([[W_out[o][k] for o in range(m)] for k in active]),
                                 _float_rank(_floats([[W_out[o][k] for o in range(m)]
                                                      for k in active])))
    if basis_columns is None or not spanning:
        return None
    P = [[W_out[o][active[j]] for j in spanning] for o in range(m)]    # m x r
    zero = 0 * G[0][0]
    image = [[sum((W_out[o][k] * P[o][j] for o in range(m)), zero) if pattern[k] else zero
              for j in range(len(spanning))] for k in range(len(G))]   # diag(s) W^T P
    n = len(basis_columns)
    block = [[row[c] for c in basis_columns] + [-v for v in image_row]
             for row, image_row in zip(G, image)]
    if arithmetic.exact:
        null = rational.nullspace(block)
        if len(null) != 1:
            return None
        f = null[0][n:]
    else:
        # The float null vector says which coordinate of f to fix at 1; the others (and
        # the basis coefficients) by least squares at the working precision.
        _, singular, Vt = np.linalg.svd(_floats(block))
        if len(singular) > 1 and singular[-2] <= 1e-9 * singular[0]:
            return None
        pivot = n + int(np.argmax(np.abs(Vt[-1, n:])))
        others = [c for c in range(len(block[0])) if c != pivot]
        solved = arithmetic.fit([[row[c] for c in others] for row in block],
                                [[-row[pivot]] for row in block])
        if solved is None:
            return None
        full = [v[0] for v in solved]
        full.insert(pivot, arithmetic.number(1))
        f = full[n:]
    return [sum((v * fj for v, fj in zip(row, f)), zero) for row in image]


# -- the solver -----------------------------------------------------------------------------

def _observed(trace, arithmetic, steps, part=slice(None)):
    """Observed gradients ``(theta_j - theta_{j+1}) / lr`` in the arithmetic's numbers
    (of the parameters ``part`` only, if given)."""
    if part != slice(None):
        lr = arithmetic.number(trace.lr)
        rows = [[arithmetic.number(v) for v in trace.parameters[j][part]]
                for j in range(steps + 1)]
        return rows, [[(a - b) / lr for a, b in zip(rows[j], rows[j + 1])]
                      for j in range(steps)]
    lr = arithmetic.number(trace.lr)
    thetas = [[arithmetic.number(v) for v in trace.parameters[j]] for j in range(steps + 1)]
    return thetas, [[(a - b) / lr for a, b in zip(thetas[j], thetas[j + 1])]
                    for j in range(steps)]


def _looks_exact(trace, network):
    """Whether the trace is exact: ``True`` when an ``(r+1)``-minor around a nonsingular
    ``r x r`` block of the last hidden layer's gradient (float rank ``r``) vanishes
    exactly (exact traces have rank ``r``; rounded ones full rank, with probability
    one), ``False`` when one does not, ``None`` when the gradient has full rank and
    the test says nothing (then the exact attempt decides)."""
    weights, bias = network.layer_slices()[network.depth - 2]
    part = slice(weights.start, (bias or weights).stop)
    _, gradients = _observed(trace, _Numeric(True, 1), 1, part)
    shifted = [None] * weights.start + gradients[0]  # _layer_gradient indexes the full vector
    floats = _floats(_layer_gradient(network, shifted, network.depth - 2))
    first, second = trace.parameters[0][part], trace.parameters[1][part]
    lr = Fraction(trace.lr)

    def entry(k, c):  # exact G[k][c], converted only where a minor needs it
        fan_in = network.layers[network.depth - 2]
        index = k * fan_in + c if c < fan_in else weights.stop - weights.start + k
        return (Fraction(first[index]) - Fraction(second[index])) / lr
    r = _float_rank(floats)
    if r >= min(floats.shape):
        return None
    rows = _independent_rows(floats, r)
    columns = _independent_rows(floats[rows].T.copy(), r) if rows else None
    if not rows or not columns:
        return None
    extra_rows = [k for k in range(floats.shape[0]) if k not in rows][:3]
    extra_columns = [c for c in range(floats.shape[1]) if c not in columns][:3]
    for k, c in itertools.product(extra_rows, extra_columns):
        minor = [[entry(a, b) for b in columns + [c]] for a in rows + [k]]
        if rational.rank(minor) > r:
            return False
    return True


def _tolerance(trace, digits):
    """Bound on the error of each observed gradient entry (numeric traces)."""
    bound = trace.gradient_uncertainty() * RESIDUAL_SLACK
    if digits <= _FLOAT_DIGITS:
        # Training in binary floats rounds each update by about an ulp of the
        # parameters, and the gradient itself by a few ulps of its largest terms.
        eps = mpmath.mpf(2) ** -52
        first, second = trace.parameters[0], trace.parameters[1]
        largest_theta = mpmath.mpf(str(max(abs(v) for v in first)))
        largest_g = mpmath.mpf(str(max(abs(a - b) for a, b in zip(first, second)))) / \
            mpmath.mpf(str(trace.lr))
        width = sum(trace.network.layers)
        bound = max(bound, 8 * eps * largest_theta / mpmath.mpf(str(trace.lr))
                    + 4 * eps * width * largest_g)
    return bound


def _kinks(network, theta, inputs, arithmetic):
    pre, _ = arithmetic.values(theta, inputs)
    found = []
    for layer in range(network.depth - 1):
        for i, row in enumerate(pre[layer]):
            found += [(i, layer + 1, k) for k, z in enumerate(row) if arithmetic.zero(z)]
    return found


def _per_sample_gradient(arithmetic, theta, x, residual):
    """``J(x)^T v`` at ``theta``: the gradient of one sample whose residual is ``v``."""
    label = arithmetic.labels(arithmetic.outputs(theta, [x]), [residual],
                              arithmetic.factor(1))[0]
    return [arithmetic.own(v) for v in arithmetic.gradient(theta, [x], [label]).tolist()]


def _exact_sqrt(value):
    """The rational square root of a Fraction, or None when it is irrational."""
    if value < 0:
        return None
    top, bottom = math.isqrt(value.numerator), math.isqrt(value.denominator)
    return Fraction(top, bottom) if top * top == value.numerator and \
        bottom * bottom == value.denominator else None


def _scales_from_second_step(network, arithmetic, thetas, gradient, inputs, labels, factor):
    """Without biases one step leaves each sample's scale ``t_i`` free; the next step
    fixes ``t_i**2``: at ``theta_1`` sample ``i`` contributes
    ``J_i^T (c t_i^2 (f_1 - f_0)(x_i) + r_i)`` with ``(x_i, r_i)`` the representative
    (``f`` is homogeneous of degree 1), linear in ``t_i^2``.  Returns the rescaled
    ``(inputs, labels)``, or None when a scale stays free or is not a positive
    square (exact traces: a rational square)."""
    outputs0 = arithmetic.outputs(thetas[0], inputs)
    outputs1 = arithmetic.outputs(thetas[1], inputs)
    residuals = arithmetic.residuals(outputs0, labels, factor)
    columns, rhs = [], list(gradient)
    for x, r, f0, f1 in zip(inputs, residuals, outputs0, outputs1):
        change = [factor * (b - a) for a, b in zip(f0, f1)]
        columns.append(_per_sample_gradient(arithmetic, thetas[1], x, change))
        rhs = [g - v for g, v in zip(rhs, _per_sample_gradient(arithmetic, thetas[1], x, r))]
    A = [list(row) for row in zip(*columns)]
    tau = arithmetic.fit(A, [[v] for v in rhs])
    if tau is None:
        return None
    scales = []
    for (value,) in tau:
        if arithmetic.zero(value) or value < 0:
            return None
        root = _exact_sqrt(value) if arithmetic.exact else \
            (value ** 0.5 if arithmetic.use_float else mpmath.sqrt(value))
        if root is None:
            return None
        scales.append(root)
    inputs = [[t * v for v in x] for x, t in zip(inputs, scales)]
    labels = arithmetic.labels(arithmetic.outputs(thetas[0], inputs),
                               [[v / t for v in r] for r, t in zip(residuals, scales)],
                               factor)
    return inputs, labels


def _inconsistent(network, arithmetic, theta, inputs, patterns):
    """Samples whose recovered input does not produce their pattern at the last hidden
    layer (neurons with zero output weights say nothing and are skipped)."""
    pre, _ = arithmetic.values(theta, inputs)
    W_out = arithmetic.blocks(theta)[-1][0]
    visible = [any(W_out[o][k] for o in range(len(W_out))) for k in range(len(W_out[0]))]
    return [i for i, (z, s) in enumerate(zip(pre[network.depth - 2], patterns))
            if any(seen and not arithmetic.zero(zk) and (zk > 0) != bool(sk)
                   for zk, sk, seen in zip(z, s, visible))]


def _float_consistent(G_scaled, W_layer, patterns, bias, nonnegative):
    """Float pre-check of a set of patterns (one output): decompose the divided
    gradient ``G' = S^T V`` and ask whether each recovered input has its pattern."""
    S = np.array(patterns, float)                       # n x w
    V, *_ = np.linalg.lstsq(S.T, G_scaled, rcond=None)  # n x (fan_in + 1)
    for s, v in zip(S, V):
        if bias:
            if abs(v[-1]) <= 1e-12 * max(np.max(np.abs(v)), 1e-300):
                return False
            candidates = [v / v[-1]]
        else:
            candidates = [v, -v]
        ok = False
        for h in candidates:
            z = W_layer @ h
            scale = 1e-9 * max(np.max(np.abs(z)), 1e-300)
            if nonnegative and np.any(h[:-1 if bias else None] < -scale):
                continue
            if np.all((np.abs(z) <= scale) | ((z > 0) == (s > 0))):
                ok = True
                break
        if not ok:
            return False
    return True


def _select(pool, rank, consistent, limit=20000):
    """Sets of ``rank`` patterns from ``pool`` that pass ``consistent`` (at most two:
    two are enough to say "not unique")."""
    if len(pool) == rank:
        return [pool] if consistent(pool) else []
    chosen = []
    for subset in itertools.islice(itertools.combinations(pool, rank), limit):
        if consistent(list(subset)):
            chosen.append(list(subset))
            if len(chosen) == 2:
                break
    return chosen


def _dataset(network, arithmetic, theta, gradient, patterns, factor):
    """``(inputs, labels, reason)`` from the patterns of the last hidden layer; without
    biases the representative with ``max |x_i| = 1``."""
    inputs, residuals, reason = _decompose(network, arithmetic, theta, gradient, patterns,
                                           factor)
    if inputs is None:
        return None, None, reason
    bad = _inconsistent(network, arithmetic, theta, inputs, patterns)
    if bad and not arithmetic.exact:
        # a unit whose delta for a sample is below the rounding shows no bit in the
        # gradient (float32, 64-256-10, b = 32: an active unit read as inactive); the
        # sample's own input decides it, and the decomposition is done again with the
        # patterns of the inputs
        pre, _ = arithmetic.values(theta, inputs)
        patterns = [[z > 0 for z in row] for row in pre[network.depth - 2]]
        inputs, residuals, reason = _decompose(network, arithmetic, theta, gradient,
                                               patterns, factor)
        if inputs is None:
            return None, None, reason
        bad = _inconsistent(network, arithmetic, theta, inputs, patterns)
    if bad:
        return None, None, f"sample {bad[0]}: its input does not have its pattern"
    if not network.bias:
        scales = [max(abs(v) for v in x) for x in inputs]
        if any(arithmetic.zero(t) for t in scales):
            return None, None, "a recovered input is zero"
        inputs = [[v / t for v in x] for x, t in zip(inputs, scales)]
        residuals = [[v * t for v in r] for r, t in zip(residuals, scales)]
    labels = arithmetic.labels(arithmetic.outputs(theta, inputs), residuals, factor)
    return inputs, labels, None


def _attempt(trace, arithmetic, steps, seed, stats):
    """Recover and check with one arithmetic: ``(status, samples, detail, digits, residual)``."""
    network, n = trace.network, trace.samples
    arithmetic.attach(network, trace.loss)
    thetas, gradients = _observed(trace, arithmetic, steps)
    factor = arithmetic.factor(n)
    for step in range(steps):
        inputs, labels, reason, info = _recover_step(network, arithmetic, thetas[step],
                                                     gradients[step], factor, seed, n)
        stats.update(info, discovery_step=step)
        if inputs is not None:
            break
    if inputs is None:
        if info.get("rank") == 0:
            # every step's layer gradient is zero: data whose samples all sit in dead
            # regions (or are fitted exactly) explain it, and nothing about them shows
            return (Status.UNIDENTIFIABLE, [], reason + " at any step: samples in the dead "
                    "region of every unit, or fitted exactly, leave no trace", 0, None)
        incomplete = info.get("patterns_found", 0) < info.get("rank", n) or \
            info.get("search_incomplete")
        status = Status.NOT_CONVERGED if incomplete else \
            Status.NOT_UNIQUE if info.get("not_unique") else Status.INCONSISTENT
        return status, [], reason, 0, None
    # the second step's scales use the identity link (f - y linear in the scale)
    if not network.bias and steps > 1 and len(inputs) == n and trace.loss.name == "mse":
        scaled = _scales_from_second_step(network, arithmetic, thetas, gradients[1], inputs,
                                          labels, factor)
        if scaled is not None:
            inputs, labels = scaled
            stats["scales"] = "from step 1"
    samples = list(zip(inputs, labels))
    if len(inputs) < n:
        return (Status.UNIDENTIFIABLE, samples, _rank_deficit_detail(
            network, arithmetic, gradients[step], inputs, labels, thetas[step], factor, n),
            0, None)
    if trace.dtype is not None:
        return _judged_binary(trace, steps, inputs, labels, stats)
    residual = max(arithmetic.gap(thetas[j], inputs, labels, gradients[j])
                   for j in range(steps))
    if arithmetic.exact and residual != 0:
        return (Status.INCONSISTENT, samples, f"the recovered data do not reproduce every "
                f"step exactly (largest difference {float(residual):.3g})", 0, residual)
    if not arithmetic.exact and residual > arithmetic.tolerance:
        return (Status.INCONSISTENT, samples, f"residual {float(residual):.3g} exceeds the "
                f"trace's rounding ({float(arithmetic.tolerance):.3g})", 0, residual)
    notes = []
    kinks = _kinks(network, thetas[0], inputs, arithmetic)
    if kinks:
        i, layer, k = kinks[0]
        notes.append(f"{len(kinks)} zero pre-activation(s) at a kink (first: sample {i}, "
                     f"layer {layer}, neuron {k}): relu'(0) is undefined; the data explain "
                     f"the trace with relu'(0) = 0, PyTorch's convention")
        stats["kinks"] = len(kinks)
    if arithmetic.exact:
        digits = digits_from_error(0)
    else:
        error = _sensitivity(network, arithmetic, thetas[step], gradients[step], factor,
                             inputs, labels, seed)
        stats["error_bound"] = error
        if not math.isfinite(error):
            return (Status.UNIDENTIFIABLE, samples, "the data explain the trace, but the "
                    "linear solves are singular under the trace's rounding: other data "
                    "nearby may explain it too", 0, residual)
        digits = digits_from_error(mpmath.mpf(error))
    status = Status.CONVERGED
    if not network.bias and stats.get("scales") != "from step 1":
        status = Status.NOT_UNIQUE
        stats["symmetries"] = [{
            "kind": "positive_scale",
            "message": "per-sample positive scale: without biases (x_i, f(x_i) - y_i) -> "
                       "(t x_i, (f(x_i) - y_i) / t), t > 0, leaves every gradient "
                       "unchanged; shown: the representative with max |x_i| = 1"}]
        notes.insert(0, "inputs are known up to a positive factor per sample (directions "
                        "exact); the labels shown belong to the representative scale")
    return status, samples, "; ".join(notes), digits, residual


def _judged_binary(trace, steps, inputs, labels, stats):
    """A dataset from a binary-float trace (PyTorch's float32 or float64) judged by the
    shared float judge (:func:`~symbolic_inversion.solvers.judge.assess_float64`): every
    gradient entry against its own rounding bound at the dataset (backpropagation's
    running error analysis), a few weighted Gauss-Newton steps, and the error of the
    data from that rounding.  One tolerance for every entry (the largest bound) is far
    too loose for float32, where entries differ by orders of magnitude.  A dataset the
    rounding does not explain is no evidence against the trace here (a pattern chosen
    wrongly gives one): ``not_converged``."""
    from ..system import InversionSystem
    from .judge import assess_float64
    system = InversionSystem.from_trace(trace, steps)
    judged = assess_float64(system, inputs, labels, "relu", time.perf_counter())
    for key in ("judged_in", "refine_iterations", "residual_ratio", "error_bound",
                "error_bound_worst_case", "condition"):
        stats[key] = judged.stats.get(key)
    status, detail = judged.status, judged.detail
    if status is Status.INCONSISTENT:
        status = Status.NOT_CONVERGED
        detail = f"the patterns' dataset does not explain the step: {detail}"
    return status, judged.samples, detail, judged.digits, judged.residual


def _optimizer_name(trace):
    optimizer = trace.optimizer
    return optimizer["name"] if isinstance(optimizer, dict) else optimizer.name


def solve_relu(trace, dps, steps=None, seed=0):
    """Recover the data behind a gd trace of a ReLU network (hidden layers relu, output
    identity), exactly when the trace is exact.  See the module docstring.

    ``dps`` may also be an options object with ``dps``, ``steps`` and ``seed``
    attributes (the ``solver(trace, options)`` convention)."""
    if hasattr(dps, "dps"):
        dps, steps, seed = dps.dps, dps.steps, getattr(dps, "seed", 0)
    started = time.perf_counter()
    network = trace.network
    why = supports_relu(network)
    if why:
        raise NotSupportedError(f"relu solver: {why}; got {list(network.activations)}")
    if _optimizer_name(trace) != "gd" or trace.momentum or trace.weight_decay:
        raise NotSupportedError("relu solver: needs plain full-batch gd (no sgd, momentum "
                                "or weight decay)")
    steps = trace.steps if steps is None else min(steps, trace.steps)
    n = trace.samples
    top = network.depth - 2
    # every hidden layer's delta matrix must have rank n (the back-solves), and the last
    # hidden layer's gradient can have rank at most its fan-in (+ 1 for the bias)
    width = min(network.layers[1:-1])
    fan_in = network.layers[top] + (1 if network.bias else 0)
    stats = {"method": "relu", "steps_used": steps, "flint": rational.flint_available()}

    def finish(status, samples=(), detail="", digits=0, residual=None):
        stats["time"] = round(time.perf_counter() - started, 4)
        solution = Solution(list(samples), status, residual, digits, stats, detail)
        if "symmetries" in stats:   # the Solution field where it exists
            solution.symmetries = list(stats["symmetries"])
        return solution

    bound = min(width, fan_in)
    if n > bound:
        stats["exact"] = False
        return finish(Status.UNDERDETERMINED, detail=(
            f"n = {n} exceeds the rank bound of the gradients, min(hidden width {width}, "
            f"fan-in{' + 1' if network.bias else ''} {fan_in} of layer {top + 1}) = {bound}: "
            f"at most {bound} samples can be separated"))
    with mpmath.workdps(dps):
        # Only MSE keeps exact data exact: the other links (softmax, logistic) make the
        # gradient of rational data irrational, so such a trace is a rounded one.
        # A trace trained in a binary format (dtype) is a rounded one too: its full-rank
        # float gradient sent float32 MSE steps to an exact search of 80 s for 51 patterns.
        looks_exact = _looks_exact(trace, network) if trace.loss.name == "mse" and \
            getattr(trace, "dtype", None) is None else False
        if looks_exact is not False:
            outcome = _attempt(trace, _Exact(), steps, seed, stats)
            # A trace can be exact in its first steps and rounded later (short data: the
            # first gradients fit in the written digits): then the tolerance decides.
            if outcome[0] is not Status.INCONSISTENT:
                stats["exact"] = True
                return finish(*outcome)
        digits = trace.digits   # a scan of every parameter: once
        use_float = digits <= _FLOAT_DIGITS or getattr(trace, "dtype", None) is not None
        arithmetic = _Numeric(use_float, _tolerance(trace, digits))
        stats.update(exact=False, dps=16 if use_float else dps, tolerance=arithmetic.tolerance)
        status, samples, detail, digits, residual = _attempt(trace, arithmetic, steps, seed,
                                                             stats)
        return finish(status, samples, detail, min(digits, stats["dps"] - 1), residual)


def _explains(arithmetic, theta, gradient, inputs, labels):
    """Whether ``(inputs, labels)`` reproduce the whole gradient ``gradient``."""
    gap = arithmetic.gap(theta, inputs, labels, gradient)
    return gap == 0 if arithmetic.exact else gap <= arithmetic.tolerance


def _recover_step(network, arithmetic, theta, gradient, factor, seed, n):
    """Patterns, then values, from one step: ``(inputs, labels, reason, info)``."""
    layers = arithmetic.blocks(theta)
    G = _floats(_layer_gradient(network, gradient, network.depth - 2))
    W_out = _floats(layers[-1][0])
    rank = arithmetic.rank(G, n)
    info = {"rank": rank}
    if rank == 0:
        return None, None, "the layer gradient is zero: no sample is visible", info
    top = network.depth - 2
    W_layer = _floats([row + ([b] if b is not None else [])
                       for row, b in zip(layers[top][0], layers[top][1] or
                                         [None] * len(layers[top][0]))])
    rowspace = np.linalg.svd(G, full_matrices=False)[2][:rank]
    # neurons with zero output weights show nothing: their bits are 0 in every pattern
    visible = np.any(W_out != 0, axis=0)
    W_layer = np.where(visible[:, None], W_layer, 0)
    accept = realizable(W_layer, rowspace, network.bias, nonnegative=top > 0)
    # Several outputs and many more neurons than unknowns (w equations, n + m unknowns
    # per ray): a wrong support passes the ray test (diag(s) W_out^T e in the column
    # space) only by a coincidence of measure zero, unlike the binary sums of one
    # output.  Then the linear program (about a second per pattern at 1024 neurons,
    # profiled: more than the search itself at b = 128) runs only when the exact
    # decomposition fails, to name the patterns that are no cell.
    lazy = network.output_width > 1 and int(visible.sum()) > max(
        EXHAUSTIVE_WIDTH, 2 * (rank + network.output_width))
    patterns, how = find_patterns(G, W_out, rank, seed=seed,
                                  accept=None if lazy else accept, rank=rank,
                                  layer=(W_layer, network.bias))
    info.update({"discovery": how, "patterns_found": len(patterns)})
    if len(patterns) < rank:
        return None, None, (f"the pattern search found {len(patterns)} of {rank} activation "
                            f"patterns ({how})"), info
    if network.output_width == 1:
        # Coincidental binary vectors in the column space: choose the patterns whose
        # decomposition gives every sample an input with its own pattern.
        G_scaled = np.where(visible[:, None], G / np.where(visible, W_out[0], 1)[:, None], 0)

        def consistent(subset):
            return _float_consistent(G_scaled, W_layer, subset, network.bias, top > 0)
        candidates = _select(patterns, rank, consistent)
        if not candidates and "exhaustive" not in how:
            more, _ = find_patterns(G, W_out, rank + 8, seed=seed + 1, accept=accept,
                                    rank=rank)
            known = {p.tobytes() for p in patterns}
            pool = patterns + [p for p in more if p.tobytes() not in known]
            info["patterns_found"] = len(pool)
            candidates = _select(pool, rank, consistent)
        if not candidates:
            return None, None, (f"no {rank} of the {info['patterns_found']} patterns found "
                                f"give every sample an input with its own pattern"), info
    else:
        candidates = itertools.islice(itertools.combinations(patterns, rank), 20000)
    best, reasons = None, []
    for chosen in candidates:
        inputs, labels, reason = _dataset(network, arithmetic, theta, gradient,
                                          [list(map(bool, p)) for p in chosen], factor)
        if inputs is None:
            reasons.append(reason)
            continue
        single = isinstance(candidates, list) and len(candidates) == 1  # checked later
        if len(inputs) == n and not single and not _explains(
                arithmetic, theta, gradient, inputs, labels):
            reasons.append("a candidate set of patterns does not explain the whole step")
            continue
        if best is not None:
            info["not_unique"] = True
            return None, None, ("two different datasets explain this step; more steps or "
                                "a wider layer would separate them"), info
        best = (inputs, labels)
    if best is None:
        reason = reasons[0] if reasons else "no consistent decomposition"
        if network.output_width > 1 and "exhaustive" not in how:
            # a search that stops at n patterns may hold a wrong one (a support passing
            # the float tests by accident) and miss a true one: the search is
            # incomplete, which says nothing against the trace
            info["search_incomplete"] = True
            reason = (f"the {rank} patterns found do not decompose the gradient "
                      f"({reason}): the search stopped at {rank}, one of them may be wrong")
            if accept is not None:
                cells = sum(bool(accept(p)) for p in patterns)
                reason += f" ({rank - cells} of them no cell of the layer's arrangement)"
        return None, None, reason, info
    return best[0], best[1], None, info


def _rank_deficit_detail(network, arithmetic, gradient, inputs, labels, theta, factor,
                         n):
    """Why fewer than ``n`` samples were separated: invisible or duplicate samples."""
    found = len(inputs)
    text = (f"the gradient has rank {found} < n = {n}: {n - found} sample(s) cannot be "
            f"separated; shown: the {found} that can")
    _, bias = network.layer_slices()[-1]
    if bias is None:
        return text + " (samples inactive at every neuron, or duplicate inputs)"
    residuals = arithmetic.residuals(arithmetic.outputs(theta, inputs), labels, factor)
    explained = [sum(r[o] for r in residuals) for o in range(network.output_width)]
    observed = gradient[bias]
    if all(abs(a - b) <= 1e-9 * (1 + abs(a)) for a, b in zip(observed, explained)):
        return text + (". They explain the output bias gradient: the others duplicate "
                       "inputs shown (their residuals merge: only the sum of their labels "
                       "is determined)")
    return text + (". They do not explain the output bias gradient: some sample is "
                   "inactive at every neuron of the last hidden layer (invisible: its input "
                   "cannot be recovered)")


def _sensitivity(network, arithmetic, theta, gradient, factor, inputs, labels, seed):
    """First-order error of the data: re-solve with the gradient moved by its tolerance
    (two random sign patterns) and take ten times the largest change.  The patterns are
    discrete and stay; only the linear solves respond."""
    rng = np.random.default_rng(seed + 1)
    pre, _ = arithmetic.values(theta, inputs)
    patterns = [[z > 0 for z in row] for row in pre[network.depth - 2]]
    largest = 0.0
    for _ in range(2):
        moved = [g + arithmetic.tolerance * int(sign)
                 for g, sign in zip(gradient, rng.choice((-1, 1), size=len(gradient)))]
        again, again_labels, _ = _dataset(network, arithmetic, theta, moved, patterns, factor)
        if again is None:
            return math.inf
        for a, b in zip(again + again_labels, inputs + labels):
            largest = max(largest, max(float(abs(u - v)) for u, v in zip(a, b)))
    return 10 * largest
