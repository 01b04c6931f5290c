"""The loss of a PyTorch run: declared as a module, or read from the loss tensor.

Two ways, and they must agree (:class:`~symbolic_inversion.torch.TraceRecorder` checks):

* :func:`loss_of_module`: the loss module itself, ``nn.MSELoss()`` (``reduction="mean"``,
  the toolkit's ``mse``/``mean``), ``nn.CrossEntropyLoss()`` (``mean`` or ``sum``: class
  indices or probability vectors), ``nn.BCEWithLogitsLoss()`` (``mean`` or ``sum``); a
  toolkit name (``"cross_entropy"``) or :class:`~symbolic_inversion.losses.Loss` also
  declares one.  Options the toolkit does not model are refused with one line:
  ``weight``, ``pos_weight``, ``label_smoothing``, a non-default ``ignore_index``,
  ``reduction="none"``, ``nn.MSELoss(reduction="sum")``; so is any other loss class
  (``nn.NLLLoss``, ``nn.L1Loss``, a subclass).
* :func:`loss_of_tensor`: the loss tensor of a step, from its ``grad_fn`` chain:
  ``MseLossBackward0``; ``NllLossBackward0`` on ``LogSoftmaxBackward0`` (class indices);
  ``[DivBackward1] NegBackward0 SumBackward0 MulBackward0 LogSoftmaxBackward0``
  (probability vectors; the division by the batch for ``mean``);
  ``BinaryCrossEntropyWithLogitsBackward0``.  The saved attributes (``reduction``,
  ``weight``, ``ignore_index``, ``pos_weight``) are read where PyTorch keeps them after
  ``backward()``.  Anything else (a sum of two losses, a regulariser, a loss on
  transformed outputs) is refused naming its first node.

``label_smoothing`` on probability vectors leaves no trace in the graph (PyTorch smooths
the target before the product); the labels recovered are then the smoothed ones.
"""

from ..errors import InputError
from ..losses import Loss, get_loss

__all__ = ["loss_of_module", "loss_of_tensor", "describe"]

_SUPPORTED = "nn.MSELoss(), nn.CrossEntropyLoss(), nn.BCEWithLogitsLoss()"
# PyTorch's reduction enum (at::Reduction): what grad_fn nodes save
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def describe(loss):
    """The PyTorch module a toolkit :class:`~symbolic_inversion.losses.Loss` stands for
    (for messages).

    >>> describe(get_loss("cross_entropy", "sum"))
    "nn.CrossEntropyLoss(reduction='sum')"
    >>> describe(get_loss("mse", "sum_outputs"))
    "mse (reduction 'sum_outputs', the toolkit's own)"
    """
    names = {"mse": "nn.MSELoss", "cross_entropy": "nn.CrossEntropyLoss",
             "bce_with_logits": "nn.BCEWithLogitsLoss"}
    if loss.name == "mse" and loss.reduction == "sum_outputs":
        return "mse (reduction 'sum_outputs', the toolkit's own)"
    if loss.name not in names:
        return f"{loss.name} (reduction {loss.reduction!r})"
    shown = "" if loss.reduction == "mean" else f"reduction={loss.reduction!r}"
    return f"{names[loss.name]}({shown})"


def _torch():
    from .model import _torch
    return _torch()


