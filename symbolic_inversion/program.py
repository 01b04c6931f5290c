r"""The one forward and backward program of a network, layer by layer, in any arithmetic.

Every numeric gradient of the toolkit goes through :class:`LayerwiseProgram`: simulation
(:mod:`~symbolic_inversion.simulate`), the inversion system and its Jacobian
(:mod:`~symbolic_inversion.system`), the judge, certificates, DP-SGD estimates and the
paper's tables.  What is simulated is exactly what is inverted.

The program is numpy code over arrays of one arithmetic's numbers
(:mod:`~symbolic_inversion.arithmetic`: float64, complex128, mpmath, python-flint
arb/acb, intervals, and exact rationals for piecewise-linear networks): each layer one
batched matrix product over all steps and samples at once (the arithmetic's own product
where it has a faster one, python-flint's ``fmpq_mat`` for rationals).  Only the activations and the loss's link come from SymPy: each activation's
value, slope and curvature are compiled from its SymPy expression
(:class:`~symbolic_inversion.activations.Activation`) for the arithmetic that asks
(:class:`~symbolic_inversion.activations.CompiledActivation`), and the loss
(:mod:`~symbolic_inversion.losses`) supplies
the link ``ell`` of the per-sample residual ``ell(f(x_i)) - y_i``.

The ReLU solver, exact simulation, the loss oracle and identifiability use it too: the
layers' values (:meth:`LayerwiseProgram.layer_values`), the loss itself
(:meth:`LayerwiseProgram.loss_value`) and the gradient, exactly on rationals.
"""

from functools import lru_cache

import mpmath
import numpy as np
import sympy as sp
from .activations import get_activation
from .errors import InputError

__all__ = ["LayerwiseProgram", "layerwise_program", "batches_are_identity"]


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
        elif array.dtype.kind == "f":
            names.append("float64")
        elif array.dtype.kind in "iub":
            names.append("integer")   # exact: goes with rationals and with floats
        elif array.size:
            names.append(_number_kind(array.flat[0]))
    for complex_name in ("acb", "mpc", "complex128"):
        if complex_name in names:
            return get_arithmetic(complex_name)
    # rounding wins over exactness: rationals only when every entry is exact
    for name in ("iv", "arb", "mpmath", "float64", "rational"):
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
    if kind in ("Fraction", "mpq", "fmpq"):
        return "rational"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return "integer"
    return "complex128" if isinstance(value, complex) else "float64"


