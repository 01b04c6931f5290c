"""Step 7 of the workflow: the command line, a thin shell over the Python API.

Every subcommand parses its options, calls one public function and prints text or,
with ``--json``, one JSON object on stdout.  Bad input exits with status 2 and a one-line
message on stderr; a recovery or proof that failed exits with status 1.
"""

import argparse
import csv
import io
import json
import os
import sys

from . import __version__
from .arguments import _BLANKS, add_budget_option, finite_number, integer
from .errors import InputError
from .exact import to_decimal
from .files import read_text
from .limits import check, check_int, override, time_budget
from .network import ACTIVATIONS, Network
from .simulate import simulate
from .trace import Trace

__all__ = ["main", "build_parser"]


def _widths(text):
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--layers: expected comma-separated widths like 3,4,2, got {text!r}") \
            from None


def _network(args):
    layers = _widths(args.layers)
    activations = args.activation.split(",")
    if len(activations) == 1:
        activations = activations * (len(layers) - 1)
    return Network(layers, activations, bias=not args.no_bias)


def _numbers(text, option):
    return [to_decimal(part.strip(_BLANKS), option) for part in text.split(",")
            if part.strip(_BLANKS)]


def _read_csv(path, network, option="--data", classes=False):
    """Samples from a CSV file: one row per sample, inputs then labels (no header).
    With ``classes`` (a classifier's loss) a row of inputs and one integer is a class
    index, read as its one-hot label."""
    d, m = network.input_width, network.output_width
    text = read_text(path, option)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""))
                if row and not row[0].startswith("#")]
    except csv.Error as error:
        raise InputError(f"{option}: not valid CSV ({error})") from None
    inputs, labels = [], []
    for r, row in enumerate(rows, 1):
        if classes and m > 1 and len(row) == d + 1:
            k = row[-1].strip(_BLANKS)
            if not k.isdigit() or not 0 <= int(k) < m:
                raise InputError(f"{option} row {r}: a class index in 0..{m - 1} expected "
                                 f"after the {d} inputs, got {k!r}")
            row = row[:-1] + [str(int(int(k) == c)) for c in range(m)]
        if len(row) != d + m:
            raise InputError(f"{option} row {r}: expected {d} inputs and {m} labels, "
                             f"got {len(row)} values")
        values = [to_decimal(v.strip(_BLANKS), f"{option} row {r}") for v in row]
        inputs.append(values[:d])
        labels.append(values[d:])
    if not inputs:
        raise InputError(f"{option}: {path} has no samples")
    return inputs, labels


def _print_json(data):
    print(json.dumps(data, indent=1))


def _progress(args, description):
    """The reporter for ``--progress`` (stderr only: stdout stays one JSON object)."""
    from .report.progress import Progress
    return Progress.create(bool(getattr(args, "progress", False)), description)


def _figure_path(path, option):
    """``path`` checked before any work is done for its figure: a regular file or a new
    one (never a device, a FIFO or a directory), in a format matplotlib writes (the
    extension; none: PNG), with matplotlib installed."""
    from .files import check_output
    from .report.plot import _pyplot
    path = check_output(path, option, "a figure")
    extension = os.path.splitext(path)[1][1:].lower()
    _pyplot()  # (matplotlib missing: said now)
    from matplotlib.backend_bases import FigureCanvasBase
    supported = FigureCanvasBase.get_supported_filetypes()
    if extension and extension not in supported:
        raise InputError(f"{option}: cannot write {path}: matplotlib writes "
                         f"{', '.join(sorted(supported))}, not {extension!r}")
    return path, extension or "png"


def _save_figure(figure, path, option):
    """Write ``figure`` to exactly ``path`` (matplotlib itself would add ``.png`` to a
    name without an extension, and the message would name a file it did not write)."""
    path, file_format = _figure_path(path, option)
    try:
        figure.savefig(path, format=file_format, dpi=120, bbox_inches="tight")
    except (OSError, ValueError) as error:
        raise InputError(f"{option}: cannot write {path}: {error}") from None
    print(f"wrote {path}", file=sys.stderr)


