"""Training traces: simulation against independent computations, the file format.

References: gradient descent written out by hand with mpmath at 120 digits (single
neuron from the paper's eqs. (1)-(6); a 2-3-1 network with hand-written backprop), a
float64 loop with numpy, and the text of the files themselves.
"""

import copy
import json
import re
import subprocess
import sys
from decimal import Decimal

import mpmath
import numpy as np
import pytest

from symbolic_inversion import InputError, Network, Trace, read_trace, simulate


def _neuron_gd(xs, ys, w, b, lr, epochs, momentum="0", weight_decay="0"):
    """The paper's eqs. (1)-(6), with PyTorch's momentum and weight decay, at 120 digits."""
    with mpmath.workdps(120):
        xs = [mpmath.mpf(v) for v in xs]
        ys = [mpmath.mpf(v) for v in ys]
        w, b, lr = mpmath.mpf(w), mpmath.mpf(b), mpmath.mpf(lr)
        mu, wd = mpmath.mpf(momentum), mpmath.mpf(weight_decay)
        n = len(xs)
        vw = vb = mpmath.mpf(0)
        path, gradients = [(w, b)], []
        for _ in range(epochs):
            yhat = [mpmath.tanh(w * x + b) for x in xs]
            base = [2 * (t - y) * (1 - t**2) for t, y in zip(yhat, ys)]
            db = mpmath.fsum(base) / n
            dw = mpmath.fsum(x * e for x, e in zip(xs, base)) / n
            gradients.append((dw, db))
            vw = mu * vw + dw + wd * w
            vb = mu * vb + db + wd * b
            w, b = w - lr * vw, b - lr * vb
            path.append((w, b))
        return path, gradients


def _two_layer_gd(X, Y, theta, lr, epochs):
    """GD on a 2-3-1 tanh/identity network with hand-written backprop at 120 digits.

    Parameter layout from the spec: W1 (3x2 row-major), b1 (3), W2 (1x3), b2 (1).
    """
    with mpmath.workdps(120):
        X = [[mpmath.mpf(v) for v in x] for x in X]
        Y = [mpmath.mpf(y[0]) for y in Y]
        theta = [mpmath.mpf(v) for v in theta]
        lr = mpmath.mpf(lr)
        path = [list(theta)]
        for _ in range(epochs):
            W1 = [theta[0:2], theta[2:4], theta[4:6]]
            b1, W2, b2 = theta[6:9], theta[9:12], theta[12]
            grad = [mpmath.mpf(0)] * 13
            for x, y in zip(X, Y):
                h = [mpmath.tanh(W1[k][0] * x[0] + W1[k][1] * x[1] + b1[k]) for k in range(3)]
                out = mpmath.fsum(W2[k] * h[k] for k in range(3)) + b2
                d_out = 2 * (out - y) / len(X)  # d loss / d out
                for k in range(3):
                    d_hidden = d_out * W2[k] * (1 - h[k] ** 2)
                    grad[2 * k] += d_hidden * x[0]
                    grad[2 * k + 1] += d_hidden * x[1]
                    grad[6 + k] += d_hidden
                    grad[9 + k] += d_out * h[k]
                grad[12] += d_out
            theta = [t - lr * g for t, g in zip(theta, grad)]
            path.append(list(theta))
        return path


def _max_difference(trace, path):
    with mpmath.workdps(120):
        return max(abs(mpmath.mpf(str(v)) - mpmath.mpf(r))
                   for vector, reference in zip(trace.parameters, path)
                   for v, r in zip(vector, reference))


@pytest.mark.parametrize("xs,ys", [(["0.6"], ["0.5"]),
                                   (["0.6", "0.2", "0.1", "0.9"], ["0.5", "0.4", "0.3", "0.6"])])
def test_60_digit_single_neuron_trace_agrees_with_120_digit_hand_gd_to_1e_50(xs, ys):
    trace = simulate(Network([1, 1], "tanh"), xs, ys, "0.1", epochs=12,
                     init=["0.5", "0.5"], dps=60)
    path, _ = _neuron_gd(xs, ys, "0.5", "0.5", "0.1", 12)
    assert trace.steps == 12 and trace.digits >= 59
    assert _max_difference(trace, path) < mpmath.mpf("1e-50")
    # and it is really 60 digits, not luck at 1e-50
    assert _max_difference(trace, path) < mpmath.mpf("1e-58")


