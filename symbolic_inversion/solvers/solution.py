"""The result of every solver: value, status, residual, digits vouched for, statistics.

Modelled on optimistix's ``Solution(value, result, stats)``: the status is an enum whose
members map to readable messages, and ``verify=True`` turns a failure into an exception
with advice, as ``mpmath.findroot`` does.
"""

import enum
from fractions import Fraction
from dataclasses import dataclass, field

import mpmath
import numpy as np
from scipy.optimize import linear_sum_assignment

from ..rational import format_rational

__all__ = ["Status", "Solution", "RecoveryError", "same_dataset", "match_samples"]


class Status(enum.Enum):
    """How a recovery ended.  Only ``CONVERGED`` means the data can be trusted."""

    CONVERGED = "converged"
    NOT_CONVERGED = "not_converged"
    NOT_UNIQUE = "not_unique"
    UNDERDETERMINED = "underdetermined"
    UNIDENTIFIABLE = "unidentifiable"
    INCONSISTENT = "inconsistent"
    PRECISION_LIMITED = "precision_limited"
    NOISY = "noisy"

    @property
    def message(self):
        return _MESSAGES[self]


_MESSAGES = {
    Status.CONVERGED: "recovered: the data explain every step of the trace to its precision",
    Status.NOT_CONVERGED: "the solver did not converge; the values are not a solution",
    Status.NOT_UNIQUE: "more than one dataset explains the trace; none is reported as the answer",
    Status.UNDERDETERMINED: "fewer independent equations than unknowns: the trace cannot "
                            "determine the data",
    Status.UNIDENTIFIABLE: "the data are not identifiable from this trace",
    Status.INCONSISTENT: "no dataset of this size explains the trace (noise, a wrong sample "
                         "count, a different network or optimizer, or another loss "
                         "convention: loss_reduction 'mean' is PyTorch's nn.MSELoss())",
    Status.PRECISION_LIMITED: "the trace's number format is too coarse to determine the "
                              "data; the values shown are only a best fit",
    Status.NOISY: "the trace's gradients carry noise (DP-SGD): no dataset explains it "
                  "exactly; the values are a least-squares estimate",
}


class RecoveryError(RuntimeError):
    """Raised by ``recover(..., verify=True)`` when the status is not ``CONVERGED``."""

    def __init__(self, solution):
        self.solution = solution
        super().__init__(f"{solution.status.value}: {solution.message}")


@dataclass
class Solution:
    """A recovered dataset and how far it can be trusted.

    Attributes
    ==========

    samples : list of (x, y)
        Inputs and labels as lists of mpmath numbers, or of
        :class:`fractions.Fraction` when the recovery is exact (``digits`` is then
        ``10**6``, the sentinel of an error bound of zero; ``to_dict`` writes them as
        exact decimals, or ``p/q`` when the expansion does not terminate).  Samples form a multiset: their
        order is not identifiable.
    status : Status
    residual : mpf
        Largest absolute residual of the inversion system at ``samples``.
    digits : int
        Decimal digits (absolute) of the data that the trace's precision supports, from
        a first-order error bound; ``0`` when nothing can be vouched for.
    stats : dict
        Method, working precision, iterations, time, error bound, steps used, ...
    detail : str
        What happened, in words, beyond the status message.
    symmetries : list of dict
        Named symmetries of the data that the trace cannot resolve (``kind``,
        ``message``; see :mod:`~symbolic_inversion.solvers.symmetries`); empty when none.
        A dataset known only up to one of them is never ``converged``.
    classes : list
        For a classifier's loss (cross-entropy): per sample the class ``k`` when its
        label is one-hot to the digits vouched for, else ``None``; empty otherwise.
    clients : dict or None
        For federated rounds of several clients: which client held which sample, as far
        as the trace tells (:func:`~symbolic_inversion.solvers.symmetries.client_grouping`:
        ``groups``, ``identified``, ``message``); ``None`` otherwise.
    """

    samples: list
    status: Status
    residual: object = None
    digits: int = 0
    stats: dict = field(default_factory=dict)
    detail: str = ""
    symmetries: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    clients: dict = None

    @property
    def square(self):
        """Whether the steps used had no equation beyond the unknowns: such a trace cannot
        test its own consistency (the digits vouched for are digits of a root of the
        system as written)."""
        return bool(self.stats.get("square"))

    @property
    def ok(self):
        return self.status is Status.CONVERGED

    @property
    def message(self):
        return self.status.message + (f" ({self.detail})" if self.detail else "")

    @property
    def inputs(self):
        return [x for x, _ in self.samples]

    @property
    def labels(self):
        return [y for _, y in self.samples]

    def raise_for_status(self):
        if not self.ok:
            raise RecoveryError(self)
        return self

    def to_dict(self, digits=None):
        """JSON-ready: numbers as decimal strings with ``digits`` significant digits
        (default: the digits vouched for plus a few guard digits)."""
        shown = digits if digits is not None else max(min(self.digits, 10 ** 4) + 3, 10)

        def text(value):
            if value is None:
                return None
            if isinstance(value, Fraction):  # exact results: exact text, never rounded
                return format_rational(value)
            return mpmath.nstr(value, shown, strip_zeros=False)

        stats = {k: (text(v) if isinstance(v, (mpmath.mpf, Fraction)) else v)
                 for k, v in self.stats.items()}
        samples = [{"x": [text(v) for v in x], "y": [text(v) for v in y]}
                   for x, y in self.samples]
        for sample, k in zip(samples, self.classes):
            if k is not None:
                sample["class"] = k
        return {"status": self.status.value, "message": self.message,
                "samples": samples, "samples_are": self.samples_are,
                "residual": text(self.residual), "digits": self.digits,
                "square": self.square, "symmetries": list(self.symmetries),
                "clients": self.clients, "stats": stats}

    @property
    def samples_are(self):
        """What :attr:`samples` are: ``"recovered"`` (``converged``: the data),
        ``"candidates"`` (``not_unique``: datasets that each explain the trace),
        ``"best_fit"`` (any other status: the best fit of a search that failed, *not* a
        recovery) or ``"none"`` (no samples)."""
        if not self.samples:
            return "none"
        if self.status is Status.CONVERGED:
            return "recovered"
        if self.status is Status.NOT_UNIQUE:
            return "candidates"
        return "best_fit"

    def __str__(self):
        lines = [f"status: {self.status.value}: {self.message}"]
        if self.samples_are == "best_fit":
            lines.append("  the samples below are the best fit of a failed search, "
                         "not a recovery:")
        shown = max(min(self.digits + 2, 30), 6)

        def text(value):
            if isinstance(value, Fraction):
                exact = format_rational(value)
                return exact if len(exact) <= shown + 2 else f"{float(value):.{shown}g}..."
            return mpmath.nstr(value, shown)
        classes = self.classes or [None] * len(self.samples)
        for i, ((x, y), k) in enumerate(zip(self.samples, classes)):
            lines.append(f"  sample {i}: x = [{', '.join(text(v) for v in x)}]"
                         f"  y = [{', '.join(text(v) for v in y)}]"
                         + (f"  class {k}" if k is not None else ""))
        if self.clients is not None:
            groups = "; ".join(f"client {g['client']}: samples "
                               f"{', '.join(map(str, g['samples']))}"
                               for g in self.clients["groups"])
            lines.append(f"clients ({groups}): {self.clients['message']}")
        if self.residual is not None:
            lines.append(f"residual: {mpmath.nstr(self.residual, 3)}   digits vouched for: "
                         f"{self.digits}")
        return "\n".join(lines)

    def _repr_html_(self):
        from ..report.display import solution_html
        return solution_html(self)


