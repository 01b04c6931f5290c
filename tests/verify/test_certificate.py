"""Certificates (symbolic_inversion.verify.certificate): what is proved, what is refused.

References: the data that generated each simulated trace, the root of the paper's
Example 2 printed by Mathematica's FindRoot (see conftest.py).
"""

import json

import mpmath
import pytest

from symbolic_inversion import InputError, Network, simulate
from symbolic_inversion.cli import main
from symbolic_inversion.paper import example_2_trace
from symbolic_inversion.verify import Certificate, certify, default_certify_dps

from verify_problems import BACKENDS, FINDROOT, HAVE_FLINT, NEURON, X4, Y4, pairs


@pytest.mark.parametrize("backend", BACKENDS)
def test_example_2_certified_below_1e_20(example_2_root, backend):
    certificate = certify(example_2_trace(), example_2_root, backend=backend)
    assert certificate.certified and certificate.proved
    assert certificate.radius < mpmath.mpf("1e-20")
    assert len(certificate.equations) == 4 and certificate.checked == []
    # The certified solution is FindRoot's root (to its 12 printed digits) ...
    for (x, y), sx, sy in zip(certificate.center, FINDROOT["x"], FINDROOT["y"]):
        assert abs(x[0] - mpmath.mpf(sx)) < 1e-12 and abs(y[0] - mpmath.mpf(sy)) < 1e-12
    # ... which is not the training data: the 7-digit system is not the training run.
    assert abs(certificate.center[0][0][0] - mpmath.mpf("0.6")) > 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_60_digit_four_samples_certified_below_1e_20(trace_4_square, backend):
    certificate = certify(trace_4_square, pairs(X4, Y4), backend=backend)
    assert certificate.certified, certificate.reason
    assert certificate.radius < mpmath.mpf("1e-20")
    assert certificate.steps == 4 and len(certificate.equations) == 8


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_dataset_not_certified(trace_4_square, example_2_root, backend):
    wrong = pairs([X4[0] + 1e-3] + X4[1:], Y4)
    certificate = certify(trace_4_square, wrong, backend=backend)
    assert not certificate.certified
    # The proof itself succeeds near the refined centre; the data are 1e-3 away from it.
    assert certificate.proved and mpmath.mpf("9e-4") < certificate.radius < 2e-3
    assert "away from the given data" in certificate.reason
    with mpmath.workdps(80):
        shifted = [([example_2_root[0][0][0] + mpmath.mpf("1e-3")], example_2_root[0][1]),
                   example_2_root[1]]
    assert not certify(example_2_trace(), shifted, backend=backend).certified


def test_wrong_labels_not_certified(trace_4_square):
    wrong = pairs(X4, [Y4[0], Y4[1] - 1e-3] + Y4[2:])
    assert not certify(trace_4_square, wrong).certified


def test_overdetermined_system_certifies_a_square_part_and_checks_the_rest(trace_4_long):
    certificate = certify(trace_4_long, pairs(X4, Y4))
    assert certificate.certified, certificate.reason
    assert len(certificate.equations) == 8 and len(certificate.checked) == 4
    assert set(certificate.equations).isdisjoint(certificate.checked)
    assert certificate.rest_residual <= certificate.rest_tolerance
    # The trace's numbers are rounded to 60 digits: the other equations cannot hold
    # much better than that, and the bound says so.
    assert certificate.rest_residual < mpmath.mpf("1e-55")


def test_one_sample_certified_from_the_closed_form_recovery():
    trace = simulate(NEURON, [0.6], [0.5], lr="0.1", epochs=3, init=[0.5, 0.5], dps=60)
    certificate = certify(trace)  # recovers (closed form) first
    assert certificate.certified and certificate.radius < mpmath.mpf("1e-50")
    with mpmath.workdps(80):
        assert abs(certificate.center[0][0][0] - mpmath.mpf("0.6")) < mpmath.mpf("1e-50")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_and_two_dimensional_inputs(backend):
    network = Network([2, 1], "sigmoid")
    X, Y = [[0.3, 0.7], [0.9, 0.1]], [[0.2], [0.8]]
    trace = simulate(network, X, Y, lr="0.5", epochs=3, init=[0.1, -0.2, 0.3], dps=50)
    assert certify(trace, list(zip(X, Y)), backend=backend).certified


@pytest.mark.skipif(not HAVE_FLINT, reason="python-flint not installed (core install)")
def test_backends_agree_on_the_radius(trace_4_long):
    radii = [certify(trace_4_long, pairs(X4, Y4), backend=b).radius for b in ("iv", "arb")]
    assert radii[0] / radii[1] < 2 and radii[1] / radii[0] < 2


def test_equal_samples_are_not_locally_identifiable():
    trace = simulate(NEURON, [0.3, 0.3], [0.5, 0.5], lr="0.1", epochs=2, init=[0.5, 0.5],
                     dps=40)
    certificate = certify(trace, pairs([0.3, 0.3], [0.5, 0.5]))
    assert not certificate.certified and "rank deficient" in certificate.reason


