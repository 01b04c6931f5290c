"""Counted access to the black-box loss, and the degree of the loss along a line.

Everything the reconstruction learns comes through :class:`LossProbe`: it converts
parameter vectors to the user's number type, converts the answers back, and counts
the evaluations per phase (architecture, inputs, labels, verification).
"""

from collections import Counter

from ..errors import InputError

__all__ = ["LossProbe"]


class LossProbe:
    """Counted evaluations of ``loss`` in a field (see :mod:`.arithmetic`)."""

    def __init__(self, loss, num_parameters, field, parameter_type=None, progress=None):
        if not callable(loss):
            raise InputError(f"loss: expected a callable, got {type(loss).__name__}")
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) \
                or num_parameters < 2:
            raise InputError(f"num_parameters: expected an integer of at least 2, "
                             f"got {num_parameters!r}")
        self.loss = loss
        self.num_parameters = num_parameters
        self.field = field
        self.parameter_type = parameter_type
        self.counts = Counter()
        self.progress = progress
        self.phase = "architecture"

    # [progress hook] a phase change is one progress event (the reconstruction sets the
    # phase before each stage)
    @property
    def phase(self):
        return self._phase

    @phase.setter
    def phase(self, phase):
        if self.progress is not None and phase != getattr(self, "_phase", None):
            self.progress.event(phase, evaluations=self.evaluations)
        self._phase = phase

    @property
    def evaluations(self):
        return sum(self.counts.values())

    def __call__(self, theta):
        self.counts[self.phase] += 1
        if self.parameter_type is None and getattr(self.loss, "takes_field_numbers", False):
            # the toolkit's own black box reads the field's numbers (mpq, mpf) as they are:
            # a round trip through Fraction was half the time of an exact evaluation
            return self.field.loss_value(self.loss(theta))
        values = [self.field.to_user(v) for v in theta]
        if self.parameter_type is not None:
            values = [self.parameter_type(v) if self.field.exact else v for v in values]
        return self.field.loss_value(self.loss(values))

    def along(self, base, direction, t):
        return self([b + t * d for b, d in zip(base, direction)])

    def degree_along(self, base, direction, max_degree, width=1, attempts=5):
        """Degree of ``t -> L(base + t direction)`` near ``t = 0``, or ``None``.

        The loss is piecewise polynomial; on ``max_degree + 3`` equally spaced points
        it is one polynomial when no kink lies among them, which shows as vanishing
        finite differences above the degree (at least two orders of them).  A kink
        shows as non-vanishing top differences; then the step is shrunk and the
        evaluation repeated.
        """
        field = self.field
        # Exact values allow tiny steps; floats lose about log10(1/h) digits per order
        # of difference, so they start wide and shrink only on a suspected kink.
        bits, growth = (24, 12) if field.exact else (5, 3)
        for _ in range(attempts):
            step = field.tiny(width, bits)
            values = [self.along(base, direction, j * step) for j in range(max_degree + 3)]
            scale = max(abs(v) for v in values) or 1
            differences, row = [values[0]], values
            for _order in range(1, len(values)):
                row = [b - a for a, b in zip(row, row[1:])]
                differences.append(row[0])
            nonzero = [k for k, d in enumerate(differences)
                       if not field.is_zero(d, scale * 2 ** k)]
            degree = max(nonzero, default=0)
            if degree <= max_degree:
                return degree
            bits += growth
        return None