def test_60_digit_multilayer_trace_agrees_with_hand_written_backprop_to_1e_50():
    X = [["0.3", "-0.8"], ["0.55", "0.1"], ["-0.2", "0.45"]]
    Y = [["0.2"], ["-0.4"], ["0.7"]]
    init = ["0.11", "-0.42", "0.73", "0.05", "-0.61", "0.37", "0.2", "-0.1", "0.3",
            "0.52", "-0.83", "0.44", "0.06"]
    trace = simulate(Network([2, 3, 1], ["tanh", "identity"]), X, Y, "0.25", epochs=6,
                     init=init, dps=60)
    path = _two_layer_gd(X, Y, init, "0.25", 6)
    assert _max_difference(trace, path) < mpmath.mpf("1e-50")


def test_momentum_and_weight_decay_follow_pytorch_and_are_undone_exactly():
    xs, ys = ["0.6", "0.2"], ["0.5", "0.4"]
    trace = simulate(Network([1, 1], "tanh"), xs, ys, "0.1", epochs=6, init=["0.5", "0.5"],
                     dps=60, momentum="0.9", weight_decay="0.01")
    path, gradients = _neuron_gd(xs, ys, "0.5", "0.5", "0.1", 6, "0.9", "0.01")
    assert _max_difference(trace, path) < mpmath.mpf("1e-50")
    with mpmath.workdps(80):
        observed = trace.observed_gradients()
        assert max(abs(g - r) for o, ref in zip(observed, gradients)
                   for g, r in zip(o, ref)) < mpmath.mpf("1e-50")


def test_numpy_backend_is_a_float64_gd_loop():
    x, y = np.array([0.6, 0.2, 0.1]), np.array([0.5, 0.4, 0.3])
    trace = simulate(Network([1, 1], "tanh"), x.tolist(), y.tolist(), 0.1, epochs=8,
                     init=[0.5, 0.5], backend="numpy")
    w, b = 0.5, 0.5
    expected = [(w, b)]
    for _ in range(8):  # the paper's Appendix A
        y_hat = np.tanh(w * x + b)
        base = 2 * (y_hat - y) * (1 - y_hat**2)
        w, b = w - 0.1 * np.mean(x * base), b - 0.1 * np.mean(base)
        expected.append((w, b))
    got = [(float(v[0]), float(v[1])) for v in trace.parameters]
    assert np.allclose(got, expected, rtol=0, atol=1e-15)
    assert got != [(0.5, 0.5)] * 9


def test_sixty_digit_file_round_trips_exactly(tmp_path):
    trace = simulate(Network([2, 2, 1], ["sigmoid", "tanh"]), [["0.1", "0.7"], ["0.4", "0.2"]],
                     [["0.3"], ["0.9"]], "0.5", epochs=3, dps=60, seed=3)
    first = tmp_path / "first.json"
    trace.write(first)
    again = read_trace(first)
    second = tmp_path / "second.json"
    again.write(second)
    assert first.read_text() == second.read_text()
    assert again.parameters == trace.parameters
    assert all(len(v.as_tuple().digits) >= 59 for vector in again.parameters for v in vector if v)
    # a hand-written file with numbers of mixed lengths survives too
    text = json.dumps({"format": "symbolic-inversion-trace", "version": 1,
                       "network": {"layers": [1, 1], "activations": ["tanh"], "bias": True},
                       "loss": "mse", "optimizer": {"name": "gd", "lr": "0.1"}, "samples": 2,
                       "parameters": [["0.5", "0.50"], ["0.49254724", "0.4810773"],
                                      ["0.485552960000000000000000000000000000000000000000000000001",
                                       "4.6348845E-1"]]})
    parsed = Trace.from_json(text)
    assert str(parsed.parameters[2][0]).endswith("0001") and parsed.parameters[0][1] == Decimal("0.50")
    # same values with the same digits (exponent notation is written out as a plain decimal)
    written = [[Decimal(v).as_tuple() for v in vector]
               for vector in json.loads(parsed.to_json())["parameters"]]
    assert written == [[Decimal(v).as_tuple() for v in vector]
                       for vector in json.loads(text)["parameters"]]
    assert Trace.from_json(parsed.to_json()).to_json() == parsed.to_json()


