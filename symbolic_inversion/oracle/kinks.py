r"""Training inputs from the kinks of the loss.

Fix every parameter except those of one first-layer neuron, ``p = (w_k, b_k)``.  Every
sample then enters the loss only through its pre-activation ``z_i = (x_i, 1) . p``, so

.. math:: L(p) = \frac1n \sum_i g_i\big((x_i, 1) \cdot p\big)

with each ``g_i`` piecewise quadratic in one variable.  All kinks of ``L`` lie on
hyperplanes with normal ``(x_i, 1)``: through the origin (the neuron itself switches)
or parallel to it (a deeper neuron or the output switches).  With a bias the normal,
scaled to last entry 1, *is* ``x_i``; without a bias it gives the direction of ``x_i``.

Finding the kinks.  Along a segment the loss is piecewise quadratic in the segment
parameter ``t``.  Quadratics are fitted exactly from four points at each end of an
interval (the fourth checks that no kink hides among them).  If they agree there is no
kink; otherwise the roots of their difference are the candidates: a single kink is the
root ``r`` at which the loss follows the left quadratic just before ``r`` and the right
one just after (and at the midpoints of both sides).  Otherwise the interval is split.
In exact arithmetic the kinks are exact rationals.

Which segments.  The half polygon ``a -> b -> -a`` in the neuron's parameter space
crosses every hyperplane through the origin exactly once.  ``D + 1`` such paths with
``b`` perturbed slightly (``D`` the number of the neuron's parameters) give ``D + 1``
points on every hyperplane, matched by proximity; ``D - 1`` of them fix a hyperplane
through the origin (``D`` an affine one) and the rest check it exactly.
"""

from contextlib import nullcontext

import mpmath

from .arithmetic import ExactField, FloatField, nullspace
from .probe import LossProbe

__all__ = ["first_layer_indices", "find_hyperplanes", "KinkFinder", "kinks_along_line"]


def first_layer_indices(layers, bias, neuron):
    """Trace-order indices of first-layer neuron ``neuron``'s weights (and bias).

    >>> from symbolic_inversion.oracle.kinks import first_layer_indices
    >>> first_layer_indices([3, 2, 1], True, 1)
    [3, 4, 5, 7]
    """
    fan_in, fan_out = layers[0], layers[1]
    indices = list(range(neuron * fan_in, (neuron + 1) * fan_in))
    if bias:
        indices.append(fan_in * fan_out + neuron)
    return indices


