"""Federated averaging (FedAvg) rounds: the exact K-step recovery next to the one-step baseline.

    python benchmarks/bench_fedavg.py [--quick] [--cases SUBSTRING,...] [--timeout S]

Context: Dimitrov et al. 2022, "Data leakage in federated averaging" (TMLR), recover
about 45% of FEMNIST images *approximately* from FedAvg updates of 10 local epochs of 10
minibatches of 5 images each, by optimisation over a simulation of the local steps.
This benchmark asks the exact question on small networks: from the server's view of
the global parameters, round after round, which samples come back to the digits the
toolkit vouches for, and what an attacker gets who ignores the local steps.

Grid: network (2-3-1 tanh/identity with MSE, n = 4, 4 rounds seen, lr 0.25; 4-8-3
tanh/identity with cross-entropy on one-hot classes, n = 6, 2 rounds seen, lr 0.5; inputs
uniform in [-1, 1], 3 decimals, seeded) x K local steps per round (1, 3, 5) x local
batch (``full``: every local step on all the client's samples; ``mb2 known``: minibatches
of 2 from passes over reshuffled data, the order recorded in the trace's ``batches``;
``mb2 unknown``: the same rounds without ``batches``) x clients (1; 2 clients holding
half the samples each with weights 3 and 1, full batch only: the trace format refuses
minibatch local steps of several clients, ``NotSupportedError``) x dtype:

* ``exact``: 60 significant digits, from ``tests/generator.py``'s ``federated_trace``, an
  mpmath FedAvg loop sharing no code with the toolkit;
* ``float64``: a PyTorch float64 FedAvg loop (``nn.Sequential``, a fresh
  ``torch.optim.SGD`` per client and round, the server's weighted mean in float64),
  recorded as the exact doubles with ``"dtype": "float64"`` (agrees with the exact
  loop to 3e-16);
* ``f64-14d``: the same doubles written as 14-significant-digit decimals without
  ``dtype`` (what an attacker can hand the toolkit today: binary-float traces of rounds
  are refused, see below; 14 digits leave room for the float64 arithmetic of K local
  steps, which a decimal trace's half-unit allowance must cover).

K = 1 with one client is an ordinary GD/SGD trace (no rounds).

Columns, per case:

* ``status``, ``frac``, ``digits``, ``max err``, ``time``: ``recover(trace)`` on the
  FedAvg trace, solving the K-step map exactly.  ``frac`` is the share of true samples
  (inputs and label vectors, the classes right for a classifier) within ``10^-digits``
  (``digits`` = the decimals the toolkit vouches for, at least 1) of the recovered sample
  they are matched to (optimal matching up to permutation), counted only when the status
  is ``converged``; ``max err`` is the largest matched distance (max norm) to the truth
  whatever the status; ``not supported`` is a ``NotSupportedError`` (its message is
  printed under the table); ``timeout``: over ``--timeout`` seconds (the recovery runs
  in a child process that is killed then).
* ``1-step status``, ``1-step err``, ``1-step <1e-2``, ``1-step time``: the baseline,
  ``recover(trace.one_step_approximation())``: every round taken as one full-batch GD
  step of ``K lr`` on the pooled samples (what an attacker gets by ignoring the local
  steps); its error against the truth, and the share of samples within ``1e-2``
  (whatever its status).  For K = 1 and one client the approximation is the trace itself.

The errors are measured against the data the benchmark generated, never against the
toolkit's own claims.  ``--quick`` runs six 2-3-1 cases with K = 3 (about 40 minutes on
a loaded shared core, most of it the baselines' searches ending ``not_converged``); the
full grid (72 cases) takes many hours.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from decimal import Decimal

import mpmath
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))   # generator.py: the mpmath FedAvg loop
if "symbolic_inversion" not in sys.modules:
    sys.path.insert(1, os.path.join(HERE, ".."))

from symbolic_inversion import Network, NotSupportedError, Trace, recover  # noqa: E402
from symbolic_inversion.solvers.solution import match_samples  # noqa: E402

# name: (layers, activations, loss, n, rounds, lr, client split)
NETWORKS = {
    "2-3-1": ([2, 3, 1], ["tanh", "identity"], "mse", 4, 4, "0.25", [(2, "3"), (2, "1")]),
    "4-8-3": ([4, 8, 3], ["tanh", "identity"], "cross_entropy", 6, 2, "0.5",
              [(3, "3"), (3, "1")]),
}
BATCHES = ["full", "mb2 known", "mb2 unknown"]
DTYPES = ["exact", "float64", "f64-14d"]
QUICK = ["2-3-1 K=3 full clients=1 exact", "2-3-1 K=3 full clients=1 float64",
         "2-3-1 K=3 full clients=1 f64-14d", "2-3-1 K=3 full clients=2 exact",
         "2-3-1 K=3 mb2 known clients=1 exact", "2-3-1 K=3 mb2 unknown clients=1 exact"]


def cases(quick=False):
    """Every case name: ``network K=k batch clients=c dtype``."""
    if quick:
        return list(QUICK)
    out = []
    for net in NETWORKS:
        for K in (1, 3, 5):
            for batch in BATCHES:
                for clients in ((1, 2) if batch == "full" else (1,)):
                    for dtype in DTYPES:
                        out.append(f"{net} K={K} {batch} clients={clients} {dtype}")
    return out


def _parse(name):
    net, k, batch_a, batch_b, clients, dtype = name.split() if "mb2" in name else \
        (name.split()[0], name.split()[1], name.split()[2], None, *name.split()[3:])
    batch = batch_a if batch_b is None else f"{batch_a} {batch_b}"
    return net, int(k[2:]), batch, int(clients.split("=")[1]), dtype


def data(net, seed=0):
    """Inputs, labels (decimal strings; one-hot for the classifier) and initial
    parameters of ``net``'s dataset ``seed``."""
    layers, _, loss, n, _, _, _ = NETWORKS[net]
    rng = np.random.default_rng(1000 + seed)
    X = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (n, layers[0]))]
    m = layers[-1]
    if loss == "cross_entropy":
        Y = [[str(int(k == c)) for c in range(m)] for k in rng.integers(0, m, n)]
    else:
        Y = [[f"{v:.3f}" for v in row] for row in rng.uniform(-1, 1, (n, m))]
    size = sum(a * b + b for a, b in zip(layers, layers[1:]))
    init = [f"{v:.4f}" for v in rng.uniform(-0.8, 0.8, size)]
    return X, Y, init


