"""solvers/options.py and recover(): options built once, validated, passed down."""

import mpmath
import pytest

from symbolic_inversion import InputError, Network, simulate
from symbolic_inversion.precision import default_dps
from symbolic_inversion.solvers import RecoverOptions, recover
from symbolic_inversion.solvers.options import make_options, solver
from symbolic_inversion.solvers.pipeline import solve_cold_start


@pytest.fixture(scope="module")
def trace():
    return simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
                    epochs=4, init=["0.5", "0.5"], dps=50)


def test_defaults_come_from_precision(trace):
    options = make_options(trace)
    assert options == RecoverOptions(dps=default_dps(trace))
    assert options.executor is None and options.progress is None


@pytest.mark.parametrize("bad", [dict(dps=5), dict(dps=True), dict(backend="gpu"),
                                 dict(seed="1"), dict(attempts=0), dict(max_seconds=-1),
                                 dict(max_seconds=float("nan")), dict(max_seconds="60")])
def test_bad_options_are_refused(trace, bad):
    with pytest.raises(InputError):
        recover(trace, **bad)


def test_old_call_styles_build_the_same_options(trace):
    seen = []

    @solver
    def probe(trace_, options, extra=None):
        seen.append((options, extra))
    probe(trace, 70, 3)
    probe(trace, dps=70, steps=3, extra=1)
    probe(trace, make_options(trace, dps=70), seed=4)
    assert seen[0][0] == seen[1][0] == make_options(trace, dps=70, steps=3)
    assert seen[1][1] == 1 and seen[2][0].seed == 4


def test_seed_backend_and_attempts_reach_the_solver(trace):
    before = mpmath.mp.dps
    solution = recover(trace, backend="mpmath", seed=3, attempts=2)
    assert mpmath.mp.dps == before
    assert solution.ok and solution.stats["backend"] == "mpmath"
    assert len(solution.stats["paths"]) <= 2
    again = solve_cold_start(trace, backend="mpmath", seed=3, attempts=2)
    assert [p["gamma"] for p in again.stats["paths"]] == \
        [p["gamma"] for p in solution.stats["paths"]]


def test_a_spent_time_budget_is_a_status_and_an_enclosing_one_still_ends_the_run():
    """``max_seconds``: the recovery stops at a safe point and says so (the paper's neuron
    with 8 samples from a cold start takes seconds; its budget is a hundredth of one).
    The budget of an enclosing block (a command's ``--max-seconds``) is not the
    recovery's to absorb: it still raises."""
    import time
    from symbolic_inversion import Status
    from symbolic_inversion.limits import BudgetExceeded, time_budget
    xs = ["0.61", "0.12", "0.93", "0.35", "0.77", "0.08", "0.49", "0.26"]
    ys = ["0.5", "0.4", "0.3", "0.9", "0.1", "0.7", "0.2", "0.8"]
    trace = simulate(Network([1, 1], "tanh"), xs, ys, lr="0.1", epochs=16,
                     init=["0.5", "0.5"], dps=72)
    started = time.perf_counter()
    solution = recover(trace, max_seconds=0.01)
    assert time.perf_counter() - started < 5
    assert solution.status is Status.NOT_CONVERGED and not solution.samples
    assert "time budget of 0.01 s" in solution.detail
    with pytest.raises(BudgetExceeded):
        with time_budget(0.01):
            recover(trace, max_seconds=60)
