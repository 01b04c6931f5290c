"""The options of one recovery, built once in :func:`~symbolic_inversion.recover` and
passed down to every solver (``solver(trace, options)``).

Precision is decided here, once (:mod:`symbolic_inversion.precision`); solvers take
``options.dps`` and raise their own stages (tracking, refinement) by the rules of that
module, never by reading mpmath's global precision.
"""

from dataclasses import dataclass, replace

from ..errors import InputError
from ..precision import default_dps

__all__ = ["RecoverOptions", "make_options"]

BACKENDS = (None, "auto", "mpmath", "flint", "arb")


@dataclass(frozen=True)
class RecoverOptions:
    """What a user can choose about a recovery.

    method : solver name or ``"auto"``; dps : working precision (digits); steps : use only
    the first ``steps`` steps (``None``: all); backend : ``"mpmath"``, ``"arb"`` (alias
    ``"flint"``) or ``None``/``"auto"`` (arb if python-flint is installed); seed : seeds
    every random choice (paths, starts); attempts : paths or starts per solver (``None``:
    the solver's default); executor : reserved (parallel paths); progress : a
    :class:`~symbolic_inversion.report.progress.Progress` (``None``: silent);
    record_paths : keep every homotopy path's points in the solution's stats.
    """

    method: str = "auto"
    dps: int = None
    steps: int = None
    backend: str = None
    seed: int = 0
    attempts: int = None
    executor: object = None
    progress: object = None
    record_paths: bool = False

    def with_(self, **changes):
        return replace(self, **changes)

    def attempts_or(self, default):
        return default if self.attempts is None else self.attempts


def make_options(trace, method="auto", dps=None, steps=None, backend=None, seed=0,
                 attempts=None, executor=None, progress=None):
    """Validated :class:`RecoverOptions` for ``trace`` (``dps`` defaults to
    :func:`~symbolic_inversion.precision.default_dps`)."""
    from ..limits import check_int
    if dps is None:
        dps = default_dps(trace)
    dps = check_int(dps, "dps", minimum=10, limit="max_dps")
    if steps is not None:
        steps = check_int(steps, "steps", minimum=1, maximum=trace.steps)
    if backend is not None and not isinstance(backend, str):
        raise InputError(f"backend: expected a name, got {type(backend).__name__}")
    if backend not in BACKENDS:
        raise InputError(f"backend: expected 'mpmath', 'arb' (or 'flint') or 'auto', "
                         f"got {backend!r}")
    seed = check_int(seed, "seed")
    if attempts is not None:
        # each attempt has its place in the schedule (and, with an executor, its future)
        attempts = check_int(attempts, "attempts", minimum=1, limit="max_attempts")
    return RecoverOptions(method, dps, steps, backend, seed, attempts, executor, progress)


_OPTION_NAMES = ("method", "dps", "steps", "backend", "seed", "attempts", "executor",
                 "progress", "record_paths")


def solver(function):
    """Decorator: the solver ``function(trace, options, **own)`` may also be called the
    old way, ``function(trace, dps=..., steps=..., backend=..., attempts=..., seed=...)``
    (``dps`` and ``steps`` also positionally); keywords that are not options (``starts``,
    ``box``, ...) pass through."""
    import functools

    @functools.wraps(function)
    def wrapper(trace, options=None, *args, **keywords):
        if not isinstance(options, RecoverOptions):
            given = dict(zip(("dps", "steps"), (options,) + args))
            args = ()
            given.update({k: keywords.pop(k) for k in _OPTION_NAMES if k in keywords})
            options = make_options(trace, **given)
        else:
            changes = {k: keywords.pop(k) for k in _OPTION_NAMES if k in keywords}
            if changes:
                options = options.with_(**changes)
        return function(trace, options, *args, **keywords)
    return wrapper
