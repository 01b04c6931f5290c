r"""Losses: one class each, registered by name; the labels always enter linearly.

For every loss here the gradient of a sample's loss with respect to the network's
outputs ``f`` has the form

.. math:: \frac{\partial L}{\partial f_i} = c\,\big(\ell(f_i) - y_i\big),

with a *link* ``ell`` (identity for MSE, softmax for cross-entropy, the logistic
function for binary cross-entropy on logits) and a constant ``c`` fixed by the reduction
and the batch size (:meth:`Loss.factor`).  So the loss gradient of a batch is
``c sum_i J_theta f(x_i)^T (ell(f(x_i)) - y_i)``: affine in every label, and label
elimination (variable projection) works for all of them.  The inversion system carries
the sum and moves ``1/c`` to the right-hand side.

===================  ========  =========================  ==========================
name                 link      reductions                 ``c`` for a batch of ``b``
===================  ========  =========================  ==========================
``mse``              identity  ``sum_outputs``, ``mean``  ``2/b``; ``2/(b m)``
``cross_entropy``    softmax   ``mean``, ``sum``          ``1/b``; ``1``
``bce_with_logits``  logistic  ``mean``, ``sum``          ``1/(b m)``; ``1``
===================  ========  =========================  ==========================

``mse`` with ``sum_outputs`` is the paper's ``L = (1/n) sum_i ||f(x_i) - y_i||^2`` (the
toolkit's default for MSE); ``mean`` is PyTorch's ``nn.MSELoss()`` (mean over samples
*and* the ``m`` outputs).  ``cross_entropy`` is ``nn.CrossEntropyLoss`` on logits: a
label is a probability vector ``p_i`` (one-hot for a class index; soft labels allowed),
and ``dL/df_i = c (softmax(f_i) - p_i)`` holds because its entries sum to one.
``bce_with_logits`` is ``nn.BCEWithLogitsLoss``: labels in ``[0, 1]``, one per output.

Examples
========

>>> import sympy as sp
>>> from symbolic_inversion.losses import get_loss
>>> ce = get_loss("cross_entropy")
>>> ce.reduction, ce.factor(4, 3)
('mean', Fraction(1, 4))
>>> f = sp.Matrix(sp.symbols("f0 f1"))
>>> ce.link_expression(f)
Matrix([
[exp(f0)/(exp(f0) + exp(f1))],
[exp(f1)/(exp(f0) + exp(f1))]])
>>> get_loss("mse").factor(4, 3), get_loss("mse", "mean").factor(4, 3)
(Fraction(1, 2), Fraction(1, 6))
"""

from fractions import Fraction

import numpy as np
import sympy as sp

from .errors import InputError

__all__ = ["Loss", "LOSSES", "register_loss", "get_loss", "loss_names"]

#: The registered loss classes by name.
LOSSES = {}