def loss_of_module(loss, reduction=None):
    """The toolkit :class:`~symbolic_inversion.losses.Loss` a declaration stands for.

    ``loss`` is a PyTorch loss module, a toolkit name or :class:`Loss`; ``reduction``
    (a toolkit reduction name) goes with a name.  Unsupported: an :class:`InputError`
    naming the module or option.

    >>> loss_of_module("cross_entropy")
    Loss('cross_entropy', reduction='mean')
    >>> loss_of_module("hinge")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: loss: unknown loss 'hinge'; known: mse, cross_entropy, bce_with_logits
    """
    if isinstance(loss, (str, Loss)):
        return get_loss(loss, reduction)
    torch = _torch()
    nn = torch.nn
    kind = type(loss)
    if not isinstance(loss, nn.Module):
        raise InputError(f"loss: expected a loss module ({_SUPPORTED}) or a loss name, got "
                         f"{kind.__name__}")
    if reduction is not None:
        raise InputError("reduction: the loss module carries its own reduction")
    name = f"nn.{kind.__name__}" if getattr(nn, kind.__name__, None) is kind else \
        kind.__name__
    if kind not in (nn.MSELoss, nn.CrossEntropyLoss, nn.BCEWithLogitsLoss):
        raise InputError(f"loss: {name} is not a loss the toolkit models; supported: "
                         f"{_SUPPORTED}")
    mode = loss.reduction
    if mode == "none" or (kind is nn.MSELoss and mode != "mean"):
        allowed = "'mean'" if kind is nn.MSELoss else "'mean' or 'sum'"
        raise InputError(f"loss: {name}(reduction={mode!r}) is not modelled; use {allowed}")
    if kind is nn.MSELoss:
        return get_loss("mse", "mean")
    if getattr(loss, "weight", None) is not None:
        raise InputError(f"loss: {name}(weight=...) is not modelled (class weights)")
    if kind is nn.BCEWithLogitsLoss:
        if loss.pos_weight is not None:
            raise InputError(f"loss: {name}(pos_weight=...) is not modelled")
        return get_loss("bce_with_logits", mode)
    if loss.label_smoothing:
        raise InputError(f"loss: {name}(label_smoothing={loss.label_smoothing}) is not "
                         f"modelled")
    if loss.ignore_index != -100:
        raise InputError(f"loss: {name}(ignore_index={loss.ignore_index}) is not modelled "
                         f"(every sample must count)")
    return get_loss("cross_entropy", mode)


def _next(node, position=0):
    """The ``position``-th input node of a grad_fn node (``None`` for a leaf)."""
    functions = [f for f, _ in node.next_functions]
    return functions[position] if position < len(functions) else None


def _name(node):
    return type(node).__name__ if node is not None else "None"


def _saved(node, attribute):
    """A saved attribute of a grad_fn node; ``"present"`` for a saved tensor that
    ``backward()`` has freed (it was there: e.g. a class ``weight``)."""
    try:
        return getattr(node, attribute)
    except RuntimeError:
        return "present"


def _reduction(node, what):
    code = _saved(node, "_saved_reduction")
    mode = _REDUCTIONS.get(code)
    if mode is None or mode == "none":
        raise InputError(f"record(loss=...): {what} with reduction={mode or code!r} is not "
                         f"modelled")
    return mode


