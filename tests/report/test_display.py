"""Rich display: what a notebook shows for the toolkit's objects.

References: the recovered data (known from the simulation), the system's counts worked
out by hand, the structure of the HTML (one table row per sample).
"""

import os
import re
import shutil
import subprocess

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
    assert len(rows) == 7 and rows[-1].strip() == "\\vdots \\quad \\text{(30 more)}"
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
    assert "J_\\theta f(x_i)" in text and "30000 equations" not in text
    assert f"{3 * network.num_parameters} equations in {10000 * 794} unknowns" in text


def test_closed_form_and_network_render_as_latex():
    network = Network([1, 1], "tanh")
    assert network._repr_latex_() == "$$\\hat y = \\tanh{\\left(b + w x_{0} \\right)}$$"
    text = one_sample_closed_form(network)._repr_latex_()
    assert text.startswith("$$\\begin{aligned}") and "x_{0} &=" in text


# -- every user-facing object displays itself, bounded and well-formed -------------------

def test_every_user_facing_class_has_a_rich_repr():
    import inspect
    import enum
    import symbolic_inversion
    from symbolic_inversion.optimizers import Optimizer
    classes = [getattr(symbolic_inversion, name) for name in symbolic_inversion.__all__]
    classes = [c for c in classes if inspect.isclass(c) and not issubclass(c, Exception)
               and not issubclass(c, enum.Enum) and c is not symbolic_inversion.Progress]
    classes.append(Optimizer)  # every trace carries one (trace.optimizer)
    assert len(classes) >= 18
    bare = [c.__name__ for c in classes
            if not hasattr(c, "_repr_html_") and not hasattr(c, "_repr_latex_")]
    assert bare == []


@pytest.fixture(scope="module")
def gallery(two_samples):
    """One object of every user-facing class, as a notebook would show them."""
    from symbolic_inversion import (ACTIVATIONS, Limits, LossOracle, Study, generic_rank,
                                    get_loss, layerwise_program, resimulate, run_study,
                                    virtual_region)
    from symbolic_inversion.oracle import reconstruct_from_loss
    from symbolic_inversion.optimizers import Optimizer
    trace, solution = two_samples
    network = Network([1, 1], "tanh")
    relu = Network([2, 2, 1], ["relu", "identity"])
    oracle = LossOracle(relu, inputs=[["1/2", "3"], ["-2", "1"]], labels=[["2"], ["-1/3"]])
    grid = {"networks": [{"layers": [1, 1]}], "samples": [1], "seeds": [0, 1],
            "digits": [20], "method": "closed_form"}
    return {
        "network": network, "large network": Network([784, 64, 10], ["relu", "identity"]),
        "activation": ACTIVATIONS["sigmoid"], "relu activation": ACTIVATIONS["relu"],
        "optimizer": Optimizer("sgd", "0.05", momentum="0.9", weight_decay="0.001",
                               batch_size=2),
        "general system": InversionSystem(network, samples=2, steps=2),
        "system": InversionSystem.from_trace(trace),
        "vector system": InversionSystem(Network([3, 4, 2]), samples=5, steps=3),
        "closed form": one_sample_closed_form(Network([3, 4, 2])),
        "virtual region": virtual_region(relu, [["1", "2"], ["3", "-1"]], [["1"], ["2"]],
                                         list(range(1, 10))),
        "solution": solution, "certificate": certify(trace, solution),
        "resimulation": resimulate(trace, solution),
        "rank": generic_rank(network, 2, max_steps=3), "trace": trace,
        "loss reconstruction": reconstruct_from_loss(oracle, 9, seed=1),
        "oracle": oracle, "study": Study.from_dict(grid), "study result": run_study(grid),
        "limits": Limits(max_dps=5000), "program": layerwise_program(network),
        "adam": Optimizer("adamw", ["0.1", "0.05"], betas=["0.8", "0.99"]),
        "gelu activation": ACTIVATIONS["gelu"], "loss": get_loss("cross_entropy")}


class _Balanced(__import__("html.parser").parser.HTMLParser):
    """Checks that every tag opened is closed, in order."""

    def __init__(self):
        super().__init__()
        self.open, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)


def test_html_reprs_are_well_formed_reports(gallery):
    shown = {label: obj._repr_html_() for label, obj in gallery.items()
             if hasattr(obj, "_repr_html_")}
    assert len(shown) >= 11
    for label, text in shown.items():
        parser = _Balanced()
        parser.feed(text)
        parser.close()
        assert parser.errors == [] and parser.open == [], label
        assert text.startswith('<div class="si-report"><style>'), label
        assert "<script" not in text, label