def schedule(n, rounds, K, seed=0):
    """``batches[round][k]``: minibatches of 2 taken in turn from passes over data
    reshuffled every pass (the next K of them each round)."""
    rng = np.random.default_rng(2000 + seed)
    stream = []
    while len(stream) < rounds * K:
        order = rng.permutation(n).tolist()
        stream += [order[i:i + 2] for i in range(0, n, 2)]
    return [stream[r * K:(r + 1) * K] for r in range(rounds)]


def torch_fedavg(net, X, Y, init, K, clients, batches):
    """The trace dict of FedAvg trained by PyTorch in float64: every round, every client
    loads the global parameters into an ``nn.Sequential``, takes K steps of a fresh
    ``torch.optim.SGD`` (full batch, or ``batches[round][k]``), and the server averages
    the clients' parameters with their weights."""
    import torch
    from torch import nn
    layers, activations, loss, n, rounds, lr, split = NETWORKS[net]
    model = nn.Sequential(nn.Linear(layers[0], layers[1]), nn.Tanh(),
                          nn.Linear(layers[1], layers[2])).double()
    xs = torch.tensor([[float(v) for v in x] for x in X], dtype=torch.float64)
    ys = torch.tensor([[float(v) for v in y] for y in Y], dtype=torch.float64)
    groups, start = [], 0
    for count, weight in (split if clients == 2 else [(n, "1")]):
        groups.append((float(weight), list(range(start, start + count))))
        start += count
    total = sum(w for w, _ in groups)
    theta = torch.tensor([float(v) for v in init], dtype=torch.float64)
    recorded = [theta.tolist()]

    def load(vector):
        with torch.no_grad():
            offset = 0
            for p in model.parameters():
                p.copy_(vector[offset:offset + p.numel()].reshape(p.shape))
                offset += p.numel()

    for r in range(rounds):
        mean = torch.zeros_like(theta)
        for weight, members in groups:
            load(theta)
            optimizer = torch.optim.SGD(model.parameters(), lr=float(lr))
            for k in range(K):
                batch = members if batches is None else batches[r][k]
                optimizer.zero_grad()
                out = model(xs[batch])
                if loss == "mse":   # sum over outputs, mean over samples (sum_outputs)
                    value = ((out - ys[batch]) ** 2).sum() / len(batch)
                else:
                    value = nn.functional.cross_entropy(out, ys[batch].argmax(dim=1))
                value.backward()
                optimizer.step()
            local = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
            mean = mean + (weight / total) * local
        theta = mean
        recorded.append(theta.tolist())
    return {"format": "symbolic-inversion-trace", "version": 1,
            "network": Network(layers, activations).to_dict(), "loss": loss,
            "loss_reduction": "sum_outputs" if loss == "mse" else "mean",
            "optimizer": {"name": "gd", "lr": lr, "local_steps": K}, "samples": n,
            "dtype": "float64", "parameters": [[repr(v) for v in row] for row in recorded]}


