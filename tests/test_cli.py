"""The command line end to end, as a user runs it: ``python -m symbolic_inversion ...``.

References: the Python API on the same inputs, the data that generated each trace,
counts worked out by hand.
"""

import json
import subprocess
import sys

import mpmath
import pytest

from symbolic_inversion import Network, Trace, simulate


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "symbolic_inversion", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def one_json_object(stdout):
    """Parse stdout, insisting that it holds exactly one JSON object and nothing else."""
    data, end = json.JSONDecoder().raw_decode(stdout.lstrip())
    assert stdout.lstrip()[end:].strip() == ""
    assert isinstance(data, dict)
    return data


def assert_clean_error(result, code=2, mentions=None):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    if mentions:
        assert mentions in lines[0], lines[0]


COMMANDS = ["reproduce", "simulate", "derive", "recover", "analyze", "certify", "oracle",
            "trace-from-checkpoints"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help_with_examples(command):
    from symbolic_inversion.cli import build_parser
    result = run(command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    examples = result.stdout.split("examples:\n")[1].splitlines()
    assert examples and all((line + " ").startswith(f"  symbolic-inversion {command} ")
                            for line in examples)
    # every option has help text
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    assert all(action.help for action in parser._actions), command


def test_recover_help_lists_the_methods():
    from symbolic_inversion import SOLVERS
    text = " ".join(run("recover", "--help").stdout.split())
    assert all(name in text for name in SOLVERS)


def test_simulate_prints_the_trace_the_api_computes(tmp_path):
    result = run("simulate", "--layers", "1,1", "--activation", "tanh", "--x", "0.6,0.2",
                 "--y", "0.5,0.4", "--lr", "0.1", "--init", "0.5,0.5", "--epochs", "5",
                 "--dps", "50")
    assert result.returncode == 0, result.stderr
    trace = Trace.from_json(result.stdout)
    expected = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], "0.1", 5,
                        init=["0.5", "0.5"], dps=50)
    assert result.stdout.strip() == expected.to_json()
    assert trace.steps == 5 and trace.samples == 2 and trace.digits >= 49
    # the spec's example file: Table 2's trace, 8 digits
    assert f"{float(trace.parameters[1][0]):.8f}" == "0.49254724"

    path = tmp_path / "trace.json"
    written = run("simulate", "--x", "0.6", "--y", "0.5", "--init", "0.5,0.5", "--epochs", "3",
                  "--dps", "60", "-o", path)
    assert written.returncode == 0 and written.stdout == ""
    assert Trace.read(path).digits >= 59