def test_latex_reprs_compile_with_pdflatex(gallery, tmp_path):
    blocks = {label: obj._repr_latex_() for label, obj in gallery.items()
              if hasattr(obj, "_repr_latex_")}
    assert len(blocks) >= 9
    for label, block in blocks.items():
        assert block.startswith("$$") and block.endswith("$$") and "$" not in block[2:-2], \
            label  # (MathJax would print a dollar inside \text literally)
    path = shutil.which("pdflatex")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is required in CI (texlive-latex-base)")
        pytest.skip("pdflatex not installed (set CI=1 to make this a failure)")
    document = ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n"
                "\\begin{document}\n" + "\n".join(f"\\[{b[2:-2]}\\]" for b in blocks.values())
                + "\n\\end{document}\n")
    (tmp_path / "reprs.tex").write_text(document)
    result = subprocess.run([path, "-interaction=nonstopmode", "-halt-on-error", "reprs.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


def test_reprs_of_large_objects_are_bounded():
    from symbolic_inversion import Resimulation, Solution, Status, Trace
    from symbolic_inversion.identifiability import RankReport
    # 10,000 samples of 784 pixels and 10 labels, to 30 digits: 2.4 * 10^8 characters
    vector = [mpmath.mpf(k) / 997 for k in range(784)]
    samples = [(vector, vector[:10])] * 10000
    text = Solution(samples, Status.CONVERGED, mpmath.mpf("1e-40"), 30)._repr_html_()
    assert len(text) < 20000 and "(784 values)" in text and "9989 rows not shown" in text
    mnist = Network([784, 64, 10], ["relu", "identity"])
    latex = InversionSystem(mnist, samples=60000, steps=2)._repr_latex_()
    assert len(latex) < 1500 and "2 steps of 50890 parameters" in latex
    trace = Trace(Network([1, 1]), "0.1", 1, [["0.5", "0.5"]] * 1001,
                  extra={"note": "x" * 10 ** 6})
    assert len(trace._repr_html_()) < 5000 and "999700 more characters" in trace._repr_html_()
    replay = Resimulation([30] * 1000, [mpmath.mpf("1e-31")] * 1000, 40)._repr_html_()
    assert replay.count("<tr>") == 4 + MAX_ROWS and "989 rows not shown" in replay
    rank = RankReport(mnist, 10, 7940, 50890, [1] * 500, [float("inf")] * 500, None, 1, 30)
    assert "489 rows not shown" in rank._repr_html_()


def test_inversion_system_text_repr_and_counts():
    system = InversionSystem(Network([1, 1], "tanh"), samples=2, steps=2)
    assert repr(system) == ("InversionSystem(Network([1, 1], ['tanh'], bias=True), "
                            "samples=2, steps=2: 4 equations in 4 unknowns)")
    text = system._repr_latex_()
    assert "4 equations in 4 unknowns (2 samples of 1 + 1 values, 2 steps of 2 parameters)" \
        in text and "j = 0, \\dots, 1" in text


def test_a_larger_network_is_written_in_vector_form_without_deriving_it(monkeypatch):
    def refuse(self):
        raise AssertionError("a 26-parameter system was derived symbolically for display")
    monkeypatch.setattr(InversionSystem, "general_equations", refuse)
    monkeypatch.setattr(InversionSystem, "equations", refuse)
    text = InversionSystem(Network([3, 4, 2]), samples=5, steps=3)._repr_latex_()
    assert "78 equations in 25 unknowns" in text and "j = 0, \\dots, 2" in text
    assert "d^{(j)}_{p} = \\frac{\\theta^{(j)}_{p} - \\theta^{(j + 1)}_{p}}{\\eta}" in text


def test_a_momentum_trace_shows_the_gradient_undone_from_its_optimizer():
    network = Network([2, 3, 1], ["tanh", "identity"])
    trace = simulate(network, [["0.1", "0.2"], ["0.3", "-0.4"]], [["0.1"], ["0.2"]],
                     lr="0.1", epochs=2, dps=30, seed=1, momentum="0.5")
    text = InversionSystem.from_trace(trace)._repr_latex_()
    # not (theta_j - theta_j+1) / lr: with momentum that is the velocity
    assert ("d^{(j)}_{p} = - 10 \\theta^{(j + 1)}_{p} + 10 \\theta^{(j)}_{p} - "
            "\\frac{v^{(j)}_{p}}{2}") in text
    assert "from a trace: gd, momentum 0.5, } \\eta = 0.1" in text


def test_known_samples_are_subtracted_from_the_right_hand_sides():
    network = Network([1, 1], "tanh")
    trace = simulate(network, ["0.6", "0.2", "0.3"], ["0.5", "0.4", "0.1"], lr="0.1",
                     epochs=3, init=["0.5", "0.5"], dps=30)
    reduced = trace.with_known([(["0.2"], ["0.4"])]).unknown_part()
    text = InversionSystem.from_trace(reduced)._repr_latex_()
    with mpmath.workdps(30):
        def term(x, y):  # the per-sample terms at theta_0 = (0.5, 0.5)
            z = mpmath.tanh(x / 2 + mpmath.mpf("0.5"))
            return [x * (1 - z ** 2) * (z - y), (1 - z ** 2) * (z - y)]
        others = [term(mpmath.mpf("0.6"), mpmath.mpf("0.5")),
                  term(mpmath.mpf("0.3"), mpmath.mpf("0.1"))]
        sides = [mpmath.nstr(others[0][p] + others[1][p], 8) for p in range(2)]
    first, second = text.split("\\begin{cases}\n")[1].split(" \\\\\n")[:2]
    assert first.endswith(" = " + sides[0]) and second.endswith(" = " + sides[1])
    assert "1 known sample subtracted" in text


def test_optimizer_and_activation_print_their_equations():
    from symbolic_inversion import ACTIVATIONS
    from symbolic_inversion.optimizers import Optimizer
    text = Optimizer("sgd", "0.05", momentum="0.9", weight_decay="0.001",
                     batch_size=2)._repr_latex_()
    assert ("v^{(j + 1)}_{p} &= \\frac{\\theta^{(j)}_{p}}{1000} + d^{(j)}_{p} + "
            "\\frac{9 v^{(j)}_{p}}{10}") in text
    assert "\\theta^{(j + 1)}_{p} &= \\theta^{(j)}_{p} - \\frac{v^{(j + 1)}_{p}}{20}" in text
    assert "|B_j| = 2" in text
    assert ("d^{(j)}_{p} &= - 20 \\theta^{(j + 1)}_{p} + \\frac{19999 \\theta^{(j)}_{p}}"
            "{1000} - \\frac{9 v^{(j)}_{p}}{10}") in text
    sigmoid = ACTIVATIONS["sigmoid"]._repr_latex_()
    assert sigmoid.startswith("$$\\operatorname{sigmoid}(z) = \\frac{1}{1 + e^{- z}}")


def test_the_oracle_never_shows_its_hidden_samples():
    from symbolic_inversion import LossOracle
    oracle = LossOracle(Network([1, 1, 1], ["relu", "identity"]),
                        inputs=[["0.123456"]], labels=[["0.654321"]])
    oracle([1, 0, 1, 0])
    text = oracle._repr_html_()
    assert "123456" not in text and "654321" not in text
    assert "<td>hidden samples</td><td>1</td>" in text
    assert "<td>evaluations so far</td><td>1</td>" in text


def test_studies_show_their_grid_and_summary(gallery):
    study = gallery["study"]._repr_html_()
    assert "<td>cells</td><td>2</td>" in study and "<td>seeds</td><td>[0, 1]</td>" in study
    result = gallery["study result"]
    assert repr(result) == "StudyResult(2 of 2 cells done, output=None)"
    text = result._repr_html_()
    assert ">complete</span>" in text
    assert rows_of(text)[0].startswith("<td>1-1 tanh</td><td>1</td><td>20</td><td>2/2</td>"
                                       "<td>100%</td>")


def test_rank_resimulation_limits_and_compiled_networks(gallery):
    rank = gallery["rank"]._repr_html_()
    assert ">identifiable from 2 steps</span>" in rank
    assert [r.split("</td>")[1] for r in rows_of(rank)] == ["<td>2 of 4", "<td>4 of 4",
                                                             "<td>4 of 4"]
    replay = gallery["resimulation"]
    text = replay._repr_html_()
    assert f"<td>fewest digits matching</td><td>{replay.min_digits}</td>" in text
    assert len(rows_of(text)) == len(replay.digits) == 4
    limits = gallery["limits"]._repr_html_()
    assert ">1 changed</span>" in limits and "<td>5000 (default 3000)</td>" in limits
    assert "<td>network</td><td>1-1 tanh</td>" in gallery["program"]._repr_html_()
    assert "<td>loss</td><td>mse</td>" in gallery["program"]._repr_html_()
