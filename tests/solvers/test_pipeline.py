"""solvers/pipeline.py: the cold-start front end (paths -> judge); decision logic.

The end-to-end cases (precision law, noise refused, stalls refined) live in
tests/test_recover_many.py; these are the pipeline's own refusals."""

from symbolic_inversion import Network, simulate
from symbolic_inversion.solvers import SOLVERS, Status
from symbolic_inversion.solvers.pipeline import run_pipeline


def test_moment_paths_refuse_partial_batches_with_the_reason():
    trace = simulate(Network([1, 1], "tanh"), ["0.1", "0.5", "0.9", "0.3"],
                     ["0.3", "0.6", "0.2", "0.8"], lr="0.1", epochs=2, init=["0.5", "0.5"],
                     dps=40, optimizer="sgd", batch_size=2, seed=1, record_batches=True)
    solution = SOLVERS["moments"](trace, attempts=2)
    assert solution.status is Status.NOT_CONVERGED
    assert "full batches" in solution.detail
    assert [p["code"] for p in solution.stats["paths"]] == ["no_start", "no_start"]


def test_moment_paths_need_one_input_and_one_output():
    trace = simulate(Network([2, 1], "tanh"), [["0.3", "0.7"], ["0.9", "0.1"]],
                     [["0.2"], ["0.6"]], lr="0.1", epochs=4, dps=40, seed=1)
    solution = run_pipeline(trace, "moments", attempts=1)
    assert solution.status is Status.NOT_CONVERGED
    assert "one input and one output" in solution.detail
