"""The network a PyTorch model computes: a chain of ``nn.Linear`` layers and activations.

:func:`chain_of` reads the computation of any ``nn.Module`` (an ``nn.Sequential``, a
subclass with its own ``forward``, ``nn.Sequential`` blocks inside it) with
``torch.fx.symbolic_trace``: every node of the traced graph must continue one chain that
starts at the model's one input and ends at its output, and each must be

* ``nn.Linear`` (the same bias setting in every layer);
* an activation the toolkit models, as a module or a function:
  ``nn.Tanh``/``torch.tanh``/``x.tanh()``, ``nn.Sigmoid``/``torch.sigmoid``,
  ``nn.ReLU``/``F.relu``/``torch.relu``/``x.relu()``, ``nn.LeakyReLU(slope)``/
  ``F.leaky_relu``, ``nn.GELU()``/``F.gelu`` (and ``approximate="tanh"``),
  ``nn.SiLU``/``F.silu``, ``nn.Softplus()``/``F.softplus`` (default ``beta`` and
  ``threshold`` only);
* a no-op for the data: ``nn.Identity``, ``nn.Flatten``/``torch.flatten``/
  ``x.flatten`` from dimension 1 (the recovered inputs are the flattened vectors),
  ``nn.Dropout`` (only while the model is in eval mode, or with ``p = 0``; checked at
  every forward by :class:`~symbolic_inversion.torch.TraceRecorder`).

The first node that is anything else is refused with one line naming it, e.g.
``model: unsupported operation 'conv1' (Conv2d) at node 1``.  When ``torch.fx`` cannot
trace the forward (data-dependent control flow), the module tree's leaves in
registration order stand in, and the recorder checks at the first forward that they
reproduce the model's output.

The trace's parameter order is the toolkit's: layer by layer, each weight row-major,
then its bias.  It must be ``model.parameters()``'s order (so that state dicts and
checkpoints, which are in registration order, mean the same vector): a model that
registers its layers in another order than its forward uses them, has parameters the
chain does not use, or uses one layer twice is refused with one line.
"""

import operator

from ..errors import InputError
from ..network import Network

