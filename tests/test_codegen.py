"""symbolic_inversion.codegen: scalar SymPy programs and the layer-wise program in every
arithmetic, against independent references (the scalar programs, finite differences at
high precision)."""

import mpmath
import numpy as np
import pytest

from symbolic_inversion import InversionSystem, Network, compile_network, simulate
from symbolic_inversion.arithmetic import NotDifferentiableError, get_arithmetic
from symbolic_inversion.codegen import (LayerwiseFloat64, LayerwiseProgram,
                                        layerwise_program, shared_subexpressions)
from symbolic_inversion.errors import InputError, NotSupportedError

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


def reference(network, thetas, X, Y, batches=None, dps=60):
    """Sums and Jacobian from the scalar programs of CompiledNetwork (mpmath, high dps)."""
    compiled = compile_network(network)
    E, P = thetas.shape
    n, d = X.shape
    m = Y.shape[1]
    k = d + m
    with mpmath.workdps(dps):
        sums = [[mpmath.mpf(0)] * P for _ in range(E)]
        J = mpmath.zeros(E * P, n * k)
        for e in range(E):
            theta = [mpmath.mpf(v) for v in thetas[e]]
            for i in (range(n) if batches is None else batches[e]):
                x, y = [mpmath.mpf(v) for v in X[i]], [mpmath.mpf(v) for v in Y[i]]
                for p, g in enumerate(compiled.half_gradient(theta, x, y)):
                    sums[e][p] += g
                block = compiled.sample_jacobian(theta, x, y)
                for p in range(P):
                    for c in range(k):
                        J[e * P + p, i * k + c] = block[p][c]
        return np.array(sums, dtype=object), np.array(J.tolist(), dtype=object)


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
            difference = (program.half_gradient_sums(th, *up, arithmetic=ar)
                          - program.half_gradient_sums(th, *down, arithmetic=ar)) / (2 * h)
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
def test_output_terms_and_mean_gradient_match_the_scalar_programs(network):
    ar = get_arithmetic("mpmath")
    thetas, X, Y = problem(network, steps=2, samples=3)
    compiled = compile_network(network)
    program = layerwise_program(network)
    with ar.workdps(40):
        th, Xa, Ya = ar.asarray(thetas), ar.asarray(X), ar.asarray(Y)
        f, B, S, valid = program.output_terms(th, Xa)
        assert valid is None and B.shape == (2, 3, network.num_parameters,
                                             network.output_width)
        for e in range(2):
            for i in range(3):
                f_ref, B_ref = compiled.terms(list(th[e]), list(Xa[S[e, i]]))
                assert max(abs(a - b) for a, b in zip(f[e, i], f_ref)) < 1e-36
                assert max(abs(a - b) for a, b in zip(B[e, i].ravel(),
                                                      np.ravel(B_ref))) < 1e-36
        mean = program.mean_gradient(th[0], Xa, Ya)
        ref = compiled.mean_gradient(list(th[0]), [list(x) for x in Xa], [list(y) for y in Ya])
        assert max(abs(a - b) for a, b in zip(mean, ref)) < 1e-36
    floats = program.mean_gradient(thetas[0].astype(float), X.astype(float), Y.astype(float))
    assert floats.dtype == float
    assert np.allclose(floats, [float(v) for v in ref], rtol=1e-12, atol=1e-14)


def test_arithmetic_is_inferred_from_the_arrays():
    network = Network([2, 3, 1], ["tanh", "identity"])
    thetas, X, Y = problem(network, steps=1, samples=2)
    program = LayerwiseProgram(network)
    assert program.half_gradient_sums(thetas.astype(float), X.astype(float),
                                      Y.astype(float)).dtype == float
    with mpmath.workdps(30):
        mp = get_arithmetic("mpmath")
        sums = program.half_gradient_sums(mp.asarray(thetas), mp.asarray(X), mp.asarray(Y))
        assert isinstance(sums[0, 0], mpmath.mpf)
        complex_X = mp.asarray(X) + mpmath.mpc(0, 1)
        sums = program.half_gradient_sums(mp.asarray(thetas), complex_X, mp.asarray(Y))
        assert isinstance(sums[0, 0], mpmath.mpc)


