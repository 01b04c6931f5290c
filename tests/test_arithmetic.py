"""symbolic_inversion.arithmetic: numbers, precision, solves as results, intervals."""

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from symbolic_inversion.arithmetic import (ARITHMETIC_NAMES, NotDifferentiableError,
                                           available_arithmetics, get_arithmetic)
from symbolic_inversion.errors import InputError, NotSupportedError

try:
    import flint
except ImportError:  # the core install
    flint = None

POINTS = ["float64", "complex128", "mpmath", "mpc", "arb", "acb"]
INTERVALS = ["iv", "arb_ball"]


def arithmetic(name):
    if name in ("arb", "acb", "arb_ball"):
        pytest.importorskip("flint", reason="python-flint not installed")
    return get_arithmetic(name)


def precisions():
    return (mpmath.mp.prec, mpmath.iv.prec, flint.ctx.prec if flint else None)


def as_complex(ar, values):
    return np.array([complex(ar.to_mpmath(v)) for v in np.ravel(values)])


@pytest.mark.parametrize("name", ARITHMETIC_NAMES)
def test_solve_agrees_with_the_exact_solution(name):
    ar = arithmetic(name)
    A = [[4, 1, 0], [1, 3, 1], [0, 1, 2]]
    b = [1, 2, 3]
    exact = [Fraction(2, 9), Fraction(1, 9), Fraction(13, 9)]
    with ar.workdps(40):
        result = ar.solve(ar.asarray(A), ar.asarray(b))
        assert result.ok and result.reason == ""
        tolerance = 1e-14 if ar.dtype != object else 1e-38
        for value, truth in zip(result.x, exact):
            assert abs(ar.to_mpmath(value) - mpmath.mpf(truth.numerator) / truth.denominator) \
                < tolerance
            if ar.is_interval:
                assert ar.contains(np.array([value], dtype=object), [truth])


@pytest.mark.parametrize("name", ARITHMETIC_NAMES)
@pytest.mark.parametrize("matrix", [[[1, 2], [2, 4]], [[0, 0], [0, 0]],
                                    [[1, 2], [1, 2 + 1e-40]]], ids=["rank1", "zero", "near"])
def test_a_singular_matrix_is_a_result_not_an_exception(name, matrix):
    ar = arithmetic(name)
    if name == "float64" and matrix[1][1] == 2 + 1e-40:
        matrix = [[1, 2], [1, 2]]  # 1e-40 is below float64's resolution anyway
    with ar.workdps(30):
        result = ar.solve(ar.asarray(matrix), ar.asarray([1, 1]))
    assert not result.ok and result.reason
    assert not result


@pytest.mark.parametrize("name", POINTS + ["iv"])
def test_non_finite_entries_are_refused_as_a_result(name):
    ar = arithmetic(name)
    with ar.workdps(30):
        A = ar.asarray([[1.0, 0.0], [0.0, 1.0]])
        A[0, 1] = ar.number(float("nan")) if name != "iv" else mpmath.iv.mpf([-mpmath.inf,
                                                                               mpmath.inf])
        result = ar.solve(A, ar.asarray([1, 1]))
    assert not result.ok and "finite" in result.reason


