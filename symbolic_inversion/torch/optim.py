"""The optimizer of a PyTorch run: ``torch.optim.SGD``, ``Adam``, ``AdamW``.

:func:`optimizer_of` reads the hyperparameters of the one parameter group:

==================  ===================================================================
``SGD``             ``lr``, ``momentum``, ``dampening``, ``nesterov``, ``weight_decay``
``Adam``/``AdamW``  ``lr``, ``betas``, ``eps``, ``weight_decay``, ``amsgrad``
==================  ===================================================================

Refused, with one line naming the option: ``maximize``, ``capturable``,
``differentiable``, Adam's ``decoupled_weight_decay`` on ``Adam`` (that is AdamW: use
``torch.optim.AdamW``), ``fused=True``, several parameter groups, a group
that does not hold exactly ``model.parameters()``, an optimizer that already has state
(the toolkit's moments and momentum start at zero), and any other optimizer class.

``foreach`` and ``fused``: on the CPU (PyTorch 2.13, float32 and float64) the
``foreach`` kernels of SGD, Adam and AdamW give bit for bit the single-tensor loop's
parameters (PyTorch's default on the CPU), so ``foreach`` is accepted.  The ``fused``
kernels round differently: after a few steps Adam's and AdamW's differ from the loop by
up to about 400 units of roundoff of ``lr`` in float32 (200 in float64, in 0.1-2% of the
entries), SGD's with momentum by up to 15 in float32 (in the entries of its vector
kernel's tail); that is not the arithmetic the rounding model of
:mod:`symbolic_inversion.floats` describes, so ``fused=True`` is refused
(``tests/test_torch.py`` checks the accepted kernels).

The learning rate of every step is read when the step runs (a step pre-hook), so a
learning-rate scheduler's values become the trace's ``lr`` list; the other
hyperparameters must stay as they were (:func:`hyperparameters`).
"""

from decimal import Decimal

from ..errors import InputError
from ..optimizers import Optimizer

__all__ = ["optimizer_of", "hyperparameters", "exact"]

_SUPPORTED = "torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW"


def _torch():
    from .model import _torch
    return _torch()


def exact(value):
    """A PyTorch hyperparameter (a Python float or a one-element tensor) as the decimal
    that names its binary value.

    >>> exact(0.1), exact(1e-08)
    (Decimal('0.1'), Decimal('1E-8'))
    """
    if hasattr(value, "item"):
        value = value.item()
    return Decimal(repr(float(value)))


def hyperparameters(optimizer):
    """The group's options that must not change during training (everything but ``lr``),
    as comparable values."""
    group = optimizer.param_groups[0]
    return {key: (tuple(float(v) for v in value) if isinstance(value, tuple) else value)
            for key, value in group.items() if key not in ("params", "lr", "initial_lr")
            and not key.startswith("_")}


def optimizer_of(optimizer, parameters=None):
    """The :class:`~symbolic_inversion.optimizers.Optimizer` of a ``torch.optim`` optimizer
    (full batch: ``gd``; the recorder makes it ``sgd`` with a batch size when the steps
    use minibatches); anything unsupported is an :class:`InputError` naming it.

    ``parameters``: the model's parameters in trace order, which the one group must hold
    exactly (any order).
    """
    torch = _torch()
    kind = type(optimizer)
    name = kind.__name__
    if kind not in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        raise InputError(f"optimizer: {name} is not an optimizer the toolkit models; "
                         f"supported: {_SUPPORTED}")
    if len(optimizer.param_groups) != 1:
        raise InputError(f"optimizer: {len(optimizer.param_groups)} parameter groups; one "
                         f"group holding every parameter of the model is supported")
    group = optimizer.param_groups[0]
    for option in ("maximize", "capturable", "differentiable"):
        if group.get(option):
            raise InputError(f"optimizer: {name}({option}=True) is not supported")
    if parameters is not None:
        held = group["params"]
        if len(held) != len(parameters) or any(
                not any(p is q for q in parameters) for p in held):
            raise InputError(f"optimizer: its parameter group holds {len(held)} tensors that "
                             f"are not exactly the model's {len(parameters)} parameters")
    if group.get("fused"):
        raise InputError(f"optimizer: {name}(fused=True) rounds differently from the "
                         f"single-tensor update, beyond the rounding model; use "
                         f"fused=False (foreach is fine)")
    if kind is torch.optim.SGD:
        return Optimizer("gd", exact(group["lr"]), momentum=exact(group["momentum"]),
                         weight_decay=exact(group["weight_decay"]),
                         dampening=exact(group["dampening"]),
                         nesterov=bool(group["nesterov"]))
    decoupled = kind is torch.optim.AdamW
    if group.get("decoupled_weight_decay", decoupled) != decoupled:
        raise InputError(f"optimizer: {name}(decoupled_weight_decay=True) is AdamW; use "
                         f"torch.optim.AdamW")
    return Optimizer("adamw" if decoupled else "adam", exact(group["lr"]),
                     betas=[exact(b) for b in group["betas"]], eps=exact(group["eps"]),
                     weight_decay=exact(group["weight_decay"]),
                     amsgrad=bool(group["amsgrad"]))


def check_fresh(optimizer):
    """Refuse an optimizer whose state is not empty (it has stepped before)."""
    for state in optimizer.state.values():
        if state:
            raise InputError(f"optimizer: {type(optimizer).__name__} already has state (it "
                             f"has stepped before); create the recorder before the first "
                             f"optimizer.step(): the toolkit's state starts at zero")
