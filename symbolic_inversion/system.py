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
:mod:`symbolic_inversion.codegen`.
"""

import math
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from .errors import InputError, boundary
from .network import Network
from .trace import Trace

__all__ = ["InversionSystem", "SystemEvaluator", "system_counts", "least_squares",
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

    def __init__(self, network, samples, steps=None, trace=None):
        if not isinstance(network, Network):
            raise InputError("network: expected a Network")
        self.network = network
        self.trace = trace
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
        self._evaluators = {}

    @classmethod
    def from_trace(cls, trace, steps=None):
        """The system instantiated with the numbers of ``trace`` (first ``steps`` steps)."""
        if not isinstance(trace, Trace):
            raise InputError("trace: expected a Trace")
        return cls(trace.network, trace.samples, steps, trace)

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

    def general_equations(self):
        """One equation per parameter in the paper's eq. (9) form, for a generic step ``j``."""
        i, j = sp.symbols("i j", integer=True)
        n, eta = sp.symbols("n eta", positive=True)
        X, Y = sp.IndexedBase("x"), sp.IndexedBase("y")
        if self.network.input_width == 1:
            x = sp.Matrix([X[i]])
        else:
            x = sp.Matrix([X[i, d] for d in range(self.network.input_width)])
        if self.network.output_width == 1:
            y = sp.Matrix([Y[i]])
        else:
            y = sp.Matrix([Y[i, d] for d in range(self.network.output_width)])
        now = self.network.parameter_symbols(step="j")
        later = self.network.parameter_symbols(step="j + 1")
        summands = self.network.half_gradient(x, y, now)
        scale = self._scale()  # loss_reduction "mean": m n / (2 eta), the factor shows
        return [sp.Eq(sp.Sum(term, (i, 0, n - 1)),
                      sp.Rational(scale.numerator, scale.denominator) * n / (2 * eta) * (a - b))
                for term, a, b in zip(summands, now, later)]

    def right_hand_sides(self):
        """Exact right-hand sides ``|B_j| / 2 * g_j`` as fractions (plain GD only exactly;
        with momentum or weight decay the unrolled gradient, also exact)."""
        if self.trace is None:
            raise InputError("right-hand sides need a trace")
        thetas = [[Fraction(v) for v in vector]
                  for vector in self.trace.parameters[:self.steps + 1]]
        gradients = self.trace.optimizer.observed_gradients(thetas, Fraction)
        return [[self.rhs_factor(step) * g for g in gradient]
                for step, gradient in enumerate(gradients)]

    def _scale(self):
        return self.trace.gradient_scale if self.trace is not None else Fraction(1)

    def rhs_factor(self, step):
        """The exact factor of step ``step``'s observed gradient on the right-hand side:
        ``|B_j| / 2`` (the batch's full size, known samples included), times ``m`` for a
        trace with ``loss_reduction="mean"`` (:attr:`Trace.gradient_scale`)."""
        offset = self.trace.offset
        size = offset[1][step] if offset is not None else len(self.batch(step))
        return Fraction(size, 2) * self._scale()

    def known_terms(self, step):
        """The known samples of step ``step`` (subtracted from its right-hand side): a
        list of ``(x, y)`` Decimal lists (empty when none are known)."""
        offset = self.trace.offset if self.trace is not None else None
        if offset is None:
            return []
        d = self.network.input_width
        return [(offset[0][k][:d], offset[0][k][d:]) for k in offset[2][step]]

    def equations(self):
        """The system instantiated with the trace's numbers (like the paper's eqs. (10), (12)).

        Numbers keep the trace's digits; the right-hand sides are exact and printed to
        the trace's precision.
        """
        if self.trace is None:
            raise InputError("instantiated equations need a trace; use general_equations()")
        self._check_symbolic_size()  # before a symbol is built: SymPy grows fast
        digits = self.trace.digits
        samples = [self.network.sample_symbols(i) for i in range(self.samples)]
        sides = self.right_hand_sides()
        equations = []
        for step in range(self.steps):
            theta = [_decimal_to_float(v, digits) for v in self.trace.parameters[step]]
            totals = sp.zeros(self.network.num_parameters, 1)
            for i in self.batch(step):
                x, y = samples[i]
                totals += self.network.half_gradient(x, y, theta)
            for x, y in self.known_terms(step):  # known samples: numbers, on the left
                totals += self.network.half_gradient(
                    sp.Matrix([_decimal_to_float(v, digits) for v in x]),
                    sp.Matrix([_decimal_to_float(v, digits) for v in y]), theta)
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

    def observed(self):
        """``|B_j| / 2 * g_j`` for every step, as mpmath numbers at the current precision."""
        gradients = self.trace.observed_gradients()[:self.steps]
        factors = [mpmath.mpf(self.rhs_factor(j).numerator) / self.rhs_factor(j).denominator
                   for j in range(len(gradients))]
        return [[factor * g for g in gradient] for factor, gradient in zip(factors, gradients)]

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
            self._evaluators[key] = SystemEvaluator(self, arithmetic, steps)
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
        """Bound on the error of every right-hand side ``|B_j| / 2 * g_j`` caused by the
        trace's rounding (see :meth:`Trace.gradient_uncertainty`): the largest of
        :meth:`rhs_uncertainties`."""
        factor = max(self.rhs_factor(j) for j in range(self.steps))
        return mpmath.mpf(factor.numerator) / factor.denominator * \
            self.trace.gradient_uncertainty()

    def rhs_uncertainties(self):
        """Bound on the error of each equation caused by the trace's rounding, equation by
        equation (in the order of :meth:`residual`): the largest over its step of the
        entries' own bounds (:meth:`Trace.gradient_uncertainties`).

        Each right-hand side is uncertain by its own entries' last places only, but every
        left-hand side of step ``j`` is evaluated at all of step ``j``'s recorded
        parameters: a short value among long ones loosens its step, never the others.
        """
        # judged once per candidate: kept per precision (the trace does not change)
        cache = self.__dict__.setdefault("_rhs_bounds", {})
        if mpmath.mp.dps not in cache:
            bounds = self.trace.gradient_uncertainties()
            out = []
            for j in range(self.steps):
                factor = self.rhs_factor(j)
                factor = mpmath.mpf(factor.numerator) / factor.denominator
                out += [factor * max(bounds[j])] * len(bounds[j])
            cache[mpmath.mp.dps] = out
        return list(cache[mpmath.mp.dps])

    def error_estimate(self, inputs, labels):
        r"""First-order bound on the error of ``(inputs, labels)`` due to the trace's digits.

        Row ``k`` of the Jacobian is weighted by ``eps_max / eps_k`` (``eps_k`` from
        :meth:`rhs_uncertainties`, ``eps_max`` their largest) so that every weighted
        right-hand side is uncertain by ``eps_max`` at most; the bound is then
        ``sqrt(m) * eps_max / sigma_min(W J)``: the largest change of the data that
        rounding of the trace can explain, to first order (with equal ``eps_k`` this is
        ``sqrt(m) * eps / sigma_min(J)``).  An equation whose right-hand side is known
        only roughly (a value written with few digits) thus counts for little instead of
        spoiling every other.  Returns ``(error, sigma_min)`` (of ``W J``); ``error`` is
        ``inf`` if ``J`` is rank deficient (the data are not locally identifiable from
        these steps).  ``sigma_min`` is a lower bound of the smallest singular value
        within 13 % of it (:func:`smallest_singular_value`), so the error is never
        understated.
        """
        J = self.jacobian(inputs, labels)
        if J.rows < J.cols:
            return mpmath.inf, mpmath.mpf(0)
        bounds = self.rhs_uncertainties()
        largest = max(bounds)
        if largest > 0:
            for k, bound in enumerate(bounds):
                if bound != largest:
                    weight = largest / bound if bound > 0 else mpmath.mpf(10) ** mpmath.mp.dps
                    for c in range(J.cols):
                        J[k, c] *= weight
        sigma_min, sigma_max = smallest_singular_value(J)
        if sigma_min == 0 or sigma_min < sigma_max * mpmath.eps * 10 ** 3:
            return mpmath.inf, sigma_min
        error = mpmath.sqrt(J.rows) * largest / sigma_min
        return error, sigma_min