def trace_dict(name, seed=0):
    """The trace (a dict, as a file holds it) of case ``name`` and the true data."""
    from generator import federated_trace
    net, K, batch, clients, dtype = _parse(name)
    layers, activations, loss, n, rounds, lr, split = NETWORKS[net]
    X, Y, init = data(net, seed)
    batches = None if batch == "full" else schedule(n, rounds, K, seed)
    if dtype == "exact":
        data_ = federated_trace(Network(layers, activations), X, Y, init,
                                {"name": "gd" if batches is None else "sgd", "lr": lr},
                                rounds, K, loss=loss,
                                clients=split if clients == 2 else None, batches=batches)
    else:
        data_ = torch_fedavg(net, X, Y, init, K, clients, batches)
        if clients == 2:
            data_["clients"] = [{"samples": c, "weight": w} for c, w in split]
        if batches is not None:
            data_["batches"] = [b for rb in batches for b in rb]
            data_["optimizer"].update(name="sgd", batch_size=2)
    if batch == "mb2 unknown":
        del data_["batches"]
    if K == 1 and clients == 1:   # an ordinary GD/SGD trace: no rounds
        del data_["optimizer"]["local_steps"]
    if dtype == "f64-14d":   # the doubles written as 14-digit decimals, no dtype
        del data_["dtype"]
        with mpmath.workdps(30):
            data_["parameters"] = [[mpmath.nstr(mpmath.mpf(v), 14, strip_zeros=False)
                                    for v in row] for row in data_["parameters"]]
    if dtype != "exact":
        truth = ([[str(Decimal(float(v))) for v in x] for x in X],   # the doubles trained on
                 [[str(Decimal(float(v))) for v in y] for y in Y])
    else:
        truth = (X, Y)
    return data_, truth


def _solve(trace_data, baseline, pipe):
    """Child process: recover (the trace or its one-step approximation), send JSON."""
    try:
        trace = Trace.from_dict(trace_data)
        if baseline:
            trace = trace.one_step_approximation()
        started = time.perf_counter()
        solution = recover(trace)
        elapsed = time.perf_counter() - started
        with mpmath.workdps(100):   # every digit the solver has
            samples = [[[str(v) for v in x], [str(v) for v in y]] for x, y in solution.samples]
        pipe.send({"status": solution.status.value, "digits": solution.digits,
                   "samples": samples,
                   "classes": list(solution.classes or []), "time": elapsed,
                   "message": solution.message})
    except NotSupportedError as error:
        pipe.send({"status": "not supported", "message": str(error), "time": 0.0})
    except Exception as error:   # a crash is a result too
        pipe.send({"status": "error", "message": f"{type(error).__name__}: {error}",
                   "traceback": traceback.format_exc(), "time": 0.0})


