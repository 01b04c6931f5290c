"""The inversion system: counts, the paper's instantiated equations, residual, Jacobian, LaTeX.

References: counts worked out by hand, the numbers printed in the paper's eqs. (10) and
(12) (and its Mathematica code), the data that generated a trace, finite differences,
and pdflatex.
"""

import os
import re
import shutil
import subprocess
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy as sp

from reference import reference_outputs, scalar_program
from symbolic_inversion import (InputError, InversionSystem, Network, Trace,
                                simulate, system_counts)
from symbolic_inversion.arithmetic import available_arithmetics, get_arithmetic

try:
    import flint
except ImportError:  # the core install
    flint = None

NEURON = Network([1, 1], "tanh")


@pytest.mark.parametrize("layers,bias,samples,steps,unknowns,equations,min_steps", [
    # 3-4-2: 5 * (3 + 2) = 25 unknowns; 3*4 + 4 + 4*2 + 2 = 26 parameters, 3 steps -> 78
    ([3, 4, 2], True, 5, 3, 25, 78, 1),
    # the paper's neuron: 2n unknowns, 2 equations per step, n steps needed
    ([1, 1], True, 2, 2, 4, 4, 2),
    ([1, 1], True, 5, 7, 10, 14, 5),
    # 4-1 without bias: 4 parameters; 7 samples -> 35 unknowns -> ceil(35/4) = 9 steps
    ([4, 1], False, 7, 2, 35, 8, 9),
    # 2-3-1: 6 + 3 + 3 + 1 = 13 parameters; 10 samples -> 30 unknowns -> 3 steps
    ([2, 3, 1], True, 10, 4, 30, 52, 3),
    # the paper's Section 3: l = 2 wide, L = 3 layers: l(l+1)(L-1) = 12 equations per step
    ([2, 2, 2], True, 6, 1, 24, 12, 2),
])
def test_counts_by_hand(layers, bias, samples, steps, unknowns, equations, min_steps):
    network = Network(layers, "tanh", bias)
    counts = system_counts(network, samples, steps)
    assert (counts["unknowns"], counts["equations"], counts["min_steps"]) == (
        unknowns, equations, min_steps)
    system = InversionSystem(network, samples, steps)
    assert len(system.unknowns()) == unknowns
    assert len(system.general_equations()) == network.num_parameters
    assert system_counts(network, samples)["steps"] == min_steps


def test_instantiated_counts_follow_the_trace():
    trace = simulate(Network([2, 1], "sigmoid"), [[0.1, 0.2], [0.3, 0.4]], [[0.5], [0.6]],
                     "0.1", epochs=3, dps=15, seed=0)
    system = InversionSystem.from_trace(trace)
    assert len(system.equations()) == 3 * 3 == system.counts["equations"]
    assert len(InversionSystem.from_trace(trace, steps=2).equations()) == 6
    with pytest.raises(InputError, match="steps"):
        InversionSystem.from_trace(trace, steps=4)
    with pytest.raises(InputError, match="samples"):
        system_counts(Network([1, 1]), 0)


def _paper_Z(x, y, w, b):
    T = sp.tanh(w * x + b)
    return (T - y) * (1 - T**2)


def _numerically_equal(a, b, symbols):
    # the instantiated coefficients are Floats of the trace's digits (at least 15)
    for point in (["0.31", "-0.2", "0.77", "0.45"], ["0.9", "0.15", "-0.3", "0.6"]):
        subs = {s: sp.Rational(v) for s, v in zip(symbols, point)}
        assert abs(sp.N((a - b).xreplace(subs), 30)) < 1e-13


