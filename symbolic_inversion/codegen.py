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
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import MpmathPrinter

__all__ = ["CompiledNetwork", "compile_network", "shared_subexpressions",
           "differentiate_program", "LayerwiseFloat64"]


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


@lru_cache(maxsize=64)
def compile_network(network):
    """The cached :class:`CompiledNetwork` of ``network`` (networks are hashable)."""
    return CompiledNetwork(network)


class LayerwiseFloat64:
    """The inversion system's residual and Jacobian in float64, vectorized by layer.

    The scalar programs of :class:`CompiledNetwork` cost one numpy call per neuron
    and connection; here every layer is one matrix product over all steps and samples
    at once, and only the activations come from SymPy: each activation, its slope and
    the slope's derivative are derived symbolically (``Activation.symbolic`` and
    ``.derivative``) and lambdified.  The Jacobian with respect to the data is the
    forward-mode derivative of backpropagation (one tangent per input and label
    coordinate).  Use it for float64 work (multistart, screening); the mpmath programs
    remain the reference at high precision.

    Examples
    ========

    >>> import numpy as np
    >>> from symbolic_inversion import Network, compile_network
    >>> from symbolic_inversion.codegen import LayerwiseFloat64
    >>> net = Network([2, 3, 1], ["tanh", "identity"])
    >>> theta = np.linspace(-0.5, 0.7, net.num_parameters)
    >>> X, Y = np.array([[0.3, -0.6], [0.8, 0.1]]), np.array([[0.2], [-0.5]])
    >>> fast = LayerwiseFloat64(net).half_gradient_sums(theta[None, :], X, Y)[0]
    >>> slow = [sum(g) for g in compile_network(net).half_gradient(theta, X.T, Y.T, "numpy")]
    >>> bool(np.allclose(fast, slow, rtol=1e-13, atol=1e-15))
    True
    """

    def __init__(self, network):
        from .network import ACTIVATIONS
        self.network = network
        z, a = sp.Symbol("z"), sp.Symbol("a")
        self._activations = []
        for name in network.activations:
            activation = ACTIVATIONS[name]
            value = activation.symbolic(z)
            slope = activation.derivative(z, a)
            # d/dz of the slope along the activation: a depends on z through value.
            curvature = sp.diff(slope, z) + sp.diff(slope, a) * slope
            self._activations.append(tuple(
                sp.lambdify(args, expr, modules=_NUMPY_MODULES)
                for args, expr in (([z], value), ([z, a], slope), ([z, a], curvature))))

    def _layers(self, thetas):
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        blocks = []
        for (weights, bias), fan_in, fan_out in zip(
                self.network.layer_slices(), self.network.layers[:-1],
                self.network.layers[1:]):
            W = thetas[:, weights].reshape(len(thetas), fan_out, fan_in)
            b = thetas[:, bias] if bias is not None else None
            blocks.append((W, b))
        return blocks

    @staticmethod
    def _broadcast(value, like):
        return np.broadcast_to(np.asarray(value, dtype=float), like.shape)

    def _forward(self, blocks, X):
        E = blocks[0][0].shape[0]
        h = np.broadcast_to(np.asarray(X, dtype=float), (E,) + np.shape(X))
        posts, slopes = [h], []
        for (W, b), (value, slope, _) in zip(blocks, self._activations):
            z = np.einsum("eoi,eni->eno", W, posts[-1])
            if b is not None:
                z = z + b[:, None, :]
            a = self._broadcast(value(z), z)
            posts.append(a)
            slopes.append((z, a, self._broadcast(slope(z, a), z)))
        return posts, slopes

    def half_gradient_sums(self, thetas, X, Y):
        """``sum_i B_i (f_i - y_i)`` at every step: an ``(E, P)`` array.

        ``thetas`` is ``(E, P)``, ``X`` ``(n, d)``, ``Y`` ``(n, m)``.
        """
        blocks = self._layers(thetas)
        posts, slopes = self._forward(blocks, X)
        delta = (posts[-1] - np.asarray(Y, dtype=float)) * slopes[-1][2]
        pieces = []
        for layer in reversed(range(self.network.depth)):
            grad_b = delta.sum(axis=1) if self.network.bias else None
            pieces.append((np.einsum("eno,eni->eoi", delta, posts[layer]), grad_b))
            if layer:
                delta = np.einsum("eno,eoi->eni", delta, blocks[layer][0]) \
                    * slopes[layer - 1][2]
        E = len(blocks[0][0])
        flat = []
        for grad_W, grad_b in reversed(pieces):
            flat.append(grad_W.reshape(E, -1))
            if grad_b is not None:
                flat.append(grad_b)
        return np.concatenate(flat, axis=1)

    def jacobian(self, thetas, X, Y):
        """d/d(data) of the per-step sums: ``(E * P, n * (d + m))``, the layout of
        :meth:`InversionSystem.jacobian` (rows step by step, columns sample by sample,
        inputs then labels)."""
        network = self.network
        d, m = network.input_width, network.output_width
        k = d + m
        blocks = self._layers(thetas)
        posts, slopes = self._forward(blocks, X)
        E, n = posts[0].shape[:2]
        # Tangents: one direction per input and label coordinate, for every sample.
        directions = np.eye(k)
        dposts = [np.broadcast_to(directions[:, :d], (E, n, k, d))]
        for layer, ((W, b), (_, _, curvature)) in enumerate(zip(blocks, self._activations)):
            z, a, s = slopes[layer]
            dz = np.einsum("eoi,enki->enko", W, dposts[-1])
            dposts.append(s[:, :, None, :] * dz)
            slopes[layer] = (z, a, s, self._broadcast(curvature(z, a), z)[:, :, None, :] * dz)
        residual = posts[-1] - np.asarray(Y, dtype=float)
        dresidual = dposts[-1] - directions[None, None, :, d:]
        z, a, s, ds = slopes[-1]
        delta = residual * s
        ddelta = dresidual * s[:, :, None, :] + residual[:, :, None, :] * ds
        pieces = []
        for layer in reversed(range(network.depth)):
            h, dh = posts[layer], dposts[layer]
            grad_W = (np.einsum("enko,eni->enkoi", ddelta, h)
                      + np.einsum("eno,enki->enkoi", delta, dh))
            pieces.append((grad_W.reshape(E, n, k, -1), ddelta if network.bias else None))
            if layer:
                W = blocks[layer][0]
                _, _, s_prev, ds_prev = slopes[layer - 1]
                back = np.einsum("eno,eoi->eni", delta, W)
                dback = np.einsum("enko,eoi->enki", ddelta, W)
                delta, ddelta = back * s_prev, dback * s_prev[:, :, None, :] \
                    + back[:, :, None, :] * ds_prev
        flat = []
        for grad_W, grad_b in reversed(pieces):
            flat.append(grad_W)
            if grad_b is not None:
                flat.append(grad_b)
        J = np.concatenate(flat, axis=3)           # (E, n, k, P)
        return J.transpose(0, 3, 1, 2).reshape(E * J.shape[3], n * k)
