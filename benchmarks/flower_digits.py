"""A real Flower simulation of two clients on scikit-learn's digits, recorded and recovered
(docs/flower.md).

Flower's ``FedAvg`` (Message API) drives two ``ClientApp`` nodes in this process
(``symbolic_inversion.flower.run_simulation_in_process``, no Ray); each client holds
``per_client`` images of ``sklearn.datasets.load_digits`` (8x8, scaled to [0, 1],
averaged over ``pool`` x ``pool`` blocks) and trains a float64 PyTorch MLP
``features-hidden-10`` (tanh) with ``nn.CrossEntropyLoss()`` and ``K`` full-batch
``torch.optim.SGD`` steps per round.  ``RecordingStrategy`` records the run; ``recover``
runs on the global trace (what any observer of the global model sees) and on client 1's
first round (the server as observer).  A sample counts as recovered when it is within
``10^-digits`` of the true image (every pixel) and its class is right.

Run: ``python benchmarks/flower_digits.py [pool hidden per_client K rounds lr]``
(defaults ``2 4 1 2 2 0.5``: 4x4 images, 16-4-10; needs ``pip install
"symbolic_inversion[flower]" scikit-learn``).
"""

import logging
import sys
import time

import numpy as np
import torch
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp
from flwr.serverapp.strategy import FedAvg
from sklearn.datasets import load_digits

from symbolic_inversion import recover
from symbolic_inversion.flower import RecordingStrategy, run_simulation_in_process


def images(pool):
    """The digits as vectors in [0, 1], averaged over pool x pool blocks, and classes."""
    digits = load_digits()
    side = 8 // pool
    pooled = (digits.images / 16.0).reshape(-1, side, pool, side, pool).mean(axis=(2, 4))
    return pooled.reshape(len(pooled), -1), digits.target


def recovered(solution, X, classes):
    """How many of the samples ``X`` (with ``classes``) ``solution`` holds, each within
    ``10^-digits`` in every pixel and with its class; and the largest pixel error."""
    if not solution.samples:
        return 0, float("inf")
    got = [np.array([float(v) for v in x]) for x, _ in solution.samples]
    count, worst = 0, 0.0
    for x, k in zip(X, classes):
        errors = [np.abs(g - x).max() for g in got]
        best = int(np.argmin(errors))
        worst = max(worst, errors[best])
        if errors[best] < 10.0 ** -max(solution.digits, 1) and solution.classes and \
                solution.classes[best] == k:
            count += 1
    return count, worst


def main(pool=2, hidden=4, per_client=1, K=2, rounds=2, lr=0.5):
    logging.getLogger("flwr").setLevel(logging.WARNING)
    torch.manual_seed(0)
    pixels, targets = images(pool)
    picked = np.random.default_rng(0).choice(len(pixels), 2 * per_client, replace=False)
    X = torch.tensor(pixels[picked], dtype=torch.float64)
    y = torch.tensor(targets[picked])
    partitions = [(X[c * per_client:(c + 1) * per_client],
                   y[c * per_client:(c + 1) * per_client]) for c in range(2)]

    def make_model():
        return torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.Tanh(),
                                   torch.nn.Linear(hidden, 10)).double()

    client = ClientApp()

    @client.train()
    def train(message, context):
        features, labels = partitions[context.node_config["partition-id"]]
        model = make_model()
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(K):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(features), labels).backward()
            optimizer.step()
        metrics = MetricRecord({"num-examples": len(features)})
        return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()),
                                   "metrics": metrics}), reply_to=message)

    model = make_model()
    recorder = RecordingStrategy(FedAvg(fraction_evaluate=0.0), model,
                                 loss=torch.nn.CrossEntropyLoss(),
                                 optimizer={"name": "gd", "lr": repr(lr)}, local_steps=K)
    server = ServerApp()

    @server.main()
    def run(grid, context):
        recorder.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()),
                       num_rounds=rounds)

    started = time.perf_counter()
    run_simulation_in_process(server, client, num_supernodes=2)
    print(f"network {X.shape[1]}-{hidden}-10, {sum(p.numel() for p in model.parameters())} "
          f"parameters; {per_client} image(s) per client, K = {K}, {rounds} rounds; "
          f"Flower run {time.perf_counter() - started:.1f} s")
    for name, trace, (Xs, ys) in [
            ("global trace", recorder.trace(), (X.numpy(), y.tolist())),
            ("client 1, round 1", recorder.client_traces()[0][0],
             (partitions[0][0].numpy(), partitions[0][1].tolist()))]:
        started, cpu = time.perf_counter(), time.process_time()
        solution = recover(trace)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        count, worst = recovered(solution, Xs, ys)
        print(f"{name}: {solution.status.value}, {solution.digits} digits, "
              f"{count}/{len(Xs)} samples recovered with their classes, largest pixel "
              f"error {worst:.1e}, {elapsed:.1f} s ({cpu:.1f} s of CPU)")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    kinds = [int, int, int, int, int, float]
    main(*[kind(a) for kind, a in zip(kinds, arguments)])
