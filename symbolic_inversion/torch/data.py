"""DataLoader batches with their sample indices, without the user wiring them.

:class:`IndexedLoader` wraps a ``torch.utils.data.DataLoader`` over a map-style dataset
and yields exactly what the loader yields (same shuffle, same collation, same workers),
while it remembers the dataset indices of every batch: it iterates a copy of the loader
whose batch sampler is the original's, observed.  The indices are read where the loader
draws them (in the main process, before any worker loads the batch), queued, and handed
out in order as the batches arrive (``in_order=True``, PyTorch's default, guarantees
that order).  A sample's index in the dataset is its index in the trace.

:meth:`TraceRecorder.batches <symbolic_inversion.torch.TraceRecorder.batches>` is the
usual way to use it: ``record()`` then fills the trace's ``batches`` itself.
"""

from collections import deque

from ..errors import InputError

__all__ = ["IndexedLoader"]


def _torch():
    from .model import _torch
    return _torch()


class _Observed:
    """A (batch) sampler that queues every index list it yields."""

    def __init__(self, sampler, queue, single):
        self.sampler, self.queue, self.single = sampler, queue, single

    def __iter__(self):
        for item in self.sampler:
            indices = [int(item)] if self.single else [int(i) for i in item]
            self.queue.append(indices)
            yield item

    def __len__(self):
        return len(self.sampler)


class IndexedLoader:
    """Iterate ``loader``'s batches; :attr:`last` is the dataset indices of the batch
    yielded last, and ``on_batch(indices)`` (when given) is called with them before the
    batch is yielded.

    Refused (one line): an iterable-style dataset (no indices), ``in_order=False`` with
    workers.
    """

    def __init__(self, loader, on_batch=None):
        torch = _torch()
        data = torch.utils.data
        if not isinstance(loader, data.DataLoader):
            raise InputError(f"loader: expected a torch.utils.data.DataLoader, got "
                             f"{type(loader).__name__}")
        if isinstance(loader.dataset, data.IterableDataset):
            raise InputError("loader: an IterableDataset has no sample indices; use a "
                             "map-style dataset (e.g. TensorDataset)")
        if loader.num_workers and not getattr(loader, "in_order", True):
            raise InputError("loader: in_order=False delivers batches out of the sampler's "
                             "order; their indices cannot be matched")
        self.loader = loader
        self.on_batch = on_batch
        self.last = None

    def __len__(self):
        return len(self.loader)

    def _copy(self, queue):
        """The loader again, with its batch sampler (or sampler) observed."""
        torch = _torch()
        loader = self.loader
        options = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                       pin_memory=loader.pin_memory, timeout=loader.timeout,
                       worker_init_fn=loader.worker_init_fn,
                       multiprocessing_context=loader.multiprocessing_context,
                       generator=loader.generator,
                       persistent_workers=loader.persistent_workers)
        if loader.num_workers:
            options["prefetch_factor"] = loader.prefetch_factor
        if hasattr(loader, "in_order"):
            options["in_order"] = loader.in_order
        if loader.batch_sampler is not None:
            return torch.utils.data.DataLoader(
                loader.dataset, batch_sampler=_Observed(loader.batch_sampler, queue, False),
                **options)
        return torch.utils.data.DataLoader(
            loader.dataset, batch_size=None,
            sampler=_Observed(loader.sampler, queue, True), **options)

    def __iter__(self):
        queue = deque()
        for batch in self._copy(queue):
            if not queue:  # pragma: no cover - a loader that yields without sampling
                raise InputError("loader: a batch arrived without sample indices")
            self.last = queue.popleft()
            if self.on_batch is not None:
                self.on_batch(self.last)
            yield batch
