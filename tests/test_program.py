"""symbolic_inversion.program: the layer-wise program in every arithmetic, for every
activation and loss, against independent references (SymPy's own derivatives of the
per-sample terms, evaluated one sample at a time: tests/reference.py; finite differences
at high precision)."""

import mpmath
import numpy as np
import pytest
import sympy as sp

from symbolic_inversion import InversionSystem, Network, simulate
from symbolic_inversion.activations import activation_names
from symbolic_inversion.arithmetic import NotDifferentiableError, get_arithmetic
from symbolic_inversion.errors import InputError, NotSupportedError
from symbolic_inversion.program import LayerwiseProgram, layerwise_program

from reference import reference_outputs, reference_sums

try:
    import flint
except ImportError:  # the core install
    flint = None

NETWORKS = [Network([2, 3, 1], ["tanh", "identity"]),
            Network([3, 4, 2], ["sigmoid", "relu"]),
            Network([2, 3, 2, 2], "tanh", bias=False),
            Network([1, 2, 1], ["sigmoid", "tanh"])]

PROGRAM_NETWORKS = [Network([1, 1], "tanh"),
                    Network([2, 3, 1], ["tanh", "identity"]),
                    Network([3, 4, 2], ["sigmoid", "identity"]),
                    Network([2, 3, 2], "tanh", bias=False),
                    Network([2, 3, 1], ["relu", "identity"])]

REAL = ["float64", "mpmath", "arb"]
COMPLEX = ["complex128", "mpc", "acb"]
INTERVALS = ["iv", "arb_ball"]


def arithmetic(name):
    if name in ("arb", "acb", "arb_ball"):
        pytest.importorskip("flint", reason="python-flint not installed")
    return get_arithmetic(name)


def is_relu(network):
    return "relu" in network.activations


def problem(network, steps=3, samples=4, seed=0):
    """Decimal-string parameters and data (exact in every arithmetic's conversion)."""
    rng = np.random.default_rng(seed)

    def strings(shape, low, high):
        return np.vectorize(lambda v: f"{v:.6f}")(rng.uniform(low, high, shape)).astype(object)
    return (strings((steps, network.num_parameters), -0.8, 0.8),
            strings((samples, network.input_width), -1, 1),
            strings((samples, network.output_width), -1, 1))


def reference(network, thetas, X, Y, batches=None, dps=60, loss="mse"):
    return reference_sums(network, thetas, X, Y, batches, dps, loss)


def to_mp(ar, array):
    return np.asarray(ar.to_mpmath_array(array) if ar.dtype == object else
                      np.vectorize(lambda v: mpmath.mpmathify(complex(v)), otypes=[object])(
                          array), dtype=object)


def max_error(ar, array, ref):
    values = to_mp(ar, array)
    with mpmath.workdps(60):
        return max((abs(a - b) for a, b in zip(values.ravel(), ref.ravel())), default=0)


@pytest.mark.parametrize("network", PROGRAM_NETWORKS, ids=str)
@pytest.mark.parametrize("name", REAL + COMPLEX)
def test_program_matches_the_scalar_programs_in_point_arithmetics(network, name):
    ar = arithmetic(name)
    thetas, X, Y = problem(network)
    ref_sums, ref_J = reference(network, thetas, X, Y)
    program = LayerwiseProgram(network)
    if is_relu(network) and ar.is_complex:
        with pytest.raises(NotSupportedError, match="not analytic"):
            program.evaluate(ar.asarray(thetas), ar.asarray(X), ar.asarray(Y), arithmetic=ar)
        return
    before = mpmath.mp.prec
    with ar.workdps(40):
        sums, J = program.evaluate(ar.asarray(thetas), ar.asarray(X), ar.asarray(Y),
                                   arithmetic=ar)
    assert mpmath.mp.prec == before
    assert sums.shape == (3, network.num_parameters)
    assert J.shape == (3 * network.num_parameters, 4 * (network.input_width
                                                        + network.output_width))
    tolerance = 1e-13 if ar.dtype != object else mpmath.mpf(10) ** -36
    assert max_error(ar, sums, ref_sums) < tolerance
    assert max_error(ar, J, ref_J) < tolerance


