r"""Forward-mode dual numbers over any arithmetic: derivatives through whole computations.

A :class:`DualNumber` is a value of a base arithmetic (float64, complex128, mpmath, mpc,
python-flint arb/acb) with a *tangent*: the derivatives of that value with respect to
``K`` chosen variables, as a numpy array (or the scalar ``0`` for a constant).  Sums,
products, quotients, integer powers, square roots, the activations' functions and
comparisons (on the values) carry the tangents by the chain rule, so any code written
for the arithmetic's numbers (the layer-wise program, an optimizer's update equation)
computes its own Jacobian when given dual numbers: one pass, no symbolic derivative.

:class:`DualArithmetic` wraps a base arithmetic for the layer-wise program
(:mod:`~symbolic_inversion.program`): the federated K-step map of a round differentiates
through K optimizer steps whose parameters depend on the data this way
(:class:`~symbolic_inversion.system.LocalStepsEvaluator`).

Examples
========

>>> import numpy as np
>>> from symbolic_inversion.arithmetic import get_arithmetic
>>> dual = DualArithmetic(get_arithmetic("float64"))
>>> x, y = dual.variables([0.5, 2.0])
>>> f = dual.functions()["tanh"](x * y) + x ** 2
>>> round(float(f.value), 12), np.round(f.tangent, 12).tolist()
(1.011594155956, [1.839948683228, 0.209987170807])
"""

import numpy as np

from .arithmetic import Arithmetic, get_arithmetic
from .errors import NotSupportedError

__all__ = ["DualNumber", "DualArithmetic"]


class DualNumber:
    """``value + tangent * epsilon`` with ``epsilon^2 = 0``; ``tangent`` a 1-D numpy
    array of derivatives (or ``0``: a constant)."""

    __slots__ = ("value", "tangent")

    def __init__(self, value, tangent=0):
        self.value, self.tangent = value, tangent

    @staticmethod
    def _parts(other):
        if isinstance(other, DualNumber):
            return other.value, other.tangent
        return other, 0

    def __add__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented   # numpy applies the operation entry by entry
        value, tangent = self._parts(other)
        return DualNumber(self.value + value, self.tangent + tangent)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented   # numpy applies the operation entry by entry
        value, tangent = self._parts(other)
        return DualNumber(self.value - value, self.tangent - tangent)

    def __rsub__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented   # numpy applies the operation entry by entry
        value, tangent = self._parts(other)
        return DualNumber(value - self.value, tangent - self.tangent)

    def __neg__(self):
        return DualNumber(-self.value, -self.tangent)

    def __pos__(self):
        return self

    def __mul__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented   # numpy applies the operation entry by entry
        value, tangent = self._parts(other)
        return DualNumber(self.value * value, self.tangent * value + tangent * self.value)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented   # numpy applies the operation entry by entry
        value, tangent = self._parts(other)
        quotient = self.value / value
        return DualNumber(quotient, (self.tangent - tangent * quotient) / value)

    def __rtruediv__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented   # numpy applies the operation entry by entry
        value, tangent = self._parts(other)
        quotient = value / self.value
        return DualNumber(quotient, (tangent - self.tangent * quotient) / self.value)

    def __pow__(self, power):
        if isinstance(power, DualNumber) or int(power) != power:
            raise NotSupportedError("dual numbers: only integer powers")
        power = int(power)
        if power == 0:
            return DualNumber(self.value ** 0, 0)
        return DualNumber(self.value ** power,
                          self.tangent * (self.value ** (power - 1) * power))

    def sqrt(self):
        root = _sqrt_of(self.value)
        return DualNumber(root, self.tangent / (2 * root))

    def __abs__(self):
        sign = 1 if self.value >= 0 else -1
        return DualNumber(abs(self.value), self.tangent * sign)

    # comparisons decide on the values (relu's kink, Adam's running maximum)
    def __lt__(self, other):
        return self.value < self._parts(other)[0]

    def __le__(self, other):
        return self.value <= self._parts(other)[0]

    def __gt__(self, other):
        return self.value > self._parts(other)[0]

    def __ge__(self, other):
        return self.value >= self._parts(other)[0]

    def __repr__(self):
        return f"DualNumber({self.value!r}, {self.tangent!r})"


def _sqrt_of(value):
    import math

    import mpmath
    if isinstance(value, (float, int)):
        return math.sqrt(value)
    if isinstance(value, (complex, np.complexfloating)):
        return np.sqrt(value)
    if isinstance(value, np.floating):
        return np.sqrt(value)
    if isinstance(value, (mpmath.mpf, mpmath.mpc)):
        return mpmath.sqrt(value)
    return value.sqrt()   # python-flint


def _derivatives(functions, pi):
    """``name -> derivative(x, y)`` for the functions an activation may use, written
    with the base arithmetic's own ``functions`` (``y`` the function's value; ``pi()`` the
    base arithmetic's pi at the working precision)."""
    exp = functions["exp"]
    sqrt = functions["sqrt"]
    return {
        "tanh": lambda x, y: 1 - y * y,
        "exp": lambda x, y: y,
        "log": lambda x, y: 1 / x,
        "sqrt": lambda x, y: 1 / (2 * y),
        "sin": lambda x, y: functions["cos"](x),
        "cos": lambda x, y: -functions["sin"](x),
        "sinh": lambda x, y: functions["cosh"](x),
        "cosh": lambda x, y: functions["sinh"](x),
        "asinh": lambda x, y: 1 / sqrt(1 + x * x),
        "atan": lambda x, y: 1 / (1 + x * x),
        "erf": lambda x, y: exp(-x * x) * 2 / sqrt(pi()),
    }


