"""Every case of the hostile-input report (issue 16): one line and exit 2, or an honest
non-converged status; never a traceback, a hang or ``converged`` on wrong data.

Each case is small and must be refused fast: that is the point.  The table of these
probes and their outcomes is in docs/reliability.md.
"""

import json
from decimal import Decimal
import os
import re
import sys
import time

import mpmath
import numpy as np
import pytest

from symbolic_inversion import (InputError, Network, Trace, read_trace, recover, simulate,
                                Status)
from symbolic_inversion.cli import main
from symbolic_inversion.solvers.symmetries import SQUARE_NOTE

TRUTH_X, TRUTH_Y = ["0.6", "0.2"], ["0.5", "0.4"]


@pytest.fixture(scope="module")
def short_zero():
    """The report's trace: the exact zero of ``--init 0.5,0`` written as ``"0.0"``."""
    trace = simulate(Network([1, 1], "tanh"), TRUTH_X, TRUTH_Y, "0.1", 4,
                     init=["0.5", "0"], dps=60)
    assert trace.to_dict()["parameters"][0][1] == "0.0"
    return trace.to_dict()


def _cli(capsys, *argv):
    started = time.monotonic()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


def _refused(capsys, *argv, words=(), seconds=20):
    code, out, err, took = _cli(capsys, *argv)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert took < seconds
    return err


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# -- 1. wrong claims from one short zero -----------------------------------------------------

def test_short_zero_alone_still_recovers_the_truth(short_zero):
    solution = recover(Trace.from_dict(short_zero))
    assert solution.status is Status.CONVERGED and solution.digits >= 40
    with mpmath.workdps(80):
        error = max(abs(v - mpmath.mpf(t)) for s, (x, y) in zip(
        sorted(solution.samples, key=lambda s: float(s[0][0])),
        [(["0.2"], ["0.4"]), (["0.6"], ["0.5"])]) for v, t in zip(s[0] + s[1], x + y))
    assert error < mpmath.mpf(10) ** -solution.digits


@pytest.mark.parametrize("edit", ["lr", "samples", "activation"])
def test_short_zero_does_not_excuse_an_edited_trace(short_zero, edit):
    data = json.loads(json.dumps(short_zero))
    if edit == "lr":
        data["optimizer"]["lr"] = "0.11"
    elif edit == "samples":
        data["samples"] = 3
    else:
        data["network"]["activations"] = ["sigmoid"]
    solution = recover(Trace.from_dict(data))
    assert solution.status is not Status.CONVERGED, solution


def test_each_value_counts_with_its_own_last_place(short_zero):
    trace = Trace.from_dict(short_zero)
    places = trace.last_places()
    assert str(places[0][1]) == "0.1"          # the short zero, its own last place
    assert places[1][1] < Decimal("1e-58")  # every other value, 60 digits
    bounds = trace.gradient_uncertainties()
    assert bounds[0][1] > mpmath.mpf("0.5") and bounds[1][1] < mpmath.mpf("1e-57")
    assert bounds[0][0] < mpmath.mpf("1e-57")  # the weight's equation is not loosened


def test_converged_needs_a_digit_vouched_for():
    # a 2-digit trace of two samples: a root explains every step, but the trace's digits
    # bound nothing about it (the judge's own rule)
    trace = Trace(Network([1, 1]), "0.1", 2, [["0.5", "0.5"], ["0.49", "0.48"],
                                               ["0.48", "0.46"], ["0.47", "0.45"]])
    solution = recover(trace)
    assert solution.status is not Status.CONVERGED
    assert "no digit is vouched for" in solution.message


def test_converged_needs_a_digit_whatever_the_solver(monkeypatch):
    import symbolic_inversion.solvers as solvers
    from symbolic_inversion.solvers.solution import Solution

    def careless(trace, options):
        return Solution([([mpmath.mpf(1)], [mpmath.mpf(2)])], Status.CONVERGED,
                        mpmath.mpf(0), 0, {"method": "careless"})
    monkeypatch.setitem(solvers.SOLVERS, "careless", careless)
    trace = simulate(Network([1, 1]), [0.6], [0.5], "0.1", 2, init=[0.5, 0.5], dps=20)
    solution = recover(trace, method="careless")
    assert solution.status is Status.PRECISION_LIMITED and not solution.ok
    assert "no digit of the data is vouched for" in solution.message


