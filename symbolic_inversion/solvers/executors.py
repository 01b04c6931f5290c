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

__all__ = ["make_executor", "close_executor", "one_blas_thread"]


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


def _no_scheduler(address, error):
    if isinstance(error, MemoryError):  # a length read from bytes of another protocol
        reason = "its reply is not Dask's protocol"
    elif str(address).startswith("inproc://"):
        reason = "an inproc:// address reaches only a scheduler in this same process"
    else:
        reason = error.args[0] if error.args and isinstance(error.args[0], str) else \
            type(error).__name__
        reason = " ".join(reason.split())[:160] or type(error).__name__
    return f"no Dask scheduler answered at {address} ({reason})"


def _probe_scheduler(address):
    """Ask ``address`` who it is (Dask's ``identity`` call), within the connect timeout
    of Dask's configuration (``distributed.comm.timeouts.connect``, 30 s by default);
    anything but a scheduler's answer is an :class:`InputError` saying that no Dask
    scheduler answered there.

    Why not just ``distributed.Client(address)``: a service that is not a Dask
    scheduler makes it fail in ways that say nothing of the address (an SSH server's
    greeting read as a frame length of 3 EiB: ``MemoryError``; ``inproc://nothing``:
    "not enough values to unpack"), or wait forever (a web server, silent until it gets
    a request it understands)."""
    import asyncio

    import dask
    from dask.utils import parse_timedelta
    from distributed.comm import connect
    from distributed.security import Security
    seconds = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")

    async def identity():
        comm = await asyncio.wait_for(
            connect(address, timeout=seconds,
                    **Security().get_connection_args("client")), seconds)
        try:
            await asyncio.wait_for(comm.write({"op": "identity"}), seconds)
            return await asyncio.wait_for(comm.read(), seconds)
        finally:
            comm.abort()
    # a thread of its own, with its own event loop (the caller may be running one)
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        try:
            reply = thread.submit(asyncio.run, identity()).result()
        except asyncio.TimeoutError:
            raise InputError(f"--scheduler: no Dask scheduler answered at {address} (no "
                             f"reply within {seconds:g} s)") from None
        except (Exception, MemoryError) as error:
            raise InputError(f"--scheduler: {_no_scheduler(address, error)}") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        kind = reply.get("type") if isinstance(reply, dict) else None
        raise InputError(f"--scheduler: no Dask scheduler answered at {address}" +
                         (f" (a Dask {kind} did)" if isinstance(kind, str) else ""))


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
        _probe_scheduler(scheduler)
        try:
            client = distributed.Client(scheduler)
        except (Exception, MemoryError) as error:  # (it answered the probe a moment ago)
            raise InputError(f"--scheduler: {_no_scheduler(scheduler, error)}") from None
        return client.get_executor()
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers: must be a positive integer, got {workers!r}")
    check("max_workers", workers, "--workers")  # processes beyond the cores only queue
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=initializer)


def close_executor(executor):
    """Shut down an executor from :func:`make_executor`: a process pool's pending tasks
    are cancelled (the running ones finish); a Dask client's executor is shut down and
    its client closed (``ClientExecutor.shutdown`` has no ``cancel_futures``)."""
    if executor is None:
        return
    if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        executor.shutdown(cancel_futures=True)
        return
    executor.shutdown(wait=False)
    client = getattr(executor, "_client", None)  # the Dask client it came from
    if client is not None:
        client.close()
