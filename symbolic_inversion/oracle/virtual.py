r"""Sannai's virtual polynomials and the semi-algebraic description of a region.

Fix an activation pattern: for every sample and every hidden ReLU, whether it is on.
On the set of parameters with that pattern each ReLU acts as the identity or as zero,
so every node computes a polynomial in the parameters (a *virtual polynomial*) and the
loss is a polynomial too.  The set itself is semi-algebraic: it is cut out by the sign
conditions ``z > 0`` (on) and ``z <= 0`` (off) on the pre-activations, each a
polynomial in the parameters.  :func:`virtual_region` computes both for the pattern
seen at a given parameter point: the pattern from the layer-wise program in exact
rationals, the polynomials from the network's SymPy expressions with every ReLU replaced
by what it is on the region, and the loss from :mod:`symbolic_inversion.losses`.
"""

from dataclasses import dataclass

import sympy as sp

from ..errors import InputError, boundary
from ..losses import get_loss
from ..network import Network
from ..program import layerwise_program
from .blackbox import parse_rational

__all__ = ["VirtualRegion", "virtual_region"]


@dataclass
class VirtualRegion:
    """The loss on one activation region.

    Attributes
    ==========

    polynomial : sympy.Expr
        The loss as a polynomial in the parameter symbols on this region.
    inequalities : list of sympy relational
        One sign condition per (sample, hidden ReLU): the region.
    pattern : list of tuple of int
        Per sample, the on (1) / off (0) state of every hidden ReLU, layer by layer.
    symbols : list of sympy.Symbol
        The parameters, in trace order.
    """

    polynomial: sp.Expr
    inequalities: list
    pattern: list
    symbols: list

    def contains(self, theta):
        """Whether the parameter point ``theta`` (trace order) lies in the region."""
        values = dict(zip(self.symbols, (sp.Rational(parse_rational(v, "theta"))
                                         for v in theta)))
        return all(bool(condition.subs(values)) for condition in self.inequalities)

    def latex(self):
        r"""LaTeX: the polynomial, then the region's conditions in a cases environment."""
        conditions = r" \\ ".join(sp.latex(c) for c in self.inequalities)
        return (f"L = {sp.latex(self.polynomial)}"
                + (r" \quad \text{on} \quad \begin{cases} " + conditions + r" \end{cases}"
                   if self.inequalities else ""))

    def _repr_latex_(self):
        from ..report.display import math_block, virtual_region_latex
        return math_block(virtual_region_latex(self))


@boundary("virtual_region")
def virtual_region(network, inputs, labels, theta):
    r"""The virtual loss polynomial and the region of ``theta``'s activation pattern.

    Parameters
    ==========

    network : Network
        ReLU hidden layers; the output activation is ``identity`` or ``relu``.
    inputs, labels : sequences of sequences of numbers
        The samples (exact rationals or rational strings).
    theta : sequence of numbers
        A parameter point (trace order) that selects the activation pattern.

    Examples
    ========

    One hidden ReLU neuron without bias, one sample ``x = 2, y = 1``; at ``w = 1`` the
    neuron is on, so the loss is ``(2 v w - 1)^2`` wherever ``2 w > 0``:

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.oracle import virtual_region
    >>> network = Network([1, 1, 1], ["relu", "identity"], bias=False)
    >>> region = virtual_region(network, [["2"]], [["1"]], theta=[1, 3])
    >>> region.polynomial
    4*W1_{0,0}**2*W2_{0,0}**2 - 4*W1_{0,0}*W2_{0,0} + 1
    >>> region.inequalities
    [2*W1_{0,0} > 0]
    >>> region.contains([-1, 3])
    False
    >>> print(region.latex())
    L = 4 W1_{0,0}^{2} W2_{0,0}^{2} - 4 W1_{0,0} W2_{0,0} + 1 \quad \text{on} \quad \begin{cases} 2 W1_{0,0} > 0 \end{cases}
    """
    if not isinstance(network, Network):
        raise InputError("network: expected a Network")
    if any(a != "relu" for a in network.activations[:-1]) or \
            network.activations[-1] not in ("relu", "identity"):
        raise InputError("network.activations: virtual polynomials need relu hidden layers "
                         "and an identity or relu output")
    inputs, labels = list(inputs), list(labels)
    if not inputs or len(inputs) != len(labels):
        raise InputError("samples: need as many labels as inputs, and at least one")
    point = [parse_rational(v, f"theta[{i}]") for i, v in enumerate(theta)]
    if len(point) != network.num_parameters:
        raise InputError(f"theta: expected {network.num_parameters} values, got {len(point)}")
    xs = [[parse_rational(v, f"samples[{i}].x") for v in x] for i, x in enumerate(inputs)]
    ys = [[sp.Rational(parse_rational(v, f"samples[{i}].y")) for v in y]
          for i, y in enumerate(labels)]
    # the pattern at the point: exact pre-activations of every layer and sample
    exact = layerwise_program(network).layer_values(point, xs, arithmetic="rational")[0]
    symbols = network.parameter_symbols()
    outputs, inequalities, pattern = [], [], []
    for i, x in enumerate(xs):
        pre, post = network.layer_values([sp.Rational(v) for v in x])
        region, states = {}, []   # each ReLU node -> what it is on the region
        for layer, activation in enumerate(network.activations):
            z = [sp.expand(zk.xreplace(region)) for zk in pre[layer]]
            if activation == "relu":
                for k, zk in enumerate(z):
                    on = exact[layer][0, i, k] > 0
                    states.append(int(on))
                    inequalities.append(zk > 0 if on else zk <= 0)
                    region[post[layer + 1][k]] = zk if on else sp.Integer(0)
            else:
                region.update(zip(post[layer + 1], z))
        outputs.append(sp.Matrix([region[a] for a in post[-1]]))
        pattern.append(tuple(states))
    total = get_loss("mse").expression(outputs, [sp.Matrix(y) for y in ys])
    unique = []
    for condition in inequalities:
        if condition not in unique and condition is not sp.true:
            unique.append(condition)
    return VirtualRegion(sp.expand(total), unique, pattern, symbols)
