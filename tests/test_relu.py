"""ReLU networks: exact recovery of batches from one step (symbolic_inversion.solvers.relu)."""

import json
from fractions import Fraction

import numpy as np
import pytest

from symbolic_inversion import Network, recover, simulate
from symbolic_inversion import rational
from symbolic_inversion.cli import main
from symbolic_inversion.errors import InputError, NotSupportedError
from symbolic_inversion.program import layerwise_program
from symbolic_inversion.solvers import Status
from symbolic_inversion.solvers.relu import find_patterns, realizable
from symbolic_inversion.solvers.solution import Solution, same_dataset


def _decimal(value, places):
    text = f"{value:.{places}f}"
    # "0.000" would make the trace's resolution that of a 1-digit number
    return text if float(text) else "0." + "0" * (places - 1) + "1"


def _problem(layers, n, seed, bias=True):
    """Random short-decimal data and parameters (exact GD steps stay short decimals)."""
    rng = np.random.default_rng(seed)
    network = Network(layers, ["relu"] * (len(layers) - 2) + ["identity"], bias=bias)
    X = [[_decimal(v, 2) for v in rng.uniform(-1, 1, layers[0])] for _ in range(n)]
    Y = [[_decimal(v, 2) for v in rng.uniform(-1, 1, layers[-1])] for _ in range(n)]
    init = [_decimal(v, 3) for v in rng.normal(0, 1 / np.sqrt(layers[0]),
                                               network.num_parameters)]
    return network, X, Y, init


def _exact_multiset(samples):
    return sorted((tuple(Fraction(v) for v in x), tuple(Fraction(v) for v in y))
                  for x, y in samples)


def _floats(samples):
    return [([float(v) for v in x], [float(v) for v in y]) for x, y in samples]


@pytest.mark.slow
def test_batch_of_32_through_100_256_1_from_one_exact_step():
    network, X, Y, init = _problem([100, 256, 1], 32, seed=1)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.stats["method"] == "relu" and solution.stats["exact"]
    assert all(isinstance(v, Fraction) for x, y in solution.samples for v in x + y)
    assert _exact_multiset(solution.samples) == _exact_multiset(zip(X, Y))
    assert solution.residual == 0 and solution.digits == 10 ** 6
    assert solution.stats["time"] < 60


def test_depth_two_and_two_outputs_exact():
    network, X, Y, init = _problem([5, 12, 10, 2], 4, seed=3)
    trace = simulate(network, X, Y, lr="0.1", epochs=2, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.CONVERGED and solution.stats["exact"]
    assert _exact_multiset(solution.samples) == _exact_multiset(zip(X, Y))


def test_depth_two_and_two_outputs_from_a_rounded_trace():
    network, X, Y, init = _problem([5, 12, 10, 2], 4, seed=3)
    trace = simulate(network, X, Y, lr="0.1", epochs=2, init=init, dps=40)
    solution = recover(trace)
    assert solution.status is Status.CONVERGED and not solution.stats["exact"]
    assert solution.digits >= 30
    assert same_dataset(_floats(solution.samples), _floats(zip(X, Y)), 1e-12)


def test_float64_trace_gives_the_data_to_the_digits_vouched_for():
    network, X, Y, init = _problem([20, 64, 1], 8, seed=4)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="numpy")
    solution = recover(trace)
    assert solution.status is Status.CONVERGED and not solution.stats["exact"]
    assert 6 <= solution.digits <= 16
    assert same_dataset(_floats(solution.samples), _floats(zip(X, Y)),
                        10.0 ** -solution.digits)


def test_without_bias_one_step_leaves_a_positive_scale_per_sample():
    network, X, Y, init = _problem([6, 16, 1], 4, seed=3, bias=False)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.NOT_UNIQUE
    assert [s["kind"] for s in solution.symmetries] == ["positive_scale"]
    assert "positive scale" in solution.symmetries[0]["message"]
    # directions are exact: each recovered input is a positive multiple of a true one
    truth = [[Fraction(v) for v in x] for x in X]
    for x, _ in solution.samples:
        ratios = [[a / b for a, b in zip(x, t)] for t in truth]
        assert any(len(set(r)) == 1 and r[0] > 0 for r in ratios)