@pytest.mark.parametrize("network", PROGRAM_NETWORKS, ids=str)
@pytest.mark.parametrize("name", INTERVALS)
def test_intervals_contain_the_high_precision_values(network, name):
    ar = arithmetic(name)
    thetas, X, Y = problem(network)
    ref_sums, ref_J = reference(network, thetas, X, Y, dps=80)
    with ar.workdps(30):
        sums, J = layerwise_program(network).evaluate(
            ar.asarray(thetas), ar.asarray(X), ar.asarray(Y), arithmetic=ar)
        for enclosure, exact in ((sums, ref_sums), (J, ref_J)):
            assert ar.contains(enclosure, exact)
            widths = [ar.radius(v) for v in enclosure.ravel()]
            assert max(widths) < mpmath.mpf(10) ** -25


def test_interval_relu_with_a_kink_inside_is_refused():
    ar = get_arithmetic("iv")
    network = Network([1, 2, 1], ["relu", "identity"])
    program = LayerwiseProgram(network)
    thetas = [["1", "-1", "0", "0", "1", "1", "0"]]     # z = +-x: kink at x = 0
    with ar.workdps(20):
        X = np.array([[ar.interval("-0.1", "0.1")]], dtype=object)
        with pytest.raises(NotDifferentiableError):
            program.evaluate(ar.asarray(thetas), X, ar.asarray([["0.5"]]), arithmetic=ar)
        X = np.array([[ar.interval("0.1", "0.2")]], dtype=object)
        sums, J = program.evaluate(ar.asarray(thetas), X, ar.asarray([["0.5"]]),
                                   arithmetic=ar)
        assert ar.isfinite(sums) and ar.isfinite(J)


@pytest.mark.parametrize("network", PROGRAM_NETWORKS[:4], ids=str)
def test_complex_jacobian_is_the_complex_derivative(network):
    # Analyticity: at a complex point the Jacobian is the complex finite difference.
    ar = get_arithmetic("mpc")
    thetas, X, Y = problem(network, steps=2, samples=2)
    program = LayerwiseProgram(network)
    with ar.workdps(50):
        Xc = ar.asarray(X) + mpmath.mpc(0, "0.1")
        Yc = ar.asarray(Y) * mpmath.mpc(1, "0.2")
        th = ar.realify().asarray(thetas)
        _, J = program.evaluate(th, Xc, Yc, arithmetic=ar)
        h = mpmath.mpf(10) ** -20
        d = network.input_width
        k = d + network.output_width
        for column in range(J.shape[1]):
            i, c = divmod(column, k)
            up, down = (Xc.copy(), Yc.copy()), (Xc.copy(), Yc.copy())
            target = (0, c) if c < d else (1, c - d)
            up[target[0]][i, target[1]] += h
            down[target[0]][i, target[1]] -= h
            difference = (program.term_sums(th, *up, arithmetic=ar)
                          - program.term_sums(th, *down, arithmetic=ar)) / (2 * h)
            assert max(abs(a - b) for a, b in zip(difference.ravel(), J[:, column])) \
                < mpmath.mpf(10) ** -30


@pytest.mark.parametrize("network", PROGRAM_NETWORKS, ids=str)
@pytest.mark.parametrize("name", ["float64", "mpmath"])
def test_sgd_batches_sum_over_each_steps_subset(network, name):
    ar = get_arithmetic(name)
    thetas, X, Y = problem(network, steps=3, samples=5)
    batches = [[0, 3], [4, 1, 2], [2]]
    ref_sums, ref_J = reference(network, thetas, X, Y, batches=batches)
    mask = np.zeros((3, 5), dtype=int)
    for e, batch in enumerate(batches):
        mask[e, batch] = 1
    program = LayerwiseProgram(network)
    tolerance = 1e-13 if name == "float64" else mpmath.mpf(10) ** -36
    with ar.workdps(40):
        args = ar.asarray(thetas), ar.asarray(X), ar.asarray(Y)
        for schedule in (batches, mask):
            sums, J = program.evaluate(*args, batches=schedule, arithmetic=ar)
            assert max_error(ar, sums, ref_sums) < tolerance
            assert max_error(ar, J, ref_J) < tolerance
        with pytest.raises(InputError, match="distinct"):
            program.evaluate(*args, batches=[[0, 0], [1], [2]], arithmetic=ar)
        with pytest.raises(InputError, match="one batch per step"):
            program.evaluate(*args, batches=[[0]], arithmetic=ar)


