"""The ``symbolic-inversion oracle`` subcommand.

The file describes a network and a dataset; it is used *only* to build the loss black
box.  The reconstruction sees loss values alone, and the report compares what it found
with the file afterwards.

File format (JSON; numbers as decimal strings ``"0.5"`` or ratios ``"3/7"``)::

    {"network": {"layers": [3, 2, 1], "activations": ["relu", "identity"], "bias": true},
     "samples": [{"x": ["1/2", "3", "-1"], "y": ["2"]}, ...]}
"""

import argparse
import json
import sys

from ..errors import InputError
from ..network import Network
from .blackbox import LossOracle
from .reconstruct import reconstruct_from_loss

__all__ = ["add_oracle_parser", "run_oracle", "read_oracle_file"]


def read_oracle_file(path):
    """Network and samples from an oracle file; :class:`InputError` on anything malformed.

    Returns ``(network, inputs, labels)`` with exact Fractions.
    """
    from ..files import read_json
    data = read_json(path, "FILE", parse_float=str)  # decimals stay text: read exactly
    if not isinstance(data, dict):
        raise InputError("FILE: expected a JSON object with 'network' and 'samples'")
    spec = data.get("network")
    if not isinstance(spec, dict):
        raise InputError("network: missing, or not an object")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not all(type(w) is int for w in layers):
        raise InputError(f"network.layers: expected a list of integers, got {layers!r}")
    activations = spec.get("activations", "relu")
    if not isinstance(activations, (str, list)) or isinstance(activations, list) and not all(
            isinstance(a, str) for a in activations):
        raise InputError("network.activations: expected a name or a list of names")
    bias = spec.get("bias", True)
    network = Network(layers, activations, bias)
    samples = data.get("samples")
    if not isinstance(samples, list) or not samples:
        raise InputError("samples: expected a non-empty list of {\"x\": [...], \"y\": [...]}")
    inputs, labels = [], []
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict) or "x" not in sample or "y" not in sample:
            raise InputError(f"samples[{index}]: expected an object with 'x' and 'y'")
        for key in ("x", "y"):
            if not isinstance(sample[key], list):
                raise InputError(f"samples[{index}].{key}: expected a list of numbers")
        inputs.append(sample["x"])
        labels.append(sample["y"])
    oracle = LossOracle(network, inputs, labels)  # parses every number strictly
    return network, oracle.inputs, oracle.labels


def run_oracle(args):
    """Build the black box from ``args.file``, reconstruct, report; return the exit code."""
    network, inputs, labels = read_oracle_file(args.file)
    oracle = LossOracle(network, inputs, labels, dps=args.dps)
    result = reconstruct_from_loss(oracle, oracle.num_parameters, dps=args.dps,
                                   seed=args.seed, progress=args.progress or None)
    truth = sorted((tuple(x), tuple(y)) for x, y in zip(inputs, labels))
    found = []
    for s in result.samples:
        found += [(tuple(s["x"]), tuple(s["y"]))] * s.get("multiplicity", 1)
    if args.dps is None:
        matches = sorted(found) == truth and result.layers == list(network.layers)
    else:
        matches = None  # approximate numbers: see the digits in the output
    if args.json:
        report = result.to_dict()
        report["matches_file"] = matches
        report["oracle_evaluations"] = oracle.evaluations
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(result)
        if matches is not None:
            print(f"matches the file: {'yes' if matches else 'no'}")
    return 0 if result.ok and matches is not False else 1


def add_oracle_parser(subparsers):
    """Register ``oracle`` on an :mod:`argparse` sub-parser collection."""
    from ..arguments import integer
    parser = subparsers.add_parser(
        "oracle", help="reconstruct a ReLU network's architecture and data from its loss",
        description="Build a loss black box from the network and samples in FILE, then "
                    "recover architecture and samples from loss values alone (Sannai). "
                    "Exit status 0 only when everything was identified, verified and "
                    "matches the file.",
        epilog="examples:\n  symbolic-inversion oracle dataset.json --progress\n"
               "  symbolic-inversion oracle dataset.json --dps 40 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="JSON with 'network' and 'samples'")
    parser.add_argument("--dps", type=integer,
                        help="float-valued loss in mpmath at DPS digits "
                             "(default: exact rationals)")
    parser.add_argument("--seed", type=integer, default=0,
                        help="seed of the parameter points")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--progress", action="store_true",
                        help="report each phase on stderr")
    from ..arguments import add_budget_option
    add_budget_option(parser)
    parser.set_defaults(run=run_oracle)
    return parser