# Digits the normal equations must keep: below them the SVD decides.
NORMAL_GUARD_DIGITS = 20
# Squarings of the inverse Gram matrix M: ||M^(2^k)||_F^(1/2^k) overestimates its largest
# eigenvalue by at most cols^(1/2^(k+1)), so sigma_min is underestimated by at most
# cols^(1/2^(k+2)) (k = 3: 1.13 for 48 unknowns, 1.14 for 64).
SQUARINGS = 3


def smallest_singular_value(J):
    """``(sigma, sigma_max)`` for an mpmath matrix ``J`` (at least as many rows as
    columns) at the working precision: ``sigma <= sigma_min(J)`` within a factor
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
    >>> with mpmath.workdps(30):
    ...     sigma, largest = smallest_singular_value(mpmath.matrix([[3, 0], [0, 2], [0, 0]]))
    >>> 2 / 1.05 < sigma <= 2, 3 <= largest
    (True, True)
    """
    from .arithmetic import get_arithmetic
    cols = J.cols
    A = get_arithmetic("auto")            # python-flint's arb when installed
    with A.workdps(mpmath.mp.dps):
        values = A.asarray(J.tolist())    # exact conversions
        gram = A.matmul(values.T, values)
        # trace(J^T J) = ||J||_F^2 >= sigma_max^2
        scale = mpmath.fsum(A.to_mpmath(gram[k, k]) for k in range(cols))
        if not scale:
            return mpmath.mpf(0), mpmath.mpf(0)
        identity = A.asarray([[int(i == j) for j in range(cols)] for i in range(cols)])
        inverse = A.solve(gram, identity)
        if inverse.ok:
            power = inverse.x
            for _ in range(SQUARINGS):
                power = A.matmul(power, power)
            frobenius = mpmath.sqrt(mpmath.fsum(abs(A.to_mpmath(v)) ** 2
                                                for v in power.ravel()))
            largest = frobenius ** (mpmath.mpf(1) / 2 ** SQUARINGS)   # >= sigma_min^-2
            if mpmath.isfinite(largest) and largest > 0 and scale * largest < \
                    mpmath.mpf(10) ** (mpmath.mp.dps - NORMAL_GUARD_DIGITS):
                return 1 / mpmath.sqrt(largest), mpmath.sqrt(scale)
    singular = mpmath.svd_r(J, compute_uv=False)
    return min(abs(v) for v in singular), max(abs(v) for v in singular)