def loss_of_tensor(tensor, output=None, batch=None):
    """The toolkit :class:`Loss` that computed ``tensor`` (a loss value of this step,
    before or after its ``backward()``), and the grad_fn node of the logits it was
    computed on; ``output``, when given, is the grad_fn of the model's last output,
    which the logits must be, and ``batch`` the batch size the model saw.

    Anything it does not recognise is an :class:`InputError` naming the first node.
    """
    torch = _torch()
    if not isinstance(tensor, torch.Tensor) or tensor.grad_fn is None:
        got = type(tensor).__name__ if not isinstance(tensor, torch.Tensor) else \
            "a tensor without grad_fn"
        raise InputError(f"record(loss=...): expected this step's loss tensor (the one "
                         f"backward() was called on), got {got}")
    if tensor.numel() != 1:
        raise InputError(f"record(loss=...): expected one loss value, got a tensor of shape "
                         f"{tuple(tensor.shape)} (reduction='none' is not modelled)")
    top = tensor.grad_fn
    name = _name(top)
    if name == "MseLossBackward0":
        mode = _reduction(top, "nn.MSELoss")
        if mode != "mean":
            raise InputError(f"record(loss=...): nn.MSELoss(reduction={mode!r}) is not "
                             f"modelled; use 'mean'")
        loss, logits = get_loss("mse", "mean"), _next(top)
    elif name == "NllLossBackward0":
        logits = _next(top)
        if _name(logits) != "LogSoftmaxBackward0":
            raise InputError(f"record(loss=...): nn.NLLLoss on {_name(logits)} is not "
                             f"modelled (nn.CrossEntropyLoss is: log_softmax then nll)")
        _check_log_softmax(logits)
        mode = _reduction(top, "nn.CrossEntropyLoss")
        if _saved(top, "_saved_weight") is not None:
            raise InputError("record(loss=...): nn.CrossEntropyLoss(weight=...) is not "
                             "modelled (class weights)")
        ignore = _saved(top, "_saved_ignore_index")
        if isinstance(ignore, int) and ignore >= 2 ** 63:  # saved as unsigned
            ignore -= 2 ** 64
        if ignore != -100:
            raise InputError(f"record(loss=...): nn.CrossEntropyLoss(ignore_index={ignore}) "
                             f"is not modelled (every sample must count)")
        loss, logits = get_loss("cross_entropy", mode), _next(logits)
    elif name == "BinaryCrossEntropyWithLogitsBackward0":
        mode = _reduction(top, "nn.BCEWithLogitsLoss")
        for option in ("weight", "pos_weight"):
            if _saved(top, f"_saved_{option}") is not None:
                raise InputError(f"record(loss=...): nn.BCEWithLogitsLoss({option}=...) is "
                                 f"not modelled")
        loss, logits = get_loss("bce_with_logits", mode), _next(top)
    elif name in ("DivBackward1", "NegBackward0"):
        loss, logits = _soft_cross_entropy(top, batch)
    elif name == "AddBackward0" and _smoothing(top):
        raise InputError("record(loss=...): nn.CrossEntropyLoss(label_smoothing=...) is "
                         "not modelled")
    else:
        raise InputError(f"record(loss=...): the loss was computed by {name}, not by a loss "
                         f"the toolkit models ({_SUPPORTED} on the model's output)")
    if output is not None and logits is not output:
        raise InputError(f"record(loss=...): the {describe(loss)} was computed on "
                         f"{_name(logits)}, not on the model's output (its last node is "
                         f"{_name(output)}); apply the loss to model(x) itself")
    return loss, logits


def _check_log_softmax(node):
    dim = _saved(node, "_saved_dim")
    if dim not in (1, -1):
        raise InputError(f"record(loss=...): log_softmax over dimension {dim} is not "
                         f"modelled (classes are dimension 1)")


def _soft_cross_entropy(top, batch):
    """``nn.CrossEntropyLoss`` on probability vectors: ``-(p * log_softmax(f)).sum()``,
    divided by the batch for ``mean``."""
    node, mode = top, "sum"
    if _name(node) == "DivBackward1":
        divisor = _saved(node, "_saved_other")
        if batch is not None and divisor != batch:
            raise InputError(f"record(loss=...): the loss divides by {divisor}, not by the "
                             f"batch of {batch}")
        node, mode = _next(node), "mean"
    chain = [node, _next(node) if node is not None else None]
    chain.append(_next(chain[1]) if chain[1] is not None else None)
    chain.append(_next(chain[2]) if chain[2] is not None else None)
    names = [_name(n) for n in chain]
    if names == ["NegBackward0", "SumBackward0", "MulBackward0", "LogSoftmaxBackward0"]:
        _check_log_softmax(chain[3])
        return get_loss("cross_entropy", mode), _next(chain[3])
    if names[:3] == ["NegBackward0", "SumBackward0", "MulBackward0"] and \
            names[3] == "MulBackward0":
        raise InputError("record(loss=...): nn.CrossEntropyLoss(weight=...) is not "
                         "modelled (class weights)")
    raise InputError(f"record(loss=...): the loss was computed by {_name(top)} on "
                     f"{' <- '.join(names[:2])}, not by a loss the toolkit models "
                     f"({_SUPPORTED} on the model's output)")


def _smoothing(node):
    """Whether an ``AddBackward0`` is label smoothing's mix of two cross-entropies:
    ``(1 - a) nll(log_softmax(f)) + (a / m) (smoothing term)``, both scaled by
    ``MulBackward1``, the first on ``NllLossBackward0``."""
    inputs = [f for f, _ in node.next_functions]
    if len(inputs) != 2 or any(_name(f) != "MulBackward1" for f in inputs):
        return False
    return _name(_next(inputs[0])) == "NllLossBackward0"