class Loss:
    """A training loss with its reduction (see the module docstring).

    Subclasses set :attr:`name`, :attr:`reductions` (the first is the default) and
    define :meth:`link_expression`, :meth:`sample_expression` and :meth:`factor`; the
    numeric link comes from the arithmetic's functions (:meth:`link`,
    :meth:`link_tangent`).
    """

    name = ""
    reductions = ()
    #: whether a label is a class (probability vectors: one-hot labels have a class)
    classifies = False

    def __init__(self, reduction=None):
        if reduction is None:
            reduction = self.reductions[0]
        if not isinstance(reduction, str) or reduction not in self.reductions:
            raise InputError(f"loss_reduction: {self.name} takes "
                             f"{' or '.join(repr(r) for r in self.reductions)}, got "
                             f"{reduction!r}")
        self.reduction = reduction

    # -- symbolic ------------------------------------------------------------------

    def link_expression(self, f, named=False):
        """``ell(f)`` of the output column ``f`` (a SymPy Matrix); ``named``: with the
        link as a named function (``softmax``, ``sigma``) for display."""
        raise NotImplementedError

    def sample_expression(self, f, y):
        """One sample's loss (before the reduction's averaging) as a SymPy expression."""
        raise NotImplementedError

    def expression(self, outputs, labels):
        """The loss of a batch: the reduction of :meth:`sample_expression` over the
        samples (lists of SymPy columns)."""
        outputs, labels = list(outputs), list(labels)
        total = sum((self.sample_expression(f, y) for f, y in zip(outputs, labels)),
                    sp.Integer(0))
        return total * self._reduction_weight(len(outputs), len(labels[0]))

    def _reduction_weight(self, batch, outputs):
        raise NotImplementedError

    def factor(self, batch, outputs):
        """``c`` (a Fraction): ``dL/df_i = c (ell(f_i) - y_i)`` for a batch of ``batch``
        samples and ``outputs`` network outputs."""
        raise NotImplementedError

    @property
    def averages(self):
        """Whether the reduction divides by the batch size (``c`` proportional to
        ``1/b``)."""
        return self.factor(2, 1) != self.factor(1, 1)

    def factor_expression(self, batch, outputs):
        """:meth:`factor` with a symbolic batch size ``batch`` (a SymPy expression).

        >>> import sympy as sp
        >>> get_loss("mse").factor_expression(sp.Symbol("n"), 1)
        2/n
        """
        c = self.factor(1, outputs)
        value = sp.Rational(c.numerator, c.denominator)
        return value / batch if self.averages else value

    # -- numeric -------------------------------------------------------------------

    def link(self, F, arithmetic):
        """``ell`` along the last axis of ``F`` (an array of the arithmetic's numbers)."""
        raise NotImplementedError

    def link_tangent(self, L, dF):
        """Tangents of the link: ``dL[..., k, :] = J_ell dF[..., k, :]`` where ``L`` is
        ``ell(F)`` with shape ``(..., m)`` and ``dF`` ``(..., K, m)``."""
        raise NotImplementedError

    def value(self, F, Y, arithmetic):
        """The loss of a batch (a number of the arithmetic) from its outputs ``F`` and
        labels ``Y`` (``(b, m)`` arrays): what a loss black box returns.  Optional for
        a new loss (the gradient needs only the link)."""
        from .errors import NotSupportedError
        raise NotSupportedError(f"loss {self.name}: no numeric loss value")

    # -- labels --------------------------------------------------------------------

    def label_class(self, label, tolerance=0):
        """The class index of a one-hot ``label`` (within ``tolerance``), else ``None``
        (only for classifying losses)."""
        if not self.classifies or len(label) < 2:
            return None
        values = [abs(v) for v in label]
        k = max(range(len(label)), key=lambda i: label[i])
        if abs(label[k] - 1) <= tolerance and all(
                values[i] <= tolerance for i in range(len(label)) if i != k):
            return k
        return None

    # -- identity ------------------------------------------------------------------

    @property
    def default_reduction(self):
        return self.reductions[0]

    def to_dict(self):
        """The trace file's ``loss`` and ``loss_reduction`` fields."""
        return {"loss": self.name, "loss_reduction": self.reduction}

    def __repr__(self):
        return f"Loss({self.name!r}, reduction={self.reduction!r})"

    def __eq__(self, other):
        return isinstance(other, Loss) and (self.name, self.reduction) == \
            (other.name, other.reduction)

    def __hash__(self):
        return hash(("loss", self.name, self.reduction))

    def __reduce__(self):
        return get_loss, (self.name, self.reduction)

    def _repr_latex_(self):
        from .report.display import math_block
        f, y = sp.Matrix(sp.symbols("f_1 f_2")), sp.Matrix(sp.symbols("y_1 y_2"))
        return math_block(rf"\ell(f, y) = {sp.latex(self.sample_expression(f, y))}"
                          rf"\quad\text{{(two outputs; reduction {self.reduction})}}")


def register_loss(cls):
    """Class decorator: make the :class:`Loss` subclass ``cls`` known by its name."""
    if not (isinstance(cls, type) and issubclass(cls, Loss)) or not cls.name \
            or not cls.reductions:
        raise InputError("register_loss: expected a Loss subclass with a name and "
                         "reductions")
    LOSSES[cls.name] = cls
    return cls


def loss_names():
    """The registered loss names."""
    return list(LOSSES)


def get_loss(name="mse", reduction=None):
    """The loss called ``name`` with ``reduction`` (default: the loss's own default);
    a :class:`Loss` is returned as it is (its reduction replaced when one is given).

    >>> get_loss("cross_entropy", "sum")
    Loss('cross_entropy', reduction='sum')
    >>> get_loss("hinge")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: loss: unknown loss 'hinge'; known: mse, cross_entropy, bce_with_logits
    """
    if isinstance(name, Loss):
        if reduction is None or reduction == name.reduction:
            return name
        return type(name)(reduction)
    if not isinstance(name, str) or name not in LOSSES:
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise InputError(f"loss: unknown loss {shown}; known: {', '.join(LOSSES)}")
    return LOSSES[name](reduction)


