"""Training samples from user input: lists, ``(x, y)`` pairs, a ``Solution``, a JSON file.

Every reader checks the shapes against the network and reads the numbers exactly (as
decimals, or the exact binary value of an mpmath number); nothing is evaluated.
"""

from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np

from .errors import InputError
from .exact import mpf_fraction, to_decimal

__all__ = ["sample_columns", "sample_rows", "exact_points", "read_samples"]


def sample_columns(values, width, name, count=None):
    """Samples as a list of lists of Decimals; a flat list is accepted for
    one-dimensional data.

    >>> sample_columns([0.6, "0.2"], 1, "x")
    [[Decimal('0.6')], [Decimal('0.2')]]
    >>> sample_columns([[1, 2]], 3, "x")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: x[0]: expected 3 values, got 2
    """
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise InputError(f"{name}: expected a list of samples, got {type(values).__name__}")
    values = list(values)
    if values and not isinstance(values[0], (list, tuple, np.ndarray)):
        if width != 1:
            raise InputError(f"{name}: expected one list of {width} values per sample")
        values = [[v] for v in values]
    if not values:
        raise InputError(f"{name}: need at least one sample")
    if count is not None and len(values) != count:
        raise InputError(f"{name}: expected {count} samples (one per input), got {len(values)}")
    for i, sample in enumerate(values):
        if not isinstance(sample, (list, tuple, np.ndarray)) or len(sample) != width:
            if not isinstance(sample, (list, tuple, np.ndarray)):
                raise InputError(f"{name}[{i}]: expected a list of {width} values, got "
                                 f"{type(sample).__name__}")
            raise InputError(f"{name}[{i}]: expected {width} values, got {len(sample)}")
    return [[to_decimal(v, f"{name}[{i}][{d}]") for d, v in enumerate(sample)]
            for i, sample in enumerate(values)]


def sample_rows(values, name, count=None):
    """:func:`sample_columns` of the width the values have: a flat list is one value per
    sample (as :func:`~symbolic_inversion.simulate` accepts), else one list per sample.

    >>> sample_rows([0.6, "0.2"], "x")
    [[Decimal('0.6')], [Decimal('0.2')]]
    >>> sample_rows([[1, 2], [3]], "x")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: x[1]: expected 2 values, got 1
    """
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise InputError(f"{name}: expected a list of samples, got {type(values).__name__}")
    values = list(values)
    first = values[0] if values else None
    width = len(first) if isinstance(first, (list, tuple, np.ndarray)) else 1
    return sample_columns(values, width, name, count)


def exact_points(samples, network, field_name="samples"):
    """Samples as lists ``x + y`` of exact Fractions: mpf kept bit for bit, everything
    else read as a decimal.  ``samples`` is a list of ``(x, y)`` pairs or
    ``{"x": ..., "y": ...}`` objects, or a :class:`~symbolic_inversion.Solution`.

    >>> from symbolic_inversion import Network
    >>> exact_points([([0.5], ["0.25"])], Network([1, 1]))
    [[Fraction(1, 2), Fraction(1, 4)]]
    >>> exact_points([{"x": [1]}], Network([1, 1]))
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: samples[0]: expected an object with x and y
    """
    from .solvers.solution import Solution
    if isinstance(samples, Solution):
        samples = samples.samples
    d, m = network.input_width, network.output_width
    points = []
    for i, sample in enumerate(samples):
        if isinstance(sample, dict):
            if "x" not in sample or "y" not in sample:
                raise InputError(f"{field_name}[{i}]: expected an object with x and y")
            sample = (sample["x"], sample["y"])
        try:
            x, y = sample
        except (TypeError, ValueError):
            raise InputError(f"{field_name}[{i}]: expected a pair (x, y)") from None
        x = list(x) if isinstance(x, (list, tuple)) else [x]
        y = list(y) if isinstance(y, (list, tuple)) else [y]
        if len(x) != d or len(y) != m:
            raise InputError(f"{field_name}[{i}]: expected {d} input and {m} label values, "
                             f"got {len(x)} and {len(y)}")
        exact = []
        for k, v in enumerate(x + y):
            if isinstance(v, mpmath.mpf):
                exact.append(mpf_fraction(v))
            else:
                exact.append(Fraction(to_decimal(v, f"{field_name}[{i}][{k}]")))
        points.append(exact)
    return points


def read_samples(path, network):
    """Samples from a JSON file: the output of ``recover --json`` (its ``samples``) or a
    list of ``{"x": [...], "y": [...]}``.  Numbers are decimal strings or JSON numbers,
    read exactly; nothing in the file is evaluated.

    >>> import os, tempfile
    >>> from symbolic_inversion import Network
    >>> path = os.path.join(tempfile.mkdtemp(), "solution.json")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write('{"samples": [{"x": ["0.6"], "y": [0.5]}]}')
    >>> read_samples(path, Network([1, 1]))
    [(['0.6'], [Decimal('0.5')])]
    """
    from .files import read_json
    data = read_json(path, "--solution")
    if isinstance(data, dict):
        data = data.get("samples")
    if not isinstance(data, list) or not data:
        raise InputError("--solution: expected a list of samples or an object with "
                         "'samples' (the output of 'recover --json')")
    exact_points(data, network, "samples")  # validates shapes and numbers
    return [(sample["x"], sample["y"]) if isinstance(sample, dict) else sample
            for sample in data]