def _add_executor_options(parser, what):
    """``--workers N`` or ``--scheduler ADDRESS`` (one of them): where ``what`` runs."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=integer, metavar="N",
                       help=f"run {what} on N local processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help=f"run {what} on a Dask distributed scheduler (needs the "
                            f"distributed extra)")


def _add_training_options(parser):
    from .losses import loss_names
    from .optimizers import optimizer_names
    parser.add_argument("--loss", default="mse", choices=loss_names(),
                        help="the training loss (default mse)")
    parser.add_argument("--loss-reduction",
                        help="the loss's reduction: mse sum_outputs (default: the "
                             "paper's) or mean (PyTorch's nn.MSELoss()); cross_entropy "
                             "and bce_with_logits mean (default) or sum")
    parser.add_argument("--optimizer", choices=optimizer_names(), default="gd",
                        help="gd (full batch, default), sgd (minibatches), adam, adamw")


def _add_hyperparameter_options(parser):
    """The optimizer's hyperparameters, as ``torch.optim`` names them."""
    parser.add_argument("--momentum", default="0",
                        help="heavy-ball momentum of SGD (PyTorch convention)")
    parser.add_argument("--dampening", default="0", help="dampening of SGD's momentum")
    parser.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    parser.add_argument("--weight-decay", help="weight decay (default 0; adamw 0.01)")
    parser.add_argument("--betas",
                        help="adam's two betas, comma-separated (default 0.9,0.999)")
    parser.add_argument("--eps", help="adam's eps (default 1e-8)")


def _optimizer_options(args):
    """The trace file's optimizer object from the command line's options."""
    lr = getattr(args, "lr", "0.1")
    lr = lr.split(",") if "," in lr else lr
    data = {"name": args.optimizer, "lr": lr}
    if getattr(args, "batch_size", None) is not None:
        data["batch_size"] = args.batch_size
        if args.optimizer == "gd":
            data["name"] = "sgd"
    for option in ("momentum", "dampening", "weight_decay", "eps"):
        value = getattr(args, option, None)
        if value is not None and (value != "0" or option == "weight_decay"):
            data[option] = value
    if getattr(args, "nesterov", False):
        data["nesterov"] = True
    if getattr(args, "betas", None):
        data["betas"] = args.betas.split(",")
    return data


def _add_network_options(parser):
    parser.add_argument("--layers", default="1,1",
                        help="widths from input to output, e.g. 3,4,2 (default 1,1)")
    parser.add_argument("--activation", default="tanh",
                        help=f"one name, or one per weight layer comma-separated "
                             f"({', '.join(ACTIVATIONS)}; default tanh)")
    parser.add_argument("--no-bias", action="store_true", help="layers without bias")


# -- commands -------------------------------------------------------------------------

def _write_trace(args, trace):
    """The trace file to ``-o`` (a line on stderr says so) or stdout; exit status 0."""
    if args.output:
        from .files import write_text
        write_text(args.output, trace.to_json() + "\n", "-o")
        print(f"wrote {args.output}: {trace!r}", file=sys.stderr)
    else:
        print(trace.to_json())
    return 0


def run_reproduce(args):
    from .paper import format_table, reproduce
    check_int(args.dps, "--dps", minimum=10, limit="max_dps")
    result = reproduce(dps=args.dps)
    if args.json:
        _print_json(result)
        return 0
    for number, table in enumerate(result["tables"], 1):
        xs, ys = ", ".join(table["x"]), ", ".join(table["y"])
        print(f"Table {number}: x = ({xs}) and y = ({ys})")
        print(format_table(table))
        print()
    first = result["examples"]["example1"]
    print("Example 1 (Table 1, one sample), the ratio trick:")
    print(f"  x = {first['closed_form']['x']}")
    print(f"  y = {first['closed_form']['y']}   (c = (b0 - b1) / (2 lr))")
    for label, key in (("from the 3-decimal table, first step", "from_table"),
                       (f"from an exact {args.dps}-digit trace", "exact")):
        solution = first[key]
        print(f"  {label}: x = {solution['samples'][0]['x'][0]}, "
              f"y = {solution['samples'][0]['y'][0]}  "
              f"[{solution['status']}, {solution['digits']} "
              f"digit{'' if solution['digits'] == 1 else 's'} vouched for]")
    second = result["examples"]["example2"]
    print()
    print("Example 2 (Table 2 at 7 digits, the paper's eq. (12)):")
    print(second["system_latex"])
    if "root" in second:
        root = second["root"]
        found = "; ".join(f"x = {sample['x'][0]}, y = {sample['y'][0]}"
                          for sample in root["samples"])
        print(f"  cold-start root [{root['status']}, {root['digits']} digits of the data "
              f"vouched for by the 7-digit trace]: {found}")
        printed = root["mathematica"]
        print(f"  Mathematica's FindRoot (hand-picked start): x = {', '.join(printed['x'])}; "
              f"y = {', '.join(printed['y'])}")
    return 0


