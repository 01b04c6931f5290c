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
    # sigmoid is odd about (0, 1/2): without biases (x, y) -> (-x, 1 - y)
    assert kinds(simulate(Network([1, 1], "sigmoid", bias=False), xs, ys, lr="0.1",
                          epochs=6, init=["0.5"], dps=40)) == ["sign"]
    # ... but not as a hidden layer: its offset passes through the next layer's weights
    assert kinds(simulate(Network([1, 2, 1], ["sigmoid", "identity"], bias=False), xs, ys,
                          lr="0.1", epochs=6, init=["0.5", "-0.3", "0.2", "0.4"],
                          dps=40)) == []
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


def _flipped_residual(network, xs, ys, init, offset, flip):
    """Largest residual of the exact trace's system at the data with the samples in
    ``flip`` mapped by (x, y) -> (-x, offset - y): zero iff the map is a symmetry."""
    from symbolic_inversion import InversionSystem
    trace = simulate(network, xs, ys, lr="0.3", epochs=3, init=init, dps=50)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(70):
        inputs = [[-mpmath.mpf(v) if i in flip else mpmath.mpf(v) for v in x]
                  for i, x in enumerate(xs)]
        labels = [[offset - mpmath.mpf(v) if i in flip else mpmath.mpf(v) for v in y]
                  for i, y in enumerate(ys)]
        return max(abs(r) for r in system.residual(inputs, labels))


def test_the_sigmoid_output_symmetry_leaves_every_gradient_unchanged():
    from symbolic_inversion.solvers.symmetries import sign_offset
    xs, ys = [["0.3", "-0.6"], ["0.8", "0.1"]], [["0.7"], ["0.2"]]
    odd_then_sigmoid = Network([2, 2, 1], ["tanh", "sigmoid"], bias=False)
    init = ["0.5", "-0.3", "0.1", "0.2", "0.4", "-0.6"]
    assert sign_offset(odd_then_sigmoid) == 1
    assert _flipped_residual(odd_then_sigmoid, xs, ys, init, 1, {1}) < 1e-45
    # the offset must be 1: with 0 (the odd networks' map) the gradients change
    assert _flipped_residual(odd_then_sigmoid, xs, ys, init, 0, {1}) > 1e-3
    # a sigmoid hidden layer has no such map
    hidden = Network([2, 2, 1], ["sigmoid", "identity"], bias=False)
    assert sign_offset(hidden) is None
    assert min(_flipped_residual(hidden, xs, ys, init, c, {1}) for c in (0, 1)) > 1e-3


def test_a_sigmoid_output_without_biases_is_not_unique_up_to_the_map():
    # found by an acceptance sweep: reported converged with the sample mapped
    from symbolic_inversion.solvers.symmetries import canonical_vector
    network = Network([2, 1], ["sigmoid"], bias=False)
    xs, ys = [["-0.9793", "-0.8576"]], [["0.7889"]]
    trace = simulate(network, xs, ys, lr="0.3", epochs=4, init=["0.265100", "0.274344"],
                     dps=80)
    solution = recover(trace)
    assert solution.status is Status.NOT_UNIQUE, solution.message
    symmetry = solution.to_dict()["symmetries"][0]
    assert symmetry["kind"] == "sign" and symmetry["label_offset"] == 1
    with mpmath.workdps(100):
        truth = canonical_vector(trace, [mpmath.mpf(v) for v in xs[0] + ys[0]])
        found = canonical_vector(trace, list(solution.samples[0][0]) +
                                 list(solution.samples[0][1]))
        assert max(abs(a - b) for a, b in zip(truth, found)) < mpmath.mpf(10) ** -60
