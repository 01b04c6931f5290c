r"""Variable projection in double precision: the labels eliminated, the inputs fitted.

The labels enter the inversion system linearly (the MSE gradient is linear in the
residuals ``f(x_i) - y_i``), so for given inputs ``X`` the best labels are a linear least
squares solve, and what remains is a nonlinear least-squares problem in the inputs alone
(Golub and Pereyra's variable projection).  Its basins of attraction are much larger than
those of the joint problem in ``(X, Y)``, and in float64 a fit costs milliseconds: this is
the cheap *screening* stage.  A fit whose relative residual reaches the level of double
rounding is a candidate for the :class:`~symbolic_inversion.solvers.judge.Judge`, which
refines it on every step in multiprecision and alone decides what it is.

:func:`projected_fit` is one Levenberg-Marquardt run on the projected residual
``r(X) = F(X, Y*(X)) - G`` with Kaufman's Jacobian ``(I - Q Q^T) J_X`` (``Q``: an
orthonormal basis of the label columns ``J_Y``); :class:`ProjectedSystem` holds the
float64 evaluator; :func:`random_inputs` draws starts.
"""

import enum
from dataclasses import dataclass

import mpmath
import numpy as np

from ..arithmetic import get_arithmetic
from .loop import iterate

__all__ = ["ProjectedSystem", "FitCode", "ProjectedFit", "projected_fit",
           "LevenbergMarquardt", "random_inputs", "ROOT_LEVEL"]

# A fit whose residual, relative to the size of the observed gradients, is below this is
# a root in double precision (float64 rounding of the residual: about 1e-16 relative,
# amplified by the sums over samples and steps).
ROOT_LEVEL = 1e-10
# ... and whose residual bounds the inputs to this (first order, relative to their size)
ERROR_LEVEL = 1e-4
# Gauss-Newton steps on the labels in the update form (labels nearly linear: the first
# step's linear solve is close, and each step gains digits quadratically)
LABEL_ITERATIONS = 6


class FitCode(enum.Enum):
    ROOT = "root"                  # residual at double rounding: a candidate
    MINIMUM = "minimum"            # settled at a non-zero residual (a local minimum)
    MAX_ITERATIONS = "max_iterations"
    NOT_FINITE = "not_finite"      # overflow or NaN along the way
    RANK_DEFICIENT = "rank_deficient"  # the labels are not determined by these inputs
    ILL_CONDITIONED = "ill_conditioned"  # a tiny residual that does not bound the inputs


@dataclass
class ProjectedFit:
    """One fit: the inputs ``(n, d)`` and their least-squares labels ``(n, m)`` (float64),
    ``relative`` residual (max norm over the max norm of the observed gradients),
    iterations, and how it ended."""

    inputs: np.ndarray
    labels: np.ndarray
    relative: float
    iterations: int
    code: FitCode
    error: float = np.inf

    @property
    def root(self):
        return self.code is FitCode.ROOT


