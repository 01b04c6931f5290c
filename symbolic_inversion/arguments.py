"""Option values of the command line (argparse ``type`` callables) and the options every
long command shares: used by :mod:`symbolic_inversion.cli` and the subcommands that live
beside their subject (:mod:`symbolic_inversion.oracle.command`)."""

import argparse
import math
import re

from .errors import InputError
from .exact import to_decimal

__all__ = ["integer", "finite_number", "add_budget_option"]

# spaces and tabs typed around a number on a command line or in a CSV cell are layout,
# not part of the number (the trace format itself admits none)
_BLANKS = " \t"


_INTEGER = re.compile(r"[+-]?[0-9]+")


def integer(text):
    """An integer option's value (argparse ``type``): ASCII digits, an optional sign and
    blanks around, as the documented number pattern (argparse's ``int`` also took
    ``"٥٠"``, ``"１"`` and ``"1_000"``)."""
    if not _INTEGER.fullmatch(text.strip(_BLANKS)):
        raise argparse.ArgumentTypeError(f"not an integer: {text!r} (ASCII digits)")
    return int(text.strip(_BLANKS))


def finite_number(text):
    """A number option's value (argparse ``type``): the documented decimal pattern
    ``[+-]digits[.digits][e[+-]digits]``, finite as a float (``float`` also took
    ``"nan"``, ``"infinity"`` and ``"٥"``)."""
    try:
        value = float(to_decimal(text.strip(_BLANKS), "number"))
    except InputError:
        value = None
    if value is None or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite decimal number: {text!r}")
    return value


def add_budget_option(parser):
    """``--max-seconds``: the time budget of a long command (:mod:`symbolic_inversion.limits`)."""
    parser.add_argument("--max-seconds", type=finite_number, metavar="S",
                        help="stop with one line and exit 2 after S seconds (default: the "
                             "limit max_seconds, 3600; 0: no budget)")