@pytest.mark.parametrize("network", PROGRAM_NETWORKS, ids=str)
def test_output_terms_and_mean_gradient_match_the_references(network):
    ar = get_arithmetic("mpmath")
    thetas, X, Y = problem(network, steps=2, samples=3)
    program = layerwise_program(network)
    with ar.workdps(40):
        th, Xa, Ya = ar.asarray(thetas), ar.asarray(X), ar.asarray(Y)
        f, B, S, valid = program.output_terms(th, Xa)
        assert valid is None and B.shape == (2, 3, network.num_parameters,
                                             network.output_width)
        for e in range(2):
            for i in range(3):
                f_ref, B_ref = reference_outputs(network, thetas[e], X[S[e, i]])
                assert max(abs(a - b) for a, b in zip(f[e, i], f_ref)) < 1e-36
                assert max(abs(a - b) for a, b in zip(B[e, i].ravel(),
                                                      np.ravel(B_ref))) < 1e-36
        mean = program.mean_gradient(th[0], Xa, Ya)
        sums, _ = reference(network, thetas[:1], X, Y)
        ref = [2 * v / 3 for v in sums[0]]       # the toolkit's MSE: (2/n) sum of terms
        assert max(abs(a - b) for a, b in zip(mean, ref)) < 1e-36
    floats = program.mean_gradient(thetas[0].astype(float), X.astype(float), Y.astype(float))
    assert floats.dtype == float
    assert np.allclose(floats, [float(v) for v in ref], rtol=1e-12, atol=1e-14)


def test_arithmetic_is_inferred_from_the_arrays():
    network = Network([2, 3, 1], ["tanh", "identity"])
    thetas, X, Y = problem(network, steps=1, samples=2)
    program = LayerwiseProgram(network)
    assert program.term_sums(thetas.astype(float), X.astype(float),
                                      Y.astype(float)).dtype == float
    with mpmath.workdps(30):
        mp = get_arithmetic("mpmath")
        sums = program.term_sums(mp.asarray(thetas), mp.asarray(X), mp.asarray(Y))
        assert isinstance(sums[0, 0], mpmath.mpf)
        complex_X = mp.asarray(X) + mpmath.mpc(0, 1)
        sums = program.term_sums(mp.asarray(thetas), complex_X, mp.asarray(Y))
        assert isinstance(sums[0, 0], mpmath.mpc)


def test_precision_is_the_callers_and_never_changed():
    network = Network([1, 1], "tanh")
    program = LayerwiseProgram(network)
    ar = get_arithmetic("mpmath")
    before = (mpmath.mp.prec, mpmath.iv.prec)
    values = []
    for dps in (20, 60):
        with ar.workdps(dps):
            sums = program.term_sums(ar.asarray([["0.5", "0.5"]]),
                                              ar.asarray([["0.6"]]), ar.asarray([["0.2"]]))
            values.append(sums[0, 0])
    assert (mpmath.mp.prec, mpmath.iv.prec) == before
    with mpmath.workdps(80):
        assert 1e-25 < abs(values[0] - values[1]) < 1e-18   # 20 digits vs 60 digits




# -- every activation and loss ---------------------------------------------------------

ACTIVATION_NETWORKS = [Network([2, 3, 2], [name, "identity"])
                       for name in activation_names()] + \
    [Network([2, 3, 2], ["leaky_relu:0.2", "tanh"])]
LOSS_NETWORKS = [(Network([2, 3, 3], ["gelu", "identity"]), "cross_entropy"),
                 (Network([2, 3, 2], ["silu", "tanh"]), "cross_entropy"),
                 (Network([2, 3, 2], ["softplus", "identity"]), "bce_with_logits"),
                 (Network([2, 3, 2], ["tanh", "sigmoid"]), "mse")]


def kinked(network):
    return any(name.startswith(("relu", "leaky_relu")) for name in network.activations)


@pytest.mark.parametrize("network", ACTIVATION_NETWORKS, ids=str)
@pytest.mark.parametrize("name", REAL + COMPLEX)
def test_every_activation_matches_sympys_derivatives(network, name):
    ar = arithmetic(name)
    thetas, X, Y = problem(network, steps=2, samples=3, seed=1)
    program = LayerwiseProgram(network)
    if kinked(network) and ar.is_complex:
        with pytest.raises(NotSupportedError, match="not analytic"):
            program.evaluate(ar.asarray(thetas), ar.asarray(X), ar.asarray(Y), arithmetic=ar)
        return
    ref_sums, ref_J = reference(network, thetas, X, Y)
    with ar.workdps(40):
        sums, J = program.evaluate(ar.asarray(thetas), ar.asarray(X), ar.asarray(Y),
                                   arithmetic=ar)
    tolerance = 1e-12 if ar.dtype != object else mpmath.mpf(10) ** -35
    assert max_error(ar, sums, ref_sums) < tolerance
    assert max_error(ar, J, ref_J) < tolerance