def run_simulate(args):
    network = _network(args)
    if args.data:
        if args.x or args.y:
            raise InputError("simulate: give either --data or --x/--y, not both")
        from .losses import get_loss
        inputs, labels = _read_csv(args.data, network,
                                   classes=get_loss(args.loss).classifies)
    else:
        if not args.x or not args.y:
            raise InputError("simulate: need --x and --y (or --data FILE.csv)")
        if network.input_width != 1 or network.output_width != 1:
            raise InputError("simulate: --x/--y are for one-dimensional samples; "
                             "use --data FILE.csv")
        inputs, labels = _numbers(args.x, "--x"), _numbers(args.y, "--y")
        if len(inputs) != len(labels):
            raise InputError(f"simulate: {len(inputs)} inputs but {len(labels)} labels")
    init = _numbers(args.init, "--init") if args.init else None
    optimizer = _optimizer_options(args)
    trace = simulate(network, inputs, labels, optimizer["lr"], args.epochs, init=init,
                     dps=args.dps, backend=args.backend, optimizer=optimizer,
                     seed=args.seed, record_batches=not args.hide_batches,
                     loss_reduction=args.loss_reduction, dtype=args.dtype, loss=args.loss)
    return _write_trace(args, trace)


def run_derive(args):
    from .system import InversionSystem
    if args.trace:
        trace = Trace.read(args.trace)
        network = trace.network
    else:
        network = _network(args)
    # SymPy differentiates and prints every equation: its time and stack grow fast with
    # the network (a 10-10-1 network takes minutes, 100-100-1 overflows the stack)
    check("max_symbolic_parameters", network.num_parameters,
          f"parameters of network {list(network.layers)}", "--max-symbolic-parameters")
    if args.trace:
        system = InversionSystem.from_trace(trace, args.epochs)
    else:
        check_int(args.samples, "--samples", minimum=1, limit="max_trace_values")
        from .losses import get_loss
        system = InversionSystem(network, args.samples, args.epochs,
                                 loss=get_loss(args.loss, args.loss_reduction),
                                 optimizer=_optimizer_options(args))
    counts = system.counts
    latex = system.latex()
    if args.json:
        _print_json(dict(counts, latex=latex, network=system.network.to_dict()))
        return 0
    print(f"network {list(system.network.layers)} {list(system.network.activations)} "
          f"bias={system.network.bias}: {counts['parameters']} parameters")
    print(f"{counts['samples']} samples, {counts['steps']} steps: "
          f"{counts['unknowns']} unknowns, {counts['equations']} equations; "
          f"a square system needs at least {counts['min_steps']} steps")
    if args.latex:
        print(latex)
    else:
        equations = system.equations() if system.trace is not None \
            else system.general_equations()
        for equation in equations:
            print(equation)
    return 0


def run_recover(args):
    from .solvers import recover
    trace = Trace.read(args.trace)
    if args.plot_paths:
        _figure_path(args.plot_paths, "--plot-paths")  # said before the recovery runs
    if args.attempts is not None:
        check_int(args.attempts, "--attempts", minimum=1, limit="max_attempts")
    # Only what the user chose is passed: the defaults are recover()'s own.
    chosen = {key: getattr(args, key) for key in ("backend", "seed", "attempts")
              if getattr(args, key) is not None}
    if getattr(args, "known", None):
        inputs, labels = _read_csv(args.known, trace.network, "--known")
        trace = trace.with_known(list(zip(inputs, labels)))
    from .solvers.executors import close_executor, make_executor
    executor = make_executor(getattr(args, "workers", None), getattr(args, "scheduler", None))
    if executor is not None:
        chosen["executor"] = executor
    try:
        with _progress(args, "recover") as progress:
            solution = recover(trace, method=args.method, dps=args.dps, steps=args.steps,
                               progress=progress, record_paths=bool(args.plot_paths),
                               **chosen)
    finally:
        close_executor(executor)
    if args.plot_paths:
        from .report.plot import plot_paths
        _save_figure(plot_paths(solution).figure, args.plot_paths, "--plot-paths")
    certificate = None
    if getattr(args, "certify", False):
        from .verify import certify
        # with known samples: the certificate is about the others, on the reduced system
        certificate = certify(trace.unknown_part(), solution, steps=args.steps)
    if args.json:
        result = solution.to_dict()
        if certificate is not None:
            result["certificate"] = certificate.to_dict()
        _print_json(result)
    else:
        print(solution)
        if certificate is not None:
            print(certificate)
    if certificate is not None and not certificate.certified:
        return 1
    return 0 if solution.ok else 1


