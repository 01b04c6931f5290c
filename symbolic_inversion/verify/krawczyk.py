r"""The Krawczyk test: a proof that a square system has exactly one zero in a box.

For a square system ``F(z) = 0`` (``N`` equations in the ``N`` unknowns), a centre
``c``, a matrix ``C`` close to ``J(c)^{-1}`` and a box ``X = c + D``,

.. math:: K(X) = -C\,F(c) + \big(I - C\,J(X)\big)\,D

is computed in interval arithmetic, with ``J(X)`` an enclosure of every Jacobian over
the box.  If ``K(X)`` lies in the interior of ``D``, then ``F`` has exactly one zero in
``X`` and it lies in ``c + K(X)`` (Krawczyk 1969, Moore 1977, Rump 1983).  Neither
``c`` nor ``C`` needs to be exact: they are only where the argument starts, so the
certificate does not depend on how the data were found.

With more equations than unknowns, :func:`select_rows` picks the best-conditioned
square subsystem (pivoted Gram-Schmidt on the Jacobian's rows).
"""

import mpmath

from .intervals import NotDifferentiableError

__all__ = ["krawczyk", "select_rows", "UNIQUENESS_RESOLUTION"]


def select_rows(J, count):
    """``count`` rows of ``J`` that are best conditioned together (pivoted Gram-Schmidt
    on the normalized rows).  ``J`` is an mpmath matrix or a 2-D array of mpf.
    Returns ``(rows, smallest pivot)``.

    >>> import mpmath
    >>> rows, pivot = select_rows(mpmath.matrix([[1, 0], [1, 1e-9], [0, 1]]), 2)
    >>> rows, pivot == 1
    ([0, 2], True)
    """
    rows = []
    vectors = []
    matrix = J.tolist()
    for row in matrix:
        norm = mpmath.sqrt(mpmath.fsum(v * v for v in row))
        vectors.append([v / norm for v in row] if norm else list(row))
    remaining = list(range(len(matrix)))
    smallest = mpmath.inf
    for _ in range(count):
        norms = {r: mpmath.sqrt(mpmath.fsum(v * v for v in vectors[r])) for r in remaining}
        best = max(remaining, key=lambda r: norms[r])
        pivot = norms[best]
        smallest = min(smallest, pivot)
        if pivot == 0:
            break
        q = [v / pivot for v in vectors[best]]
        rows.append(best)
        remaining.remove(best)
        for r in remaining:
            dot = mpmath.fsum(a * b for a, b in zip(vectors[r], q))
            vectors[r] = [a - dot * b for a, b in zip(vectors[r], q)]
    return sorted(rows), smallest


def _matrix_vector(b, A, v):
    return [_dot(b, row, v) for row in A]


def _dot(b, row, v):
    total = b.number(mpmath.mpf(0))
    for a, x in zip(row, v):
        total = total + a * x
    return total


# The widest box of uniqueness is found to within this factor of ten (log10 units).
UNIQUENESS_RESOLUTION = mpmath.mpf("0.05")


def krawczyk(intervals, rows, rest, center, C, given, prec):
    """The Krawczyk test with epsilon inflation, then the widest box of uniqueness."""
    b = intervals.backend
    N = len(center)
    center_iv = [b.number(c) for c in center]
    C_iv = [[b.number(C[i, j]) for j in range(N)] for i in range(N)]
    F_center = intervals.evaluate(rows, center_iv)
    correction = [-v for v in _matrix_vector(b, C_iv, F_center)]
    tiny = mpmath.ldexp(1, -prec + 8)

    def contraction(radii):
        box = [c + b.interval(-r, r) for c, r in zip(center_iv, radii)]
        _, JX = intervals.evaluate(rows, box, jacobian=True)
        M = []
        for i in range(N):
            row = []
            for j in range(N):
                value = -_dot(b, C_iv[i], [JX[k][j] for k in range(N)])
                row.append(value + 1 if i == j else value)
            M.append(row)
        return M

    K = correction
    outcome = {"proved": False, "why": "the box did not contract", "inflations": 0}
    for inflation in range(12):
        radii = [2 * b.magnitude(k) + tiny * (1 + abs(c)) for k, c in zip(K, center)]
        deltas = [b.interval(-r, r) for r in radii]
        M = contraction(radii)
        K = [k + _dot(b, row, deltas) for k, row in zip(correction, M)]
        outcome["inflations"] = inflation + 1
        if all(b.strictly_inside(k, d) for k, d in zip(K, deltas)):
            break
    else:
        return outcome

    # Proved: exactly one zero in center + deltas, and it lies in center + K.
    box_radius = max(radii)
    enclosure = [c + k for c, k in zip(center_iv, K)]
    outcome.update(proved=True, box_radius=box_radius,
                   enclosure_radius=max(b.magnitude(k) for k in K))
    given_iv = [b.number(g) for g in given]
    outcome["radius"] = max(b.magnitude(g - z) for g, z in zip(given_iv, enclosure))
    outcome["distance"] = max(b.magnitude(g - c) for g, c in zip(given_iv, center_iv))

    # Uniqueness in wider boxes: if every matrix in J(Y) is regular (here: the norm of
    # I - C J(Y) is below one), F is injective on Y, so the zero found is the only one.
    def regular(radius):
        try:
            M = contraction([radius] * N)
        except (NotDifferentiableError, ZeroDivisionError, ValueError):
            return False
        norm = max(b.upper_sum(b.magnitude(v) for v in row) for row in M)
        return norm < 1

    # Bisect on log10 of the radius: from the proved box (exponent ``low``) to 1.
    low, high = mpmath.log10(box_radius), mpmath.mpf(0)
    unique = box_radius
    if regular(mpmath.mpf(1)):
        unique = mpmath.mpf(1)
    elif regular(box_radius):
        while high - low > UNIQUENESS_RESOLUTION:
            middle = (low + high) / 2
            if regular(mpmath.mpf(10) ** middle):
                low = middle
            else:
                high = middle
        unique = mpmath.mpf(10) ** low
    outcome["uniqueness_radius"] = max(unique, box_radius)

    if rest:
        values = intervals.evaluate(rest, enclosure)
        outcome["rest_residual"] = max(b.magnitude(v) for v in values)
    return outcome