class ProjectedSystem:
    """The inversion system in float64 with the labels projected out.

    ``system``: an :class:`~symbolic_inversion.system.InversionSystem` (all its steps).
    """

    def __init__(self, system):
        self.system = system
        self.evaluator = system.evaluator(get_arithmetic("float64"))
        n = system.samples
        d = system.network.input_width
        m = system.network.output_width
        self.shape = (n, d)
        columns = np.arange(n * (d + m)).reshape(n, d + m)
        self.input_columns = columns[:, :d].reshape(-1)
        self.label_columns = columns[:, d:].reshape(-1)
        self.scale = self.evaluator.scale
        # a root in double precision: the system's own float64 noise, relative
        self.root_level = max(ROOT_LEVEL, 10 * self.evaluator.float64_noise() / self.scale)
        self._linear = system.form == "gradient"
        self._selected = system.form == "selected"
        if not self._linear:
            # the update and selected forms (Adam): labels start from the first step's
            # gradient form (the one step with a unique inverse; linear in the labels)
            from ..system import InversionSystem
            first = InversionSystem.from_trace(system.trace, 1, form="gradient")
            self._first = first.evaluator(get_arithmetic("float64"))

    def labels(self, inputs):
        """Least-squares labels for ``inputs``, or ``None`` when they are not determined.

        In the gradient form the system is affine in the labels: one linear solve.  In
        the update form (optimizers such as Adam carry the labels nonlinearly through
        their state) the first step's linear solve starts :data:`LABEL_ITERATIONS`
        Gauss-Newton steps on the labels over every step."""
        if self._selected:
            return self._selected_labels(inputs)
        labels = self._linear_labels(self.evaluator if self._linear else self._first, inputs)
        if labels is None or self._linear:
            return labels
        X = np.asarray(inputs, dtype=float).reshape(self.shape)
        for _ in range(LABEL_ITERATIONS):
            r, J = self.evaluator.evaluate(self.evaluator.join(X, labels))
            Jy = J[:, self.label_columns]
            if not (np.all(np.isfinite(r)) and np.all(np.isfinite(Jy))):
                return None
            step, _, rank, _ = np.linalg.lstsq(Jy, -r, rcond=None)
            if rank < Jy.shape[1]:
                return None
            labels = labels + step.reshape(labels.shape)
            if np.max(np.abs(step)) <= 1e-13 * (1 + np.max(np.abs(labels))):
                break
        return labels

    def _selected_labels(self, inputs):
        """Labels in the selected gradient form: linear for a given selection of the
        right-hand sides, which depends on the labels; alternate until it settles."""
        X = np.asarray(inputs, dtype=float).reshape(self.shape)
        # Select from the first step's labels: a selection left by other data (or by
        # none: the nearest roots to a zero gradient) can settle the alternation at wrong
        # labels (measured: a float64 PyTorch classifier, 6 samples, 3 Adam steps, whose
        # true inputs gave labels 2e-2 off instead of its 5e-9 residual)
        labels = self._linear_labels(self._first, X)
        if labels is not None:
            self.evaluator.evaluate(self.evaluator.join(X, labels), jacobian=False)
        for _ in range(LABEL_ITERATIONS):
            new = self._linear_labels(self.evaluator, X)
            if new is None:
                return None
            settled = labels is not None and np.max(np.abs(new - labels)) <= \
                1e-12 * (1 + np.max(np.abs(new)))
            labels = new
            self.evaluator.evaluate(self.evaluator.join(X, labels), jacobian=False)
            if settled:
                break
        return labels

    def _linear_labels(self, evaluator, inputs):
        A, b = evaluator.label_system(inputs)
        if not np.all(np.isfinite(A)) or not np.all(np.isfinite(b)):
            return None
        labels, _, rank, _ = np.linalg.lstsq(A, b, rcond=None)
        if rank < A.shape[1]:
            return None
        return labels.reshape(self.shape[0], -1)

    def sample_weights(self, inputs, labels):
        """Each sample's contribution to the gradients (the norm of its terms on every
        step, batches ignored) at ``inputs`` ``(n, d)`` and ``labels`` ``(n, m)``;
        ``None`` if not finite."""
        Bf, B = self.evaluator.sample_terms(np.asarray(inputs, dtype=float))
        Bf, B = np.asarray(Bf, dtype=float), np.asarray(B, dtype=float)
        terms = Bf - np.einsum("enpm,nm->enp", B, np.asarray(labels, dtype=float))
        weights = np.linalg.norm(terms.transpose(1, 0, 2).reshape(len(terms[0]), -1), axis=1)
        return weights if np.all(np.isfinite(weights)) else None

    def unknowns(self, fit):
        """The unknowns of a fit as mpmath numbers, sample by sample (inputs, labels)."""
        return [mpmath.mpf(float(v)) for v in self.evaluator.join(fit.inputs, fit.labels)]

    def evaluate(self, inputs):
        """``(labels, residual, kaufman_jacobian)`` at ``inputs`` (``None`` if the labels
        are not determined or a value is not finite)."""
        labels = self.labels(inputs)
        if labels is None:
            return None
        residual, J = self.evaluator.evaluate(self.evaluator.join(inputs, labels))
        if not (np.all(np.isfinite(residual)) and np.all(np.isfinite(J))):
            return None
        Q, _ = np.linalg.qr(J[:, self.label_columns])
        Jx = J[:, self.input_columns]
        return labels, residual, Jx - Q @ (Q.T @ Jx)


def projected_fit(projected, inputs, max_iterations=300, root_level=None):
    """Levenberg-Marquardt on the projected residual from ``inputs`` ``(n, d)``.

    Nielsen's damping update; stops at a root (relative residual below ``root_level``,
    default the system's own: :attr:`ProjectedSystem.root_level`),
    when the step no longer changes the inputs (a minimum), or after ``max_iterations``.

    Examples
    ========

    A tanh neuron's three samples from an exact trace of six steps, from a start near
    the truth:

    >>> import numpy as np
    >>> from symbolic_inversion import Network, simulate
    >>> from symbolic_inversion.system import InversionSystem
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6, 0.2, -0.3], [0.5, 0.4, 0.1],
    ...                  lr="0.1", epochs=6, init=["0.5", "0.5"], dps=40)
    >>> projected = ProjectedSystem(InversionSystem.from_trace(trace))
    >>> fit = projected_fit(projected, np.array([[0.5], [0.1], [-0.2]]))
    >>> fit.code.value, np.round(np.sort(fit.inputs[:, 0]), 8).tolist()
    ('root', [-0.3, 0.2, 0.6])
    """
    X = np.array(inputs, dtype=float).reshape(projected.shape)
    solver = LevenbergMarquardt(projected, projected.root_level if root_level is None
                                else root_level)
    with np.errstate(all="ignore"):
        state = solver.init(X)
        if state is None:
            return _failed(projected, X, 0)
        return iterate(solver, state, max_iterations)


