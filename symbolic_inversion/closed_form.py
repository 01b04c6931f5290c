r"""Exact solutions: the ratio trick for one sample, as SymPy expressions.

For one sample the per-sample gradient of a first-layer weight ``W1[k, i]`` is
``delta_k x_i`` and that of the bias ``b1[k]`` is ``delta_k``: their ratio is ``x_i``
whatever the rest of the network.  Since every gradient is seen in the trace
(``g = (theta_j - theta_{j+1}) / lr`` for plain GD), the input is

.. math:: x_i = \frac{W1^{(j)}_{k,i} - W1^{(j+1)}_{k,i}}{b1^{(j)}_k - b1^{(j+1)}_k}

for every neuron ``k`` whose bias moved.  The labels follow linearly from the output
layer: with an output bias, ``y_o = f_o(x) - c_o / sigma'(z_o)`` where ``c_o`` is half
the observed gradient of the output bias (the paper's ``y = T - c / (1 - T^2)``).

:func:`one_sample_closed_form` derives these formulas symbolically (the ratio is
simplified from the backpropagated gradient, not typed in); :func:`closed_form_functions`
compiles them once per network into numeric callables, which the ratio-trick solver
(:mod:`symbolic_inversion.solvers.ratio`) evaluates with error bounds.
"""

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .errors import InputError, NotSupportedError, boundary

__all__ = ["OneSampleClosedForm", "one_sample_closed_form", "ClosedFormFunctions",
           "closed_form_functions"]


@dataclass
class OneSampleClosedForm:
    """Closed-form inversion of one GD step with one sample.

    Attributes
    ==========

    inputs : list of sympy.Expr
        ``x_i`` in terms of the parameters at steps ``j`` and ``j + 1`` (neuron ``row``).
    labels : list of sympy.Expr
        ``y_o`` in terms of ``x``, the parameters at step ``j`` and ``c`` (half the
        observed gradient of the output bias), when the output layer has a bias.
    ratios : list of sympy.Expr
        The derivation: per-sample gradient of ``W1[row, i]`` over that of ``b1[row]``,
        simplified; equals ``x_i``.
    symbols : dict
        The symbols used: ``x``, ``c``, ``now`` and ``next`` parameter vectors, ``lr``.
    """

    inputs: list
    labels: list
    ratios: list
    symbols: dict

    def latex(self):
        """The formulas as LaTeX ``aligned`` rows."""
        rows = [f"{sp.latex(x)} &= {sp.latex(e)}"
                for x, e in zip(self.symbols["x"], self.inputs)]
        rows += [f"{sp.latex(y)} &= {sp.latex(e)}"
                 for y, e in zip(self.symbols["y"], self.labels)]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self):
        from .report.display import closed_form_latex, math_block
        return math_block(closed_form_latex(self))


