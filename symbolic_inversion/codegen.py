"""Step 2 of the workflow: SymPy expressions compiled to numeric callables.

The symbolic per-sample terms of a network, the output ``f(theta, x)`` and
``B(theta, x) = J_theta f^T``, are compiled once per network and target with
``lambdify(..., cse=True)`` and cached.  Two targets:

``"mpmath"``
    one sample at a time, at whatever precision is in force (callers use
    ``mpmath.workdps``); works for real and complex arguments.
``"numpy"``
    float64, vectorized over samples: pass each input coordinate as an array.

Every numeric gradient in the toolkit (simulation, residuals, Jacobians) goes through
:func:`compile_network`, so what is simulated is exactly what is inverted.
"""

from functools import lru_cache, reduce

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.lambdarepr import LambdaPrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import MpmathPrinter

from .errors import InputError, NotSupportedError, boundary

__all__ = ["CompiledNetwork", "compile_network", "shared_subexpressions",
           "differentiate_program", "LayerwiseProgram", "LayerwiseFloat64", "layerwise_program"]


def _mp_heaviside(z, at_zero=sp.S.Half):
    if z > 0:
        return mpmath.mpf(1)
    if z < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(float(at_zero))


def _mp_max(*args):
    return mpmath.mpf(max(args))


def _mp_dirac_delta(z, order=0):
    # The derivative of relu's step: zero wherever it is defined (off the kink).
    return mpmath.mpf(0)


_MPMATH_MODULES = [{"Heaviside": _mp_heaviside, "Max": _mp_max,
                    "DiracDelta": _mp_dirac_delta}, "mpmath"]
_NUMPY_MODULES = [{"Max": lambda *args: reduce(np.maximum, args),
                   "DiracDelta": lambda z, order=0: np.zeros_like(z, dtype=float)}, "numpy"]


def shared_subexpressions(exprs, prefix="_cse", rename=None):
    """Common subexpressions of ``exprs`` found by one walk over the expression DAG.

    A drop-in for ``lambdify(..., cse=...)``: returns ``(replacements, reduced)``;
    sums and function applications always get a name, so the program reads like
    three-address code.  ``rename`` maps symbols to others while rebuilding (free of
    charge here; ``xreplace`` afterwards would rebuild every node again).
    Backpropagation builds the gradient from *shared* objects (pre-activations,
    activations, deltas), so every repeated node is already one object: marking the
    nodes met twice is enough, and is linear in the size of the DAG, where
    ``sympy.cse`` also searches for common factors of sums and products (23 s instead
    of 0.1 s for a 4-16-16-2 network).

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> shared_subexpressions([sp.tanh(x + y)**2, sp.tanh(x + y) * x])
    ([(_cse0, x + y), (_cse1, tanh(_cse0))], [_cse1**2, _cse1*x])
    """
    exprs = list(exprs)
    seen, repeated = set(), set()
    stack = list(exprs)
    while stack:
        node = stack.pop()
        if node.is_Atom or not node.args:
            continue
        if node in seen:
            repeated.add(node)
            continue
        seen.add(node)
        stack.extend(node.args)
    names = sp.numbered_symbols(prefix)
    replacements, memo = [], {}
    rename = rename or {}

    def rebuild(node):
        if node.is_Atom or not node.args:
            return rename.get(node, node)
        if node in memo:
            return memo[node]
        new = node.func(*[rebuild(arg) for arg in node.args])
        # Sums and function applications get a name even when used once, so every
        # assignment stays a small operation on names (cheap to differentiate).
        if node in repeated or not isinstance(node, (sp.Mul, sp.Pow)):
            symbol = next(names)
            replacements.append((symbol, new))
            new = symbol
        memo[node] = new
        return new

    return replacements, [rebuild(e) for e in exprs]