class LevenbergMarquardt:
    """Levenberg-Marquardt on the projected residual for
    :func:`~symbolic_inversion.solvers.loop.iterate` (Nielsen's damping update; the
    state is a dict: inputs ``X``, ``labels``, residual ``r``, Kaufman Jacobian ``J``,
    ``cost``, damping ``mu`` and ``nu``, the iteration count and the fit once it ends)."""

    def __init__(self, projected, root_level):
        self.projected, self.root_level = projected, root_level
        self.scale = projected.scale

    def init(self, X):
        current = self.projected.evaluate(X)
        if current is None:
            return None
        labels, r, J = current
        return {"X": X, "labels": labels, "r": r, "J": J, "cost": float(r @ r),
                "mu": None, "nu": 2.0, "iteration": 0, "fit": None}

    def _relative(self, state):
        return float(np.max(np.abs(state["r"]))) / self.scale

    def step(self, state):
        state["iteration"] += 1
        relative = self._relative(state)
        if relative < self.root_level:
            state["fit"] = _settled(state["X"], state["labels"], state["r"], state["J"],
                                    relative, state["iteration"] - 1)
            return state
        J, r = state["J"], state["r"]
        JtJ, g = J.T @ J, J.T @ r
        if state["mu"] is None:
            state["mu"] = 1e-3 * max(float(np.max(np.diag(JtJ))), 1e-300)
        mu = state["mu"]
        try:
            step = np.linalg.solve(JtJ + mu * np.eye(len(g)), -g)
        except np.linalg.LinAlgError:
            state["mu"], state["nu"] = mu * state["nu"], 2 * state["nu"]
            return state
        X = state["X"]
        trial_X = X + step.reshape(X.shape)
        trial = self.projected.evaluate(trial_X)
        trial_cost = float(trial[1] @ trial[1]) if trial is not None else np.inf
        predicted = float(step @ (mu * step - g))
        if trial is not None and np.isfinite(trial_cost) and trial_cost < state["cost"]:
            rho = (state["cost"] - trial_cost) / predicted if predicted > 0 else 0.0
            state["mu"] = mu * max(1 / 3, 1 - (2 * rho - 1) ** 3)
            state["nu"] = 2.0
            small = np.max(np.abs(step)) <= 1e-14 * (1 + np.max(np.abs(X)))
            state["X"], (state["labels"], state["r"], state["J"]) = trial_X, trial
            state["cost"] = trial_cost
            if small:
                state["fit"] = self._ended(state)
        else:
            state["mu"], state["nu"] = mu * state["nu"], 2 * state["nu"]
            if state["mu"] > 1e30:
                state["fit"] = self._ended(state)
        return state

    def _ended(self, state):
        """The fit where the steps stopped changing the inputs (or the damping ran away):
        a root, or a minimum."""
        relative = self._relative(state)
        if relative < self.root_level:
            return _settled(state["X"], state["labels"], state["r"], state["J"], relative,
                            state["iteration"])
        return ProjectedFit(state["X"], state["labels"], relative, state["iteration"],
                            FitCode.MINIMUM)

    def terminate(self, state):
        return state["fit"]

    def exhausted(self, state):
        return ProjectedFit(state["X"], state["labels"], self._relative(state),
                            state["iteration"], FitCode.MAX_ITERATIONS)


def _settled(X, labels, r, J, relative, iterations):
    """A fit at a residual below the root level: a root if the residual also bounds the
    inputs (first order: ``|r| / sigma_min``), else an ill-conditioned near-root that
    double precision cannot tell from a root (measured on 1-4-1 networks with one step:
    residuals of 1e-11 relative at local minima far from the data)."""
    singular = np.linalg.svd(J, compute_uv=False)
    sigma = float(singular[-1]) if singular.size else 0.0
    error = float(np.linalg.norm(r)) / sigma if sigma > 0 else np.inf
    code = FitCode.ROOT if error <= ERROR_LEVEL * (1 + float(np.max(np.abs(X)))) \
        else FitCode.ILL_CONDITIONED
    return ProjectedFit(X, labels, relative, iterations, code, error)


def _failed(projected, X, iterations):
    labels = projected.labels(X)
    code = FitCode.RANK_DEFICIENT if labels is None and np.all(np.isfinite(X)) \
        else FitCode.NOT_FINITE
    return ProjectedFit(X, labels, np.inf, iterations, code)


def random_inputs(rng, shape, scale=1.0):
    """Start inputs uniform in ``[-scale, scale]`` (a ``numpy`` Generator ``rng``)."""
    return rng.uniform(-scale, scale, shape)
