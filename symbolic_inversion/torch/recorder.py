"""``TraceRecorder``: a PyTorch training loop recorded as a trace (see the package
docstring of :mod:`symbolic_inversion.torch`)."""

import weakref

from ..errors import InputError
from .checkpoints import _vector
from .data import IndexedLoader
from .loss import describe, loss_of_module, loss_of_tensor
from .model import _torch, chain_of
from .optim import check_fresh, exact, hyperparameters, optimizer_of

__all__ = ["TraceRecorder"]

_DTYPES = {"torch.float32": "float32", "torch.float64": "float64"}


def _unwrap_opacus(model, optimizer):
    """Opacus's ``GradSampleModule`` and ``DPOptimizer`` (DP-SGD): the wrapped model and
    optimizer, and the noise level for the trace's ``dp_sgd`` field (``None`` without
    Opacus)."""
    if type(model).__name__ == "GradSampleModule" and hasattr(model, "_module"):
        model = model._module
    if type(optimizer).__name__ == "DPOptimizer" and hasattr(optimizer, "original_optimizer"):
        noise = {"noise_multiplier": repr(float(optimizer.noise_multiplier)),
                 "max_grad_norm": repr(float(optimizer.max_grad_norm))}
        return model, optimizer.original_optimizer, noise
    return model, optimizer, None


def _dtype_of(tensors, field="model"):
    kinds = {str(t.dtype) for t in tensors}
    if len(kinds) != 1 or next(iter(kinds)) not in _DTYPES:
        raise InputError(f"{field}: parameters must all be float32 or float64, got "
                         f"{', '.join(sorted(kinds))}")
    return _DTYPES[kinds.pop()]


def _samples(samples):
    if samples is None:
        raise InputError("samples: give the number of training samples (samples=n)")
    if not isinstance(samples, int) or isinstance(samples, bool):
        try:
            samples = len(samples)
        except TypeError:
            raise InputError(f"samples: expected the number of training samples, got "
                             f"{samples!r}") from None
    if samples < 1:
        raise InputError(f"samples: must be a positive integer, got {samples!r}")
    return samples


def _declared(loss, reduction):
    """The declared toolkit loss (or ``None``) and the PyTorch loss module to watch.

    ``reduction`` is version 1's argument: ``"mean"`` (``nn.MSELoss()``) or
    ``"sum_outputs"`` declare MSE; a loss module given there counts as ``loss``."""
    torch = _torch()
    if reduction is not None and not isinstance(reduction, str):
        if loss is not None:
            raise InputError("reduction: give the loss module as loss=..., not both")
        loss, reduction = reduction, None
    if loss is None and reduction is not None:
        if reduction not in ("mean", "sum_outputs"):
            raise InputError(f"reduction: expected 'mean' (nn.MSELoss()) or 'sum_outputs' "
                             f"(MSE), got {reduction!r}; for another loss give loss=...")
        return loss_of_module("mse", reduction), None
    if loss is None:
        return None, None
    module = loss if isinstance(loss, torch.nn.Module) else None
    return loss_of_module(loss, reduction), module


