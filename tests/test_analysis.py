"""Conditioning analysis: singular values, digits needed, accuracy a trace supports.

Singular values are checked against numpy's SVD of a central-difference Jacobian of the
residual (independent of the analytic Jacobian); accuracy claims against the data that
generated the trace.
"""

import json
import random

import mpmath
import numpy as np

from symbolic_inversion import InversionSystem, Network, Trace, simulate
from symbolic_inversion.analysis import (analyze, condition_number, digits_needed,
                                         jacobian_singular_values, supported_accuracy)
from symbolic_inversion.cli import main
from symbolic_inversion.solvers import recover

NEURON = Network([1, 1], "tanh")


def dataset(n, seed):
    rng = random.Random(seed)
    return ([f"{rng.uniform(0, 1):.6f}" for _ in range(n)],
            [f"{rng.uniform(0, 1):.6f}" for _ in range(n)])


def as_data(values):
    return [[mpmath.mpf(v)] for v in values]


def test_singular_values_match_a_finite_difference_jacobian():
    xs, ys = dataset(3, 1)
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=6, init=["0.5", "0.5"], dps=60)
    values = jacobian_singular_values(trace, as_data(xs), as_data(ys), dps=60)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(60):
        point = [mpmath.mpf(v) for pair in zip(xs, ys) for v in pair]
        h = mpmath.mpf(10) ** -20
        columns = []
        for k in range(len(point)):
            up, down = list(point), list(point)
            up[k] += h
            down[k] -= h
            split = lambda u: ([[u[2 * i]] for i in range(3)], [[u[2 * i + 1]] for i in range(3)])  # noqa
            difference = [(a - b) / (2 * h) for a, b in
                          zip(system.residual(*split(up)), system.residual(*split(down)))]
            columns.append([float(v) for v in difference])
    reference = np.linalg.svd(np.array(columns).T, compute_uv=False)
    assert np.allclose([float(v) for v in values], reference, rtol=1e-6, atol=0)


def test_condition_number_grows_about_two_digits_per_sample():
    logs = []
    for n in (2, 4, 6):
        xs, ys = dataset(n, n)
        trace = simulate(NEURON, xs, ys, lr="0.1", epochs=2 * n, init=["0.5", "0.5"],
                         dps=80)
        logs.append(float(mpmath.log10(condition_number(trace, as_data(xs), as_data(ys)))))
    slope = (logs[2] - logs[0]) / 4
    assert logs[0] < logs[1] < logs[2]
    assert 1.2 < slope < 3.5


def test_too_few_steps_have_infinite_condition_number():
    xs, ys = dataset(3, 2)
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=2, init=["0.5", "0.5"], dps=40)
    assert condition_number(trace, as_data(xs), as_data(ys)) == mpmath.inf


def test_supported_accuracy_bounds_the_actual_error_of_a_rounded_trace():
    xs, ys = dataset(3, 5)
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=6, init=["0.5", "0.5"], dps=20)
    solution = recover(trace)
    assert solution.ok
    bound, digits = supported_accuracy(trace, solution.inputs, solution.labels)
    with mpmath.workdps(40):
        truth = sorted(zip(map(mpmath.mpf, xs), map(mpmath.mpf, ys)))
        found = sorted((x[0], y[0]) for x, y in solution.samples)
        error = max(max(abs(a - c), abs(b - d)) for (a, b), (c, d) in zip(truth, found))
    assert error <= bound
    assert bound < 1e-8 and digits >= 8


def test_digits_needed_rises_with_samples_and_accuracy():
    two = digits_needed(2, accuracy=6, trials=1)
    four = digits_needed(4, accuracy=6, trials=1)
    more = digits_needed(2, accuracy=10, trials=1)
    assert four["digits"] > two["digits"]
    assert more["digits"] == two["digits"] + 4


def test_a_trace_with_the_needed_digits_delivers_the_accuracy():
    n = 3
    row = digits_needed(n, accuracy=6, trials=1, seed=4)
    rng = random.Random(4)
    xs = [f"{rng.uniform(0, 1):.6f}" for _ in range(n)]
    ys = [f"{rng.uniform(0, 1):.6f}" for _ in range(n)]
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=2 * n, init=["0.5", "0.5"],
                     dps=row["digits"] + 1)
    solution = recover(trace)
    assert solution.ok
    with mpmath.workdps(60):
        truth = sorted(zip(map(mpmath.mpf, xs), map(mpmath.mpf, ys)))
        found = sorted((x[0], y[0]) for x, y in solution.samples)
        error = max(max(abs(a - c), abs(b - d)) for (a, b), (c, d) in zip(truth, found))
    assert error < 1e-6


def test_analyze_api_and_cli(tmp_path, capsys):
    xs, ys = dataset(3, 8)
    trace = simulate(NEURON, xs, ys, lr="0.1", epochs=6, init=["0.5", "0.5"], dps=50)
    result = analyze(trace)
    assert result["ok"] and len(result["singular_values"]) == 6
    assert result["digits_supported"] + result["digits_lost"] == trace.digits
    path = tmp_path / "trace.json"
    trace.write(path)
    assert main(["analyze", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["log10_condition"] == result["log10_condition"]
    noise = Trace(NEURON, "0.1", 3, [["0.5", "0.5"], ["0.49", "0.47"], ["0.4", "0.47"]])
    noise.write(path)
    assert main(["analyze", str(path)]) == 1
