r"""Activations: one class each, registered by name, SymPy the source of truth.

An :class:`Activation` is its SymPy :meth:`~Activation.expression` ``sigma(z)``; its
derivative is derived from it by SymPy (or given in terms of the output ``a``, as
``1 - a**2`` for tanh, so that backpropagation reuses the forward pass).  Every numeric
form is compiled from these expressions for the arithmetic that asks
(:meth:`Activation.compiled`: float64, complex128, mpmath, arb/acb, intervals), so the
LaTeX of ``derive --latex``, the closed forms and every solver see the same function.

======================  ==========================================================
name                    ``sigma(z)`` (PyTorch's module)
======================  ==========================================================
``tanh``                ``tanh(z)`` (``nn.Tanh``)
``sigmoid``             ``1 / (1 + exp(-z))`` (``nn.Sigmoid``)
``relu``                ``max(0, z)`` (``nn.ReLU``; ``relu'(0) = 0``)
``identity``            ``z`` (``nn.Identity``, or no activation)
``leaky_relu[:slope]``  ``max(0, z) + slope min(0, z)``, slope 0.01 by default
                        (``nn.LeakyReLU``)
``gelu``                ``z (1 + erf(z / sqrt 2)) / 2`` (``nn.GELU()``)
``gelu_tanh``           ``z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2``
                        (``nn.GELU(approximate="tanh")``)
``silu``                ``z / (1 + exp(-z))`` (``nn.SiLU``)
``softplus``            ``log(1 + exp(z))`` (``nn.Softplus()``; PyTorch returns ``z``
                        itself above ``z = 20``, a difference below ``2e-9``)
======================  ==========================================================

A new activation is one subclass with a ``name`` and an ``expression``, registered with
:func:`register_activation`; nothing else changes.

Examples
========

>>> import sympy as sp
>>> from symbolic_inversion.activations import get_activation
>>> z = sp.Symbol("z")
>>> gelu = get_activation("gelu")
>>> gelu.expression(z)
z*(erf(sqrt(2)*z/2) + 1)/2
>>> sp.simplify(gelu.derivative(z, gelu.expression(z)) - sp.diff(gelu.expression(z), z))
0
>>> leaky = get_activation("leaky_relu:0.2")
>>> leaky.name, leaky.slope, leaky.expression(sp.Integer(-3))
('leaky_relu:0.2', Fraction(1, 5), -3/5)
"""

from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.lambdarepr import LambdaPrinter

from .errors import InputError, NotSupportedError

__all__ = ["Activation", "ACTIVATIONS", "register_activation", "get_activation",
           "activation_names", "CompiledActivation"]

#: The registered activation classes by base name (``leaky_relu`` for ``leaky_relu:0.2``).
ACTIVATION_CLASSES = {}
#: One instance per registered name with its default parameters (the names a trace
#: may use without a parameter).
ACTIVATIONS = {}


class Activation:
    """An elementwise activation ``sigma(z)``.

    Subclasses set :attr:`name` and define :meth:`expression`; they may override
    :meth:`derivative` to write the slope in terms of the output ``a``.  Class flags:
    :attr:`piecewise_linear` (exact rational arithmetic applies; kinks refused in complex
    arithmetics), :attr:`odd` (``sigma(-z) = -sigma(z)``: the data's sign symmetries).
    """

    name = ""
    piecewise_linear = False
    odd = False

    # -- the source of truth ------------------------------------------------------------

    def expression(self, z):
        """``sigma(z)`` as a SymPy expression."""
        raise NotImplementedError

    def derivative(self, z, a):
        """``sigma'(z)`` as a SymPy expression; ``a`` stands for ``sigma(z)`` and may be
        used (default: SymPy's derivative of :meth:`expression`, without ``a``)."""
        hole = sp.Dummy("z")
        return sp.diff(self.expression(hole), hole).subs(hole, z)

    # -- the names of version 0.1 (``ACTIVATIONS[name].symbolic(z)`` and friends) -----

    def symbolic(self, z):
        """:meth:`expression` (the name of version 0.1)."""
        return self.expression(z)

    def mpmath(self, z):
        """``sigma(z)`` for one mpmath number at the working precision."""
        return self.compiled("mpmath" if not isinstance(z, mpmath.mpc) else "mpc").value(
            np.array([z], dtype=object))[0]

    def numpy(self, z):
        """``sigma(z)`` in float64 (numpy arrays or floats)."""
        return self.compiled("float64").value(np.asarray(z, dtype=float))

    # -- numeric forms ---------------------------------------------------------------

    def compiled(self, arithmetic):
        """The activation compiled for ``arithmetic`` (a name or an
        :class:`~symbolic_inversion.arithmetic.Arithmetic`): an object with ``value(z)``,
        ``slope(z, a)`` (``None`` when it is 1) and ``curvature(z, a, s)`` (``None`` when
        it is 0) on arrays (cached per arithmetic)."""
        from .arithmetic import get_arithmetic
        arithmetic = get_arithmetic(arithmetic)
        cache = self.__dict__.setdefault("_compiled", {})
        if arithmetic.name not in cache:
            cache[arithmetic.name] = CompiledActivation(self, arithmetic)
        return cache[arithmetic.name]

    # -- identity ----------------------------------------------------------------------

    def __repr__(self):
        return f"<activation {self.name}>"

    def __eq__(self, other):
        return isinstance(other, Activation) and other.name == self.name

    def __hash__(self):
        return hash(("activation", self.name))

    def __reduce__(self):
        return get_activation, (self.name,)

    def _repr_latex_(self):
        from .report.display import activation_latex, math_block
        return math_block(activation_latex(self))


