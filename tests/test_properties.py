"""Property-based checks (hypothesis) of everything that reads user input: the trace
reader, the command line's argument parsing, the CSV and oracle readers.

Random mutations of valid files never give anything but a value or one
:class:`InputError`; a mutated trace that no longer matches its data is never
``converged`` with data away from the truth.  Examples are bounded so that the whole
module runs in well under a minute (the reliability page, docs/reliability.md, lists
what was tried).
"""

import functools
import json
import os
import sys

import mpmath
import numpy as np
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


@pytest.mark.slow
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


# -- issue 27: the study runner's outputs and the API's argument types -------------------------
#
# Heavier than the properties above (a study runs a cell, an API call may recover):
# API_EXAMPLES in CI, 1,000 each with SYMBOLIC_INVERSION_PROPERTY_LONG=1 (not run in CI;
# docs/reliability.md says what the last long run found).

LONG = os.environ.get("SYMBOLIC_INVERSION_PROPERTY_LONG") == "1"
API_EXAMPLES = 1000 if LONG else 25
API = settings(max_examples=API_EXAMPLES, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])

#: one cell of the neuron (a fraction of a second)
TINY_STUDY = {"networks": [{"layers": [1, 1], "activations": ["tanh"]}], "samples": [1],
              "seeds": [0], "digits": [20]}


def _one_line(error):
    assert isinstance(error, InputError), repr(error)
    assert "\n" not in str(error), str(error)


@st.composite
def study_outputs(draw, folder):
    """A path for a study's output: new, an existing file with careless or hostile
    content, a directory, a FIFO, a device, a link to one, a folder that is a file..."""
    kind = draw(st.sampled_from(["new", "new_folder", "file", "directory", "fifo",
                                 "device", "link_to_device", "under_a_file", "empty",
                                 "not_a_path"]))
    target = folder / f"out{draw(st.integers(0, 10 ** 6))}.jsonl"
    if kind == "new_folder":
        target = folder / "new" / "deeper" / "out.jsonl"
    elif kind == "file":
        record = json.dumps(dict(status="converged", samples=1)) + "\n"
        pieces = draw(st.lists(st.sampled_from(
            [record, "\n", "   \n", record[:20], "{}\n", "[1]\n", '{"status": 1}\n',
             "\x00\x01\xff", "not json\n"]) | st.binary(max_size=20).map(
                 lambda b: b.decode("latin-1")), max_size=5))
        target.write_bytes("".join(pieces).encode("latin-1", "replace"))
    elif kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            return str(target)
        os.mkfifo(target)
    elif kind == "device":
        return draw(st.sampled_from([p for p in ("/dev/null", "/dev/zero", "/dev/urandom",
                                                 "/dev/full") if os.path.exists(p)]
                                    or [str(target)]))
    elif kind == "link_to_device" and os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", target)
    elif kind == "under_a_file":
        (folder / "plain").write_text("x")
        target = folder / "plain" / "out.jsonl"
    elif kind == "empty":
        return ""
    elif kind == "not_a_path":
        return draw(st.sampled_from([5, b"out.jsonl", ["a"], 1.5, "a\x00b"]))
    return str(target)


# an exception in a thread (a cell's timer) fails the property too
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.filterwarnings("ignore:.*the last line is incomplete")  # (cut lines: drawn)
@API
@given(st.data())
def test_a_study_output_of_any_kind_ends_in_records_or_one_line(tmp_path_factory, data):
    from symbolic_inversion.study import _LOCKED, read_records, run_study
    folder = tmp_path_factory.mktemp("outputs")
    output = data.draw(study_outputs(folder))
    precision = mpmath.mp.prec
    try:
        result = run_study(TINY_STUDY, output=output)
    except InputError as error:
        _one_line(error)
    else:
        assert result.complete and result.records[-1]["status"] == "converged"
        with open(output, "rb") as handle:    # what is on disk ends with a whole line
            assert handle.read().endswith(b"\n")
        assert result.records[-1] in read_records(output, warn=False)
    finally:
        assert not _LOCKED, "a lock was left"
    assert mpmath.mp.prec == precision


