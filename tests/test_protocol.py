"""Boer & Kramer's secure sum and its attacking party (issue 12)."""

import json

import mpmath
import pytest

from symbolic_inversion import InputError, Network, Trace, recover
from symbolic_inversion.cli import main
from symbolic_inversion.protocol import attacker_view, secure_sum_training
from symbolic_inversion.simulate import simulate
from symbolic_inversion.solvers.solution import Status

NET = Network([1, 1], "tanh")
PARTIES = [(["0.6", "0.2"], ["0.5", "0.4"]), (["0.1"], ["0.3"]),
           (["0.9", "0.7"], ["0.6", "0.2"])]
OTHERS = [(0.1, 0.3), (0.7, 0.2), (0.9, 0.6)]


@pytest.fixture(scope="module")
def trace():
    return secure_sum_training(NET, PARTIES, lr="0.1", epochs=6, init=["0.5", "0.5"], dps=60)


def _pairs(solution):
    return sorted((float(x[0]), float(y[0])) for x, y in solution.samples)


def test_the_broadcast_is_full_batch_gd_on_the_union(trace):
    union = simulate(NET, ["0.6", "0.2", "0.1", "0.9", "0.7"],
                     ["0.5", "0.4", "0.3", "0.6", "0.2"], lr="0.1", epochs=6,
                     init=["0.5", "0.5"], dps=60)
    assert trace.parameters == union.parameters


def test_attacker_recovers_the_other_three(trace):
    solution = recover(attacker_view(trace, PARTIES[0]))
    assert solution.status is Status.CONVERGED, solution.message
    assert _pairs(solution) == OTHERS
    assert solution.digits >= 40
    assert "not identifiable" in solution.detail and solution.stats["known"] == 2
    again = recover(trace, known=list(zip(*PARTIES[0])))
    assert _pairs(again) == OTHERS


def test_known_samples_from_the_command_line(trace, tmp_path, capsys):
    path = tmp_path / "trace.json"
    trace.write(str(path))
    own = tmp_path / "own.csv"
    own.write_text("0.6,0.5\n0.2,0.4\n")
    assert main(["recover", str(path), "--known", str(own), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "converged"
    got = sorted((float(s["x"][0]), float(s["y"][0])) for s in result["samples"])
    assert [tuple(round(v, 12) for v in pair) for pair in got] == OTHERS
    bad = tmp_path / "bad.csv"
    bad.write_text("0.6\n")
    assert main(["recover", str(path), "--known", str(bad)]) == 2
    assert "--known row 1" in capsys.readouterr().err


def test_known_field_round_trip_and_validation(trace):
    view = attacker_view(trace, PARTIES[0])
    data = json.loads(view.to_json())
    assert data["known"][0]["x"] == ["0.6"] and "index" in data["known"][0]
    assert Trace.from_json(view.to_json()).known == view.known
    with pytest.raises(InputError, match=r"^known\[0\]: "):
        trace.with_known([([0.6, 0.1], [0.5])])
    with pytest.raises(InputError, match=r"^known\[1\]\.index: "):
        trace.with_known([{"x": [1], "y": [1], "index": 0}, {"x": [1], "y": [1], "index": 0}])
    with pytest.raises(InputError, match="^known: "):
        trace.with_known([([0.1], [0.1])] * 5)


def test_known_samples_wrong_gives_no_convergence(trace):
    solution = recover(trace, known=[(["0.6"], ["0.5"]), (["0.2"], ["0.41"])])
    assert solution.status is not Status.CONVERGED
    with mpmath.workdps(20):
        assert solution.residual is None or solution.residual > 1e-20


@pytest.fixture(scope="module")
def two_samples():
    """The report's case (issue 27): two samples, one of them known, one left."""
    return simulate(NET, ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1", epochs=3,
                    init=["0.5", "0.5"], dps=60)


def _the_other_sample(solution):
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 40 and len(solution.samples) == 1
    (x,), (y,) = solution.samples[0]
    with mpmath.workdps(60):
        assert abs(x - mpmath.mpf("0.2")) < mpmath.mpf(10) ** -solution.digits
        assert abs(y - mpmath.mpf("0.4")) < mpmath.mpf(10) ** -solution.digits


def test_one_unknown_sample_left_by_the_closed_form(two_samples):
    # the ratio trick must divide the unknown sample's gradient, not the batch's
    solution = recover(two_samples, known=[(["0.6"], ["0.5"])])
    assert solution.stats["method"] == "closed_form"
    _the_other_sample(solution)
    _the_other_sample(recover(Trace.from_json(two_samples.with_known(
        [(["0.6"], ["0.5"])]).to_json())))                         # the trace's known field


def test_one_unknown_sample_left_on_the_command_line(two_samples, tmp_path, capsys):
    path, own = tmp_path / "t.json", tmp_path / "k.csv"
    two_samples.write(str(path))
    own.write_text("0.6,0.5\n")
    assert main(["recover", str(path), "--known", str(own), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "converged"
    assert [round(float(result["samples"][0][k][0]), 12) for k in "xy"] == [0.2, 0.4]


def test_one_unknown_sample_left_with_a_wrong_known_sample_is_not_converged(two_samples):
    solution = recover(two_samples, known=[(["0.6"], ["0.51"])])
    assert solution.status is not Status.CONVERGED