def test_precision_is_the_callers_and_never_changed():
    network = Network([1, 1], "tanh")
    program = LayerwiseProgram(network)
    ar = get_arithmetic("mpmath")
    before = (mpmath.mp.prec, mpmath.iv.prec)
    values = []
    for dps in (20, 60):
        with ar.workdps(dps):
            sums = program.half_gradient_sums(ar.asarray([["0.5", "0.5"]]),
                                              ar.asarray([["0.6"]]), ar.asarray([["0.2"]]))
            values.append(sums[0, 0])
    assert (mpmath.mp.prec, mpmath.iv.prec) == before
    with mpmath.workdps(80):
        assert 1e-25 < abs(values[0] - values[1]) < 1e-18   # 20 digits vs 60 digits


# -- the scalar programs (closed forms, LaTeX, identifiability use them) --------------

@pytest.mark.parametrize("network", NETWORKS, ids=str)
def test_compiled_jacobian_matches_finite_differences(network):
    compiled = compile_network(network)
    rng = np.random.default_rng(4)
    with mpmath.workdps(50):
        theta = [mpmath.mpf(float(v)) for v in rng.normal(0, 0.7, network.num_parameters)]
        x = [mpmath.mpf(float(v)) for v in rng.uniform(0.1, 1, network.input_width)]
        y = [mpmath.mpf(float(v)) for v in rng.uniform(-1, 1, network.output_width)]
        J = compiled.sample_jacobian(theta, x, y)
        h = mpmath.mpf(10) ** -20
        for d in range(network.input_width):
            up, down = list(x), list(x)
            up[d] += h
            down[d] -= h
            g_up = compiled.half_gradient(theta, up, y)
            g_down = compiled.half_gradient(theta, down, y)
            for p in range(network.num_parameters):
                assert abs((g_up[p] - g_down[p]) / (2 * h) - J[p][d]) < mpmath.mpf(10) ** -30


@pytest.mark.parametrize("network", NETWORKS, ids=str)
def test_layerwise_float64_matches_the_mpmath_system(network):
    rng = np.random.default_rng(1)
    X = rng.uniform(0.1, 1, (3, network.input_width)).round(4)
    Y = rng.uniform(-1, 1, (3, network.output_width)).round(4)
    trace = simulate(network, X.tolist(), Y.tolist(), lr="0.3", epochs=2, dps=30, seed=2)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(30):
        xs = [[mpmath.mpf(str(v)) for v in x] for x in X]
        ys = [[mpmath.mpf(str(v)) for v in y] for y in Y]
        J = np.array(system.jacobian(xs, ys).tolist(), dtype=float)
        residual = np.array([float(r) for r in system.residual(xs, ys)])
        sides = np.array([[float(v) for v in side] for side in system.observed()])
        thetas = np.array([[float(v) for v in trace.theta(j)] for j in range(2)])
    fast = LayerwiseFloat64(network)
    assert np.abs(fast.jacobian(thetas, X, Y) - J).max() < 1e-13
    fast_residual = (fast.half_gradient_sums(thetas, X, Y) - sides).ravel()
    assert np.abs(fast_residual - residual).max() < 1e-13


def test_shared_subexpressions_program_equals_the_expressions():
    network = Network([2, 3, 1], "tanh")
    x = network.sample_symbols(0)[0]
    outputs = list(network.output_jacobian_transpose(x))
    program, reduced = shared_subexpressions(outputs)
    values = dict(zip(network.parameter_symbols(), [0.1 * k - 0.4 for k in range(13)]))
    values.update(zip(x, [0.3, -0.2]))
    for symbol, expr in program:
        values[symbol] = expr.xreplace(values)
    for full, short in zip(outputs, reduced):
        assert abs(float(full.xreplace(values)) - float(short.xreplace(values))) < 1e-14