__all__ = ["Chain", "chain_of"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - the core install
        raise InputError("torch: PyTorch is not installed (pip install torch)") from None
    return torch


class Chain:
    """What :func:`chain_of` found: the :class:`~symbolic_inversion.network.Network`, the
    ``nn.Linear`` modules in the order of the computation (with their names), the
    ``nn.Dropout`` modules whose mode matters, and how the chain was found (``"fx"`` or
    ``"modules"``; the latter is checked against the model's output at the first
    forward, :meth:`reproduces`)."""

    def __init__(self, network, linears, names, dropouts, source, leaves=None):
        self.network = network
        self.linears = linears
        self.names = names
        self.dropouts = dropouts
        self.source = source
        self.leaves = leaves or []

    def parameters(self):
        """The parameters in trace order (weight, then bias, layer by layer)."""
        out = []
        for linear in self.linears:
            out.append(linear.weight)
            if linear.bias is not None:
                out.append(linear.bias)
        return out

    def parameter_names(self):
        """The state-dict keys of :meth:`parameters` (``fc1.weight``, ``fc1.bias``, ...)."""
        out = []
        for name, linear in zip(self.names, self.linears):
            out.append(f"{name}.weight")
            if linear.bias is not None:
                out.append(f"{name}.bias")
        return out

    def active_dropout(self):
        """The name of a dropout that changes the data now (training mode, ``p > 0``)."""
        for name, module in self.dropouts:
            if module.training and module.p > 0:
                return name
        return None

    def reproduces(self, inputs, output):
        """Whether applying the module tree's leaves in order to ``inputs`` gives
        ``output`` (the check of the ``"modules"`` fallback; always true for ``"fx"``)."""
        if self.source == "fx":
            return True
        torch = _torch()
        with torch.no_grad():
            value = inputs
            for module in self.leaves:
                value = module(value)
            if value.shape != output.shape:
                return False
            scale = 1 + float(output.detach().abs().max())
            tolerance = 1e-4 if output.dtype == torch.float32 else 1e-10
            return float((value - output.detach()).abs().max()) <= tolerance * scale


def _decimal(value):
    """A Python float as the shortest decimal that names it (PyTorch's hyperparameters
    are binary floats; ``0.2`` means the float nearest 0.2)."""
    return repr(float(value))


def _module_step(module, name):
    """``("linear", module)``, ``("activation", name)``, ``("skip", None)``,
    ``("dropout", module)`` for a supported leaf module; ``None`` otherwise (and a
    reason string for a supported type with unsupported options)."""
    torch = _torch()
    nn = torch.nn
    kind = type(module)
    if kind is nn.Linear:
        return ("linear", module), None
    simple = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu", nn.SiLU: "silu"}
    if kind in simple:
        return ("activation", simple[kind]), None
    if kind is nn.LeakyReLU:
        return ("activation", _leaky(module.negative_slope)), None
    if kind is nn.GELU:
        return _gelu(module.approximate)
    if kind is nn.Softplus:
        return _softplus(module.beta, module.threshold)
    if kind is nn.Identity:
        return ("skip", None), None
    if kind is nn.Flatten:
        if module.start_dim != 1 or module.end_dim != -1:
            return None, (f"Flatten(start_dim={module.start_dim}, end_dim="
                          f"{module.end_dim}); only start_dim=1, end_dim=-1 keeps the batch")
        return ("skip", None), None
    if kind is nn.Dropout:
        return ("dropout", module), None
    return None, None


def _leaky(slope):
    slope = _decimal(slope)
    return "leaky_relu" if slope == "0.01" else f"leaky_relu:{slope}"


def _gelu(approximate):
    if approximate == "none":
        return ("activation", "gelu"), None
    if approximate == "tanh":
        return ("activation", "gelu_tanh"), None
    return None, f"GELU(approximate={approximate!r})"


def _softplus(beta, threshold):
    if float(beta) != 1 or float(threshold) != 20:
        return None, (f"Softplus(beta={beta}, threshold={threshold}); only the defaults "
                      f"beta=1, threshold=20 are modelled")
    return ("activation", "softplus"), None


def _options(node, names, defaults):
    """The options of a ``call_function``/``call_method`` node after its input, by name
    (positional or keyword), with ``defaults``; ``None`` when one is itself a node (a
    value computed by the model, not a constant)."""
    torch = _torch()
    values = dict(defaults)
    for key, value in zip(names, node.args[1:]):
        values[key] = value
    for key, value in node.kwargs.items():
        values[key] = value
    if len(node.args) - 1 > len(names) or any(k not in defaults for k in node.kwargs):
        return None
    if any(isinstance(v, torch.fx.Node) for v in values.values()):
        return None
    return values


def _function_step(node):
    """The step of a ``call_function`` or ``call_method`` node (as :func:`_module_step`)."""
    torch = _torch()
    F = torch.nn.functional
    target = node.target
    if node.op == "call_method":
        simple = {"tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid",
                  "sigmoid_": "sigmoid", "relu": "relu", "relu_": "relu"}
        if target in simple and len(node.args) == 1 and not node.kwargs:
            return ("activation", simple[target]), None
        if target == "flatten":
            options = _options(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return _flatten(options)
        return None, None
    simple = {torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid",
              F.sigmoid: "sigmoid", torch.relu: "relu"}
    if target in simple:
        return (("activation", simple[target]), None) if len(node.args) == 1 \
            and not node.kwargs else (None, None)
    if target is F.relu or target is F.silu:
        options = _options(node, ("inplace",), {"inplace": False})
        name = "relu" if target is F.relu else "silu"
        return (("activation", name), None) if options is not None else (None, None)
    if target is F.leaky_relu:
        options = _options(node, ("negative_slope", "inplace"),
                           {"negative_slope": 0.01, "inplace": False})
        if options is None:
            return None, None
        return ("activation", _leaky(options["negative_slope"])), None
    if target is F.gelu:
        options = _options(node, ("approximate",), {"approximate": "none"})
        return _gelu(options["approximate"]) if options is not None else (None, None)
    if target is F.softplus:
        options = _options(node, ("beta", "threshold"), {"beta": 1, "threshold": 20})
        return _softplus(options["beta"], options["threshold"]) if options is not None \
            else (None, None)
    if target is torch.flatten:
        options = _options(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
        return _flatten(options)
    if target is F.dropout:
        options = _options(node, ("p", "training", "inplace"),
                           {"p": 0.5, "training": True, "inplace": False})
        if options is not None and float(options["p"]) == 0:
            return ("skip", None), None
        # F.dropout(x, p, self.training): torch.fx bakes the mode at trace time
        return None, "F.dropout with p > 0 (use nn.Dropout, checked at every forward)"
    return None, None


def _flatten(options):
    if options is None:
        return None, None
    if options["start_dim"] != 1 or options["end_dim"] != -1:
        return None, (f"flatten(start_dim={options['start_dim']}, end_dim="
                      f"{options['end_dim']}); only start_dim=1, end_dim=-1 keeps the batch")
    return ("skip", None), None


def _operation_name(node, model):
    """``'conv1' (Conv2d)``, ``'add' (operator.add)``, ``'view' (Tensor.view)``."""
    if node.op == "call_module":
        return f"'{node.target}' ({type(model.get_submodule(node.target)).__name__})"
    if node.op == "call_method":
        return f"'{node.name}' (Tensor.{node.target})"
    if node.op == "call_function":
        target = node.target
        module = getattr(target, "__module__", None) or ""
        if target in vars(operator).values():
            module = "operator"
        qualified = f"{module}.{getattr(target, '__name__', str(target))}".lstrip(".")
        return f"'{node.name}' ({qualified.replace('torch._C._nn.', 'F.')})"
    if node.op == "get_attr":
        return f"'{node.target}' (a tensor of the model used directly)"
    return f"'{node.name}' ({node.op})"


def _refuse(what, index, detail=None):
    text = f"model: unsupported operation {what} at node {index}"
    raise InputError(f"{text}: {detail}" if detail else text)


def _steps_from_fx(model):
    """The steps of the traced graph, or raise :class:`InputError` at the first node
    that is not one; ``None`` when ``torch.fx`` cannot trace the model."""
    torch = _torch()
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as error:  # noqa: BLE001 - any failure: the module tree instead
        return None, " ".join(str(error).split())[:120] or type(error).__name__
    steps, current = [], None
    for index, node in enumerate(graph.nodes):
        if node.op == "placeholder":
            if current is not None:
                raise InputError(f"model: forward takes more than one input ({node.name!r} "
                                 f"at node {index}); a chain has one")
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                _refuse(_operation_name(node, model), index,
                        "the output is not the end of one chain")
            break
        what = _operation_name(node, model)
        inputs = [a for a in node.all_input_nodes]
        if current is None or inputs != [current] or (node.args and node.args[0] is not
                                                     current):
            _refuse(what, index, "not a step of one chain from the input")
        if node.op == "call_module":
            module = model.get_submodule(node.target)
            step, reason = _module_step(module, node.target)
            if step and step[0] in ("linear", "dropout"):
                step = (step[0], (node.target, module))
        elif node.op in ("call_function", "call_method"):
            step, reason = _function_step(node)
        else:
            step, reason = None, None
        if step is None:
            _refuse(what, index, reason)
        steps.append((index, what, step))
        current = node
    return steps, None


def _steps_from_modules(model):
    """The steps of the module tree's leaves in registration order (the fallback)."""
    steps, leaves = [], []
    for name, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        if not name:  # the model itself is a leaf: one module
            name = type(module).__name__
        what = f"'{name}' ({type(module).__name__})"
        step, reason = _module_step(module, name)
        if step is None:
            raise InputError(f"model: unsupported module {what}"
                             + (f": {reason}" if reason else ""))
        if step[0] in ("linear", "dropout"):
            step = (step[0], (name, module))
        steps.append((len(steps), what, step))
        leaves.append(module)
    return steps, leaves


def chain_of(model):
    """The :class:`Chain` of ``model`` (module docstring); an :class:`InputError` names
    the first operation that is not a step of a supported chain.

    Examples (PyTorch is needed, so they live in ``tests/test_torch.py``)::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(2, 4), nn.Linear(4, 3)
            def forward(self, x):
                return self.fc2(F.gelu(self.fc1(x)))
        chain_of(MLP()).network       # Network([2, 4, 3], ['gelu', 'identity'])
    """
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model: expected an nn.Module, got {type(model).__name__}")
    steps, failure = _steps_from_fx(model)
    source, leaves = "fx", None
    if steps is None:
        steps, leaves = _steps_from_modules(model)
        source = "modules"
    layers, activations, biases, linears, names, dropouts = [], [], [], [], [], []
    pending = False  # a Linear waits for its activation
    for index, what, (kind, value) in steps:
        where = f"at node {index}" if source == "fx" else f"(module {index})"
        if kind == "linear":
            name, module = value
            if layers and module.in_features != layers[-1]:
                raise InputError(f"model: {what} {where} takes {module.in_features} "
                                 f"inputs, the layer before gives {layers[-1]}")
            if any(module is seen for seen in linears):
                raise InputError(f"model: {what} {where} is used twice (shared weights)")
            if pending:
                activations.append("identity")
            if not layers:
                layers.append(module.in_features)
            layers.append(module.out_features)
            biases.append(module.bias is not None)
            linears.append(module)
            names.append(name)
            pending = True
        elif kind == "activation":
            if not pending:
                raise InputError(f"model: {what} {where} must follow an nn.Linear (one "
                                 f"activation per layer)")
            activations.append(value)
            pending = False
        elif kind == "dropout":
            dropouts.append(value)
    if not layers:
        raise InputError("model: no nn.Linear layer")
    if pending:
        activations.append("identity")
    if len(set(biases)) > 1:
        raise InputError("model: every nn.Linear must have a bias, or none (bias=...)")
    chain = Chain(Network(layers, activations, bias=biases[0]), linears, names, dropouts,
                  source, leaves)
    _check_parameter_order(model, chain)
    return chain


def _check_parameter_order(model, chain):
    """``model.parameters()`` must be the chain's parameters in trace order."""
    expected = chain.parameters()
    named = list(model.named_parameters())
    for position, (name, parameter) in enumerate(named):
        if not any(parameter is p for p in expected):
            raise InputError(f"model: parameter {name!r} is not used by the chain of "
                             f"Linear layers (only their weights and biases may train)")
        if position >= len(expected) or parameter is not expected[position]:
            wanted = chain.parameter_names()[position] if position < len(expected) else "-"
            raise InputError(f"model: model.parameters() lists {name!r} where the "
                             f"computation's order has {wanted!r}; register the layers in "
                             f"the order forward uses them (the trace's parameter order is "
                             f"model.parameters() flattened)")
    if len(named) != len(expected):
        raise InputError(f"model: {len(expected) - len(named)} parameters of the chain are "
                         f"not in model.parameters()")