def match_samples(first, second):
    """The pairing of two datasets (lists of ``(x, y)``, equally long) that makes the
    largest distance between paired samples (max norm over inputs and labels) smallest.

    Returns ``(order, distance)``: ``first[i]`` is paired with ``second[order[i]]``.
    Optimal for any size (a bottleneck assignment: bisection on the distance with
    :func:`scipy.optimize.linear_sum_assignment` deciding whether a pairing within it
    exists); distances are compared in the numbers' own precision.

    Examples
    ========

    >>> from symbolic_inversion.solvers.solution import match_samples
    >>> match_samples([([0.0], [0.0]), ([1.0], [1.0])], [([1.1], [1.0]), ([0.0], [0.2])])
    ([1, 0], 0.2)

    A greedy match (nearest first) would pair ``0.5`` with ``0.45`` and leave ``0.0``
    for ``1.0`` (off by ``1.0``); the optimal pairing is off by ``0.55`` at most:

    >>> match_samples([([0.5], []), ([1.0], [])], [([0.45], []), ([0.0], [])])
    ([1, 0], 0.55)
    """
    if len(first) != len(second):
        raise ValueError(f"match_samples: {len(first)} samples against {len(second)}")
    if not first:
        return [], 0
    flat_first = [list(x) + list(y) for x, y in first]
    flat_second = [list(x) + list(y) for x, y in second]
    distance = [[max((abs(u - v) for u, v in zip(a, b)), default=0) for b in flat_second]
                for a in flat_first]
    candidates = sorted({d for row in distance for d in row})
    low, high = 0, len(candidates) - 1
    best = None
    while low <= high:  # the smallest threshold that admits a complete pairing
        middle = (low + high) // 2
        threshold = candidates[middle]
        too_far = np.array([[d > threshold for d in row] for row in distance], dtype=int)
        rows, columns = linear_sum_assignment(too_far)
        if too_far[rows, columns].sum() == 0:
            best, high = (list(int(c) for c in columns), threshold), middle - 1
        else:
            low = middle + 1
    return best


def same_dataset(first, second, tolerance):
    """Whether two datasets agree as multisets of samples, within ``tolerance`` (max norm).

    Samples are unordered: the optimal pairing (:func:`match_samples`) is compared.

    >>> same_dataset([([1], [2]), ([3], [4])], [([3.0], [4.0]), ([1.0], [2.0])], 1e-9)
    True
    >>> same_dataset([([1], [2]), ([3], [4])], [([1], [2]), ([1], [2])], 1e-9)
    False
    """
    if len(first) != len(second):
        return False
    return match_samples(first, second)[1] <= tolerance