def test_plain_json_numbers_are_read_as_written():
    text = ('{"format": "symbolic-inversion-trace", "version": 1, "network": {"layers": [1, 1],'
            ' "activations": ["tanh"], "bias": true}, "loss": "mse", "optimizer": {"name": "gd",'
            ' "lr": 0.1}, "samples": 1, "parameters": [[0.5, 0.5], [0.48918767545123456789, 1]]}')
    trace = Trace.from_json(text)
    assert trace.lr == Decimal("0.1")
    assert trace.parameters[1][0] == Decimal("0.48918767545123456789")  # not a float


# -- malformed files ------------------------------------------------------------------

GOOD = {"format": "symbolic-inversion-trace", "version": 1,
        "network": {"layers": [1, 1], "activations": ["tanh"], "bias": True},
        "loss": "mse", "optimizer": {"name": "gd", "lr": "0.1"}, "samples": 2,
        "parameters": [["0.5", "0.5"], ["0.49254724", "0.4810773"],
                       ["0.48555296", "0.46348845"]]}


def _edited(edit):
    data = copy.deepcopy(GOOD)
    edit(data)
    return json.dumps(data)


MALFORMED = {
    "not JSON": ("{'format': 'symbolic-inversion-trace'", "not valid JSON"),
    "empty file": ("", "not valid JSON"),
    "top level not an object": ("[1, 2]", "JSON object"),
    "vector too short": (_edited(lambda d: d["parameters"][1].pop()), r"parameters\[1\]"),
    "shapes disagree with network": (_edited(lambda d: d["network"].update(layers=[2, 1])),
                                     r"parameters\[0\]: expected 3"),
    "NaN as a string": (_edited(lambda d: d["parameters"][2].__setitem__(1, "NaN")),
                        r"parameters\[2\]\[1\]"),
    "bare NaN token": (json.dumps(GOOD).replace('"0.4810773"', "NaN"), "NaN"),
    "bare Infinity token": (json.dumps(GOOD).replace('"0.4810773"', "-Infinity"), "Infinity"),
    "negative learning rate": (_edited(lambda d: d["optimizer"].update(lr="-0.1")),
                               "optimizer.lr"),
    "zero learning rate": (_edited(lambda d: d["optimizer"].update(lr=0)), "optimizer.lr"),
    "zero samples": (_edited(lambda d: d.update(samples=0)), "samples"),
    "fractional samples": (_edited(lambda d: d.update(samples=1.5)), "samples"),
    "unknown activation": (_edited(lambda d: d["network"].update(activations=["softplus"])),
                           "network.activations"),
    "a single step": (_edited(lambda d: d.update(parameters=[["0.5", "0.5"]])),
                      "parameters"),
    "code in a number field": (_edited(lambda d: d["parameters"][1].__setitem__(
        0, "__import__('os').system('touch /tmp/pwned')")), r"parameters\[1\]\[0\]"),
    "code in the learning rate": (_edited(lambda d: d["optimizer"].update(lr="exp(1)/10")),
                                  "optimizer.lr"),
    "missing parameters": (_edited(lambda d: d.pop("parameters")), "parameters: missing"),
    "missing network": (_edited(lambda d: d.pop("network")), "network: missing"),
    "missing learning rate": (_edited(lambda d: d["optimizer"].pop("lr")), "optimizer.lr"),
    "missing layers": (_edited(lambda d: d["network"].pop("layers")), "network.layers"),
    "missing samples": (_edited(lambda d: d.pop("samples")), "samples: missing"),
    "wrong format": (_edited(lambda d: d.update(format="pytorch")), "format"),
    "missing format": (_edited(lambda d: d.pop("format")), "format"),
    "wrong version": (_edited(lambda d: d.update(version=2)), "version"),
    "version as a string": (_edited(lambda d: d.update(version="1")), "version"),
    "version true": (_edited(lambda d: d.update(version=True)), "version"),
    "version 1.0": (_edited(lambda d: d.update(version=1.0)), "version"),
    "unknown loss": (_edited(lambda d: d.update(loss="cross-entropy")), "loss"),
    "unknown optimizer": (_edited(lambda d: d["optimizer"].update(name="adam")),
                          "optimizer.name"),
    "absurd exponent": (_edited(lambda d: d["parameters"][1].__setitem__(0, "1e999999999")),
                        "exponent out of range"),
    "absurd exponent of zero": (_edited(lambda d: d["parameters"][1].__setitem__(
        1, "0e999999999")), "exponent out of range"),
    "null in a vector": (_edited(lambda d: d["parameters"][0].__setitem__(0, None)),
                         r"parameters\[0\]\[0\]"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_refused_by_the_api_naming_the_field(case, tmp_path):
    text, field = MALFORMED[case]
    with pytest.raises(InputError, match=field):
        Trace.from_json(text)
    path = tmp_path / "trace.json"
    path.write_text(text)
    with pytest.raises(InputError, match=field):
        read_trace(path)


# One subprocess each costs a SymPy import: the CLI gets the list, the API all.
CLI_CASES = ["not JSON", "shapes disagree with network", "NaN as a string", "bare NaN token",
             "negative learning rate", "zero learning rate", "zero samples",
             "unknown activation", "a single step", "code in a number field",
             "missing parameters", "wrong format", "wrong version", "absurd exponent"]


def test_malformed_files_are_refused_by_the_cli_in_one_line(tmp_path):
    for case in CLI_CASES:
        text, field = MALFORMED[case]
        path = tmp_path / "trace.json"
        path.write_text(text)
        result = subprocess.run([sys.executable, "-m", "symbolic_inversion", "recover",
                                 str(path)], capture_output=True, text=True, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (case, result.stdout, result.stderr)
        assert len(lines) == 1 and "Traceback" not in result.stderr, (case, result.stderr)
        assert lines[0].startswith("symbolic-inversion recover: error:"), (case, lines)
        assert re.search(field, lines[0]), (case, lines)
        assert result.stdout == "", case
    assert not (tmp_path / "pwned").exists()


def test_code_in_a_file_is_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = _edited(lambda d: d["parameters"][1].__setitem__(0, "__import__('pathlib').Path('ran').touch() or 1"))
    with pytest.raises(InputError):
        Trace.from_json(text)
    assert not (tmp_path / "ran").exists()


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_trace(tmp_path / "absent.json")


def test_simulate_refuses_bad_arguments():
    net = Network([1, 1], "tanh")
    with pytest.raises(InputError, match="lr"):
        simulate(net, [0.6], [0.5], lr=-1, epochs=2, init=[0.5, 0.5])
    with pytest.raises(InputError, match="epochs"):
        simulate(net, [0.6], [0.5], lr=0.1, epochs=0, init=[0.5, 0.5])
    with pytest.raises(InputError, match="y: expected 1 samples"):
        simulate(net, [0.6], [0.5, 0.4], lr=0.1, epochs=2, init=[0.5, 0.5])
    with pytest.raises(InputError, match="init"):
        simulate(net, [0.6], [0.5], lr=0.1, epochs=2, init=[0.5])
    with pytest.raises(InputError, match="x"):
        simulate(net, [], [], lr=0.1, epochs=2)
    with pytest.raises(InputError, match="not a finite number"):
        simulate(net, [float("nan")], [0.5], lr=0.1, epochs=2, init=[0.5, 0.5])
    with pytest.raises(InputError, match="backend"):
        simulate(net, [0.6], [0.5], lr=0.1, epochs=2, init=[0.5, 0.5], backend="torch")


def test_precision_semantics_digits_and_resolution():
    trace = Trace(Network([1, 1]), "0.1", 2, [["0.5000000", "0.5000000"],
                                               ["0.4925472", "0.4810773"]])
    assert trace.digits == 7
    assert trace.resolution == Decimal("1e-7")
    # mpmath values follow the caller's precision and the global precision is untouched
    before = mpmath.mp.dps
    with mpmath.workdps(40):
        assert trace.theta(1)[0] == mpmath.mpf("0.4925472")
        assert mpmath.mp.dps == 40
    assert mpmath.mp.dps == before
