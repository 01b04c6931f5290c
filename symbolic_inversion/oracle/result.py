"""The result of a reconstruction from the loss: :class:`LossReconstruction`."""

from dataclasses import dataclass, field
from fractions import Fraction

import mpmath

__all__ = ["LossReconstruction", "STATUSES"]

#: ``recovered``: architecture and data identified and verified; ``ambiguous``: verified,
#: but something is not identifiable (see ``unidentifiable``); ``unverified``: the rebuilt
#: dataset does not reproduce the loss; ``failed``: the reconstruction stopped early.
STATUSES = ("recovered", "ambiguous", "unverified", "failed")


def _text(value, digits=None):
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else str(value)
    if isinstance(value, mpmath.mpf):
        # every digit the number's own mantissa holds
        return mpmath.nstr(value, digits or max(15, mpmath.libmp.prec_to_dps(
            max(value._mpf_[3], 1))))
    return str(value)


@dataclass
class LossReconstruction:
    """What the loss revealed about the network and its training data.

    Attributes
    ==========

    status : str
        One of :data:`STATUSES`; only ``recovered`` means "everything identified".
    message : str
        One readable sentence about the outcome.
    layers : list of int or None
        Widths from input to output, e.g. ``[3, 2, 1]``.
    depth : int or None
        Number of weight layers, ``len(layers) - 1``.
    bias : bool or None
        Whether the layers have biases.
    output_activation : str or None
        ``identity`` or ``relu``, whichever reproduces the loss.
    samples : list of dict
        ``{"x": [...], "y": [...], "multiplicity": m}``; exact Fractions in exact mode,
        ``mpf`` in mpmath mode.  A sample with multiplicity ``m > 1`` stands for ``m``
        samples with that input; its ``y`` is their mean label.
    num_samples : int or None
        The smallest number of samples consistent with the loss.
    directions : list of list
        The input directions read from the kink hyperplanes (without a bias the
        inputs are known only along these, before the scale is fixed).
    unidentifiable : list of str
        What the loss does not determine, and why.
    diagnostics : list of str
        What happened on the way (dead neurons met, retries).
    verified : bool
        Whether the rebuilt network and dataset reproduce the loss at fresh random
        parameter points (exactly in exact mode).
    evaluations : int
        Loss evaluations used in total; ``evaluation_counts`` splits them by phase.
    time : float
        Wall-clock seconds.
    """

    status: str
    message: str
    layers: list = None
    depth: int = None
    bias: bool = None
    output_activation: str = None
    samples: list = field(default_factory=list)
    num_samples: int = None
    directions: list = field(default_factory=list)
    unidentifiable: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    verified: bool = False
    evaluations: int = 0
    evaluation_counts: dict = field(default_factory=dict)
    time: float = 0.0
    arithmetic: str = "exact rationals"
    dps: int = None

    @property
    def inputs(self):
        """The recovered inputs, one per distinct input."""
        return [s["x"] for s in self.samples]

    @property
    def labels(self):
        """The recovered labels (mean labels for repeated inputs)."""
        return [s["y"] for s in self.samples]

    @property
    def ok(self):
        """True only for a verified, fully identified reconstruction."""
        return self.status == "recovered" and self.verified

    def number_text(self, value):
        """``value`` (a rational, an mpmath number) as the result prints it: exact, or
        every digit the reconstruction worked at."""
        return _text(value, self.dps)

    def to_dict(self):
        """A JSON-ready dict; numbers are strings (``"3/7"`` or decimal digits)."""
        return {
            "status": self.status,
            "message": self.message,
            "layers": self.layers,
            "depth": self.depth,
            "bias": self.bias,
            "output_activation": self.output_activation,
            "samples": [{"x": [_text(v, self.dps) for v in s["x"]],
                         "y": [_text(v, self.dps) for v in s["y"]],
                         "multiplicity": s.get("multiplicity", 1)} for s in self.samples],
            "num_samples": self.num_samples,
            "directions": [[_text(v, self.dps) for v in d] for d in self.directions],
            "unidentifiable": list(self.unidentifiable),
            "diagnostics": list(self.diagnostics),
            "verified": self.verified,
            "evaluations": self.evaluations,
            "evaluation_counts": dict(self.evaluation_counts),
            "time": f"{self.time:.3f}",
            "arithmetic": self.arithmetic,
            "dps": self.dps,
        }

    def __str__(self):
        lines = [f"status: {self.status} - {self.message}",
                 f"layers: {self.layers} (depth {self.depth}, "
                 f"bias {'yes' if self.bias else 'no' if self.bias is not None else '?'}, "
                 f"output {self.output_activation})"]
        for s in self.samples:
            times = f"  (x{s['multiplicity']})" if s.get("multiplicity", 1) != 1 else ""
            lines.append(f"  x = [{', '.join(_text(v, self.dps) for v in s['x'])}]   "
                         f"y = [{', '.join(_text(v, self.dps) for v in s['y'])}]{times}")
        for reason in self.unidentifiable:
            lines.append(f"not identifiable: {reason}")
        lines.append(f"verified: {self.verified}; {self.evaluations} loss evaluations "
                     f"({', '.join(f'{k} {v}' for k, v in self.evaluation_counts.items())}); "
                     f"{self.time:.2f} s; {self.arithmetic}")
        return "\n".join(lines)

    def _repr_html_(self):
        from ..report.display import loss_reconstruction_html
        return loss_reconstruction_html(self)