def differentiate_program(replacements, outputs, wrt, prefix="_d"):
    """Forward-mode symbolic derivative of a straight-line program.

    ``replacements`` is a list of assignments ``(symbol, expr)`` in order (as from
    :func:`shared_subexpressions`), ``outputs`` expressions in those symbols and the
    inputs.  Returns ``(replacements', jacobian)`` where ``jacobian[k][v]`` is
    ``d outputs[k] / d wrt[v]``, written with new assignments for the derivatives of
    the intermediate symbols, so the derivative stays as compact as the program.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> program, [out] = shared_subexpressions([sp.tanh(2 * x) * sp.tanh(2 * x)])
    >>> steps, jac = differentiate_program(program, [out], [x])
    >>> f = sp.lambdify([x], jac[0][0], "math", cse=lambda e: (steps, e))
    >>> round(f(0.3), 12), round(float(sp.diff(sp.tanh(2 * x)**2, x).subs(x, 0.3)), 12)
    (1.528610117132, 1.528610117132)
    """
    names = sp.numbered_symbols(prefix)
    zero = sp.Integer(0)
    # tangent[s][k] = d s / d wrt[k]; symbols with no entry do not depend on wrt.
    tangent = {v: [sp.Integer(1 if v == w else 0) for w in wrt] for v in wrt}
    program = list(replacements)

    def derivative(expr):
        """Tangents of a small expression by the sum, product and chain rules."""
        if expr.is_Symbol:
            return tangent.get(expr)
        if not expr.args or not (expr.free_symbols & tangent.keys()):
            return None
        parts = [derivative(arg) for arg in expr.args]
        if expr.is_Add:
            return [sp.Add(*[p[k] for p in parts if p is not None])
                    for k in range(len(wrt))]
        if expr.is_Mul:
            total = [zero] * len(wrt)
            for index, part in enumerate(parts):
                if part is None:
                    continue
                rest = sp.Mul(*(expr.args[:index] + expr.args[index + 1:]))
                total = [t + rest * p for t, p in zip(total, part)]
            return total
        total = [zero] * len(wrt)
        for index, part in enumerate(parts):
            if part is None:
                continue
            # d/d(arg) of the outer operation, with the argument as a fresh symbol
            # so sympy differentiates one small node, not the program.
            hole = sp.Dummy()
            args = list(expr.args)
            args[index] = hole
            outer = sp.diff(expr.func(*args), hole).subs(hole, expr.args[index])
            total = [t + outer * p for t, p in zip(total, part)]
        return total

    for symbol, expr in replacements:
        values = derivative(expr)
        if values is None:
            continue
        named = []
        for value in values:
            if value == 0:
                named.append(zero)
            else:
                name = next(names)
                program.append((name, value))
                named.append(name)
        tangent[symbol] = named
    jacobian = []
    for out in outputs:
        values = derivative(sp.sympify(out))
        jacobian.append([zero] * len(wrt) if values is None else values)
    return program, jacobian



def _plain_arguments(arguments):
    """Plain identifiers for lists of symbols: ``(rename, plain lists)``.

    Parameter names such as ``W1_{0,1}`` are not Python identifiers; renaming them
    while the program is built spares ``lambdify`` from rewriting the expressions.
    """
    rename, plain_arguments = {}, []
    for k, group in enumerate(arguments):
        plain = [sp.Symbol(f"_a{k}_{i}") for i in range(len(group))]
        rename.update(zip(group, plain))
        plain_arguments.append(plain)
    return rename, plain_arguments


def _lambdify_program(plain_arguments, outputs, modules, program):
    """``lambdify`` of ``outputs`` after the straight-line ``program`` (assignments)."""
    # lambdify's own printer, but printing sums in stored order: sorting the terms of
    # thousands of assignments costs more than everything else here.
    printer_class = MpmathPrinter if "mpmath" in modules else NumPyPrinter
    user_functions = {name: name for m in modules if isinstance(m, dict) for name in m}
    printer = printer_class({"fully_qualified_modules": False, "inline": True,
                             "allow_unknown_functions": True,
                             "user_functions": user_functions, "order": "none"})
    return sp.lambdify(plain_arguments, outputs, modules=modules, printer=printer,
                       cse=lambda exprs: (program, exprs))