@pytest.mark.parametrize("name", POINTS)
@pytest.mark.parametrize("method", ["qr", "normal"])
def test_lstsq_on_a_block_sparse_system(name, method):
    # A zero row and a zero in the first column's diagonal position (SGD: a sample
    # absent from a step); mpmath.qr_solve divides by zero here.
    ar = arithmetic(name)
    A = [[0, 1], [0, 0], [2, 0], [0, 0]]
    b = [2, 5, 2, 7]
    with ar.workdps(40):
        result = ar.lstsq(ar.asarray(A), ar.asarray(b), method=method)
        assert result.ok
        values = as_complex(ar, result.x)
    assert np.allclose(values, [1, 2], rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", POINTS)
def test_lstsq_refuses_rank_deficiency_and_underdetermined_as_results(name):
    ar = arithmetic(name)
    with ar.workdps(30):
        deficient = ar.lstsq(ar.asarray([[1, 2], [2, 4], [3, 6]]), ar.asarray([1, 2, 3]))
        wide = ar.lstsq(ar.asarray([[1, 2, 3]]), ar.asarray([1]))
    assert not deficient.ok and not wide.ok
    assert "underdetermined" in wide.reason


def test_mpmath_qr_is_more_accurate_than_the_normal_equations():
    ar = get_arithmetic("mpmath")
    with ar.workdps(30):
        eps = mpmath.mpf(10) ** -18
        A = ar.asarray([[1, 1], [eps, 0], [0, eps]])
        b = ar.asarray([2, eps, eps])          # solution (1, 1), cond(A) ~ 1e12
        qr = ar.lstsq(A, b, "qr").x
        assert max(abs(v - 1) for v in qr) < mpmath.mpf(10) ** -10
        normal = ar.lstsq(A, b, "normal")   # cond(A)^2 ~ 1e36 > 30 digits
        assert not normal.ok or max(abs(v - 1) for v in normal.x) > mpmath.mpf(10) ** -10


@pytest.mark.parametrize("name", ARITHMETIC_NAMES)
def test_workdps_restores_every_precision_also_after_an_exception(name):
    ar = arithmetic(name)
    before = precisions()
    with ar.workdps(77):
        if ar.dtype == object:
            assert ar.precision() >= 77 * 3
    assert precisions() == before
    with pytest.raises(RuntimeError):
        with ar.workdps(90):
            raise RuntimeError
    assert precisions() == before


@pytest.mark.parametrize("name", ["mpmath", "mpc", "arb", "acb"])
def test_conversions_are_exact_or_correctly_rounded(name):
    ar = arithmetic(name)
    with ar.workdps(50):
        third = ar.to_mpmath(ar.number(Fraction(1, 3)))
        assert abs(third - mpmath.mpf(1) / 3) <= mpmath.eps
        assert ar.to_mpmath(ar.number("0.1")) == mpmath.mpf("0.1")
        assert ar.to_mpmath(ar.number(0.1)) == mpmath.mpf(0.1)    # the float, exactly
        from decimal import Decimal
        assert ar.to_mpmath(ar.number(Decimal("-2.5e-3"))) == mpmath.mpf("-0.0025")
        array = ar.asarray([["1", Fraction(1, 2)], [3, 0.25]])
        assert array.shape == (2, 2) and array.dtype == object
        assert [ar.to_mpmath(v) for v in array.ravel()] == [1, 0.5, 3, 0.25]


def test_float_arithmetics_convert_multiprecision_numbers():
    f64, c128 = get_arithmetic("float64"), get_arithmetic("complex128")
    with mpmath.workdps(40):
        values = [mpmath.mpf(1) / 3, Fraction(1, 3), "0.1"]
        assert np.allclose(f64.asarray(values), [1 / 3, 1 / 3, 0.1], rtol=0, atol=1e-17)
        assert f64.asarray(values).dtype == float
        assert c128.asarray([mpmath.mpc(1, 2)])[0] == 1 + 2j
    with pytest.raises(InputError):
        f64.number(mpmath.mpc(1, 2))


@pytest.mark.parametrize("name", INTERVALS)
def test_intervals_enclose_exact_values_and_functions(name):
    ar = arithmetic(name)
    with ar.workdps(30):
        third = ar.number(Fraction(1, 3))
        with mpmath.workdps(80):
            exact = mpmath.mpf(1) / 3
            assert ar.lower(third) < exact < ar.upper(third)
        tenth = ar.number("0.1")
        assert ar.lower(tenth) < mpmath.mpf(Fraction(1, 10).numerator) / 10 or \
            ar.lower(tenth) <= mpmath.mpf("0.1")
        box = ar.ball("0.3", "1e-10")
        assert ar.lower(box) <= mpmath.mpf("0.3") - mpmath.mpf("1e-10")
        assert ar.upper(box) >= mpmath.mpf("0.3") + mpmath.mpf("1e-10")
        assert ar.radius(box) >= mpmath.mpf("1e-10") * (1 - mpmath.mpf("1e-20"))
        ns = ar.functions()
        values = ns["tanh"](np.array([box], dtype=object))
        with mpmath.workdps(80):
            for point in (mpmath.mpf("0.3") - mpmath.mpf("1e-10"), mpmath.mpf("0.3"),
                          mpmath.mpf("0.3") + mpmath.mpf("1e-10")):
                assert ar.lower(values[0]) <= mpmath.tanh(point) <= ar.upper(values[0])
        inner = np.array([ar.ball("0.3", "1e-12")], dtype=object)
        outer = np.array([box], dtype=object)
        assert ar.strictly_inside(inner, outer)
        assert not ar.strictly_inside(outer, inner)
        assert ar.contains(outer, ["0.3"])
        # arb's union rounds its radius outward (low precision): bounds, not equalities
        assert 2 <= ar.magnitude(ar.interval(-2, 1)) < 2 + 1e-8
        assert abs(ar.mid(ar.interval(1, 3)) - 2) < 1e-8


@pytest.mark.parametrize("name", INTERVALS)
def test_relu_kink_inside_an_interval_is_not_differentiable(name):
    ar = arithmetic(name)
    ns = ar.functions()
    with ar.workdps(20):
        positive = np.array([ar.interval("0.1", "0.2")], dtype=object)
        straddling = np.array([ar.interval("-0.1", "0.2")], dtype=object)
        assert ar.mid(ns["Heaviside"](positive, 0)[0]) == 1
        top = ar.upper(ns["Max"](0, straddling)[0])
        assert mpmath.mpf("0.2") <= top < mpmath.mpf("0.2") + 1e-8
        assert -1e-8 < ar.lower(ns["Max"](0, straddling)[0]) <= 0
        with pytest.raises(NotDifferentiableError):
            ns["Heaviside"](straddling, 0)


@pytest.mark.parametrize("name", ["float64", "mpmath", "arb"])
def test_relu_functions_in_real_point_arithmetics(name):
    ar = arithmetic(name)
    ns = ar.functions()
    with ar.workdps(20):
        z = ar.asarray([-1, 0, 2])
        step = [float(ar.to_mpmath(v)) for v in ns["Heaviside"](z, 0)]
        assert step == [0, 0, 1]   # relu'(0) = 0 (PyTorch's convention)
        assert [float(ar.to_mpmath(v)) for v in ns["Max"](0, z)] == [0, 0, 2]


@pytest.mark.parametrize("name", ["complex128", "mpc", "acb"])
def test_complex_arithmetics_refuse_relu(name):
    ar = arithmetic(name)
    with pytest.raises(NotSupportedError, match="not analytic"):
        ar.functions()["Heaviside"](ar.asarray([1]), 0)


def test_siblings_and_lookup():
    assert get_arithmetic("float64").complexify().name == "complex128"
    assert get_arithmetic("mpmath").complexify().name == "mpc"
    assert get_arithmetic("mpc").realify().name == "mpmath"
    assert get_arithmetic("mpc").complexify() is get_arithmetic("mpc")
    assert get_arithmetic("auto").name == ("arb" if flint else "mpmath")
    assert get_arithmetic(None) is get_arithmetic("auto")
    assert get_arithmetic(get_arithmetic("iv")).name == "iv"
    with pytest.raises(NotSupportedError):
        get_arithmetic("iv").complexify()
    with pytest.raises(InputError, match="arithmetic"):
        get_arithmetic("quad")
    assert set(available_arithmetics()) <= set(ARITHMETIC_NAMES)
    assert "mpmath" in available_arithmetics() and "iv" in available_arithmetics()
    if flint is None:
        assert "arb" not in available_arithmetics()
        with pytest.raises(NotSupportedError, match="python-flint"):
            get_arithmetic("arb")
    else:
        assert get_arithmetic("flint").name == "arb"
        assert get_arithmetic("arb").complexify().name == "acb"


@pytest.mark.parametrize("name", POINTS)
def test_norm_is_a_float_and_nan_when_not_finite(name):
    ar = arithmetic(name)
    with ar.workdps(30):
        assert ar.norm(ar.asarray([1, -3, 2])) == 3.0
        assert ar.norm(ar.asarray([])) == 0.0
        assert np.isnan(ar.norm(ar.asarray([1, float("nan")])))


@pytest.mark.parametrize("name", ["mpmath", "arb"])
def test_polynomial_roots(name):
    ar = arithmetic(name)
    with ar.workdps(40):
        roots = ar.roots([ar.number(-6), ar.number(11), ar.number(-6), ar.number(1)])
        found = sorted(float(mpmath.re(get_arithmetic("acb" if name == "arb" else "mpc")
                                       .to_mpmath(r))) for r in roots)
    assert np.allclose(found, [1, 2, 3], atol=1e-30)


@pytest.mark.parametrize("name", POINTS + INTERVALS)
def test_matmul_matches_numpy_on_every_shape(name):
    ar = arithmetic(name)
    rng = np.random.default_rng(3)
    A, B, v = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=4)
    with ar.workdps(30):
        for left, right in ((A, B), (A, v), (A[None], B[None])):
            product = ar.matmul(ar.asarray(left), ar.asarray(right))
            expected = left @ right
            assert product.shape == expected.shape
            values = np.array([complex(ar.to_mpmath(x)) for x in np.ravel(product)])
            assert np.allclose(values, expected.ravel(), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", ["mpmath", "mpc"])
def test_lu_solve_agrees_with_mpmath_and_handles_several_right_hand_sides(name):
    ar = get_arithmetic(name)
    rng = np.random.default_rng(7)
    with ar.workdps(60):
        A = ar.asarray(rng.normal(size=(12, 12)))
        if ar.is_complex:
            A = A + ar.asarray(rng.normal(size=(12, 12))) * mpmath.mpc(0, 1)
        B = ar.asarray(rng.normal(size=(12, 3)))
        result = ar.solve(A, B)
        assert result.ok and result.x.shape == (12, 3)
        for j in range(3):
            reference = mpmath.lu_solve(mpmath.matrix(A.tolist()),
                                        mpmath.matrix(list(B[:, j])))
            assert max(abs(result.x[i, j] - reference[i]) for i in range(12)) \
                < mpmath.mpf(10) ** -55
        # a pivot at rounding level is singular, as in mpmath's lu_solve
        A[:, 5] = A[:, 4] * 3
        assert not ar.solve(A, B[:, 0]).ok


@pytest.mark.parametrize("name", POINTS)
def test_matmul_with_a_constant_matrix_matches_numpy(name):
    # the moment homotopy's products: complex powers times a prepared (real or complex)
    # coefficient matrix; reference: numpy's complex128 product of the same numbers
    ar = arithmetic(name)
    rng = np.random.default_rng(11)
    left = rng.normal(size=(3, 4)) + (1j * rng.normal(size=(3, 4)) if ar.is_complex else 0)
    for right in (rng.normal(size=(4, 5)), rng.normal(size=(4, 5)) + 1j * rng.normal(size=(4, 5))):
        if np.iscomplexobj(right) and not ar.is_complex:
            continue
        with ar.workdps(30):
            prepared = ar.constant_matrix(ar.asarray(right))
            product = ar.matmul(ar.asarray(left), prepared)
            again = ar.matmul(ar.asarray(left), prepared)   # prepared once, used twice
        assert product.shape == (3, 5)
        for values in (product, again):
            assert np.allclose(as_complex(ar, values), (left @ right).ravel(),
                               rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", ["arb", "acb"])
def test_flint_solve_of_own_numbers_agrees_with_mpmath(name):
    # the direct path for arrays of the arithmetic's own numbers; reference: mpmath's
    # lu_solve at the same precision, and mixed inputs (mpmath numbers) the generic path
    ar = arithmetic(name)
    rng = np.random.default_rng(5)
    with ar.workdps(50):
        values = rng.normal(size=(6, 6)) + (1j * rng.normal(size=(6, 6)) if ar.is_complex
                                             else 0)
        A, b = ar.asarray(values), ar.asarray(rng.normal(size=6))
        reference = mpmath.lu_solve(mpmath.matrix(ar.to_mpmath_array(A).tolist()),
                                    mpmath.matrix([ar.to_mpmath(v) for v in b]))
        for right in (b, ar.to_mpmath_array(b)):
            result = ar.solve(A, right)
            assert result.ok and result.x.shape == (6,)
            assert max(abs(ar.to_mpmath(x) - r) for x, r in zip(result.x, reference)) \
                < mpmath.mpf(10) ** -45
        several = ar.solve(A, ar.asarray(np.stack([rng.normal(size=6)] * 2, axis=1)))
        assert several.ok and several.x.shape == (6, 2)
        assert all(several.x[i, 0] == several.x[i, 1] for i in range(6))


# -- exact rationals ------------------------------------------------------------------

def rational_arithmetics(monkeypatch):
    """The rational arithmetic as installed, and with plain Fractions (no python-flint,
    no gmpy2): both must give the same exact results."""
    import symbolic_inversion.arithmetic as module
    installed = get_arithmetic("rational")
    with monkeypatch.context() as patch:
        patch.setattr(module, "flint", None)
        patch.setattr(module, "gmpy2", None)
        plain = module.Rational()
    assert plain.kind is Fraction
    return [installed, plain]


def test_rational_numbers_convert_exactly(monkeypatch):
    import sympy
    from decimal import Decimal
    for q in rational_arithmetics(monkeypatch):
        values = [1, "0.1", "-3/7", Decimal("2.5e-3"), 0.1, Fraction(5, 6),
                  sympy.Rational(-2, 9), mpmath.mpf("0.375"), np.int64(-4)]
        assert [q.fraction(v) for v in q.asarray(values)] == [
            Fraction(1), Fraction(1, 10), Fraction(-3, 7), Fraction(1, 400),
            Fraction(0.1), Fraction(5, 6), Fraction(-2, 9), Fraction(3, 8), Fraction(-4)]
        assert all(type(v) is q.kind for v in q.asarray(values))
        for bad in (float("nan"), float("inf"), "1/0x", 1j, mpmath.mpf("inf"), "nan"):
            with pytest.raises(InputError):
                q.number(bad)


def test_rational_products_and_solves_are_exact(monkeypatch):
    rng = np.random.default_rng(3)
    A = [[Fraction(int(v), 7) for v in row] for row in rng.integers(-9, 9, (5, 4))]
    B = [[Fraction(int(v), 3) for v in row] for row in rng.integers(-9, 9, (4, 3))]
    exact = np.array(A, dtype=object) @ np.array(B, dtype=object)
    stack = np.stack([np.array(A, dtype=object)] * 2)
    for q in rational_arithmetics(monkeypatch):
        assert [q.fraction(v) for v in q.matmul(q.asarray(A), q.asarray(B)).ravel()] == \
            list(exact.ravel())
        batched = q.matmul(q.asarray(stack), q.asarray(np.stack([np.array(B)] * 2)))
        assert batched.shape == (2, 5, 3)
        assert [q.fraction(v) for v in batched.ravel()] == list(exact.ravel()) * 2
        solved = q.solve(q.asarray([[4, 1, 0], [1, 3, 1], [0, 1, 2]]), q.asarray([1, 2, 3]))
        assert solved.ok and [q.fraction(v) for v in solved.x] == [
            Fraction(2, 9), Fraction(1, 9), Fraction(13, 9)]
        singular = q.solve(q.asarray([[1, 2], [2, 4]]), q.asarray([1, 1]))
        assert not singular.ok and singular.reason == "singular matrix"
        fitted = q.lstsq(q.asarray([[1, 0], [0, 1], [1, 1]]), q.asarray([1, 1, 3]))
        assert fitted.ok and [q.fraction(v) for v in fitted.x] == [Fraction(4, 3)] * 2


def test_rational_has_no_precision_and_only_piecewise_linear_functions(monkeypatch):
    for q in rational_arithmetics(monkeypatch):
        before = precisions()
        with q.workdps(7):
            assert precisions() == before       # a no-op: nothing to round
        functions = q.functions()
        assert {"Max", "Min", "Heaviside", "Rational", "ipow"} <= set(functions)
        assert not {"tanh", "exp", "log", "erf", "sqrt"} & set(functions)
        with pytest.raises(NotSupportedError, match="pi is irrational"):
            q.pi()
        z = q.asarray(["-1/2", "0", "3"])
        step = functions["Heaviside"](z, q.rational(0))
        assert [q.fraction(v) for v in step] == [0, 0, 1]          # relu'(0) = 0
        assert [q.fraction(v) for v in functions["Max"](q.asarray([0]), z)] == \
            [0, 0, 3]
        assert q.is_exact and "rational" not in ARITHMETIC_NAMES