@boundary("one_sample_closed_form")
def one_sample_closed_form(network, row=0, step=0, loss_reduction=None, loss="mse"):
    """Derive the ratio trick for ``network`` (first layer needs a bias).

    Parameters
    ==========

    network : Network
    row : int
        The first-layer neuron whose weights and bias are used.
    step : int or str
        Step label ``j`` used in the parameter symbols.
    loss_reduction : str, optional
        The loss's reduction (default the loss's own): under MSE's ``"mean"``
        (PyTorch's ``nn.MSELoss()``) the observed gradient is ``1/m`` of the toolkit's
        for ``m`` outputs, so the labels carry the factor ``m`` (the inputs, a ratio, do
        not change).
    loss : str or Loss
        ``"mse"`` (default), ``"cross_entropy"`` or ``"bce_with_logits"``: the labels
        are ``ell(f(x)) - c_o / (c sigma'(z_o))`` with the loss's link ``ell`` (the
        softmax for cross-entropy) and factor ``c`` (:mod:`~symbolic_inversion.losses`),
        ``c_o`` the observed gradient of output bias ``o``, halved as in the paper.

    Examples
    ========

    The paper's Example 1 in symbols:

    >>> from symbolic_inversion import Network, one_sample_closed_form
    >>> form = one_sample_closed_form(Network([1, 1], "tanh"))
    >>> form.ratios
    [x_0]
    >>> form.inputs
    [(w^{(0)} - w^{(1)})/(b^{(0)} - b^{(1)})]
    >>> form.labels
    [-c_0/(1 - tanh(b^{(0)} + w^{(0)}*x_0)**2) + tanh(b^{(0)} + w^{(0)}*x_0)]

    Any network with a first-layer bias, e.g. 3-4-2:

    >>> form = one_sample_closed_form(Network([3, 4, 2], ["sigmoid", "identity"]), row=1)
    >>> form.ratios
    [x_{0,0}, x_{0,1}, x_{0,2}]
    >>> form.inputs[2]
    (W1^{(0)}_{1,2} - W1^{(1)}_{1,2})/(b1^{(0)}_{1} - b1^{(1)}_{1})

    With PyTorch's mean over the two outputs the labels carry the factor 2:

    >>> net = Network([3, 4, 2], ["sigmoid", "identity"])
    >>> mean = one_sample_closed_form(net, loss_reduction="mean")
    >>> mean.labels[1] - one_sample_closed_form(net).labels[1]
    -c_1

    A classifier on cross-entropy: the label is the softmax of the logits less the
    output bias's gradient (``c = 1`` for one sample, so ``2 c_o`` is that gradient):

    >>> ce = one_sample_closed_form(Network([2, 1, 2], ["tanh", "identity"]),
    ...                             loss="cross_entropy")
    >>> ce.labels[0]
    -2*c_0 + softmax(W2^{(0)}_{0,0}*tanh(W1^{(0)}_{0,0}*x_{0,0} + W1^{(0)}_{0,1}*x_{0,1} + b1^{(0)}_{0}) + b2^{(0)}_{0}, W2^{(0)}_{1,0}*tanh(W1^{(0)}_{0,0}*x_{0,0} + W1^{(0)}_{0,1}*x_{0,1} + b1^{(0)}_{0}) + b2^{(0)}_{1})[0]
    """
    if not network.bias:
        raise NotSupportedError("closed form: the ratio trick needs a first-layer bias; "
                                "this network has none")
    if not 0 <= row < network.layers[1]:
        raise InputError(f"row: the first layer has neurons 0..{network.layers[1] - 1}")
    x, y = network.sample_symbols(0)
    theta = network.parameter_symbols()
    gradient = network.half_gradient(x, y)
    weights, bias = network.layer_slices()[0]
    d = network.input_width
    weight_index = [weights.start + row * d + i for i in range(d)]
    bias_index = bias.start + row
    # The derivation: backprop puts delta_k * x_i and delta_k in these entries, so the
    # ratio cancels to x_i without being told to.
    ratios = [sp.cancel(gradient[p] / gradient[bias_index]) for p in weight_index]
    if ratios != list(x):
        raise AssertionError(f"ratio trick failed to simplify: {ratios}")  # invariant

    now = network.parameter_symbols(step=step)
    later = network.parameter_symbols(step=step + 1 if isinstance(step, int) else f"{step} + 1")
    inputs = [(now[p] - later[p]) / (now[bias_index] - later[bias_index])
              for p in weight_index]

    from .losses import get_loss
    rule = get_loss(loss, loss_reduction)
    # c_o is half the observed gradient (the paper's): the gradient is 2 c_o = factor *
    # sigma'(z_o) (ell(f)_o - y_o) for one sample
    factor = rule.factor(1, network.output_width)
    halves = sp.Rational(2 * factor.denominator, factor.numerator)
    c = sp.symbols(f"c_0:{network.output_width}")
    labels = []
    last_bias = network.layer_slices()[-1][1]
    f = network.forward(x, now)
    linked = rule.link_expression(f, named=True)
    B = network.output_jacobian_transpose(x, now)
    for o in range(network.output_width):
        slope = B[last_bias.start + o, o]  # d f_o / d b_o = sigma'(z_o)
        labels.append(linked[o] - halves * c[o] / slope)
    return OneSampleClosedForm(
        inputs=inputs, labels=labels, ratios=ratios,
        symbols={"x": list(x), "y": list(y), "c": list(c), "now": now, "next": later,
                 "theta": theta})


@dataclass(frozen=True)
class ClosedFormFunctions:
    """The formulas of :func:`one_sample_closed_form` as numeric callables.

    Attributes
    ==========

    inputs : callable
        ``inputs(now, later) -> [x_0, ..., x_{d-1}]`` from the parameter vectors (trace
        order) at steps ``j`` and ``j + 1``.  Only differences enter, so the observed
        gradients work too: ``inputs(g, zeros)``.
    labels : callable
        ``labels(x, now, c) -> [y_0, ...]`` with ``c`` half the observed gradient of the
        output biases.
    form : OneSampleClosedForm
        The symbolic formulas they were compiled from.
    """

    inputs: object
    labels: object
    form: OneSampleClosedForm


@lru_cache(maxsize=64)
def closed_form_functions(network, row=0, modules="mpmath"):
    """:func:`one_sample_closed_form` of ``network`` compiled once (cached per network,
    neuron ``row`` and lambdify ``modules``).

    Examples
    ========

    The paper's Example 1 from its Table 1 (``x = 0.6``, ``w, b: 0.5 -> 0.489, 0.482``
    at three decimals, so both come out only roughly: 0.6 and 0.5):

    >>> import mpmath
    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.closed_form import closed_form_functions
    >>> functions = closed_form_functions(Network([1, 1], "tanh"))
    >>> now, later = [mpmath.mpf("0.5")] * 2, [mpmath.mpf("0.489"), mpmath.mpf("0.482")]
    >>> x = functions.inputs(now, later)
    >>> mpmath.nstr(x[0], 5)
    '0.61111'
    >>> c = [(now[1] - later[1]) / (2 * mpmath.mpf("0.1"))]
    >>> mpmath.nstr(functions.labels(x, now, c)[0], 5)
    '0.50495'
    """
    form = one_sample_closed_form(network, row=row)
    now, later = list(form.symbols["now"]), list(form.symbols["next"])
    inputs = sp.lambdify([now, later], form.inputs, modules=modules)
    labels = sp.lambdify([form.symbols["x"], now, form.symbols["c"]], form.labels,
                         modules=modules)
    return ClosedFormFunctions(inputs, labels, form)