@pytest.mark.parametrize("network,loss", LOSS_NETWORKS, ids=str)
@pytest.mark.parametrize("name", ["float64", "mpmath", "mpc", "arb", "acb"])
def test_every_loss_matches_sympys_derivatives(network, loss, name):
    ar = arithmetic(name)
    thetas, X, Y = problem(network, steps=2, samples=3, seed=2)
    ref_sums, ref_J = reference(network, thetas, X, Y, loss=loss)
    with ar.workdps(40):
        sums, J = LayerwiseProgram(network, loss).evaluate(
            ar.asarray(thetas), ar.asarray(X), ar.asarray(Y), arithmetic=ar)
    tolerance = 1e-12 if ar.dtype != object else mpmath.mpf(10) ** -35
    assert max_error(ar, sums, ref_sums) < tolerance
    assert max_error(ar, J, ref_J) < tolerance


@pytest.mark.parametrize("network,loss", LOSS_NETWORKS, ids=str)
def test_the_loss_gradient_is_sympys_gradient_of_the_loss(network, loss):
    """The factor c: the program's mean gradient against SymPy's derivative of the
    batch's loss itself (not of the terms)."""
    thetas, X, Y = problem(network, steps=1, samples=3, seed=3)
    if loss == "cross_entropy":  # probability vectors (the loss's labels)
        Y = np.array([["0.2", "0.5", "0.3"], ["1", "0", "0"], ["0.05", "0.15", "0.8"]],
                     dtype=object)[:, :network.output_width]
        Y[:, -1] = [str(1 - sum(sp.Rational(v) for v in row[:-1])) for row in Y]
    symbols = network.parameter_symbols()
    expression = network.loss([sp.Matrix([sp.Rational(v) for v in x]) for x in X],
                              [sp.Matrix([sp.Rational(v) for v in y]) for y in Y], loss=loss)
    values = dict(zip(symbols, [sp.Rational(v) for v in thetas[0]]))
    ar = get_arithmetic("mpmath")
    with ar.workdps(40):
        ours = LayerwiseProgram(network, loss).mean_gradient(ar.asarray(thetas[0]),
                                                             ar.asarray(X), ar.asarray(Y))
        for p, symbol in enumerate(symbols):
            exact = sp.diff(expression, symbol).subs(values).evalf(45)
            assert abs(ours[p] - mpmath.mpf(str(exact))) < mpmath.mpf(10) ** -35


@pytest.mark.parametrize("name", INTERVALS)
def test_intervals_enclose_gelu_and_softmax(name):
    ar = arithmetic(name)
    network = Network([2, 3, 3], ["gelu", "identity"])
    thetas, X, Y = problem(network, steps=1, samples=2, seed=4)
    ref_sums, ref_J = reference(network, thetas, X, Y, dps=80, loss="cross_entropy")
    with ar.workdps(30):
        sums, J = LayerwiseProgram(network, "cross_entropy").evaluate(
            ar.asarray(thetas), ar.asarray(X), ar.asarray(Y), arithmetic=ar)
        for enclosure, exact in ((sums, ref_sums), (J, ref_J)):
            assert ar.contains(enclosure, exact)
            assert max(ar.radius(v) for v in enclosure.ravel()) < mpmath.mpf(10) ** -20


# -- exact rationals ------------------------------------------------------------------

PIECEWISE_LINEAR = [Network([2, 3, 1], ["relu", "identity"]),
                    Network([3, 4, 2, 2], ["relu", "leaky_relu:0.25", "identity"]),
                    Network([2, 3, 2], ["leaky_relu", "identity"], bias=False),
                    Network([2, 2], "identity")]