# -- 2. the schedule against batch_size and the optimizer -------------------------------------

def _two_step(dps=30):
    return simulate(Network([1, 1]), TRUTH_X, TRUTH_Y, "0.1", 2, init=["0.5", "0.5"],
                    dps=dps).to_dict()


def test_batches_larger_than_batch_size_are_refused(tmp_path, capsys):
    data = _two_step()
    data["optimizer"] = {"name": "sgd", "lr": "0.1", "batch_size": 1}
    data["batches"] = [[0, 1], [0, 1]]
    _refused(capsys, "recover", _write(tmp_path, "t.json", data),
             words=("batches[0]", "optimizer.batch_size 1"))


def test_batches_on_a_gd_trace_are_refused(tmp_path, capsys):
    data = _two_step()
    data["batches"] = [[0], [1]]
    _refused(capsys, "recover", _write(tmp_path, "t.json", data),
             words=("batches", "optimizer 'gd'"))


# -- 3. square traces through the SGD path ------------------------------------------------------

def test_square_momentum_trace_carries_the_caveat():
    trace = simulate(Network([1, 1]), TRUTH_X, TRUTH_Y, "0.1", 2, init=["0.5", "0.5"],
                     dps=30, momentum="0.5")
    solution = recover(trace)
    assert solution.square and solution.to_dict()["square"] is True
    assert solution.detail.startswith(SQUARE_NOTE)


# -- 4. tracebacks -> one line, exit 2 -------------------------------------------------------------

@pytest.mark.parametrize("command", [["recover"], ["analyze"], ["derive", "--trace"]])
def test_numbers_beyond_the_digit_limit(tmp_path, capsys, command):
    data = _two_step()
    data["parameters"][1][0] = "0." + "1" * 5000
    _refused(capsys, *command, _write(tmp_path, "t.json", data),
             words=("parameters[1][0]", "max_number_digits"))


def test_bare_json_integer_beyond_the_limit(tmp_path, capsys):
    text = json.dumps(_two_step()).replace('"samples": 2', '"samples": ' + "1" * 4400)
    _refused(capsys, "recover", _write(tmp_path, "t.json", text),
             words=("JSON integer", "max_number_digits"))


@pytest.mark.parametrize("argv, words", [
    (["--dps", "4300"], ("dps: 4300", "max_dps")),
    (["--seed", "-1"], ("seed: must be at least 0",)),
])
def test_simulate_options(capsys, argv, words):
    _refused(capsys, "simulate", "--x", "0.6", "--y", "0.5", "--epochs", "1", *argv,
             words=words)


@pytest.mark.parametrize("target, reason", [("dir", "Is a directory"),
                                            ("missing", "No such file or directory"),
                                            ("full", "No space left on device")])
def test_writes_that_fail_say_why(tmp_path, capsys, target, reason):
    path = {"dir": tmp_path, "missing": tmp_path / "nope" / "t.json",
            "full": "/dev/full"}[target]
    if target == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    _refused(capsys, "simulate", "--x", "0.6", "--y", "0.5", "--init", "0.5,0.5",
             "--epochs", "1", "-o", path, words=("-o: cannot write", reason))


def test_oracle_file_problems(tmp_path, capsys):
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe{\x80}")
    _refused(capsys, "oracle", binary, words=("not UTF-8",))
    _refused(capsys, "oracle", _write(tmp_path, "deep.json", "[" * 100000 + "]" * 100000),
             words=("nesting depth", "max_json_depth"))
    _refused(capsys, "oracle", _write(tmp_path, "act.json", {
        "network": {"layers": [1, 1], "activations": 5}, "samples": [{"x": ["1"], "y": ["1"]}]}),
        words=("network.activations",))


def test_certify_solution_nested_deeply(tmp_path, capsys):
    trace = _write(tmp_path, "t.json", _two_step())
    _refused(capsys, "certify", trace, "--solution",
             _write(tmp_path, "deep.json", "[" * 100000 + "]" * 100000),
             words=("--solution", "max_json_depth"))