class DualArithmetic(Arithmetic):
    """An arithmetic whose numbers are :class:`DualNumber` over ``base`` (an
    :class:`~symbolic_inversion.arithmetic.Arithmetic` or its name): what the layer-wise
    program needs (conversions, constants, the activations' functions); linear algebra
    stays with the base arithmetic (solvers work on the values and tangents it gives)."""

    dtype = np.dtype(object)
    is_interval = False

    def __init__(self, base):
        base = get_arithmetic(base)
        if base.is_interval:
            raise NotSupportedError("dual numbers over intervals: use a point arithmetic")
        self.base = base
        self.name = f"dual[{base.name}]"
        self.is_complex = base.is_complex

    def __repr__(self):
        return f"<arithmetic {self.name}>"

    def workdps(self, dps):
        return self.base.workdps(dps)

    def precision(self):
        return self.base.precision()

    # -- numbers -----------------------------------------------------------------

    def number(self, value):
        if isinstance(value, DualNumber):
            return value
        return DualNumber(self.base.number(value), 0)

    def rational(self, p, q=1):
        return DualNumber(self.base.rational(p, q), 0)

    def pi(self):
        return DualNumber(self.base.pi(), 0)

    def asarray(self, values):
        array = np.asarray(values, dtype=object)
        out = np.empty(array.shape, dtype=object)
        flat = out.reshape(-1)
        flat[:] = [self.number(v) for v in array.reshape(-1)]
        return out

    def zeros(self, shape):
        out = np.empty(shape, dtype=object)
        out.reshape(-1)[:] = [DualNumber(self.base.number(0), 0)] * int(np.prod(shape))
        return out

    def variables(self, values):
        """Dual numbers for the variables ``values`` (a flat sequence): unit tangents,
        variable ``k`` the ``k``-th direction."""
        values = self.base.asarray(list(values))
        size = len(values)
        identity = self.base.asarray(np.eye(size, dtype=int).tolist()) if \
            self.base.dtype == object else np.eye(size, dtype=self.base.dtype)
        out = np.empty(size, dtype=object)
        out[:] = [DualNumber(v, identity[k]) for k, v in enumerate(values)]
        return out

    def split(self, array, size):
        """``(values, tangents)`` of an array of dual numbers: the values in the base
        arithmetic, the tangents as an array of shape ``array.shape + (size,)``."""
        array = np.asarray(array, dtype=object)
        flat = array.reshape(-1)
        values = np.empty(flat.shape, dtype=self.base.dtype if self.base.dtype != object
                          else object)
        tangents = self.base.zeros((len(flat), size))
        for k, entry in enumerate(flat):
            entry = self.number(entry)
            values[k] = entry.value
            if not (isinstance(entry.tangent, int) and entry.tangent == 0):
                tangents[k] = entry.tangent
        return values.reshape(array.shape), tangents.reshape(array.shape + (size,))

    def to_mpmath(self, value):
        return self.base.to_mpmath(self.number(value).value)

    def magnitudes(self, array):
        return self.base.magnitudes(np.frompyfunc(lambda v: self.number(v).value, 1, 1)(
            np.asarray(array, dtype=object)))

    def norm(self, vector):
        return self.base.norm(np.frompyfunc(lambda v: self.number(v).value, 1, 1)(
            np.asarray(vector, dtype=object)))

    # -- functions -------------------------------------------------------------------

    def functions(self):
        base = self.base.functions()
        derivatives = _derivatives(base, self.base.pi)

        def lift(name):
            function, derivative = base[name], derivatives[name]

            def apply(x):
                x = self.number(x)
                y = function(x.value)
                if isinstance(x.tangent, int) and x.tangent == 0:
                    return DualNumber(y, 0)
                return DualNumber(y, x.tangent * derivative(x.value, y))
            return np.frompyfunc(apply, 1, 1)

        namespace = {name: lift(name) for name in derivatives if name in base}

        def heaviside(z, at_zero=0.5):
            z = self.number(z)
            return DualNumber(base["Heaviside"](z.value, at_zero), 0)

        def maximum(a, b):
            a, b = self.number(a), self.number(b)
            return a if a.value >= b.value else b

        def minimum(a, b):
            a, b = self.number(a), self.number(b)
            return a if a.value <= b.value else b

        def reduce(function, args):
            result = args[0]
            for arg in args[1:]:
                result = function(result, arg)
            return result

        from .arithmetic import _ipow
        namespace.update(
            ipow=_ipow, Rational=self.rational,
            Heaviside=np.frompyfunc(heaviside, 2, 1),
            Max=lambda *args: reduce(np.frompyfunc(maximum, 2, 1), args),
            Min=lambda *args: reduce(np.frompyfunc(minimum, 2, 1), args),
            DiracDelta=lambda z, *order: z * 0)
        return namespace

    def __reduce__(self):
        return DualArithmetic, (self.base.name,)