def test_simulate_reads_multidimensional_samples_from_csv(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("# x0, x1, x2, y0, y1\n0.3,-0.2,0.7,0.25,0.8\n")
    path = tmp_path / "trace.json"
    result = run("simulate", "--layers", "3,4,2", "--activation", "tanh,sigmoid", "--data", data,
                 "--epochs", "3", "--dps", "60", "--seed", "1", "-o", path)
    assert result.returncode == 0, result.stderr
    trace = Trace.read(path)
    assert trace.network == Network([3, 4, 2], ["tanh", "sigmoid"]) and trace.samples == 1
    recovered = run("recover", path, "--json")
    assert recovered.returncode == 0, recovered.stderr
    answer = one_json_object(recovered.stdout)
    assert answer["status"] == "converged" and answer["digits"] >= 40
    (sample,) = answer["samples"]
    with mpmath.workdps(70):
        got = [mpmath.mpf(v) for v in sample["x"] + sample["y"]]
        truth = [mpmath.mpf(v) for v in ("0.3", "-0.2", "0.7", "0.25", "0.8")]
        assert max(abs(a - b) for a, b in zip(got, truth)) < mpmath.mpf("1e-40")


def test_derive_counts_and_latex():
    result = run("derive", "--layers", "3,4,2", "--samples", "5", "--epochs", "3", "--json")
    assert result.returncode == 0, result.stderr
    data = one_json_object(result.stdout)
    assert (data["unknowns"], data["equations"]) == (25, 78)
    assert isinstance(data["latex"], str) and data["latex"].startswith(r"\begin{cases}")
    text = run("derive", "--layers", "1,1", "--samples", "2")
    assert text.returncode == 0
    assert "4 unknowns, 4 equations" in " ".join(text.stdout.split())
    latex = run("derive", "--layers", "1,1", "--samples", "2", "--latex")
    assert r"\sum_{i=0}^{n - 1}" in latex.stdout


def test_derive_instantiates_a_trace(tmp_path):
    path = tmp_path / "trace.json"
    Trace(Network([1, 1]), "0.1", 1, [["0.500", "0.500"], ["0.489", "0.482"]]).write(path)
    result = run("derive", "--trace", path, "--json")
    data = one_json_object(result.stdout)
    assert (data["unknowns"], data["equations"]) == (2, 2)
    assert "= 0.055" in " ".join(data["latex"].split())


def test_recover_one_sample_text_and_json(tmp_path):
    path = tmp_path / "trace.json"
    simulate(Network([1, 1], "tanh"), ["0.6"], ["0.5"], "0.1", 3, init=["0.5", "0.5"],
             dps=60).write(path)
    text = run("recover", path)
    assert text.returncode == 0 and text.stdout.startswith("status: converged")
    result = run("recover", path, "--json", "--dps", "90")
    assert result.returncode == 0
    data = one_json_object(result.stdout)
    assert {"status", "samples", "residual", "digits"} <= set(data)
    (sample,) = data["samples"]
    assert all(isinstance(v, str) for v in sample["x"] + sample["y"])
    with mpmath.workdps(80):
        assert abs(mpmath.mpf(sample["x"][0]) - mpmath.mpf("0.6")) < mpmath.mpf("1e-40")
        assert abs(mpmath.mpf(sample["y"][0]) - mpmath.mpf("0.5")) < mpmath.mpf("1e-40")


def test_a_failed_recovery_exits_non_zero_with_the_reason(tmp_path):
    path = tmp_path / "frozen.json"
    Trace(Network([1, 1]), "0.1", 1, [["0.5", "0.5"]] * 3).write(path)
    result = run("recover", path, "--json")
    assert result.returncode == 1
    data = one_json_object(result.stdout)
    assert data["status"] == "unidentifiable" and data["digits"] == 0
    assert "not identifiable" in data["message"]
    text = run("recover", path)
    assert text.returncode == 1 and "unidentifiable" in text.stdout


@pytest.mark.parametrize("args,mentions", [
    (["simulate", "--layers", "1,x", "--x", "0.6", "--y", "0.5"], "--layers"),
    (["simulate", "--activation", "softmax", "--x", "0.6", "--y", "0.5"], "softmax"),
    (["simulate", "--x", "0.6,0.2", "--y", "0.5"], "labels"),
    (["simulate", "--x", "0.6", "--y", "0.5", "--lr", "-0.1"], "lr"),
    (["simulate", "--x", "nan", "--y", "0.5"], "--x"),
    (["simulate", "--x", "0.6", "--y", "0.5", "--init", "0.5"], "init"),
    (["derive", "--samples", "0"], "samples"),
    (["recover", "/nonexistent/trace.json"], "cannot read"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, mentions):
    assert_clean_error(run(*args), 2, mentions)


def test_unknown_method_and_too_little_precision_are_input_errors(tmp_path):
    path = tmp_path / "trace.json"
    simulate(Network([1, 1]), ["0.6"], ["0.5"], "0.1", 2, init=["0.5", "0.5"], dps=20).write(path)
    assert_clean_error(run("recover", path, "--method", "magic"), 2, "magic")
    assert_clean_error(run("recover", path, "--dps", "3"), 2, "dps")


def test_recover_passes_backend_seed_and_attempts(tmp_path, monkeypatch, capsys):
    """The options reach recover() unchanged; only the ones given are passed."""
    import symbolic_inversion.solvers as solvers
    from symbolic_inversion.cli import main
    path = tmp_path / "trace.json"
    simulate(Network([1, 1]), ["0.6"], ["0.5"], "0.1", 2, init=["0.5", "0.5"], dps=20).write(path)
    calls = []
    real = solvers.recover

    def spy(trace, **options):
        calls.append(options)
        return real(trace, method=options["method"], dps=options["dps"],
                    steps=options["steps"])
    monkeypatch.setattr(solvers, "recover", spy)
    assert main(["recover", str(path), "--backend", "mpmath", "--seed", "7",
                 "--attempts", "3", "--json"]) == 0
    assert main(["recover", str(path), "--json"]) == 0
    capsys.readouterr()
    for call in calls:  # progress and path recording: the CLI's own, always passed
        assert call.pop("record_paths") is False and not call.pop("progress").active
    assert calls[0] == {"method": "auto", "dps": None, "steps": None, "backend": "mpmath",
                        "seed": 7, "attempts": 3}
    assert calls[1] == {"method": "auto", "dps": None, "steps": None}


@pytest.mark.parametrize("args,mentions", [
    (["--backend", "gmpy"], "--backend"),
    (["--seed", "x"], "--seed"),
    (["--attempts", "0"], "--attempts"),
])
def test_bad_recover_options_exit_2(tmp_path, args, mentions):
    path = tmp_path / "trace.json"
    simulate(Network([1, 1]), ["0.6"], ["0.5"], "0.1", 2, init=["0.5", "0.5"], dps=20).write(path)
    assert_clean_error(run("recover", path, *args), 2, mentions)


def test_recover_backend_end_to_end(tmp_path):
    """--backend mpmath works on every install; --backend flint needs python-flint and
    says so in one line (exit 2) when it is missing."""
    import importlib.util
    path = tmp_path / "trace.json"
    simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], "0.1", 4,
             init=["0.5", "0.5"], dps=40).write(path)
    result = run("recover", path, "--backend", "mpmath", "--seed", "1", "--attempts", "2",
                 "--json")
    assert result.returncode == 0, result.stderr
    data = one_json_object(result.stdout)
    assert data["status"] == "converged"
    assert sorted(float(s["x"][0]) for s in data["samples"]) == pytest.approx([0.2, 0.6])
    flint = run("recover", path, "--backend", "flint", "--json")
    if importlib.util.find_spec("flint") is None:
        assert_clean_error(flint, 2, "python-flint")
    else:
        assert flint.returncode == 0 and one_json_object(flint.stdout)["status"] == "converged"


def test_certify_backend_arb_without_python_flint_is_said_first(tmp_path):
    import importlib.util
    if importlib.util.find_spec("flint") is not None:
        pytest.skip("checks the core install, without python-flint")
    path = tmp_path / "trace.json"
    simulate(Network([1, 1], "tanh"), ["0.6"], ["0.5"], "0.1", 2, init=["0.5", "0.5"],
             dps=30).write(path)
    assert_clean_error(run("certify", path, "--backend", "arb"), 2, "backend: 'arb' needs")


def test_certify_and_oracle_report_progress_on_stderr_only(tmp_path):
    path = tmp_path / "trace.json"
    simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], "0.1", 4,
             init=["0.5", "0.5"], dps=30).write(path)
    result = run("certify", path, "--json", "--progress")
    assert result.returncode == 0, result.stderr
    assert one_json_object(result.stdout)["certified"] is True
    assert "certify" in result.stderr and "certified=True" in result.stderr
    dataset = tmp_path / "dataset.json"
    dataset.write_text('{"network": {"layers": [2, 2, 1], "activations": ["relu", '
                       '"identity"]}, "samples": [{"x": ["1/2", "3"], "y": ["2"]}, '
                       '{"x": ["-2", "1"], "y": ["-1/3"]}]}')
    result = run("oracle", dataset, "--json", "--progress")
    assert result.returncode == 0, result.stderr
    assert one_json_object(result.stdout)["status"] == "recovered"
    assert all(phase in result.stderr for phase in ("architecture", "inputs", "labels",
                                                     "verification", "done"))