def solve(trace_data, baseline, timeout):
    """The recovery in a child process, killed after ``timeout`` seconds."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_solve, args=(trace_data, baseline, theirs))
    started = time.perf_counter()
    child.start()
    theirs.close()
    if ours.poll(timeout):
        result = ours.recv()
        child.join()
        return result
    child.kill()
    child.join()
    return {"status": "timeout", "message": f"over {timeout:g} s",
            "time": time.perf_counter() - started}


def errors(result, truth, classifier):
    """Per true sample, the distance (max norm) to the recovered sample matched to it,
    and whether a classifier's class is right; None without a full dataset."""
    samples = result.get("samples")
    X, Y = truth
    if not samples or len(samples) != len(X):
        return None
    with mpmath.workdps(80):
        want = [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y]) for x, y in zip(X, Y)]
        got = [([mpmath.mpf(v) for v in x], [mpmath.mpf(v) for v in y]) for x, y in samples]
        order, _ = match_samples(want, got)
        out = []
        for i, j in enumerate(order):
            a, b = want[i], got[j]
            distance = max(abs(u - v) for u, v in zip(a[0] + a[1], b[0] + b[1]))
            right = not classifier or not result["classes"] or \
                result["classes"][j] == max(range(len(a[1])), key=lambda c: a[1][c])
            out.append((distance, right))
        return out


def run_case(name, timeout):
    """Both recoveries of case ``name``: a dict of the table's numbers."""
    net = _parse(name)[0]
    classifier = NETWORKS[net][2] == "cross_entropy"
    trace_data, truth = trace_dict(name)
    row = {"case": name}
    for key, baseline in (("exact", False), ("one_step", True)):
        result = solve(trace_data, baseline, timeout)
        measured = errors(result, truth, classifier)
        row[key] = {"status": result["status"], "digits": result.get("digits"),
                    "time": result["time"], "message": result.get("message", "")}
        if result["status"] == "error":
            row[key]["traceback"] = result.get("traceback")
        if measured is None:
            row[key].update(error=None, fraction=0.0, within=0.0)
            continue
        worst = max(d for d, _ in measured)
        tolerance = mpmath.mpf(10) ** -max(result["digits"] or 0, 1)
        good = sum(d <= tolerance and right for d, right in measured)
        row[key].update(error=mpmath.nstr(worst, 2),
                        fraction=good / len(measured) if result["status"] == "converged"
                        else 0.0,
                        within=sum(d <= mpmath.mpf("1e-2") and right
                                   for d, right in measured) / len(measured))
    return row


def markdown(row):
    e, b = row["exact"], row["one_step"]
    net, K, batch, clients, dtype = _parse(row["case"])

    def time_text(r):
        return "-" if r["status"] == "not supported" else f"{r['time']:.0f}"
    return (f"| {net} | {K} | {batch} | {clients} | {dtype} | {e['status']} | "
            f"{e['fraction']:.2f} | {e['digits'] if e['digits'] is not None else '-'} | "
            f"{e['error'] or '-'} | {time_text(e)} | {b['status']} | {b['error'] or '-'} | "
            f"{b['within']:.2f} | {time_text(b)} |")


HEADER = ("| network | K | local batch | clients | dtype | status | frac | digits | max err "
          "| time s | 1-step status | 1-step err | 1-step <1e-2 | 1-step time s |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
          "| --- |")


# Issue 25's case: scikit-learn's digits, two PyTorch clients of 4 images each, 64-32-10,
# cross-entropy, K = 5 full-batch SGD steps of lr 0.1, one round seen by the server.
DIGITS = {"images": 4, "hidden": 32, "K": 5, "lr": 0.1}


