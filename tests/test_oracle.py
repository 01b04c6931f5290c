"""Reconstruction from the loss alone (issue 6): every reference value is the dataset
that built the black box; comparisons are exact rational equality unless stated."""

import json
import random
from fractions import Fraction

import mpmath
import pytest
import sympy as sp

from symbolic_inversion import InputError, Network
from symbolic_inversion.cli import main
from symbolic_inversion.oracle import (LossOracle, parse_rational, reconstruct_from_loss,
                                       virtual_region)


def random_dataset(layers, n, seed, denominator=5):
    rng = random.Random(seed)

    def number():
        return Fraction(rng.randint(-9, 9), rng.randint(1, denominator))

    inputs = [[number() for _ in range(layers[0])] for _ in range(n)]
    labels = [[number() for _ in range(layers[-1])] for _ in range(n)]
    return inputs, labels


def relu_network(layers, bias=True, output="identity"):
    return Network(layers, ["relu"] * (len(layers) - 2) + [output], bias=bias)


def as_multiset(samples):
    found = []
    for s in samples:
        found += [(tuple(s["x"]), tuple(s["y"]))] * s.get("multiplicity", 1)
    return sorted(found)


def truth(inputs, labels):
    return sorted((tuple(x), tuple(y)) for x, y in zip(inputs, labels))


# -- the black box itself, against SymPy's symbolic loss ------------------------------

def test_oracle_matches_symbolic_loss():
    network = relu_network([2, 3, 2])
    inputs, labels = random_dataset([2, 3, 2], 3, seed=4)
    oracle = LossOracle(network, inputs, labels)
    rng = random.Random(1)
    theta = [Fraction(rng.randint(-20, 20), 7) for _ in range(network.num_parameters)]
    symbolic = network.loss([[sp.Rational(v) for v in x] for x in inputs],
                            [[sp.Rational(v) for v in y] for y in labels],
                            [sp.Rational(v) for v in theta])
    value = oracle(theta)
    assert isinstance(value, Fraction)
    assert sp.Rational(value) == sp.nsimplify(symbolic)
    assert oracle.evaluations == 1


# -- the "done means" example ----------------------------------------------------------

def test_321_with_bias_recovers_layers_inputs_and_labels_exactly():
    inputs = [["1/2", "3", "-1"], ["2", "-1/3", "1"], ["-1", "1", "5/2"]]
    labels = [["2"], ["-1/3"], ["5/7"]]
    oracle = LossOracle(relu_network([3, 2, 1]), inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters, seed=0)
    assert result.status == "recovered" and result.ok and result.verified
    assert result.layers == [3, 2, 1] and result.depth == 2 and result.bias is True
    assert result.num_samples == 3
    assert as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)
    assert all(isinstance(v, Fraction) for s in result.samples for v in s["x"] + s["y"])
    assert result.evaluations == oracle.evaluations > 0
    assert sum(result.evaluation_counts.values()) == result.evaluations
    assert result.unidentifiable == []


@pytest.mark.parametrize("layers, n", [
    ([2, 3, 1], 2), ([3, 4, 2], 4), ([1, 3, 1], 3),           # depth 2
    ([4, 3, 2, 1], 3), ([2, 3, 3, 1], 2),                     # depth 3
    ([3, 2, 2, 2, 1], 3),                                     # depth 4
    ([2, 2, 2, 2, 2, 1], 2),                                  # depth 5
    ([2, 2, 2, 2, 2, 2, 1], 3),                               # depth 6
])
def test_depth_widths_and_data_from_loss_alone(layers, n):
    inputs, labels = random_dataset(layers, n, seed=len(layers) * 10 + n, denominator=7)
    oracle = LossOracle(relu_network(layers), inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters, seed=3)
    assert result.depth == len(layers) - 1
    assert result.layers == layers
    assert result.status == "recovered", result.message
    assert as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)


def test_relu_output_is_detected():
    layers = [2, 3, 1]
    inputs, labels = random_dataset(layers, 3, seed=8)
    oracle = LossOracle(relu_network(layers, output="relu"), inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters)
    assert result.output_activation == "relu" and result.ok
    assert as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)


def test_known_layers_skip_discovery():
    layers = [3, 2, 1]
    inputs, labels = random_dataset(layers, 3, seed=5)
    oracle = LossOracle(relu_network(layers), inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters, layers=layers, bias=True)
    assert result.ok and result.evaluation_counts.get("architecture", 0) == 0
    assert as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)
    with pytest.raises(InputError, match="layers"):
        reconstruct_from_loss(oracle, oracle.num_parameters, layers=[3, 3, 1], bias=True)