class CompiledNetwork:
    """Numeric per-sample terms of a :class:`~symbolic_inversion.network.Network`.

    Examples
    ========

    >>> import mpmath
    >>> from symbolic_inversion import Network, compile_network
    >>> neuron = compile_network(Network([1, 1], "tanh"))
    >>> with mpmath.workdps(30):
    ...     f, B = neuron.terms([mpmath.mpf("0.5"), mpmath.mpf("0.5")], [mpmath.mpf("0.6")])
    ...     print(mpmath.nstr(f[0], 20), mpmath.nstr(B[1][0], 20))
    0.66403677026784896368 0.55905516773224397854
    """

    def __init__(self, network):
        self.network = network
        self.theta_symbols = network.parameter_symbols()
        self.x_symbols = list(network.sample_symbols(0)[0])
        self.f = network.forward(self.x_symbols)
        self.B = network.output_jacobian_transpose(self.x_symbols)
        self.y_symbols = list(network.sample_symbols(0)[1])
        self._functions = {}

    def __repr__(self):
        return f"CompiledNetwork({self.network!r})"

    def _repr_html_(self):
        from .report.display import compiled_html
        return compiled_html(self)

    def _program(self, kind):
        """The straight-line program of ``kind`` (cached, shared by every target).

        ``"terms"``: ``f`` and ``B``, arguments ``(theta, x)``.  ``"jacobian"``:
        d/dx of the per-sample ``B (f - y)``, arguments ``(theta, x, y)``, obtained by
        differentiating the program (forward mode), not the expanded expressions.
        """
        key = ("program", kind)
        if key not in self._functions:
            arguments = [self.theta_symbols, self.x_symbols, self.y_symbols]
            if kind == "terms":
                arguments = arguments[:2]
                outputs = list(self.f) + list(self.B)
            else:
                outputs = list(self.B * (self.f - sp.Matrix(self.y_symbols)))
            rename, plain = _plain_arguments(arguments)
            program, outputs = shared_subexpressions(outputs, rename=rename)
            if kind == "jacobian":
                program, jacobian = differentiate_program(program, outputs, plain[1])
                outputs = [entry for row in jacobian for entry in row]
            self._functions[key] = (plain, program, outputs)
        return self._functions[key]

    def _compiled(self, kind, target):
        key = (kind, target)
        if key not in self._functions:
            modules = {"mpmath": _MPMATH_MODULES, "numpy": _NUMPY_MODULES}[target]
            plain, program, outputs = self._program(kind)
            self._functions[key] = _lambdify_program(plain, outputs, modules, program)
        return self._functions[key]

    def _function(self, target):
        return self._compiled("terms", target)

    def _jacobian_function(self, target):
        return self._compiled("jacobian", target)

    def sample_jacobian(self, theta, x, y):
        """Jacobian of the per-sample ``B (f - y)`` with respect to ``(x, y)`` (mpmath).

        A ``num_parameters x (input_width + output_width)`` list of rows; the label
        columns are ``-B`` (the system is affine in the labels).
        """
        flat = self._jacobian_function("mpmath")(list(theta), list(x), list(y))
        _, B = self.terms(theta, x)
        d = self.network.input_width
        return [flat[p * d:(p + 1) * d] + [-b for b in B[p]]
                for p in range(self.network.num_parameters)]

    def terms(self, theta, x, target="mpmath"):
        """``(f, B)`` at parameters ``theta`` and one input ``x``.

        ``f`` is a list of ``output_width`` values, ``B`` a list of ``num_parameters``
        rows of ``output_width`` values.  With ``target="numpy"`` each entry of ``x``
        may be an array (one entry per sample) and the results broadcast accordingly.
        """
        values = self._function(target)(list(theta), list(x))
        m = self.network.output_width
        f, flat_B = values[:m], values[m:]
        if target == "numpy":
            shape = np.shape(np.asarray(x[0]))
            f = [np.broadcast_to(np.asarray(v, dtype=float), shape) for v in f]
            flat_B = [np.broadcast_to(np.asarray(v, dtype=float), shape) for v in flat_B]
        B = [flat_B[p * m:(p + 1) * m] for p in range(self.network.num_parameters)]
        return f, B

    def half_gradient(self, theta, x, y, target="mpmath"):
        """Per-sample ``B (f - y)``, a list of ``num_parameters`` values."""
        f, B = self.terms(theta, x, target)
        residual = [fo - yo for fo, yo in zip(f, y)]
        return [sum((b * r for b, r in zip(row, residual)), 0 * residual[0])
                for row in B]

    def mean_gradient(self, theta, inputs, labels, target="mpmath"):
        """The MSE gradient ``(2/n) sum_i B_i (f_i - y_i)`` over the given samples."""
        n = len(inputs)
        if target == "numpy":
            columns_x = [np.asarray([x[d] for x in inputs], dtype=float)
                         for d in range(self.network.input_width)]
            columns_y = [np.asarray([y[o] for y in labels], dtype=float)
                         for o in range(self.network.output_width)]
            per_sample = self.half_gradient(theta, columns_x, columns_y, target)
            return [2 * float(np.sum(g)) / n for g in per_sample]
        total = [mpmath.mpf(0)] * self.network.num_parameters
        for x, y in zip(inputs, labels):
            total = [t + g for t, g in zip(total, self.half_gradient(theta, x, y, target))]
        return [2 * t / n for t in total]


