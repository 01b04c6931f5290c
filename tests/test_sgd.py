"""Randomized learning (issue 5): SGD simulation checked by hand, recovery per case.

Reference values are independent of the toolkit: a hand-written SGD loop for the single
neuron (tanh), the data that generated each trace, and brute-force enumeration of
schedules.
"""

import itertools
import json
import subprocess
import sys

import mpmath
import numpy as np
import pytest

from symbolic_inversion import InversionSystem, Network, Trace, simulate
from symbolic_inversion.solvers import Status, recover
from symbolic_inversion.solvers.sgd import (epoch_schedules, same_dataset, solve_joint,
                                            solve_per_sample, solve_schedule_search)

NEURON = Network([1, 1], "tanh")


def data(count, seed):
    rng = np.random.default_rng(seed)
    return ([float(v) for v in np.round(rng.uniform(0, 1, count), 6)],
            [float(v) for v in np.round(rng.uniform(0, 1, count), 6)])


def error_digits(solution, inputs, labels, dps=90):
    """Largest k with the solution equal to the generating data within 10**-k (0: none)."""
    with mpmath.workdps(dps):
        truth = [([mpmath.mpf(repr(x))], [mpmath.mpf(repr(y))]) for x, y in zip(inputs, labels)]
        for k in range(80, 0, -1):
            if same_dataset(solution.samples, truth, mpmath.mpf(10) ** -k):
                return k
    return 0


def hand_sgd(inputs, labels, lr, init, schedule, momentum, weight_decay, dps):
    """The single neuron trained by hand: PyTorch heavy ball, L2 weight decay, rounding
    the recorded parameters to ``dps`` digits.  Returns parameters and gradients."""
    with mpmath.workdps(dps + 20):
        lr, mu, wd = (mpmath.mpf(v) for v in (lr, momentum, weight_decay))
        xs = [mpmath.mpf(repr(v)) for v in inputs]
        ys = [mpmath.mpf(repr(v)) for v in labels]
        w, b = (mpmath.mpf(v) for v in init)
        vw = vb = mpmath.mpf(0)
        recorded, gradients = [(w, b)], []
        for batch in schedule:
            gw = gb = mpmath.mpf(0)
            for i in batch:
                T = mpmath.tanh(w * xs[i] + b)
                c = 2 * (T - ys[i]) * (1 - T ** 2) / len(batch)
                gw, gb = gw + c * xs[i], gb + c
            gradients.append((gw, gb))
            vw, vb = mu * vw + gw + wd * w, mu * vb + gb + wd * b
            w = mpmath.mpf(mpmath.nstr(w - lr * vw, dps, strip_zeros=False))
            b = mpmath.mpf(mpmath.nstr(b - lr * vb, dps, strip_zeros=False))
            recorded.append((w, b))
        return recorded, gradients


# -- simulation and the system, against the hand computation --------------------------

def test_sgd_trace_matches_hand_loop_with_momentum_and_weight_decay():
    inputs, labels = data(5, 1)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=3, init=[0.5, 0.5], dps=40,
                     optimizer="sgd", batch_size=2, momentum="0.9", weight_decay="0.01",
                     seed=7)
    rng = np.random.default_rng(7)
    schedule = []
    for _ in range(3):
        order = [int(i) for i in rng.permutation(5)]
        schedule += [order[k:k + 2] for k in range(0, 5, 2)]
    assert trace.batches == schedule
    assert [len(b) for b in schedule[:3]] == [2, 2, 1]  # the last batch of an epoch is short
    recorded, gradients = hand_sgd(inputs, labels, "0.1", ["0.5", "0.5"], schedule,
                                   "0.9", "0.01", 40)
    with mpmath.workdps(60):
        for j, (w, b) in enumerate(recorded):
            assert abs(trace.theta(j)[0] - w) < mpmath.mpf(10) ** -39
            assert abs(trace.theta(j)[1] - b) < mpmath.mpf(10) ** -39
        # Undoing momentum and weight decay gives the batch gradient back, to the
        # trace's rounding (about 10**-40 / lr).
        for (gw, gb), observed in zip(gradients, trace.observed_gradients()):
            assert abs(observed[0] - gw) < mpmath.mpf(10) ** -37
            assert abs(observed[1] - gb) < mpmath.mpf(10) ** -37


