"""The Krawczyk test (symbolic_inversion.verify.krawczyk) on problems solved by hand.

References: sqrt(2) and the roots of small polynomial systems, known in closed form.
"""

from fractions import Fraction

import mpmath
from mpmath import libmp

from symbolic_inversion.verify.intervals import interval_arithmetic
from symbolic_inversion.verify.krawczyk import krawczyk, select_rows


class Polynomials:
    """A square polynomial system over iv intervals: what krawczyk() asks of a system."""

    def __init__(self, functions, jacobian):
        self.backend = interval_arithmetic("iv")
        self.functions, self.jacobian_rows = functions, jacobian

    def evaluate(self, rows, point, jacobian=False):
        values = [self.functions[r](point) for r in rows]
        if not jacobian:
            return values
        return values, [self.jacobian_rows[r](point) for r in rows]


def run(system, center, given, dps=40):
    prec = libmp.dps_to_prec(dps)
    with system.backend.workdps(dps):
        J = mpmath.matrix([[mpmath.mpf(v.mid) for v in row(
            [system.backend.number(c) for c in center])] for row in system.jacobian_rows])
        return krawczyk(system, list(range(len(center))), [], center, mpmath.inverse(J),
                        [Fraction(g) for g in given], prec)


def test_sqrt_2_is_enclosed_and_unique():
    system = Polynomials([lambda z: z[0] ** 2 - 2], [lambda z: [2 * z[0]]])
    with mpmath.workdps(40):
        outcome = run(system, [mpmath.mpf("1.41421356")], ["1.4142"])
        assert outcome["proved"]
        # the given data are 1.4142: the exact root is 1.356e-5 away
        assert abs(outcome["radius"] - (mpmath.sqrt(2) - mpmath.mpf("1.4142"))) < 1e-7
        assert outcome["enclosure_radius"] < 1e-7
        # the other root, -sqrt(2), is 2.8 away: uniqueness cannot extend that far
        assert outcome["box_radius"] <= outcome["uniqueness_radius"] < 2 * mpmath.sqrt(2)


def test_no_real_root_is_not_proved():
    system = Polynomials([lambda z: z[0] ** 2 + 1], [lambda z: [2 * z[0]]])
    with mpmath.workdps(30):
        outcome = run(system, [mpmath.mpf("0.5")], ["0.5"], dps=30)
    assert not outcome["proved"]


def test_two_unknowns():
    # x + y = 3, x y = 2: the root (1, 2) next to (1.001, 1.999)
    system = Polynomials([lambda z: z[0] + z[1] - 3, lambda z: z[0] * z[1] - 2],
                         [lambda z: [z[0] * 0 + 1, z[1] * 0 + 1], lambda z: [z[1], z[0]]])
    with mpmath.workdps(40):
        outcome = run(system, [mpmath.mpf("1.001"), mpmath.mpf("1.999")],
                      ["1.001", "1.999"])
        # the exact root is 0.001 away from the centre and the data: the radius is an
        # upper bound of that distance, and the enclosure around the centre reaches it
        assert outcome["proved"] and mpmath.mpf("0.001") <= outcome["radius"] < 0.0011
        assert mpmath.mpf("0.001") <= outcome["enclosure_radius"] < 0.0011


def test_select_rows_picks_a_well_conditioned_square_part():
    with mpmath.workdps(30):
        J = mpmath.matrix([[1, 0], [1, 1e-20], [0, 1]])
        rows, pivot = select_rows(J, 2)
        assert rows == [0, 2] and abs(pivot - 1) < 1e-20
        rows, pivot = select_rows(mpmath.matrix([[1, 2], [2, 4]]), 2)
        assert pivot < 1e-25  # rank one: the second pivot vanishes
