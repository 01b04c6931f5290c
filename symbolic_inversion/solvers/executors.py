"""Executors for independent homotopy paths (``recover(..., executor=...)``).

Any :class:`concurrent.futures.Executor` works: a round's paths are submitted as
picklable tasks (:func:`~symbolic_inversion.solvers.pipeline.path_task`) and collected in
order, so the answer is the serial one for the same seed.  :func:`make_executor` builds
what the command line's ``--workers N`` (local processes) and ``--scheduler ADDRESS`` (a
Dask ``distributed`` scheduler, when dask is installed) ask for.

Threads are not supported: mpmath's (and python-flint's) working precision is global to a
process, so paths in threads of one process would change each other's precision
(measured: a ``ThreadPoolExecutor`` run differed from the serial one).  Use processes.

>>> make_executor() is None
True
>>> with make_executor(workers=1) as executor:
...     executor.submit(sum, [1, 2]).result()
3
"""

import concurrent.futures
import contextlib

from ..errors import InputError
from ..limits import check

__all__ = ["make_executor", "one_blas_thread"]


def one_blas_thread():
    """A context in which numpy's BLAS runs on one thread (``threadpoolctl``).

    The solvers' matrices are small (tens to a few hundred rows) and many: a
    multi-threaded BLAS spends more time waking its threads than computing, and on a
    loaded machine far more (measured on 2 cores at load 7: a 144 x 144 complex solve
    took 70 ms with OpenBLAS's threads and 2.7 ms with one; a homotopy path of the
    8-16-1 network spent 44 of 60 s in such solves).  Parallelism belongs to the paths
    (``executor``), not to BLAS.  Without threadpoolctl, nothing changes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a core dependency, but keep working without
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def make_executor(workers=None, scheduler=None, initializer=None):
    """``None`` (serial) without options; a ``ProcessPoolExecutor`` of ``workers``
    processes (each calling ``initializer()`` first, if given); or the executor of a Dask
    client connected to ``scheduler``."""
    if workers is not None and scheduler is not None:
        raise InputError("--workers and --scheduler: choose one")
    if scheduler is not None:
        try:
            import distributed
        except ImportError:
            raise InputError("--scheduler: needs dask's distributed package "
                             "(pip install distributed); use --workers N for local "
                             "processes") from None
        try:
            client = distributed.Client(scheduler)
        except (OSError, ValueError, TypeError) as error:  # unreachable, malformed address
            reason = error.args[0] if error.args and isinstance(error.args[0], str) \
                else repr(error)
            raise InputError(f"--scheduler: cannot connect to {scheduler}: "
                             f"{reason.splitlines()[0]}") from None
        return client.get_executor()
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers: must be a positive integer, got {workers!r}")
    check("max_workers", workers, "--workers")  # processes beyond the cores only queue
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=initializer)
