"""Documented limits on the size of input and the work it may ask for.

Hostile or careless input (a 10,000-digit number, ``--dps 1000000``, a trace of a million
steps, a 100-100-1 network handed to SymPy) must be refused in a moment with one line that
names the limit, never run for minutes, exhaust memory or end in a traceback.  Every
limit lives here, in one :class:`Limits`, with its default and the reason for it; every
refusal names the limit and how to raise it:

- an environment variable ``SYMBOLIC_INVERSION_<NAME>`` (e.g.
  ``SYMBOLIC_INVERSION_MAX_DPS=5000``), read at each check, so it works for the command
  line and for the Python API alike;
- in Python, ``with override(max_dps=5000): ...`` for one block of code;
- for the time budget, also the command-line option ``--max-seconds``.

Examples
========

>>> from symbolic_inversion.limits import current, check, override
>>> current().max_dps
3000
>>> check("max_dps", 60, "dps")
>>> try:
...     check("max_dps", 10**6, "dps")
... except Exception as error:
...     print(error)
dps: 1000000 exceeds the limit max_dps = 3000 (raise it with SYMBOLIC_INVERSION_MAX_DPS=N or symbolic_inversion.limits.override(max_dps=N))
>>> with override(max_dps=10**6):
...     check("max_dps", 10**6, "dps")
"""

import contextlib
import contextvars
import dataclasses
import math
import numbers
import operator
import os
import signal
import threading
import time
from typing import ClassVar

from .errors import InputError

__all__ = ["Limits", "current", "override", "check", "check_int", "time_budget",
           "budget_seconds", "BudgetExceeded", "check_time", "deadline", "safe_interrupts",
           "ENV_PREFIX"]

ENV_PREFIX = "SYMBOLIC_INVERSION_"


