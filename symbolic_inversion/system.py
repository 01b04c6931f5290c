r"""Step 4 of the workflow: the inversion system, the paper's eq. (9) for any network.

Every observed step ``j`` gives one equation per parameter ``p``:

.. math:: \sum_{i \in \mathcal{B}_j} \big[B(\theta^{(j)}, x_i)\,(f(\theta^{(j)}, x_i) - y_i)\big]_p
          = \tfrac{|\mathcal{B}_j|}{2}\, g^{(j)}_p,
          \qquad g^{(j)} = \frac{\theta^{(j)} - \theta^{(j+1)}}{\eta}\ \text{(plain GD)},

with ``B = J_theta f^T``.  The unknowns are the inputs and labels of the ``n`` samples.
:class:`InversionSystem` holds the system symbolically (general form with a sum over
samples, or instantiated with the numbers of a trace), counts equations and unknowns,
prints LaTeX, and hands out evaluators (:meth:`InversionSystem.evaluator`, a
:class:`SystemEvaluator`): residual and Jacobian in any arithmetic of
:mod:`symbolic_inversion.arithmetic`, through the layer-wise program of
:mod:`symbolic_inversion.program`.
"""

import math
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from .errors import InputError, NotSupportedError, boundary
from .precision import bound_dps
from .network import Network
from .trace import Trace

__all__ = ["InversionSystem", "SystemEvaluator", "UpdateEvaluator", "SelectedEvaluator",
           "LocalStepsEvaluator",
           "system_counts",
           "smallest_singular_value"]


