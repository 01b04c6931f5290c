r"""Your own model: traces recorded from PyTorch training (optional extra ``torch``).

:class:`TraceRecorder` hooks into the user's own training loop: create it before the
first step (it snapshots the initial parameters), call :meth:`TraceRecorder.record`
after every ``optimizer.step()``, and :meth:`TraceRecorder.trace` returns a
:class:`~symbolic_inversion.trace.Trace` with

* the network read from the model (:mod:`~symbolic_inversion.torch.model`): any
  ``nn.Module`` whose forward is a chain of ``nn.Linear`` layers and supported
  activations (modules or functions: tanh, sigmoid, ReLU, LeakyReLU, GELU and its tanh
  form, SiLU, Softplus), with ``Flatten``, ``Identity``, ``Dropout`` in eval mode and
  nested ``nn.Sequential`` blocks, found by ``torch.fx``;
* the loss (:mod:`~symbolic_inversion.torch.loss`): the module declared
  (``loss=nn.CrossEntropyLoss()``, ``nn.MSELoss()``, ``nn.BCEWithLogitsLoss()``), or
  read from the loss tensor of the first ``record(loss=...)``, and checked at every
  step; never assumed;
* the optimizer (:mod:`~symbolic_inversion.torch.optim`): ``torch.optim.SGD`` (momentum,
  dampening, nesterov, weight decay), ``Adam`` and ``AdamW`` (betas, eps, weight decay,
  amsgrad), with the learning rate each step actually used (a scheduler's values become
  the trace's ``lr`` list);
* the batches (:mod:`~symbolic_inversion.torch.data`): iterate
  ``recorder.batches(loader)`` and every step's sample indices are recorded; a step
  whose forward saw fewer than ``samples`` samples without known indices is refused;
* ``dtype`` from the parameters (``float32`` or ``float64``): the trace holds the exact
  binary values and its uncertainty is the optimizer's rounding
  (:mod:`symbolic_inversion.floats`).

Anything else is refused at once with one :class:`~symbolic_inversion.errors.InputError`
line that names it (a ``Conv2d``, a residual connection, ``nn.NLLLoss``, a loss with
class weights, ``maximize``, an optimizer with state, dropout in training mode, a
changed momentum, ...).  Inside a plain ``python train.py`` that line is the last line
of the traceback; ``python -m symbolic_inversion.torch train.py`` prints only it.  The
parameter order of the trace is ``model.parameters()`` flattened (each weight
row-major, then its bias): the toolkit's own, checked against the computation's order.

:func:`trace_from_state_dicts` (also ``Trace.from_state_dicts``) builds a trace from
saved checkpoints, and ``symbolic-inversion trace-from-checkpoints`` from ``.pt`` files
(:mod:`~symbolic_inversion.torch.checkpoints`).

Examples (they need PyTorch, so they live in ``docs/pytorch.md`` and
``tests/test_torch.py``)::

    model = MLP().double()                     # class MLP(nn.Module): Linear, GELU, Linear
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    recorder = TraceRecorder(model, optimizer, loss=criterion, samples=len(X))
    for epoch in range(3):
        optimizer.zero_grad()
        criterion(model(X), classes).backward()
        optimizer.step()
        recorder.record()
    recover(recorder.trace()).classes
"""

from ..errors import InputError
from .checkpoints import load_state_dicts, trace_from_state_dicts
from .data import IndexedLoader
from .loss import loss_of_module, loss_of_tensor
from .model import Chain, chain_of
from .optim import optimizer_of
from .recorder import TraceRecorder

__all__ = ["TraceRecorder", "IndexedLoader", "network_of", "chain_of", "Chain",
           "optimizer_of", "loss_of_module", "loss_of_tensor", "trace_from_state_dicts",
           "load_state_dicts", "main"]


def network_of(model):
    """The :class:`~symbolic_inversion.network.Network` a model computes
    (:func:`~symbolic_inversion.torch.model.chain_of`); refuses anything else with an
    :class:`InputError` naming the first unsupported operation."""
    return chain_of(model).network


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