def register_activation(cls):
    """Class decorator: make ``cls`` (an :class:`Activation` subclass with a ``name``)
    known by its name to networks, traces and every solver.

    >>> import sympy as sp
    >>> from symbolic_inversion.activations import Activation, register_activation
    >>> @register_activation
    ... class Cube(Activation):
    ...     name = "cube_doc"
    ...     def expression(self, z):
    ...         return z + z**3 / 3
    >>> from symbolic_inversion import Network
    >>> Network([2, 1], "cube_doc").activations
    ('cube_doc',)
    """
    if not (isinstance(cls, type) and issubclass(cls, Activation)) or not cls.name \
            or not isinstance(cls.name, str) or ":" in cls.name:
        raise InputError("register_activation: expected an Activation subclass with a "
                         "name (no ':')")
    ACTIVATION_CLASSES[cls.name] = cls
    ACTIVATIONS[cls.name] = cls()
    return cls


def activation_names():
    """The registered base names, in registration order."""
    return list(ACTIVATION_CLASSES)


def get_activation(spec):
    """The activation a name (``"tanh"``) or a name with a parameter
    (``"leaky_relu:0.2"``) stands for; an :class:`Activation` is returned as it is.

    Unknown names and malformed parameters are an :class:`InputError` naming them.

    >>> get_activation("leaky_relu:0.2")
    <activation leaky_relu:0.2>
    >>> get_activation("swish")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: network.activations: unknown activation 'swish'; known: tanh, sigmoid, relu, identity, leaky_relu, gelu, gelu_tanh, silu, softplus...
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"network.activations: expected a name, got {type(spec).__name__}")
    if spec in ACTIVATIONS:
        return ACTIVATIONS[spec]
    base, _, parameter = spec.partition(":")
    cls = ACTIVATION_CLASSES.get(base)
    if cls is None:
        shown = spec if len(spec) <= 40 else spec[:37] + "..."
        raise InputError(f"network.activations: unknown activation {shown!r}; known: "
                         f"{', '.join(ACTIVATION_CLASSES)}")
    if not getattr(cls, "takes_parameter", False):
        raise InputError(f"network.activations: {base} takes no parameter, got {spec!r}")
    return cls.from_parameter(parameter, spec)


# -- the activations ------------------------------------------------------------------

@register_activation
class Tanh(Activation):
    name = "tanh"
    odd = True

    def expression(self, z):
        return sp.tanh(z)

    def derivative(self, z, a):
        return 1 - a**2


@register_activation
class Sigmoid(Activation):
    name = "sigmoid"

    def expression(self, z):
        return 1 / (1 + sp.exp(-z))

    def derivative(self, z, a):
        return a * (1 - a)


@register_activation
class ReLU(Activation):
    """``max(0, z)``; ``relu'(0) = 0``, PyTorch's convention (the kink has measure 0)."""

    name = "relu"
    piecewise_linear = True

    def expression(self, z):
        return sp.Max(0, z)

    def derivative(self, z, a):
        return sp.Heaviside(z, 0)


@register_activation
class Identity(Activation):
    name = "identity"
    piecewise_linear = True
    odd = True

    def expression(self, z):
        return z

    def derivative(self, z, a):
        return sp.Integer(1)


@register_activation
class LeakyReLU(Activation):
    """``max(0, z) + slope * min(0, z)``, PyTorch's ``nn.LeakyReLU(slope)``: the slope at
    ``z = 0`` is ``slope`` (``z > 0`` takes 1), as PyTorch's backward."""

    name = "leaky_relu"
    piecewise_linear = True
    takes_parameter = True
    default_slope = Fraction(1, 100)

    def __init__(self, slope=None):
        self.slope = self.default_slope if slope is None else Fraction(slope)
        if self.slope != self.default_slope:
            self.name = f"leaky_relu:{_decimal_text(self.slope)}"

    @classmethod
    def from_parameter(cls, text, spec):
        from .exact import to_decimal
        value = to_decimal(text, f"network.activations ({spec!r}): the slope")
        return cls(Fraction(value))

    def expression(self, z):
        slope = sp.Rational(self.slope.numerator, self.slope.denominator)
        return sp.Max(0, z) + slope * sp.Min(0, z)

    def derivative(self, z, a):
        slope = sp.Rational(self.slope.numerator, self.slope.denominator)
        return slope + (1 - slope) * sp.Heaviside(z, 0)