def digits_round(activation, dtype, seed):
    """One FedAvg round of the digits case in PyTorch (``dtype`` ``"float64"`` or
    ``"float32"``): the global trace, each client's trace (the arrays sent and returned,
    as :class:`~symbolic_inversion.flower.RecordingStrategy` records them, through the
    same converter) and the true images and classes, client by client."""
    import torch
    from sklearn.datasets import load_digits
    from symbolic_inversion.torch import trace_from_state_dicts
    per, hidden, K, lr = DIGITS["images"], DIGITS["hidden"], DIGITS["K"], DIGITS["lr"]
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    digits = load_digits()
    picked = np.random.default_rng(seed).choice(len(digits.images), 2 * per, replace=False)
    X = torch.tensor(digits.images[picked].reshape(2 * per, -1) / 16.0, dtype=torch_dtype)
    y = torch.tensor(digits.target[picked])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden),
                                {"gelu": torch.nn.GELU, "tanh": torch.nn.Tanh}[activation](),
                                torch.nn.Linear(hidden, 10)).to(torch_dtype)
    sent = {k: v.clone() for k, v in model.state_dict().items()}
    returned = []
    for c in range(2):
        model.load_state_dict(sent)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(K):
            optimizer.zero_grad()
            torch.nn.CrossEntropyLoss()(model(X[c * per:(c + 1) * per]),
                                        y[c * per:(c + 1) * per]).backward()
            optimizer.step()
        returned.append({k: v.clone() for k, v in model.state_dict().items()})
    # FedAvg's weighted mean in the run's dtype (Flower's own aggregation is float64
    # numpy; equal weights here)
    mean = {k: (returned[0][k] * per + returned[1][k] * per) / (2 * per) for k in sent}
    optimizer = {"name": "gd", "lr": repr(lr), "local_steps": K}
    loss = torch.nn.CrossEntropyLoss()
    clients = [{"samples": per, "weight": str(per)}] * 2
    traces = {"global": trace_from_state_dicts([sent, mean], model, optimizer, 2 * per,
                                               loss=loss, clients=clients)}
    truth = {"global": (X.double().numpy(), y.tolist())}
    for c in range(2):
        traces[f"client {c + 1}"] = trace_from_state_dicts([sent, returned[c]], model,
                                                           optimizer, per, loss=loss)
        truth[f"client {c + 1}"] = (X[c * per:(c + 1) * per].double().numpy(),
                                    y[c * per:(c + 1) * per].tolist())
    return traces, truth


def _digits_errors(inputs, classes, X, y):
    """Per true image, the largest pixel error of the recovered one matched to it
    (nearest) and whether its class is right."""
    if inputs is None or len(inputs) != len(X):
        return None
    got = np.asarray(inputs, dtype=float)
    out = []
    for x, k in zip(X, y):
        distances = np.abs(got - x).max(axis=1)
        best = int(np.argmin(distances))
        out.append((float(distances[best]), classes is not None and classes[best] == k))
    return out


def digits_baseline(trace):
    """The one-step baseline of the digits case: the span start on
    ``trace.one_step_approximation()`` as an attacker who ignores the local steps
    gets it (every round one GD step of ``K lr``; no local-steps path, no polish):
    ``(code, inputs, classes, seconds, reason)``."""
    from symbolic_inversion.solvers.span import span_start
    started = time.perf_counter()
    start = span_start(trace.one_step_approximation(), seed=0)
    seconds = time.perf_counter() - started
    if start.code != "found":
        return start.code, None, None, seconds, start.reason
    return (start.code, start.inputs, [int(np.argmax(v)) for v in start.labels], seconds,
            "")


