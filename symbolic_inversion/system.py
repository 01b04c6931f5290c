r"""Step 4 of the workflow: the inversion system, the paper's eq. (9) for any network.

Every observed step ``j`` gives one equation per parameter ``p``:

.. math:: \sum_{i \in \mathcal{B}_j} \big[B(\theta^{(j)}, x_i)\,(f(\theta^{(j)}, x_i) - y_i)\big]_p
          = \tfrac{|\mathcal{B}_j|}{2}\, g^{(j)}_p,
          \qquad g^{(j)} = \frac{\theta^{(j)} - \theta^{(j+1)}}{\eta}\ \text{(plain GD)},

with ``B = J_theta f^T``.  The unknowns are the inputs and labels of the ``n`` samples.
:class:`InversionSystem` holds the system symbolically (general form with a sum over
samples, or instantiated with the numbers of a trace), counts equations and unknowns,
prints LaTeX, and evaluates residual and Jacobian numerically at any precision through
the compiled network of :mod:`symbolic_inversion.codegen`.
"""

import math
from fractions import Fraction

import mpmath
import sympy as sp

from .codegen import compile_network
from .errors import InputError
from .network import Network
from .trace import Trace

__all__ = ["InversionSystem", "system_counts", "least_squares"]


def system_counts(network, samples, steps=None):
    """Equations and unknowns of the inversion system.

    ``unknowns = samples * (input width + output width)``; ``equations = steps *
    parameters``; ``min_steps`` is the fewest steps giving at least as many equations as
    unknowns (necessary, not sufficient, for identifiability).

    >>> from symbolic_inversion import Network, system_counts
    >>> system_counts(Network([3, 4, 2]), samples=5, steps=3)
    {'samples': 5, 'steps': 3, 'parameters': 26, 'unknowns': 25, 'equations': 78, 'min_steps': 1}
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"samples: must be a positive integer, got {samples!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise InputError(f"epochs: must be a positive integer, got {steps!r}")
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
        if trace is not None and steps is not None and not 1 <= steps <= trace.steps:
            raise InputError(f"steps: the trace has {trace.steps} steps, asked for {steps}")
        if steps is None and trace is not None:
            steps = trace.steps
        self.counts = system_counts(network, samples, steps)
        self.samples = samples
        self.steps = self.counts["steps"]
        self._compiled = None

    @classmethod
    def from_trace(cls, trace, steps=None):
        """The system instantiated with the numbers of ``trace`` (first ``steps`` steps)."""
        if not isinstance(trace, Trace):
            raise InputError("trace: expected a Trace")
        return cls(trace.network, trace.samples, steps, trace)

    @property
    def compiled(self):
        if self._compiled is None:
            self._compiled = compile_network(self.network)
        return self._compiled

    # -- symbols -------------------------------------------------------------------

    def unknowns(self):
        """Unknown symbols, sample by sample: inputs then labels."""
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
        return [sp.Eq(sp.Sum(term, (i, 0, n - 1)), n / (2 * eta) * (a - b))
                for term, a, b in zip(summands, now, later)]

    def right_hand_sides(self):
        """Exact right-hand sides ``|B_j| / 2 * g_j`` as fractions (plain GD only exactly;
        with momentum or weight decay the unrolled gradient, also exact)."""
        if self.trace is None:
            raise InputError("right-hand sides need a trace")
        trace = self.trace
        lr, mu = Fraction(trace.lr), Fraction(trace.momentum)
        wd = Fraction(trace.weight_decay)
        thetas = [[Fraction(v) for v in vector] for vector in trace.parameters]
        sides, velocity = [], [Fraction(0)] * self.network.num_parameters
        for step in range(self.steps):
            new_velocity = [(a - b) / lr for a, b in zip(thetas[step], thetas[step + 1])]
            gradient = [v - mu * old - wd * t
                        for v, old, t in zip(new_velocity, velocity, thetas[step])]
            size = len(self.batch(step))
            sides.append([Fraction(size, 2) * g for g in gradient])
            velocity = new_velocity
        return sides

    def equations(self):
        """The system instantiated with the trace's numbers (like the paper's eqs. (10), (12)).

        Numbers keep the trace's digits; the right-hand sides are exact and printed to
        the trace's precision.
        """
        if self.trace is None:
            raise InputError("instantiated equations need a trace; use general_equations()")
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
        return [[len(self.batch(j)) * g / 2 for g in gradient]
                for j, gradient in enumerate(gradients)]

    def residual(self, inputs, labels):
        """Left minus right side of every equation (``steps * parameters`` mpmath numbers).

        Evaluated at mpmath's current precision; wrap in ``mpmath.workdps``.
        """
        self._check_data(inputs, labels)
        sides = self.observed()
        values = []
        for step in range(self.steps):
            theta = self.trace.theta(step)
            total = [mpmath.mpf(0)] * self.network.num_parameters
            for i in self.batch(step):
                terms = self.compiled.half_gradient(theta, inputs[i], labels[i])
                total = [t + g for t, g in zip(total, terms)]
            values += [t - s for t, s in zip(total, sides[step])]
        return values

    def jacobian(self, inputs, labels):
        """Jacobian of :meth:`residual` with respect to the unknowns (an mpmath matrix)."""
        self._check_data(inputs, labels)
        width = self.network.input_width + self.network.output_width
        P = self.network.num_parameters
        J = mpmath.zeros(self.steps * P, self.samples * width)
        for step in range(self.steps):
            theta = self.trace.theta(step)
            for i in self.batch(step):
                block = self.compiled.sample_jacobian(theta, inputs[i], labels[i])
                for p in range(P):
                    for c in range(width):
                        J[step * P + p, i * width + c] = block[p][c]
        return J

    def solve_labels(self, inputs):
        """Labels that best explain the trace given the inputs (linear least squares).

        For MSE the system is affine in the labels: step ``j`` reads
        ``sum_i B_i y_i = sum_i B_i f_i - c_j``.  Eliminating the labels this way leaves
        only the inputs to search for (variable projection).  Returns the labels as one
        list per sample.
        """
        m, P = self.network.output_width, self.network.num_parameters
        sides = self.observed()
        A = mpmath.zeros(self.steps * P, self.samples * m)
        rhs = mpmath.zeros(self.steps * P, 1)
        for step in range(self.steps):
            theta = self.trace.theta(step)
            for p in range(P):
                rhs[step * P + p] = -sides[step][p]
            for i in self.batch(step):
                f, B = self.compiled.terms(theta, inputs[i])
                for p in range(P):
                    rhs[step * P + p] += sum(b * v for b, v in zip(B[p], f))
                    for o in range(m):
                        A[step * P + p, i * m + o] = B[p][o]
        labels = least_squares(A, rhs)
        return [[labels[i * m + o] for o in range(m)] for i in range(self.samples)]

    def rhs_uncertainty(self):
        """Bound on the error of each right-hand side ``|B_j| / 2 * g_j`` caused by the
        trace's rounding (see :meth:`Trace.gradient_uncertainty`)."""
        size = max(len(self.batch(j)) for j in range(self.steps))
        return size / 2 * self.trace.gradient_uncertainty()

    def error_estimate(self, inputs, labels):
        r"""First-order bound on the error of ``(inputs, labels)`` due to the trace's digits.

        ``sqrt(m) * eps / sigma_min(J)`` with ``eps`` from :meth:`rhs_uncertainty`:
        the largest change of the data that rounding of the trace can explain, to first
        order.  Returns ``(error, sigma_min)``; ``error`` is ``inf`` if ``J`` is
        rank deficient (the data are not locally identifiable from these steps).
        """
        J = self.jacobian(inputs, labels)
        if J.rows < J.cols:
            return mpmath.inf, mpmath.mpf(0)
        singular = mpmath.svd_r(J, compute_uv=False)
        sigma_min = min(abs(s) for s in singular)
        if sigma_min == 0 or sigma_min < max(abs(s) for s in singular) * mpmath.eps * 10 ** 3:
            return mpmath.inf, sigma_min
        error = mpmath.sqrt(J.rows) * self.rhs_uncertainty() / sigma_min
        return error, sigma_min


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
    Q, R = mpmath.qr(A, mode="skinny")
    c = Q.H * b
    x = mpmath.matrix(A.cols, 1)
    for i in reversed(range(A.cols)):
        x[i] = (c[i] - sum((R[i, k] * x[k] for k in range(i + 1, A.cols)), 0)) / R[i, i]
    return x


def digits_from_error(error):
    """Decimal digits vouched for by an absolute error bound (0 if none)."""
    if error == 0:
        return 10 ** 6
    if not mpmath.isfinite(error) or error >= 1:
        return 0
    return int(math.floor(-mpmath.log10(error)))
