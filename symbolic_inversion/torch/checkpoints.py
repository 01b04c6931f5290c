"""Traces from saved checkpoints: state dicts in memory, or ``.pt`` files.

:func:`trace_from_state_dicts` (also ``Trace.from_state_dicts``) takes the model's state
dict after every step; :func:`load_state_dicts` reads ``.pt`` files written by
``torch.save(model.state_dict(), path)``.  Files are data: each is read with
``torch.load(path, weights_only=True)`` (PyTorch's restricted unpickler: tensors and
plain containers, no code), and anything but a flat dict of floating-point tensors is
refused with one line.  On the command line::

    symbolic-inversion trace-from-checkpoints step_00.pt step_01.pt step_02.pt \\
        --activation tanh,identity --loss cross_entropy --optimizer adam --lr 0.01 \\
        --samples 6 -o trace.json

The files are taken in the order given (the first is the initial parameters); the
layer widths are read from the weights' shapes (``--layers`` checks them).  Every entry
must be a weight or bias of the chain of ``nn.Linear`` layers, in ``model.parameters()``
order, which is the forward's order for the models the recorder accepts
(:mod:`symbolic_inversion.torch.model`).
"""

import numpy as np

from ..errors import InputError
from ..network import Network
from ..optimizers import Optimizer

__all__ = ["trace_from_state_dicts", "load_state_dicts", "widths_of"]


def _vector(tensors):
    """Flatten tensors (torch or numpy) in order to one list of numpy floats."""
    values = []
    for tensor in tensors:
        if hasattr(tensor, "detach"):
            tensor = tensor.detach().cpu().numpy()
        values += list(np.asarray(tensor).reshape(-1))
    return values


def _kind(array):
    return str(getattr(array, "dtype", type(array).__name__)).replace("torch.", "")


def widths_of(state, field="state_dicts[0]"):
    """The layer widths (input to output) and whether the layers have biases, read from
    a state dict's shapes: weights ``(out, in)``, each optionally followed by its bias
    ``(out,)``.

    >>> import numpy as np
    >>> widths_of({"fc1.weight": np.zeros((4, 2)), "fc1.bias": np.zeros(4),
    ...            "fc2.weight": np.zeros((3, 4)), "fc2.bias": np.zeros(3)})
    ([2, 4, 3], True)
    >>> widths_of({"fc1.weight": np.zeros((4, 2)), "fc2.weight": np.zeros((3, 5))})
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: state_dicts[0]['fc2.weight']: shape (3, 5) does not take the 4 outputs of the layer before
    """
    layers, biases, open_weight = [], [], False  # open: a weight whose bias may follow
    for key, array in state.items():
        shape = tuple(np.shape(array))
        if len(shape) == 2:
            if layers and shape[1] != layers[-1]:
                raise InputError(f"{field}[{key!r}]: shape {shape} does not take the "
                                 f"{layers[-1]} outputs of the layer before")
            if open_weight:
                biases.append(False)
            if not layers:
                layers.append(shape[1])
            layers.append(shape[0])
            open_weight = True
        elif len(shape) == 1 and open_weight and shape[0] == layers[-1]:
            biases.append(True)
            open_weight = False
        else:
            raise InputError(f"{field}[{key!r}]: shape {shape} is not the weight or bias of "
                             f"a Linear layer in order (weight (out, in), then bias (out,))")
    if open_weight:
        biases.append(False)
    if not layers:
        raise InputError(f"{field}: no Linear weight")
    if len(set(biases)) > 1:
        raise InputError(f"{field}: every Linear layer must have a bias, or none")
    return layers, biases[0]


