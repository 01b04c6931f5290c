"""PyTorch training recorded by ``symbolic_inversion.torch`` (issue 12).

Skipped without PyTorch (the core install); the README's test command installs
``torch==2.13.0`` first, so these run there.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("SYMBOLIC_INVERSION_REQUIRE_TORCH"):  # .ci/run's README install
    import torch
else:
    torch = pytest.importorskip("torch")
nn = torch.nn

from symbolic_inversion import InputError, Network, Trace, recover  # noqa: E402
from symbolic_inversion.solvers.solution import Status  # noqa: E402
from symbolic_inversion.torch import TraceRecorder  # noqa: E402

X4 = [[0.6], [0.2], [0.1], [0.9]]
Y4 = [[0.5], [0.4], [0.3], [0.6]]


def _train(model, optimizer, X, Y, steps, reduction="mean"):
    recorder = TraceRecorder(model, optimizer, samples=len(X), reduction=reduction)
    loss = nn.MSELoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss(model(X), Y).backward()
        optimizer.step()
        recorder.record()
    return recorder


def _neuron(dtype, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 1), nn.Tanh()).to(dtype)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def _error(solution, X, Y):
    """Largest distance of a true sample from its nearest recovered one."""
    got = [np.array([float(v) for v in list(x) + list(y)]) for x, y in solution.samples]
    truth = [np.array(list(x) + list(y), dtype=float) for x, y in zip(X, Y)]
    return max(min(np.abs(g - t).max() for g in got) for t in truth)


def test_float64_neuron_recorded_and_recovered():
    model, optimizer = _neuron(torch.float64)
    X, Y = torch.tensor(X4, dtype=torch.float64), torch.tensor(Y4, dtype=torch.float64)
    trace = _train(model, optimizer, X, Y, 8).trace()
    assert trace.dtype == "float64" and trace.loss_reduction == "mean"
    assert trace.network == Network([1, 1], "tanh") and trace.steps == 8
    # the parameter order is model.parameters() flattened; values exact
    w, b = [p.detach().numpy().reshape(-1) for p in model.parameters()]
    assert [float(v) for v in trace.parameters[-1]] == [w[0], b[0]]
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 3
    assert _error(solution, X4, Y4) <= 10.0 ** -solution.digits


def test_float64_3_4_2_with_mse_mean():
    torch.manual_seed(1)
    X = torch.rand(3, 3, dtype=torch.float64)
    Y = torch.rand(3, 2, dtype=torch.float64)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trace = _train(model, optimizer, X, Y, 3, reduction=nn.MSELoss()).trace()
    assert trace.network == Network([3, 4, 2], ["tanh", "identity"])
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 6
    assert _error(solution, X.numpy(), Y.numpy()) <= 10.0 ** -solution.digits


def test_float32_neuron_is_not_inconsistent():
    model, optimizer = _neuron(torch.float32)
    X, Y = torch.tensor(X4), torch.tensor(Y4)
    trace = _train(model, optimizer, X, Y, 8).trace()
    assert trace.dtype == "float32"
    solution = recover(trace)
    assert solution.status is Status.PRECISION_LIMITED, solution.message
    assert solution.digits == 0 and solution.stats["digits_needed"] > 9


def test_momentum_weight_decay_and_state_dicts():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(1, 1), nn.Tanh()).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5, weight_decay=0.01)
    X, Y = torch.tensor(X4[:2], dtype=torch.float64), torch.tensor(Y4[:2], dtype=torch.float64)
    recorder = TraceRecorder(model, optimizer, samples=2)
    states = [{k: v.clone() for k, v in model.state_dict().items()}]
    for _ in range(6):
        optimizer.zero_grad()
        nn.MSELoss()(model(X), Y).backward()
        optimizer.step()
        recorder.record()
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    trace = recorder.trace()
    assert str(trace.momentum) == "0.5" and str(trace.weight_decay) == "0.01"
    again = Trace.from_state_dicts(states, model, optimizer, samples=2)
    assert again.to_json() == trace.to_json()
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert _error(solution, X4[:2], Y4[:2]) <= 10.0 ** -solution.digits


@pytest.mark.parametrize("model, optimizer, name", [
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)),
     lambda p: torch.optim.SGD(p, lr=0.1), "BatchNorm1d"),
    (lambda: nn.Sequential(nn.Conv1d(1, 1, 1)), lambda p: torch.optim.SGD(p, lr=0.1),
     "Conv1d"),
    (lambda: nn.Sequential(nn.Linear(2, 1)), lambda p: torch.optim.Adam(p), "Adam"),
    (lambda: nn.Sequential(nn.Linear(2, 1)),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), "nesterov"),
    (lambda: nn.Sequential(nn.Linear(2, 1)),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1), "dampening"),
])
def test_unsupported_models_and_optimizers_are_named(model, optimizer, name):
    module = model()
    with pytest.raises(InputError, match=name):
        TraceRecorder(module, optimizer(module.parameters()), samples=4)


def test_a_refused_script_is_one_line_and_exit_2(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import torch\nfrom torch import nn\n"
                      "from symbolic_inversion.torch import TraceRecorder\n"
                      "m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))\n"
                      "TraceRecorder(m, torch.optim.SGD(m.parameters(), lr=0.1), 4)\n")
    run = subprocess.run([sys.executable, "-m", "symbolic_inversion.torch", str(script)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "BatchNorm1d" in run.stderr


@pytest.mark.filterwarnings("ignore")  # Opacus warns about its secure RNG
def test_opacus_dp_sgd_is_never_converged():
    opacus = pytest.importorskip("opacus")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 1), nn.Tanh()).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X, Y = torch.tensor(X4[:2], dtype=torch.float64), torch.tensor(Y4[:2], dtype=torch.float64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=2)
    model, optimizer, loader = opacus.PrivacyEngine().make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=0.01,
        max_grad_norm=1.0, poisson_sampling=False)
    recorder = TraceRecorder(model, optimizer, samples=2)
    for _ in range(4):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.MSELoss()(model(xb), yb).backward()
            optimizer.step()
            recorder.record()
    trace = recorder.trace()
    assert trace.extra["dp_sgd"] == {"noise_multiplier": "0.01", "max_grad_norm": "1.0"}
    solution = recover(trace)
    assert solution.status is Status.NOISY and "standard_errors" in solution.stats