def _decimal_text(fraction):
    """A terminating fraction as its decimal text, ``1/5 -> '0.2'``."""
    from decimal import Decimal, localcontext
    with localcontext() as context:
        context.prec = 60
        text = format(Decimal(fraction.numerator) / Decimal(fraction.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@register_activation
class GELU(Activation):
    """PyTorch's exact GELU, ``z Phi(z)`` with the normal distribution function."""

    name = "gelu"

    def expression(self, z):
        return z * (1 + sp.erf(z / sp.sqrt(2))) / 2


@register_activation
class GELUTanh(Activation):
    """PyTorch's ``nn.GELU(approximate="tanh")``."""

    name = "gelu_tanh"

    def expression(self, z):
        kappa = sp.Rational(44715, 10**6)
        return z * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (z + kappa * z**3))) / 2


@register_activation
class SiLU(Activation):
    """``z sigmoid(z)``, PyTorch's ``nn.SiLU`` (swish)."""

    name = "silu"

    def expression(self, z):
        return z / (1 + sp.exp(-z))


@register_activation
class Softplus(Activation):
    """``log(1 + exp(z))``, PyTorch's ``nn.Softplus()`` (beta 1; PyTorch's threshold 20,
    above which it returns ``z``, changes the value by less than ``2e-9``)."""

    name = "softplus"

    def expression(self, z):
        return sp.log(1 + sp.exp(z))


# -- numeric forms ----------------------------------------------------------------

class _ArrayPrinter(LambdaPrinter):
    """Python code calling the functions of an arithmetic's namespace by bare name.

    Rationals and Floats become ``Rational(p, q)`` (the arithmetic's exact or enclosing
    number), integer powers ``ipow(base, n)`` (products: tight for intervals, and arb's
    ``**`` is nan for balls around zero).
    """

    def _module_format(self, fqn, register=True):
        return fqn.split(".")[-1]

    def _print_Rational(self, expr):
        return f"Rational({expr.p}, {expr.q})"

    _print_Half = _print_Integer = _print_Rational

    def _print_Float(self, expr):
        return self._print_Rational(sp.Rational(expr))

    def _print_Pow(self, expr, rational=False):
        base, exponent = self._print(expr.base), expr.exp
        if exponent == sp.S.Half:
            return f"sqrt({base})"
        if exponent.is_Rational and exponent.q == 2:   # sqrt(base) ** p, p odd
            return f"ipow(sqrt({base}), {int(exponent.p)})"
        if not exponent.is_Integer:
            raise NotSupportedError(f"layer-wise program: the power {expr} (only integer "
                                    f"powers and square roots)")
        return f"ipow({base}, {int(exponent)})"

    def _print_call(self, expr):
        return f"{type(expr).__name__}({', '.join(self._print(a) for a in expr.args)})"

    _print_Heaviside = _print_Max = _print_Min = _print_DiracDelta = _print_call

    def _print_Pi(self, expr):
        # a call: pi at the precision in force when the activation runs
        return "Pi()"

    def _print_exp1(self, expr):
        return "exp(Rational(1, 1))"