def kink_problem(network):
    """Rational data with sample 0 exactly at a kink of the first layer's neuron 0 at
    step 0 (its weights are (1, -1, 0, ...) with bias 0, and x_0 = (1/3, 1/3, ...))."""
    thetas, X, Y = problem(network, steps=2, samples=3, seed=4)
    d = network.input_width
    thetas[0, :d] = ["1", "-1"] + ["0"] * (d - 2)
    _, bias = network.layer_slices()[0]
    if bias is not None:
        thetas[0, bias.start] = "0"
    X = X.astype(object)
    X[0, :2] = ["1/3", "1/3"]
    return thetas, X, Y


def as_fractions(values):
    from fractions import Fraction
    return [Fraction(str(v)) for v in np.ravel(values)]


@pytest.mark.parametrize("network", PIECEWISE_LINEAR, ids=str)
def test_rational_program_equals_sympy_exactly_also_at_a_kink(network):
    from fractions import Fraction
    from reference import exact_sums
    thetas, X, Y = kink_problem(network)
    program = layerwise_program(network)
    pre, _ = program.layer_values(thetas, X, arithmetic="rational")
    if network.activations[0] != "identity":
        assert pre[0][0, 0, 0] == 0                      # the sample sits on the kink
    sums = program.term_sums(thetas, X, Y, arithmetic="rational")
    expected = exact_sums(network, thetas, X, Y)
    assert as_fractions(sums) == [Fraction(int(v.p), int(v.q)) for row in expected
                                  for v in row]
    # the mean gradient: SymPy's gradient of the loss, exactly
    gradient = program.mean_gradient(thetas[0], X, Y, "rational")
    symbolic = network.gradient([[sp.Rational(v) for v in x] for x in X],
                                [[sp.Rational(v) for v in y] for y in Y],
                                theta=[sp.Rational(v) for v in thetas[0]])
    assert as_fractions(gradient) == [Fraction(str(v)) for v in symbolic]


def test_relu_slope_at_the_kink_is_zero_in_rationals():
    # relu'(0) = 0 (PyTorch): a sample at the kink passes no gradient to that neuron
    network = Network([1, 1, 1], ["relu", "identity"])
    program = layerwise_program(network)
    gradient = program.mean_gradient(["1", "0", "1", "0"], [["0"]], [["1"]], "rational")
    assert as_fractions(gradient) == [0, 0, 0, -2]
    leaky = layerwise_program(Network([1, 1, 1], ["leaky_relu:0.5", "identity"]))
    gradient = leaky.mean_gradient(["1", "0", "1", "0"], [["0"]], [["1"]], "rational")
    assert as_fractions(gradient) == [0, -1, 0, -2]     # leaky_relu'(0) = slope


@pytest.mark.parametrize("activation", ["tanh", "gelu", "gelu_tanh", "softplus"])
def test_rationals_refuse_activations_that_are_not_piecewise_linear(activation):
    program = layerwise_program(Network([1, 2, 1], [activation, "identity"]))
    with pytest.raises(NotSupportedError, match=f"activation {activation}: the rational "
                                                f"arithmetic has no"):
        program.forward(["0.5"] * 7, [["1"]], arithmetic="rational")


def test_rational_arithmetic_is_inferred_from_exact_entries_only():
    from fractions import Fraction
    program = layerwise_program(Network([1, 1], "identity"))
    exact = program.forward([Fraction(1, 3), Fraction(1, 7)], np.array([[1], [2]]))
    assert as_fractions(exact) == [Fraction(10, 21), Fraction(17, 21)]
    rounded = program.forward([Fraction(1, 3), Fraction(1, 7)], np.array([[1.0], [2.0]]))
    assert rounded.dtype == float


def test_loss_value_is_the_mse_of_the_loss_in_rationals_and_mpmath():
    from fractions import Fraction
    network = Network([2, 3, 1], ["relu", "identity"])
    thetas, X, Y = kink_problem(network)
    program = layerwise_program(network)
    value = program.loss_value(thetas[0], X, Y, "rational")
    expected = network.loss([[sp.Rational(v) for v in x] for x in X],
                            [[sp.Rational(v) for v in y] for y in Y],
                            theta=[sp.Rational(v) for v in thetas[0]])
    assert Fraction(str(value)) == Fraction(int(expected.p), int(expected.q))
    mp = get_arithmetic("mpmath")
    with mp.workdps(40):
        approximate = program.loss_value(thetas[0], X, Y, mp)
        assert abs(approximate - mpmath.mpf(expected.p) / expected.q) < mpmath.mpf(10) ** -38
