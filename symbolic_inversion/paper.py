"""The paper's Section 2, recomputed: Tables 1-4 and Examples 1-2.

Dousti, "Neural Networks, Inside Out": the single neuron ``yhat = tanh(w x + b)``,
``w = b = 0.5`` initially, learning rate 0.1, full-batch GD on MSE, epochs 0-4.
Everything here is recomputed at high precision with the toolkit itself; the tests
compare it with the numbers printed in the paper.
"""

import mpmath

from .arithmetic import get_arithmetic
from .closed_form import one_sample_closed_form
from .program import layerwise_program
from .network import Network
from .simulate import simulate
from .solvers import recover
from .system import InversionSystem
from .trace import Trace

__all__ = ["PAPER_NETWORK", "PAPER_DATA", "paper_trace", "paper_table", "example_1",
           "example_2_trace", "example_2", "EXAMPLE_2_MATHEMATICA_ROOT", "reproduce",
           "format_table"]

PAPER_NETWORK = Network([1, 1], "tanh")
PAPER_LR = "0.1"
PAPER_INIT = ["0.5", "0.5"]
PAPER_DATA = [
    ([0.6], [0.5]),
    ([0.6, 0.2], [0.5, 0.4]),
    ([0.6, 0.2, 0.1], [0.5, 0.4, 0.3]),
    ([0.6, 0.2, 0.1, 0.9], [0.5, 0.4, 0.3, 0.6]),
]
EXAMPLE_2_PARAMETERS = [["0.5000000", "0.5000000"], ["0.4925472", "0.4810773"],
                        ["0.4855530", "0.4634884"]]


def _check_table(number):
    if number not in (1, 2, 3, 4):
        raise ValueError(f"the paper has Tables 1-4, not {number!r}")


def paper_trace(number, epochs=4, dps=50):
    """The training trace behind Table ``number`` (``epochs`` steps, ``dps`` digits)."""
    _check_table(number)
    x, y = PAPER_DATA[number - 1]
    return simulate(PAPER_NETWORK, [str(v) for v in x], [str(v) for v in y], PAPER_LR,
                    epochs, init=PAPER_INIT, dps=dps)


def paper_table(number, dps=50):
    """Table ``number`` at full precision: ``x, y, w, b, yhat, loss`` for epochs 0-4.

    Examples
    ========

    >>> from symbolic_inversion.paper import paper_table, format_table
    >>> print(format_table(paper_table(1)))
    epoch      0       1       2       3       4
    w      0.500   0.489   0.479   0.469   0.460
    b      0.500   0.482   0.464   0.448   0.433
    yhat   0.664   0.650   0.636   0.623   0.610
    loss   0.027   0.022   0.019   0.015   0.012
    """
    trace = paper_trace(number, epochs=4, dps=dps)
    xs, ys = PAPER_DATA[number - 1]
    table = {"x": [str(v) for v in xs], "y": [str(v) for v in ys], "w": [], "b": [],
             "yhat": [], "loss": []}
    arithmetic = get_arithmetic("mpmath")
    with arithmetic.workdps(dps):
        thetas = arithmetic.asarray(trace.parameters[:5])
        f = layerwise_program(PAPER_NETWORK).forward(
            thetas, arithmetic.asarray([[str(x)] for x in xs]), arithmetic=arithmetic)
        for step in range(5):
            theta = thetas[step]
            outputs = list(f[step, :, 0])
            loss = mpmath.fsum((o - mpmath.mpf(str(y))) ** 2
                               for o, y in zip(outputs, ys)) / len(xs)
            table["w"].append(mpmath.nstr(theta[0], dps))
            table["b"].append(mpmath.nstr(theta[1], dps))
            table["yhat"].append([mpmath.nstr(o, dps) for o in outputs])
            table["loss"].append(mpmath.nstr(loss, dps))
    return table


def format_table(table, decimals=3):
    """The table as the paper prints it (``decimals`` places)."""
    def cell(value):
        if isinstance(value, list):
            return "(" + ", ".join(f"{float(v):.{decimals}f}" for v in value) + ")" \
                if len(value) > 1 else f"{float(value[0]):.{decimals}f}"
        return f"{float(value):.{decimals}f}"
    rows = [("epoch", [str(j) for j in range(5)])]
    rows += [(name, [cell(v) for v in table[name]]) for name in ("w", "b", "yhat", "loss")]
    width = max(len(c) for _, cells in rows for c in cells) + 2
    return "\n".join(f"{name:<6}" + "".join(f"{c:>{width}}" for c in cells)
                     for name, cells in rows)


def printed_trace(number, decimals=3):
    """The trace as the paper prints it in Table ``number`` (rounded to ``decimals``)."""
    table = paper_table(number)
    parameters = [[f"{float(w):.{decimals}f}", f"{float(b):.{decimals}f}"]
                  for w, b in zip(table["w"], table["b"])]
    return Trace(PAPER_NETWORK, PAPER_LR, len(table["x"]), parameters)


def example_1(dps=50):
    """Example 1: ``x`` and ``y`` from Table 1 by the ratio trick.

    From the 3-decimal table (first step, as in the paper's eq. (10)) and from an exact
    ``dps``-digit trace.  Returns a dict with both solutions and the closed form.
    """
    form = one_sample_closed_form(PAPER_NETWORK)
    from_table = recover(printed_trace(1), steps=1)
    exact = recover(paper_trace(1, epochs=4, dps=dps))
    return {"closed_form": form, "from_table": from_table, "exact": exact}


def example_2_trace():
    """The 7-digit trace of the paper's Example 2 (its Mathematica code, eq. (12))."""
    return Trace(PAPER_NETWORK, PAPER_LR, 2, EXAMPLE_2_PARAMETERS)


# What the paper's Mathematica FindRoot printed for Example 2 (started by hand at
# x = (0.5, 0), y = (0, 0)); the toolkit must find this root with no starting point.
EXAMPLE_2_MATHEMATICA_ROOT = {"x": ["0.599961", "0.200118"], "y": ["0.500027", "0.400007"]}


def example_2(dps=50):
    """Example 2 solved from a cold start: the root of the paper's 7-digit eq. (12).

    Returns the :class:`Solution`, samples ordered as the paper prints them (largest
    ``x`` first).  The root is computed to ``dps`` digits; the trace's 7 digits vouch
    for 2 of them as the *training data* (``solution.digits``; the data differ from the
    root by about 1e-4).
    """
    solution = recover(example_2_trace(), dps=dps)
    solution.samples.sort(key=lambda sample: -sample[0][0])
    return solution


def reproduce(dps=50):
    """Tables 1-4 and the examples, as the ``reproduce`` command prints them."""
    tables = [paper_table(k, dps) for k in (1, 2, 3, 4)]
    first = example_1(dps)
    system = InversionSystem.from_trace(example_2_trace())
    examples = {
        "example1": {
            "closed_form": {"x": str(first["closed_form"].inputs[0]),
                            "y": str(first["closed_form"].labels[0])},
            "from_table": first["from_table"].to_dict(),
            "exact": first["exact"].to_dict(),
        },
        "example2": {"trace": example_2_trace().to_dict(),
                     "system_latex": system.latex(),
                     "counts": system.counts},
    }
    root = example_2(dps)
    examples["example2"]["root"] = dict(root.to_dict(digits=12),
                                        mathematica=EXAMPLE_2_MATHEMATICA_ROOT)
    return {"tables": tables, "examples": examples}
