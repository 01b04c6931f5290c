r"""Your own model: traces recorded from PyTorch training (optional extra ``torch``).

:class:`TraceRecorder` hooks into the user's own training loop: create it before the
first step (it snapshots the initial parameters), call :meth:`TraceRecorder.record`
after every ``optimizer.step()``, and :meth:`TraceRecorder.trace` returns a
:class:`~symbolic_inversion.trace.Trace` with

* the network read from the model: ``nn.Sequential`` of ``nn.Linear`` layers, each
  followed by at most one of ``nn.Tanh``, ``nn.Sigmoid``, ``nn.ReLU``, ``nn.Identity``
  (none: identity), biases on or off (the same for every layer);
* the optimizer read from ``torch.optim.SGD``: ``lr``, ``momentum``, ``weight_decay``
  (no nesterov, no dampening, no ``maximize``, one parameter group);
* ``dtype`` from the parameters (``float32`` or ``float64``): the trace holds the exact
  binary values and its uncertainty is the optimizer's rounding
  (:mod:`symbolic_inversion.floats`);
* ``loss_reduction`` from ``reduction`` (``"mean"``: ``nn.MSELoss()``'s default, the mean
  over samples *and* outputs; ``"sum_outputs"``: the toolkit's convention) or from the
  loss module itself (``reduction=nn.MSELoss()``).

Anything else (Adam, ``Conv2d``, ``BatchNorm``, nesterov, dampening, another loss, a
learning-rate schedule) is refused with an :class:`~symbolic_inversion.errors.InputError`
that names it.  The parameter order of the trace is ``model.parameters()`` flattened
(each weight row-major, then its bias): the toolkit's own order.

:func:`trace_from_state_dicts` (also ``Trace.from_state_dicts``) builds a trace from saved
checkpoints (state dicts of tensors or numpy arrays; PyTorch is not needed for arrays).

Examples (they need PyTorch, so they live in ``docs/pytorch.md`` and
``tests/test_torch.py``)::

    model = nn.Sequential(nn.Linear(1, 1), nn.Tanh()).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = TraceRecorder(model, optimizer, samples=len(X))
    for epoch in range(8):
        optimizer.zero_grad()
        nn.MSELoss()(model(X), Y).backward()
        optimizer.step()
        recorder.record()
    recover(recorder.trace())
"""

from decimal import Decimal

import numpy as np

from .errors import InputError
from .network import Network
from .optimizers import Optimizer

__all__ = ["TraceRecorder", "network_of", "optimizer_of", "trace_from_state_dicts"]

_ACTIVATIONS = {"Tanh": "tanh", "Sigmoid": "sigmoid", "ReLU": "relu", "Identity": "identity"}
_DTYPES = {"torch.float32": "float32", "torch.float64": "float64"}


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - the core install
        raise InputError("torch: PyTorch is not installed (pip install torch)") from None
    return torch


def _unwrap_opacus(model, optimizer):
    """Opacus's ``GradSampleModule`` and ``DPOptimizer`` (DP-SGD): the wrapped model and
    ``torch.optim.SGD``, and the noise level for the trace's ``dp_sgd`` field (``None``
    without Opacus)."""
    if type(model).__name__ == "GradSampleModule" and hasattr(model, "_module"):
        model = model._module
    if type(optimizer).__name__ == "DPOptimizer" and hasattr(optimizer, "original_optimizer"):
        noise = {"noise_multiplier": repr(float(optimizer.noise_multiplier)),
                 "max_grad_norm": repr(float(optimizer.max_grad_norm))}
        return model, optimizer.original_optimizer, noise
    return model, optimizer, None