def run_analyze(args):
    from .analysis import analyze
    trace = Trace.read(args.trace)
    if args.plot:
        _figure_path(args.plot, "--plot")
    if args.dps is not None:
        check_int(args.dps, "--dps", minimum=10, limit="max_dps")
    solution = None
    if args.identifiability or args.plot:
        from .solvers import recover
        solution = recover(trace, dps=args.dps)
    result = analyze(trace, solution=solution, dps=args.dps)
    if args.plot and solution.ok:
        from .report.plot import plot_analysis
        _save_figure(plot_analysis(trace, solution), args.plot, "--plot")
    if args.identifiability:
        from .identifiability import analyze_identifiability, format_identifiability
        result["identifiability"] = analyze_identifiability(trace, solution)
    if args.json:
        _print_json(result)
        return 0 if result["ok"] else 1
    print(f"recovery: {result['status']}: {result['message']}")
    if args.identifiability:
        print("\n".join(format_identifiability(result["identifiability"])))
    if not result["ok"]:
        return 1
    print(f"{result['samples']} samples, {result['steps']} steps, trace digits "
          f"{result['trace_digits']}")
    print(f"singular values of the Jacobian: {', '.join(result['singular_values'])}")
    print(f"condition number: 1e{result['log10_condition']}")
    print(f"accuracy the trace supports: {result['error_bound']} "
          f"({result['digits_supported']} digits; {result['digits_lost']} of the trace's "
          f"digits are lost to conditioning)")
    return 0


def run_certify(args):
    from .verify import certify, read_samples, resimulate
    from .verify.intervals import interval_arithmetic
    trace = Trace.read(args.trace)
    if args.tolerance is not None and to_decimal(args.tolerance.strip(_BLANKS),
                                                 "--tolerance") <= 0:
        raise InputError(f"--tolerance: must be positive, got {args.tolerance}")
    if args.dps is not None:
        check_int(args.dps, "--dps", minimum=10, limit="max_dps")
    interval_arithmetic(args.backend)  # a missing python-flint is said before any work
    if args.data and args.solution:
        raise InputError("certify: give either --data or --solution, not both")
    recovery = samples = None
    if args.data:
        inputs, labels = _read_csv(args.data, trace.network)
        samples = list(zip(inputs, labels))
    elif args.solution:
        samples = read_samples(args.solution, trace.network)
    with _progress(args, "certify") as progress:
        if recovery is None and samples is None:
            from .solvers import recover
            recovery = recover(trace, steps=args.steps, progress=progress)
            samples = recovery
        progress.event("certify", backend=args.backend)
        certificate = certify(trace, samples, dps=args.dps, steps=args.steps,
                              backend=args.backend, tolerance=args.tolerance)
        progress.event("done", certified=certificate.certified)
    try:
        replay = resimulate(trace, samples)
    except InputError as error:  # an sgd trace without its schedule cannot be replayed
        replay, replay_error = None, str(error)
    if args.json:
        result = certificate.to_dict()
        result["resimulation"] = replay.to_dict() if replay else {"error": replay_error}
        if recovery is not None:
            result["recovery"] = {"status": recovery.status.value, "digits": recovery.digits}
        _print_json(result)
    else:
        print(certificate)
        print(replay if replay else f"re-simulation: {replay_error}")
    return 0 if certificate.certified else 1


