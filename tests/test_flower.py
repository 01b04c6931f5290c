"""Flower simulations recorded as traces (symbolic_inversion.flower; the ``flower`` extra).

A real Flower run: ``flwr.serverapp.strategy.FedAvg`` driving two ``ClientApp`` nodes
that train a float64 PyTorch model with K full-batch SGD steps, run in this process by
``run_simulation_in_process``.  The recorded traces are checked against a separate
numpy replay of the same FedAvg rounds (its own hand-written backpropagation, sharing no
code with the toolkit or PyTorch), and the clients' samples are recovered from the
global trace and, with the server as observer, from one client's round."""

import mpmath
import numpy as np
import pytest

flwr = pytest.importorskip("flwr")
torch = pytest.importorskip("torch")

from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedProx  # noqa: E402

from symbolic_inversion import InputError, NotSupportedError, Status, recover  # noqa: E402
from symbolic_inversion.flower import (RecordingStrategy,  # noqa: E402
                                       run_simulation_in_process)
from symbolic_inversion.solvers.solution import match_samples  # noqa: E402

LR, K, ROUNDS = 0.5, 2, 3


def _data(seed=0):
    rng = np.random.default_rng(seed)
    clients = [(rng.uniform(0, 1, (1, 2)), rng.uniform(-1, 1, (1, 1))) for _ in range(2)]
    init = [rng.uniform(-0.8, 0.8, shape) for shape in [(3, 2), (3,), (1, 3), (1,)]]
    return clients, init


def _model():
    return torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(),
                               torch.nn.Linear(3, 1)).double()


def _client_app(data, weight_key="num-examples"):
    app = ClientApp()

    @app.train()
    def train(message, context):
        X, Y = (torch.tensor(a) for a in data[context.node_config["partition-id"]])
        model = _model()
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        for _ in range(K):
            optimizer.zero_grad()
            torch.nn.MSELoss()(model(X), Y).backward()
            optimizer.step()
        metrics = MetricRecord({weight_key: len(X)})
        return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()),
                                   "metrics": metrics}), reply_to=message)
    return app


def _run(strategy, data, init, client_app=None):
    server = ServerApp()
    start = {}
    for key, value in zip(["0.weight", "0.bias", "2.weight", "2.bias"], init):
        start[key] = torch.tensor(value)

    @server.main()
    def main(grid, context):
        strategy.start(grid=grid, initial_arrays=ArrayRecord(start), num_rounds=ROUNDS)

    run_simulation_in_process(server, client_app or _client_app(data), num_supernodes=2)


def _recorder(strategy=None):
    return RecordingStrategy(strategy or FedAvg(fraction_evaluate=0.0), _model(),
                             loss=torch.nn.MSELoss(), optimizer={"name": "gd", "lr": str(LR)},
                             local_steps=K)


def _replay(data, init):
    """FedAvg in numpy float64 with its own backpropagation: the global vector after
    every round and each client's returned vector per round."""
    def local(params, X, Y):
        W1, b1, W2, b2 = (p.copy() for p in params)
        for _ in range(K):
            h = np.tanh(X @ W1.T + b1)
            out = h @ W2.T + b2
            d = 2 * (out - Y) / out.size          # nn.MSELoss(): mean over every entry
            dh = (d @ W2) * (1 - h ** 2)
            grads = [dh.T @ X, dh.sum(0), d.T @ h, d.sum(0)]
            W1, b1, W2, b2 = (p - LR * g for p, g in zip((W1, b1, W2, b2), grads))
        return [W1, b1, W2, b2]
    flat = lambda params: np.concatenate([p.reshape(-1) for p in params])  # noqa: E731
    params, globals_, returned = [p.copy() for p in init], [flat(init)], []
    for _ in range(ROUNDS):
        outs = [local(params, X, Y) for X, Y in data]
        weights = [len(X) / sum(len(x) for x, _ in data) for X, _ in data]
        params = [sum(w * out[k] for w, out in zip(weights, outs)) for k in range(4)]
        globals_.append(flat(params))
        returned.append([flat(out) for out in outs])
    return globals_, returned


def _error(solution, samples):
    with mpmath.workdps(40):
        truth = [([mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in y])
                 for x, y in samples]
        got = [(list(x), list(y)) for x, y in solution.samples]
        return match_samples(got, truth)[1]


