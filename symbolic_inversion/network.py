r"""Step 1 of the workflow: fully connected networks as SymPy expressions.

A :class:`Network` is a list of widths (input to output), one activation per weight
layer (:mod:`~symbolic_inversion.activations`) and a bias flag.  Its parameters, inputs
and labels are SymPy symbols; the forward pass, the loss
(:mod:`~symbolic_inversion.losses`) and the loss gradient are SymPy expressions: the
source of truth for LaTeX and closed forms (numbers come from the layer-wise program,
:mod:`~symbolic_inversion.program`, compiled from the same activations).

The gradient is built by backpropagation, so the sub-expressions of the forward pass
(pre-activations, activations) are *shared* between all gradient entries instead of
being re-expanded for each parameter as ``sympy.diff`` of the loss would do.

For every loss of the toolkit the per-sample gradient has the form

.. math:: \nabla_\theta L_i = c\,J_\theta f(x)^T (\ell(f(x)) - y) = c\,B(\theta, x)\,(\ell(f(x)) - y),

affine in the label ``y`` (``ell`` the loss's link: the identity for MSE, where
``c B (f - y)`` is the paper's ``(2/n)`` times half the gradient of ``||f - y||^2``).
:meth:`Network.output_jacobian_transpose` returns ``B``; everything downstream (the
inversion system, label elimination, closed forms) is built on the pair ``(f, B)``.

Parameter order is the trace order of the file format: layer by layer from the input,
within a layer the weight matrix row-major (``W[k, i]`` connects input ``i`` to neuron
``k``), then the bias vector.
"""

import numpy as np
import sympy as sp

from .activations import ACTIVATIONS, Activation, get_activation
from .errors import InputError
from .losses import get_loss

__all__ = ["Activation", "ACTIVATIONS", "Network"]