def test_system_sums_each_step_over_its_batch_only():
    inputs, labels = data(4, 2)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=2, init=[0.5, 0.5], dps=50,
                     optimizer="sgd", batch_size=2, momentum="0.5", weight_decay="0.02",
                     seed=3)
    system = InversionSystem.from_trace(trace)
    with mpmath.workdps(70):
        X = [[mpmath.mpf(repr(v))] for v in inputs]
        Y = [[mpmath.mpf(repr(v))] for v in labels]
        at_truth = max(abs(r) for r in system.residual(X, Y))
        assert at_truth <= system.rhs_uncertainty()
        assert system.rhs_uncertainty() < mpmath.mpf(10) ** -47
        # The same data under a full-batch reading of the trace do not fit.
        # (a full batch of 4 needs batch_size 4: the reader refuses larger batches)
        full = Trace(NEURON, trace.lr, 4, trace.parameters,
                     optimizer=trace.optimizer.replace(batch_size=4),
                     batches=[[0, 1, 2, 3]] * trace.steps)
        assert max(abs(r) for r in InversionSystem.from_trace(full).residual(X, Y)) > 1e-4


def test_epoch_schedules_are_the_orbits_under_relabelling():
    n, size, steps = 4, 2, 6
    epoch = [[list(p[:2]), list(p[2:])] for p in itertools.permutations(range(n))]
    orbits = set()
    for choice in itertools.product(epoch, repeat=3):
        flat = [b for e in choice for b in e]
        orbits.add(min(tuple(tuple(sorted(r[i] for i in b)) for b in flat)
                       for r in itertools.permutations(range(n))))
    mine = {min(tuple(tuple(sorted(r[i] for i in b)) for b in s)
                for r in itertools.permutations(range(n)))
            for s in epoch_schedules(n, size, steps)}
    assert len(epoch_schedules(n, size, steps)) == len(orbits) == len(mine) == 12
    assert mine == orbits


# -- recovery, per case ---------------------------------------------------------------

def test_batch_size_one_unknown_order_recovers_all_five_to_1e40():
    inputs, labels = data(5, 3)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=2, init=[0.5, 0.5], dps=60,
                     optimizer="sgd", batch_size=1, seed=5, record_batches=False)
    assert trace.batches is None
    solution = recover(trace)
    assert solution.ok and solution.stats["method"] == "per_sample"
    assert solution.stats["counts"] == [2] * 5 and solution.stats["epoch_consistent"]
    assert error_digits(solution, inputs, labels) >= 40
    assert solution.digits >= 40


def test_batch_size_one_repeated_sample_is_counted_once_per_sighting():
    inputs, labels = [0.2, 0.7, 0.2], [0.5, 0.1, 0.5]  # a duplicate
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=2, init=[0.5, 0.5], dps=40,
                     optimizer="sgd", batch_size=1, seed=1, record_batches=False)
    solution = solve_per_sample(trace, dps=60)
    assert solution.status is Status.UNIDENTIFIABLE  # two of three distinct
    assert sorted(solution.stats["counts"]) == [2, 4]


def test_batch_size_one_more_samples_than_declared_is_inconsistent():
    inputs, labels = data(3, 4)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=1, init=[0.5, 0.5], dps=40,
                     optimizer="sgd", batch_size=1, seed=1, record_batches=False)
    lying = Trace(NEURON, trace.lr, 2, trace.parameters,
                  optimizer={"name": "sgd", "batch_size": 1})
    assert solve_per_sample(lying, dps=60).status is Status.INCONSISTENT