def test_a_flower_fedavg_run_is_recorded_and_its_clients_samples_recovered():
    data, init = _data()
    recorder = _recorder()
    _run(recorder, data, init)
    trace = recorder.trace()
    assert (trace.steps, trace.samples, trace.dtype) == (ROUNDS, 2, "float64")
    assert trace.optimizer.local_steps == K and trace.loss.name == "mse"
    assert [count for count, _ in trace.clients] == [1, 1]
    assert trace.extra["x-flower"]["rounds"] == ROUNDS
    # the recorded parameters are the independent replay's (float64 rounding apart)
    globals_, returned = _replay(data, init)
    for j, vector in enumerate(globals_):
        recorded = np.array([float(v) for v in trace.parameters[j]])
        assert np.allclose(recorded, vector, rtol=0, atol=1e-13), j
    clients = recorder.client_traces()
    for c in range(2):
        for r in range(ROUNDS):
            got = np.array([float(v) for v in clients[c][r].parameters[1]])
            assert np.allclose(got, returned[r][c], rtol=0, atol=1e-13), (c, r)
            start = np.array([float(v) for v in clients[c][r].parameters[0]])
            assert np.allclose(start, globals_[r], rtol=0, atol=1e-13), (c, r)
    # the global trace: both clients' samples, to the digits vouched for
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    assert solution.digits >= 8
    samples = [(X[0], Y[0]) for X, Y in data]
    assert _error(solution, samples) < mpmath.mpf(10) ** -solution.digits


def test_the_server_as_observer_recovers_one_clients_sample_from_one_round():
    data, init = _data(1)
    recorder = _recorder()
    _run(recorder, data, init)
    trace = recorder.client_traces()[1][0]     # the second node, round 1
    assert (trace.steps, trace.samples, trace.clients) == (1, 1, None)
    solution = recover(trace)
    assert solution.status is Status.CONVERGED, solution.message
    X, Y = data[1]                             # partition 1 is the second node by id
    assert _error(solution, [(X[0], Y[0])]) < mpmath.mpf(10) ** -solution.digits


def test_trace_files_are_written_and_read_back(tmp_path):
    from symbolic_inversion import Trace
    data, init = _data(2)
    recorder = _recorder()
    _run(recorder, data, init)
    paths = recorder.write(tmp_path / "run")
    assert [p.name for p in paths] == ["global.json"] + [
        f"client{c}_round{r}.json" for c in (1, 2) for r in range(1, ROUNDS + 1)]
    back = Trace.read(paths[0])
    assert back.to_dict() == recorder.trace().to_dict()
    assert back.extra["x-flower"]["node_ids"] == recorder.trace().extra["x-flower"]["node_ids"]


@pytest.mark.parametrize("strategy, words", [
    (lambda: FedAvgM(server_learning_rate=0.5), "server_learning_rate=0.5"),
    (lambda: FedAvgM(server_momentum=0.9), "server_momentum=0.9"),
    (lambda: FedProx(proximal_mu=0.1), "proximal_mu=0.1"),
    (lambda: FedAdam(), "FedAdam is not supported"),
])
def test_other_server_arithmetic_is_refused_in_one_line(strategy, words):
    with pytest.raises(NotSupportedError, match=words) as error:
        _recorder(strategy())
    assert "\n" not in str(error.value)


def test_server_rate_one_without_momentum_is_fedavg_and_accepted():
    assert _recorder(FedAvgM(server_learning_rate=1.0, server_momentum=0.0))
    assert _recorder(FedProx(proximal_mu=0.0))


def test_a_reply_without_its_number_of_examples_is_refused():
    data, init = _data()
    recorder = _recorder()
    with pytest.raises(InputError, match="no 'num-examples' in the reply"):
        _run(recorder, data, init, client_app=_client_app(data, weight_key="examples"))


def test_the_loss_and_local_steps_must_be_declared():
    with pytest.raises(InputError, match="loss: give the clients' loss"):
        RecordingStrategy(FedAvg(), _model(), optimizer={"name": "gd", "lr": "0.1"})
    with pytest.raises(InputError, match="local_steps"):
        RecordingStrategy(FedAvg(), _model(), loss="mse",
                          optimizer={"name": "gd", "lr": "0.1"}, local_steps=0)


def test_a_flower_without_the_internals_the_runner_uses_is_named(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "flwr.supercore.task_identity", None)
    with pytest.raises(NotSupportedError, match="run_simulation_in_process uses .*"
                                                 "task_identity"):
        run_simulation_in_process(ServerApp(), ClientApp(), 2)