def run_digits(activation, dtype, seed, timeout, which=("client 1", "client 2", "global")):
    """Rows of the digits case: per trace, ``recover`` (in a child process, killed after
    ``timeout`` s) and the one-step baseline."""
    traces, truth = digits_round(activation, dtype, seed)
    rows = []
    for name in which:
        trace, (X, y) = traces[name], truth[name]
        result = solve(trace.to_dict(), False, timeout)
        inputs = [[float(v) for v in x] for x, _ in result.get("samples") or []] or None
        measured = _digits_errors(inputs, result.get("classes"), X, y)
        row = {"activation": activation, "dtype": dtype, "seed": seed, "trace": name,
               "status": result["status"], "digits": result.get("digits"),
               "time": result["time"], "message": result.get("message", "")}
        if measured:
            tolerance = 10.0 ** -max(result.get("digits") or 0, 1)
            row["recovered"] = sum(d <= tolerance and right for d, right in measured) \
                if result["status"] == "converged" else 0
            row["error"] = max(d for d, _ in measured)
        code, b_inputs, b_classes, b_time, b_reason = digits_baseline(trace)
        b_measured = _digits_errors(b_inputs, b_classes, X, y)
        row["baseline"] = {"code": code, "time": b_time, "reason": b_reason,
                           "error": max(d for d, _ in b_measured) if b_measured else None,
                           "classes": sum(r for _, r in b_measured) if b_measured else 0}
        rows.append(row)
    return rows


DIGITS_HEADER = ("| activation | dtype | seed | trace | status | digits | recovered | "
                 "max pixel err | time s | 1-step start | 1-step err | 1-step time s |\n"
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def digits_markdown(row):
    b = row["baseline"]
    n = DIGITS["images"] * (2 if row["trace"] == "global" else 1)
    error = f"{row['error']:.1e}" if row.get("error") is not None else "-"
    b_error = f"{b['error']:.1e}" if b["error"] is not None else "-"
    return (f"| {row['activation']} | {row['dtype']} | {row['seed']} | {row['trace']} | "
            f"{row['status']} | {row['digits'] if row['digits'] is not None else '-'} | "
            f"{row.get('recovered', 0)}/{n} | {error} | {row['time']:.0f} | {b['code']} | "
            f"{b_error} | {b['time']:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2-3-1 with K = 3 only")
    parser.add_argument("--cases", default=None,
                        help="comma-separated substrings: the cases whose names hold one")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds per recovery before it counts as a timeout")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--digits", default=None,
                        help="issue 25's digits case instead of the grid: comma-separated "
                             "activation:dtype:seed[:trace] (e.g. gelu:float64:0, "
                             "tanh:float32:1:client 1)")
    args = parser.parse_args(argv)
    if args.digits:
        print(DIGITS_HEADER, flush=True)
        rows = []
        for spec in args.digits.split(","):
            activation, dtype, seed, *which = spec.split(":")
            for row in run_digits(activation, dtype, int(seed), args.timeout,
                                  which or ("client 1", "client 2", "global")):
                rows.append(row)
                print(digits_markdown(row), flush=True)
                if row["status"] != "converged":
                    print(f"  ({row['trace']}: {row['message'][:300]})", flush=True)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(rows, handle, indent=1, default=str)
        return
    names = cases(args.quick)
    if args.cases:
        names = [n for n in names if any(s in n for s in args.cases.split(","))]
    print("FedAvg traces (Dimitrov et al. 2022 recover ~45% of FEMNIST images "
          "approximately); frac: share within the digits vouched for; 1-step: "
          "recover(trace.one_step_approximation()); times on this machine")
    print(HEADER, flush=True)
    rows, notes = [], {}
    for name in names:
        row = run_case(name, args.timeout)
        rows.append(row)
        print(markdown(row), flush=True)
        for key in ("exact", "one_step"):
            if row[key]["status"] in ("not supported", "error", "timeout"):
                notes.setdefault(f"{key}: {row[key]['status']}: {row[key]['message']}",
                                 []).append(name)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(rows, handle, indent=1)
    for text, names_ in notes.items():
        print(f"\n{text}\n  ({'; '.join(names_)})")


if __name__ == "__main__":
    main()
