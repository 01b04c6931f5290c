"""Piecewise-linear networks (``relu`` and ``identity`` layers) evaluated layer by layer.

The symbolic route (:mod:`symbolic_inversion.program`) builds one expression per
parameter, which for ReLU networks of realistic width is both slow and, at the kink,
ill-defined.  A network of ``relu`` and ``identity`` layers is piecewise linear: on
rational data with rational parameters its outputs and its loss gradient are rational,
and one gradient-descent step with a rational learning rate stays rational.  This module
computes them with matrix products in whatever number type it is given:

- :class:`fractions.Fraction`: exact (products by python-flint's ``fmpq_mat`` where
  installed, see :mod:`symbolic_inversion.rational`);
- mpmath numbers: at the working precision;
- floats: numpy float64.

``relu'(0) = 0``, PyTorch's convention and the one of :mod:`symbolic_inversion.network`.

Examples
========

>>> from fractions import Fraction
>>> from symbolic_inversion import Network
>>> from symbolic_inversion.piecewise import mean_gradient
>>> net = Network([1, 2, 1], ["relu", "identity"])
>>> theta = [Fraction(v) for v in ("1", "-1", "0", "0", "1", "1", "0")]
>>> [str(g) for g in mean_gradient(net, theta, [[Fraction(2)]], [[Fraction(1)]])]
['4', '0', '2', '0', '4', '0', '2']
"""

from fractions import Fraction

import numpy as np

from . import rational
from .errors import InputError

__all__ = ["PIECEWISE_LINEAR", "blocks", "forward", "mean_gradient", "residual_factor"]

PIECEWISE_LINEAR = ("relu", "identity")


def _check(network):
    bad = [name for name in network.activations if name not in PIECEWISE_LINEAR]
    if bad:
        raise InputError(f"network.activations: exact piecewise-linear arithmetic needs "
                         f"relu or identity layers, got {bad[0]!r}")


def blocks(network, theta):
    """``[(W, b), ...]`` per weight layer: ``W`` a list of rows, ``b`` a list or None."""
    theta = list(theta)
    result = []
    for (weights, bias), fan_in, fan_out in zip(network.layer_slices(), network.layers[:-1],
                                                network.layers[1:]):
        flat = theta[weights]
        W = [flat[k * fan_in:(k + 1) * fan_in] for k in range(fan_out)]
        result.append((W, theta[bias] if bias is not None else None))
    return result


def _is_exact(rows):
    return all(isinstance(v, Fraction) for row in rows[:1] for v in row[:1])


def _matmul(A, B):
    """``A B`` for lists of rows, exact for Fractions, numpy otherwise."""
    if _is_exact(A) and _is_exact(B):
        return rational.matmul(A, B)
    dtype = float if isinstance(A[0][0], float) and isinstance(B[0][0], float) else object
    return np.array(A, dtype=dtype).dot(np.array(B, dtype=dtype)).tolist()


def _transpose(A):
    return [list(column) for column in zip(*A)]


def forward(network, theta, inputs):
    """Pre-activations and activations of every layer for every sample.

    Returns ``(pre, post)``: ``pre[l][i]`` the pre-activations of layer ``l + 1`` at
    sample ``i``; ``post[0]`` the inputs, ``post[l + 1]`` the activations of layer
    ``l + 1`` (``post[-1]`` the outputs).
    """
    _check(network)
    inputs = [list(x) for x in inputs]
    pre, post = [], [inputs]
    for (W, b), name in zip(blocks(network, theta), network.activations):
        Z = _matmul(post[-1], _transpose(W))
        if b is not None:
            Z = [[z + bk for z, bk in zip(row, b)] for row in Z]
        pre.append(Z)
        if name == "relu":
            post.append([[z if z > 0 else 0 * z for z in row] for row in Z])
        else:
            post.append(Z)
    return pre, post


def residual_factor(samples, outputs, reduction="sum_outputs"):
    """The factor ``c`` in ``grad L = c * sum_i J_i^T (f(x_i) - y_i)``: ``2/n`` for the
    toolkit's MSE, ``2/(n m)`` for PyTorch's mean reduction."""
    if reduction not in ("sum_outputs", "mean"):
        raise InputError(f"loss_reduction: expected 'sum_outputs' or 'mean', got {reduction!r}")
    return Fraction(2, samples * (outputs if reduction == "mean" else 1))


def mean_gradient(network, theta, inputs, labels, reduction="sum_outputs"):
    """The MSE loss gradient in trace order (list), by backpropagation in matrices.

    Exact when every number is a :class:`~fractions.Fraction`.
    """
    pre, post = forward(network, theta, inputs)
    factor = residual_factor(len(inputs), network.output_width, reduction)
    if not isinstance(theta[0], Fraction):
        factor = type(theta[0])(factor.numerator) / factor.denominator
    delta = [[factor * (f - y) for f, y in zip(out, label)]
             for out, label in zip(post[-1], labels)]
    layers = blocks(network, theta)
    per_layer = []
    for layer in reversed(range(network.depth)):
        if network.activations[layer] == "relu":
            delta = [[d if z > 0 else 0 * d for d, z in zip(row, zrow)]
                     for row, zrow in zip(delta, pre[layer])]
        grad_W = _matmul(_transpose(delta), post[layer])
        grad_b = [sum(column, 0 * column[0]) for column in zip(*delta)] if network.bias else []
        per_layer.append([v for row in grad_W for v in row] + grad_b)
        if layer:
            delta = _matmul(delta, layers[layer][0])
    return [v for part in reversed(per_layer) for v in part]