def test_known_schedule_batches_of_two_recovers_four_samples_to_1e20():
    inputs, labels = data(4, 5)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=3, init=[0.5, 0.5], dps=60,
                     optimizer="sgd", batch_size=2, seed=5)
    solution = recover(trace)
    assert solution.ok and solution.stats["method"] == "joint"
    assert error_digits(solution, inputs, labels) >= 20
    assert solution.digits >= 20


def test_momentum_full_batch_two_samples_to_1e20():
    inputs, labels = data(2, 6)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=4, init=[0.5, 0.5], dps=60,
                     momentum="0.9")
    solution = recover(trace)
    assert solution.ok
    assert error_digits(solution, inputs, labels) >= 20
    # A wrong momentum coefficient must not produce a "recovered" dataset.
    wrong = Trace(NEURON, trace.lr, 2, trace.parameters,
                  optimizer={"name": "gd", "momentum": "0.8"})
    assert not solve_joint(wrong, dps=80, starts=10).ok


def test_unknown_schedule_two_epochs_is_not_unique_and_lists_the_truth():
    inputs, labels = data(4, 3)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=2, init=[0.5, 0.5], dps=60,
                     optimizer="sgd", batch_size=2, seed=5, record_batches=False)
    solution = recover(trace)
    assert solution.status is Status.NOT_UNIQUE and not solution.samples
    datasets = solution.stats["datasets"]
    assert len(datasets) >= 2
    with mpmath.workdps(80):
        truth = [([mpmath.mpf(repr(x))], [mpmath.mpf(repr(y))]) for x, y in zip(inputs, labels)]
        listed = [[([mpmath.mpf(v) for v in s["x"]], [mpmath.mpf(v) for v in s["y"]])
                   for s in d] for d in datasets]
        assert sum(same_dataset(d, truth, 1e-20) for d in listed) == 1


def test_unknown_schedule_three_epochs_has_one_consistent_dataset():
    inputs, labels = data(4, 3)
    trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=3, init=[0.5, 0.5], dps=60,
                     optimizer="sgd", batch_size=2, seed=5, record_batches=False)
    solution = solve_schedule_search(trace, dps=80)
    assert solution.ok and solution.stats["schedules"] == 12
    assert error_digits(solution, inputs, labels) >= 40


def test_cli_recover_exit_status_follows_the_case(tmp_path):
    inputs, labels = data(4, 3)
    for epochs, expected in ((1, 0), (2, 1)):
        if epochs == 1:
            trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=2, init=[0.5, 0.5],
                             dps=40, optimizer="sgd", batch_size=1, seed=2,
                             record_batches=False)
        else:
            trace = simulate(NEURON, inputs, labels, lr="0.1", epochs=1, init=[0.5, 0.5],
                             dps=40, optimizer="sgd", batch_size=2, seed=2,
                             record_batches=False)
        path = tmp_path / f"trace{epochs}.json"
        trace.write(path)
        run = subprocess.run([sys.executable, "-m", "symbolic_inversion", "recover", str(path),
                              "--json"], capture_output=True, text=True, timeout=120)
        assert run.returncode == expected, run.stderr
        report = json.loads(run.stdout)
        if expected == 0:
            assert report["status"] == "converged" and len(report["samples"]) == 4
        else:
            assert report["status"] != "converged" and not report["samples"]


def test_batch_size_one_with_momentum_and_weight_decay_is_still_closed_form():
    inputs, labels = data(3, 8)
    trace = simulate(NEURON, inputs, labels, lr="0.05", epochs=2, init=[0.5, 0.5], dps=50,
                     optimizer="sgd", batch_size=1, momentum="0.9", weight_decay="0.001",
                     seed=4, record_batches=False)
    solution = recover(trace)
    assert solution.ok and solution.stats["counts"] == [2, 2, 2]
    assert error_digits(solution, inputs, labels) >= 40
    # Reading the same parameters as if there were no momentum explains nothing.
    plain = Trace(NEURON, trace.lr, 3, trace.parameters,
                  optimizer={"name": "sgd", "batch_size": 1})
    assert not solve_per_sample(plain, dps=70).ok