def test_example_1_equations_are_the_papers_eq_10():
    # Table 1 as printed: w, b = 0.500, 0.500 then 0.489, 0.482
    trace = Trace(NEURON, "0.1", 1, [["0.500", "0.500"], ["0.489", "0.482"]])
    system = InversionSystem.from_trace(trace)
    first, second = system.equations()
    (x,), (y,) = NEURON.sample_symbols(0)
    Z = _paper_Z(x, y, sp.Rational(1, 2), sp.Rational(1, 2))
    _numerically_equal(first.lhs, x * Z, [x, y])
    _numerically_equal(second.lhs, Z, [x, y])
    # right-hand sides 1/(2*0.1) * (0.500 - 0.489) = 0.055 and ... = 0.090, exactly
    assert system.right_hand_sides() == [[Fraction("0.055"), Fraction("0.090")]]
    assert sp.Rational(str(first.rhs)) == sp.Rational("0.055")
    assert sp.Rational(str(second.rhs)) == sp.Rational("0.090")
    latex = " ".join(system.latex().split())
    assert r"\tanh{\left(0.5 x_{0} + 0.5 \right)}" in latex
    assert "= 0.055" in latex


@pytest.mark.parametrize("parameters,sides", [
    # eq. (12) from the 3-decimal Table 2: 0.070, 0.190, 0.070, 0.180
    ([["0.500", "0.500"], ["0.493", "0.481"], ["0.486", "0.463"]],
     ["0.070", "0.190", "0.070", "0.180"]),
    # the 7-digit numbers of the paper's Mathematica code: 10 * (0.5000000 - 0.4925472) ...
    ([["0.5000000", "0.5000000"], ["0.4925472", "0.4810773"], ["0.4855530", "0.4634884"]],
     ["0.074528", "0.189227", "0.069942", "0.175889"]),
])
def test_example_2_equations_are_the_papers_eq_12(parameters, sides):
    trace = Trace(NEURON, "0.1", 2, parameters)
    system = InversionSystem.from_trace(trace)
    equations = system.equations()
    (x0,), (y0,) = NEURON.sample_symbols(0)
    (x1,), (y1,) = NEURON.sample_symbols(1)
    for j in range(2):
        w, b = (sp.Rational(v) for v in parameters[j])
        Z0, Z1 = _paper_Z(x0, y0, w, b), _paper_Z(x1, y1, w, b)
        _numerically_equal(equations[2 * j].lhs, x0 * Z0 + x1 * Z1, [x0, y0, x1, y1])
        _numerically_equal(equations[2 * j + 1].lhs, Z0 + Z1, [x0, y0, x1, y1])
    flat = [side for step in system.right_hand_sides() for side in step]
    assert flat == [Fraction(s) for s in sides]
    assert [sp.Rational(str(eq.rhs)) for eq in equations] == [sp.Rational(s) for s in sides]


def test_general_form_is_the_papers_eq_9():
    system = InversionSystem(NEURON, samples=3, steps=3)
    i = sp.Symbol("i", integer=True)
    n, eta = sp.symbols("n eta", positive=True)
    x, y = sp.IndexedBase("x"), sp.IndexedBase("y")
    w, b = NEURON.parameter_symbols(step="j")
    w1, b1 = NEURON.parameter_symbols(step="j + 1")
    Z = _paper_Z(x[i], y[i], w, b)
    weight, bias = system.general_equations()
    assert sp.simplify(weight.lhs.function - x[i] * Z) == 0
    assert sp.simplify(bias.lhs.function - Z) == 0
    assert weight.lhs.limits == ((i, 0, n - 1),) == bias.lhs.limits
    assert sp.simplify(weight.rhs - n / (2 * eta) * (w - w1)) == 0
    assert sp.simplify(bias.rhs - n / (2 * eta) * (b - b1)) == 0
    assert " ".join(system.latex().split()).endswith(r"\text{for } j = 0, 1, \dots, 2")


SYSTEM_CASES = [
    (Network([1, 1], "tanh"), [["0.6"], ["0.2"], ["0.9"]], [["0.5"], ["0.4"], ["0.6"]]),
    (Network([2, 2, 1], ["sigmoid", "tanh"]), [["0.3", "-0.6"], ["0.8", "0.1"]],
     [["0.2"], ["-0.5"]]),
    (Network([2, 2], "identity", bias=False), [["0.3", "-0.6"]], [["0.2", "0.7"]]),
    # relu: its Jacobian needs d/dx Heaviside (DiracDelta, zero off the kink)
    (Network([2, 3, 1], ["relu", "identity"]), [["0.3", "0.6"], ["0.9", "0.2"]],
     [["0.2"], ["0.5"]]),
]