class LayerwiseProgram:
    """The inversion system's terms for one network and loss, layer by layer, in any
    arithmetic.

    The *term* of sample ``i`` at step ``j`` is ``B_i (ell(f_i) - y_i)`` with ``B_i =
    J_theta f(x_i)^T`` and ``ell`` the loss's link (:mod:`~symbolic_inversion.losses`):
    the loss gradient of a batch is ``c`` times the sum of its terms.  Every layer is one
    (batched) matrix product over all steps and samples at once; only the activations
    come from SymPy: each activation, its slope and the slope's derivative are derived
    symbolically and compiled for the arithmetic (:meth:`Arithmetic.functions`: numpy
    ufuncs for float64/complex128, elementwise mpmath, python-flint or interval
    functions on ``dtype=object`` arrays).  The Jacobian with respect to the data is the
    forward-mode derivative of backpropagation for the inputs, and backpropagation alone
    for the labels (they enter linearly).

    The methods take ``thetas`` ``(E, P)``, inputs ``X`` ``(n, d)``, labels ``Y``
    ``(n, m)`` and ``batches``: ``None`` (every step uses every sample), one list of
    sample indices per step, or an ``(E, n)`` 0/1 mask.  ``arithmetic`` (an
    :class:`~symbolic_inversion.arithmetic.Arithmetic` or a name) defaults to the one of
    the arrays' entries; precision is whatever the caller's ``arithmetic.workdps`` set.

    Examples
    ========

    The MSE gradient of a 2-3-1 network against SymPy's derivative of the loss:

    >>> import numpy as np, sympy as sp
    >>> from symbolic_inversion import Network
    >>> net = Network([2, 3, 1], ["tanh", "identity"])
    >>> theta = np.linspace(-0.5, 0.7, net.num_parameters)
    >>> X, Y = np.array([[0.3, -0.6], [0.8, 0.1]]), np.array([[0.2], [-0.5]])
    >>> fast = LayerwiseProgram(net).mean_gradient(theta, X, Y)
    >>> symbols = net.parameter_symbols()
    >>> loss = net.loss([sp.Matrix(x) for x in X], [sp.Matrix(y) for y in Y])
    >>> slow = [float(sp.diff(loss, p).subs(dict(zip(symbols, theta)))) for p in symbols]
    >>> bool(np.allclose(fast, slow, rtol=1e-13, atol=1e-15))
    True

    Cross-entropy on three classes (one-hot labels; the softmax link):

    >>> net = Network([2, 3, 3], ["gelu", "identity"])
    >>> theta = np.linspace(-0.6, 0.8, net.num_parameters)
    >>> Y = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    >>> program = LayerwiseProgram(net, "cross_entropy")
    >>> loss = net.loss([sp.Matrix(x) for x in X], [sp.Matrix(y) for y in Y],
    ...                 loss="cross_entropy")
    >>> symbols = net.parameter_symbols()
    >>> slow = [float(sp.diff(loss, p).subs(dict(zip(symbols, theta)))) for p in symbols]
    >>> bool(np.allclose(program.mean_gradient(theta, X, Y), slow, rtol=1e-12, atol=1e-15))
    True
    """

    def __init__(self, network, loss="mse"):
        from .losses import get_loss
        self.network = network
        self.loss = get_loss(loss)
        self._compiled = {}
        # per weight layer: (weights slice, bias slice or None, fan_in, fan_out); the
        # program is called thousands of times per recovery on small arrays, so what does
        # not depend on the call is worked out once
        self._shapes = [(weights, bias, fan_in, fan_out) for (weights, bias), fan_in, fan_out
                        in zip(network.layer_slices(), network.layers[:-1],
                               network.layers[1:])]
        self._layouts = {}

    def __repr__(self):
        return f"LayerwiseProgram({self.network!r}, {self.loss.name!r})"

    def _repr_html_(self):
        from .report.display import program_html
        return program_html(self)

    # -- set-up ---------------------------------------------------------------------

    def arithmetic(self, arithmetic, *arrays):
        from .arithmetic import get_arithmetic
        if arithmetic is None:
            return _infer_arithmetic(*arrays)
        return get_arithmetic(arithmetic)

    def activations(self, arithmetic):
        """The network's activations compiled for ``arithmetic`` (cached)."""
        if arithmetic.name not in self._compiled:
            self._compiled[arithmetic.name] = [
                get_activation(name).compiled(arithmetic) for name in self.network.activations]
        return self._compiled[arithmetic.name]

    def _prepare(self, arithmetic, thetas, arrays):
        arithmetic = self.arithmetic(arithmetic, thetas, *arrays)
        convert = arithmetic.asarray if arithmetic.dtype != object else _object_array(
            arithmetic)
        thetas = np.atleast_2d(convert(thetas))
        return arithmetic, thetas, [convert(a) for a in arrays]

    def blocks(self, theta):
        """``[(W, b), ...]`` of one parameter vector ``theta`` (trace order): ``W`` a
        ``(fan_out, fan_in)`` array, ``b`` a vector or ``None``; entries as given."""
        theta = np.asarray(theta, dtype=object) if not isinstance(theta, np.ndarray) \
            else theta
        return [(theta[weights].reshape(fan_out, fan_in),
                 None if bias is None else theta[bias])
                for weights, bias, fan_in, fan_out in self._shapes]

    def _layers(self, thetas):
        E = len(thetas)
        return [(thetas[:, weights].reshape(E, fan_out, fan_in),
                 None if bias is None else thetas[:, bias])
                for weights, bias, fan_in, fan_out in self._shapes]

    def layout(self, steps, samples, batches):
        """``(S, valid)``: ``S[e, k]`` the ``k``-th sample of step ``e``'s batch (padded
        with sample 0), ``valid`` the ``(E, nb)`` mask of real entries (``None``: all)."""
        if batches is None:
            key = (steps, samples)
            if key not in self._layouts:
                self._layouts[key] = np.broadcast_to(np.arange(samples), key)
            return self._layouts[key], None
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

    def _forward(self, arithmetic, blocks, X, S, slopes_wanted=True):
        """Activations ``posts`` (input first) and ``(z, a, slope)`` per layer (``slope``
        ``None`` throughout when not ``slopes_wanted``: values only).  ``blocks`` are
        stacks ``(E, fan_out, fan_in)`` with the layout ``S``, or one parameter vector's
        ``(fan_out, fan_in)`` blocks on every sample (``S`` ``None``)."""
        h = X if S is None else X[S]                        # (n, d) or (E, nb, d)
        posts, slopes = [h], []
        matmul = arithmetic.matmul
        for (W, b), activation in zip(blocks, self.activations(arithmetic)):
            z = matmul(posts[-1], W.swapaxes(-1, -2))
            if b is not None:
                z = z + b[..., None, :]
            a = activation.value(z)
            posts.append(a)
            slope = activation.slope(z, a) if activation.slope is not None and \
                slopes_wanted else None
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
        posts, _ = self._forward(arithmetic, self._layers(thetas), X, S, False)
        return posts[-1]

    def layer_values(self, thetas, X, batches=None, arithmetic=None):
        """``(pre, post)``: the pre-activations ``pre[l]`` ``(E, nb, width)`` of every
        weight layer and the activations ``post`` (the inputs first, ``post[-1]`` the
        outputs), at every step and batch entry.

        On rationals a relu network's values are exact, kinks included (``relu(0) =
        0``, and :meth:`mean_gradient` takes ``relu'(0) = 0``):

        >>> from symbolic_inversion import Network
        >>> net = Network([1, 2, 1], ["relu", "identity"])
        >>> theta = ["1", "-1", "0", "0", "1", "1", "0"]
        >>> pre, post = layerwise_program(net).layer_values(theta, [["2"], ["0"]],
        ...                                                 arithmetic="rational")
        >>> [[str(v) for v in row] for row in pre[0][0]], [str(v) for v in post[-1][0, :, 0]]
        ([['2', '-2'], ['0', '0']], ['2', '0'])
        """
        arithmetic, thetas, (X,) = self._prepare(arithmetic, thetas, [X])
        S, _ = self.layout(len(thetas), len(X), batches)
        posts, slopes = self._forward(arithmetic, self._layers(thetas), X, S, False)
        return [z for z, _, _ in slopes], posts

    def loss_value(self, theta, X, Y, arithmetic=None, loss=None):
        """The training loss at ``theta`` (``P``) over the batch ``X`` ``(n, d)``, ``Y``
        ``(n, m)``: :meth:`Loss.value <symbolic_inversion.losses.Loss.value>` of the
        outputs; ``loss`` (default: the program's) gives the reduction.

        >>> from symbolic_inversion import Network
        >>> net = Network([1, 1, 1], ["relu", "identity"])
        >>> print(layerwise_program(net).loss_value([1, 0, 1, 0], [["2"]], [["3"]], "rational"))
        1
        """
        from .losses import get_loss
        arithmetic, thetas, (X, Y) = self._prepare(arithmetic, [theta], [X, Y])
        return self.converted_loss_value(thetas, X, Y, arithmetic,
                                         self.loss if loss is None else get_loss(loss))

    def converted_loss_value(self, thetas, X, Y, arithmetic, loss):
        """:meth:`loss_value` on arrays already of ``arithmetic`` (``thetas`` ``(1, P)``)
        and a :class:`~symbolic_inversion.losses.Loss`: for a caller that evaluates the
        loss of one dataset at many parameter vectors (a loss black box) and converts its
        data once."""
        # one parameter vector, every sample once: 2-D blocks and no batch layout (the
        # (E, nb, .) stacks cost more than the arithmetic on a small network)
        posts, _ = self._forward(arithmetic, self.blocks(thetas[0]), X, None, False)
        return loss.value(posts[-1], Y, arithmetic)

    def term_sums(self, thetas, X, Y, batches=None, arithmetic=None):
        """``sum_{i in batch j} B_i (ell(f_i) - y_i)`` at every step ``j``: an ``(E, P)``
        array.  ``thetas`` is ``(E, P)``, ``X`` ``(n, d)``, ``Y`` ``(n, m)``.
        """
        return self.evaluate(thetas, X, Y, batches, arithmetic, jacobian=False)[0]

    def mean_gradient(self, theta, X, Y, arithmetic=None, loss=None):
        """The loss gradient ``c sum_i B_i (ell(f_i) - y_i)`` at one parameter vector
        ``theta`` (``P``) over the batch ``X`` ``(n, d)``, ``Y`` ``(n, m)``; ``loss``
        (default: the program's, at its default reduction) gives ``c``."""
        from .losses import get_loss
        arithmetic, thetas, (X, Y) = self._prepare(arithmetic, [theta], [X, Y])
        sums = self.evaluate(thetas, X, Y, None, arithmetic, jacobian=False)[0][0]
        factor = (self.loss if loss is None else get_loss(loss)).factor(
            len(X), self.network.output_width)
        return sums * arithmetic.rational(factor.numerator, factor.denominator)

    def jacobian(self, thetas, X, Y, batches=None, arithmetic=None):
        """d/d(data) of the per-step sums: ``(E * P, n * (d + m))``, the layout of
        :meth:`InversionSystem.jacobian` (rows step by step, columns sample by sample,
        inputs then labels)."""
        return self.evaluate(thetas, X, Y, batches, arithmetic, jacobian=True)[1]

    def evaluate(self, thetas, X, Y, batches=None, arithmetic=None, jacobian=True):
        """``(sums, J)``: :meth:`term_sums` and (if asked) :meth:`jacobian`, sharing one
        forward pass."""
        arithmetic, thetas, (X, Y) = self._prepare(arithmetic, thetas, [X, Y])
        E, n = len(thetas), len(X)
        S, valid = self.layout(E, n, batches)
        blocks = self._layers(thetas)
        posts, slopes = self._forward(arithmetic, blocks, X, S)
        target = self.loss.link(posts[-1], arithmetic)
        residual = target - Y[S]
        delta = _times(residual, slopes[-1][2])
        masked = delta if valid is None else delta * valid[:, :, None].astype(int)
        sums = self._backward_sums(arithmetic, blocks, posts, slopes, masked)
        if not jacobian:
            return sums, None
        J = self._jacobian(arithmetic, blocks, posts, slopes, target, residual, delta, S,
                           valid, n)
        return sums, J

    def _backward_sums(self, arithmetic, blocks, posts, slopes, delta):
        pieces = []
        E = len(delta)
        matmul = arithmetic.matmul
        for layer in reversed(range(self.network.depth)):
            grad_b = delta.sum(axis=1) if self.network.bias else None
            grad_W = matmul(delta.transpose(0, 2, 1), posts[layer])
            pieces.append((grad_W.reshape(E, -1), grad_b))
            if layer:
                delta = _times(matmul(delta, blocks[layer][0]), slopes[layer - 1][2])
        return self._flatten(pieces, axis=1)

    def _jacobian(self, arithmetic, blocks, posts, slopes, target, residual, delta, S, valid,
                  n):
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
        # Tangents of delta: inputs by the chain rule through the link, labels
        # d(ell(f) - y)/dy_o = -e_o.
        s_out, ds_out = slopes[-1][2], dslopes[-1]
        dtarget = self.loss.link_tangent(target, dposts[-1])
        ddelta_x = _times(dtarget, None if s_out is None else s_out[:, :, None, :])
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
                back = arithmetic.matmul(delta, W)
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
        """``(t, B, S, valid)``: the linked outputs ``t = ell(f)`` ``(E, nb, m)`` and ``B =
        J_theta f^T`` as ``(E, nb, P, m)`` for every batch entry (sample ``S[e, k]``), by
        backpropagating each output direction: a term is ``B (t - y)``."""
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
        return self.loss.link(posts[-1], arithmetic), B, S, valid


def batches_are_identity(S, n):
    """Whether the layout ``S`` is every sample, in order, at every step."""
    return S.shape[1] == n and (S.strides[0] == 0 or (S == np.arange(n)).all())


def _object_array(arithmetic):
    def convert(values):
        array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) \
            else values
        if arithmetic.is_exact:
            # Fractions, ints or mpq next to fmpq entries would not mix: every entry
            # must be the arithmetic's own
            kind = arithmetic.kind
            if array.dtype == object and all(type(v) is kind for v in array.flat):
                return array
            return arithmetic.asarray(array)
        if array.dtype == object and array.size and \
                _number_kind(array.flat[0]) not in ("float64", "integer", "rational"):
            return array  # already numbers of some arithmetic: used as they are
        return arithmetic.asarray(array)
    return convert




@lru_cache(maxsize=64)
def _cached_program(network, loss_name):
    return LayerwiseProgram(network, loss_name)


def layerwise_program(network, loss="mse"):
    """The cached :class:`LayerwiseProgram` of ``network`` with the link of ``loss`` (a
    name or a :class:`~symbolic_inversion.losses.Loss`; only its link matters here)."""
    from .losses import get_loss
    return _cached_program(network, get_loss(loss).name)