def least_squares(A, b):
    """Least-squares solution of ``A x = b`` (mpmath matrices, ``A`` of full column rank).

    Uses :func:`mpmath.qr`: ``mpmath.qr_solve`` divides by zero when a diagonal entry is
    exactly zero during its Householder sweep, which the block-sparse systems of SGD
    schedules (a sample absent from a step) produce.

    >>> import mpmath
    >>> print(least_squares(mpmath.matrix([[1, 0], [0, 0], [0, 2]]), mpmath.matrix([1, 5, 4])))
    [1.0]
    [2.0]
    """
    from .arithmetic import get_arithmetic
    arithmetic = get_arithmetic("mpmath")
    result = arithmetic.lstsq(arithmetic.asarray(A), arithmetic.asarray(b).reshape(-1))
    if not result.ok:
        raise ZeroDivisionError(f"least squares: {result.reason}")
    return mpmath.matrix(list(result.x))


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
    from the layer-wise program of :mod:`symbolic_inversion.codegen`, vectorised over
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
        from .codegen import layerwise_program
        trace = system.trace
        if any(not 0 <= j < trace.steps for j in steps):
            raise InputError(f"steps: the trace has steps 0..{trace.steps - 1}, got "
                             f"{list(steps)}")
        self.system = system
        self.network = network = system.network
        self.arithmetic = arithmetic
        self.steps = list(steps)
        self.program = layerwise_program(network)
        self.samples = n = system.samples
        self.input_width, self.output_width = network.input_width, network.output_width
        self.width = self.input_width + self.output_width
        self.unknowns = n * self.width
        self.rows = len(self.steps) * network.num_parameters
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
                    sums = self.program.half_gradient_sums(
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
        sums = self.program.half_gradient_sums(self.thetas, inputs, labels, self._batches(),
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
        thetas, rhs = self._data()
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


def _native(arithmetic, value):
    """Whether ``value`` is already a number of ``arithmetic`` (or of its real sibling)."""
    from .codegen import _number_kind
    kind = _number_kind(value)
    if arithmetic.is_interval:
        return kind == ("iv" if arithmetic.name == "iv" else "arb")
    names = {arithmetic.name, arithmetic.realify().name}
    return kind in names