def network_of(model):
    """The :class:`~symbolic_inversion.network.Network` of a supported ``nn.Sequential``.

    Refuses anything else with an :class:`InputError` naming the module.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(model, nn.Sequential):
        raise InputError(f"model: expected nn.Sequential of nn.Linear and activations, got "
                         f"{type(model).__name__}")
    layers, activations, biases, pending = [], [], [], False
    for index, module in enumerate(model):
        name = type(module).__name__
        if isinstance(module, nn.Linear):
            if layers and module.in_features != layers[-1]:
                raise InputError(f"model[{index}]: Linear({module.in_features}, "
                                 f"{module.out_features}) does not take the "
                                 f"{layers[-1]} outputs of the layer before")
            if pending:
                activations.append("identity")
            if not layers:
                layers.append(module.in_features)
            layers.append(module.out_features)
            biases.append(module.bias is not None)
            pending = True
        elif name in _ACTIVATIONS and type(module) is getattr(nn, name):
            if not pending:
                raise InputError(f"model[{index}]: {name} must follow an nn.Linear (one "
                                 f"activation per layer)")
            activations.append(_ACTIVATIONS[name])
            pending = False
        else:
            raise InputError(f"model[{index}]: unsupported layer {name}; supported: Linear, "
                             f"Tanh, Sigmoid, ReLU, Identity")
    if not layers:
        raise InputError("model: no nn.Linear layer")
    if pending:
        activations.append("identity")
    if len(set(biases)) > 1:
        raise InputError("model: every nn.Linear must have a bias, or none (bias=...)")
    return Network(layers, activations, bias=biases[0])


def _parameters(model):
    return [p for p in model.parameters()]


def _dtype_of(tensors, field="model"):
    kinds = {str(t.dtype) for t in tensors}
    if len(kinds) != 1 or next(iter(kinds)) not in _DTYPES:
        raise InputError(f"{field}: parameters must all be float32 or float64, got "
                         f"{', '.join(sorted(kinds))}")
    return _DTYPES[kinds.pop()]


def optimizer_of(optimizer, parameters=None):
    """The :class:`~symbolic_inversion.optimizers.Optimizer` of a ``torch.optim.SGD``
    (full batch: ``gd``); anything else is an :class:`InputError` naming it."""
    torch = _torch()
    name = type(optimizer).__name__
    if not isinstance(optimizer, torch.optim.SGD) or type(optimizer) is not torch.optim.SGD:
        raise InputError(f"optimizer: unsupported optimizer {name}; supported: "
                         f"torch.optim.SGD (lr, momentum, weight_decay)")
    if len(optimizer.param_groups) != 1:
        raise InputError("optimizer: one parameter group expected (every parameter with "
                         "the same lr, momentum, weight_decay)")
    group = optimizer.param_groups[0]
    for option, allowed in (("nesterov", False), ("dampening", 0), ("maximize", False)):
        if group.get(option, allowed) != allowed:
            raise InputError(f"optimizer.{option}: {option}={group[option]!r} is not "
                             f"supported (SGD without nesterov, dampening or maximize)")
    if parameters is not None and (len(group["params"]) != len(parameters) or any(
            a is not b for a, b in zip(group["params"], parameters))):
        raise InputError("optimizer: it must hold exactly the model's parameters, in "
                         "model.parameters() order")

    def exact(option):
        value = group[option]
        if hasattr(value, "item"):  # a tensor lr
            value = value.item()
        return Decimal(repr(float(value)))
    return Optimizer("gd", exact("lr"), exact("momentum"), exact("weight_decay"))


def _reduction(reduction):
    """``"mean"``/``"sum_outputs"`` from a name or an ``nn.MSELoss`` instance."""
    if isinstance(reduction, str):
        if reduction in ("mean", "sum_outputs"):
            return reduction
        raise InputError(f"reduction: expected 'mean' (nn.MSELoss()) or 'sum_outputs', got "
                         f"{reduction!r}")
    torch = _torch()
    if type(reduction) is torch.nn.MSELoss:
        if reduction.reduction == "mean":
            return "mean"
        raise InputError(f"reduction: nn.MSELoss(reduction={reduction.reduction!r}) is not "
                         f"supported; use the default 'mean'")
    raise InputError(f"reduction: unsupported loss {type(reduction).__name__}; supported: "
                     f"nn.MSELoss() (mean) or 'sum_outputs'")


def _vector(tensors):
    """Flatten tensors (torch or numpy) in order to one list of numpy floats."""
    values = []
    for tensor in tensors:
        if hasattr(tensor, "detach"):
            tensor = tensor.detach().cpu().numpy()
        values += list(np.asarray(tensor).reshape(-1))
    return values


class TraceRecorder:
    """Record a PyTorch training run as a trace (module docstring).

    Parameters
    ==========

    model : nn.Sequential
        ``nn.Linear`` layers and ``nn.Tanh``/``nn.Sigmoid``/``nn.ReLU``/``nn.Identity``.
    optimizer : torch.optim.SGD
        Holding exactly ``model.parameters()``.
    samples : int or sized
        ``n``, the number of training samples (or the training inputs: their length).
    reduction : ``"mean"`` (default, ``nn.MSELoss()``), ``"sum_outputs"``, or the
        ``nn.MSELoss`` module used.

    Examples are in ``docs/pytorch.md`` and ``tests/test_torch.py`` (they need PyTorch).
    """

    def __init__(self, model, optimizer, samples, reduction="mean"):
        model, optimizer, self.dp_sgd = _unwrap_opacus(model, optimizer)
        self.network = network_of(model)
        self.model = model
        self._params = _parameters(model)
        self.optimizer = optimizer
        self.rule = optimizer_of(optimizer, self._params)
        if not isinstance(samples, int) or isinstance(samples, bool):
            try:
                samples = len(samples)
            except TypeError:
                raise InputError(f"samples: expected the number of training samples, got "
                                 f"{samples!r}") from None
        if samples < 1:
            raise InputError(f"samples: must be a positive integer, got {samples!r}")
        self.samples = samples
        self.loss_reduction = _reduction(reduction)
        self.dtype = _dtype_of(self._params)
        self.parameters = [self._snapshot()]
        self.batches = []

    def _snapshot(self):
        return _vector(self._params)

    def record(self, batch=None):
        """Snapshot the parameters after an ``optimizer.step()``.

        ``batch``: the sample indices this step used (minibatch SGD with a known
        schedule); ``None`` is a full-batch step.
        """
        if optimizer_of(self.optimizer) != self.rule:
            raise InputError("optimizer: lr, momentum or weight_decay changed during "
                             "training (a learning-rate schedule is not supported)")
        if _dtype_of(self._params) != self.dtype:
            raise InputError("model: the parameters changed dtype during training")
        if batch is not None:
            batch = [int(i) for i in (batch.tolist() if hasattr(batch, "tolist") else batch)]
        self.batches.append(batch)
        self.parameters.append(self._snapshot())

    def trace(self):
        """The :class:`~symbolic_inversion.trace.Trace` of the steps recorded so far."""
        from .trace import Trace
        if len(self.parameters) < 2:
            raise InputError("trace: record() after at least one optimizer.step()")
        rule, batches = self.rule, None
        if any(b is not None for b in self.batches):
            if any(b is None for b in self.batches):
                raise InputError("batches: give record(batch=...) at every step or at none")
            batches = self.batches
            size = max(len(b) for b in batches)
            if any(b != list(range(self.samples)) for b in batches):
                rule = rule.replace(name="sgd", batch_size=size)
        extra = {"dp_sgd": self.dp_sgd} if self.dp_sgd else None
        return Trace(self.network, rule.lr, self.samples, self.parameters, optimizer=rule,
                     batches=batches if rule.name == "sgd" else None, extra=extra,
                     loss_reduction=self.loss_reduction, dtype=self.dtype)


def trace_from_state_dicts(state_dicts, network, optimizer, samples, dtype=None,
                           loss_reduction=None):
    """A trace from saved checkpoints: ``state_dicts[j]`` the model's state dict after
    ``j`` steps (tensors or numpy arrays, in ``model.state_dict()`` order, which is
    ``model.parameters()`` order for the supported models).

    ``network`` is a :class:`~symbolic_inversion.network.Network` or the
    ``nn.Sequential`` itself; ``optimizer`` an
    :class:`~symbolic_inversion.optimizers.Optimizer`, the trace file's optimizer object,
    or the ``torch.optim.SGD``; ``dtype`` defaults to the arrays' own (``float32`` or
    ``float64``); ``loss_reduction`` to ``"mean"`` (PyTorch's ``nn.MSELoss()``).

    >>> import numpy as np
    >>> from symbolic_inversion import Network
    >>> states = [{"0.weight": np.array([[0.5]]), "0.bias": np.array([0.5])},
    ...           {"0.weight": np.array([[0.25]]), "0.bias": np.array([0.375])}]
    >>> trace = trace_from_state_dicts(states, Network([1, 1]), {"name": "gd", "lr": "0.1"},
    ...                                samples=2)
    >>> trace.dtype, trace.loss_reduction, trace.parameters[1]
    ('float64', 'mean', [Decimal('0.25'), Decimal('0.375')])
    """
    from .trace import Trace
    if not isinstance(network, Network):
        network = network_of(network)
    if not isinstance(optimizer, Optimizer) and not isinstance(optimizer, dict):
        optimizer = optimizer_of(optimizer)
    optimizer = Optimizer.from_dict(optimizer)
    if not isinstance(state_dicts, (list, tuple)) or len(state_dicts) < 2:
        raise InputError("state_dicts: expected a list of at least two state dicts")
    parameters, kinds = [], set()
    for j, state in enumerate(state_dicts):
        if not hasattr(state, "values"):
            raise InputError(f"state_dicts[{j}]: expected a dict of parameter arrays")
        arrays = list(state.values())
        for array in arrays:
            kind = str(getattr(array, "dtype", type(array).__name__)).replace("torch.", "")
            kinds.add(kind)
        parameters.append(_vector(arrays))
    if dtype is None:
        if len(kinds) != 1 or next(iter(kinds)) not in ("float32", "float64"):
            raise InputError(f"dtype: the state dicts hold {', '.join(sorted(kinds))}; "
                             f"give dtype='float32' or 'float64'")
        dtype = kinds.pop()
    return Trace(network, optimizer.lr, samples, parameters, optimizer=optimizer,
                 dtype=dtype, loss_reduction=loss_reduction or "mean")


def main(argv=None):
    """``python -m symbolic_inversion.torch SCRIPT.py [ARGS...]``: run your own training
    script; if the toolkit refuses the model, optimizer or loss (an
    :class:`~symbolic_inversion.errors.InputError`), print one line naming it on stderr
    and exit 2, as the command line does.  Returns the exit status.

    >>> main([])
    2
    """
    import runpy
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m symbolic_inversion.torch SCRIPT.py [ARGS...]",
              file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(argv[0], run_name="__main__")
    except InputError as error:
        print(f"symbolic-inversion: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"symbolic-inversion: error: cannot run {argv[0]}: {error}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
