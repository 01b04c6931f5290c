"""recover(..., executor=...): independent paths on any concurrent.futures executor give
the serial answer for the same seed; --workers / --scheduler on the command line."""

import concurrent.futures
import importlib.util

import pytest

from symbolic_inversion import Network, simulate
from symbolic_inversion.cli import main
from symbolic_inversion.errors import InputError
from symbolic_inversion.solvers import Status, recover
from symbolic_inversion.solvers.executors import make_executor
from symbolic_inversion.solvers.solution import same_dataset

XS, YS = [["0.31", "-0.52"], ["-0.77", "0.18"]], [["0.4"], ["-0.25"]]


def _trace():
    return simulate(Network([2, 2, 1], ["tanh", "identity"]), XS, YS, lr="0.1", epochs=1,
                    dps=50, seed=3)


class Recording(concurrent.futures.Executor):
    """A user's own executor (runs each task at once), counting submissions."""

    def __init__(self):
        self.submitted = 0

    def submit(self, function, *args, **kwargs):
        self.submitted += 1
        future = concurrent.futures.Future()
        future.set_result(function(*args, **kwargs))
        return future


@pytest.mark.parametrize("kind", ["own", "process"])
def test_executor_gives_the_serial_answer(kind):
    trace = _trace()
    serial = recover(trace, seed=4)
    pool = Recording() if kind == "own" else concurrent.futures.ProcessPoolExecutor(2)
    with pool:
        parallel = recover(trace, seed=4, executor=pool)
    assert serial.status is parallel.status is Status.CONVERGED
    assert parallel.samples == serial.samples
    if kind == "own":
        assert pool.submitted >= 1
    assert same_dataset(parallel.samples, [([float(v) for v in x], [float(v) for v in y])
                                           for x, y in zip(XS, YS)], 1e-12)


def test_workers_option_builds_a_process_pool():
    with make_executor(workers=2) as executor:
        assert isinstance(executor, concurrent.futures.ProcessPoolExecutor)
    with pytest.raises(InputError):
        make_executor(workers=0)


@pytest.mark.skipif(importlib.util.find_spec("distributed") is not None,
                    reason="dask's distributed is installed")
def test_scheduler_without_dask_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "trace.json"
    _trace().write(path)
    code = main(["recover", str(path), "--scheduler", "tcp://127.0.0.1:8786"])
    assert code == 2
    assert "distributed" in capsys.readouterr().err


def test_cli_workers_and_json_symmetries(tmp_path, capsys):
    import json
    path = tmp_path / "trace.json"
    _trace().write(path)
    assert main(["recover", str(path), "--workers", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "converged" and result["symmetries"] == []
    assert result["square"] is False
