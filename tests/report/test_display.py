"""Rich display: what a notebook shows for the toolkit's objects.

References: the recovered data (known from the simulation), the system's counts worked
out by hand, the structure of the HTML (one table row per sample).
"""

import re

import mpmath
import pytest

from symbolic_inversion import (InversionSystem, Network, certify, one_sample_closed_form,
                                recover, simulate)
from symbolic_inversion.report.display import MAX_ROWS, html_table


@pytest.fixture(scope="module")
def two_samples():
    trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
                     epochs=4, init=["0.5", "0.5"], dps=30)
    return trace, recover(trace)


def rows_of(html_text, table=-1):
    body = re.split('<table class="si-table[^"]*">', html_text)[table]
    return [row for row in re.findall(r"<tr>(.*?)</tr>", body) if "<td>" in row]


def test_solution_html_lists_every_sample_to_the_digits_vouched_for(two_samples):
    trace, solution = two_samples
    text = solution._repr_html_()
    assert ">converged</span>" in text
    samples = rows_of(text)
    assert len(samples) == 2
    with mpmath.workdps(40):
        shown = sorted(re.findall(r"<td>\[([0-9.]+)\]</td><td>\[([0-9.]+)\]</td>", text))
    assert [(x[:6], y[:6]) for x, y in shown] == [("0.2000", "0.4000"), ("0.6000", "0.5000")]
    # as many decimals as the solution vouches for (absolute, values below 1)
    assert all(len(x.split(".")[1]) == solution.digits for x, _ in shown)
    assert f"<td>digits vouched for</td><td>{solution.digits}</td>" in text
    assert "<td>symmetries</td><td>none</td>" in text


def test_a_failed_solution_says_its_values_are_not_vouched_for():
    trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"], lr="0.1",
                     epochs=1, init=["0.5", "0.5"], dps=30)
    solution = recover(trace)
    text = solution._repr_html_()
    assert solution.status.value == "underdetermined"
    assert ">underdetermined</span>" in text and "color:#b42318" in text


def test_certificate_html_shows_verdict_and_centre(two_samples):
    trace, solution = two_samples
    certificate = certify(trace, solution)
    text = certificate._repr_html_()
    assert certificate.certified and ">certified</span>" in text
    assert len(rows_of(text)) == 2
    assert f"<td>equations certified</td><td>{len(certificate.equations)}</td>" in text


def test_trace_html_summarises(two_samples):
    trace, _ = two_samples
    text = trace._repr_html_()
    assert "<td>steps</td><td>4</td>" in text and "<td>samples</td><td>2</td>" in text
    assert [row.split("</td>")[0] for row in rows_of(text)] == ["<td>0", "<td>4"]


def test_long_tables_elide_their_middle():
    text = html_table([[k] for k in range(100)])
    cells = re.findall(r"<td>(\d+)</td>", text)
    assert len(cells) == MAX_ROWS - 1 and cells[-1] == "99"
    assert "89 rows not shown" in text


def test_system_latex_is_shortened_when_large():
    network = Network([1, 1], "tanh")
    trace = simulate(network, [f"0.{k}" for k in range(1, 10)], ["0.5"] * 9, lr="0.1",
                     epochs=18, init=["0.5", "0.5"], dps=40)
    text = InversionSystem.from_trace(trace)._repr_latex_()
    assert text.startswith("$$\\begin{gathered}\n\\begin{cases}") and text.endswith("$$")
    rows = text.split("\\end{cases}")[0].split("\\begin{cases}")[1].split(" \\\\\n")
    assert len(rows) == 7 and rows[-1].strip() == "\\vdots"
    # two terms, an ellipsis and the last sample in every sum
    assert all(row.count("\\cdots") == 1 and "x_{8}" in row for row in rows[:6:2])
    assert "36 equations in 18 unknowns" in text
    assert "0.5 x_{0} + 0.5" in rows[0]


def test_small_system_latex_is_complete():
    system = InversionSystem(Network([1, 1], "tanh"), samples=2, steps=2)
    text = system._repr_latex_()
    assert text.count("\\sum_{i=0}^{n - 1}") == 2 and "\\vdots" not in text
    assert "4 equations in 4 unknowns" in text


def test_large_networks_are_written_in_matrix_form():
    network = Network([784, 64, 10], ["relu", "identity"])
    assert "W_{2} \\operatorname{relu}\\left(W_{1} x + b_{1}\\right) + b_{2}" \
        in network._repr_latex_()
    system = InversionSystem(network, samples=10000, steps=3)
    text = system._repr_latex_()
    assert "\\nabla_\\theta" in text and "30000 equations" not in text
    assert f"{3 * network.num_parameters} equations in {10000 * 794} unknowns" in text


def test_closed_form_and_network_render_as_latex():
    network = Network([1, 1], "tanh")
    assert network._repr_latex_() == "$$\\hat y = \\tanh{\\left(b + w x_{0} \\right)}$$"
    text = one_sample_closed_form(network)._repr_latex_()
    assert text.startswith("$$\\begin{aligned}") and "x_{0} &=" in text