def _cores():
    """The cores this process may run on (its affinity where the system says it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class Limits:
    """The limits, with their defaults (each measured on a 2-core machine).

    Attributes
    ==========

    max_file_bytes : int
        Largest file read (trace, CSV, oracle, solution): 100 MB, the size of a one-step
        float64 trace of a 784-2048-10 network (2 x 1.63 million values written with 17
        digits: 79 MB).  The value counts of a trace are checked in the text before any
        is parsed (:attr:`max_trace_values`); a larger file would take gigabytes as
        Python objects.
    max_json_depth : int
        Deepest nesting of ``[`` and ``{`` in a JSON file: 32 (a trace needs 3).
    max_number_digits : int
        Most digits of one number in a file or option: 3000.  Below Python's limit for
        converting integer text (4300 digits), which mpmath meets on the way in.
    max_dps : int
        Largest working or recorded precision (``dps``, ``--dps``): 3000 digits.  The
        solvers add their guard digits on top; one Newton step at 3000 digits of a small
        problem takes about a second.
    max_trace_values : int
        Most numbers in a trace (parameters x (steps + 1)): 4,000,000, checked before any
        is converted: one step of a network of :attr:`max_parameters`.  Every value is an
        exact decimal in memory: measured, a one-step trace of 784-2048-10 (3.26 million
        values) holds 366 MB once read, 618 MB at the peak of reading its 79 MB of JSON
        (about 190 bytes per value); the ReLU solver works on float copies of single
        layers, never on dense symbolic objects of that size (in version 0.1, 10^6 steps
        of 2 parameters took 1.2 GB with mpmath numbers besides).
    max_parameters : int
        Largest network for numeric work (recover, simulate, certify): 2,000,000
        parameters, so that MNIST-sized networks pass (784-1024-10 has 814,090
        parameters, 784-2048-10 1,628,170; a 100-256-1 ReLU network has 26,113).  The
        network's symbolic expressions are built lazily, only for the symbolic work
        (:attr:`max_symbolic_parameters`).
    max_symbolic_parameters : int
        Largest network whose equations are derived symbolically with SymPy (``derive``,
        LaTeX, instantiated equations): 40 parameters.  Measured: a 4-6-1 network (37)
        with 3 samples takes 3 s, a 10-10-1 network (121) had not finished after 40 s,
        and SymPy's printers recurse past Python's stack on 100-100-1.
    max_symbolic_terms : int
        Most per-sample gradient terms written out symbolically in the equations of a
        system instantiated with a trace (``derive --trace``, LaTeX, ``equations()``):
        2000, counted as samples per step x steps x parameters before any is built.
        Measured: 1980 terms (the neuron, 330 samples, 3 steps) take 21 s, 1332 terms
        (4-6-1, 12 samples, 3 steps) 30 s; a trace claiming a million samples grew to
        1.5 GB in 48 s.
    max_attempts : int
        Most paths or starts one solver may try (``attempts``, ``--attempts``, a study's
        ``attempts``): 10,000.  Each attempt has its entry in the solver's schedule (and,
        on an executor, a submitted task) made before the first runs: ``--attempts
        1000000000`` took 2.3 GB in 40 s; 10,000 paths of about a second each already
        outlast the default time budget.
    max_workers : int
        Most local worker processes (``--workers N``, ``run_study(workers=N)``): 4 per
        core this process may use (8 on a 2-core machine).  The work is processor-bound:
        more processes than cores only share them, while each holds its own interpreter,
        SymPy and compiled network (``--workers 1000`` started hundreds of processes).
    max_oracle_parameters : int
        Largest network behind the loss oracle: 2000 parameters (its probes grow with the
        square of the width).
    max_oracle_exponent : int
        Largest decimal exponent of an oracle number: 100 (``1e999999`` as an exact
        rational has a million digits).
    max_seconds : float
        Time budget of a long command (recover, certify, derive, simulate, analyze,
        oracle): 3600 seconds; ``--max-seconds`` sets it per command, ``0`` means none.
    """

    max_file_bytes: int = 100_000_000
    max_json_depth: int = 32
    max_number_digits: int = 3000
    max_dps: int = 3000
    max_trace_values: int = 4_000_000
    #: the environment variables' prefix (``SYMBOLIC_INVERSION_MAX_DPS``)
    env_prefix: ClassVar[str] = ENV_PREFIX
    max_parameters: int = 2_000_000
    max_symbolic_parameters: int = 40
    max_symbolic_terms: int = 2000
    max_attempts: int = 10_000
    max_workers: int = 4 * _cores()
    max_oracle_parameters: int = 2000
    max_oracle_exponent: int = 100
    max_seconds: float = 3600.0

    def _repr_html_(self):
        from .report.display import limits_html
        return limits_html(self)


_DEFAULTS = Limits()
_OVERRIDES = contextvars.ContextVar("symbolic_inversion_limits", default={})


def _env_name(name):
    return ENV_PREFIX + name.upper()


def _limit_value(item, value, source):
    """``value`` for the limit ``item`` (a field of :class:`Limits`) from ``source`` (the
    environment variable or ``override``): a non-negative integer (a finite,
    non-negative number of seconds for ``max_seconds``); a NaN would silently disable a
    limit (every comparison with it is false)."""
    if isinstance(value, bool):
        raise InputError(f"{source}: expected a number, got {value!r}")
    if item.type is int:
        return check_int(value, source, minimum=0)
    try:
        number = float(value) if isinstance(value, numbers.Real) else None
    except (TypeError, ValueError, OverflowError):  # pragma: no cover - a strange Real
        number = None
    if number is None:
        raise InputError(f"{source}: expected a number, got {type(value).__name__}")
    if not 0 <= number < math.inf:  # NaN fails this too
        raise InputError(f"{source}: must be a finite, non-negative number, got {value!r}")
    return number


def current():
    """The limits in force: defaults, then environment variables, then :func:`override`."""
    values = {}
    for item in dataclasses.fields(Limits):
        text = os.environ.get(_env_name(item.name))
        if text is None:
            continue
        try:
            value = item.type(text) if item.type is not int else int(text, 10)
        except ValueError:
            raise InputError(f"{_env_name(item.name)}: expected a number, got "
                             f"{text[:40]!r}") from None
        values[item.name] = _limit_value(item, value, _env_name(item.name))
    values.update(_OVERRIDES.get())
    return dataclasses.replace(_DEFAULTS, **values)


@contextlib.contextmanager
def override(**limits):
    """Raise (or lower) limits for the code inside the ``with`` block (each a
    non-negative integer; ``max_seconds`` a finite, non-negative number).

    >>> with override(max_dps=float("nan")):
    ...     pass
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: limits.override(max_dps): expected an integer, got float nan
    """
    fields = {item.name: item for item in dataclasses.fields(Limits)}
    for name in limits:
        if name not in fields:
            raise InputError(f"limits: unknown limit {name!r}; known: "
                             f"{', '.join(sorted(fields))}")
    limits = {name: _limit_value(fields[name], value, f"limits.override({name})")
              for name, value in limits.items()}
    token = _OVERRIDES.set(dict(_OVERRIDES.get(), **limits))
    try:
        yield current()
    finally:
        _OVERRIDES.reset(token)


def how_to_raise(name, option=None):
    """The advice a refusal ends with."""
    ways = ([option] if option else []) + [f"{_env_name(name)}=N",
                                           f"symbolic_inversion.limits.override({name}=N)"]
    return "raise it with " + " or ".join(ways)


def check(name, value, what, option=None):
    """Refuse ``value`` (a count, a size) above the limit ``name``, naming ``what``."""
    limit = getattr(current(), name)
    if value > limit:
        raise InputError(f"{what}: {value} exceeds the limit {name} = {limit} "
                         f"({how_to_raise(name, option)})")


def check_int(value, field, minimum=None, maximum=None, limit=None, option=None):
    """``value`` as an ``int``: Python and numpy integers alike (``operator.index``),
    never a bool, a float or a string; at least ``minimum``; at most the limit ``limit``.

    >>> import numpy as np
    >>> check_int(np.int64(7), "epochs", minimum=1)
    7
    >>> check_int("2", "steps")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: steps: expected an integer, got str '2'
    """
    if isinstance(value, bool):
        raise InputError(f"{field}: expected an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
        raise InputError(f"{field}: expected an integer, got {type(value).__name__} "
                         f"{shown}") from None
    if minimum is not None and number < minimum:
        raise InputError(f"{field}: must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise InputError(f"{field}: must be at most {maximum}, got {number}")
    if limit is not None:
        check(limit, number, field, option)
    return number


# -- the time budget ------------------------------------------------------------------------

class BudgetExceeded(InputError):
    """A command ran past its time budget (``--max-seconds``)."""


_DEADLINE = contextvars.ContextVar("symbolic_inversion_deadline", default=None)
# seconds past the deadline before the timer raises in code that has no check
GRACE = 1.0


def check_time():
    """Raise :class:`BudgetExceeded` if the current :func:`time_budget` is spent, or
    ``KeyboardInterrupt`` if :func:`safe_interrupts` holds a signal (called in long
    loops: every tracker step, Newton iteration and judged candidate; the cooperative
    half of the budget, and the safe points of an interrupt)."""
    if _PENDING:
        _PENDING.clear()   # delivered
        raise KeyboardInterrupt
    due = _DEADLINE.get()
    if due is not None and time.monotonic() > due[0]:
        raise due[1]()


@contextlib.contextmanager
def deadline(seconds, error):
    """Make :func:`check_time` raise ``error()`` in this context once ``seconds`` have
    passed (or at an enclosing deadline, if that comes first): the cooperative half of
    :func:`time_budget` and of a study's cell timeout."""
    when = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set((when, error) if outer is None or when < outer[0] else outer)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _budget_message(seconds, option):
    return (f"time budget of {seconds:g} s exceeded (the limit max_seconds; "
            f"{how_to_raise('max_seconds', option)})")


#: The longest time budget (about three years): ``setitimer`` and the monotonic clock
#: take no more (``float("inf")`` and ``10**30`` ended in OverflowError).
MAX_BUDGET_SECONDS = 1e8
_SHOWN_MAX = "1e8"


def budget_seconds(seconds, field):
    """``seconds`` of a time budget as a float: ``None`` is the limit ``max_seconds``;
    ``0`` means none; anything but a number from 0 to :data:`MAX_BUDGET_SECONDS` is an
    :class:`InputError` naming ``field`` (a negative budget is not "none": the command
    line refuses ``--max-seconds -1`` too).

    >>> budget_seconds(None, "seconds"), budget_seconds(2, "seconds")
    (3600.0, 2.0)
    >>> budget_seconds(-1, "--max-seconds")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: --max-seconds: expected 0 (no budget) to 1e8 seconds, got -1
    """
    if seconds is None:
        return float(current().max_seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise InputError(f"{field}: expected a number of seconds, got "
                         f"{type(seconds).__name__}")
    number = float(seconds)
    if not 0 <= number <= MAX_BUDGET_SECONDS:  # NaN fails this too
        raise InputError(f"{field}: expected 0 (no budget) to {_SHOWN_MAX} "
                         f"seconds, got {number:g}")
    return number


@contextlib.contextmanager
def time_budget(seconds=None, option=None):
    """Run the block with a time budget of ``seconds`` (default: the limit
    ``max_seconds``; ``0`` or ``None`` after that: no budget).

    Cooperative checks (:func:`check_time`) end long loops; in the main thread on POSIX a
    timer (``signal.setitimer``) also interrupts code that has no check, ``GRACE``
    seconds after the deadline (an exception raised by a signal handler lands wherever
    Python code runs, even in a callback of a C function: see :func:`safe_interrupts`),
    and keeps interrupting every half second if something swallowed the first
    :class:`BudgetExceeded`.
    """
    seconds = budget_seconds(seconds, option or "time_budget")
    if not seconds:
        yield
        return
    use_timer = hasattr(signal, "setitimer") and \
        threading.current_thread() is threading.main_thread()
    previous = None
    if use_timer:
        late = []

        def expired(signum, frame):
            if not late:  # the cooperative checks raise from now on; give them a moment
                late.append(True)
                signal.setitimer(signal.ITIMER_REAL, GRACE)
                return
            signal.setitimer(signal.ITIMER_REAL, 0.5)  # again, should this one be swallowed
            raise BudgetExceeded(_budget_message(seconds, option))
        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with deadline(seconds, lambda: BudgetExceeded(_budget_message(seconds, option))):
            yield
    finally:
        if use_timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# -- interrupts at safe points ------------------------------------------------------------

_PENDING = []   # the signals safe_interrupts holds back until the next check_time


@contextlib.contextmanager
def safe_interrupts():
    """Hold Ctrl-C and SIGTERM back while the block runs in the main thread: the
    handler in place (Python's ``KeyboardInterrupt``, or the command line's SIGTERM
    handler) is replaced by one that notes the signal; the next :func:`check_time` (or
    the end of the block, if none came) then raises ``KeyboardInterrupt``, once.  A
    second signal before that raises at once (the handler in place runs).

    Why: a handler that raises lands in whatever Python code runs, including code that a
    C function called (numpy's loops over mpmath numbers); a C caller that mishandles
    the error corrupts the interpreter.  Measured: a study terminated at a random moment
    crashed with a segmentation fault once in about 570 runs (CPython 3.11.7, a chain of
    ``SystemError`` with the ``KeyboardInterrupt`` as cause, freed twice).

    >>> import os, signal
    >>> ctrl_c = signal.signal(signal.SIGINT, signal.default_int_handler)  # (a background
    >>> with safe_interrupts():                   # job may have started with SIGINT ignored)
    ...     os.kill(os.getpid(), signal.SIGINT)   # noted, not raised here
    ...     try:
    ...         check_time()                      # the next safe point
    ...     except KeyboardInterrupt:
    ...         print("interrupted at a safe point")
    interrupted at a safe point
    >>> _ = signal.signal(signal.SIGINT, ctrl_c)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def hold(signum, frame):
        if _PENDING:
            previous[signum](signum, frame)   # the second signal: at once
            raise KeyboardInterrupt           # (should that handler not raise)
        _PENDING.append(signum)
    for number in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(number)
        if callable(handler):  # SIG_DFL and SIG_IGN keep their meaning
            previous[number] = handler
            signal.signal(number, hold)
    try:
        yield
        if _PENDING:   # a signal that no safe point delivered
            raise KeyboardInterrupt
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _PENDING.clear()