def run_study(args):
    """Exit 0 when every cell of the grid is in the output file (failed cells are data),
    1 when every cell failed, 2 on a bad configuration, 130 when interrupted (the
    finished cells are kept)."""
    from .study import StudyInterrupted, interrupt_on_sigterm, load_study, run_study
    study = load_study(args.config)
    output = args.output or study.output or os.path.splitext(args.config)[0] + ".jsonl"
    if args.plot:
        _figure_path(args.plot, "--plot")  # said before the first cell, not after the last
    from .solvers.executors import close_executor, make_executor
    executor = None
    if args.scheduler is not None:
        executor = make_executor(scheduler=args.scheduler)
    try:
        with interrupt_on_sigterm():
            result = run_study(study, executor=executor, workers=args.workers,
                               output=output, progress=args.progress,
                               timeout=args.cell_timeout, retry_failed=args.retry_failed)
    except StudyInterrupted as stop:
        print(f"symbolic-inversion study: interrupted: {stop.done} cells are in {output}, "
              f"{stop.remaining} remain; run the same command again to finish them",
              file=sys.stderr)
        return 130
    finally:
        close_executor(executor)
    if args.plot:
        from .report.plot import plot_study
        _save_figure(plot_study(result), args.plot, "--plot")
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.table())
        print(f"{len(result.records)} cells in {output}", file=sys.stderr)
    if result.records and result.failed == len(result.records):
        # nothing was measured: a configuration no cell can run (a missing extra, ...)
        print(f"symbolic-inversion study: every one of the {result.failed} cells failed "
              f"(error or timeout); their reasons are in {output}", file=sys.stderr)
        return 1
    return 0


def run_trace_from_checkpoints(args):
    """A trace from ``.pt`` checkpoints (:mod:`symbolic_inversion.torch.checkpoints`)."""
    from .network import Network
    from .torch.checkpoints import load_state_dicts, trace_from_state_dicts, widths_of
    check_int(args.samples, "--samples", minimum=1, limit="max_trace_values")
    if len(args.checkpoints) < 2:
        raise InputError("trace-from-checkpoints: give at least two checkpoint files (the "
                         "initial parameters and one step)")
    states = load_state_dicts(args.checkpoints)
    layers, bias = widths_of(states[0], args.checkpoints[0])
    if args.layers and _widths(args.layers) != layers:
        raise InputError(f"--layers: {args.layers} but {args.checkpoints[0]} holds a network "
                         f"{','.join(map(str, layers))}")
    activations = args.activation.split(",")
    if len(activations) == 1:
        activations = activations * (len(layers) - 1)
    network = Network(layers, activations, bias=bias)
    trace = trace_from_state_dicts(states, network, _optimizer_options(args), args.samples,
                                   dtype=args.dtype, loss=args.loss,
                                   # PyTorch's default for all three losses
                                   loss_reduction=args.loss_reduction or "mean")
    return _write_trace(args, trace)


