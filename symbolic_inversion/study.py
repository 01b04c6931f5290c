r"""Studies: grids of simulate-and-recover cells on any executor, resumable.

A *study* is a grid (a JSON configuration, see :class:`Study`): every combination of
network x samples ``n`` x seed x digits is one *cell*.  A cell draws random data from its
seed, simulates an exact trace at ``digits`` (or trains in ``"float64"`` / ``"float32"``),
recovers the data with :func:`~symbolic_inversion.recover` and measures the error against
the truth (:func:`error_record`).  A cell is a
deterministic function of its identity, so a grid gives the same statuses, digits and
errors serially, on local processes or on a Dask cluster.

:func:`run_study` runs the cells on any :class:`concurrent.futures.Executor` (a
``ProcessPoolExecutor``, a Dask ``distributed`` client or its ``get_executor()``), or in
this process.  **Nothing is lost**: every finished cell is appended at once to the output
file, one JSON line, flushed and synced; a rerun reads the file and runs only the cells
that are not in it (also when the grid has grown); a truncated last line (a process
killed while writing) is dropped with a warning and its cell run again.  A cell that
raises is recorded with ``status: "error"`` and the exception's one-line ``reason``, a
cell over its ``timeout`` with ``status: "timeout"``, and the study goes on.  A worker
lost mid-study costs only its running cells, which are run again (Dask reschedules them;
a broken process pool is rebuilt).

The summary (:meth:`StudyResult.table`) has one row per network x samples x digits:
cells done, success rate (``converged`` and the error within the digits vouched for),
failures (error or timeout), max error, median and max time per cell.
:func:`symbolic_inversion.plot.plot_study` draws it.

Examples
========

>>> from symbolic_inversion.study import Study, run_study
>>> study = Study.from_dict({"networks": [{"layers": [1, 1], "activations": ["tanh"]}],
...                          "samples": [1, 2], "seeds": [0, 1], "digits": [20],
...                          "steps": "2n", "lr": "0.1"})
>>> len(study.cells()), study.cells()[3].steps
(4, 4)
>>> result = run_study(study)                  # serial, in memory (no output file)
>>> [(r["samples"], r["seed"], r["status"]) for r in result.records]
[(1, 0, 'converged'), (1, 1, 'converged'), (2, 0, 'converged'), (2, 1, 'converged')]
>>> all(r["error"] < 10.0 ** -r["digits_vouched"] for r in result.records)
True
>>> print(result.table())                      # doctest: +ELLIPSIS
network     n  digits  cells  success  failed  max error  median s  max s
1-1 tanh    1      20    2/2     100%       0    ...
1-1 tanh    2      20    2/2     100%       0    ...
"""

import concurrent.futures
import contextlib
import ctypes
import json
import math
import os
import random
import re
import signal
import statistics
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import InputError, boundary
from .exact import to_decimal
from .files import check_output, open_regular
from .limits import GRACE, MAX_BUDGET_SECONDS, check, deadline, safe_interrupts
from .network import Network

__all__ = ["Study", "Cell", "StudyResult", "StudyInterrupted", "run_study", "run_cell",
           "read_records", "CONFIG_KEYS"]

#: Keys of a study configuration (every other key is refused, naming it).
CONFIG_KEYS = ("networks", "samples", "seeds", "digits", "steps", "lr", "method", "dps",
               "backend", "attempts", "timeout", "output")
DTYPES = ("float64", "float32")
MAX_CELLS = 100_000
#: A record's identity: the fields that decide what a cell computes.
IDENTITY = ("network", "init", "samples", "seed", "digits", "steps", "lr", "method", "dps",
            "backend", "attempts")
#: How many times a cell whose worker was lost is run again before it is recorded as an
#: error (Dask retries lost tasks itself too: ``distributed.scheduler.allowed-failures``).
RETRIES = 3


# -- configuration ----------------------------------------------------------------------

_LINEAR = re.compile(r"\s*([+-]?)\s*([0-9]{0,9})\s*(\*?\s*n)?\s*")  # ASCII digits


def linear_in_n(text, field):
    """``"2n"``, ``"n+1"``, ``"40+4n"``, ``"3*n-2"``: ``(a, b)`` with value ``a n + b``
    (parsed, never evaluated).

    >>> linear_in_n("40+4n", "digits"), linear_in_n("2n", "steps"), linear_in_n("n", "steps")
    ((4, 40), (2, 0), (1, 0))
    """
    a = b = 0
    position, text = 0, text.strip()
    if not text:
        raise InputError(f"{field}: expected an integer or a formula like '2n' or '40+4n'")
    while position < len(text):
        match = _LINEAR.match(text, position)
        sign, number, has_n = match.groups()
        if match.end() == position or (not number and not has_n) \
                or (position > 0 and not sign):
            raise InputError(f"{field}: expected an integer or a formula like '2n' or "
                             f"'40+4n', got {json.dumps(text)}")
        value = (-1 if sign == "-" else 1) * (int(number) if number else 1)
        if has_n:
            a += value
        else:
            b += value
        position = match.end()
    return a, b