@functools.lru_cache(maxsize=1)
def _api_cases():
    """``name -> (function, arguments, keyword arguments)`` for the public API, each
    call valid and quick as it is; a test replaces one argument."""
    import symbolic_inversion as si
    from symbolic_inversion import plot
    from symbolic_inversion.limits import override, time_budget
    from symbolic_inversion.study import Study, read_records, run_cell

    def entered(context):
        def call(*args, **kwargs):
            with context(*args, **kwargs):
                pass
        return call
    net = Network([1, 1], "tanh")
    one = Trace.from_json(ONE)
    solution = recover(one)
    cell = Study.from_dict(TINY_STUDY).cells()[0]
    return {
        "recover": (recover, [one], {"dps": 40, "steps": 2, "backend": "mpmath", "seed": 0,
                                     "attempts": 2, "method": "auto", "known": None,
                                     "verify": False, "progress": None}),
        "simulate": (simulate, [net, ["0.6"], ["0.5"], "0.1", 2],
                     {"init": ["0.5", "0.5"], "dps": 20, "seed": 0, "momentum": "0",
                      "weight_decay": "0", "dtype": None, "loss_reduction": None}),
        "run_study": (si.run_study, [TINY_STUDY], {"executor": None, "workers": None,
                                                   "output": None, "progress": None,
                                                   "timeout": None, "retry_failed": False}),
        "run_cell": (run_cell, [cell], {"timeout": None}),
        "Study.from_dict": (Study.from_dict, [TINY_STUDY], {}),
        "read_records": (read_records, ["/nonexistent/study.jsonl"], {}),
        "recovered_fraction": (si.recovered_fraction, [solution, [[0.6]], [[0.5]], 1e-9], {}),
        "time_budget": (entered(time_budget), [5], {}),
        "override": (entered(override), [], {"max_dps": 100, "max_seconds": 10.0}),
        "error_record": (plot.error_record, [solution, ["0.6"], ["0.5"], one], {}),
        "analyze": (si.analyze, [one], {"dps": 40}),
        "certify": (si.certify, [one, solution], {"dps": 40, "steps": 2, "backend": "iv"}),
        "resimulate": (si.resimulate, [one, solution], {}),
        "Network": (Network, [[1, 1], "tanh"], {"bias": True}),
        "Trace": (Trace, [net, "0.1", 1, [["0.5", "0.5"], ["0.4", "0.4"]]], {}),
        "InversionSystem": (si.InversionSystem, [net, 2, 2], {}),
        "system_counts": (si.system_counts, [net, 2, 2], {}),
        "condition_number": (si.condition_number, [one, [[0.6]], [[0.5]]], {}),
        "supported_accuracy": (si.supported_accuracy, [one, [[0.6]], [[0.5]]], {}),
        "digits_needed": (si.digits_needed, [1], {"trials": 1, "steps": 2}),
        "conditioning_table": (si.conditioning_table, [(1,)], {"trials": 1}),
        "exact_counts": (si.exact_counts, [net, 2], {}),
        "generic_rank": (si.generic_rank, [net, 1, 1], {}),
        "paper_counts": (si.paper_counts, [4, 2, 10], {"steps": 1}),
        "default_certify_dps": (si.default_certify_dps, [one], {}),
        "get_loss": (si.get_loss, ["mse"], {}),
        "get_activation": (si.get_activation, ["tanh"], {}),
        "read_trace": (si.read_trace, ["/nonexistent/trace.json"], {}),
        "plot_precision_law": (plot.plot_precision_law,
                               [[{"samples": 1, "error": 1e-20, "error_bound": 1e-18}]],
                               {"against": "samples"}),
        "plot_paths": (plot.plot_paths, [solution], {}),
        "plot_residuals": (plot.plot_residuals, [one, solution], {}),
    }


# values of the wrong type or out of range for any argument
hostile_values = (st.sampled_from([
    None, "", "x", "0.5", "\u0665", ".5", "5.", "nan", -1, 0, 10 ** 30, -10 ** 30, 2 ** 63,
    1.5, float("nan"), float("inf"), -float("inf"), True, b"x", (), (1,), set(),
    {"a": 1}, [1, "a"], [[]], object(), np.array([1.0, np.nan]), np.int64(-3),
    np.float32(2.5), mpmath.mpf("nan"), "/dev/zero"]) | json_values)


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
@API
@given(st.data())
def test_the_api_answers_any_argument_with_a_value_or_one_line(tmp_path_factory, data):
    from symbolic_inversion.limits import time_budget
    cases = _api_cases()
    name = data.draw(st.sampled_from(sorted(cases)))
    function, arguments, keywords = cases[name]
    slots = [("position", k) for k in range(len(arguments))] + \
        [("keyword", key) for key in keywords]
    if not slots:
        return
    kind, where = data.draw(st.sampled_from(slots))
    value = data.draw(hostile_values)
    arguments, keywords = list(arguments), dict(keywords)
    if kind == "position":
        arguments[where] = value
    else:
        keywords[where] = value
    precision, folder = mpmath.mp.prec, os.getcwd()
    os.chdir(tmp_path_factory.mktemp("api"))   # a path like "x" is written here
    try:
        with time_budget(20):   # a valid but long request ends as a refusal, in a line
            function(*arguments, **keywords)
    except InputError as error:
        _one_line(error)
    finally:
        os.chdir(folder)
        if "matplotlib.pyplot" in sys.modules:   # (a plot drawn: its figure closed)
            sys.modules["matplotlib.pyplot"].close("all")
    assert mpmath.mp.prec == precision
