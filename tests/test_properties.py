"""Property-based checks (hypothesis) of everything that reads user input: the trace
reader, the command line's argument parsing, the CSV and oracle readers.

Random mutations of valid files never give anything but a value or one
:class:`InputError`; a mutated trace that no longer matches its data is never
``converged`` with data away from the truth.  Examples are bounded so that the whole
module runs in well under a minute (the reliability page, docs/reliability.md, lists
what was tried).
"""

import json
import os

import mpmath
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from symbolic_inversion import InputError, Network, Status, Trace, recover, simulate  # noqa: E402
from symbolic_inversion.cli import _read_csv, main  # noqa: E402
from symbolic_inversion.oracle.command import read_oracle_file  # noqa: E402

# bounded for CI; SYMBOLIC_INVERSION_PROPERTY_EXAMPLES=2000 explores further
EXAMPLES = int(os.environ.get("SYMBOLIC_INVERSION_PROPERTY_EXAMPLES", "100"))
FAST = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SLOW = settings(max_examples=max(10, EXAMPLES // 10), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

TRUTH = [(["0.6"], ["0.5"]), (["0.2"], ["0.4"])]
VALID = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], "0.1", 4,
                 init=["0.5", "0.5"], dps=30).to_json()
ONE = simulate(Network([1, 1], "tanh"), ["0.6"], ["0.5"], "0.1", 2,
               init=["0.5", "0.5"], dps=30).to_json()

# JSON values a careless or hostile writer might put anywhere
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)


def _text_mutation(draw, text):
    """One edit of the file's text: a deletion, an insertion or a replacement."""
    position = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["delete", "insert", "replace"]))
    piece = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=4)
                 | st.sampled_from(['"', "[", "{", "]", "}", ",", "e999", "-", "\u0665",
                                    " ", "NaN", "1" * 50]))
    end = min(len(text), position + draw(st.integers(1, 4)))
    if kind == "delete":
        return text[:position] + text[end:]
    if kind == "insert":
        return text[:position] + piece + text[position:]
    return text[:position] + piece + text[end:]


@st.composite
def mutated_text(draw, text=VALID):
    for _ in range(draw(st.integers(1, 3))):
        text = _text_mutation(draw, text)
    return text


@st.composite
def mutated_fields(draw, text=VALID):
    data = json.loads(text)
    paths = [("format",), ("version",), ("loss",), ("samples",), ("network",),
             ("network", "layers"), ("network", "activations"), ("network", "bias"),
             ("optimizer",), ("optimizer", "name"), ("optimizer", "lr"),
             ("optimizer", "batch_size"), ("optimizer", "momentum"), ("parameters",),
             ("batches",), ("known",), ("dtype",), ("loss_reduction",), ("extra",)]
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths))
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            target[path[-1]] = draw(json_values)
    return json.dumps(data)


def _read(text):
    try:
        return Trace.from_json(text)
    except InputError as error:
        assert "\n" not in str(error)
        return None


@FAST
@given(mutated_text())
def test_trace_reader_text_mutations(text):
    trace = _read(text)
    if trace is not None:  # what was read writes back and reads again the same
        assert Trace.from_json(trace.to_json()).to_json() == trace.to_json()


@FAST
@given(mutated_fields())
def test_trace_reader_field_mutations(text):
    trace = _read(text)
    if trace is not None:
        assert Trace.from_json(trace.to_json()).to_json() == trace.to_json()