# -- wiring ---------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: bad options exit 2 with one line on stderr,
    like every other bad input (``--help`` shows the usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


#: One or two commands a user can paste, shown at the end of each ``--help``.
EXAMPLES = {
    "reproduce": ["symbolic-inversion reproduce",
                  "symbolic-inversion reproduce --json --dps 60 > paper.json"],
    "simulate": ["symbolic-inversion simulate --x 0.6,0.2,0.1,0.9 --y 0.5,0.4,0.3,0.6 "
                 "--init 0.5,0.5 --epochs 8 --dps 60 -o trace.json",
                 "symbolic-inversion simulate --layers 2,3,1 --activation tanh,identity "
                 "--data samples.csv --epochs 3 --seed 1 -o trace.json"],
    "derive": ["symbolic-inversion derive --layers 3,4,2 --samples 5 --epochs 3 --latex",
               "symbolic-inversion derive --trace trace.json --json"],
    "recover": ["symbolic-inversion recover trace.json --progress",
                "symbolic-inversion recover trace.json --json --certify > solution.json",
                "symbolic-inversion recover trace.json --plot-paths paths.png",
                "symbolic-inversion recover trace.json --known own.csv --backend mpmath"],
    "analyze": ["symbolic-inversion analyze trace.json --identifiability",
                "symbolic-inversion analyze trace.json --plot conditioning.png"],
    "certify": ["symbolic-inversion certify trace.json --progress",
                "symbolic-inversion certify trace.json --solution solution.json --json"],
    "trace-from-checkpoints": [
        "symbolic-inversion trace-from-checkpoints step_*.pt --activation tanh,identity "
        "--loss cross_entropy --optimizer adam --lr 0.01 --samples 6 -o trace.json",
        "symbolic-inversion trace-from-checkpoints ckpt0.pt ckpt1.pt ckpt2.pt --layers 1,1 "
        "--activation tanh --loss mse --lr 0.1 --momentum 0.9 --samples 4"],
    "study": ["symbolic-inversion study study.json --workers 2 --progress",
              "symbolic-inversion study study.json --scheduler tcp://10.0.0.5:8786 "
              "--plot study.png"],
}  # the oracle's are in oracle/command.py


def examples_epilog(command):
    """The ``--help`` epilog of ``command``: its examples, one per line."""
    return "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[command])


def _add_command(commands, name, **options):
    return commands.add_parser(name, epilog=examples_epilog(name),
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               **options)


def build_parser():
    parser = _Parser(
        prog="symbolic-inversion",
        description="Recover training data from neural-network parameter traces.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = _add_command(commands, "reproduce", help="the paper's Tables 1-4 and Examples 1-2")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--dps", type=integer, default=50, help="working precision (default 50)")
    p.set_defaults(run=run_reproduce)

    p = _add_command(commands, "simulate", help="train a network and write its trace")
    _add_network_options(p)
    p.add_argument("--x", help="one-dimensional inputs, comma-separated")
    p.add_argument("--y", help="one-dimensional labels, comma-separated")
    p.add_argument("--data", help="CSV file, one sample per row: inputs then labels")
    p.add_argument("--lr", default="0.1", help="learning rate (default 0.1), or one per "
                                               "step comma-separated (a schedule)")
    p.add_argument("--init", help="initial parameters in trace order (default: uniform "
                                  "in [0, 1] from --seed)")
    p.add_argument("--epochs", type=integer, default=5,
                   help="passes over the data (default 5)")
    p.add_argument("--dps", type=integer, default=50, help="digits recorded (default 50)")
    p.add_argument("--backend", choices=("mpmath", "numpy", "exact"), default="mpmath",
                   help="arithmetic of the training: mpmath at --dps digits (default), "
                        "numpy float64, or exact rationals (relu/identity networks, gd)")
    _add_training_options(p)
    p.add_argument("--batch-size", type=integer, help="minibatch size (sgd, or adam on "
                                                  "minibatches)")
    _add_hyperparameter_options(p)
    p.add_argument("--seed", type=integer, help="seed for the initial parameters and shuffles")
    p.add_argument("--hide-batches", action="store_true",
                   help="do not record the sgd schedule (the observer does not know it)")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="train in this binary format, as PyTorch does (--dps is ignored)")
    p.add_argument("-o", "--output", help="write the trace here (default stdout)")
    add_budget_option(p)
    p.set_defaults(run=run_simulate)

    p = _add_command(commands, "derive", help="the symbolic inversion system and its counts")
    p.add_argument("--max-symbolic-parameters", type=integer, metavar="N",
                   help="refuse networks with more parameters than N (default: the limit "
                        "max_symbolic_parameters, 40): SymPy's derivation grows fast")
    _add_network_options(p)
    _add_training_options(p)
    p.add_argument("--samples", type=integer, default=1, help="number of samples n")
    p.add_argument("--epochs", type=integer, help="steps used (default: the fewest for a "
                                              "square system, or all steps of --trace)")
    p.add_argument("--trace", help="instantiate the system with this trace's numbers")
    p.add_argument("--latex", action="store_true", help="print LaTeX")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_budget_option(p)
    p.set_defaults(run=run_derive)

    p = _add_command(commands, "recover", help="the training data that produced a trace")
    p.add_argument("trace", metavar="TRACE", help="trace file (JSON)")
    p.add_argument("--dps", type=integer,
                   help="working precision (default: trace digits + 20, "
                                           "at least 30; solvers raise their own stages)")
    p.add_argument("--steps", type=integer, help="use only the first STEPS steps")
    from .solvers import SOLVERS
    p.add_argument("--method", default="auto", metavar="METHOD",
                   help=f"solver: auto (default: chosen from the trace) or one of "
                        f"{', '.join(SOLVERS)}")
    p.add_argument("--backend", choices=("auto", "mpmath", "flint"),
                   help="arithmetic of the solvers: python-flint's arb when installed "
                        "(auto, the default), or mpmath (no extra dependency)")
    p.add_argument("--seed", type=integer, help="seed of the random start systems and "
                                            "directions (default 0: reproducible)")
    p.add_argument("--attempts", type=integer, help="how many starts/paths a solver tries "
                                                "before giving up (default: the solver's own)")
    p.add_argument("--known", metavar="FILE.csv",
                   help="samples the observer knows (its own; CSV, one per row: inputs "
                        "then labels): subtracted, the others are recovered")
    _add_executor_options(p, "independent homotopy paths (same result as serial for the "
                             "same seed)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--certify", action="store_true",
                   help="also prove (interval arithmetic) that an exact solution is next to "
                        "the result; exit 1 if the proof fails")
    p.add_argument("--progress", action="store_true",
                   help="report progress on stderr (a bar with the tqdm extra)")
    p.add_argument("--plot-paths", metavar="FILE.png",
                   help="draw the homotopy paths of every unknown in the complex plane "
                        "(needs matplotlib)")
    add_budget_option(p)
    p.set_defaults(run=run_recover)

    p = _add_command(commands, "analyze", help="conditioning: singular values at the recovered "
                                            "data, the accuracy the trace supports")
    p.add_argument("trace", metavar="TRACE", help="trace file (JSON)")
    p.add_argument("--dps", type=integer, help="working precision of the recovery")
    p.add_argument("--identifiability", action="store_true",
                   help="also: exact counts, generic rank and minimal steps for this "
                        "architecture, and symmetries at the recovered data")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the Jacobian's singular values and the per-step residuals "
                        "at the recovered data (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_budget_option(p)
    p.set_defaults(run=run_analyze)

    p = _add_command(commands, "certify", help="prove that an exact solution exists, and is "
                                            "unique, next to the recovered data")
    p.add_argument("trace", metavar="TRACE", help="trace file (JSON)")
    p.add_argument("--data", help="certify these samples (CSV: inputs then labels per row) "
                                  "instead of recovering them")
    p.add_argument("--solution", help="certify the samples of a 'recover --json' output file")
    p.add_argument("--dps", type=integer,
                   help="interval precision (default: trace digits + "
                                           "3 per sample + 30)")
    p.add_argument("--steps", type=integer, help="use only the first STEPS steps")
    p.add_argument("--backend", choices=("iv", "arb"), default="iv",
                   help="interval arithmetic: mpmath iv (default) or python-flint arb")
    p.add_argument("--tolerance", help="largest distance of the data from the exact "
                                       "solution that counts as certified (default: what "
                                       "the trace's digits determine)")
    p.add_argument("--progress", action="store_true",
                   help="report progress on stderr (a bar with the tqdm extra)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_budget_option(p)
    p.set_defaults(run=run_certify)

    p = _add_command(commands, "study", help="a grid of simulate-and-recover cells on local "
                                          "processes or a Dask cluster, resumable",
                     description="Run every cell of the grid in CONFIG that is not yet in "
                                 "the output file,\none JSON line per finished cell, and "
                                 "print the summary table.\nExit 0 when the grid is "
                                 "complete (failed cells are data), 1 when every cell\n"
                                 "failed, 2 for a malformed configuration, 130 when "
                                 "interrupted (the\nfinished cells are kept: run again to "
                                 "finish).")
    p.add_argument("config", metavar="CONFIG", help="study configuration (JSON: networks, "
                                                    "samples, seeds, digits, ...)")
    _add_executor_options(p, "cells")
    p.add_argument("--output", metavar="FILE", help="JSON lines, one per finished cell "
                                                    "(default: the configuration's output, "
                                                    "else CONFIG with .jsonl)")
    p.add_argument("--cell-timeout", type=finite_number, metavar="SECONDS",
                   help="record a cell as a timeout after SECONDS (default: the "
                        "configuration's timeout, else none)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run the cells recorded as error or timeout again")
    p.add_argument("--progress", action="store_true",
                   help="report finished cells on stderr (a bar with the tqdm extra)")
    p.add_argument("--plot", metavar="FILE.png", help="draw success rate and max error "
                                                      "against n (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=run_study)

    p = _add_command(commands, "trace-from-checkpoints",
                     help="a trace from PyTorch checkpoints (.pt state dicts, one per step)",
                     description="Read PyTorch state dicts saved after every step "
                                 "(torch.save(model.state_dict(), path)) as data\n"
                                 "(torch.load(weights_only=True): tensors only, no code) "
                                 "and write their trace.\nThe files are taken in the order "
                                 "given, the first being the initial parameters;\nthe "
                                 "layer widths come from the weights' shapes. The loss and "
                                 "the activations\nare required: a trace never assumes "
                                 "them.")
    p.add_argument("checkpoints", metavar="CKPT", nargs="+",
                   help=".pt files, one per recorded parameter vector, in training order")
    p.add_argument("--layers", help="widths from input to output (checked against the "
                                    "checkpoints' shapes; default: read from them)")
    p.add_argument("--activation", required=True,
                   help=f"one name, or one per weight layer comma-separated "
                        f"({', '.join(ACTIVATIONS)}); a classifier's last is identity")
    from .losses import loss_names
    from .optimizers import optimizer_names
    p.add_argument("--loss", required=True, choices=loss_names(),
                   help="the training loss (nn.MSELoss: mse with --loss-reduction mean; "
                        "nn.CrossEntropyLoss: cross_entropy; nn.BCEWithLogitsLoss: "
                        "bce_with_logits)")
    p.add_argument("--loss-reduction",
                   help="mean (default: PyTorch's, for every loss), or sum (cross_entropy, "
                        "bce_with_logits), or sum_outputs (mse, the toolkit's own)")
    p.add_argument("--optimizer", choices=optimizer_names(), default="gd",
                   help="gd (torch.optim.SGD on the full batch, default), adam, adamw")
    p.add_argument("--lr", required=True, help="learning rate, or one per step "
                                               "comma-separated (a schedule)")
    _add_hyperparameter_options(p)
    p.add_argument("--samples", type=int, required=True, help="number of training samples n")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="the training's format (default: the tensors')")
    p.add_argument("-o", "--output", help="write the trace here (default stdout)")
    p.set_defaults(run=run_trace_from_checkpoints)

    from .oracle.command import add_oracle_parser
    add_oracle_parser(commands)
    return parser


def main(argv=None):
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); the exit status.

    >>> main(["derive", "--layers", "1,1", "--samples", "1", "--latex"])  # doctest: +ELLIPSIS
    network [1, 1] ['tanh'] bias=True: 2 parameters
    1 samples, 1 steps: 2 unknowns, 2 equations; a square system needs at least 1 steps
    \\begin{cases}
    ...
    0
    >>> main(["recover", "/nonexistent/trace.json"])  # the message goes to stderr
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    raised = {}
    try:
        if getattr(args, "max_symbolic_parameters", None) is not None:
            raised["max_symbolic_parameters"] = check_int(
                args.max_symbolic_parameters, "--max-symbolic-parameters", minimum=0)
        seconds = getattr(args, "max_seconds", 0)  # (checked by time_budget)
        with override(**raised), time_budget(seconds, option="--max-seconds"):
            return args.run(args)
    except InputError as error:
        return _fail(args, error)
    except BrokenPipeError:  # ``... | head``: the reader left; no traceback
        sys.stdout = open(os.devnull, "w")
        return 141
    except (RecursionError, MemoryError) as error:
        return _fail(args, "the input is too large or too deeply nested for this machine "
                           f"({type(error).__name__}); see the limits in docs/reliability")
    except Exception as error:  # the one boundary: no traceback reaches a user
        if os.environ.get("SYMBOLIC_INVERSION_DEBUG"):
            raise
        text = " ".join(str(error).split())[:200]
        return _fail(args, f"unexpected {type(error).__name__}: {text} (a bug, or input "
                           f"no check caught; SYMBOLIC_INVERSION_DEBUG=1 shows the traceback)")


def _fail(args, message):
    """One line on stderr, exit status 2."""
    text = " ".join(str(message).split())
    print(f"symbolic-inversion {args.command}: error: {text}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
