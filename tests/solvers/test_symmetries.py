"""solvers/symmetries.py: family symmetries found before solving, reported with their
names (never converged), and the square-trace flag."""

import mpmath

from symbolic_inversion import Network, Trace, simulate
from symbolic_inversion.solvers import Status, recover
from symbolic_inversion.solvers.symmetries import family_symmetries, moment_count


def kinds(trace):
    return [s["kind"] for s in family_symmetries(trace)]


def test_family_symmetries_follow_from_the_architecture():
    xs, ys = [["0.3"], ["-0.6"], ["0.8"]], [["0.1"], ["0.5"], ["-0.2"]]
    assert kinds(simulate(Network([1, 1], "tanh"), xs, ys, lr="0.1", epochs=6,
                          init=["0.5", "0.5"], dps=40)) == []
    assert kinds(simulate(Network([1, 1], "tanh", bias=False), xs, ys, lr="0.1", epochs=6,
                          init=["0.5"], dps=40)) == ["sign"]
    # sigmoid is not odd: no sign symmetry even without biases
    assert kinds(simulate(Network([1, 1], "sigmoid", bias=False), xs, ys, lr="0.1",
                          epochs=6, init=["0.5"], dps=40)) == []
    # a linear network sees 4 moments (sum x, x^2, y, xy) of 6 unknowns
    assert moment_count(Network([1, 1], "identity")) == 4
    assert kinds(simulate(Network([1, 1], "identity"), xs, ys, lr="0.1", epochs=6,
                          init=["0.5", "0.5"], dps=40)) == ["moments"]
    # zero outgoing weights at the one step used: no gradient reaches the first layer
    silent = simulate(Network([1, 2, 1], ["tanh", "identity"]), xs, ys, lr="0.1", epochs=1,
                      init=["0.5", "-0.3", "0.1", "0.2", "0", "0", "0.4"], dps=40)
    assert kinds(silent) == ["invisible_inputs"]


def test_sign_symmetry_is_not_unique_with_a_representative():
    xs, ys = [["0.4"], ["-0.7"]], [["0.2"], ["0.6"]]
    trace = simulate(Network([1, 1], "tanh", bias=False), xs, ys, lr="0.1", epochs=8,
                     init=["0.5"], dps=60)
    solution = recover(trace)
    assert solution.status is Status.NOT_UNIQUE
    assert [s["kind"] for s in solution.to_dict()["symmetries"]] == ["sign"]
    # the representative is the truth up to per-sample signs: (-0.7, 0.6) ~ (0.7, -0.6)
    with mpmath.workdps(60):
        found = sorted((abs(x[0]), y[0] if x[0] > 0 else -y[0])
                       for x, y in solution.samples)
        assert abs(found[0][0] - mpmath.mpf("0.4")) < 1e-40
        assert abs(found[1][1] - mpmath.mpf("-0.6")) < 1e-40


def test_square_trace_says_it_cannot_test_itself():
    xs, ys = ["0.2", "0.5", "0.7", "0.9"], ["0.4", "0.1", "0.8", "0.3"]
    exact = simulate(Network([1, 1], "tanh"), xs, ys, lr="0.1", epochs=4,
                     init=["0.5", "0.5"], dps=60)
    wrong_lr = Trace(Network([1, 1], "tanh"), "0.100001", 4, exact.parameters)
    solution = recover(wrong_lr)
    assert solution.square and solution.to_dict()["square"] is True
    if solution.status is Status.CONVERGED:
        assert "square trace" in solution.detail and "more step" in solution.detail
