"""Identifiability: exact counts (checked by hand), generic rank, minimal steps, symmetries."""

import math

import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion.errors import InputError
from symbolic_inversion.identifiability import (
    data_symmetries, exact_counts, generic_rank, identifiability_report, numerical_rank,
    paper_counts)

# (network, samples, hand-computed: parameters, unknowns, min_steps, paper_min_steps)
# parameters = sum over weight layers of out * (in + 1) (or out * in without bias);
# unknowns = n (d + m); min_steps = ceil(unknowns / parameters);
# paper = ceil(n * sum(widths) / parameters).
COUNTS = [
    (Network([1, 1], "tanh"), 2, 2, 4, 2, 2),                                # 2 = 1*2
    (Network([2, 3, 1], ["tanh", "identity"]), 3, 13, 9, 1, 2),             # 9 + 4; 18/13
    (Network([3, 4, 2], ["sigmoid", "identity"]), 5, 26, 25, 1, 2),          # 16 + 10; 45/26
    (Network([2, 2, 2, 1], "tanh"), 4, 15, 12, 1, 2),                        # 6+6+3; 28/15
    (Network([2, 3, 1], ["tanh", "identity"], bias=False), 3, 9, 9, 1, 2),   # 6 + 3; 18/9
    (Network([784, 64, 10], ["relu", "identity"]), 10000, 50890, 7940000, 157, 169),
    (Network([4, 16, 16, 2], "tanh"), 8, 386, 48, 1, 1),                     # 80+272+34
]


@pytest.mark.parametrize("network, n, P, unknowns, steps, paper", COUNTS)
def test_counts_match_hand_computed_values(network, n, P, unknowns, steps, paper):
    counts = exact_counts(network, n)
    assert counts["parameters"] == P
    assert counts["unknowns"] == unknowns
    assert counts["min_steps"] == steps
    assert counts["paper_min_steps"] == paper
    assert counts["equations"] == steps * P


def test_paper_formula_for_uniform_width_matches_exact_parameter_count():
    # L layers of l nodes with biases: l (l + 1) (L - 1) equations per step = parameters.
    for l, depth in [(1, 1), (3, 2), (8, 3)]:
        network = Network([l] * (depth + 1), "tanh")
        assert paper_counts(l, depth, samples=5)["equations"] == network.num_parameters
        assert paper_counts(l, depth, samples=5)["unknowns"] == 5 * l * (depth + 1)


# Nonlinear networks where every equation counts: rank E * P until it reaches the
# unknowns, so the minimal E from the measured rank equals the counting one.
RANKED = [
    (Network([1, 1], "tanh"), 2, 2),
    (Network([1, 1], "tanh"), 4, 4),
    (Network([2, 3, 1], ["tanh", "identity"]), 5, 2),
    (Network([3, 4, 2], ["sigmoid", "identity"]), 5, 1),
    (Network([2, 2, 2, 1], "tanh"), 4, 1),
    (Network([2, 3, 1], ["tanh", "identity"], bias=False), 3, 1),
    (Network([1, 2, 1], "tanh"), 4, 2),
]


@pytest.mark.parametrize("network, n, expected", RANKED)
def test_minimal_steps_agree_with_measured_rank(network, n, expected):
    report = generic_rank(network, n, dps=40)
    counts = exact_counts(network, n)
    assert report.min_steps == counts["min_steps"] == expected
    assert report.ranks[expected - 1] == counts["unknowns"]
    for E in range(1, expected):
        assert report.ranks[E - 1] == E * counts["parameters"]  # independent rows
    assert report.trustworthy


@pytest.mark.parametrize("layers, n, moments", [([1, 1], 3, 4), ([2, 1], 3, 8)])
def test_linear_network_rank_saturates_at_its_moment_count(layers, n, moments):
    # f = W x + b sees the data only through sum x x^T, sum x, sum y x^T, sum y:
    # d (d + 1) / 2 + d + m d + m numbers, fewer than the n (d + m) unknowns.
    d, m = layers
    assert moments == d * (d + 1) // 2 + d + m * d + m
    report = generic_rank(Network(layers, "identity"), n, max_steps=6, dps=30)
    assert report.ranks[-1] == report.ranks[-2] == moments < report.unknowns
    assert report.min_steps is None and report.saturated
    assert min(report.gaps) > 20  # zeros at 1e-30 against genuine values near 1e-5


def test_numerical_rank_reads_the_gap():
    import mpmath
    with mpmath.workdps(40):
        A = mpmath.matrix([[1, 2], [2, 4 + mpmath.mpf(10) ** -12], [3, 6]])
        rank, gap, _ = numerical_rank(A, 40)
    assert rank == 2 and math.isinf(gap)
    with mpmath.workdps(40):
        B = mpmath.matrix([[1, 2], [2, 4], [3, 6]])
        rank, gap, _ = numerical_rank(B, 40)
    assert rank == 1