def test_derive_of_a_large_network_names_the_limit(capsys):
    _refused(capsys, "derive", "--layers", "100,100,1",
             words=("max_symbolic_parameters = 40", "--max-symbolic-parameters"))
    _refused(capsys, "derive", "--layers", "30,30,1", words=("max_symbolic_parameters",))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_is_not_read(capsys):
    _refused(capsys, "recover", "/dev/zero", words=("not a regular file",), seconds=5)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_does_not_block(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _refused(capsys, "recover", fifo, words=("a FIFO",), seconds=5)


# -- 5. bounds --------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["recover", "certify"])
def test_huge_dps_is_refused_at_once(tmp_path, capsys, command):
    _refused(capsys, command, _write(tmp_path, "t.json", _two_step()), "--dps", "1000000",
             words=("1000000", "max_dps"), seconds=10)


def test_large_file_is_refused_before_parsing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_FILE_BYTES", "200")
    _refused(capsys, "recover", _write(tmp_path, "t.json", _two_step(60)),
             words=("max_file_bytes = 200",))


def test_many_steps_are_refused_before_conversion(tmp_path, capsys, monkeypatch):
    # the default admits one step of an MNIST-sized network (4 million values): the
    # refusal before conversion is the same at any limit, shown at a million
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_TRACE_VALUES", "1000000")
    data = _two_step()
    data["parameters"] = [["0", "0"]] * 600_001   # 7 MB: under the file limit
    _refused(capsys, "recover", _write(tmp_path, "t.json", data),
             words=("parameters", "max_trace_values"), seconds=30)


def test_wide_network_is_refused(capsys, tmp_path):
    data = {"format": "symbolic-inversion-trace", "version": 1,
            "network": {"layers": [2000, 1000], "activations": ["tanh"]},
            "optimizer": {"name": "gd", "lr": "0.1"}, "samples": 2,
            "parameters": [["0"], ["0"]]}
    _refused(capsys, "recover", _write(tmp_path, "t.json", data),
             words=("max_parameters",))


def test_budget_ends_a_long_command(capsys):
    err = _refused(capsys, "simulate", "--layers", "1,1", "--x", "0.6", "--y", "0.5",
                   "--init", "0.5,0.5", "--epochs", "90000", "--dps", "50",
                   "--max-seconds", "0.5", words=("time budget of 0.5 s", "--max-seconds"))
    assert "max_seconds" in err


@pytest.mark.parametrize("entry", [
    {"samples": [{"x": ["1e999999"], "y": ["0.5"]}]},
    {"network": {"layers": [1, 10000, 1], "activations": ["relu", "identity"]}},
])
def test_oracle_bounds(tmp_path, capsys, entry):
    data = {"network": {"layers": [1, 1], "activations": ["relu"]},
            "samples": [{"x": ["0.5"], "y": ["0.5"]}]}
    data.update(entry)
    _refused(capsys, "oracle", _write(tmp_path, "o.json", data),
             words=("exceeds the limit max_oracle",), seconds=10)


# -- 6. smaller ----------------------------------------------------------------------------------------

def test_extra_float_key_round_trips(tmp_path):
    # an extension key (x-...) is kept unread, its numbers exactly as written
    text = json.dumps(_two_step())[:-1] + ', "x-note": 1.50, "x-more": [2E+3, {"a": null}]}'
    trace = Trace.from_json(text)
    path = tmp_path / "out.json"
    trace.write(path)
    again = json.loads(path.read_text())
    assert again["x-note"] == 1.5 and again["x-more"] == [2000.0, {"a": None}]
    assert '"x-note": 1.50' in path.read_text()  # the number as written


@pytest.mark.parametrize("call, field", [
    (lambda: read_trace(None), "trace: expected a file path"),
    (lambda: Network(None), "network.layers"),
    (lambda: simulate(Network([1, 1]), None, [0.5], "0.1", 1), "x: expected a list"),
    (lambda: simulate(Network([1, 1]), [0.6], [0.5], "0.1", 1, init=5), "init"),
    (lambda: recover(simulate(Network([1, 1]), [0.6], [0.5], "0.1", 2, init=[0.5, 0.5],
                              dps=20), steps="2"), "steps: expected an integer"),
    (lambda: recover("trace.json"), "recover: expected a Trace"),
    (lambda: Trace(Network([1, 1]), "0.1", "1", [[0, 0], [0, 0]]), "samples"),
])
def test_wrong_python_types_are_input_errors(call, field):
    with pytest.raises(InputError, match=field):
        call()


def test_numpy_integer_samples_and_steps_alike():
    trace = simulate(Network([1, 1]), [0.6], [0.5], "0.1", np.int64(2), init=[0.5, 0.5],
                     dps=np.int64(25))
    solution = recover(trace, steps=np.int64(2), dps=np.int64(40))
    with mpmath.workdps(40):
        assert solution.ok and abs(solution.samples[0][0][0] - mpmath.mpf("0.6")) < 1e-20


def test_negative_tolerance(tmp_path, capsys):
    _refused(capsys, "certify", _write(tmp_path, "t.json", _two_step()), "--tolerance", "-1",
             words=("--tolerance: must be positive",))


@pytest.mark.parametrize("text", ["0.\u0665", " 0.5", "0.5 ", "\u00a00.5", "0.5\n"])
def test_numbers_follow_the_plain_pattern(tmp_path, capsys, text):
    data = _two_step()
    data["parameters"][1][0] = text
    _refused(capsys, "recover", _write(tmp_path, "t.json", data),
             words=("parameters[1][0]: not a decimal number",))


def test_duplicate_keys_are_refused(tmp_path, capsys):
    text = json.dumps(_two_step()).replace('"samples": 2', '"samples": 3, "samples": 2')
    _refused(capsys, "recover", _write(tmp_path, "t.json", text),
             words=("duplicate key 'samples'",))


def test_command_line_numbers_may_have_blanks(capsys):
    code, out, err, _ = _cli(capsys, "simulate", "--x", "0.6, 0.2", "--y", "0.5, 0.4",
                             "--init", "0.5, 0.5", "--epochs", "1", "--dps", "20")
    assert code == 0 and json.loads(out)["samples"] == 2


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    import symbolic_inversion.cli as cli

    def broken(args):
        raise KeyError("deep inside")
    monkeypatch.setattr(cli, "run_derive", broken)
    parser_main = cli.main
    monkeypatch.delenv("SYMBOLIC_INVERSION_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["symbolic-inversion"])
    code = parser_main(["derive"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unexpected KeyError" in err and "SYMBOLIC_INVERSION_DEBUG" in err


@pytest.mark.parametrize("name", ["condition_number", "supported_accuracy",
                                  "jacobian_singular_values", "resimulate",
                                  "one_sample_closed_form", "analyze_identifiability",
                                  "digits_needed", "certify", "analyze"])
@pytest.mark.parametrize("bad", [None, "x", 1.5, {"a": 1}])
def test_public_functions_refuse_wrong_types_as_input_errors(name, bad):
    import symbolic_inversion
    function = getattr(symbolic_inversion, name)
    trace = simulate(Network([1, 1]), [0.6], [0.5], "0.1", 2, init=[0.5, 0.5], dps=20)
    arguments = {"condition_number": (trace, bad, [[0.5]]),
                 "supported_accuracy": (trace, [[0.6]], bad),
                 "jacobian_singular_values": (bad, [[0.6]], [[0.5]]),
                 "resimulate": (trace, bad), "one_sample_closed_form": (bad,),
                 "analyze_identifiability": (bad,),
                 "digits_needed": (bad,), "certify": (bad,), "analyze": (bad,)}[name]
    with pytest.raises(InputError) as error:
        function(*arguments)
    assert "\n" not in str(error.value)


# -- issue 27: resources bounded, refused at once with the limit named ---------------------------

@pytest.mark.parametrize("samples", [10 ** 6, 10 ** 30])
def test_derive_of_a_trace_claiming_many_samples_is_refused_at_once(tmp_path, capsys,
                                                                     samples):
    data = _two_step()
    data["samples"] = samples
    err = _refused(capsys, "derive", "--trace", _write(tmp_path, "t.json", data), "--latex",
                   words=("max_symbolic_terms = 2000", f"{samples} samples",
                          "SYMBOLIC_INVERSION_MAX_SYMBOLIC_TERMS"), seconds=10)
    assert f"{samples * 2 * 2} exceeds" in err   # samples x 2 steps x 2 parameters


def test_symbolic_terms_bound_the_python_api_too(monkeypatch):
    from symbolic_inversion import InversionSystem
    from symbolic_inversion.limits import override
    system = InversionSystem.from_trace(Trace.from_dict(_two_step()))
    assert system.symbolic_terms() == 2 * 2 * 2 and len(system.equations()) == 4
    with override(max_symbolic_terms=7), pytest.raises(InputError,
                                                       match="max_symbolic_terms = 7"):
        system.equations()
    monkeypatch.setenv("SYMBOLIC_INVERSION_MAX_SYMBOLIC_TERMS", "8")
    assert len(system.latex().splitlines()) == 6     # 8 terms: at the limit, allowed


def test_attempts_are_bounded_everywhere(tmp_path, capsys):
    from symbolic_inversion.limits import override
    from symbolic_inversion.study import Study
    _refused(capsys, "recover", _write(tmp_path, "t.json", _two_step()), "--attempts",
             "1000000000", words=("--attempts: 1000000000 exceeds the limit max_attempts = "
                                  "10000", "SYMBOLIC_INVERSION_MAX_ATTEMPTS"), seconds=10)
    trace = Trace.from_dict(_two_step())
    with pytest.raises(InputError, match="^attempts: 100000000 exceeds the limit max_att"):
        recover(trace, attempts=10 ** 8)
    config = {"networks": [{"layers": [1, 1]}], "samples": [2], "seeds": [0],
              "digits": [20], "attempts": 10 ** 9}
    with pytest.raises(InputError, match="^attempts: 1000000000 exceeds the limit"):
        Study.from_dict(config)
    with override(max_attempts=10 ** 9):
        assert Study.from_dict(config).attempts == 10 ** 9


def test_many_steps_are_refused_before_parsing():
    # issue 27: a 9.6 MB trace of 600,001 steps was parsed whole (1.2 million Python
    # numbers: 184 MB and 10 s measured here) before its count was refused
    import tracemalloc
    text = json.dumps(_two_step())
    head = text[:text.index('"parameters"')]
    text = head + '"parameters": [' + ",".join(["[0.4925,0.4810]"] * 600_001) + "]}"
    assert 9_000_000 < len(text) < 10_000_000
    from symbolic_inversion.limits import override
    tracemalloc.start()
    try:   # the limit of issue 27 (the default now admits one MNIST-sized step)
        with override(max_trace_values=1_000_000), pytest.raises(InputError) as error:
            Trace.from_json(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(error.value).startswith("parameters: values in 600001 vectors: 1200002 "
                                       "exceeds the limit max_trace_values = 1000000")
    assert peak < 100_000_000, peak   # counted from the text: about 7 bytes per byte


def test_the_count_before_parsing_is_the_count_after():
    from symbolic_inversion.files import array_size
    from symbolic_inversion.limits import override
    text = json.dumps(dict(_two_step(), **{"x-note": 'a "parameters": [[1, 2, 3]] \\" ['}))
    assert array_size(text, "parameters") == (3, 6)
    with override(max_trace_values=6):
        assert Trace.from_json(text).steps == 2
    with override(max_trace_values=5), pytest.raises(
            InputError, match=r"^parameters: values in 3 vectors: 6 exceeds"):
        Trace.from_json(text)                                  # before parsing
    nested = json.dumps({"x": {"parameters": [[1, 2]]}, "parameters": "none"})
    assert array_size(nested, "parameters") is None            # not in plain sight


@pytest.mark.parametrize("lr", ["4.9e-324", "1e-3000", "1e-65"])
@pytest.mark.parametrize("command", ["recover", "analyze", "certify"])
def test_a_learning_rate_below_the_trace_resolution_is_refused(tmp_path, capsys, lr, command):
    # issue 27: "unexpected NoConvergence" (mpmath's polynomial roots of moments of
    # size 1e320) for recover, analyze and certify; a 60-digit trace's finest last place
    # is 1e-60: a step of lr 1e-65 times a gradient of order one changes no digit
    data = _two_step(60)
    data["optimizer"]["lr"] = lr
    _refused(capsys, command, _write(tmp_path, "t.json", data), words=(
        f"optimizer.lr: {lr.upper()} is below 1E-60, the finest last place of the trace's "
        f"values",
        "cannot be resolved"), seconds=20)


def test_learning_rates_are_checked_in_the_python_api_too():
    from symbolic_inversion import analyze, certify
    data = _two_step(60)
    data["optimizer"]["lr"] = "1e-70"
    trace = Trace.from_dict(data)
    for call in (lambda: recover(trace), lambda: analyze(trace),
                 lambda: certify(trace, [(["0.6"], ["0.5"]), (["0.2"], ["0.4"])])):
        with pytest.raises(InputError, match=r"^optimizer\.lr: 1E-70 is below 1E-60"):
            call()
    data["optimizer"]["lr"] = "1e-60"   # at the finest last place: read, not refused
    assert recover(Trace.from_dict(data), backend="mpmath").status is not Status.CONVERGED


def test_a_float_trace_learning_rate_against_its_finest_unit_in_the_last_place():
    trace = simulate(Network([1, 1]), TRUTH_X, TRUTH_Y, "0.1", 2, init=["0.5", "0.5"],
                     dtype="float32")
    data = trace.to_dict()
    data["optimizer"]["lr"] = "1e-12"   # the finest float32 spacing here: 2^-25 (3e-8)
    with pytest.raises(InputError, match=r"^optimizer\.lr: 1E-12 is below 2\.98E-8"):
        recover(Trace.from_dict(data))


def test_an_edited_tiny_learning_rate_ends_honestly_with_either_backend(tmp_path):
    data = _two_step(60)
    data["optimizer"]["lr"] = "1e-40"    # resolvable, but gradients of 1e38: no data fit
    for backend in ("mpmath", "flint"):
        if backend == "flint":
            pytest.importorskip("flint")
        solution = recover(Trace.from_dict(data), backend=backend)
        assert solution.status is not Status.CONVERGED and solution.digits == 0


def test_a_start_polynomial_whose_roots_do_not_converge_gives_no_start(monkeypatch):
    # what "lr": "4.9e-324" reached on the mpmath backend: mpmath.polyroots raised
    # NoConvergence out of a moment path's start, and out of recover
    from symbolic_inversion.arithmetic import Mpmath

    def no_convergence(self, coefficients):
        raise mpmath.libmp.NoConvergence("Didn't converge in maxsteps=200 steps.")
    monkeypatch.setattr(Mpmath, "roots", no_convergence)
    solution = recover(Trace.from_dict(_two_step()), method="moments", backend="mpmath",
                       attempts=2)
    assert solution.status is not Status.CONVERGED
    moment_paths = [p for p in solution.stats["paths"] if p["path"] == "moments"]
    assert moment_paths and all(p["code"] == "no_start" and p["reason"] ==
                                "the roots of the start polynomial did not converge"
                                for p in moment_paths)


# -- issue 27: public functions given wrong types ---------------------------------------------

@pytest.fixture(scope="module")
def one_sample():
    trace = simulate(Network([1, 1]), ["0.6"], ["0.5"], "0.1", 2, init=["0.5", "0.5"],
                     dps=30)
    return trace, recover(trace)


@pytest.mark.parametrize("call, message", [
    (lambda t, s: __import__("symbolic_inversion").run_study(
        {"networks": [{"layers": [1, 1]}], "samples": [1], "seeds": [0], "digits": [20]},
        executor=5), "executor: expected a concurrent.futures.Executor or a "
                     "distributed.Client, got int"),
    (lambda t, s: __import__("symbolic_inversion").run_study(
        {"networks": [{"layers": [1, 1]}], "samples": [1], "seeds": [0], "digits": [20]},
        timeout=float("inf")), "timeout: expected a positive number of seconds up to 1e8"),
    (lambda t, s: __import__("symbolic_inversion").recovered_fraction(None, [[0.6]],
                                                                       [[0.5]], 1e-9),
     "recovered_fraction: expected a Solution, got NoneType"),
    (lambda t, s: __import__("symbolic_inversion").recovered_fraction(s, [], [], 1e-9),
     "inputs: need at least one sample"),
    (lambda t, s: __import__("symbolic_inversion").recovered_fraction(s, [0.6], [0.5], "x"),
     'tolerance: not a decimal number: "x"'),
    (lambda t, s: recover(t, method=np.array(["auto"])),
     "method: expected 'auto' or a solver's name, got ndarray"),
    (lambda t, s: recover(t, verify=np.array([1.0, np.nan])),
     "verify: expected True or False, got ndarray"),
])
def test_wrong_types_for_the_api_of_issue_27(one_sample, call, message):
    with pytest.raises(InputError) as error:
        call(*one_sample)
    assert str(error.value).startswith(message), str(error.value)


def test_error_record_and_recovered_fraction_take_samples_as_simulate_does(one_sample):
    from symbolic_inversion import recovered_fraction
    from symbolic_inversion.plot import error_record
    trace, solution = one_sample
    nested = error_record(solution, [["0.6"]], [["0.5"]], trace)
    assert error_record(solution, ["0.6"], ["0.5"], trace) == nested      # flat, as simulate
    assert error_record(solution, [0.6], [0.5]) == dict(nested, digits=None)
    assert 0 < nested["error"] < 1e-25
    assert recovered_fraction(solution, [0.6], [0.5], "1e-25") == 1.0
    assert recovered_fraction(solution, [0.6], [0.5], mpmath.mpf("1e-40")) == 0.0
    with pytest.raises(InputError, match=r"^inputs\[0\]: expected 1 values, got 2"):
        error_record(solution, [[0.6, 0.1]], [[0.5]], trace)


# -- issue 27: the documented number pattern, everywhere ----------------------------------------

@pytest.mark.parametrize("text", [".49", "49.", "-.5", "5.e3", "+.5e1"])
def test_numbers_need_digits_on_both_sides_of_the_point(tmp_path, capsys, text):
    data = _two_step()
    data["parameters"][1][0] = text
    _refused(capsys, "recover", _write(tmp_path, "t.json", data),
             words=(f'parameters[1][0]: not a decimal number: "{text}"',))
    with pytest.raises(InputError, match=r"^(optimizer\.)?lr: not a decimal number"):
        simulate(Network([1, 1]), [0.6], [0.5], text, 1)
    from symbolic_inversion.oracle import parse_rational
    with pytest.raises(InputError, match=f'^x: not a rational number: "{re.escape(text)}"'):
        parse_rational(text, "x")


@pytest.mark.parametrize("argv, option", [
    (["simulate", "--x", "0.6", "--y", "0.5", "--dps", "\u0665\u0660"], "--dps"),
    (["simulate", "--x", "0.6", "--y", "0.5", "--epochs", "\uff12"], "--epochs"),  # fullwidth 2
    (["simulate", "--x", "0.6", "--y", "0.5", "--seed", "1_000"], "--seed"),
    (["derive", "--samples", "\u0662"], "--samples"),
    (["simulate", "--x", "0.6", "--y", "0.5", "--max-seconds", "\u0665"], "--max-seconds"),
    (["simulate", "--x", "0.6", "--y", "0.5", "--max-seconds", "nan"], "--max-seconds"),
    (["simulate", "--x", "0.6", "--y", "0.5", "--max-seconds", "infinity"], "--max-seconds"),
    (["study", "s.json", "--cell-timeout", "1e999"], "--cell-timeout"),
])
def test_command_line_numbers_follow_the_pattern_too(capsys, argv, option):
    # int("٥٠") is 50 and float("٥") 5.0 in Python: argparse's int and float took them
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"argument {option}: not a" in err, err


def test_command_line_integers_still_take_blanks_and_signs(capsys):
    code, out, err, _ = _cli(capsys, "simulate", "--x", "0.6", "--y", "0.5", "--init",
                             "0.5,0.5", "--epochs", " 1 ", "--dps", "+20", "--max-seconds",
                             " 30.5 ")
    assert code == 0 and json.loads(out)["samples"] == 1


def test_a_gd_trace_with_a_batch_size_is_refused(tmp_path, capsys):
    data = _two_step()
    data["optimizer"]["batch_size"] = 1
    _refused(capsys, "recover", _write(tmp_path, "t.json", data), words=(
        "optimizer.batch_size: gd uses every sample at every step; a minibatch trace "
        "names sgd",))
    with pytest.raises(InputError, match="^batch_size: only sgd takes a batch size"):
        simulate(Network([1, 1]), [0.6], [0.5], "0.1", 1, batch_size=1)