class Softmax(sp.Function):
    """``softmax(f)_k`` for display: ``Softmax(k, f_0, ..., f_{m-1})``."""

    nargs = None

    def _latex(self, printer):
        k, *f = self.args
        return (r"\operatorname{softmax}_{" + printer._print(k) + r"}\left("
                + ", ".join(printer._print(v) for v in f) + r"\right)")

    def _sympystr(self, printer):
        k, *f = self.args
        return f"softmax({', '.join(printer._print(v) for v in f)})[{printer._print(k)}]"


class Logistic(sp.Function):
    """``1 / (1 + exp(-f))`` for display."""

    nargs = 1

    def _latex(self, printer):
        return r"\sigma\left(" + printer._print(self.args[0]) + r"\right)"


def _exp(arithmetic):
    return arithmetic.functions()["exp"]


@register_loss
class MSE(Loss):
    """Mean squared error, ``||f - y||^2`` per sample."""

    name = "mse"
    reductions = ("sum_outputs", "mean")

    def link_expression(self, f, named=False):
        return sp.Matrix(f)

    def sample_expression(self, f, y):
        return sum((sp.Matrix(f) - sp.Matrix(y)).applyfunc(lambda r: r**2))

    def _reduction_weight(self, batch, outputs):
        return sp.Rational(1, batch * (outputs if self.reduction == "mean" else 1))

    def factor(self, batch, outputs):
        return Fraction(2, batch * (outputs if self.reduction == "mean" else 1))

    def link(self, F, arithmetic):
        return F

    def link_tangent(self, L, dF):
        return dF

    def value(self, F, Y, arithmetic):
        residual = self.link(F, arithmetic) - Y
        batch, outputs = np.shape(F)
        # L = (c / 2) sum_i ||f_i - y_i||^2 with c = factor(batch, outputs) = 2 / count
        count = batch * (outputs if self.reduction == "mean" else 1)
        total = (residual * residual).sum()
        return total if count == 1 else total * arithmetic.rational(1, count)


@register_loss
class CrossEntropy(Loss):
    """``-sum_k p_k log softmax(f)_k`` per sample (``nn.CrossEntropyLoss`` on logits)."""

    name = "cross_entropy"
    reductions = ("mean", "sum")
    classifies = True

    def link_expression(self, f, named=False):
        if named:
            return sp.Matrix([Softmax(sp.Integer(k), *f) for k in range(len(f))])
        exps = [sp.exp(v) for v in f]
        total = sp.Add(*exps)
        return sp.Matrix([e / total for e in exps])

    def sample_expression(self, f, y):
        f = list(f)
        normaliser = sp.log(sp.Add(*[sp.exp(v) for v in f]))
        return -sp.Add(*[p * (v - normaliser) for p, v in zip(list(y), f)])

    def _reduction_weight(self, batch, outputs):
        return sp.Rational(1, batch) if self.reduction == "mean" else sp.Integer(1)

    def factor(self, batch, outputs):
        return Fraction(1, batch) if self.reduction == "mean" else Fraction(1)

    def link(self, F, arithmetic):
        if F.dtype != object:
            # softmax is shift invariant: shifting by the largest real part avoids overflow
            F = F - np.max(F.real, axis=-1, keepdims=True)
        E = _exp(arithmetic)(F)
        return E / E.sum(axis=-1, keepdims=True)

    def link_tangent(self, L, dF):
        # J = diag(s) - s s^T
        S = L[..., None, :]
        return S * dF - S * (dF * S).sum(axis=-1, keepdims=True)


@register_loss
class BCEWithLogits(Loss):
    """``-[y log s(f) + (1 - y) log(1 - s(f))]`` per output, ``s`` the logistic function
    (``nn.BCEWithLogitsLoss``; its ``mean`` averages over samples and outputs)."""

    name = "bce_with_logits"
    reductions = ("mean", "sum")

    def link_expression(self, f, named=False):
        if named:
            return sp.Matrix([Logistic(v) for v in f])
        return sp.Matrix([1 / (1 + sp.exp(-v)) for v in f])

    def sample_expression(self, f, y):
        return sp.Add(*[sp.log(1 + sp.exp(v)) - p * v for p, v in zip(list(y), list(f))])

    def _reduction_weight(self, batch, outputs):
        return sp.Rational(1, batch * outputs) if self.reduction == "mean" else sp.Integer(1)

    def factor(self, batch, outputs):
        return Fraction(1, batch * outputs) if self.reduction == "mean" else Fraction(1)

    def link(self, F, arithmetic):
        return 1 / (1 + _exp(arithmetic)(-F))

    def link_tangent(self, L, dF):
        S = L[..., None, :]
        return S * (1 - S) * dF