def test_underdetermined_trace_is_refused_honestly():
    trace = simulate(NEURON, X4, Y4, lr="0.1", epochs=2, init=[0.5, 0.5], dps=40)
    certificate = certify(trace, pairs(X4, Y4))
    assert not certificate.certified and "underdetermined" in certificate.reason


def test_bad_input_is_named(trace_4_square):
    with pytest.raises(InputError, match="4 samples"):
        certify(trace_4_square, pairs(X4[:3], Y4[:3]))
    with pytest.raises(InputError, match="backend"):
        certify(trace_4_square, pairs(X4, Y4), backend="float")
    with pytest.raises(InputError, match="samples\\[0\\]\\[0\\]"):
        certify(trace_4_square, [(["__import__('os')"], [0.5])] + pairs(X4[1:], Y4[1:]))


def test_sgd_with_momentum_and_weight_decay_and_the_order_of_samples():
    trace = simulate(NEURON, X4, Y4, lr="0.1", epochs=4, init=[0.5, 0.5], dps=50,
                     optimizer="sgd", batch_size=2, momentum="0.9", weight_decay="0.01",
                     seed=3)
    data = pairs(X4, Y4)
    certificate = certify(trace, data)
    assert certificate.certified and certificate.radius < mpmath.mpf("1e-40")
    # With a recorded minibatch schedule the order of samples is identifiable: the
    # reversed order explains some steps but not the others.
    reversed_order = certify(trace, data[::-1])
    assert not reversed_order.certified


def test_cli_certify(tmp_path, trace_4_long, capsys):
    path = tmp_path / "trace.json"
    trace_4_long.write(path)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("".join(f"{x},{y}\n" for x, y in zip(X4, Y4)))
    bad.write_text("".join(f"{x},{y}\n" for x, y in zip([0.601] + X4[1:], Y4)))

    assert main(["certify", str(path), "--data", str(good), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["certified"] is True and float(result["radius"]) < 1e-20
    assert result["resimulation"]["digits"] == [60] * 6

    assert main(["certify", str(path), "--data", str(bad), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["certified"] is False and float(result["radius"]) > 9e-4

    solution = tmp_path / "solution.json"
    solution.write_text(json.dumps({"samples": [{"x": [str(x)], "y": [str(y)]}
                                                for x, y in zip(X4, Y4)]}))
    backend = "arb" if HAVE_FLINT else "iv"
    assert main(["certify", str(path), "--solution", str(solution), "--backend", backend]) == 0
    assert "certified" in capsys.readouterr().out


def test_cli_recover_certify(tmp_path, capsys):
    trace = simulate(NEURON, [0.6], [0.5], lr="0.1", epochs=3, init=[0.5, 0.5], dps=60)
    path = tmp_path / "one.json"
    trace.write(path)
    assert main(["recover", str(path), "--certify", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "converged" and result["certificate"]["certified"] is True
    assert main(["certify", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recovery"]["status"] == "converged"


def test_cli_certify_bad_input(tmp_path, trace_4_long, capsys):
    path = tmp_path / "trace.json"
    trace_4_long.write(path)
    short = tmp_path / "short.csv"
    short.write_text("0.6,0.5\n")
    assert main(["certify", str(path), "--data", str(short)]) == 2
    assert "4 samples" in capsys.readouterr().err


def test_the_certificate_is_json_ready_with_radii_rounded_up(trace_4_square):
    certificate = certify(trace_4_square, pairs(X4, Y4))
    assert isinstance(certificate, Certificate) and bool(certificate)
    assert certificate.dps == default_certify_dps(trace_4_square) == 60 + 3 * 4 + 30
    data = json.loads(json.dumps(certificate.to_dict()))
    assert data["certified"] is True and data["backend"] == "iv"
    with mpmath.workdps(certificate.dps):
        assert mpmath.mpf(data["radius"]) >= certificate.radius
        assert mpmath.mpf(data["radius"]) <= certificate.radius * 1.01


@pytest.mark.skipif(not HAVE_FLINT, reason="python-flint not installed")
def test_wrong_data_whose_krawczyk_box_diverges_in_arb_are_refused_not_a_traceback():
    """bench_certify's n = 4, E = 4 case with the first input moved by 1e-3: the arb
    Krawczyk image had an unbounded ball, whose end ``man_exp`` could not read (a
    ValueError); the interval back end refused the same data."""
    import numpy as np
    rng = np.random.default_rng(1)
    xs = [f"{v:.3f}" for v in rng.uniform(0, 1, 4)]
    ys = [f"{v:.3f}" for v in rng.uniform(0, 1, 4)]
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=4, init=["0.5", "0.5"], dps=60)
    data = [([x], [y]) for x, y in zip(xs, ys)]
    wrong = [([f"{float(xs[0]) + 1e-3:.6f}"], [ys[0]])] + data[1:]
    for backend in ("arb", "iv"):
        assert not certify(trace, wrong, backend=backend).certified
    assert certify(trace, data, backend="arb").certified
