"""Interval arithmetic (symbolic_inversion.verify.intervals): honest enclosures, relu
kinks refused, precision restored.

References: exact rationals (Fraction) for the enclosures of decimal numbers.
"""

from fractions import Fraction

import mpmath
import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion import InputError
from symbolic_inversion.verify import _mpf_fraction, certify
from symbolic_inversion.verify.intervals import interval_arithmetic

from verify_problems import BACKENDS, HAVE_FLINT, X4, Y4, pairs


@pytest.mark.parametrize("backend", BACKENDS)
def test_relu_kink_inside_the_box_is_not_certified(backend):
    network = Network([1, 1], "relu")
    smooth = simulate(network, [0.6], [0.2], lr="0.1", epochs=2, init=[0.5, 0.5], dps=40)
    assert certify(smooth, [([0.6], [0.2])], backend=backend).certified
    # x = -1 puts w x + b = 0.5 * (-1) + 0.5 exactly on the kink at the first step; the
    # steps after it move (w, b) so that the sample is seen, and the system is
    # identifiable but not differentiable at the data.
    data = [([0.6], [1.5]), ([-1], [0.3])]
    kink = simulate(network, [0.6, -1], [1.5, 0.3], lr="0.1", epochs=4, init=[0.5, 0.5],
                    dps=40)
    certificate = certify(kink, data, backend=backend, refine=False)
    assert not certificate.certified and not certificate.proved
    assert "not differentiable" in certificate.reason
    # A kink exactly at the data with relu'(0) = 0 and nothing else: the sample is
    # invisible to the trace, which is reported as such.
    dead = simulate(network, [-1], [0.2], lr="0.1", epochs=2, init=[0.5, 0.5], dps=40)
    assert "not locally identifiable" in certify(dead, [([-1], [0.2])]).reason


@pytest.mark.parametrize("backend", BACKENDS)
def test_decimal_numbers_become_their_smallest_enclosing_interval(backend):
    arithmetic = interval_arithmetic(backend)
    saved = mpmath.iv.prec
    with arithmetic.workdps(15):  # 53 bits
        enclosure = arithmetic.number(Fraction("0.1"))
        low, high = _mpf_fraction(arithmetic.lower(enclosure)), \
            _mpf_fraction(arithmetic.upper(enclosure))
    assert mpmath.iv.prec == saved
    assert low < Fraction(1, 10) < high
    # 0.1 lies in [1/16, 1/8): 53-bit numbers there are 2**-56 apart.  mpmath's iv gives
    # the smallest enclosure, one such gap (the neighbouring doubles around 0.1); an arb
    # ball (midpoint and radius, endpoints rounded outward) spans at most two gaps.
    gap = Fraction(1, 2 ** 56)
    if backend == "iv":
        assert high - low == gap and Fraction(0.1) in (low, high)
    else:
        assert high - low <= 2 * gap


def test_unknown_backend_is_named():
    with pytest.raises(InputError, match="^backend"):
        interval_arithmetic("float")


def test_precision_is_restored(trace_4_square):
    def precisions():
        if not HAVE_FLINT:
            return mpmath.mp.prec, mpmath.iv.prec
        import flint
        return mpmath.mp.prec, mpmath.iv.prec, flint.ctx.prec
    before = precisions()
    for backend in ["iv", "arb"] if HAVE_FLINT else ["iv"]:
        certify(trace_4_square, pairs(X4, Y4), backend=backend)
    assert precisions() == before


@pytest.mark.skipif(HAVE_FLINT, reason="checks the core install, without python-flint")
def test_arb_without_python_flint_is_a_clear_input_error(trace_4_square):
    with pytest.raises(InputError, match="python-flint"):
        certify(trace_4_square, pairs(X4, Y4), backend="arb")