@boundary("compile_network")
@lru_cache(maxsize=64)
def compile_network(network):
    """The cached :class:`CompiledNetwork` of ``network`` (networks are hashable)."""
    return CompiledNetwork(network)


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
        if expr.exp == sp.S.Half:
            return f"sqrt({self._print(expr.base)})"
        if not expr.exp.is_Integer:
            raise NotSupportedError(f"layer-wise program: non-integer power in {expr}")
        return f"ipow({self._print(expr.base)}, {int(expr.exp)})"

    def _print_call(self, expr):
        return f"{type(expr).__name__}({', '.join(self._print(a) for a in expr.args)})"

    _print_Heaviside = _print_Max = _print_Min = _print_DiracDelta = _print_call


class _Activation:
    """One activation compiled for one arithmetic: ``value(z)``, ``slope(z, a)`` and
    ``curvature(z, a, s)`` (d/dz of the slope along the activation, ``s`` the slope) on
    arrays; ``slope`` is
    ``None`` when it is 1 and ``curvature`` ``None`` when it is 0 (nothing to multiply)."""

    def __init__(self, name, arithmetic):
        from .network import ACTIVATIONS
        activation = ACTIVATIONS[name]
        z, a = sp.Symbol("z"), sp.Symbol("a")
        value = activation.symbolic(z)
        slope = sp.sympify(activation.derivative(z, a))
        s = sp.Symbol("s")  # the slope's value, computed once
        curvature = sp.diff(slope, z) + sp.diff(slope, a) * s
        kinked = value.has(sp.Heaviside, sp.Max, sp.Min)
        if kinked and arithmetic.is_complex:
            raise NotSupportedError(f"activation {name} is not analytic: no {arithmetic.name} "
                                    f"(complex) evaluation; use a real arithmetic")
        if not arithmetic.is_interval:
            # The kink has measure zero; off it the step's derivative vanishes.
            curvature = curvature.replace(lambda e: isinstance(e, sp.DiracDelta),
                                          lambda e: sp.Integer(0))
        namespace = arithmetic.functions()
        if arithmetic.dtype == object:
            # Constants as 1-element arrays of the arithmetic's numbers: ``c * array``
            # then multiplies number by number; an mpf or int on the left converts the
            # array (mpmath) or takes the slow mixed-type path (measured 10x and 2x
            # slower).  Not 0-d: numpy unwraps 0-d results (``-c`` would be an mpf).
            def rational(p, q=1, number=arithmetic.rational):
                return np.array([number(p, q)], dtype=object)
            namespace = dict(namespace, Rational=rational)

        def compile_(args, expr):
            return sp.lambdify(args, expr, modules=[namespace], printer=_ArrayPrinter)

        self.name = name
        self.value = compile_([z], value)
        self.slope = None if slope == 1 else compile_([z, a], slope)
        self.curvature = None if curvature == 0 else compile_([z, a, s], curvature)


