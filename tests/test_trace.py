"""Training traces: reading, validating and writing the file format.

References: the text of the files themselves (simulation is tested in
``test_simulate.py``).
"""

import copy
import json
import re
import subprocess
import sys
from decimal import Decimal

import mpmath
import pytest

from symbolic_inversion import InputError, Network, Trace, read_trace, simulate

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
    "unknown activation": (_edited(lambda d: d["network"].update(activations=["swish"])),
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
    "unknown optimizer": (_edited(lambda d: d["optimizer"].update(name="lion")),
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


def test_digits_and_last_places_follow_their_definition_on_every_way_of_writing():
    """The digits and last places are read from each value's text; the reference here
    is Decimal's own ``as_tuple`` (the coefficient's digits and the exponent), on values
    written plainly, in scientific notation, with trailing and leading zeros, signed,
    and zero (which has no significant digits and vouches for its written place)."""
    import random
    rng = random.Random(7)
    written = ["0.000", "1.20E+5", "-0E-7", "12300", "-0.00120", "7", "-3.5e-12", "0.0"]
    written += [f"{rng.uniform(-9, 9):.{rng.randint(1, 30)}{rng.choice('fe')}}"
                for _ in range(40)]
    values = [Decimal(v) for v in written]
    network = Network([len(written) - 1, 1], bias=True)
    trace = Trace(network, "0.1", 1, [written, written[::-1]])
    counts = sorted(len(v.as_tuple().digits) for row in (values, values[::-1])
                    for v in row if v)
    assert trace.digits == counts[(len(counts) - 1) // 2]
    for row, places in zip((values, values[::-1]), trace.last_places()):
        for value, place in zip(row, places):
            exponent = value.as_tuple().exponent
            want = exponent if not value else \
                min(exponent, value.adjusted() + 1 - trace.digits)
            assert place == Decimal(1).scaleb(want), (value, place)


# -- real training's fields (interfaces section 5) --------------------------------------

def _real_training_trace():
    from symbolic_inversion import simulate
    network = Network([2, 3, 3], ["gelu", "identity"])
    return simulate(network, [["0.1", "0.2"], ["0.3", "-0.4"]], [2, 0], lr=["0.1", "0.05"],
                    epochs=2, seed=1, dps=30, loss="cross_entropy",
                    optimizer={"name": "adamw", "lr": "0.1", "betas": ["0.8", "0.99"]})


def test_loss_optimizer_and_schedule_round_trip():
    trace = _real_training_trace()
    data = json.loads(trace.to_json())
    assert data["loss"] == "cross_entropy" and "loss_reduction" not in data  # the default
    assert data["optimizer"] == {"name": "adamw", "lr": ["0.1", "0.05"],
                                 "betas": ["0.8", "0.99"]}
    again = Trace.from_json(trace.to_json())
    assert again.to_json() == trace.to_json()
    assert again.loss == trace.loss and again.optimizer == trace.optimizer


@pytest.mark.parametrize("edit,named", [
    (lambda d: d["optimizer"].update(momentun="0.9"), "optimizer.momentun"),
    (lambda d: d.update(netwrk={}), "netwrk"),
    (lambda d: d["network"].update(biases=True), "network.biases"),
    (lambda d: d.update(loss="hinge"), "loss"),
    (lambda d: d.update(loss_reduction="sum_outputs"), "loss_reduction"),
    (lambda d: d["optimizer"].update(lr=["0.1"]), "optimizer.lr"),
    (lambda d: d["optimizer"].update(local_steps=0), "optimizer.local_steps"),
    (lambda d: d.update(clients=[{"samples": 1, "weight": "1"}]), "clients"),
    (lambda d: d.update(clients=[{"samples": 1, "weight": "-1"}, {"samples": 1}]),
     "clients\\[0\\].weight"),
])
def test_unknown_or_unsupported_keys_are_refused_by_name(edit, named):
    data = json.loads(_real_training_trace().to_json())
    edit(data)
    with pytest.raises(InputError, match=named if "\\" in named else named.replace(".", r"\.")):
        Trace.from_dict(data)


def test_extension_keys_are_kept_unread():
    data = json.loads(_real_training_trace().to_json())
    data["x-notes"] = {"run": "seed 1"}
    again = Trace.from_dict(data)
    assert json.loads(again.to_json())["x-notes"] == {"run": "seed 1"}