def trace_from_state_dicts(state_dicts, network, optimizer, samples, dtype=None,
                           loss_reduction=None, loss=None, clients=None, extra=None):
    """A trace from saved checkpoints: ``state_dicts[j]`` the model's state dict after
    ``j`` steps (tensors or numpy arrays).

    ``network`` is a :class:`~symbolic_inversion.network.Network` (the state dicts are
    then in ``model.parameters()`` order, checked against its shapes) or the model
    itself (its chain's entries are taken by name, :mod:`symbolic_inversion.torch.model`);
    ``optimizer`` an :class:`~symbolic_inversion.optimizers.Optimizer`, the trace file's
    optimizer object, or the ``torch.optim`` optimizer; ``dtype`` defaults to the
    arrays' own (``float32`` or ``float64``); ``loss`` a toolkit name, :class:`Loss
    <symbolic_inversion.losses.Loss>` or PyTorch loss module (default: ``mse`` with
    ``loss_reduction``, default ``"mean"``, PyTorch's ``nn.MSELoss()``, as version 1);
    ``clients`` and ``extra`` (``x-`` extension keys) go to the trace as they are
    (federated rounds: :mod:`symbolic_inversion.flower`).

    >>> import numpy as np
    >>> from symbolic_inversion import Network
    >>> states = [{"0.weight": np.array([[0.5]]), "0.bias": np.array([0.5])},
    ...           {"0.weight": np.array([[0.25]]), "0.bias": np.array([0.375])}]
    >>> trace = trace_from_state_dicts(states, Network([1, 1]), {"name": "gd", "lr": "0.1"},
    ...                                samples=2)
    >>> trace.dtype, trace.loss_reduction, trace.parameters[1]
    ('float64', 'mean', [Decimal('0.25'), Decimal('0.375')])
    """
    from ..trace import Trace
    from .loss import loss_of_module
    keys = None
    if not isinstance(network, Network):
        from .model import chain_of
        chain = chain_of(network)
        network, keys = chain.network, chain.parameter_names()
    if not isinstance(optimizer, (Optimizer, dict)):
        from .optim import optimizer_of
        optimizer = optimizer_of(optimizer)
    optimizer = Optimizer.from_dict(optimizer)
    if loss is None:
        loss = loss_of_module("mse", loss_reduction or "mean")
    else:
        loss = loss_of_module(loss, loss_reduction)
    if not isinstance(state_dicts, (list, tuple)) or len(state_dicts) < 2:
        raise InputError("state_dicts: expected a list of at least two state dicts")
    parameters, kinds = [], set()
    for j, state in enumerate(state_dicts):
        if not isinstance(state, dict) and not hasattr(state, "items"):
            raise InputError(f"state_dicts[{j}]: expected a dict of parameter arrays")
        if keys is not None:
            missing = [k for k in keys if k not in state]
            if missing:
                raise InputError(f"state_dicts[{j}]: no entry {missing[0]!r} (the model's "
                                 f"chain needs {', '.join(keys)})")
            arrays = [state[k] for k in keys]
        else:
            layers, bias = widths_of(state, f"state_dicts[{j}]")
            if layers != list(network.layers) or bias != network.bias:
                raise InputError(f"state_dicts[{j}]: shapes of a network {layers} "
                                 f"(bias={bias}), not {list(network.layers)} "
                                 f"(bias={network.bias})")
            arrays = list(state.values())
        kinds.update(_kind(a) for a in arrays)
        parameters.append(_vector(arrays))
    if dtype is None:
        if len(kinds) != 1 or next(iter(kinds)) not in ("float32", "float64"):
            raise InputError(f"dtype: the state dicts hold {', '.join(sorted(kinds))}; "
                             f"give dtype='float32' or 'float64'")
        dtype = kinds.pop()
    return Trace(network, optimizer.lr, samples, parameters, optimizer=optimizer,
                 dtype=dtype, loss=loss.name, loss_reduction=loss.reduction,
                 clients=clients, extra=extra)


def load_state_dicts(paths):
    """The state dicts of ``.pt`` files, read as data (``torch.load(path,
    weights_only=True)``); each must be a flat dict of floating-point tensors.  Any
    other content is an :class:`InputError` naming the file."""
    from .model import _torch
    torch = _torch()
    from ..limits import check
    check("max_trace_values", len(paths), "checkpoint files")
    states = []
    for path in paths:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except Exception as error:  # noqa: BLE001 - unpickling refused or not a checkpoint
            text = " ".join(str(error).split())
            raise InputError(f"{path}: not a checkpoint torch.load(weights_only=True) "
                             f"reads ({text[:120]})") from None
        if not isinstance(state, dict) or not state:
            raise InputError(f"{path}: expected a flat state dict (name -> tensor), got "
                             f"{type(state).__name__}")
        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise InputError(f"{path}: entry {key!r} is a {type(value).__name__}, not a "
                                 f"tensor; save model.state_dict() itself")
            if not value.is_floating_point():
                raise InputError(f"{path}: entry {key!r} holds {value.dtype}, not floats")
        states.append(state)
    return states