def _check_timeout(timeout):
    """A cell's ``timeout``: ``None`` or a number of seconds in (0, 1e8] (a timer's range;
    ``inf`` ended in an ``OverflowError`` inside the timer's thread)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
            not 0 < timeout <= MAX_BUDGET_SECONDS:
        shown = repr(timeout) if isinstance(timeout, (int, float)) else type(timeout).__name__
        raise InputError(f"timeout: expected a positive number of seconds up to 1e8, got "
                         f"{shown}")
    return float(timeout)


def _positive_int(value, field, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f"of at least {low}"
        raise InputError(f"{field}: expected an integer {bound}, got {json.dumps(value)}")
    return value


def _int_list(value, field, low, high):
    if isinstance(value, int) and not isinstance(value, bool) and field == "seeds":
        value = list(range(_positive_int(value, field, 1, MAX_CELLS)))
    if not isinstance(value, list) or not value:
        raise InputError(f"{field}: expected a non-empty list of integers, "
                         f"got {json.dumps(value)[:60]}")
    values = [_positive_int(v, f"{field}[{k}]", low, high) for k, v in enumerate(value)]
    for k, v in enumerate(values):
        if v in values[:k]:
            raise InputError(f"{field}[{k}]: {v} appears twice")
    return values


def _per_n(value, field, low, high, words=()):
    """An integer, one of ``words``, or a formula linear in n (kept as text)."""
    if isinstance(value, str) and value in words:
        return value
    if isinstance(value, str):
        linear_in_n(value, field)
        return value.replace(" ", "")
    return _positive_int(value, field, low, high)


def _resolve(value, n, field, low, high):
    if isinstance(value, str) and value not in DTYPES and value != "minimal":
        a, b = linear_in_n(value, field)
        value = a * n + b
        if not low <= value <= high:
            raise InputError(f"{field}: {json.dumps(value)} gives {value} at n = {n}, "
                             f"outside {low}..{high}")
    return value


def _network(entry, field):
    if not isinstance(entry, dict):
        raise InputError(f"{field}: expected an object with 'layers' and 'activations'")
    unknown = set(entry) - {"layers", "activations", "bias", "init"}
    if unknown:
        raise InputError(f"{field}: unknown key {sorted(unknown)[0]!r} (expected layers, "
                         f"activations, bias, init)")
    if "layers" not in entry:
        raise InputError(f"{field}.layers: missing")
    bias = entry.get("bias", True)
    if not isinstance(bias, bool):
        raise InputError(f"{field}.bias: expected true or false, got {json.dumps(bias)}")
    activations = entry.get("activations", "tanh")
    if not isinstance(activations, (str, list)) or \
            not all(isinstance(a, str) for a in ([activations] if isinstance(activations, str)
                                                 else activations)):
        raise InputError(f"{field}.activations: expected a name or a list of names")
    try:
        network = Network(entry["layers"], activations, bias=bias)
    except InputError as error:
        raise InputError(f"{field}: {error}") from None
    init = entry.get("init")
    if init is not None:
        if not isinstance(init, list) or len(init) != network.num_parameters:
            raise InputError(f"{field}.init: expected a list of {network.num_parameters} "
                             f"parameters (trace order)")
        init = tuple(str(to_decimal(v, f"{field}.init[{p}]")) for p, v in enumerate(init))
    return network, init


@dataclass(frozen=True)
class Cell:
    """One simulate-and-recover experiment; a deterministic function of its fields.

    ``digits`` is an integer (an exact trace of that many digits) or ``"float64"`` /
    ``"float32"`` (training in that format); ``steps`` the number of GD steps.  The data:
    ``random.Random(1000 n + seed)`` draws the ``n`` inputs, then the ``n`` labels,
    uniform in [0, 1] with 6 decimals; the initial parameters are the network's ``init``
    or uniform in [0, 1] from ``seed`` (:func:`~symbolic_inversion.simulate`'s default).
    """

    network: Network
    init: tuple
    samples: int
    seed: int
    digits: object
    steps: int
    lr: str
    method: str = "auto"
    dps: int = None
    backend: str = None
    attempts: int = None

    def identity(self):
        """The fields that decide the cell, as JSON values (the start of its record)."""
        return {"network": self.network.to_dict(),
                "init": list(self.init) if self.init is not None else None,
                "samples": self.samples, "seed": self.seed, "digits": self.digits,
                "steps": self.steps, "lr": self.lr, "method": self.method, "dps": self.dps,
                "backend": self.backend, "attempts": self.attempts}

    @property
    def key(self):
        return record_key(self.identity())

    def data(self):
        """The true ``(inputs, labels)``, decimal strings, one list per sample."""
        rng = random.Random(1000 * self.samples + self.seed)
        d, m = self.network.input_width, self.network.output_width
        inputs = [[f"{rng.uniform(0, 1):.6f}" for _ in range(d)] for _ in range(self.samples)]
        labels = [[f"{rng.uniform(0, 1):.6f}" for _ in range(m)] for _ in range(self.samples)]
        return inputs, labels

    def trace(self):
        """``(trace, inputs, labels)``: the simulated training of the cell."""
        from .simulate import simulate
        inputs, labels = self.data()
        binary = self.digits if self.digits in DTYPES else None
        trace = simulate(self.network, inputs, labels, lr=self.lr, epochs=self.steps,
                         init=list(self.init) if self.init is not None else None,
                         dps=50 if binary else self.digits, seed=self.seed, dtype=binary)
        return trace, inputs, labels


def record_key(record):
    """The identity of a record (or a cell's :meth:`~Cell.identity`) as one string."""
    return json.dumps({k: record.get(k) for k in IDENTITY}, sort_keys=True,
                      separators=(",", ":"))


class Study:
    """A validated study configuration (spec: "Study configuration").

    Keys (only ``networks``, ``samples``, ``seeds`` and ``digits`` are required):

    ``networks``
        list of ``{"layers": [...], "activations": [...] or "name", "bias": true,
        "init": [...]}`` (``init``: initial parameters in trace order, optional);
    ``samples``
        list of ``n``; ``seeds``: list of seeds (or a count ``k``: seeds ``0..k-1``);
    ``digits``
        list of trace digits (integers, or formulas in n such as ``"40+4n"``), or
        ``"float64"`` / ``"float32"`` for binary training;
    ``steps``
        an integer, ``"minimal"`` (the fewest for a square system) or a formula in n
        (default ``"2n"``); ``lr``: decimal string (default ``"0.1"``);
    ``method``, ``dps``, ``backend``, ``attempts``
        passed to :func:`~symbolic_inversion.recover` (defaults: its own);
    ``timeout``
        seconds per cell (default none); ``output``: the JSON-lines file (relative to the
        configuration file's folder when read from a file).

    Anything else, or a value of the wrong kind, is an :class:`InputError` naming the key.

    >>> Study.from_dict({"networks": [{"layers": [1, 1]}], "samples": [2], "seeds": 2,
    ...                  "digits": ["float64", 30], "steps": "minimal"}).cells()[0].steps  # 4 unknowns, 2 parameters
    2
    >>> Study.from_dict({"networks": [], "samples": [2], "seeds": [0], "digits": [30]})
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: networks: expected a non-empty list of networks
    """

    def __init__(self, networks, samples, seeds, digits, steps="2n", lr="0.1",
                 method="auto", dps=None, backend=None, attempts=None, timeout=None,
                 output=None):
        if not isinstance(networks, list) or not networks:
            raise InputError("networks: expected a non-empty list of networks")
        self.networks = [_network(entry, f"networks[{k}]") for k, entry in enumerate(networks)]
        self.samples = _int_list(samples, "samples", 1, 10_000)
        self.seeds = _int_list(seeds, "seeds", 0, 2 ** 63)
        if not isinstance(digits, list) or not digits:
            raise InputError(f"digits: expected a non-empty list, got "
                             f"{json.dumps(digits)[:60]}")
        self.digits = [_per_n(v, f"digits[{k}]", 5, 100_000, DTYPES)
                       for k, v in enumerate(digits)]
        for k, v in enumerate(self.digits):  # said now, not by every cell that runs
            if isinstance(v, int):
                check("max_dps", v, f"digits[{k}]")
        self.steps = _per_n(steps, "steps", 1, 100_000, ("minimal",))
        self.lr = str(to_decimal(lr, "lr"))
        if to_decimal(lr, "lr") <= 0:
            raise InputError(f"lr: the learning rate must be positive, got {self.lr}")
        from .solvers import SOLVERS
        if method != "auto" and method not in SOLVERS:
            raise InputError(f"method: expected 'auto' or one of {', '.join(SOLVERS)}, "
                             f"got {json.dumps(method)}")
        self.method = method
        self.dps = None if dps is None else _positive_int(dps, "dps", 10, 100_000)
        if dps is not None:
            check("max_dps", self.dps, "dps")
        if backend not in (None, "auto", "mpmath", "flint", "arb"):
            raise InputError(f"backend: expected 'auto', 'mpmath' or 'flint', "
                             f"got {json.dumps(backend)}")
        self.backend = backend
        self.attempts = None if attempts is None else _positive_int(attempts, "attempts")
        if attempts is not None:  # said before any cell runs, not by every cell
            check("max_attempts", self.attempts, "attempts")
        self.timeout = _check_timeout(timeout)
        if output is not None and (not isinstance(output, str) or not output.strip()):
            raise InputError(f"output: expected a file name, got {json.dumps(output)}")
        self.output = output
        count = len(self.networks) * len(self.samples) * len(self.seeds) * len(self.digits)
        if count > MAX_CELLS:
            raise InputError(f"study: {count} cells, more than {MAX_CELLS}; split the grid")
        self._cells = None

    @classmethod
    def from_dict(cls, config):
        if not isinstance(config, dict):
            raise InputError("study: the configuration must be a JSON object")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise InputError(f"{unknown[0]}: unknown key (a study has "
                             f"{', '.join(CONFIG_KEYS)})")
        missing = [k for k in ("networks", "samples", "seeds", "digits") if k not in config]
        if missing:
            raise InputError(f"{missing[0]}: missing (required: networks, samples, seeds, "
                             f"digits)")
        return cls(**config)

    @classmethod
    def read(cls, path):
        """The study in the JSON file ``path`` (its ``output`` relative to that file),
        read as every file is (:mod:`symbolic_inversion.files`: a regular file, bounded
        in size and nesting, duplicate keys refused; numbers with a point are floats)."""
        from .files import read_json
        config = read_json(path, "CONFIG", parse_float=float)
        study = cls.from_dict(config)
        if study.output is not None:
            study.output = os.path.join(os.path.dirname(os.path.abspath(path)), study.output)
        return study

    def __repr__(self):
        return (f"Study({len(self.networks)} networks x {len(self.samples)} sample counts "
                f"x {len(self.seeds)} seeds x {len(self.digits)} digits: "
                f"{len(self.cells())} cells)")

    def _repr_html_(self):
        from .report.display import study_html
        return study_html(self)

    def cells(self):
        """Every cell of the grid, networks outermost, then samples, digits, seeds."""
        if self._cells is None:
            from .system import system_counts
            cells, seen = [], set()
            for network, init in self.networks:
                for n in self.samples:
                    steps = self.steps
                    if steps == "minimal":
                        steps = system_counts(network, n)["min_steps"]
                    steps = _resolve(steps, n, "steps", 1, 100_000)
                    for digits in self.digits:
                        formula = digits
                        digits = _resolve(digits, n, "digits", 5, 100_000)
                        if isinstance(digits, int) and digits is not formula:
                            check("max_dps", digits, f"digits: {json.dumps(formula)} "
                                                     f"gives {digits} at n = {n}")
                        for seed in self.seeds:
                            cell = Cell(network, init, n, seed, digits, steps, self.lr,
                                        self.method, self.dps, self.backend, self.attempts)
                            if cell.key not in seen:  # e.g. digits 60 and "40+4n" at n = 5
                                seen.add(cell.key)
                                cells.append(cell)
            self._cells = cells
        return list(self._cells)


def load_study(config):
    """A :class:`Study` from a ``Study``, a dict, or the path of a JSON file."""
    if isinstance(config, Study):
        return config
    if isinstance(config, dict):
        return Study.from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return Study.read(config)
    raise InputError(f"study: expected a configuration (dict, file name or Study), "
                     f"got {type(config).__name__}")


# -- one cell ---------------------------------------------------------------------------

class CellTimeout(BaseException):
    """Raised inside a cell that ran over its time (a BaseException, so that a solver's
    ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def _deadline(seconds):
    """Raise :class:`CellTimeout` in this thread after ``seconds`` (any thread: a Dask
    worker runs tasks in threads, where signals cannot be used): at the next cooperative
    check (:func:`~symbolic_inversion.limits.check_time`: every tracker step and Newton
    iteration), or, in code without checks, ``GRACE`` seconds later as an asynchronous
    exception, which arrives at the next Python bytecode (a single long C call ends
    first; and it may land in a callback of a C function, which is why it waits)."""
    if seconds is None:
        yield
        return
    thread, lock, state = threading.get_ident(), threading.Lock(), {"active": True}

    def expire():
        with lock:
            if state["active"]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread),
                                                           ctypes.py_object(CellTimeout))
    timer = threading.Timer(seconds + GRACE, expire)
    timer.daemon = True
    timer.start()
    try:
        with deadline(seconds, CellTimeout):
            yield
    finally:
        with lock:
            state["active"] = False
        timer.cancel()


def _one_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300]}" if text else type(error).__name__


def success(record):
    """A cell succeeds when it ``converged`` and its error is within the digits it
    vouched for (``error <= 10^-digits_vouched``)."""
    error = record.get("error")
    return record.get("status") == "converged" and error is not None \
        and error <= 10.0 ** -record.get("digits_vouched", 0)


@boundary("error_record")
def error_record(solution, inputs, labels, trace=None):
    """One point of :func:`~symbolic_inversion.plot.plot_precision_law`: the recovery's
    error against the truth.

    Returns ``{"samples", "digits", "status", "digits_vouched", "error", "error_bound"}``
    with ``error`` the largest distance (max norm) between recovered and true samples
    under the best pairing (``inf`` when nothing was recovered) and ``error_bound`` the
    first-order bound the solver predicted.

    Examples
    ========

    >>> from symbolic_inversion import Network, recover, simulate
    >>> from symbolic_inversion.plot import error_record
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=20)
    >>> record = error_record(recover(trace), [["0.6"], ["0.2"]], [["0.5"], ["0.4"]], trace)
    >>> record["samples"], record["digits"], record["status"]
    (2, 20, 'converged')
    >>> 1e-22 < record["error"] < record["error_bound"] < 1e-14
    True

    The true data as :func:`~symbolic_inversion.simulate` takes them (a flat list for
    one-dimensional samples) give the same record:

    >>> error_record(recover(trace), ["0.6", "0.2"], ["0.5", "0.4"], trace) == record
    True
    """
    import mpmath

    from .samples import sample_columns, sample_rows
    from .solvers.solution import Solution, match_samples
    from .trace import Trace
    if not isinstance(solution, Solution):
        raise InputError(f"error_record: expected a Solution, got {type(solution).__name__}")
    if trace is not None and not isinstance(trace, Trace):
        raise InputError(f"error_record: expected a Trace, got {type(trace).__name__}")
    # the true data as simulate takes them: one list per sample, or a flat list of
    # one-dimensional values
    if trace is not None:
        inputs = sample_columns(inputs, trace.network.input_width, "inputs")
        labels = sample_columns(labels, trace.network.output_width, "labels",
                                count=len(inputs))
    else:
        inputs = sample_rows(inputs, "inputs")
        labels = sample_rows(labels, "labels", count=len(inputs))
    from .precision import report_dps
    with mpmath.workdps(solution.stats.get("dps") or report_dps(trace)):
        truth = [([mpmath.mpf(str(v)) for v in x], [mpmath.mpf(str(v)) for v in y])
                 for x, y in zip(inputs, labels)]
        if len(solution.samples) == len(truth) and solution.samples:
            error = float(match_samples(solution.samples, truth)[1])
        else:
            error = math.inf
    bound = solution.stats.get("error_bound")
    return {"samples": len(truth), "digits": trace.digits if trace is not None else None,
            "status": solution.status.value, "digits_vouched": solution.digits,
            "error": error, "error_bound": float(bound) if bound is not None else None}


def run_cell(cell, timeout=None):
    """Simulate, recover and measure ``cell``: its record (a JSON-ready dict).

    The record is the cell's identity plus ``status`` (the recovery's, or ``"error"`` /
    ``"timeout"`` with a one-line ``reason``), ``digits_vouched``, ``error`` (max error
    against the true data after matching the samples; ``None`` when nothing was
    recovered), ``error_bound`` (the solver's prediction), ``ok`` (:func:`success`),
    ``time`` (seconds of the whole cell), ``recover_time`` (of the recovery alone) and
    ``cpu_time`` (processor seconds of the cell's thread: less than ``time`` when other
    work shares the cores).

    >>> cell = Study.from_dict({"networks": [{"layers": [1, 1]}], "samples": [2],
    ...                         "seeds": [0], "digits": [20]}).cells()[0]
    >>> record = run_cell(cell)
    >>> record["status"], record["digits_vouched"] > 10, record["ok"]
    ('converged', True, True)
    >>> run_cell(cell, timeout=1e-9)["status"]
    'timeout'
    """
    from .solvers import recover
    if not isinstance(cell, Cell):
        raise InputError(f"run_cell: expected a Cell (Study.cells()), got "
                         f"{type(cell).__name__}")
    timeout = _check_timeout(timeout)
    record = cell.identity()
    started, cpu = time.perf_counter(), time.thread_time()
    try:
        with _deadline(timeout):
            trace, inputs, labels = cell.trace()
            recovering = time.perf_counter()
            solution = recover(trace, method=cell.method, dps=cell.dps, backend=cell.backend,
                               attempts=cell.attempts)
            recovered = time.perf_counter()
            measured = error_record(solution, inputs, labels, trace)
        error, bound = measured["error"], measured["error_bound"]
        record.update(status=measured["status"], digits_vouched=measured["digits_vouched"],
                      error=error if math.isfinite(error) else None,
                      error_bound=bound if bound is not None and math.isfinite(bound)
                      else None, trace_digits=trace.digits,
                      recover_time=round(recovered - recovering, 4))
    except CellTimeout:
        record.update(status="timeout", digits_vouched=0, error=None,
                      reason=f"did not finish within {timeout:g} s")
    except Exception as error:  # a crash is data: recorded, the study goes on
        record.update(status="error", digits_vouched=0, error=None,
                      reason=_one_line(error))
    record["ok"] = success(record)
    record["time"] = round(time.perf_counter() - started, 4)
    record["cpu_time"] = round(time.thread_time() - cpu, 4)
    return record


def _task(cell, timeout, token):
    """:func:`run_cell` as submitted to an executor.  ``token`` (unique per submission)
    keeps Dask from taking two submissions of a cell for one task (its keys hash the
    arguments): a retry must not be the lost task again, nor a rerun a task cancelled by
    an interrupted run on the same client."""
    return run_cell(cell, timeout)


# -- the journal ------------------------------------------------------------------------

def read_records(path, warn=True):
    """The records in the JSON-lines file ``path`` (``[]`` if it does not exist).

    A last line without its newline (a process killed while writing) is dropped with a
    warning; any other line that is not a JSON object is an :class:`InputError` naming
    its line number (the file is not a study's output).
    """
    records, _ = _read_journal(path, warn)
    return records


#: What a study's output is, in the refusal of anything else (files.check_output).
OUTPUT = "a study's output"


def _read_journal(path, warn=True):
    """``(records, size)``: the complete lines and the bytes they take."""
    path = check_output(path, "output", OUTPUT)   # a device or a FIFO is never opened
    if not os.path.exists(path):
        return [], 0
    descriptor = open_regular(path, os.O_RDONLY, "output", OUTPUT)
    with os.fdopen(descriptor, "rb") as handle:
        return _parse_journal(handle.read(), path, warn)


def _parse_journal(data, path, warn=True):
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        if warn:
            warnings.warn(f"{path}: the last line is incomplete (a run was killed while "
                          f"writing it); it is dropped and its cell runs again",
                          stacklevel=4)
    records = []
    for number, line in enumerate(data[:complete].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "status" not in record:
            raise InputError(f"output: line {number} of {path} is not a study record")
        records.append(record)
    return records, complete


class _Journal:
    """The output file, locked for this study alone (:func:`_lock`): records read at the
    start, one line appended per finished cell (flushed and synced before the next)."""

    def __init__(self, path):
        self.path = path
        self.handle = None
        if path is None:
            self.records = []
            return
        path = check_output(path, "output", OUTPUT)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        except OSError as error:
            raise InputError(f"output: cannot write {path}: {error.strerror}") from None
        descriptor = open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, "output",
                                  OUTPUT)
        self.handle = os.fdopen(descriptor, "r+b")
        try:
            _lock(self.handle, path)  # before reading: what it reads stays its own
            self.records, complete = _parse_journal(self.handle.read(), path)
            if self.handle.tell() > complete:  # drop the incomplete last line
                self.handle.truncate(complete)
        except BaseException:
            self.close()
            raise

    def append(self, record):
        if self.handle is None:
            return
        self.handle.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self):
        if self.handle is not None:
            _LOCKED.discard(self.handle.fileno())
            self.handle.close()   # (closing releases the lock)
            self.handle = None


# The descriptors of the outputs this process has locked.  A flock belongs to the open
# file, which a fork shares: a process-pool worker forked during the study would hold
# the output locked after the study itself ended (killed, say).  In a forked child each
# such descriptor is pointed at the null device instead (its number stays valid for
# whatever object still holds it; the child never writes the journal).
_LOCKED = set()


def _drop_inherited_locks():
    if not _LOCKED:
        return
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in _LOCKED:
        os.dup2(null, descriptor)
    os.close(null)
    _LOCKED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


def _lock(handle, path):
    """Lock the output for this study (an advisory ``flock``, released by the system on
    any exit of the process, even a killed one), or say which process holds it: two
    studies appending to one file at once would each run every cell."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(handle.fileno())
        who = f"process {holder}" if holder else "another process"
        raise InputError(f"output: {path} is being written by another study ({who}); "
                         f"wait for it to finish, or give this one another output") \
            from None
    except OSError as error:  # a file system without locks (some network ones)
        warnings.warn(f"{path}: cannot lock the output ({error.strerror}): a second study "
                      f"on it at the same time would run its cells again", stacklevel=4)
        return
    _LOCKED.add(handle.fileno())


def _lock_holder(descriptor):
    """The process id holding a flock on the file of ``descriptor``, from Linux's
    ``/proc/locks`` (``None`` elsewhere, or when it cannot be told)."""
    info = os.fstat(descriptor)
    where = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read(1_000_000).splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "FLOCK" not in fields or "->" in fields:  # (a waiter, not the holder)
            continue
        at = fields.index("FLOCK")
        try:
            pid, device = int(fields[at + 3]), fields[at + 4].split(":")
            if (int(device[0], 16), int(device[1], 16), int(device[2])) == where:
                return pid
        except (IndexError, ValueError):
            continue
    return None


# -- running ----------------------------------------------------------------------------

class StudyInterrupted(KeyboardInterrupt):
    """The study was interrupted (Ctrl-C, SIGTERM): the finished cells are in the output
    file; ``done`` and ``remaining`` count the grid's cells."""

    def __init__(self, done, remaining, output):
        super().__init__(f"{done} cells finished, {remaining} remain")
        self.done, self.remaining, self.output = done, remaining, output


def _ignore_interrupts():  # process-pool workers: Ctrl-C is the driver's to handle
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _process_pool(workers):
    from .solvers.executors import make_executor
    return make_executor(workers=workers, initializer=_ignore_interrupts)


def _stop(executor, owned, futures):
    for future in futures:
        future.cancel()
    if not owned:
        return
    if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.terminate()  # a running cell's result would be lost anyway
        executor.shutdown(wait=False, cancel_futures=True)
    else:
        executor.shutdown(wait=False)


def run_study(config, executor=None, workers=None, output=None, progress=None,
              timeout=None, retry_failed=False):
    """Run every cell of ``config`` not yet in its output file; a :class:`StudyResult`.

    Parameters
    ==========

    config : dict, file name or :class:`Study`
    executor : concurrent.futures.Executor or distributed.Client, optional
        Where the cells run (a client's ``get_executor()`` is used); default: in this
        process, one after the other (or ``workers`` local processes).  Not threads:
        mpmath's precision is global to a process.
    workers : int, optional
        Run on that many local processes (``--workers N``); a broken pool is rebuilt.
    output : str, optional
        The JSON-lines file (default: the configuration's ``output``; none: in memory).
    progress : None, True or a callable
        One event per finished cell (``phase`` ``"cell"``, ``attempt`` of ``of``,
        ``status``, ``n``, ``seed``), as for :func:`~symbolic_inversion.recover`.
    timeout : float, optional
        Seconds per cell (default: the configuration's ``timeout``).
    retry_failed : bool
        Also run the cells recorded as ``"error"`` or ``"timeout"`` again (their new line
        is appended; a cell's last line is the one that counts).

    Raises
    ======

    StudyInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``), after the finished cells are on disk.
    """
    from .report.progress import Progress
    study = load_study(config)
    output = output if output is not None else study.output
    timeout = _check_timeout(timeout if timeout is not None else study.timeout)
    if executor is not None and workers is not None:
        raise InputError("executor and workers: choose one")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InputError(f"executor: expected a concurrent.futures.Executor or a "
                         f"distributed.Client, got {type(executor).__name__}")
    if not isinstance(retry_failed, (bool, np.bool_)):
        raise InputError(f"retry_failed: expected True or False, got "
                         f"{type(retry_failed).__name__}")
    cells = study.cells()
    owned = workers is not None
    if owned:  # (a bad --workers is said before the output file is touched)
        executor = _process_pool(workers)
    elif hasattr(executor, "get_executor"):  # a distributed.Client
        executor, owned = executor.get_executor(), True
    try:
        journal = _Journal(output)
    except BaseException:
        if owned:
            executor.shutdown()
        raise
    wanted = {cell.key for cell in cells}
    found = {}
    for record in journal.records:  # a cell's last line counts (it may have been retried)
        key = record_key(record)
        if key in wanted:
            found[key] = record
    if retry_failed:
        found = {k: r for k, r in found.items() if r["status"] not in ("error", "timeout")}
    todo = [cell for cell in cells if cell.key not in found]
    done = len(cells) - len(todo)

    with Progress.create(progress, "study", unit="cells") as reporter, \
            _latched_interrupts() as interrupted:
        def finished(cell, record):
            nonlocal done
            journal.append(record)
            found[cell.key] = record
            done += 1
            reporter.event("cell", attempt=done, of=len(cells), status=record["status"],
                           n=cell.samples, seed=cell.seed)
        reporter.event("start", attempt=done, of=len(cells), remaining=len(todo))
        futures, pool = {}, [executor]  # pool[0]: the executor in use (rebuilt if broken)
        try:
            if executor is None:
                for cell in todo:
                    # an interrupt is raised at a safe point of the cell (a tracker step,
                    # a Newton iteration) or after it, never inside a C call's callback
                    with safe_interrupts():
                        record = run_cell(cell, timeout)
                    if interrupted():  # swallowed inside the cell: its record is suspect
                        raise KeyboardInterrupt
                    finished(cell, record)
            else:
                # the largest cells first, so that no worker is left with one at the end
                largest = sorted(todo, key=lambda c: (c.samples, c.steps), reverse=True)
                futures = {_submit(executor, cell, timeout): cell for cell in largest}
                _collect(pool, owned, workers, futures, timeout, finished, interrupted)
        except KeyboardInterrupt:
            _stop(pool[0], owned, futures)
            owned = False
            journal.close()
            if output is not None:  # what is on disk (the interrupt may have come between
                # a line's write and its count)
                done = len(wanted & {record_key(r) for r in read_records(output, False)})
            raise StudyInterrupted(done, len(cells) - done, output) from None
        finally:
            if owned:
                pool[0].shutdown(wait=True)
            journal.close()
    return StudyResult(study, [found[cell.key] for cell in cells if cell.key in found],
                       len(cells), output)


def _submit(executor, cell, timeout):
    return executor.submit(_task, cell, timeout, os.urandom(8).hex())


def _collect(pool, owned, workers, futures, timeout, finished, interrupted):
    """Wait for ``futures`` (future -> cell) on ``pool[0]``; rerun cells whose worker
    was lost (on a new process pool when ours broke); stop when ``interrupted()``."""
    lost = {}
    while futures:
        if interrupted():
            raise KeyboardInterrupt
        ready, _ = concurrent.futures.wait(futures,
                                           return_when=concurrent.futures.FIRST_COMPLETED)
        for future in ready:
            cell = futures.pop(future)
            try:
                record = future.result()
            except concurrent.futures.CancelledError:
                raise KeyboardInterrupt from None  # cancelled from outside: stop
            except Exception as error:  # not the cell's: its worker was lost
                lost[cell.key] = lost.get(cell.key, 0) + 1
                final = type(error).__name__ == "KilledWorker"  # Dask gave up on it
                if lost[cell.key] >= RETRIES or final:
                    # (a broken process pool fails every cell it held, so a cell pending
                    # beside one that kills its worker three times is recorded too)
                    record = cell.identity()
                    record.update(status="error", digits_vouched=0, error=None, ok=False,
                                  time=None, reason=f"its worker was lost {lost[cell.key]} "
                                  f"time{'s' if lost[cell.key] > 1 else ''} while it was "
                                  f"pending or running: {_one_line(error)}")
                else:
                    if isinstance(error, concurrent.futures.BrokenExecutor):
                        if not owned or workers is None:
                            raise
                        if getattr(pool[0], "_broken", False):
                            pool[0].shutdown(wait=False, cancel_futures=True)
                            pool[0] = _process_pool(workers)
                    futures[_submit(pool[0], cell, timeout)] = cell
                    continue
            finished(cell, record)


@contextlib.contextmanager
def _latched_interrupts():
    """Remember every SIGINT and SIGTERM whose handler raises in this process (Python's
    Ctrl-C handler, :func:`interrupt_on_sigterm`'s) while the block runs; yields a
    function that says whether one came.

    The ``KeyboardInterrupt`` such a handler raises can be swallowed where it lands: a
    bare ``except:`` in mpmath's ``from_float`` (pure-Python backend) catches it and
    returns a NaN.  The study then stops after the cell, and drops that cell's record.
    Only the main thread's handlers are wrapped; default and ignored dispositions are
    left alone."""
    fired = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield fired.is_set
        return
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(number)
        if not callable(handler):  # SIG_DFL, SIG_IGN, or installed outside Python
            continue

        def latched(signum, frame, handler=handler):
            fired.set()
            handler(signum, frame)
        previous[number] = handler
        signal.signal(number, latched)
    try:
        yield fired.is_set
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def interrupt_on_sigterm():
    """Turn SIGTERM into ``KeyboardInterrupt`` (as Ctrl-C) while the block runs in the
    main thread, so that a terminated study says what remains."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- results ----------------------------------------------------------------------------

def network_label(network):
    """``"1-1 tanh"``, ``"2-3-1 tanh/identity nobias"``: a network dict as text."""
    activations = network["activations"]
    names = activations[0] if len(set(activations)) == 1 else "/".join(activations)
    return "-".join(map(str, network["layers"])) + " " + names + \
        ("" if network.get("bias", True) else " nobias")


def summarize(records, total=None):
    """One row per network x samples x digits (in the records' order): ``network``,
    ``samples``, ``digits``, ``cells``, ``expected`` (the grid's cells of the row, when
    ``total`` maps rows to counts), ``success`` (fraction), ``failed`` (error or timeout),
    ``max_error`` (over the cells that recovered data), ``median_time``, ``max_time``."""
    rows = {}
    for record in records:
        key = (network_label(record["network"]), record["samples"], record["digits"])
        rows.setdefault(key, []).append(record)
    summary = []
    for (label, n, digits), group in rows.items():
        errors = [r["error"] for r in group if r.get("error") is not None]
        times = [r["time"] for r in group if r.get("time") is not None]
        summary.append({
            "network": label, "samples": n, "digits": digits, "cells": len(group),
            "expected": (total or {}).get((label, n, digits), len(group)),
            "success": sum(1 for r in group if success(r)) / len(group),
            "failed": sum(1 for r in group if r["status"] in ("error", "timeout")),
            "max_error": max(errors) if errors else None,
            "median_time": statistics.median(times) if times else None,
            "max_time": max(times) if times else None})
    return summary


def format_summary(rows):
    """The summary rows as a text table."""
    width = max([len("network")] + [len(r["network"]) for r in rows])
    lines = [f"{'network':<{width}} {'n':>4} {'digits':>7} {'cells':>6} {'success':>8} "
             f"{'failed':>7} {'max error':>10} {'median s':>9} {'max s':>6}"]
    for r in rows:
        error = "-" if r["max_error"] is None else f"{r['max_error']:.1e}"
        median = "-" if r["median_time"] is None else f"{r['median_time']:.2f}"
        most = "-" if r["max_time"] is None else f"{r['max_time']:.2f}"
        lines.append(f"{r['network']:<{width}} {r['samples']:>4} {r['digits']!s:>7} "
                     f"{str(r['cells']) + '/' + str(r['expected']):>6} "
                     f"{r['success']:>8.0%} {r['failed']:>7} {error:>10} {median:>9} "
                     f"{most:>6}")
    return "\n".join(lines)


@dataclass
class StudyResult:
    """The records of a study's cells (grid order; only the finished ones), how many
    cells the grid has, and the output file.  ``str()`` is the summary table."""

    study: Study
    records: list
    total: int
    output: str = None

    @property
    def complete(self):
        return len(self.records) == self.total

    @property
    def remaining(self):
        return self.total - len(self.records)

    @property
    def failed(self):
        """How many finished cells failed (``"error"`` or ``"timeout"``)."""
        return sum(1 for record in self.records if record["status"] in ("error", "timeout"))

    def summary(self):
        expected = {}
        for cell in self.study.cells():
            key = (network_label(cell.network.to_dict()), cell.samples, cell.digits)
            expected[key] = expected.get(key, 0) + 1
        return summarize(self.records, expected)

    def table(self):
        return format_summary(self.summary())

    def to_dict(self):
        return {"output": self.output, "cells": self.total, "done": len(self.records),
                "complete": self.complete, "summary": self.summary()}

    def __repr__(self):  # (the records may be thousands: the HTML has the summary)
        return (f"StudyResult({len(self.records)} of {self.total} cells done, "
                f"output={self.output!r})")

    def __str__(self):
        return self.table()

    def _repr_html_(self):
        from .report.display import study_result_html
        return study_result_html(self)