def _trace(network, X, Y, dps=40):
    return simulate(network, X, Y, "0.1", epochs=3, dps=dps, seed=11)


def _mp(rows):
    return [[mpmath.mpf(v) for v in row] for row in rows]


@pytest.mark.parametrize("network,X,Y", SYSTEM_CASES)
def test_residual_vanishes_at_the_true_data_to_trace_precision(network, X, Y):
    trace = _trace(network, X, Y)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(60):
        residual = system.residual(_mp(X), _mp(Y))
        assert len(residual) == system.counts["equations"]
        # the trace's rounding (40 digits) moves a right-hand side by at most this
        assert max(abs(r) for r in residual) <= system.rhs_uncertainty()
        assert max(abs(r) for r in residual) < mpmath.mpf("1e-37")
        moved = _mp(X)
        moved[0][0] += mpmath.mpf("1e-6")
        assert max(abs(r) for r in system.residual(moved, _mp(Y))) > mpmath.mpf("1e-9")
        if network.bias:
            # labels by linear least squares from the true inputs are the true labels
            labels = system.solve_labels(_mp(X))
            assert max(abs(a - b) for la, lb in zip(labels, _mp(Y))
                       for a, b in zip(la, lb)) < mpmath.mpf("1e-35")


@pytest.mark.parametrize("network,X,Y", SYSTEM_CASES)
def test_jacobian_equals_central_finite_differences(network, X, Y):
    trace = _trace(network, X, Y, dps=30)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(50):
        inputs, labels = _mp(X), _mp(Y)
        inputs[0][0] += mpmath.mpf("0.05")  # away from the solution: a generic point
        J = system.jacobian(inputs, labels)
        assert (J.rows, J.cols) == (system.counts["equations"], system.counts["unknowns"])
        h = mpmath.mpf("1e-15")
        width = network.input_width + network.output_width
        for column in range(J.cols):
            sample, coordinate = divmod(column, width)

            def shifted(delta):
                xs = [list(x) for x in inputs]
                ys = [list(y) for y in labels]
                if coordinate < network.input_width:
                    xs[sample][coordinate] += delta
                else:
                    ys[sample][coordinate - network.input_width] += delta
                return system.residual(xs, ys)
            up, down = shifted(h), shifted(-h)
            for row in range(J.rows):
                difference = (up[row] - down[row]) / (2 * h)
                assert abs(difference - J[row, column]) < mpmath.mpf("1e-25"), (row, column)


def test_residual_refuses_wrong_shapes():
    trace = _trace(*SYSTEM_CASES[0])
    system = InversionSystem.from_trace(trace)
    with pytest.raises(InputError, match="expected 3 samples"):
        system.residual([[0.1]], [[0.2]])
    with pytest.raises(InputError, match="sample 0"):
        system.residual([[0.1, 0.2]] * 3, [[0.2]] * 3)


# -- LaTeX compiles ---------------------------------------------------------------------

def _pdflatex():
    path = shutil.which("pdflatex")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is required in CI (texlive-latex-base)")
        pytest.skip("pdflatex not installed (set CI=1 to make this a failure)")
    return path