@st.composite
def edited_trace(draw):
    """A trace edited so that its numbers no longer come from the data it claims."""
    base = draw(st.sampled_from([ONE, VALID]))
    data = json.loads(base)
    edit = draw(st.sampled_from(["lr", "samples", "activation", "digit"]))
    if edit == "lr":
        data["optimizer"]["lr"] = draw(st.sampled_from(["0.11", "0.09", "0.2", "0.1000001"]))
    elif edit == "samples":
        data["samples"] = data["samples"] + draw(st.integers(1, 2))
    elif edit == "activation":
        data["network"]["activations"] = [draw(st.sampled_from(["sigmoid", "identity"]))]
    else:  # one digit of one recorded parameter, well above the last place
        j = draw(st.integers(1, len(data["parameters"]) - 1))
        p = draw(st.integers(0, 1))
        value = data["parameters"][j][p]
        k = draw(st.integers(3, 12))
        digit = value[k]
        data["parameters"][j][p] = value[:k] + str((int(digit) + draw(st.integers(1, 9))) % 10) \
            + value[k + 1:]
    return base, json.dumps(data)


@SLOW
@given(edited_trace())
def test_edited_traces_are_never_converged_on_wrong_data(case):
    base, text = case
    trace = Trace.from_json(text)
    solution = recover(trace)
    if solution.status is not Status.CONVERGED:
        return
    truth = TRUTH[:1] if base is ONE else TRUTH
    assert len(solution.samples) == len(truth)
    with mpmath.workdps(60):
        found = sorted((float(x[0]), x[0], y[0]) for x, y in solution.samples)
        expected = sorted((float(x[0]), mpmath.mpf(x[0]), mpmath.mpf(y[0])) for x, y in truth)
        error = max(max(abs(a[1] - b[1]), abs(a[2] - b[2])) for a, b in zip(found, expected))
        assert error <= mpmath.mpf(10) ** -solution.digits, (text, solution)


# -- the command line -------------------------------------------------------------------------

option_values = st.sampled_from(["1", "0", "-1", "1,1", "2,3,1", "0.5", "1e999", "nan",
                                 "", ",", "abc", "9" * 60, "\u0665", "0.6,0.2", "tanh",
                                 "relu,identity", "sgd", "/nonexistent", "-o"])
options = st.sampled_from(["--layers", "--activation", "--x", "--y", "--lr", "--init",
                           "--epochs", "--dps", "--seed", "--samples", "--batch-size",
                           "--optimizer", "--momentum", "--weight-decay", "--json",
                           "--latex", "--no-bias", "--trace", "--bogus"])


@FAST
@given(st.sampled_from(["simulate", "derive"]),
       st.lists(st.tuples(options, option_values), max_size=5))
def test_command_line_parsing(command, pairs):
    argv = [command] + [item for pair in pairs for item in pair] + ["--max-seconds", "5"]
    os.environ["SYMBOLIC_INVERSION_MAX_TRACE_VALUES"] = "2000"
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse: usage errors (2) and --help (0)
        code = exit_.code
    finally:
        del os.environ["SYMBOLIC_INVERSION_MAX_TRACE_VALUES"]
    assert code in (0, 1, 2)


# -- CSV and oracle files ---------------------------------------------------------------------------

@FAST
@given(mutated_text("0.6,0.5\n0.2,0.4\n# a comment\n-1e-3,  2.5\n"))
def test_csv_reader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "samples.csv"
    path.write_text(text, encoding="utf-8")
    try:
        inputs, labels = _read_csv(path, Network([1, 1]))
    except InputError as error:
        assert "\n" not in str(error)
        return
    assert len(inputs) == len(labels) and all(len(x) == 1 for x in inputs)


ORACLE = json.dumps({"network": {"layers": [1, 2, 1], "activations": ["relu", "identity"]},
                     "samples": [{"x": ["1/2"], "y": ["2"]}, {"x": ["-3"], "y": ["0.25"]}]})


@FAST
@given(mutated_text(ORACLE) | mutated_fields(ORACLE))
def test_oracle_reader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("oracle") / "dataset.json"
    path.write_text(text, encoding="utf-8")
    try:
        network, inputs, labels = read_oracle_file(path)
    except InputError as error:
        assert "\n" not in str(error)
        return
    assert len(inputs) == len(labels) and all(len(x) == network.input_width for x in inputs)
