"""The loss convention as a trace field (issue 12): ``mean`` is ``sum_outputs / m``."""

from fractions import Fraction

import mpmath
import sympy as sp

from symbolic_inversion import InversionSystem, Network, Trace, recover
from symbolic_inversion.simulate import resimulate, simulate
from symbolic_inversion.solvers.solution import Status

NET = Network([1, 2], "tanh")
X, Y = [["0.3"], ["0.8"]], [["0.1", "0.5"], ["0.4", "0.2"]]


def test_mean_is_sum_outputs_with_lr_over_m():
    # GD on the mean loss with lr is GD on the toolkit's loss with lr / m (m = 2)
    mean = simulate(NET, X, Y, lr="0.2", epochs=3, init=["0.5", "0.1", "0.3", "0.7"],
                    dps=40, loss_reduction="mean")
    summed = simulate(NET, X, Y, lr="0.1", epochs=3, init=["0.5", "0.1", "0.3", "0.7"],
                      dps=40)
    assert mean.loss_reduction == "mean" and summed.loss_reduction == "sum_outputs"
    for a, b in zip(mean.parameters, summed.parameters):
        assert all(abs(u - v) < mpmath.mpf(10) ** -38 for u, v in
                   zip(map(mpmath.mpf, map(str, a)), map(mpmath.mpf, map(str, b))))
    assert mean.to_dict()["loss_reduction"] == "mean"
    assert "loss_reduction" not in summed.to_dict()
    assert Trace.from_json(mean.to_json()).loss_reduction == "mean"


def test_the_factor_shows_in_the_equations():
    trace = simulate(NET, X, Y, lr="0.2", epochs=2, init=["0.5", "0.1", "0.3", "0.7"],
                     dps=30, loss_reduction="mean")
    mean = InversionSystem.from_trace(trace).general_equations()
    plain = InversionSystem(NET, samples=2, steps=2).general_equations()
    n, eta = sp.symbols("n eta", positive=True)
    for a, b in zip(mean, plain):
        assert a.lhs == b.lhs
        assert sp.simplify(a.rhs - 2 * b.rhs) == 0  # m n / (2 eta), m = 2
        assert not sp.simplify(a.rhs * eta / n).has(n, eta)  # n (a - b) / eta
    # the instantiated right-hand sides carry the factor too (exactly)
    system = InversionSystem.from_trace(trace)
    gradients = trace.optimizer.observed_gradients(
        [[Fraction(v) for v in theta] for theta in trace.parameters])
    # |B| / 2 = 1, times m = 2
    assert system.right_hand_sides()[0] == [2 * g for g in gradients[0]]


def test_mean_trace_recovers_and_replays():
    trace = simulate(NET, X, Y, lr="0.2", epochs=4, init=["0.5", "0.1", "0.3", "0.7"],
                     dps=50, loss_reduction="mean")
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    got = sorted((float(x[0]), [float(v) for v in y]) for x, y in solution.samples)
    assert got == [(0.3, [0.1, 0.5]), (0.8, [0.4, 0.2])]
    assert resimulate(trace, [(x, y) for x, y in zip(X, Y)]).min_digits == 50
    # read with the wrong convention, no dataset explains the trace, and the message says
    # which conventions exist
    wrong = Trace(NET, trace.lr, 2, trace.parameters)
    other = recover(wrong)
    assert other.status is not Status.CONVERGED