def test_sympy_rational_parameters_and_loss_values():
    layers = [2, 2, 1]
    inputs, labels = random_dataset(layers, 2, seed=6)
    oracle = LossOracle(relu_network(layers), inputs, labels)
    seen = set()

    def sympy_loss(theta):
        seen.update(type(v) for v in theta)
        return sp.Rational(oracle([Fraction(int(v.p), int(v.q)) for v in theta]))

    result = reconstruct_from_loss(sympy_loss, oracle.num_parameters,
                                   parameter_type=sp.Rational)
    assert seen <= {sp.Rational, sp.Integer, sp.core.numbers.Half, sp.core.numbers.One,
                    sp.core.numbers.Zero, sp.core.numbers.NegativeOne}
    assert result.ok and as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)


# -- mpmath mode --------------------------------------------------------------------------

def test_float_loss_in_mpmath_mode():
    layers = [3, 2, 1]
    inputs, labels = random_dataset(layers, 3, seed=11)
    oracle = LossOracle(relu_network(layers), inputs, labels, dps=40)
    before = mpmath.mp.dps
    result = reconstruct_from_loss(oracle, oracle.num_parameters, dps=40)
    assert mpmath.mp.dps == before
    assert result.ok and result.layers == layers and result.num_samples == 3
    with mpmath.workdps(40):
        for s in result.samples:
            error = min(max(abs(a - b) for a, b in zip(s["x"] + s["y"], x + y))
                        for x, y in zip(oracle.inputs, oracle.labels))
            assert error < mpmath.mpf(10) ** -20


def test_float_loss_refused_in_exact_mode():
    layers = [2, 2, 1]
    inputs, labels = random_dataset(layers, 2, seed=1)
    oracle = LossOracle(relu_network(layers), inputs, labels, dps=20)
    with pytest.raises(InputError, match="dps"):
        reconstruct_from_loss(oracle, oracle.num_parameters)


# -- what cannot be identified ----------------------------------------------------------

def test_without_bias_directions_exact_and_scale_freedom_reported():
    layers = [3, 2, 1]
    inputs, labels = random_dataset(layers, 3, seed=2)
    oracle = LossOracle(relu_network(layers, bias=False), inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters)
    assert result.layers == layers and result.bias is False
    assert result.status == "ambiguous" and not result.ok and result.verified
    assert any("c^2 n" in reason for reason in result.unidentifiable)
    assert any("parallel" in reason for reason in result.unidentifiable)
    # every true input is a multiple of exactly one recovered direction
    for x in oracle.inputs:
        multiples = [d for d in result.directions
                     if sp.Matrix([x, d]).rank() == 1]
        assert len(multiples) == 1
    # under the stated assumption (each input once) the data come out exactly
    assert as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)


def test_without_bias_positively_parallel_inputs_are_not_reported_as_recovered():
    network = relu_network([2, 2, 1], bias=False)
    oracle = LossOracle(network, [["1", "2"], ["2", "4"], ["3", "-1"]],
                        [["1"], ["-2"], ["1/2"]])
    result = reconstruct_from_loss(oracle, oracle.num_parameters)
    assert not result.ok
    assert result.status in ("ambiguous", "failed")
    assert any("parallel" in reason for reason in result.unidentifiable)
    assert as_multiset(result.samples) != truth(oracle.inputs, oracle.labels)


def test_duplicate_inputs_give_mean_label_and_are_reported():
    network = relu_network([2, 2, 1])
    inputs = [["1", "2"], ["1", "2"], ["-3", "1/2"]]
    labels = [["1"], ["2"], ["-1"]]
    oracle = LossOracle(network, inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters)
    assert result.status == "ambiguous" and result.verified
    assert result.num_samples == 3
    repeated = [s for s in result.samples if s["multiplicity"] == 2]
    assert len(repeated) == 1
    assert repeated[0]["x"] == [1, 2] and repeated[0]["y"] == [Fraction(3, 2)]
    assert any("occurs 2 times" in r for r in result.unidentifiable)
    assert any("labels of repeated inputs differ" in r for r in result.unidentifiable)


def test_coordinate_zero_for_every_sample_is_reported():
    network = relu_network([3, 2, 1])
    inputs = [["1", "0", "2"], ["-2", "0", "1/3"], ["1/2", "0", "-1"]]
    labels = [["1"], ["0"], ["3"]]
    oracle = LossOracle(network, inputs, labels)
    result = reconstruct_from_loss(oracle, oracle.num_parameters)
    assert result.layers == [3, 2, 1]
    assert as_multiset(result.samples) == truth(oracle.inputs, oracle.labels)
    assert result.status == "ambiguous"
    assert any("coordinate 1 is zero" in r for r in result.unidentifiable)


def test_single_layer_is_reported_unidentifiable():
    network = Network([2, 1], "identity", bias=True)
    oracle = LossOracle(network, [["1", "2"], ["3", "1"]], [["1"], ["2"]])
    result = reconstruct_from_loss(oracle, oracle.num_parameters)
    assert result.status == "failed" and result.depth == 1 and not result.ok
    assert any("moments" in r for r in result.unidentifiable)


# -- failures ---------------------------------------------------------------------------

