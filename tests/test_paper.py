"""The paper's Section 2: Tables 1-4 and Example 1 against the numbers it prints.

The reference is the paper itself: its tables are typed in below exactly as printed
(Dousti, "Neural Networks, Inside Out", Tables 1-4, epochs 0-4, three decimals).
"""

import json
import subprocess
import sys
from decimal import ROUND_HALF_EVEN, Decimal

import mpmath
import pytest

from symbolic_inversion import Status
from symbolic_inversion.paper import example_1, paper_table, reproduce

PRINTED = {
    1: {"x": [0.6], "y": [0.5],
        "w": "0.500 0.489 0.479 0.469 0.460",
        "b": "0.500 0.482 0.464 0.448 0.433",
        "yhat": "(0.664) (0.650) (0.636) (0.623) (0.610)",
        "loss": "0.027 0.022 0.019 0.015 0.012"},
    2: {"x": [0.6, 0.2], "y": [0.5, 0.4],
        "w": "0.500 0.493 0.486 0.479 0.473",
        "b": "0.500 0.481 0.463 0.447 0.432",
        "yhat": "(0.664, 0.537) (0.651, 0.522) (0.638, 0.508) (0.626, 0.495) (0.615, 0.483)",
        "loss": "0.023 0.019 0.015 0.012 0.010"},
    3: {"x": [0.6, 0.2, 0.1], "y": [0.5, 0.4, 0.3],
        "w": "0.500 0.494 0.488 0.483 0.479",
        "b": "0.500 0.477 0.456 0.437 0.420",
        "yhat": "(0.664, 0.537, 0.501) (0.649, 0.520, 0.483) (0.635, 0.504, 0.466) "
                "(0.621, 0.488, 0.451) (0.609, 0.474, 0.436)",
        "loss": "0.029 0.023 0.019 0.015 0.012"},
    4: {"x": [0.6, 0.2, 0.1, 0.9], "y": [0.5, 0.4, 0.3, 0.6],
        "w": "0.500 0.493 0.486 0.479 0.473",
        "b": "0.500 0.480 0.461 0.444 0.428",
        "yhat": "(0.664, 0.537, 0.501, 0.740) (0.650, 0.521, 0.485, 0.727) "
                "(0.637, 0.507, 0.470, 0.715) (0.624, 0.493, 0.455, 0.704) "
                "(0.612, 0.479, 0.442, 0.693)",
        "loss": "0.026 0.022 0.018 0.015 0.012"},
}


def _printed_row(text):
    """'(0.664, 0.537) (0.651, 0.522)' -> [['0.664', '0.537'], ['0.651', '0.522']]."""
    if "(" in text:
        return [cell.strip("()").split(", ") for cell in text.split(") (")]
    return text.split()


def _three_decimals(value):
    """Round the full-precision decimal string to the paper's three decimals."""
    return str(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))


@pytest.fixture(scope="module")
def reproduced():
    return reproduce(dps=50)


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_every_entry_of_the_table_matches_the_paper(number, reproduced):
    table = reproduced["tables"][number - 1]
    printed = PRINTED[number]
    assert [float(v) for v in table["x"]] == printed["x"]
    assert [float(v) for v in table["y"]] == printed["y"]
    for row in ("w", "b", "loss"):
        assert [_three_decimals(v) for v in table[row]] == _printed_row(printed[row]), row
    assert [[_three_decimals(v) for v in cell] for cell in table["yhat"]] == \
        _printed_row(printed["yhat"])
    entries = 5 * 3 + 5 * len(printed["x"])
    assert entries == sum(len(_printed_row(printed[r])) for r in ("w", "b", "loss")) + \
        sum(len(c) for c in _printed_row(printed["yhat"]))


def test_tables_are_recomputed_at_full_precision(reproduced):
    # not just three decimals: a 20-digit recomputation agrees with the 50-digit one
    low = paper_table(2, dps=20)
    high = reproduced["tables"][1]
    with mpmath.workdps(30):
        assert max(abs(mpmath.mpf(a) - mpmath.mpf(b))
                   for a, b in zip(low["w"] + low["b"], high["w"] + high["b"])) < 1e-17
    assert len(high["w"][3].replace("0.", "", 1)) >= 45


def test_example_1_from_the_three_digit_table_and_from_an_exact_trace():
    first = example_1(dps=50)
    from_table, exact = first["from_table"], first["exact"]
    (x,), (y,) = from_table.samples[0]
    # the paper: x = 0.055 / 0.090 ~ 0.6 and Z(x, y) = 0.090 gives y ~ 0.5
    assert abs(x - mpmath.mpf("0.055") / mpmath.mpf("0.090")) < 1e-12
    with mpmath.workdps(30):
        T = mpmath.tanh(mpmath.mpf("0.5") * x + mpmath.mpf("0.5"))
        assert abs((T - y) * (1 - T**2) - mpmath.mpf("0.090")) < 1e-12
    assert abs(x - 0.6) < 0.02 and abs(y - 0.5) < 0.01
    assert exact.status is Status.CONVERGED
    (x,), (y,) = exact.samples[0]
    with mpmath.workdps(60):
        assert abs(x - mpmath.mpf("0.6")) < mpmath.mpf("1e-40")
        assert abs(y - mpmath.mpf("0.5")) < mpmath.mpf("1e-40")
    assert str(first["closed_form"].inputs[0]) == "(w^{(0)} - w^{(1)})/(b^{(0)} - b^{(1)})"


def _run(*args):
    return subprocess.run([sys.executable, "-m", "symbolic_inversion", *args],
                          capture_output=True, text=True, timeout=300)


def test_reproduce_json_follows_the_spec():
    result = _run("reproduce", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert set(data) >= {"tables", "examples"} and len(data["tables"]) == 4
    for number, table in enumerate(data["tables"], 1):
        n = len(PRINTED[number]["x"])
        assert set(table) >= {"x", "y", "w", "b", "yhat", "loss"}
        assert len(table["x"]) == len(table["y"]) == n
        assert len(table["w"]) == len(table["b"]) == len(table["loss"]) == 5
        assert len(table["yhat"]) == 5 and all(len(row) == n for row in table["yhat"])
        assert all(isinstance(v, str) for v in table["w"] + table["b"] + table["loss"])
        assert [_three_decimals(v) for v in table["b"]] == _printed_row(PRINTED[number]["b"])
    assert isinstance(data["examples"], dict) and "example1" in data["examples"]
    exact = data["examples"]["example1"]["exact"]
    assert exact["status"] == "converged"
    assert abs(float(exact["samples"][0]["x"][0]) - 0.6) < 1e-15


def test_reproduce_prints_the_papers_rows():
    result = _run("reproduce")
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    for number, printed in PRINTED.items():
        for row in ("w", "b", "loss"):
            assert f"{row} {printed[row]}" in lines, (number, row)
        cells = " ".join("(" + ", ".join(c) + ")" if len(c) > 1 else c[0]
                         for c in _printed_row(printed["yhat"]))
        assert f"yhat {cells}" in lines, number