def _trace(network, inputs, labels, init, steps=2):
    return simulate(network, inputs, labels, lr="0.5", epochs=steps, init=init, dps=40)


def test_duplicate_inputs_are_reported_with_their_null_direction():
    network = Network([2, 3, 1], ["tanh", "identity"])
    inputs = [[0.3, -0.6], [0.3, -0.6], [-0.4, 0.5]]
    labels = [[0.2], [-0.5], [0.7]]
    init = [0.5, -0.3, 0.8, 0.1, -0.7, 0.4, 0.1, -0.2, 0.3, 0.6, -0.4, 0.9, 0.05]
    trace = _trace(network, inputs, labels, init)
    findings = data_symmetries(trace, inputs, labels)
    kinds = {f["kind"] for f in findings}
    assert "duplicate_input" in kinds and "null_direction" in kinds
    duplicate = next(f for f in findings if f["kind"] == "duplicate_input")
    assert duplicate["samples"] == [0, 1] and not duplicate["same_label"]
    null = next(f for f in findings if f["kind"] == "null_direction")
    assert {"y[0][0]", "y[1][0]"} <= set(null["unknowns"])


def test_zero_outgoing_weights_and_dead_relu_are_reported():
    network = Network([2, 3, 1], ["relu", "identity"])
    inputs = [[0.3, 0.6], [0.8, 0.1], [0.4, 0.5]]
    labels = [[0.2], [-0.5], [0.7]]
    # neuron 2: bias -5 keeps it off for inputs in [0, 1]; neuron 1: zero outgoing weight
    init = [0.5, 0.3, 0.8, 0.1, -0.7, -0.4, 0.1, 0.2, -5.0, 0.6, 0.0, 0.9, 0.05]
    trace = _trace(network, inputs, labels, init, steps=1)
    findings = data_symmetries(trace, inputs, labels)
    found = {(f["kind"], f.get("layer"), f.get("neuron")) for f in findings}
    assert ("zero_gradient_neuron", 1, 1) in found
    assert ("dead_relu", 1, 2) in found


def test_clean_data_have_no_findings():
    network = Network([2, 3, 1], ["tanh", "identity"])
    inputs = [[0.3, -0.6], [0.8, 0.1], [-0.4, 0.5]]
    labels = [[0.2], [-0.5], [0.7]]
    init = [0.5, -0.3, 0.8, 0.1, -0.7, 0.4, 0.1, -0.2, 0.3, 0.6, -0.4, 0.9, 0.05]
    assert data_symmetries(_trace(network, inputs, labels, init), inputs, labels) == []


def test_relu_rank_depends_on_the_activation_pattern():
    # Seed 0 puts sample 0 where no hidden relu is on: its input is invisible (rank
    # 9 - 2); seed 2 switches a unit on for every sample and the rank is full.
    network = Network([2, 4, 1], ["relu", "identity"])
    assert generic_rank(network, 3, dps=40, seed=0).ranks[-1] == 7
    assert generic_rank(network, 3, dps=40, seed=2).min_steps == 1


def test_report_skips_the_rank_for_huge_problems_and_checks_input():
    report = identifiability_report(Network([784, 64, 10], ["relu", "identity"]), 10000)
    assert report["rank"] is None and report["counts"]["min_steps"] == 157
    small = identifiability_report(Network([1, 1], "tanh"), 2)
    assert small["rank"]["min_steps"] == 2
    with pytest.raises(InputError, match="samples"):
        exact_counts(Network([1, 1]), 0)


def test_analyze_command_prints_the_identifiability_report(tmp_path, capsys):
    import json

    from symbolic_inversion.cli import main
    network = Network([2, 3, 1], ["tanh", "identity"])
    inputs = [[0.3, -0.6], [0.8, 0.1], [-0.4, 0.5]]
    labels = [[0.2], [-0.5], [0.7]]
    init = [0.5, -0.3, 0.8, 0.1, -0.7, 0.4, 0.1, -0.2, 0.3, 0.6, -0.4, 0.9, 0.05]
    path = tmp_path / "trace.json"
    _trace(network, inputs, labels, init).write(str(path))
    assert main(["analyze", str(path), "--identifiability", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["identifiability"]
    assert report["counts"]["unknowns"] == 9 and report["counts"]["parameters"] == 13
    assert report["rank"]["ranks"][0] == 9 and report["rank"]["min_steps"] == 1
    assert report["symmetries"] == []
    assert main(["analyze", str(path), "--identifiability"]) == 0
    text = capsys.readouterr().out
    assert "9 unknowns; 13 equations per step" in text
    assert "locally identifiable from 1 steps" in text