def _compile(tmp_path, blocks):
    document = ("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
                + "\n".join(f"\\[\n{block}\n\\]" for block in blocks) + "\n\\end{document}\n")
    (tmp_path / "system.tex").write_text(document)
    result = subprocess.run([_pdflatex(), "-interaction=nonstopmode", "-halt-on-error",
                             "system.tex"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "system.pdf").stat().st_size > 1000
    return result.stdout


@pytest.mark.parametrize("network,samples", [
    (Network([1, 1], "tanh"), 2),
    (Network([2, 2, 1], ["sigmoid", "relu"]), 2),
    (Network([3, 4, 2], ["tanh", "identity"]), 1),
    (Network([2, 2], "identity", bias=False), 3),
])
def test_latex_compiles_in_general_and_instantiated_form(network, samples, tmp_path):
    X = [[f"0.{3 + i + d}" for d in range(network.input_width)] for i in range(samples)]
    Y = [[f"0.{1 + i + o}" for o in range(network.output_width)] for i in range(samples)]
    trace = simulate(network, X, Y, "0.1", epochs=2, dps=12, seed=5)
    general = InversionSystem(network, samples, 2).latex()
    instantiated = InversionSystem.from_trace(trace).latex()
    for block in (general, instantiated):
        normal = " ".join(block.split())
        assert normal.startswith(r"\begin{cases}") and r"\end{cases}" in normal
    assert r"\sum_{i=0}^{n - 1}" in " ".join(general.split())
    assert instantiated.count(r"\\") == 2 * network.num_parameters - 1
    _compile(tmp_path, [general, instantiated])


# -- the evaluator (one numerical core) ---------------------------------------------


SGD_NET = Network([2, 3, 1], ["tanh", "identity"])
SGD_X = [["0.3", "-0.6"], ["0.8", "0.1"], ["-0.4", "0.5"], ["0.1", "0.9"], ["0.6", "0.6"]]
SGD_Y = [["0.2"], ["-0.5"], ["0.7"], ["0.1"], ["-0.3"]]


def _sgd_trace(momentum=0, weight_decay=0):
    return simulate(SGD_NET, SGD_X, SGD_Y, "0.1", epochs=2, dps=50, seed=5, optimizer="sgd",
                    batch_size=2, momentum=momentum, weight_decay=weight_decay)


def _scalar_residual(system, inputs, labels, steps):
    """Independent reference: the scalar programs summed over each step's batch,
    minus |B_j|/2 g_j from the trace's observed gradients (mpmath, current precision)."""
    term = scalar_program(system.network)[0]
    gradients = system.trace.observed_gradients()
    values = []
    for j in steps:
        theta = system.trace.theta(j)
        batch = system.batch(j)
        total = [mpmath.mpf(0)] * system.network.num_parameters
        for i in batch:
            total = [t + g for t, g in
                     zip(total, term(theta, inputs[i], labels[i]))]
        values += [t - len(batch) * g / 2 for t, g in zip(total, gradients[j])]
    return values


@pytest.mark.parametrize("momentum,weight_decay", [(0, 0), ("0.9", "0.01")])
def test_evaluator_residual_on_sgd_batches_matches_the_scalar_programs(momentum,
                                                                         weight_decay):
    trace = _sgd_trace(momentum, weight_decay)
    system = InversionSystem.from_trace(trace)
    assert any(len(system.batch(j)) < system.samples for j in range(system.steps))
    mp = get_arithmetic("mpmath")
    with mp.workdps(60):
        inputs, labels = _mp(SGD_X), _mp(SGD_Y)
        inputs[1][0] += mpmath.mpf("0.01")  # a generic point
        steps = [0, 2, 4]
        ev = system.evaluator(mp, steps)
        residual = ev.residual(ev.join(inputs, labels))
        reference = _scalar_residual(system, inputs, labels, steps)
        assert max(abs(a - b) for a, b in zip(residual, reference)) < mpmath.mpf(10) ** -50
        # columns of samples outside a step's batch are zero in that step's rows
        J = ev.jacobian(ev.join(inputs, labels))
        P, width = SGD_NET.num_parameters, 3
        for row_block, j in enumerate(steps):
            for i in range(system.samples):
                block = J[row_block * P:(row_block + 1) * P, i * width:(i + 1) * width]
                assert (i in system.batch(j)) == any(v != 0 for v in block.ravel())
        assert ev.mask.tolist() == [[int(i in system.batch(j)) for i in range(5)]
                                    for j in steps]
        # at the true data the residual is the trace's rounding only
        truth = ev.join(_mp(SGD_X), _mp(SGD_Y))
        assert max(abs(r) for r in ev.residual(truth)) <= system.rhs_uncertainty()


@pytest.mark.parametrize("network,X,Y", SYSTEM_CASES)
def test_evaluator_agrees_across_arithmetics(network, X, Y):
    trace = _trace(network, X, Y)
    system = InversionSystem.from_trace(trace)
    mp = get_arithmetic("mpmath")
    relu = "relu" in network.activations
    with mp.workdps(50):
        inputs, labels = _mp(X), _mp(Y)
        inputs[0][0] += mpmath.mpf("0.03")
        ev = system.evaluator(mp)
        u = ev.join(inputs, labels)
        F, J = ev.evaluate(u)
    for name in available_arithmetics():
        ar = get_arithmetic(name)
        if relu and ar.is_complex:
            continue
        with ar.workdps(40):
            other = system.evaluator(ar)
            assert (other.rows, other.unknowns) == (ev.rows, ev.unknowns)
            F2, J2 = other.evaluate(other.join(*ev.split(u)))
            if ar.is_interval:
                assert ar.contains(F2, F) and ar.contains(J2, J)
                continue
            tolerance = 1e-12 if ar.dtype != object else mpmath.mpf(10) ** -35
            for a, b in zip(np.ravel(F2), np.ravel(F)):
                assert abs(ar.to_mpmath(a) - b) < tolerance, name
            for a, b in zip(np.ravel(J2), np.ravel(J)):
                assert abs(ar.to_mpmath(a) - b) < tolerance, name


@pytest.mark.parametrize("network,X,Y", SYSTEM_CASES)
def test_label_system_gives_the_residual_and_the_labels(network, X, Y):
    trace = _trace(network, X, Y)
    system = InversionSystem.from_trace(trace)
    ar = get_arithmetic("mpmath")
    with ar.workdps(60):
        ev = system.evaluator(ar)
        inputs, labels = ar.asarray(X), ar.asarray(Y)
        other = labels + ar.asarray([["0.125"] * network.output_width] * len(Y))
        A, b = ev.label_system(inputs)
        assert A.shape == (ev.rows, system.samples * network.output_width)
        predicted = b - A @ other.reshape(-1)
        actual = ev.residual(ev.join(inputs, other))
        assert max(abs(p - q) for p, q in zip(predicted, actual)) < mpmath.mpf(10) ** -50
        if network.bias:
            found = ev.solve_labels(inputs)
            assert max(abs(p - q) for p, q in zip(found.ravel(), labels.ravel())) \
                < mpmath.mpf(10) ** -35


def test_evaluator_layout_steps_and_sample_terms():
    network, X, Y = SYSTEM_CASES[1]
    trace = _trace(network, X, Y)
    system = InversionSystem.from_trace(trace)
    ar = get_arithmetic("mpmath")
    with ar.workdps(40):
        ev = system.evaluator(ar, steps=[2, 0])
        assert ev.steps == [2, 0] and ev.rows == 2 * network.num_parameters
        assert system.evaluator(ar, steps=[2, 0]) is ev      # cached
        u = ev.join(X, Y)
        inputs, labels = ev.split(u)
        assert inputs.shape == (2, 2) and labels.shape == (2, 1)
        assert list(ev.join(inputs, labels)) == list(u)
        full = system.evaluator(ar).residual(u)
        P = network.num_parameters
        assert list(ev.residual(u)) == list(full[2 * P:3 * P]) + list(full[:P])
        assert list(ev.lhs(u) - ev.rhs) == list(ev.residual(u))
        points = ar.asarray([["0.1", "0.2"], ["0.3", "-0.4"], ["0.5", "0.6"]])
        Bf, B = ev.sample_terms(points)
        assert Bf.shape == (2, 3, P) and B.shape == (2, 3, P, 1)
        f_ref, B_ref = reference_outputs(network, trace.theta(2), list(points[1]))
        assert max(abs(a - b) for a, b in zip(B[0, 1].ravel(), np.ravel(B_ref))) < 1e-35
        Bf_ref = [sum(b * f for b, f in zip(row, f_ref)) for row in B_ref]
        assert max(abs(a - b) for a, b in zip(Bf[0, 1], Bf_ref)) < 1e-35
    with pytest.raises(InputError, match="steps"):
        system.evaluator(ar, steps=[7])
    with pytest.raises(InputError, match="trace"):
        InversionSystem(network, samples=2, steps=1).evaluator(ar)


def test_evaluator_never_changes_the_global_precision():
    network, X, Y = SYSTEM_CASES[0]
    system = InversionSystem.from_trace(_trace(network, X, Y))
    before = (mpmath.mp.prec, mpmath.iv.prec, flint.ctx.prec if flint else None)
    for name in available_arithmetics():
        ar = get_arithmetic(name)
        with ar.workdps(45):
            ev = system.evaluator(ar)
            ev.evaluate(ev.join(X, Y))
            ev.label_system(ev.split(ev.join(X, Y))[0])
        assert (mpmath.mp.prec, mpmath.iv.prec, flint.ctx.prec if flint else None) == before
    # constants follow the working precision they are used at
    ar = get_arithmetic("mpmath")
    ev = system.evaluator(ar)
    with ar.workdps(20):
        low = ev.rhs[0]
    with ar.workdps(60):
        high = ev.rhs[0]
        assert 0 < abs(high - low) < mpmath.mpf(10) ** -15


def _with_singular_values(values, rows, seed):
    """``U diag(values) V^T`` with orthonormal ``U`` (rows x cols) and ``V`` from mpmath's
    QR of seeded random matrices: a matrix whose singular values are known."""
    rng = np.random.default_rng(seed)
    cols = len(values)
    U, _ = mpmath.qr(mpmath.matrix(rng.normal(size=(rows, cols)).tolist()), mode="skinny")
    V, _ = mpmath.qr(mpmath.matrix(rng.normal(size=(cols, cols)).tolist()))
    return U * mpmath.diag(values) * V.T


@pytest.mark.parametrize("values,dps", [
    ([mpmath.mpf(10) ** -k for k in range(0, 40, 3)], 100),    # spread: condition 1e39
    ([mpmath.mpf("1e-5")] * 12 + [mpmath.mpf(3)], 60),         # twelve equal smallest
    ([mpmath.mpf(2), mpmath.mpf(1), mpmath.mpf("1e-30")], 50),  # Gram matrix too ill
], ids=["spread", "clustered", "svd"])
def test_smallest_singular_value_bounds_svd_from_below(values, dps):
    from symbolic_inversion.system import smallest_singular_value
    with mpmath.workdps(dps):
        J = _with_singular_values(values, len(values) + 4, seed=len(values))
        reference = mpmath.svd_r(J, compute_uv=False)
        sigma, largest = smallest_singular_value(J, dps)
        smallest = min(reference)
        # never above the SVD's value (the error is never understated), at most a
        # factor cols^(1/32) below it
        assert sigma <= smallest * (1 + mpmath.mpf(10) ** -20)
        assert sigma >= smallest / len(values) ** (mpmath.mpf(1) / 32) * (1 - 1e-20)
        assert largest >= max(reference) * (1 - mpmath.mpf(10) ** -20)


def test_error_estimate_matches_the_svd_and_refuses_rank_deficiency():
    # reference: sum_k |J+_ik| eps_k with J+ from mpmath's SVD of the weighted Jacobian
    # (equal weights here: every value has the trace's 60 digits); never above the 2-norm
    # bound sqrt(m) eps / sigma_min it replaced
    trace = simulate(NEURON, ["0.61", "0.23", "0.87", "0.4"], ["0.5", "0.1", "0.9", "0.3"],
                     "0.1", epochs=8, init=["0.5", "0.5"], dps=60)
    system = InversionSystem.from_trace(trace)
    inputs, labels = [["0.61"], ["0.23"], ["0.87"], ["0.4"]], [["0.5"], ["0.1"], ["0.9"],
                                                                 ["0.3"]]
    with mpmath.workdps(100):
        error, sigma = system.error_estimate(inputs, labels, 100)
        J = system.jacobian(inputs, labels)
        bounds = system.rhs_uncertainties()
        U, S, V = mpmath.svd_r(J)
        pseudo = V.T * mpmath.diag([1 / v for v in S]) * U.T
        reference = max(mpmath.fsum(abs(pseudo[i, k]) * bounds[k] for k in range(J.rows))
                        for i in range(J.cols))
        assert abs(error - reference) <= reference * mpmath.mpf(10) ** -30
        two_norm = mpmath.sqrt(J.rows) * max(bounds) / min(S)
        assert error <= two_norm
        # two equal samples: the Jacobian is rank deficient
        twice = system.error_estimate([["0.61"], ["0.61"], ["0.87"], ["0.4"]],
                                      [["0.5"], ["0.5"], ["0.9"], ["0.3"]], 100)
    assert twice[0] == mpmath.inf