def test_without_bias_a_second_step_fixes_the_scales_exactly():
    network, X, Y, init = _problem([6, 16, 1], 4, seed=3, bias=False)
    trace = simulate(network, X, Y, lr="0.1", epochs=2, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.CONVERGED and solution.stats["scales"] == "from step 1"
    assert _exact_multiset(solution.samples) == _exact_multiset(zip(X, Y))


def _invisible_problem(duplicate):
    """Every first-layer neuron weighs input 0 positively: x[0] = -9 switches all off."""
    network = Network([4, 8, 1], ["relu", "identity"])
    rng = np.random.default_rng(5)
    W1 = [[_decimal(abs(row[0]) + 0.1, 2)] + [_decimal(v, 2) for v in row[1:]]
          for row in rng.normal(size=(8, 4))]
    init = [v for row in W1 for v in row] + ["0.1"] * 8 + \
        [_decimal(v, 2) for v in rng.normal(size=8)] + ["0.2"]
    X = [["0.5", "0.3", "0.1", "-0.2"], ["0.9", "-0.4", "0.6", "0.3"],
         ["0.2", "0.8", "-0.5", "0.4"], ["-9", "0.1", "0.2", "0.3"]]
    if duplicate:
        X[3] = X[0]
    Y = [["0.1"], ["0.4"], ["-0.3"], ["0.6"]]
    return network, X, Y, init


@pytest.mark.parametrize("duplicate,word", [(False, "invisible"), (True, "duplicate")])
def test_invisible_or_duplicate_samples_are_reported_not_guessed(duplicate, word):
    # sample 3 is inactive at every neuron, or a copy of sample 0's input
    network, X, Y, init = _invisible_problem(duplicate)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.UNIDENTIFIABLE
    assert word in solution.detail and len(solution.samples) == 3
    if not duplicate:  # the three visible samples are exact
        assert _exact_multiset(solution.samples) == _exact_multiset(list(zip(X, Y))[:3])


def test_more_samples_than_the_rank_bound_is_underdetermined():
    network, X, Y, init = _problem([2, 8, 1], 4, seed=6)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.UNDERDETERMINED and "rank bound" in solution.detail


def test_flint_and_fractions_give_identical_results(monkeypatch):
    network, X, Y, init = _problem([10, 24, 1], 8, seed=7)
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    with_flint = recover(trace)
    monkeypatch.setattr(rational, "_FLINT", None)
    assert not rational.flint_available()
    without = recover(trace, method="relu")
    assert with_flint.status is without.status is Status.CONVERGED
    assert with_flint.samples == without.samples
    assert without.stats["flint"] is False


def test_exact_linear_algebra_agrees_with_and_without_flint(monkeypatch):
    rng = np.random.default_rng(0)
    A = [[Fraction(int(v), 7) for v in row] for row in rng.integers(-9, 9, (5, 5))]
    B = [[Fraction(int(v), 3) for v in row] for row in rng.integers(-9, 9, (5, 2))]
    singular = [[1, 2, 3], [2, 4, 6], [0, 1, 1]]
    results = []
    for flint in (rational._FLINT, None):
        monkeypatch.setattr(rational, "_FLINT", flint)
        results.append((rational.solve(A, B), rational.matmul(A, B), rational.rref(singular),
                        rational.nullspace(singular), rational.solve(singular, [[1], [2], [3]])))
    assert results[0] == results[1]
    X = results[0][0]
    assert rational.matmul(A, X) == B and results[0][4] is None


def test_patterns_are_found_by_the_two_level_search():
    # 64 neurons (too many to try every pattern): the search finds all 12
    rng = np.random.default_rng(2)
    W1, b1 = rng.normal(size=(64, 16)), rng.normal(size=64) * 0.1
    X, r, w2 = rng.uniform(-1, 1, (12, 16)), rng.normal(size=12), rng.normal(size=64)
    S = (X @ W1.T + b1 > 0)
    G = ((S * r[:, None]).T * w2[:, None]) @ np.hstack([X, np.ones((12, 1))])
    # a coincidental binary vector in the column space (s_5 + s_6 - s_11 here) is no
    # cell of the hyperplane arrangement: realizable() rejects it
    rowspace = np.linalg.svd(G, full_matrices=False)[2][:12]
    accept = realizable(np.hstack([W1, b1[:, None]]), rowspace, bias=True, nonnegative=False)
    patterns, how = find_patterns(G, w2[None, :], 12, accept=accept)
    assert "two-level" in how
    assert sorted(p.tobytes() for p in patterns) == sorted(s.tobytes() for s in S)


def test_exact_simulation_refuses_steps_that_do_not_terminate():
    network, X, Y, init = _problem([2, 4, 1], 3, seed=1)
    with pytest.raises(InputError, match="terminating decimal"):
        simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    # lr * 2 / 3 = 0.2 terminates
    trace = simulate(network, X, Y, lr="0.3", epochs=1, init=init, backend="exact")
    assert trace.steps == 1


def test_piecewise_gradient_matches_the_symbolic_network():
    network, X, Y, init = _problem([3, 5, 2], 2, seed=8)
    theta = [Fraction(v) for v in init]
    exact_gradient = [Fraction(str(v)) for v in layerwise_program(network).mean_gradient(
        theta, [[Fraction(v) for v in x] for x in X], [[Fraction(v) for v in y] for y in Y],
        "rational")]
    symbolic = network.gradient(X and [[Fraction(v) for v in x] for x in X],
                                [[Fraction(v) for v in y] for y in Y],
                                theta=[Fraction(v) for v in init])
    assert [Fraction(str(v)) for v in symbolic] == exact_gradient


def test_unsupported_networks_are_refused_by_name():
    trace = simulate(Network([2, 3, 1], ["tanh", "identity"]), [["0.1", "0.2"], ["0.3", "0.4"]],
                     [["0.5"], ["0.6"]], lr="0.1", epochs=1, init=None, seed=1, dps=20)
    with pytest.raises(NotSupportedError, match="relu in every hidden layer"):
        recover(trace, method="relu")


def test_exact_numbers_print_exactly_in_json():
    solution = Solution([([Fraction(1, 8)], [Fraction(1, 3)])], Status.CONVERGED,
                        Fraction(0), 10 ** 6)
    data = solution.to_dict()
    assert data["samples"] == [{"x": ["0.125"], "y": ["1/3"]}] and data["residual"] == "0"
    assert "x = [0.125]  y = [1/3]" in str(solution)


@pytest.mark.parametrize("backend,lr", [("mpmath", "0.1"), ("exact", "0.3")])
def test_cli_recovers_three_samples_of_a_2_4_1_relu_network(tmp_path, capsys, backend, lr):
    data = tmp_path / "data.csv"
    data.write_text("0.3,0.6,0.5\n-0.4,0.8,0.2\n0.7,-0.2,-0.3\n")
    trace = tmp_path / "trace.json"
    init = "0.5,-0.3,0.4,0.6,-0.2,0.8,0.7,0.1,0.1,-0.1,0.2,0.3,0.6,-0.5,0.4,0.7,0.2"
    assert main(["simulate", "--layers", "2,4,1", "--activation", "relu,identity",
                 "--data", str(data), "--init", init, "--epochs", "2", "--lr", lr,
                 "--backend", backend, "-o", str(trace)]) == 0
    capsys.readouterr()
    assert main(["recover", str(trace), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "converged" and result["stats"]["method"] == "relu"
    found = [([float(v) for v in s["x"]], [float(v) for v in s["y"]])
             for s in result["samples"]]
    truth = [([0.3, 0.6], [0.5]), ([-0.4, 0.8], [0.2]), ([0.7, -0.2], [-0.3])]
    assert same_dataset(found, truth, 1e-30)
    if backend == "exact":
        assert sorted(s["x"][0] for s in result["samples"]) == ["-0.4", "0.3", "0.7"]


def test_the_documentation_example_is_true():
    import doctest
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "relu.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    test = doctest.DocTestParser().get_doctest(example, {}, "relu.md", "relu.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 6


def test_homotopy_paths_refuse_relu_with_a_message_not_a_crash():
    # version 0.1.0: NameError (DiracDelta) on the mpmath backend
    from symbolic_inversion.solvers.pipeline import run_pipeline
    network, X, Y, init = _problem([2, 4, 1], 3, seed=1)
    trace = simulate(network, X, Y, lr="0.3", epochs=1, init=init, backend="exact")
    with pytest.raises(NotSupportedError, match="method='relu'"):
        run_pipeline(trace, "homotopy", backend="mpmath")


def test_a_zero_pre_activation_at_a_kink_is_said():
    network, X, Y, init = _problem([4, 12, 1], 4, seed=9)
    # neuron 0: 0.5 x0 + 0.5 x1 - 0.5 = 0 exactly at sample 0
    init[0:4] = ["0.5", "0.5", "0.0001", "0.0001"]
    init[48] = "-0.5"
    X[0] = ["0.6", "0.4", "0", "0"]
    trace = simulate(network, X, Y, lr="0.1", epochs=1, init=init, backend="exact")
    solution = recover(trace)
    assert solution.status is Status.CONVERGED
    assert "kink" in solution.detail and "relu'(0) = 0" in solution.detail
    assert _exact_multiset(solution.samples) == _exact_multiset(zip(X, Y))


def test_a_trace_whose_samples_no_unit_sees_is_unidentifiable_not_inconsistent():
    # both samples in the dead region of both hidden units at every step: the first
    # layer's gradient is zero, and the data leave no trace there (an acceptance sweep
    # found this exact trace called inconsistent)
    network = Network([2, 2, 1], ["relu", "identity"], bias=True)
    xs = [["-0.960532", "0.169380"], ["0.444362", "-0.409346"]]
    ys = [["-0.383470"], ["0.907340"]]
    init = ["0.889836", "0.635326", "-0.259016", "0.307848", "-0.413280", "-0.321603",
            "-0.710014", "0.442120", "-0.743515"]
    trace = simulate(network, xs, ys, lr="0.3", epochs=2, init=init, dps=80)
    first_layer = trace.observed_gradients()[0][:6]
    assert all(g == 0 for g in first_layer)
    solution = recover(trace)
    assert solution.status is Status.UNIDENTIFIABLE, solution.message
    assert "no sample is visible" in solution.message