class Network:
    """A fully connected feed-forward network with symbolic parameters.

    Parameters
    ==========

    layers : sequence of int
        Widths from input to output; ``[1, 1]`` is the paper's single neuron.
    activations : str or sequence of str
        One activation per weight layer (``len(layers) - 1``), or one name for all:
        a registered name (:mod:`~symbolic_inversion.activations`: ``tanh``,
        ``sigmoid``, ``relu``, ``identity``, ``leaky_relu`` or ``leaky_relu:0.2``,
        ``gelu``, ``gelu_tanh``, ``silu``, ``softplus``).
    bias : bool
        Whether every layer has a bias vector.

    Examples
    ========

    The paper's single neuron ``yhat = tanh(w x + b)``:

    >>> from symbolic_inversion import Network
    >>> neuron = Network([1, 1], "tanh")
    >>> neuron.parameter_symbols()
    [w, b]
    >>> x, y = neuron.sample_symbols(0)
    >>> neuron.forward(x)
    Matrix([[tanh(b + w*x_0)]])
    >>> neuron.half_gradient(x, y)
    Matrix([
    [x_0*(1 - tanh(b + w*x_0)**2)*(-y_0 + tanh(b + w*x_0))],
    [    (1 - tanh(b + w*x_0)**2)*(-y_0 + tanh(b + w*x_0))]])

    A 3-4-2 network has ``3*4 + 4 + 4*2 + 2 = 26`` parameters:

    >>> Network([3, 4, 2], ["sigmoid", "identity"]).num_parameters
    26
    """

    def __init__(self, layers, activations="tanh", bias=True):
        if isinstance(layers, (list, tuple, np.ndarray)):
            layers = list(layers)
        if not isinstance(layers, list) or len(layers) < 2:
            shown = repr(layers) if len(repr(layers)) < 60 else repr(layers)[:57] + "..."
            raise InputError(
                f"network.layers: need a list of at least two widths (input and output), "
                f"got {shown}"
            )
        if not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0
                   for w in layers):
            raise InputError(
                f"network.layers: every width must be a positive integer, got {layers!r}"
            )
        if isinstance(activations, str):
            activations = [activations] * (len(layers) - 1)
        if not isinstance(activations, (list, tuple)):
            raise InputError(f"network.activations: expected a name or a list of names, got "
                             f"{type(activations).__name__}")
        activations = list(activations)
        if len(activations) != len(layers) - 1:
            raise InputError(
                f"network.activations: need one per weight layer ({len(layers) - 1}), "
                f"got {len(activations)}"
            )
        activations = [get_activation(name).name for name in activations]
        if not isinstance(bias, (bool, np.bool_)):
            raise InputError(f"network.bias: must be true or false, got {bias!r}")
        self.layers = tuple(int(w) for w in layers)
        self.activations = tuple(activations)
        self.bias = bool(bias)

    # -- structure ---------------------------------------------------------------------

    def __repr__(self):
        return (f"Network({list(self.layers)}, {list(self.activations)}, "
                f"bias={self.bias})")

    def _repr_latex_(self):
        from .report.display import math_block, network_latex
        return math_block(network_latex(self))

    def __eq__(self, other):
        return (isinstance(other, Network) and self.layers == other.layers
                and self.activations == other.activations and self.bias == other.bias)

    def __hash__(self):
        return hash((self.layers, self.activations, self.bias))

    @property
    def input_width(self):
        return self.layers[0]

    @property
    def output_width(self):
        return self.layers[-1]

    @property
    def depth(self):
        """Number of weight layers."""
        return len(self.layers) - 1

    @property
    def is_single_neuron(self):
        return self.layers == (1, 1) and self.bias

    def layer_slices(self):
        """Per weight layer, the slices of the flat parameter vector: ``(weights, bias)``.

        ``bias`` is ``None`` for a network without biases.
        """
        slices, start = [], 0
        for fan_in, fan_out in zip(self.layers[:-1], self.layers[1:]):
            weights = slice(start, start + fan_in * fan_out)
            start = weights.stop
            bias = None
            if self.bias:
                bias = slice(start, start + fan_out)
                start = bias.stop
            slices.append((weights, bias))
        return slices

    @property
    def num_parameters(self):
        return sum(o * i + (o if self.bias else 0)
                   for i, o in zip(self.layers[:-1], self.layers[1:]))

    def parameter_names(self):
        """Readable names in trace order, e.g. ``W1[0,2]`` and ``b1[0]``.

        >>> Network([2, 1]).parameter_names()
        ['W1[0,0]', 'W1[0,1]', 'b1[0]']
        """
        if self.is_single_neuron:
            return ["w", "b"]
        names = []
        for layer, (fan_in, fan_out) in enumerate(zip(self.layers[:-1], self.layers[1:]), 1):
            names += [f"W{layer}[{k},{i}]" for k in range(fan_out) for i in range(fan_in)]
            if self.bias:
                names += [f"b{layer}[{k}]" for k in range(fan_out)]
        return names

    def parameter_symbols(self, step=None):
        """SymPy symbols of the parameters in trace order.

        With ``step=j`` the symbols carry the step as a superscript, ``w^{(j)}``, as in
        the paper's equations.

        >>> Network([2, 1]).parameter_symbols(step=0)
        [W^{(0)}_{0,0}, W^{(0)}_{0,1}, b^{(0)}_{0}]
        """
        tag = "" if step is None else f"^{{({step})}}"
        if self.is_single_neuron:
            return [sp.Symbol("w" + tag, real=True), sp.Symbol("b" + tag, real=True)]
        symbols = []
        for layer, (fan_in, fan_out) in enumerate(zip(self.layers[:-1], self.layers[1:]), 1):
            prefix = "" if self.depth == 1 else str(layer)
            symbols += [sp.Symbol(f"W{prefix}{tag}_{{{k},{i}}}", real=True)
                        for k in range(fan_out) for i in range(fan_in)]
            if self.bias:
                symbols += [sp.Symbol(f"b{prefix}{tag}_{{{k}}}", real=True)
                            for k in range(fan_out)]
        return symbols

    def sample_symbols(self, index):
        """Symbols of input and label of sample ``index`` as column matrices.

        One-dimensional inputs and labels are ``x_i``, ``y_i``; otherwise ``x_{i,d}``.
        """
        def column(name, width):
            if width == 1:
                return sp.Matrix([sp.Symbol(f"{name}_{index}", real=True)])
            return sp.Matrix([sp.Symbol(f"{name}_{{{index},{d}}}", real=True)
                              for d in range(width)])
        return column("x", self.input_width), column("y", self.output_width)

    def unflatten(self, theta):
        """Split a flat parameter vector into ``[(W, b), ...]`` SymPy matrices."""
        theta = list(theta)
        if len(theta) != self.num_parameters:
            raise InputError(f"parameters: expected {self.num_parameters} values for "
                             f"{self!r}, got {len(theta)}")
        blocks = []
        for (weights, bias), fan_in, fan_out in zip(
                self.layer_slices(), self.layers[:-1], self.layers[1:]):
            W = sp.Matrix(fan_out, fan_in, theta[weights])
            b = sp.Matrix(theta[bias]) if bias is not None else None
            blocks.append((W, b))
        return blocks

    # -- symbolic forward and backward passes ----------------------------------------

    def _forward_pass(self, x, theta):
        x = sp.Matrix(x)
        if x.shape != (self.input_width, 1):
            raise InputError(f"x: expected {self.input_width} values, got {x.shape[0]}")
        theta = self.parameter_symbols() if theta is None else theta
        blocks = self.unflatten(theta)
        pre, post = [], [x]
        for (W, b), name in zip(blocks, self.activations):
            z = W * post[-1]
            if b is not None:
                z += b
            pre.append(z)
            post.append(z.applyfunc(get_activation(name).expression))
        return blocks, pre, post

    def forward(self, x, theta=None):
        """The network output ``f(x)`` as a column matrix (default: symbolic parameters)."""
        return self._forward_pass(x, theta)[2][-1]

    def layer_values(self, x, theta=None):
        """``(pre, post)``: every weight layer's pre-activations and the activations
        (input first) as column matrices, symbolically (the numeric twin:
        :meth:`LayerwiseProgram.layer_values
        <symbolic_inversion.program.LayerwiseProgram.layer_values>`)."""
        _, pre, post = self._forward_pass(x, theta)
        return pre, post

    def output_jacobian_transpose(self, x, theta=None):
        r"""``B = J_theta f(x)^T`` (``num_parameters x output_width``) by backpropagation.

        Column ``o`` is the gradient of output ``o`` with respect to the parameters, in
        trace order.  Together with :meth:`forward` it gives every MSE gradient,
        ``B (f(x) - y)``.
        """
        blocks, pre, post = self._forward_pass(x, theta)
        slopes = [sp.Matrix([get_activation(name).derivative(z, a)
                             for z, a in zip(pre[layer], post[layer + 1])])
                  for layer, name in enumerate(self.activations)]
        columns = []
        for output in range(self.output_width):
            seed = sp.zeros(self.output_width, 1)
            seed[output] = 1
            delta = seed.multiply_elementwise(slopes[-1])
            per_layer = []
            for layer in reversed(range(self.depth)):
                grad_W = delta * post[layer].T
                per_layer.append((grad_W, delta if self.bias else None))
                if layer:
                    W = blocks[layer][0]
                    delta = (W.T * delta).multiply_elementwise(slopes[layer - 1])
            flat = []
            for grad_W, grad_b in reversed(per_layer):
                flat += list(grad_W)  # row-major, as the trace order
                if grad_b is not None:
                    flat += list(grad_b)
            columns.append(flat)
        return sp.Matrix(columns).T

    def sample_term(self, x, y, theta=None, loss="mse", named=False):
        r"""Per-sample ``B (ell(f(x)) - y)``: the summand of the inversion system, ``1/c``
        of the sample's loss gradient (``loss``: a name or
        :class:`~symbolic_inversion.losses.Loss`; only its link matters; ``named``: the
        link as a named function, ``softmax``, for display).

        >>> import sympy as sp
        >>> net = Network([1, 2], "identity")
        >>> x, y = net.sample_symbols(0)
        >>> term = net.sample_term(x, y, loss="cross_entropy")
        >>> sp.simplify(term[2] - (sp.exp(net.forward(x)[0]) / sum(sp.exp(f) for f in
        ...             net.forward(x)) - y[0]))
        0
        """
        y = sp.Matrix(y)
        if y.shape != (self.output_width, 1):
            raise InputError(f"y: expected {self.output_width} values, got {y.shape[0]}")
        f = self.forward(x, theta)
        residual = get_loss(loss).link_expression(f, named) - y
        return self.output_jacobian_transpose(x, theta) * residual

    def half_gradient(self, x, y, theta=None):
        r"""Per-sample ``J^T (f(x) - y)``: half the gradient of ``||f(x) - y||^2``.

        This is the summand of the paper's eq. (9): for MSE over ``n`` samples,
        ``grad L = (2/n) * sum_i half_gradient(x_i, y_i)``.
        """
        return self.sample_term(x, y, theta, "mse")

    def loss(self, inputs, labels, theta=None, loss="mse", reduction=None):
        r"""The training loss over the samples: the paper's MSE ``(1/n) sum_i ||f(x_i) -
        y_i||^2`` by default, or any registered ``loss`` with its ``reduction``
        (:func:`~symbolic_inversion.losses.get_loss`)."""
        inputs, labels = list(inputs), list(labels)
        if not inputs or len(inputs) != len(labels):
            raise InputError("loss: need as many labels as inputs, and at least one sample")
        outputs = [self.forward(x, theta) for x in inputs]
        return get_loss(loss, reduction).expression(outputs,
                                                    [sp.Matrix(y) for y in labels])

    def gradient(self, inputs, labels, theta=None, loss="mse", reduction=None):
        """The gradient of :meth:`loss` in trace order, by backpropagation.

        >>> from sympy import diff, simplify, symbols
        >>> net = Network([1, 1], "sigmoid")
        >>> x, y = net.sample_symbols(0)
        >>> grad = net.gradient([x], [y])
        >>> [simplify(g - diff(net.loss([x], [y]), p))
        ...  for g, p in zip(grad, net.parameter_symbols())]
        [0, 0]
        """
        inputs, labels = list(inputs), list(labels)
        if not inputs or len(inputs) != len(labels):
            raise InputError("gradient: need as many labels as inputs, and at least one sample")
        rule = get_loss(loss, reduction)
        total = sp.zeros(self.num_parameters, 1)
        for x, y in zip(inputs, labels):
            total += self.sample_term(x, y, theta, rule)
        factor = rule.factor(len(inputs), self.output_width)
        return total * sp.Rational(factor.numerator, factor.denominator)

    def to_dict(self):
        """The ``network`` object of the trace file format."""
        return {"layers": list(self.layers), "activations": list(self.activations),
                "bias": self.bias}