def test_not_a_relu_loss_is_not_recovered():
    layers = [2, 2, 1]
    inputs, labels = random_dataset(layers, 2, seed=3)
    oracle = LossOracle(relu_network(layers), inputs, labels)

    def tampered(theta):  # a cubic term no ReLU network's loss has along e_0 + e_1
        return oracle(theta) + theta[0] ** 2 * theta[1] ** 2 * theta[5] ** 2

    result = reconstruct_from_loss(tampered, oracle.num_parameters)
    assert not result.ok and result.status != "recovered"


@pytest.mark.parametrize("kwargs, field", [
    (dict(loss=42, num_parameters=5), "loss"),
    (dict(loss=lambda t: 0, num_parameters=1), "num_parameters"),
    (dict(loss=lambda t: "x", num_parameters=5), "loss"),
    (dict(loss=lambda t: 0, num_parameters=5, dps=3), "dps"),
    (dict(loss=lambda t: 0, num_parameters=5, output_activation="tanh"), "output_activation"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(InputError, match=field):
        reconstruct_from_loss(**kwargs)


def test_parse_rational_is_strict():
    assert parse_rational(" -3/7 ", "x") == Fraction(-3, 7)
    assert parse_rational("1.25e1", "x") == Fraction(25, 2)
    for text in ("1/0", "2**3", "1/2/3", "nan", "", "exp(1)"):
        with pytest.raises(InputError, match="x"):
            parse_rational(text, "x")


# -- virtual polynomials ---------------------------------------------------------------

def test_virtual_polynomial_is_the_loss_on_its_region():
    network = relu_network([2, 2, 1])
    inputs, labels = [["1", "-2"], ["3", "1/2"]], [["1"], ["-1"]]
    theta = [1, -1, 2, 1, Fraction(1, 2), -1, 3, -2, 1]
    region = virtual_region(network, inputs, labels, theta)
    oracle = LossOracle(network, inputs, labels)
    assert region.contains(theta)
    symbols = network.parameter_symbols()
    rng = random.Random(0)
    checked = 0
    for _ in range(40):  # nearby points in the same region: the polynomial is the loss
        nearby = [Fraction(v) + Fraction(rng.randint(-10, 10), 1000) for v in theta]
        if region.contains(nearby):
            value = region.polynomial.subs(dict(zip(symbols, map(sp.Rational, nearby))))
            assert value == sp.Rational(oracle(nearby))
            checked += 1
    assert checked > 10
    assert sp.Poly(region.polynomial, *symbols).total_degree() == 4
    assert r"\begin{cases}" in region.latex()


# -- command line -----------------------------------------------------------------------

def write(tmp_path, data):
    path = tmp_path / "oracle.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_oracle_json(tmp_path, capsys):
    path = write(tmp_path, {
        "network": {"layers": [3, 2, 1], "activations": ["relu", "identity"], "bias": True},
        "samples": [{"x": ["1/2", "3", "-1"], "y": ["2"]},
                    {"x": ["2", "-0.25", "1"], "y": ["-1/3"]},
                    {"x": ["-1", "1", "2.5"], "y": ["5/7"]}]})
    assert main(["oracle", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "recovered" and report["matches_file"] is True
    assert report["layers"] == [3, 2, 1]
    assert sorted(s["x"] for s in report["samples"]) == [["-1", "1", "5/2"],
                                                        ["1/2", "3", "-1"],
                                                        ["2", "-1/4", "1"]]
    assert report["evaluations"] == report["oracle_evaluations"] > 0


def test_cli_oracle_ambiguous_exits_nonzero(tmp_path, capsys):
    path = write(tmp_path, {
        "network": {"layers": [2, 2, 1], "activations": ["relu", "identity"], "bias": False},
        "samples": [{"x": ["1", "2"], "y": ["1"]}, {"x": ["3", "-1"], "y": ["2"]}]})
    assert main(["oracle", path]) == 1
    assert "not identifiable" in capsys.readouterr().out


@pytest.mark.parametrize("data, field", [
    ({"network": {"layers": [2, 1]}, "samples": []}, "samples"),
    ({"network": {"layers": [2, "a", 1]}, "samples": [{"x": [1, 2], "y": [1]}]},
     "network.layers"),
    ({"network": {"layers": [2, 1, 1], "activations": ["tanh", "relu"]},
      "samples": [{"x": ["1", "2"], "y": ["1"]}]}, "network.activations"),
    ({"network": {"layers": [2, 1, 1]}, "samples": [{"x": ["1"], "y": ["1"]}]},
     r"samples\[0\].x"),
    ({"network": {"layers": [2, 1, 1]}, "samples": [{"x": ["1", "os.system('ls')"],
                                                     "y": ["1"]}]}, r"samples\[0\].x\[1\]"),
    ([1, 2], "FILE"),
])
def test_cli_oracle_malformed_file(tmp_path, capsys, data, field):
    path = write(tmp_path, data)
    assert main(["oracle", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(field, captured.err)