def _times(array, factor):
    """``array * factor``, where a factor of ``None`` means 1."""
    return array if factor is None else array * factor


def _infer_arithmetic(*arrays):
    """The arithmetic of the entries of ``arrays`` (complex wins over real)."""
    from .arithmetic import get_arithmetic
    names = []
    for array in arrays:
        array = np.asarray(array)
        if array.dtype == complex:
            names.append("complex128")
        elif array.dtype.kind in "fiub":
            names.append("float64")
        elif array.size:
            names.append(_number_kind(array.flat[0]))
    for complex_name in ("acb", "mpc", "complex128"):
        if complex_name in names:
            return get_arithmetic(complex_name)
    for name in ("iv", "arb", "mpmath", "float64"):
        if name in names:
            return get_arithmetic(name)
    return get_arithmetic("float64")


def _number_kind(value):
    if isinstance(value, mpmath.mpc):
        return "mpc"
    if isinstance(value, mpmath.mpf):
        return "mpmath"
    if isinstance(value, mpmath.iv.mpf):
        return "iv"
    kind = type(value).__name__
    if kind in ("arb", "acb"):
        return kind
    return "complex128" if isinstance(value, complex) else "float64"


class LayerwiseProgram:
    """The inversion system's terms for one network, layer by layer, in any arithmetic.

    Every layer is one (batched) matrix product over all steps and samples at once; only
    the activations come from SymPy: each activation, its slope and the slope's
    derivative are derived symbolically (``Activation.symbolic`` and ``.derivative``)
    and compiled for the arithmetic (:meth:`Arithmetic.functions`: numpy ufuncs for
    float64/complex128, elementwise mpmath, python-flint or interval functions on
    ``dtype=object`` arrays).  The Jacobian with respect to the data is the forward-mode
    derivative of backpropagation for the inputs, and backpropagation alone for the
    labels (they enter linearly).

    The methods take ``thetas`` ``(E, P)``, inputs ``X`` ``(n, d)``, labels ``Y``
    ``(n, m)`` and ``batches``: ``None`` (every step uses every sample), one list of
    sample indices per step, or an ``(E, n)`` 0/1 mask.  ``arithmetic`` (an
    :class:`~symbolic_inversion.arithmetic.Arithmetic` or a name) defaults to the one of
    the arrays' entries; precision is whatever the caller's ``arithmetic.workdps`` set.

    Examples
    ========

    >>> import numpy as np
    >>> from symbolic_inversion import Network, compile_network
    >>> from symbolic_inversion.codegen import LayerwiseProgram
    >>> net = Network([2, 3, 1], ["tanh", "identity"])
    >>> theta = np.linspace(-0.5, 0.7, net.num_parameters)
    >>> X, Y = np.array([[0.3, -0.6], [0.8, 0.1]]), np.array([[0.2], [-0.5]])
    >>> fast = LayerwiseProgram(net).half_gradient_sums(theta[None, :], X, Y)[0]
    >>> slow = [sum(g) for g in compile_network(net).half_gradient(theta, X.T, Y.T, "numpy")]
    >>> bool(np.allclose(fast, slow, rtol=1e-13, atol=1e-15))
    True
    """

    default_arithmetic = None

    def __init__(self, network):
        self.network = network
        self._compiled = {}

    def __repr__(self):
        return f"{type(self).__name__}({self.network!r})"

    def _repr_html_(self):
        from .report.display import compiled_html
        return compiled_html(self)

    # -- set-up ---------------------------------------------------------------------

    def arithmetic(self, arithmetic, *arrays):
        from .arithmetic import get_arithmetic
        if arithmetic is None:
            arithmetic = self.default_arithmetic
        if arithmetic is None:
            return _infer_arithmetic(*arrays)
        return get_arithmetic(arithmetic)

    def activations(self, arithmetic):
        """The network's activations compiled for ``arithmetic`` (cached)."""
        if arithmetic.name not in self._compiled:
            self._compiled[arithmetic.name] = [_Activation(name, arithmetic)
                                               for name in self.network.activations]
        return self._compiled[arithmetic.name]

    def _prepare(self, arithmetic, thetas, arrays):
        arithmetic = self.arithmetic(arithmetic, thetas, *arrays)
        convert = arithmetic.asarray if arithmetic.dtype != object else _object_array(
            arithmetic)
        thetas = np.atleast_2d(convert(thetas))
        return arithmetic, thetas, [convert(a) for a in arrays]

    def _layers(self, thetas):
        E = len(thetas)
        blocks = []
        for (weights, bias), fan_in, fan_out in zip(
                self.network.layer_slices(), self.network.layers[:-1],
                self.network.layers[1:]):
            W = thetas[:, weights].reshape(E, fan_out, fan_in)
            b = thetas[:, bias] if bias is not None else None
            blocks.append((W, b))
        return blocks

    def layout(self, steps, samples, batches):
        """``(S, valid)``: ``S[e, k]`` the ``k``-th sample of step ``e``'s batch (padded
        with sample 0), ``valid`` the ``(E, nb)`` mask of real entries (``None``: all)."""
        if batches is None:
            return np.broadcast_to(np.arange(samples), (steps, samples)), None
        if isinstance(batches, np.ndarray) and batches.ndim == 2:
            batches = [np.flatnonzero(row) for row in batches]
        batches = [list(batch) for batch in batches]
        if len(batches) != steps:
            raise InputError(f"batches: expected one batch per step ({steps}), "
                             f"got {len(batches)}")
        width = max((len(batch) for batch in batches), default=0)
        S = np.zeros((steps, width), dtype=int)
        valid = np.zeros((steps, width), dtype=bool)
        for e, batch in enumerate(batches):
            if len(set(batch)) != len(batch) or any(not 0 <= i < samples for i in batch):
                raise InputError(f"batches[{e}]: sample indices must be distinct and in "
                                 f"range(0, {samples}), got {batch}")
            S[e, :len(batch)] = batch
            valid[e, :len(batch)] = True
        return S, (None if valid.all() else valid)

    # -- forward and backward ----------------------------------------------------------

    def _forward(self, arithmetic, blocks, X, S):
        """Activations ``posts`` (input first) and ``(z, a, slope)`` per layer."""
        h = X[S]                                                    # (E, nb, d)
        posts, slopes = [h], []
        for (W, b), activation in zip(blocks, self.activations(arithmetic)):
            z = np.matmul(posts[-1], W.transpose(0, 2, 1))
            if b is not None:
                z = z + b[:, None, :]
            a = activation.value(z)
            posts.append(a)
            slope = activation.slope(z, a) if activation.slope is not None else None
            slopes.append((z, a, slope))
        return posts, slopes

    def _flatten(self, pieces, axis):
        flat = []
        for grad_W, grad_b in reversed(pieces):
            flat.append(grad_W)
            if grad_b is not None:
                flat.append(grad_b)
        return np.concatenate(flat, axis=axis)

    def forward(self, thetas, X, batches=None, arithmetic=None):
        """The network's outputs ``f`` at every step and batch entry: ``(E, nb, m)``."""
        arithmetic, thetas, (X,) = self._prepare(arithmetic, thetas, [X])
        S, _ = self.layout(len(thetas), len(X), batches)
        posts, _ = self._forward(arithmetic, self._layers(thetas), X, S)
        return posts[-1]

    def half_gradient_sums(self, thetas, X, Y, batches=None, arithmetic=None):
        """``sum_{i in batch j} B_i (f_i - y_i)`` at every step ``j``: an ``(E, P)`` array.

        ``thetas`` is ``(E, P)``, ``X`` ``(n, d)``, ``Y`` ``(n, m)``.
        """
        return self.evaluate(thetas, X, Y, batches, arithmetic, jacobian=False)[0]

    def mean_gradient(self, theta, X, Y, arithmetic=None):
        """The MSE gradient ``(2/n) sum_i B_i (f_i - y_i)`` at one parameter vector
        ``theta`` (``P``) over the samples ``X`` ``(n, d)``, ``Y`` ``(n, m)``."""
        arithmetic, thetas, (X, Y) = self._prepare(arithmetic, [theta], [X, Y])
        sums = self.evaluate(thetas, X, Y, None, arithmetic, jacobian=False)[0][0]
        return sums * arithmetic.rational(2, len(X))

    def jacobian(self, thetas, X, Y, batches=None, arithmetic=None):
        """d/d(data) of the per-step sums: ``(E * P, n * (d + m))``, the layout of
        :meth:`InversionSystem.jacobian` (rows step by step, columns sample by sample,
        inputs then labels)."""
        return self.evaluate(thetas, X, Y, batches, arithmetic, jacobian=True)[1]

    def evaluate(self, thetas, X, Y, batches=None, arithmetic=None, jacobian=True):
        """``(sums, J)``: :meth:`half_gradient_sums` and (if asked) :meth:`jacobian`,
        sharing one forward pass."""
        arithmetic, thetas, (X, Y) = self._prepare(arithmetic, thetas, [X, Y])
        E, n = len(thetas), len(X)
        S, valid = self.layout(E, n, batches)
        blocks = self._layers(thetas)
        posts, slopes = self._forward(arithmetic, blocks, X, S)
        residual = posts[-1] - Y[S]
        delta = _times(residual, slopes[-1][2])
        masked = delta if valid is None else delta * valid[:, :, None].astype(int)
        sums = self._backward_sums(blocks, posts, slopes, masked)
        if not jacobian:
            return sums, None
        J = self._jacobian(arithmetic, blocks, posts, slopes, residual, delta, S, valid, n)
        return sums, J

    def _backward_sums(self, blocks, posts, slopes, delta):
        pieces = []
        E = len(delta)
        for layer in reversed(range(self.network.depth)):
            grad_b = delta.sum(axis=1) if self.network.bias else None
            grad_W = np.matmul(delta.transpose(0, 2, 1), posts[layer])
            pieces.append((grad_W.reshape(E, -1), grad_b))
            if layer:
                delta = _times(np.matmul(delta, blocks[layer][0]), slopes[layer - 1][2])
        return self._flatten(pieces, axis=1)

    def _jacobian(self, arithmetic, blocks, posts, slopes, residual, delta, S, valid, n):
        network = self.network
        d, m = network.input_width, network.output_width
        k = d + m
        E, nb = S.shape
        activations = self.activations(arithmetic)
        # Forward tangents along the d input coordinates of each sample: dposts[l] is
        # (E, nb, d, width_l); the first layer's tangent is the identity.
        dposts, dslopes = [None], []
        for layer, (W, _) in enumerate(blocks):
            WT = W.transpose(0, 2, 1)[:, None]                       # (E, 1, in, out)
            if layer == 0:
                dz = np.broadcast_to(WT, (E, nb) + WT.shape[2:])
            else:
                dz = np.matmul(dposts[-1], WT)
            z, a, s = slopes[layer]
            dposts.append(dz if s is None else s[:, :, None, :] * dz)
            curvature = activations[layer].curvature
            dslopes.append(None if curvature is None else
                           curvature(z, a, 1 if s is None else s)[:, :, None, :] * dz)
        # Tangents of delta: inputs by the chain rule, labels d(f - y)/dy_o = -e_o.
        s_out, ds_out = slopes[-1][2], dslopes[-1]
        ddelta_x = _times(dposts[-1], None if s_out is None else s_out[:, :, None, :])
        if ds_out is not None:
            ddelta_x = ddelta_x + residual[:, :, None, :] * ds_out
        ddelta_y = arithmetic.zeros((E, nb, m, m))
        for o in range(m):
            ddelta_y[:, :, o, o] = -1 if s_out is None else -s_out[:, :, o]
        ddelta = np.concatenate([np.broadcast_to(ddelta_x, (E, nb, d, m)),
                                 np.broadcast_to(ddelta_y, (E, nb, m, m))], axis=2)
        pieces = []
        for layer in reversed(range(network.depth)):
            h = posts[layer]
            grad_W = ddelta[:, :, :, :, None] * h[:, :, None, None, :]   # (E, nb, k, o, i)
            if layer == 0:
                for c in range(d):
                    grad_W[:, :, c, :, c] += delta
            else:
                grad_W[:, :, :d] += delta[:, :, None, :, None] * dposts[layer][:, :, :, None, :]
            pieces.append((grad_W.reshape(E, nb, k, -1), ddelta if network.bias else None))
            if layer:
                W = blocks[layer][0]
                _, _, s_prev = slopes[layer - 1]
                back = np.matmul(delta, W)
                dback = np.matmul(ddelta, W[:, None])
                delta = _times(back, s_prev)
                ddelta = _times(dback, None if s_prev is None else s_prev[:, :, None, :])
                if dslopes[layer - 1] is not None:
                    ddelta[:, :, :d] += back[:, :, None, :] * dslopes[layer - 1]
        values = self._flatten(pieces, axis=3)                        # (E, nb, k, P)
        P = values.shape[3]
        if batches_are_identity(S, n):
            return values.transpose(0, 3, 1, 2).reshape(E * P, n * k)
        J = arithmetic.zeros((E, P, n, k))
        if valid is None:
            e_index, b_index = np.indices((E, nb)).reshape(2, -1)
        else:
            e_index, b_index = np.nonzero(valid)
        J[e_index, :, S[e_index, b_index], :] = values[e_index, b_index].transpose(0, 2, 1)
        return J.reshape(E * P, n * k)

    def output_terms(self, thetas, X, batches=None, arithmetic=None):
        """``(f, B, S, valid)``: outputs ``(E, nb, m)`` and ``B = J_theta f^T`` as
        ``(E, nb, P, m)`` for every batch entry (sample ``S[e, k]``), by backpropagating
        each output direction."""
        arithmetic, thetas, (X,) = self._prepare(arithmetic, thetas, [X])
        E, n = len(thetas), len(X)
        S, valid = self.layout(E, n, batches)
        blocks = self._layers(thetas)
        posts, slopes = self._forward(arithmetic, blocks, X, S)
        m = self.network.output_width
        nb = S.shape[1]
        s_out = slopes[-1][2]
        delta = arithmetic.zeros((E, nb, m, m))                       # (E, nb, m dirs, o)
        for o in range(m):
            delta[:, :, o, o] = 1 if s_out is None else s_out[:, :, o]
        pieces = []
        for layer in reversed(range(self.network.depth)):
            h = posts[layer]
            grad_W = delta[:, :, :, :, None] * h[:, :, None, None, :]
            pieces.append((grad_W.reshape(E, nb, m, -1),
                           delta if self.network.bias else None))
            if layer:
                delta = _times(np.matmul(delta, blocks[layer][0][:, None]),
                               None if slopes[layer - 1][2] is None
                               else slopes[layer - 1][2][:, :, None, :])
        B = self._flatten(pieces, axis=3).transpose(0, 1, 3, 2)      # (E, nb, P, m)
        return posts[-1], B, S, valid


def batches_are_identity(S, n):
    """Whether the layout ``S`` is every sample, in order, at every step."""
    return S.shape[1] == n and (S.strides[0] == 0 or (S == np.arange(n)).all())


def _object_array(arithmetic):
    def convert(values):
        array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) \
            else values
        if array.dtype == object and array.size and _number_kind(array.flat[0]) != "float64":
            return array  # already numbers of some arithmetic: used as they are
        return arithmetic.asarray(array)
    return convert


class LayerwiseFloat64(LayerwiseProgram):
    """:class:`LayerwiseProgram` in float64 (the name of version 0.1.0)."""

    default_arithmetic = "float64"


@lru_cache(maxsize=64)
def layerwise_program(network):
    """The cached :class:`LayerwiseProgram` of ``network``."""
    return LayerwiseProgram(network)