class KinkFinder:
    """Kinks of the loss restricted to the parameters ``indices`` around ``base``."""

    def __init__(self, probe, base, indices, max_level=None):
        self.probe, self.field = probe, probe.field
        self.base, self.indices = list(base), list(indices)
        self.max_level = max_level or (80 if self.field.exact else 3 * self.field.dps)
        self.unresolved = 0

    def loss_at(self, point):
        theta = list(self.base)
        for index, value in zip(self.indices, point):
            theta[index] = value
        return self.probe(theta)

    # -- quadratics in the segment parameter t -------------------------------------------

    def _value(self, t):
        return self.loss_at([a + t * (b - a) for a, b in zip(self.start, self.end)])

    def _fit(self, t, side, step):
        """The quadratic ``(c0, c1, c2)`` the loss follows from ``t`` towards ``side``."""
        field = self.field
        g = step * side
        v0, v1, v2, v3 = (self._value(t + j * g) for j in range(4))
        scale = max(abs(v0), abs(v1), abs(v2), abs(v3)) or 1
        if not field.is_zero(v3 - 3 * v2 + 3 * v1 - v0, 8 * scale):
            return None
        first, second = v1 - v0, v2 - 2 * v1 + v0
        a2 = second / (2 * g * g)
        a1 = (first - second / 2) / g
        return (v0 - a1 * t + a2 * t * t, a1 - 2 * a2 * t, a2)

    def _same(self, q0, q1):
        scale = max(abs(c) for c in q0 + q1) or 1
        return all(self.field.is_zero(a - b, scale) for a, b in zip(q0, q1))

    @staticmethod
    def _at(q, t):
        return q[0] + q[1] * t + q[2] * t * t

    def _roots(self, d):
        field = self.field
        scale = max(abs(c) for c in d) or 1
        c0, c1, c2 = d
        if field.is_zero(c2, scale):
            return [] if field.is_zero(c1, scale) else [-c0 / c1]
        root = field.sqrt(c1 * c1 - 4 * c2 * c0)
        if root is None:
            return []
        return [(-c1 - root) / (2 * c2), (-c1 + root) / (2 * c2)]

    def _follows(self, q, t):
        value = self._value(t)
        return self.field.is_zero(value - self._at(q, t), abs(value) + 1)

    def _confirm(self, t0, q0, r, t1, q1):
        delta = min(r - t0, t1 - r) / 1024
        return (self._follows(q0, r - delta) and self._follows(q1, r + delta)
                and self._follows(q0, (t0 + r) / 2) and self._follows(q1, (r + t1) / 2))

    def _search(self, t0, q0, t1, q1, level, step):
        if self._same(q0, q1):
            return []
        for r in self._roots(tuple(b - a for a, b in zip(q0, q1))):
            if t0 < r < t1 and self._confirm(t0, q0, r, t1, q1):
                return [r]
        if level >= self.max_level:
            self.unresolved += 1
            return []
        for fraction in ((1, 2), (3, 8), (5, 8), (7, 16)):
            middle = t0 + (t1 - t0) * fraction[0] / fraction[1]
            qm = self._fit(middle, 1, min(step, (t1 - middle) / 8))
            if qm is not None:
                break
        else:
            self.unresolved += 1
            return []
        return (self._search(t0, q0, middle, qm, level + 1, step)
                + self._search(middle, qm, t1, q1, level + 1, step))

    def segment(self, start, end):
        """Kinks on the segment ``start -> end`` as parameters ``t`` in ``(0, 1)``."""
        self.start, self.end = start, end
        field = self.field
        one = field.number(1)
        zero = field.number(0)
        for bits in (20, 40):
            step = field.tiny(one, bits)
            q0, q1 = self._fit(zero, 1, step), self._fit(one, -1, step)
            if q0 is not None and q1 is not None:
                return sorted(self._search(zero, q0, one, q1, 0, step))
        self.unresolved += 1
        return []

    def half_polygon(self, a, b):
        """Kinks on ``a -> b -> -a`` as ``(segment, t, point)``."""
        minus_a = [-v for v in a]
        found = []
        for segment, (start, end) in enumerate(((a, b), (b, minus_a))):
            for t in self.segment(start, end):
                point = [s + t * (e - s) for s, e in zip(start, end)]
                found.append((segment, t, point))
        return found


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def _normalize(field, normal, bias):
    """Scale a hyperplane normal: last entry 1 with a bias, else a canonical direction."""
    if bias:
        last = normal[-1]
        if field.is_zero(last, max(abs(v) for v in normal)):
            return None
        return [v / last for v in normal[:-1]]
    scale = max(abs(v) for v in normal)
    leading = next(v for v in normal if not field.is_zero(v, scale))
    direction = [v / leading for v in normal]
    if field.exact:
        import math
        denominators = math.lcm(*(int(v.denominator) for v in direction))
        integers = [int(v * denominators) for v in direction]
        divisor = math.gcd(*integers)
        return [field.number(v // divisor) for v in integers]
    return direction


def _fit_hyperplane(field, points, dimension):
    """The normal of the hyperplane through ``points``: linear if possible, else affine.

    Returns ``(normal, through_origin)`` or ``(None, None)`` when the points do not lie
    on one hyperplane (a wrong match) or do not determine it.
    """
    scale = max(abs(v) for p in points for v in p) or 1
    linear_rows = dimension - 1
    if len(points) > linear_rows:
        basis = nullspace(field, points[:linear_rows], dimension) if linear_rows else \
            [[field.number(1)]]
        if len(basis) == 1 and all(field.is_zero(_dot(basis[0], p), scale)
                                   for p in points[linear_rows:]):
            return basis[0], True
    if len(points) > dimension:
        rows = [list(p) + [field.number(-1)] for p in points[:dimension]]
        basis = nullspace(field, rows, dimension + 1)
        if len(basis) == 1:
            normal, offset = basis[0][:-1], basis[0][-1]
            if all(field.is_zero(_dot(normal, p) - offset, scale) for p in points[dimension:]):
                return normal, False
    return None, None


def find_hyperplanes(probe, base, indices, rng, bias, spread_bits=10):
    """Normals of the kink hyperplanes of the loss in the parameters ``indices``.

    Returns ``(normals, info)``: ``normals`` are normalized (see :func:`_normalize`) and
    without repeats; ``info`` counts kinks, fitted hyperplanes and failures.
    """
    field = probe.field
    dimension = len(indices)
    finder = KinkFinder(probe, base, indices)
    a = [field.random(rng) for _ in range(dimension)]
    b = [field.random(rng) for _ in range(dimension)]
    spread = field.tiny(field.number(1), spread_bits)
    paths = [b] + [[v + spread * field.random(rng) for v in b] for _ in range(dimension)]
    kinks = [finder.half_polygon(a, end) for end in paths]
    info = {"kinks": sum(len(k) for k in kinks), "hyperplanes": 0, "through_origin": 0,
            "unmatched": 0, "unresolved": 0}
    normals = []
    for segment, t, point in kinks[0]:
        points = [point]
        for other in kinks[1:]:
            same = [(abs(u - t), u, p) for s, u, p in other if s == segment]
            if not same:
                continue
            _, u, p = min(same, key=lambda item: item[0])
            # mutual nearest: the matched kink's nearest kink on the base path is t
            nearest = min((abs(u - v), v) for s, v, _ in kinks[0] if s == segment)[1]
            if nearest == t:
                points.append(p)
        normal, through_origin = _fit_hyperplane(field, points, dimension)
        if normal is None:
            info["unmatched"] += 1
            continue
        info["hyperplanes"] += 1
        info["through_origin"] += bool(through_origin)
        normal = _normalize(field, normal, bias)
        if normal is None:
            info["unmatched"] += 1
            continue
        if not any(_equal(field, normal, known) for known in normals):
            normals.append(normal)
    info["unresolved"] = finder.unresolved
    return normals, info


def _equal(field, u, v):
    scale = max(abs(x) for x in list(u) + list(v)) or 1
    return all(field.is_zero(a - b, scale) for a, b in zip(u, v))


def kinks_along_line(loss, base, direction, span=(-1, 1), dps=None):
    """The kinks of ``t -> loss(base + t direction)`` for ``t`` inside ``span``.

    Exact rationals (:class:`~fractions.Fraction`) for an exact loss; with ``dps`` the
    loss is float-valued and the kinks are ``mpf`` at that precision.

    Examples
    ========

    One ReLU neuron and one sample ``x = 2``: along the first-layer weight ``w``
    (``theta = (w, b, v, c) = (w, 1, 1, 0)``) the neuron switches off where
    ``2 w + 1 = 0``:

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.oracle import LossOracle
    >>> from symbolic_inversion.oracle.kinks import kinks_along_line
    >>> oracle = LossOracle(Network([1, 1, 1], ["relu", "identity"]), [["2"]], [["3"]])
    >>> kinks_along_line(oracle, [0, 1, 1, 0], [1, 0, 0, 0])
    [Fraction(-1, 2)]
    """
    field = ExactField() if dps is None else FloatField(dps)
    with mpmath.workdps(dps) if dps is not None else nullcontext():
        base = [field.number(v) for v in base]
        direction = [field.number(v) for v in direction]
        low, high = field.number(span[0]), field.number(span[1])
        start = [b + low * d for b, d in zip(base, direction)]
        end = [b + high * d for b, d in zip(base, direction)]
        probe = LossProbe(loss, len(base), field)
        finder = KinkFinder(probe, start, range(len(base)))
        return [field.to_user(low + t * (high - low)) for t in finder.segment(start, end)]