def _check_functions(activation, arithmetic, namespace, expressions):
    """Refuse, by the activation's name, an exact arithmetic lacking a function it needs
    (rationals have no tanh, exp, erf, sqrt or pi); the others have every function the
    registered activations use."""
    if not arithmetic.is_exact:
        return
    needed = set()
    for expr in expressions:
        needed |= {type(f).__name__ for f in expr.atoms(sp.Function)}
        if any(not p.exp.is_Integer for p in expr.atoms(sp.Pow)):
            needed.add("sqrt")
        if expr.has(sp.pi) or expr.has(sp.E):
            needed.add("pi" if expr.has(sp.pi) else "exp")
    missing = sorted(name for name in needed if name not in namespace)
    if missing:
        raise NotSupportedError(
            f"activation {activation.name}: the {arithmetic.name} arithmetic has no "
            f"{', '.join(missing)} (exact rationals cover the piecewise-linear "
            f"activations: relu, leaky_relu, identity)")


class CompiledActivation:
    """One activation compiled for one arithmetic: ``value(z)``, ``slope(z, a)`` and
    ``curvature(z, a, s)`` (d/dz of the slope along the activation, ``s`` the slope) on
    arrays; ``slope`` is ``None`` when it is 1 and ``curvature`` ``None`` when it is 0
    (nothing to multiply).  Built from the activation's SymPy expressions
    (:meth:`Activation.compiled <symbolic_inversion.activations.Activation.compiled>`
    caches one per arithmetic).

    >>> import numpy as np
    >>> silu = get_activation("silu").compiled("float64")
    >>> z = np.array([0.0, 1.0])
    >>> a = silu.value(z)
    >>> a.round(6).tolist(), silu.slope(z, a).round(6).tolist()
    ([0.0, 0.731059], [0.5, 0.927671])
    """

    def __init__(self, activation, arithmetic):
        z, a = sp.Symbol("z"), sp.Symbol("a")
        value = activation.expression(z)
        slope = sp.sympify(activation.derivative(z, a))
        s = sp.Symbol("s")  # the slope's value, computed once
        curvature = sp.diff(slope, z) + sp.diff(slope, a) * s
        kinked = value.has(sp.Heaviside, sp.Max, sp.Min) or slope.has(sp.Heaviside)
        if kinked and arithmetic.is_complex:
            raise NotSupportedError(f"activation {activation.name} is not analytic: no "
                                    f"{arithmetic.name} (complex) evaluation; use a real "
                                    f"arithmetic")
        if not arithmetic.is_interval:
            # The kink has measure zero; off it the step's derivative vanishes.
            curvature = curvature.replace(lambda e: isinstance(e, sp.DiracDelta),
                                          lambda e: sp.Integer(0))
        namespace = arithmetic.functions()
        _check_functions(activation, arithmetic, namespace, (value, slope, curvature))
        if arithmetic.dtype == object:
            # Constants as 1-element arrays of the arithmetic's numbers: ``c * array``
            # then multiplies number by number; an mpf or int on the left converts the
            # array (mpmath) or takes the slow mixed-type path (measured 10x and 2x
            # slower).  Not 0-d: numpy unwraps 0-d results (``-c`` would be an mpf).
            # Built once per precision (exact arithmetics: once), read-only so that no
            # caller can change a shared constant in place.
            constants = {}

            def rational(p, q=1, number=arithmetic.rational, precision=arithmetic.precision):
                key = (p, q, precision())
                constant = constants.get(key)
                if constant is None:
                    constant = constants[key] = np.array([number(p, q)], dtype=object)
                    constant.flags.writeable = False
                return constant

            def pi(number=arithmetic.pi):
                return np.array([number()], dtype=object)
            namespace = dict(namespace, Rational=rational, Pi=pi)
        else:
            namespace = dict(namespace, Pi=arithmetic.pi)

        def compile_(args, expr):
            return sp.lambdify(args, expr, modules=[namespace], printer=_ArrayPrinter)

        self.name = activation.name
        self.value = compile_([z], value)
        self.slope = None if slope == 1 else compile_([z, a], slope)
        self.curvature = None if curvature == 0 else compile_([z, a, s], curvature)