@boundary("system_counts")
def system_counts(network, samples, steps=None):
    """Equations and unknowns of the inversion system.

    ``unknowns = samples * (input width + output width)``; ``equations = steps *
    parameters``; ``min_steps`` is the fewest steps giving at least as many equations as
    unknowns (necessary, not sufficient, for identifiability).

    >>> from symbolic_inversion import Network, system_counts
    >>> system_counts(Network([3, 4, 2]), samples=5, steps=3)
    {'samples': 5, 'steps': 3, 'parameters': 26, 'unknowns': 25, 'equations': 78, 'min_steps': 1}
    """
    from .limits import check_int
    samples = check_int(samples, "samples", minimum=1)
    if steps is not None:
        steps = check_int(steps, "epochs", minimum=1)
    unknowns = samples * (network.input_width + network.output_width)
    parameters = network.num_parameters
    min_steps = -(-unknowns // parameters)
    steps = min_steps if steps is None else steps
    return {"samples": samples, "steps": steps, "parameters": parameters,
            "unknowns": unknowns, "equations": steps * parameters, "min_steps": min_steps}


def _decimal_to_float(value, digits):
    return sp.Float(str(value), max(digits, 15))


class InversionSystem:
    """The system of equations whose solutions are the training data.

    Build it from a trace (numbers instantiated) with :meth:`from_trace`, or from a
    network and a sample count for the general form.

    Examples
    ========

    The paper's eq. (9) for the single neuron, in general form:

    >>> from symbolic_inversion import InversionSystem, Network
    >>> system = InversionSystem(Network([1, 1], "tanh"), samples=2, steps=2)
    >>> system.counts["unknowns"], system.counts["equations"]
    (4, 4)
    >>> for equation in system.general_equations():
    ...     print(equation)
    Eq(Sum((1 - tanh(b^{(j)} + w^{(j)}*x[i])**2)*(tanh(b^{(j)} + w^{(j)}*x[i]) - y[i])*x[i], (i, 0, n - 1)), n*(-w^{(j + 1)} + w^{(j)})/(2*eta))
    Eq(Sum((1 - tanh(b^{(j)} + w^{(j)}*x[i])**2)*(tanh(b^{(j)} + w^{(j)}*x[i]) - y[i]), (i, 0, n - 1)), n*(-b^{(j + 1)} + b^{(j)})/(2*eta))

    Instantiated with the paper's 7-digit trace (its eq. (12)):

    >>> from symbolic_inversion import Trace
    >>> trace = Trace(Network([1, 1], "tanh"), "0.1", 2,
    ...               [["0.5000000", "0.5000000"], ["0.4925472", "0.4810773"],
    ...                ["0.4855530", "0.4634884"]])
    >>> system = InversionSystem.from_trace(trace)
    >>> print(system.equations()[1])
    Eq((1 - tanh(0.5*x_0 + 0.5)**2)*(-y_0 + tanh(0.5*x_0 + 0.5)) + (1 - tanh(0.5*x_1 + 0.5)**2)*(-y_1 + tanh(0.5*x_1 + 0.5)), 0.189227)
    """

    def __init__(self, network, samples, steps=None, trace=None, loss=None, optimizer=None,
                 form=None):
        from .losses import get_loss
        from .optimizers import Optimizer
        if not isinstance(network, Network):
            raise InputError("network: expected a Network")
        self.network = network
        self.trace = trace
        self.loss = trace.loss if trace is not None else get_loss(loss or "mse")
        self.optimizer = trace.optimizer if trace is not None else (
            Optimizer.from_dict(optimizer) if optimizer is not None else None)
        if steps is not None:
            from .limits import check_int
            steps = check_int(steps, "steps", minimum=1)
        if trace is not None and steps is not None and not 1 <= steps <= trace.steps:
            raise InputError(f"steps: the trace has {trace.steps} steps, asked for {steps}")
        if steps is None and trace is not None:
            steps = trace.steps
        self.counts = system_counts(network, samples, steps)
        self.samples = self.counts["samples"]
        self.steps = self.counts["steps"]
        rounds = trace is not None and trace.rounds
        if form is None:
            invertible = self.optimizer is None or \
                self.optimizer.invertible_steps(self.steps) >= self.steps
            form = "local" if rounds else "gradient" if invertible else "update"
        if form not in ("gradient", "update", "selected", "local"):
            raise InputError(f"form: expected 'gradient', 'update', 'selected' or 'local', "
                             f"got {form!r}")
        if rounds != (form == "local"):
            raise InputError("form: federated rounds (local steps, clients) take the "
                             "local form, and only they")
        if form == "gradient" and self.optimizer is not None and \
                self.optimizer.invertible_steps(self.steps) < self.steps:
            raise InputError(f"form: optimizer {self.optimizer.name} reveals the gradients "
                             f"of its first {self.optimizer.invertible_steps(self.steps)} "
                             f"step(s) only; later steps need the update form")
        self.form = form
        self._evaluators = {}

    @classmethod
    def from_trace(cls, trace, steps=None, form=None):
        """The system instantiated with the numbers of ``trace`` (first ``steps`` steps).

        ``form``: ``"gradient"`` (rows: observed gradients, for optimizers the observer
        can undo; the default when every step is invertible), ``"update"`` (rows: the
        normalised updates ``(theta_j - theta_{j+1}) / lr_j`` predicted from the data
        through the optimizer's state; the default for Adam beyond its first step) or
        ``"selected"`` (float64 searches on Adam traces: gradient rows whose right-hand
        sides are the roots nearest the data's own gradients, :class:`SelectedEvaluator`).
        """
        if not isinstance(trace, Trace):
            raise InputError("trace: expected a Trace")
        return cls(trace.network, trace.samples, steps, trace, form=form)

    # -- symbols -------------------------------------------------------------------

    def symbolic_terms(self):
        """How many per-sample gradient terms the instantiated equations write out: the
        samples of a step (known ones included) x steps x parameters, counted without
        building any (bounded by the limit ``max_symbolic_terms``)."""
        if self.trace is None:
            return 0
        per_step = self.samples
        if self.trace.offset is not None:   # known samples: their terms are written too
            per_step = self.trace.full_samples
        elif self.trace.optimizer.batch_size is not None:
            per_step = min(per_step, self.trace.optimizer.batch_size)
        return per_step * self.steps * self.network.num_parameters

    def _check_symbolic_size(self):
        from .limits import check
        check("max_symbolic_terms", self.symbolic_terms(),
              f"symbolic terms of {self.samples} samples x {self.steps} steps x "
              f"{self.network.num_parameters} parameters")

    def unknowns(self):
        """Unknown symbols, sample by sample: inputs then labels."""
        from .limits import check
        check("max_trace_values", self.counts["unknowns"], "unknowns")
        symbols = []
        for i in range(self.samples):
            x, y = self.network.sample_symbols(i)
            symbols += list(x) + list(y)
        return symbols

    def batch(self, step):
        return self.trace.batch(step) if self.trace is not None else list(range(self.samples))

    # -- symbolic equations ----------------------------------------------------------

    def _general_sample(self):
        i = sp.Symbol("i", integer=True)
        X, Y = sp.IndexedBase("x"), sp.IndexedBase("y")
        if self.network.input_width == 1:
            x = sp.Matrix([X[i]])
        else:
            x = sp.Matrix([X[i, d] for d in range(self.network.input_width)])
        if self.network.output_width == 1:
            y = sp.Matrix([Y[i]])
        else:
            y = sp.Matrix([Y[i, d] for d in range(self.network.output_width)])
        return i, x, y

    def _plain_descent(self):
        """Whether steps are plain gradient steps ``theta' = theta - eta g`` (the paper's
        eq. (9) form)."""
        optimizer = self.optimizer
        return optimizer is None or (optimizer.invertible and optimizer.schedule is None and
                                     not getattr(optimizer, "momentum", 0) and
                                     not optimizer.weight_decay)

    def general_equations(self):
        """The system in general form, for a generic step ``j``.

        Plain gradient descent (the paper's eq. (9)): one equation per parameter,
        ``sum_i B_i (ell(f_i) - y_i) = (theta_j - theta_{j+1}) / (c eta)``.  Any other
        optimizer: the loss gradient ``d^{(j)}_p = c sum_i ...`` per parameter, then the
        optimizer's update equations (:meth:`Optimizer.symbolic_update
        <symbolic_inversion.optimizers.Optimizer.symbolic_update>`), e.g. Adam's moments.
        """
        i, x, y = self._general_sample()
        n, eta = sp.symbols("n eta", positive=True)
        now = self.network.parameter_symbols(step="j")
        later = self.network.parameter_symbols(step="j + 1")
        summands = self.network.sample_term(x, y, now, self.loss, named=True)
        factor = self.loss.factor_expression(n, self.network.output_width)
        if self._plain_descent():
            return [sp.Eq(sp.Sum(term, (i, 0, n - 1)), (a - b) / (factor * eta))
                    for term, a, b in zip(summands, now, later)]
        gradients = [sp.Symbol(f"d^{{(j)}}_{{{p}}}")
                     for p in range(self.network.num_parameters)]
        rows = [sp.Eq(g, factor * sp.Sum(term, (i, 0, n - 1)))
                for g, term in zip(gradients, summands)]
        return rows + self.optimizer.symbolic_update()

    def right_hand_sides(self):
        """Exact right-hand sides as fractions: ``g_j / c_j`` (the observed gradient over
        the loss's factor) in the gradient form, ``(theta_j - theta_{j+1}) / lr_j`` in the
        update form."""
        if self.trace is None:
            raise InputError("right-hand sides need a trace")
        thetas = [[Fraction(v) for v in vector]
                  for vector in self.trace.parameters[:self.steps + 1]]
        if self.form == "update":
            return [[(a - b) / Fraction(self.optimizer.lr_at(j)) for a, b in
                     zip(thetas[j], thetas[j + 1])] for j in range(self.steps)]
        gradients = self.trace.optimizer.observed_gradients(thetas, Fraction)
        return [[self.rhs_factor(step) * g for g in gradient]
                for step, gradient in enumerate(gradients)]

    def rhs_factor(self, step):
        """The exact factor of step ``step``'s observed gradient on the right-hand side of
        the gradient form: ``1 / c_j`` (:meth:`Trace.gradient_factor
        <symbolic_inversion.trace.Trace.gradient_factor>`: ``|B_j| / 2`` for the
        toolkit's MSE, ``|B_j|`` for cross-entropy's mean)."""
        return 1 / self.trace.gradient_factor(step)

    def known_terms(self, step):
        """The known samples of step ``step`` (subtracted from its right-hand side): a
        list of ``(x, y)`` Decimal lists (empty when none are known)."""
        offset = self.trace.offset if self.trace is not None else None
        if offset is None:
            return []
        d = self.network.input_width
        return [(offset[0][k][:d], offset[0][k][d:]) for k in offset[2][step]]

    def _step_sums(self, step, digits, samples):
        """``sum_i B_i (ell(f_i) - y_i)`` of step ``step`` with the trace's numbers
        (known samples as numbers)."""
        theta = [_decimal_to_float(v, digits) for v in self.trace.parameters[step]]
        totals = sp.zeros(self.network.num_parameters, 1)
        for i in self.batch(step):
            x, y = samples[i]
            totals += self.network.sample_term(x, y, theta, self.loss)
        for x, y in self.known_terms(step):  # known samples: numbers, on the left
            totals += self.network.sample_term(
                sp.Matrix([_decimal_to_float(v, digits) for v in x]),
                sp.Matrix([_decimal_to_float(v, digits) for v in y]), theta, self.loss)
        return totals

    def equations(self):
        """The system instantiated with the trace's numbers (like the paper's eqs. (10), (12)).

        Numbers keep the trace's digits; the right-hand sides are exact and printed to
        the trace's precision.  In the update form (Adam): per step the loss gradient
        ``d^{(j)}_p`` and the recorded parameter as the optimizer's update of the earlier
        gradients (its state unrolled).
        """
        if self.trace is None:
            raise InputError("instantiated equations need a trace; use general_equations()")
        self._check_symbolic_size()  # before a symbol is built: SymPy grows fast
        digits = self.trace.digits
        samples = [self.network.sample_symbols(i) for i in range(self.samples)]
        equations = []
        if self.form == "update":
            P = self.network.num_parameters
            state = None
            for step in range(self.steps):
                gradients = [sp.Symbol(f"d^{{({step})}}_{{{p}}}") for p in range(P)]
                factor = self.trace.gradient_factor(step)
                sums = self._step_sums(step, digits, samples)
                equations += [sp.Eq(g, sp.Rational(factor.numerator, factor.denominator)
                                    * total, evaluate=False)
                              for g, total in zip(gradients, sums)]
                theta = [sp.Rational(str(v)) for v in self.trace.parameters[step]]
                predicted, state = self.optimizer.step(theta, list(gradients), state, step)
                equations += [sp.Eq(sp.Float(str(v), digits), value, evaluate=False)
                              for v, value in zip(self.trace.parameters[step + 1],
                                                  predicted)]
            return equations
        sides = self.right_hand_sides()
        for step in range(self.steps):
            totals = self._step_sums(step, digits, samples)
            for total, side in zip(totals, sides[step]):
                value = sp.Rational(side.numerator, side.denominator)
                equations.append(sp.Eq(total, sp.Float(value, digits), evaluate=False))
        return equations

    def latex(self, instantiated=None):
        r"""The system as a LaTeX ``cases`` block (needs ``amsmath``).

        ``instantiated`` defaults to whether the system has a trace.
        """
        if instantiated is None:
            instantiated = self.trace is not None
        if instantiated:
            rows = [sp.latex(eq) for eq in self.equations()]
            tail = ""
        else:
            rows = [sp.latex(eq) for eq in self.general_equations()]
            tail = (r" \quad \text{for } j = 0, 1, \dots, " + str(self.steps - 1)
                    if self.steps > 1 else r" \quad \text{for } j = 0")
        return "\\begin{cases}\n" + " \\\\\n".join(rows) + "\n\\end{cases}" + tail

    def __repr__(self):
        counts = self.counts
        return (f"InversionSystem({self.network!r}, samples={counts['samples']}, "
                f"steps={counts['steps']}{', from a trace' if self.trace is not None else ''}"
                f": {counts['equations']} equations in {counts['unknowns']} unknowns)")

    def _repr_latex_(self):
        from .report.display import math_block, system_latex
        return math_block(system_latex(self))

    # -- numerics ------------------------------------------------------------------

    def _check_data(self, inputs, labels):
        d, m = self.network.input_width, self.network.output_width
        if len(inputs) != self.samples or len(labels) != self.samples:
            raise InputError(f"data: expected {self.samples} samples, got "
                             f"{len(inputs)} inputs and {len(labels)} labels")
        for i, (x, y) in enumerate(zip(inputs, labels)):
            if len(x) != d or len(y) != m:
                raise InputError(f"sample {i}: expected {d} input and {m} label values")

    def evaluator(self, arithmetic=None, steps=None):
        """The numeric system on ``steps`` (default: all of this system's) in ``arithmetic``
        (an :class:`~symbolic_inversion.arithmetic.Arithmetic` or its name; default
        ``"mpmath"``): a :class:`SystemEvaluator` (cached).  Evaluate inside
        ``arithmetic.workdps``."""
        from .arithmetic import get_arithmetic
        if self.trace is None:
            raise InputError("the numeric system needs a trace")
        arithmetic = get_arithmetic(arithmetic or "mpmath")
        steps = tuple(range(self.steps)) if steps is None else tuple(int(j) for j in steps)
        key = (arithmetic.name, steps)
        if key not in self._evaluators:
            kind = {"update": UpdateEvaluator, "selected": SelectedEvaluator,
                    "local": LocalStepsEvaluator}.get(self.form, SystemEvaluator)
            self._evaluators[key] = kind(self, arithmetic, steps)
        return self._evaluators[key]

    def _point(self, inputs, labels):
        self._check_data(inputs, labels)
        ev = self.evaluator("mpmath")
        return ev, ev.join(inputs, labels)

    def residual(self, inputs, labels):
        """Left minus right side of every equation (``steps * parameters`` mpmath numbers).

        Evaluated at mpmath's current precision; wrap in ``mpmath.workdps``.
        """
        ev, u = self._point(inputs, labels)
        return list(ev.residual(u))

    def jacobian(self, inputs, labels):
        """Jacobian of :meth:`residual` with respect to the unknowns (an mpmath matrix)."""
        ev, u = self._point(inputs, labels)
        return mpmath.matrix(ev.jacobian(u).tolist())

    def solve_labels(self, inputs):
        """Labels that best explain the trace given the inputs (linear least squares).

        For MSE the system is affine in the labels: step ``j`` reads
        ``sum_i B_i y_i = sum_i B_i f_i - c_j``.  Eliminating the labels this way leaves
        only the inputs to search for (variable projection).  Returns the labels as one
        list per sample (mpmath numbers; NaN if the inputs do not determine them).
        """
        labels = self.evaluator("mpmath").solve_labels(inputs)
        return [list(row) for row in labels]

    def rhs_uncertainty(self):
        """Bound on the error of every right-hand side caused by the trace's rounding: the
        largest of :meth:`rhs_uncertainties`."""
        return max(self.rhs_uncertainties())

    def rhs_uncertainties(self, inputs=None, labels=None):
        """Bound on the error of each equation caused by the trace's rounding, equation by
        equation (in the order of :meth:`residual`): the largest over its step of the
        entries' own bounds (:meth:`Trace.gradient_uncertainties`).

        Each right-hand side is uncertain by its own entries' last places only, but every
        left-hand side of step ``j`` is evaluated at all of step ``j``'s recorded
        parameters: a short value among long ones loosens its step, never the others.
        A binary-float trace's recorded parameters are the exact values its training
        used, so its equations keep their own entries' bounds, computed at the dataset
        being judged (``inputs``, ``labels``) when given.
        """
        binary = self.trace is not None and self.trace.dtype is not None
        if inputs is not None and binary and self.form == "gradient":
            with mpmath.workdps(bound_dps()):
                out = []
                self._bounds_into(out, inputs, labels)
            return out
        # judged once per candidate: computed once (bounds need few digits: bound_dps)
        cache = self.__dict__.setdefault("_rhs_bounds", {})
        if "bounds" not in cache:
            out = []   # the update and the local forms: normalised updates
            with mpmath.workdps(bound_dps()):
                self._bounds_into(out)
            cache["bounds"] = out
        return list(cache["bounds"])

    def _bounds_into(self, out, inputs=None, labels=None):
        """Append the bound of every equation to ``out`` (mpmath numbers)."""
        entrywise = self.trace.dtype is not None
        if self.form in ("update", "local"):
            bounds = self.trace.update_uncertainties()
            for j in range(self.steps):
                out += list(bounds[j]) if entrywise else [max(bounds[j])] * len(bounds[j])
        else:
            bounds = self.trace.gradient_uncertainties(inputs, labels)
            for j in range(self.steps):
                factor = self.rhs_factor(j)
                factor = mpmath.mpf(factor.numerator) / factor.denominator
                out += [factor * b for b in bounds[j]] if entrywise else \
                    [factor * max(bounds[j])] * len(bounds[j])

    def error_estimate(self, inputs, labels, dps):
        r"""First-order bound on the error of ``(inputs, labels)`` due to the trace's digits,
        computed at ``dps`` digits.

        Every dataset whose residuals stay within the rounding allowances ``eps_k``
        (:meth:`rhs_uncertainties`) differs from this one, to first order, by a ``du``
        with ``|J du|_k <= eps_k`` for every equation ``k``.  For any left inverse ``L``
        of ``J`` (``L J = I``), ``du = L (J du)``, so ``|du_i| <= sum_k |L_ik| eps_k``:
        the bound is that sum, componentwise, with ``L`` the pseudo-inverse of the
        Jacobian weighted by ``1 / eps_k`` (the left inverse that trusts each equation as
        much as its right-hand side deserves: a value written with few digits counts for
        little instead of spoiling every other).  It is never larger than the 2-norm
        bound ``sqrt(m) eps_max / sigma_min`` it replaced (measured: 2.8 times smaller on
        a float32 3-4-1 trace).  Returns ``(error, sigma_min)`` (``sigma_min`` of the
        weighted Jacobian, for the rank test); ``error`` is ``inf`` if ``J`` is rank
        deficient (the data are not locally identifiable from these steps).
        """
        with mpmath.workdps(dps):
            return self._error_estimate(inputs, labels, dps)

    def _error_estimate(self, inputs, labels, dps):
        J = self.jacobian(inputs, labels)
        if J.rows < J.cols:
            return mpmath.inf, mpmath.mpf(0)
        bounds = self.rhs_uncertainties(inputs, labels)
        # a row whose right-hand side is not known at all (an infinite bound) says
        # nothing about the data: it is left out
        finite = [b for b in bounds if mpmath.isfinite(b)]
        largest = max(finite, default=mpmath.inf)
        if not mpmath.isfinite(largest):
            return mpmath.inf, mpmath.mpf(0)
        floor = largest * mpmath.mpf(10) ** (-dps // 2) if largest > 0 else mpmath.mpf(1)
        weights = [0 if not mpmath.isfinite(b) else 1 / max(b, floor) for b in bounds]
        for k, weight in enumerate(weights):
            for c in range(J.cols):
                J[k, c] *= weight
        left, sigma_min, sigma_max = weighted_left_inverse(J, dps)
        if left is None or numerically_rank_deficient(sigma_min, sigma_max, dps):
            return mpmath.inf, sigma_min
        # |du_i| <= sum_k |L_ik| w_k eps_k for every dataset within the allowances
        scaled = [w * b if mpmath.isfinite(b) else 0 for w, b in zip(weights, bounds)]
        error = max(mpmath.fsum(abs(left[i][k]) * scaled[k] for k in range(J.rows))
                    for i in range(J.cols))
        return error, sigma_min


# Digits the normal equations must keep: below them the SVD decides.
NORMAL_GUARD_DIGITS = 20
# Squarings of the inverse Gram matrix M: ||M^(2^k)||_F^(1/2^k) overestimates its largest
# eigenvalue by at most cols^(1/2^(k+1)), so sigma_min is underestimated by at most
# cols^(1/2^(k+2)) (k = 3: 1.13 for 48 unknowns, 1.14 for 64).
SQUARINGS = 3


def _normal_equations(J, dps):
    """``(A, J, (J^T J)^-1, sigma, sigma_max)`` in the best interval-free arithmetic
    (python-flint's arb when installed) while the Gram matrix keeps
    :data:`NORMAL_GUARD_DIGITS` digits at ``dps``; ``"zero"`` for a zero matrix; ``None``
    when the SVD must decide.  ``lambda_max(M)^8 <= ||M^8||_F <= sqrt(cols)
    lambda_max(M)^8`` for ``M = (J^T J)^-1``: three squarings bound ``sigma_min``."""
    from .arithmetic import get_arithmetic
    cols = J.cols
    A = get_arithmetic("auto")
    with A.workdps(dps):
        values = A.asarray(J.tolist())    # exact conversions
        gram = A.matmul(values.T, values)
        # trace(J^T J) = ||J||_F^2 >= sigma_max^2
        scale = mpmath.fsum(A.to_mpmath(gram[k, k]) for k in range(cols))
        if not scale:
            return "zero"
        identity = A.asarray([[int(i == j) for j in range(cols)] for i in range(cols)])
        inverse = A.solve(gram, identity)
        if not inverse.ok:
            return None
        power = inverse.x
        for _ in range(SQUARINGS):
            power = A.matmul(power, power)
        frobenius = mpmath.sqrt(mpmath.fsum(abs(A.to_mpmath(v)) ** 2
                                            for v in power.ravel()))
        largest = frobenius ** (mpmath.mpf(1) / 2 ** SQUARINGS)   # >= sigma_min^-2
        if mpmath.isfinite(largest) and largest > 0 and scale * largest < \
                mpmath.mpf(10) ** (dps - NORMAL_GUARD_DIGITS):
            return A, values, inverse.x, 1 / mpmath.sqrt(largest), mpmath.sqrt(scale)
    return None


def smallest_singular_value(J, dps):
    """``(sigma, sigma_max)`` for an mpmath matrix ``J`` (at least as many rows as
    columns) at ``dps`` digits: ``sigma <= sigma_min(J)`` within a factor
    ``cols^(1/32)``, and ``sigma_max`` an upper bound of the largest singular value (the
    rank test only needs its size).

    ``M = (J^T J)^-1`` is symmetric positive definite with largest eigenvalue
    ``sigma_min^-2``, and ``lambda_max(M)^8 <= ||M^8||_F <= sqrt(cols) lambda_max(M)^8``:
    one inversion of the Gram matrix and three squarings (python-flint's ``arb_mat``
    when installed, else mpmath's ``fdot`` products and LU), no iteration.  The Gram
    matrix squares the condition number: when fewer than :data:`NORMAL_GUARD_DIGITS`
    digits of it would remain (or it is singular), ``mpmath.svd_r`` decides, as it
    always did.  Measured on the single neuron at n = 24, 208 digits (96 x 48): the
    same sigma_min to 13 % in a tenth of ``svd_r``'s time.

    >>> import mpmath
    >>> sigma, largest = smallest_singular_value(mpmath.matrix([[3, 0], [0, 2], [0, 0]]), 30)
    >>> 2 / 1.05 < sigma <= 2, 3 <= largest
    (True, True)
    """
    normal = _normal_equations(J, dps)
    if normal == "zero":
        return mpmath.mpf(0), mpmath.mpf(0)
    if normal is not None:
        return normal[3], normal[4]
    with mpmath.workdps(dps):
        singular = mpmath.svd_r(J, compute_uv=False)
    return min(abs(v) for v in singular), max(abs(v) for v in singular)


def weighted_left_inverse(J, dps):
    """``(L, sigma_min, sigma_max)`` for an mpmath matrix ``J`` of full column rank at
    ``dps`` digits: ``L = (J^T J)^{-1} J^T`` as a list of rows (``None`` when ``J`` is
    rank deficient, :func:`numerically_rank_deficient`), and the bounds of
    :func:`smallest_singular_value`.  The normal
    equations (python-flint's ``arb_mat`` when installed) while they keep
    :data:`NORMAL_GUARD_DIGITS` digits, else the SVD.

    >>> L, sigma, largest = weighted_left_inverse(mpmath.matrix([[2, 0], [0, 4], [0, 0]]), 30)
    >>> [[float(v) for v in row] for row in L]
    [[0.5, 0.0, 0.0], [0.0, 0.25, 0.0]]
    """
    normal = _normal_equations(J, dps)
    if normal not in (None, "zero"):
        A, values, inverse, sigma, largest = normal
        with A.workdps(dps):
            left = A.matmul(inverse, values.T)
            return [[A.to_mpmath(v) for v in row] for row in left], sigma, largest
    cols = J.cols
    with mpmath.workdps(dps):
        # the singular values alone first: a rank-deficient J (data known only up to a
        # symmetry) needs no singular vectors, and their SVD costs twice as much
        S = mpmath.svd_r(J, compute_uv=False)
        smallest, biggest = min(abs(v) for v in S), max(abs(v) for v in S)
        if numerically_rank_deficient(smallest, biggest, dps):
            return None, smallest, biggest
        U, S, V = mpmath.svd_r(J)
        left = [[mpmath.fsum(V[c, i] * U[k, c] / S[c] for c in range(cols))
                 for k in range(J.rows)] for i in range(cols)]
        return left, smallest, biggest


def numerically_rank_deficient(sigma_min, sigma_max, dps):
    """Whether singular values ``sigma_min <= sigma_max`` computed at ``dps`` digits
    leave the matrix rank deficient: ``sigma_min`` zero, or within the last few digits
    of ``sigma_max`` (below them it is the working precision's noise)."""
    return sigma_min == 0 or sigma_min < sigma_max * mpmath.mpf(10) ** (3 - dps)


def digits_from_error(error):
    """Decimal digits vouched for by an absolute error bound (0 if none)."""
    if error == 0:
        return 10 ** 6
    if not mpmath.isfinite(error) or error >= 1:
        return 0
    return int(math.floor(-mpmath.log10(error)))


class SystemEvaluator:
    """The inversion system of some steps, evaluated in one arithmetic.

    Owns the layout of the unknowns (:meth:`split`, :meth:`join`: sample by sample,
    inputs then labels), the steps, their parameters and batches, and the right-hand
    sides ``|B_j| / 2 * g_j`` (the optimizer's inverse step applied to the trace's
    parameters, in the arithmetic: enclosures for interval arithmetics).  The terms come
    from the layer-wise program of :mod:`symbolic_inversion.program`, vectorised over
    steps and samples.  Constants are converted once per working precision.

    Examples
    ========

    >>> import mpmath
    >>> from symbolic_inversion import InversionSystem, Network, Trace
    >>> trace = Trace(Network([1, 1], "tanh"), "0.1", 2,
    ...               [["0.5000000", "0.5000000"], ["0.4925472", "0.4810773"],
    ...                ["0.4855530", "0.4634884"]])
    >>> ev = InversionSystem.from_trace(trace).evaluator("mpmath")
    >>> ev.rows, ev.unknowns
    (4, 4)
    >>> with ev.arithmetic.workdps(30):
    ...     u = ev.join([["0.6"], ["0.2"]], [["0.5"], ["0.4"]])
    ...     residual, J = ev.evaluate(u)
    ...     print(mpmath.nstr(residual[1], 10), J.shape)
    2.836435751e-8 (4, 4)
    """

    def __init__(self, system, arithmetic, steps):
        from .program import layerwise_program
        trace = system.trace
        if any(not 0 <= j < trace.steps for j in steps):
            raise InputError(f"steps: the trace has steps 0..{trace.steps - 1}, got "
                             f"{list(steps)}")
        self.system = system
        self.network = network = system.network
        self.arithmetic = arithmetic
        self.steps = list(steps)
        self.program = layerwise_program(network, system.loss)
        self.samples = n = system.samples
        self.input_width, self.output_width = network.input_width, network.output_width
        self.width = self.input_width + self.output_width
        self.unknowns = n * self.width
        self.rows = len(self.steps) * network.num_parameters
        if system.trace.rounds:   # a round has no single batch (LocalStepsEvaluator)
            self.batches, self._full = None, True
        else:
            self.batches = [list(system.batch(j)) for j in self.steps]
            self._full = all(batch == list(range(n)) for batch in self.batches)
        self._constants = {}

    # -- constants at the working precision -----------------------------------------

    def _data(self):
        key = self.arithmetic.precision()
        if key not in self._constants:
            self._constants[key] = self._convert()
        return self._constants[key]

    def _convert(self):
        from .arithmetic import get_arithmetic
        from .precision import screening_dps
        arithmetic, trace = self.arithmetic, self.system.trace
        last = max(self.steps) + 1 if self.steps else 0
        thetas = arithmetic.asarray(np.asarray(trace.parameters[:last + 1], dtype=object))
        if arithmetic.dtype == object:
            gradients = trace.optimizer.observed_gradients(list(thetas),
                                                           number=arithmetic.number)
            gradients = np.asarray(gradients, dtype=object)
        elif trace.dtype == "float32":
            # float32 numbers and their differences are exact in double: undoing the
            # optimizer in double rounds once, as multiprecision then rounding would
            # (which converted 19,210 parameters per step in 7 s on a 64-256-10 network)
            gradients = np.asarray(trace.optimizer.observed_gradients(
                [np.asarray(theta, dtype=float) for theta in trace.parameters[:last + 1]],
                float), dtype=float)
        else:  # undo the optimizer in multiprecision, then round once
            reference = get_arithmetic("mpmath")
            with reference.workdps(screening_dps(trace)):
                exact = reference.asarray(np.asarray(trace.parameters[:last + 1],
                                                     dtype=object))
                gradients = trace.optimizer.observed_gradients(list(exact),
                                                               number=reference.number)
                gradients = arithmetic.asarray(np.asarray(gradients, dtype=object))
        factors = [self.system.rhs_factor(j) for j in self.steps]
        rhs = [gradients[j] * arithmetic.rational(f.numerator, f.denominator)
               for j, f in zip(self.steps, factors)]
        if trace.offset is not None:  # known samples: their terms leave the right side
            d = self.input_width
            for e, j in enumerate(self.steps):
                known = self.system.known_terms(j)
                if known:
                    points = arithmetic.asarray(np.asarray(
                        [list(x) + list(y) for x, y in known], dtype=object))
                    sums = self.program.term_sums(
                        thetas[j][None, :], points[:, :d], points[:, d:],
                        arithmetic=arithmetic)
                    rhs[e] = rhs[e] - sums.reshape(-1)
        rhs = np.concatenate(rhs) if self.steps else arithmetic.zeros(0)
        return thetas[self.steps], rhs

    @property
    def thetas(self):
        """The parameters of the steps, ``(steps, P)`` in the arithmetic."""
        return self._data()[0]

    @property
    def rhs(self):
        """``|B_j| / 2 * g_j`` for every step, flat (rows step by step)."""
        return self._data()[1]

    @property
    def scale(self):
        """The largest ``|rhs|`` as a float (at least ``1e-300``): what residuals are
        measured relative to."""
        return max(float(np.max(np.abs(self.rhs))), 1e-300)

    def float64_noise(self):
        """The size of the rounding of this system's right-hand sides in float64 beyond
        double's own (0 here: the constants are correctly rounded doubles)."""
        return 0.0

    @property
    def mask(self):
        """The ``(steps, samples)`` 0/1 matrix of which sample each step uses."""
        mask = np.zeros((len(self.steps), self.samples), dtype=int)
        for e, batch in enumerate(self.batches):
            mask[e, batch] = 1
        return mask

    # -- layout ---------------------------------------------------------------------

    def _array(self, values):
        array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if array.dtype != self.arithmetic.dtype or (
                array.dtype == object and array.size
                and not _native(self.arithmetic, array.flat[0])):
            array = self.arithmetic.asarray(array)
        return array

    def split(self, u):
        """``(inputs (n, d), labels (n, m))`` of the unknowns ``u``."""
        U = self._array(u).reshape(self.samples, self.width)
        return U[:, :self.input_width], U[:, self.input_width:]

    def join(self, inputs, labels):
        """The unknowns (1-D) of ``inputs`` and ``labels``, sample by sample."""
        inputs = self._array(inputs).reshape(self.samples, self.input_width)
        labels = self._array(labels).reshape(self.samples, self.output_width)
        return np.concatenate([inputs, labels], axis=1).reshape(-1)

    # -- evaluation -------------------------------------------------------------------

    def _batches(self):
        return None if self._full else self.batches

    def evaluate(self, u, jacobian=True):
        """``(residual, J)`` at ``u``; ``J`` is ``None`` unless ``jacobian``."""
        inputs, labels = self.split(u)
        thetas, rhs = self._data()
        sums, J = self.program.evaluate(thetas, inputs, labels, self._batches(),
                                        self.arithmetic, jacobian=jacobian)
        return sums.reshape(-1) - rhs, J

    def lhs(self, u):
        """Per step, the sum over the step's batch of ``B_i (f_i - y_i)`` (flat)."""
        inputs, labels = self.split(u)
        sums = self.program.term_sums(self.thetas, inputs, labels, self._batches(),
                                      self.arithmetic)
        return sums.reshape(-1)

    def residual(self, u):
        return self.evaluate(u, jacobian=False)[0]

    def jacobian(self, u):
        """``(rows, unknowns)``: columns sample by sample, inputs then labels."""
        return self.evaluate(u, jacobian=True)[1]

    def label_system(self, inputs):
        """``(A, b)`` with the residual ``= b - A y`` for the labels ``y`` (flat, sample by
        sample): least squares of ``A y = b`` gives the labels for these inputs."""
        X = self._array(inputs).reshape(self.samples, self.input_width)
        thetas, rhs = self.thetas, self.rhs
        f, B, S, valid = self.program.output_terms(thetas, X, self._batches(), self.arithmetic)
        E, nb, P, m = B.shape
        Bf = np.matmul(B, f[:, :, :, None])[:, :, :, 0]               # (E, nb, P)
        if valid is not None:
            Bf = Bf * valid[:, :, None].astype(int)
        b = Bf.sum(axis=1).reshape(-1) - rhs
        A = self.arithmetic.zeros((E, P, self.samples, m))
        if valid is None:
            e_index, b_index = np.indices((E, nb)).reshape(2, -1)
        else:
            e_index, b_index = np.nonzero(valid)
        A[e_index, :, S[e_index, b_index], :] = B[e_index, b_index]
        return A.reshape(E * P, self.samples * m), b

    def solve_labels(self, inputs, method="qr"):
        """The least-squares labels for ``inputs``: ``(n, m)`` (NaN when not determined)."""
        A, b = self.label_system(inputs)
        result = self.arithmetic.lstsq(A, b, method=method)
        if not result.ok:
            return self.arithmetic.asarray(np.full((self.samples, self.output_width),
                                                   float("nan")))
        return result.x.reshape(self.samples, self.output_width)

    def sample_terms(self, inputs):
        """``(Bf, B)`` at any ``N`` points ``inputs`` ``(N, d)``, every step (batches
        ignored): ``Bf`` ``(steps, N, P)``, ``B`` ``(steps, N, P, m)``."""
        X = self._array(inputs).reshape(-1, self.input_width)
        f, B, _, _ = self.program.output_terms(self.thetas, X, None, self.arithmetic)
        return np.matmul(B, f[:, :, :, None])[:, :, :, 0], B


class UpdateEvaluator(SystemEvaluator):
    """The *update form* of the system, for optimizers whose steps cannot be undone
    (Adam, AdamW): row ``(j, p)`` is the normalised update ``(theta_j - theta_{j+1}) /
    lr_j`` that the data predict, minus the observed one.

    The loss gradient of every step up to the last one used is computed from the data
    (the layer-wise program, with its Jacobian), and the optimizer's own update
    equation (:meth:`Optimizer.step <symbolic_inversion.optimizers.Optimizer.step>`)
    carries its state through them on :class:`~symbolic_inversion.optimizers.Dual`
    numbers, so the Jacobian of the update comes with it.  Each step starts from the
    *recorded* parameters ``theta_j``.  The labels enter nonlinearly (through the
    state): :meth:`label_system` is refused.

    >>> import mpmath
    >>> from symbolic_inversion import InversionSystem, Network, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6"], ["0.5"], lr="0.01", epochs=3,
    ...                  init=["0.5", "0.5"], dps=40, optimizer="adam")
    >>> ev = InversionSystem.from_trace(trace).evaluator("mpmath")
    >>> ev.rows, type(ev).__name__
    (6, 'UpdateEvaluator')
    >>> with ev.arithmetic.workdps(50):
    ...     residual = ev.residual(ev.join([["0.6"]], [["0.5"]]))
    >>> max(abs(r) for r in residual) < 1e-36
    True
    """

    def _convert(self):
        arithmetic, trace = self.arithmetic, self.system.trace
        last = max(self.steps) + 1 if self.steps else 0
        thetas = arithmetic.asarray(np.asarray(trace.parameters[:last + 1], dtype=object))
        rhs = []
        for j in self.steps:
            lr = arithmetic.number(str(trace.optimizer.lr_at(j)))
            rhs.append((thetas[j] - thetas[j + 1]) / lr)
        rhs = np.concatenate(rhs) if self.steps else arithmetic.zeros(0)
        factors = []
        for j in range(last):
            factor = trace.gradient_factor(j)
            factors.append(arithmetic.rational(factor.numerator, factor.denominator))
        known = None
        if trace.offset is not None:  # known samples: their terms join the gradient
            d = self.input_width
            known = []
            for j in range(last):
                points = self.system.known_terms(j)
                if not points:
                    known.append(None)
                    continue
                points = arithmetic.asarray(np.asarray([list(x) + list(y)
                                                        for x, y in points], dtype=object))
                known.append(self.program.term_sums(thetas[j][None, :], points[:, :d],
                                                    points[:, d:], arithmetic=arithmetic)[0])
        return thetas, rhs, factors, known

    @property
    def thetas(self):
        return self._data()[0][self.steps]

    @property
    def rhs(self):
        return self._data()[1]

    def _all_batches(self, last):
        if self._full:
            return None
        return [list(self.system.batch(j)) for j in range(last)]

    def evaluate(self, u, jacobian=True):
        from .optimizers import Dual
        inputs, labels = self.split(u)
        thetas, rhs, factors, known = self._data()
        arithmetic, optimizer = self.arithmetic, self.system.optimizer
        last = max(self.steps) + 1
        sums, J = self.program.evaluate(thetas[:last], inputs, labels,
                                        self._all_batches(last), arithmetic,
                                        jacobian=jacobian)
        P = self.network.num_parameters
        if jacobian:
            J = J.reshape(last, P, -1)
        state, rows, tangents = None, [], []
        wanted = set(self.steps)
        number = arithmetic.number
        for j in range(last):
            total = sums[j] if known is None or known[j] is None else sums[j] + known[j]
            value = total * factors[j]
            gradient = Dual(value, J[j] * factors[j]) if jacobian else value
            predicted, state = optimizer.step(thetas[j], gradient, state, j, number)
            if j in wanted:
                lr = number(str(optimizer.lr_at(j)))
                update = (thetas[j] - predicted) / lr
                if jacobian:
                    rows.append(update.value)
                    tangents.append(update.tangent)
                else:
                    rows.append(update)
        order = [sorted(wanted).index(j) for j in self.steps]
        lhs = np.concatenate([rows[k] for k in order])
        if not jacobian:
            return lhs - rhs, None
        return lhs - rhs, np.concatenate([tangents[k] for k in order], axis=0)

    def lhs(self, u):
        return self.evaluate(u, jacobian=False)[0] + self.rhs

    def label_system(self, inputs):
        raise NotSupportedError(f"labels: optimizer {self.system.optimizer.name} carries "
                                f"them nonlinearly through its state; no label elimination "
                                f"in the update form")

    def sample_terms(self, inputs):
        raise NotSupportedError("sample terms: not in the update form")


class SelectedEvaluator(UpdateEvaluator):
    """The *selected gradient form* of an Adam trace, for float64 searches: gradient
    rows as in the gradient form, whose right-hand sides are the gradients that explain
    every observed step, each step's ambiguity resolved towards the gradients of the
    data being evaluated (:meth:`Adam.select_gradients
    <symbolic_inversion.optimizers.Adam.select_gradients>`).  At the true data these are
    the true gradients, so its roots are the update form's; the labels enter linearly
    for a given selection (:meth:`label_system` uses the latest), so variable
    projection applies.  Candidates are judged on the update form.
    """

    def __init__(self, system, arithmetic, steps):
        if arithmetic.name != "float64":
            raise NotSupportedError("the selected gradient form is a float64 search system")
        super().__init__(system, arithmetic, steps)
        self._selected = None

    def _selection(self, sums):
        thetas, _, factors, known = self._data()
        last = len(sums)
        if known is not None:
            sums = sums + np.asarray([np.zeros(sums.shape[1]) if k is None else k
                                      for k in known[:last]])
        factors = np.asarray([float(f) for f in factors[:last]])[:, None]
        model = sums * factors
        with np.errstate(all="ignore"):
            selected = self.system.optimizer.select_gradients(thetas[:last + 1], model)
        right = selected / factors
        if known is not None:
            right = right - np.asarray([np.zeros(sums.shape[1]) if k is None else k
                                        for k in known[:last]])
        self._selected = right
        return right

    def float64_noise(self):
        """The float64 rounding of the selected right-hand sides: Adam's first-step
        inverse ``d = eps k / (1 - |k|)`` amplifies the rounding of ``k`` (relative
        ``2^-52 |theta| / |theta_0 - theta_1|``) by ``(|d| + eps)^2 / eps``; later steps'
        roots by about as much (module docstring of :mod:`~symbolic_inversion.optimizers`)."""
        thetas, _, factors, _ = self._data()
        optimizer = self.system.optimizer
        lr, eps = float(optimizer.lr_at(0)), float(optimizer.eps)
        now = thetas[0] * (1 - lr * float(optimizer.weight_decay)) if optimizer.decoupled \
            else thetas[0]
        k_error = 2.0 ** -52 * (np.abs(thetas[0]) + np.abs(thetas[1])) / lr
        k = np.abs(now - thetas[1]) / lr
        # a coordinate at |k| = 1 (Adam's step saturated) has no gradient to recover: its
        # noise is infinite and left out of the maximum
        with np.errstate(all="ignore"):
            d = eps * k / np.maximum(1 - k, 1e-300)
            noise = (np.abs(d) + eps) ** 2 / eps * k_error / float(factors[0])
        return float(np.max(noise[np.isfinite(noise)], initial=0.0))

    @property
    def rhs(self):
        if self._selected is None:     # before any evaluation: the model of zero data
            last = max(self.steps) + 1
            self._selection(np.zeros((last, self.network.num_parameters)))
        return self._selected[self.steps].reshape(-1)

    def evaluate(self, u, jacobian=True):
        inputs, labels = self.split(u)
        thetas = self._data()[0]
        last = max(self.steps) + 1
        sums, J = self.program.evaluate(thetas[:last], inputs, labels,
                                        self._all_batches(last), self.arithmetic,
                                        jacobian=jacobian)
        right = self._selection(sums)
        residual = (sums - right)[self.steps].reshape(-1)
        if not jacobian:
            return residual, None
        P = self.network.num_parameters
        J = J.reshape(last, P, -1)[self.steps].reshape(len(self.steps) * P, -1)
        return residual, J

    # linear in the labels for the latest selection: the gradient form's label system
    label_system = SystemEvaluator.label_system


class LocalStepsEvaluator(SystemEvaluator):
    """The *local form*: recorded steps that are federated rounds (FedAvg).  Row
    ``(j, p)`` is the normalised round update ``(theta_j - theta_{j+1}) / lr_j`` that the
    data predict, minus the observed one, where ``theta_{j+1}`` is the weighted mean of
    the clients' parameters after ``optimizer.local_steps`` optimizer steps each, from
    the recorded ``theta_j``, on their own samples (their minibatches when recorded).

    The intermediate parameters are not observed and depend on the data, so the
    Jacobian differentiates through every local step: the layer-wise program and the
    optimizer's update run on dual numbers (:mod:`~symbolic_inversion.dual`) whose
    tangents are the derivatives with respect to every unknown.  The optimizer's state
    starts afresh each round (``optimizer.reset_state``, the default) or carries on.

    >>> import mpmath
    >>> from symbolic_inversion import InversionSystem, Network, Optimizer, simulate
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=3, init=["0.5", "0.5"], dps=40,
    ...                  optimizer={"name": "gd", "lr": "0.1", "local_steps": 3})
    >>> ev = InversionSystem.from_trace(trace).evaluator("mpmath")
    >>> type(ev).__name__, ev.rows
    ('LocalStepsEvaluator', 6)
    >>> with ev.arithmetic.workdps(50):
    ...     residual, J = ev.evaluate(ev.join([["0.6"], ["0.2"]], [["0.5"], ["0.4"]]))
    >>> max(abs(r) for r in residual) < 1e-37, J.shape
    (True, (6, 4))
    """

    def _convert(self):
        arithmetic, trace = self.arithmetic, self.system.trace
        last = max(self.steps) + 1 if self.steps else 0
        thetas = arithmetic.asarray(np.asarray(trace.parameters[:last + 1], dtype=object))
        rhs = [(thetas[j] - thetas[j + 1]) / arithmetic.number(str(trace.optimizer.lr_at(j)))
               for j in self.steps]
        rhs = np.concatenate(rhs) if self.steps else arithmetic.zeros(0)
        return thetas, rhs

    @property
    def thetas(self):
        return self._data()[0][self.steps]

    @property
    def rhs(self):
        return self._data()[1]

    def predicted(self, u, arithmetic):
        """The normalised round updates of every step up to the last used, from the data
        ``u`` (numbers of ``arithmetic``: the evaluator's own, or dual numbers over it)."""
        trace, optimizer = self.system.trace, self.system.optimizer
        thetas = self._data()[0]
        U = self._array(u) if arithmetic is self.arithmetic else u
        data = np.asarray(U, dtype=object).reshape(self.samples, self.width)
        X, Y = data[:, :self.input_width], data[:, self.input_width:]
        number, m = arithmetic.number, self.output_width
        state, out = None, []
        for j in range(max(self.steps) + 1):
            lr = number(str(optimizer.lr_at(j)))
            start = np.empty(len(thetas[j]), dtype=object)
            start[:] = [number(v) for v in thetas[j]]
            mean = None
            for weight, batches in trace.round_batches(j):
                theta = start
                if optimizer.reset_state:
                    state = None
                for batch in batches:
                    factor = self.system.loss.factor(len(batch), m)
                    sums = self.program.term_sums(theta[None, :], X[batch], Y[batch],
                                                  arithmetic=arithmetic)[0]
                    gradient = sums * arithmetic.rational(factor.numerator,
                                                          factor.denominator)
                    theta, state = optimizer.step(theta, gradient, state, j, number)
                share = theta * arithmetic.rational(weight.numerator, weight.denominator)
                mean = share if mean is None else mean + share
            out.append((start - mean) / lr)
        return out

    def evaluate(self, u, jacobian=True):
        rhs = self.rhs
        if not jacobian:
            rows = self.predicted(u, self.arithmetic)
            return np.concatenate([rows[j] for j in self.steps]) - rhs, None
        from .dual import DualArithmetic
        dual = DualArithmetic(self.arithmetic)
        rows = self.predicted(dual.variables(self._array(u)), dual)
        values, tangents = dual.split(np.concatenate([rows[j] for j in self.steps]),
                                      self.unknowns)
        if self.arithmetic.dtype != object:
            values = values.astype(self.arithmetic.dtype)
            tangents = np.asarray(tangents, dtype=self.arithmetic.dtype)
        return values - rhs, tangents

    def lhs(self, u):
        return self.evaluate(u, jacobian=False)[0] + self.rhs

    def label_system(self, inputs):
        raise NotSupportedError("labels: local steps carry them nonlinearly; no label "
                                "elimination in the local form")

    def sample_terms(self, inputs):
        raise NotSupportedError("sample terms: not in the local form")


def _native(arithmetic, value):
    """Whether ``value`` is already a number of ``arithmetic`` (or of its real sibling)."""
    from .program import _number_kind
    kind = _number_kind(value)
    if arithmetic.is_interval:
        return kind == ("iv" if arithmetic.name == "iv" else "arb")
    names = {arithmetic.name, arithmetic.realify().name}
    return kind in names
