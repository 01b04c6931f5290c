"""DP-SGD as a defence (issue 12): noisy traces are never converged; the estimate and its
standard errors come from the stated noise level."""

import mpmath
import pytest

from symbolic_inversion import InputError, Network, recover
from symbolic_inversion.dpsgd import dp_parameters, dp_sgd_training
from symbolic_inversion.simulate import simulate
from symbolic_inversion.solvers.solution import Status

NET = Network([1, 1], "tanh")
X, Y = ["0.6", "0.2"], ["0.5", "0.4"]


def test_without_noise_or_clipping_it_is_float64_gd():
    dp = dp_sgd_training(NET, X, Y, lr="0.1", epochs=3, noise_multiplier="0",
                         max_grad_norm="1000", init=["0.5", "0.5"])
    plain = simulate(NET, X, Y, lr="0.1", epochs=3, init=["0.5", "0.5"], dtype="float64")
    for a, b in zip(dp.parameters, plain.parameters):
        assert all(abs(float(u) - float(v)) < 1e-15 for u, v in zip(a, b))


@pytest.mark.slow
@pytest.mark.parametrize("sigma", ["0.001", "0.1"])
def test_noisy_traces_are_never_converged(sigma):
    trace = dp_sgd_training(NET, X, Y, lr="0.1", epochs=4, noise_multiplier=sigma,
                            max_grad_norm="1.0", init=["0.5", "0.5"], seed=0)
    solution = recover(trace)
    assert solution.status is Status.NOISY, solution.message
    errors = [mpmath.mpf(e) for e in solution.stats["standard_errors"]]
    assert len(errors) == 4 and all(e > 0 for e in errors)
    # standard errors scale with the noise: at 0.001 the inputs are known to about 0.05
    if sigma == "0.001":
        assert max(errors) < 0.1
        got = sorted(float(x[0]) for x in solution.inputs)
        assert abs(got[0] - 0.2) < 3 * 0.1 and abs(got[1] - 0.6) < 3 * 0.1
    else:
        assert "hides the data" in solution.detail
    trace.extra.clear()  # the observer does not know the noise level: still not converged
    assert recover(trace).status is not Status.CONVERGED


def test_dp_field_validation():
    trace = dp_sgd_training(NET, X, Y, lr="0.1", epochs=2, noise_multiplier="1",
                            max_grad_norm="1", init=["0.5", "0.5"])
    trace.extra["dp_sgd"] = {"noise_multiplier": "1"}
    with pytest.raises(InputError, match=r"^dp_sgd\.max_grad_norm: missing"):
        dp_parameters(trace)
    with pytest.raises(InputError, match="^max_grad_norm: "):
        dp_sgd_training(NET, X, Y, lr="0.1", epochs=2, noise_multiplier="1",
                        max_grad_norm="0")


def test_clipping_at_the_estimate_takes_the_precision_out_of_the_headline():
    # issue 27: per-sample gradients of norm up to 2.4 clipped to 1; the least-squares
    # estimate (which does not model clipping) lands far from the truth, while the noise
    # alone gives standard errors of about 0.02
    X2, Y2 = ["0.97", "-0.5"], ["-0.8", "0.9"]
    trace = dp_sgd_training(NET, X2, Y2, lr="0.1", epochs=4, noise_multiplier="0.001",
                            max_grad_norm="1.0", init=["0.5", "0.5"], seed=0)
    solution = recover(trace)
    assert solution.status is Status.NOISY and solution.digits == 0
    assert solution.stats["clipped_terms"] > 0
    noise_only = max(float(e) for e in solution.stats["standard_errors"])
    truth = sorted(zip(map(float, X2), map(float, Y2)))
    found = sorted((float(x[0]), float(y[0])) for x, y in solution.samples)
    off = max(abs(a - b) for p, q in zip(found, truth) for a, b in zip(p, q))
    assert off > 10 * noise_only          # the standard errors do not bound the error
    detail = solution.detail
    assert "within about" not in detail and solution.stats["error_estimate"] is None
    assert detail.index("clipping changed") < detail.index("standard error")
    assert "not bounded" in detail


def test_without_clipping_at_the_estimate_the_standard_errors_are_the_headline():
    trace = dp_sgd_training(NET, X, Y, lr="0.1", epochs=4, noise_multiplier="0.001",
                            max_grad_norm="1.0", init=["0.5", "0.5"], seed=0)
    solution = recover(trace)
    assert solution.stats["clipped_terms"] == 0
    assert "within about" in solution.detail
    assert float(solution.stats["error_estimate"]) == max(
        float(e) for e in solution.stats["standard_errors"])