class TraceRecorder:
    """Record a PyTorch training run as a trace (:mod:`symbolic_inversion.torch`).

    Parameters
    ==========

    model : nn.Module
        A chain of ``nn.Linear`` and supported activations
        (:mod:`symbolic_inversion.torch.model`).
    optimizer : torch.optim.SGD, Adam or AdamW
        Fresh (no state), one parameter group holding exactly ``model.parameters()``.
    samples : int or sized
        ``n``, the number of training samples (or the training set: its length).
    reduction : ``"mean"`` or ``"sum_outputs"``, optional
        Version 1's way to declare MSE (``"mean"`` is ``nn.MSELoss()``); a loss module
        given here counts as ``loss``.
    loss : loss module, toolkit loss name or :class:`~symbolic_inversion.losses.Loss`
        The loss trained with (``nn.MSELoss()``, ``nn.CrossEntropyLoss()``,
        ``nn.BCEWithLogitsLoss()``).  Optional when the first ``record(loss=...)``
        shows it; never assumed.  A module given here is watched: a step that did not
        call it, or called it on anything but the model's output, is refused.

    Examples are in ``docs/pytorch.md`` and ``tests/test_torch.py`` (they need PyTorch).
    """

    def __init__(self, model, optimizer, samples=None, reduction=None, loss=None):
        torch = _torch()
        model, optimizer, self.dp_sgd = _unwrap_opacus(model, optimizer)
        self.chain = chain_of(model)
        self.network = self.chain.network
        self.model = model
        self._params = self.chain.parameters()
        self.optimizer = optimizer
        self.rule = optimizer_of(optimizer, self._params)
        check_fresh(optimizer)
        self._fixed = hyperparameters(optimizer)
        self.samples = _samples(samples)
        self.loss, self._loss_module = _declared(loss, reduction)
        self.dtype = _dtype_of(self._params)
        self.parameters = [self._snapshot()]
        self.lrs, self._batches = [], []
        # what happened since the last record(), filled by the hooks
        self._steps, self._loader_batches, self._loss_calls = [], [], []
        self._forward_batch = self._output = None
        self._problem = None
        self._checked_forward = False
        self._handles = [
            optimizer.register_step_pre_hook(self._on_step),
            model.register_forward_pre_hook(self._on_forward_pre),
            model.register_forward_hook(self._on_forward)]
        # every loss module applied to the model's output, whichever instance it is
        self._model_modules = {id(m) for m in model.modules()}
        self._loss_class = torch.nn.modules.loss._Loss
        reference = weakref.ref(self)

        def on_any_forward(module, inputs, output):
            recorder = reference()
            if recorder is not None:
                recorder._on_loss(module, inputs)
        handle = torch.nn.modules.module.register_module_forward_hook(on_any_forward)
        weakref.finalize(self, handle.remove)
        self._handles.append(handle)
        self._grad_enabled = torch.is_grad_enabled

    # -- hooks -------------------------------------------------------------------------

    def _on_step(self, optimizer, args, kwargs):
        # the lr this step uses (a scheduler changes it between steps)
        self._steps.append(exact(optimizer.param_groups[0]["lr"]))

    def _on_forward_pre(self, module, inputs):
        if not self._grad_enabled() or not inputs or not hasattr(inputs[0], "shape"):
            return
        shape = inputs[0].shape
        self._forward_batch = int(shape[0]) if len(shape) > 1 else 1
        active = self.chain.active_dropout()
        if active and self._problem is None:
            self._problem = (f"model: dropout {active!r} is active (training mode, p > 0): "
                             f"its random masks are not modelled; call model.eval() or "
                             f"use p=0")

    def _on_forward(self, module, inputs, output):
        if not self._grad_enabled() or not hasattr(output, "grad_fn"):
            return
        self._output = output.grad_fn
        if not self._checked_forward:
            self._checked_forward = True
            if not self.chain.reproduces(inputs[0], output) and self._problem is None:
                self._problem = ("model: torch.fx cannot trace its forward, and its modules "
                                 "applied in registration order do not give its output; "
                                 "write forward as a chain torch.fx can trace")

    def _on_loss(self, module, inputs):
        if not isinstance(module, self._loss_class) or id(module) in self._model_modules:
            return
        logits = inputs[0] if inputs else None
        if self._output is not None and getattr(logits, "grad_fn", None) is self._output:
            self._loss_calls.append(module)

    def batches(self, loader):
        """Iterate ``loader`` (a ``DataLoader`` over a map-style dataset) as it is, while
        every batch's sample indices go to the next :meth:`record`
        (:class:`~symbolic_inversion.torch.data.IndexedLoader`)::

            for xb, yb in recorder.batches(loader):
                ...; optimizer.step(); recorder.record()
        """
        return IndexedLoader(loader, on_batch=self._loader_batches.append)

    def close(self):
        """Remove the recorder's hooks from the model, optimizer and loss module."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- recording ---------------------------------------------------------------------

    def _snapshot(self):
        return _vector(self._params)

    def _check_step(self):
        if len(self._steps) != 1:
            if not self._steps:
                raise InputError("record(): no optimizer.step() since the last record(); "
                                 "call record() once after every optimizer.step()")
            raise InputError(f"record(): {len(self._steps)} optimizer steps since the last "
                             f"record(); call record() once after every optimizer.step()")
        now = hyperparameters(self.optimizer)
        for key, value in now.items():
            if self._fixed.get(key) != value:
                raise InputError(f"optimizer: {key} changed during training "
                                 f"({self._fixed.get(key)!r} -> {value!r}); only lr may "
                                 f"follow a schedule")
        if _dtype_of(self._params) != self.dtype:
            raise InputError("model: the parameters changed dtype during training")
        if self._problem:
            raise InputError(self._problem)

    def _batch(self, batch):
        """The sample indices of this step (``None``: every sample), checked against
        what the model saw."""
        if batch is not None:
            batch = [int(i) for i in (batch.tolist() if hasattr(batch, "tolist") else batch)]
        if len(self._loader_batches) > 1:
            raise InputError(f"record(): {len(self._loader_batches)} loader batches since "
                             f"the last record(); one batch per optimizer step is modelled")
        if self._loader_batches:
            loaded = self._loader_batches[0]
            if batch is not None and sorted(batch) != sorted(loaded):
                raise InputError("record(batch=...): the indices differ from the loader "
                                 "batch recorder.batches(loader) yielded")
            batch = loaded
        seen = self._forward_batch
        if seen is None:
            raise InputError("record(): the model ran no forward pass with gradients since "
                             "the last record()")
        if batch is None and seen != self.samples:
            raise InputError(f"record(): the last forward saw a batch of {seen} samples, not "
                             f"all {self.samples} (samples={self.samples}); iterate "
                             f"recorder.batches(loader) or give record(batch=indices)")
        if batch is not None and len(batch) != seen:
            raise InputError(f"record(batch=...): {len(batch)} indices, but the last forward "
                             f"saw {seen} samples")
        return batch

    def _check_loss(self, tensor):
        """The loss of this step: from the loss tensor given, else from the loss modules
        applied to the model's output (seen by a global forward hook), checked against
        the loss known so far (declared, or read at an earlier step)."""
        found, how = None, None
        if tensor is not None:
            found, _ = loss_of_tensor(tensor, output=self._output,
                                      batch=self._forward_batch)
            how = "record(loss=...): this step's loss is"
        elif self._loss_calls:
            kinds = {type(m).__name__ for m in self._loss_calls}
            if len(self._loss_calls) > 1:
                raise InputError(f"loss: {len(self._loss_calls)} loss modules "
                                 f"({', '.join(sorted(kinds))}) were applied to the model's "
                                 f"output in this step; one loss is modelled")
            try:
                found = loss_of_module(self._loss_calls[0])
            except InputError as error:
                raise InputError(f"{error} (applied to the model's output in this "
                                 f"step)") from None
            how = "loss: this step applied"
        if found is not None:
            if self.loss is None:
                self.loss = found
            elif found != self.loss:
                raise InputError(f"{how} {describe(found)}, but the recorder was given "
                                 f"{describe(self.loss)}")
        elif self._loss_module is not None:
            raise InputError(f"loss: no {describe(self.loss)} was applied to the model's "
                             f"output during this step; train with the declared loss, or "
                             f"pass record(loss=...) the loss tensor you trained on")
        if self.loss is None:
            raise InputError("loss: not known; give TraceRecorder(..., loss=the loss "
                             "module, e.g. nn.CrossEntropyLoss()) or record(loss=loss) at "
                             "the first step (the recorder never assumes MSE)")

    def record(self, batch=None, loss=None):
        """Snapshot the parameters after an ``optimizer.step()``.

        ``batch``: the sample indices this step used (not needed with
        :meth:`batches`, nor for a full batch: the recorder checks that the last
        forward saw all ``samples``).  ``loss``: this step's loss tensor; the first one
        identifies the loss when none was declared, and every one given must agree.
        """
        try:
            self._check_step()
            lr = self._steps[0]  # what the step used; a scheduler may have moved on since
            batch = self._batch(batch)
            self._check_loss(loss)
        finally:  # in place: the hooks hold these lists' append methods
            for pending in (self._steps, self._loader_batches, self._loss_calls):
                pending.clear()
            self._forward_batch = None
        self.lrs.append(lr)
        self._batches.append(batch)
        self.parameters.append(self._snapshot())

    def trace(self):
        """The :class:`~symbolic_inversion.trace.Trace` of the steps recorded so far."""
        from ..trace import Trace
        if len(self.parameters) < 2:
            raise InputError("trace: record() after at least one optimizer.step()")
        lr = self.lrs[0] if len(set(self.lrs)) == 1 else list(self.lrs)
        rule, batches = self.rule.replace(lr=lr), None
        full = list(range(self.samples))
        if any(b is not None and sorted(b) != full for b in self._batches):
            batches = [b if b is not None else full for b in self._batches]
            rule = rule.replace(name="sgd", batch_size=max(len(b) for b in batches)) \
                if rule.name == "gd" else rule.replace(
                    batch_size=max(len(b) for b in batches))
        extra = {"dp_sgd": self.dp_sgd} if self.dp_sgd else None
        return Trace(self.network, rule.lr, self.samples, self.parameters, optimizer=rule,
                     batches=batches, extra=extra, loss=self.loss.name,
                     loss_reduction=self.loss.reduction, dtype=self.dtype)
