"""Plots drawn from real results: the figure has as many lines and points as the result
has paths, unknowns, steps or kinks.

References: the recovery's own statistics (paths, steps used), the system's counts, and
the kinks of a ReLU loss worked out by hand (roots of linear pre-activations).
"""

import json
import subprocess
import sys
from fractions import Fraction

import matplotlib
import mpmath
import numpy as np
import pytest

from symbolic_inversion import Network, recover, simulate
from symbolic_inversion.plot import (error_record, plot_analysis, plot_loss_line, plot_paths,
                                     plot_precision_law, plot_residuals, plot_singular_values)

matplotlib.use("Agg", force=False)  # tests draw off screen whatever MPLBACKEND says


@pytest.fixture(scope="module")
def square_trace():
    """Three samples, three steps: as many equations as unknowns, so two paths run."""
    return simulate(Network([1, 1], "tanh"), ["0.6", "0.2", "0.9"], ["0.5", "0.4", "0.1"],
                    lr="0.1", epochs=3, init=["0.5", "0.5"], dps=50)


def test_paths_one_line_per_unknown_and_path(square_trace):
    solution = recover(square_trace, method="moments", record_paths=True)
    paths = solution.stats["paths"]
    assert solution.ok and len(paths) == 2
    ax = plot_paths(solution)
    assert len(ax.lines) == 2 * 6
    # every path starts at t = 0, ends at t = 1, and its end is the recovered data
    for path in paths:
        assert path["points"][0][0] == 0.0 and path["points"][-1][0] == 1.0
        end = sorted((round(p[0], 9), round(q[0], 9)) for p, q in
                     zip(path["points"][-1][1][0::2], path["points"][-1][1][1::2]))
        assert end == [(0.2, 0.4), (0.6, 0.5), (0.9, 0.1)]
        assert max(abs(v[1]) for v in path["points"][-1][1]) < 1e-20
    # start and end markers: two scatter collections per unknown and path
    assert len(ax.collections) == 2 * 2 * 6
    assert len(plot_paths(solution, unknowns=[0, 1]).lines) == 2 * 2


def test_paths_are_not_recorded_unless_asked(square_trace):
    solution = recover(square_trace)
    assert all("points" not in p for p in solution.stats["paths"])
    with pytest.raises(Exception, match="record_paths=True"):
        plot_paths(solution)


def test_singular_values_and_residuals(square_trace):
    solution = recover(square_trace)
    ax = plot_singular_values(square_trace, solution)
    values = ax.lines[0].get_ydata()
    assert len(values) == 6 and list(values) == sorted(values, reverse=True)
    ax = plot_residuals(square_trace, solution)
    residuals, tolerance = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()[0]
    assert len(residuals) == solution.stats["steps_used"] == 3
    # an exactly zero residual (possible in mpmath) has no logarithm: a gap in the plot
    from symbolic_inversion.report.plot import step_residuals
    exact = [r == 0 for r in step_residuals(square_trace, solution)]
    assert [not np.isfinite(r) for r in residuals] == exact
    assert max(r for r, zero in zip(residuals, exact) if not zero) <= tolerance
    assert len(plot_analysis(square_trace, solution).axes) == 2


def test_precision_law_measured_beside_predicted():
    network = Network([1, 1], "tanh")
    xs, ys = ["0.6", "0.2", "0.9", "0.35"], ["0.5", "0.4", "0.1", "0.7"]
    records = []
    for digits in (16, 24, 32):
        trace = simulate(network, xs, ys, lr="0.1", epochs=8, init=["0.5", "0.5"],
                         dps=digits)
        records.append(error_record(recover(trace), [[x] for x in xs], [[y] for y in ys],
                                    trace))
    assert [r["status"] for r in records] == ["converged"] * 3
    # the bound holds, and more digits in the trace give a smaller error
    assert all(r["error"] <= r["error_bound"] for r in records)
    assert records[0]["error"] > records[1]["error"] > records[2]["error"]
    ax = plot_precision_law(records, against="digits")
    measured, predicted = ax.lines
    assert list(measured.get_xdata()) == [16, 24, 32]
    assert list(measured.get_ydata()) == pytest.approx(
        [float(mpmath.log10(r["error"])) for r in records])
    assert len(predicted.get_ydata()) == 3


def test_loss_line_kinks_are_the_roots_of_the_pre_activations():
    from symbolic_inversion.oracle import LossOracle
    network = Network([2, 2, 1], ["relu", "identity"])
    inputs = [[Fraction(1, 2), Fraction(3)], [Fraction(-2), Fraction(1)]]
    oracle = LossOracle(network, inputs, [["2"], ["-1/3"]])
    # theta = (W1 row 0, W1 row 1, b1, W2, b2); move only the first layer
    base = [Fraction(v) for v in (1, -1, "1/2", 1, "1/4", "-1/3", 2, 1, 0)]
    direction = [Fraction(v) for v in (1, 2, -1, "1/2", 1, -1, 0, 0, 0)]
    expected = []
    for x in inputs:
        for k in range(2):
            # z(t) = (W1[k] + t dW1[k]) . x + b1[k] + t db1[k]: linear in t
            z0 = base[2 * k] * x[0] + base[2 * k + 1] * x[1] + base[4 + k]
            z1 = direction[2 * k] * x[0] + direction[2 * k + 1] * x[1] + direction[4 + k]
            if z1 and -1 < -z0 / z1 < 1:
                expected.append(-z0 / z1)
    ax = plot_loss_line(oracle, base, direction, points=41)
    assert sorted(ax.kinks) == sorted(expected) and len(expected) == 2
    assert len(ax.lines) == 1 + len(expected)
    assert len(ax.lines[0].get_xdata()) == 41


def test_cli_draws_analysis_and_paths(tmp_path, square_trace):
    trace_file = tmp_path / "trace.json"
    square_trace.write(trace_file)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "symbolic_inversion", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    paths_png, analysis_png = tmp_path / "paths.png", tmp_path / "analysis.png"
    result = run("recover", trace_file, "--json", "--plot-paths", paths_png)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "converged"
    assert paths_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run("analyze", trace_file, "--plot", analysis_png)
    assert result.returncode == 0, result.stderr
    assert analysis_png.stat().st_size > 10_000


def test_cli_writes_a_figure_exactly_where_it_says(tmp_path, capsys):
    # issue 27: "--plot-paths DIR" printed "wrote DIR" while matplotlib wrote DIR.png
    from symbolic_inversion.cli import main
    trace_file = tmp_path / "trace.json"
    simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1", epochs=3,
             init=["0.5", "0.5"], dps=30).write(trace_file)
    for name, magic in (("paths", b"\x89PNG"), ("paths.svg", b"<?xml"),
                        ("paths.PDF", b"%PDF")):
        target = tmp_path / name
        assert main(["recover", str(trace_file), "--plot-paths", str(target)]) == 0
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"wrote {target}"
        assert target.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["paths", "paths.PDF", "paths.svg", "trace.json"]
    folder = tmp_path / "figures"
    folder.mkdir()
    for target, words in ((folder, "a directory (a figure must be a regular file"),
                          (tmp_path / "paths.xyz", "matplotlib writes")):
        assert main(["recover", str(trace_file), "--plot-paths", str(target)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and words in err and len(err.strip().splitlines()) == 1
    assert list(folder.iterdir()) == [] and not (tmp_path / "paths.xyz").exists()
