r"""Rich display in notebooks: HTML tables and LaTeX for the toolkit's objects.

Jupyter shows ``obj._repr_html_()`` or ``obj._repr_latex_()`` when an object is the
value of a cell.  Every class delegates to one function here, so that what a user sees
is decided in one place:

============================ ============================================================
object                       shown as
============================ ============================================================
``Network``                  its forward map in LaTeX (:func:`network_latex`)
``Activation``               its value and derivative in LaTeX (:func:`activation_latex`)
``Optimizer``                its update equations in LaTeX (:func:`optimizer_latex`)
``InversionSystem``          counts and equations in LaTeX, shortened when large
                             (:func:`system_latex`)
``OneSampleClosedForm``      its formulas in LaTeX
``VirtualRegion``            its loss polynomial and region in LaTeX, shortened
``Solution``                 status, samples to the digits vouched for, residual, time
``Certificate``              verdict, radii, the certified centre
``Resimulation``             digits matching per step
``RankReport``               rank per number of steps, the steps needed
``Trace``                    a summary: network, optimizer, counts, first and last step
``LossReconstruction``       status, architecture, samples, what is not identifiable
``LossOracle``               what the black box is (never its hidden data)
``Study``, ``StudyResult``   the grid; cells done and the summary table
``Limits``                   every limit, its value and how to raise it
``LayerwiseProgram``         the network, its loss link and compiled arithmetics
============================ ============================================================

Everything is escaped; numbers are shown to the digits that can be trusted, not to the
working precision.  Everything is bounded: a table shows at most :data:`MAX_ROWS` rows, a
vector at most :data:`MAX_VECTOR` entries, a LaTeX block at most a few rows, each with a
note of what was left out; a notebook never receives megabytes.
"""

import html

import mpmath
import sympy as sp

__all__ = ["html_table", "html_report", "network_latex", "system_latex", "math_block",
           "activation_latex", "optimizer_latex", "observed_gradient_latex",
           "closed_form_latex", "virtual_region_latex", "solution_html",
           "certificate_html", "resimulation_html", "rank_report_html", "trace_html",
           "loss_reconstruction_html", "loss_oracle_html", "study_html",
           "study_result_html", "limits_html", "program_html", "MAX_ROWS", "MAX_VECTOR"]

#: Longest table (samples, equations) shown in full; longer ones show head and tail.
MAX_ROWS = 12
#: Most entries of one vector shown in a table cell (a 784-pixel input is not read).
MAX_VECTOR = 8
# Longest free text (a message, a trace's extra field) shown in a cell.
MAX_TEXT = 300
# Widest number shown: a 60-digit trace vouches for ~58 digits, more is unreadable.
MAX_SHOWN_DIGITS = 40
_OK, _BAD = "#1a7f37", "#b42318"


def _cell(value, tag):
    return f"<{tag}>{html.escape(_clipped(str(value)))}</{tag}>"


def _clipped(text, limit=MAX_TEXT):
    """``text``, or its first ``limit`` characters and a count of the rest."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 ({len(text) - limit} more characters)"


def _listed(values, show=str, limit=MAX_VECTOR):
    """``[a, b, ...]``, each value through ``show``; past ``limit`` values, the first ones
    and how many there are (only those shown are formatted).

    >>> from symbolic_inversion.report.display import _listed
    >>> _listed([1, 2]), _listed(range(784), limit=3)
    ('[1, 2]', '[0, 1, 2, \u2026 (784 values)]')
    """
    values = list(values)
    shown = ", ".join(show(v) for v in values[:limit])
    return f"[{shown}]" if len(values) <= limit else f"[{shown}, \u2026 ({len(values)} values)]"


# One style sheet per report, scoped to it: themes (the docs' included) centre tables and
# squeeze cells; a report must read the same in Jupyter and in the built pages.
_STYLE = """<style>
.si-report table.si-table {border-collapse: collapse; margin: 0.3em 0; width: auto;}
.si-report table.si-table td, .si-report table.si-table th {
  padding: 0.1em 1em 0.1em 0; text-align: left; vertical-align: top;}
.si-report table.si-facts td:first-child {white-space: nowrap; font-weight: 600;}
</style>"""


def _shortened(rows, limit):
    """``rows`` itself, or its head and tail with ``None`` (an ellipsis row) between."""
    if len(rows) <= limit:
        return list(rows)
    head = limit - 3
    return list(rows[:head]) + [None] + list(rows[-2:])


def html_table(rows, header=None, limit=MAX_ROWS, names=False):
    """An escaped HTML table; longer than ``limit`` rows, the middle is elided.  With
    ``names`` the first column holds names (a report shows them bold, unwrapped).

    Examples
    ========

    >>> from symbolic_inversion.report.display import html_table
    >>> print(html_table([["x", "0.6"], ["y", "<0.5>"]], header=["name", "value"]))
    <table class="si-table"><thead><tr><th>name</th><th>value</th></tr></thead><tbody>
    <tr><td>x</td><td>0.6</td></tr>
    <tr><td>y</td><td>&lt;0.5&gt;</td></tr>
    </tbody></table>
    >>> html_table([[k] for k in range(20)], limit=5).count("<tr>")
    5
    """
    lines = [f'<table class="si-table{" si-facts" if names else ""}">'
             + ("<thead><tr>" + "".join(_cell(h, "th") for h in header) + "</tr></thead>"
                if header else "") + "<tbody>"]
    width = len(header) if header else max((len(r) for r in rows), default=1)
    for row in _shortened(rows, limit):
        if row is None:
            lines.append(f'<tr><td colspan="{width}">&#8942; ({len(rows) - limit + 1} rows '
                         f'not shown)</td></tr>')
        else:
            lines.append("<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>")
    return "\n".join(lines) + "\n</tbody></table>"


def html_report(title, verdict, ok, facts, tables=(), notes=()):
    """A titled block: a coloured verdict, a table of facts, further tables, notes.

    ``facts`` is a list of ``(name, value)``; entries whose value is ``None`` are left
    out.  ``tables`` holds ready HTML (from :func:`html_table`).

    Examples
    ========

    >>> from symbolic_inversion.report.display import html_report
    >>> text = html_report("Solution", "converged", True, [("digits", 58), ("time", None)])
    >>> "converged" in text, "digits" in text, "time" in text
    (True, True, False)
    """
    colour = _OK if ok else _BAD
    parts = [f'<div class="si-report">{_STYLE}<p><strong>{html.escape(title)}</strong>: '
             f'<span style="color:{colour};font-weight:bold">{html.escape(verdict)}</span></p>']
    shown = [(name, value) for name, value in facts if value is not None]
    if shown:
        parts.append(html_table(shown, limit=len(shown), names=True))
    parts += list(tables)
    parts += [f"<p>{html.escape(note)}</p>" for note in notes if note]
    return "\n".join(parts) + "\n</div>"


def math_block(latex):
    """``latex`` as a displayed equation for ``_repr_latex_`` (``$$ ... $$``).

    >>> from symbolic_inversion.report.display import math_block
    >>> math_block(r"x^2")
    '$$x^2$$'
    """
    return f"$${latex}$$"


# -- numbers ----------------------------------------------------------------------------

def _vouched(value, digits):
    """``value`` to ``digits`` decimals after the point (absolute accuracy), as text;
    6 significant digits when nothing is vouched for."""
    if not digits:
        return mpmath.nstr(value, 6)
    magnitude = int(mpmath.floor(mpmath.log10(abs(value)))) + 1 if value else 0
    significant = max(1, min(MAX_SHOWN_DIGITS, digits + max(magnitude, 0)))
    return mpmath.nstr(value, significant, strip_zeros=False)


def _short(value, digits=3):
    if value is None:
        return None
    if isinstance(value, (mpmath.mpf, mpmath.mpc)):
        return mpmath.nstr(value, digits)
    return str(value)


def _vector(values, digits):
    return _listed(values, lambda value: _vouched(value, digits))


def _samples_table(samples, digits):
    rows = [[i, _vector(x, digits), _vector(y, digits)] for i, (x, y) in enumerate(samples)]
    return html_table(rows, header=["sample", "x", "y"])


# -- LaTeX ------------------------------------------------------------------------------

# Above this many parameters, or this many LaTeX characters in one row, the expanded
# forward map or equation is a wall of symbols; the matrix form says the same in a line.
EXPANDED_PARAMETERS = 40
LONGEST_ROW = 700
# Coefficients of an instantiated system are shown rounded (``.latex()`` has them all).
SHOWN_COEFFICIENT_DIGITS = 8


def network_latex(network):
    r"""The forward map of ``network`` in LaTeX: expanded for small networks, in matrix
    form (one factor per layer) for large ones.

    Examples
    ========

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.report.display import network_latex
    >>> network_latex(Network([1, 1], "tanh"))
    '\\hat y = \\tanh{\\left(b + w x_{0} \\right)}'
    >>> print(network_latex(Network([784, 64, 10], ["relu", "identity"])))
    \hat y = W_{2} \operatorname{relu}\left(W_{1} x + b_{1}\right) + b_{2}, \quad x \in \mathbb{R}^{784},\ \hat y \in \mathbb{R}^{10}\ (50890 \text{ parameters})
    """
    if network.num_parameters <= EXPANDED_PARAMETERS:
        x, _ = network.sample_symbols(0)
        output = network.forward(x)
        expanded = sp.latex(output[0] if network.output_width == 1 else output)
        if len(expanded) <= LONGEST_ROW:
            return r"\hat y = " + expanded
    inner = "x"
    for layer, activation in enumerate(network.activations, 1):
        affine = f"W_{{{layer}}} {inner}" + (f" + b_{{{layer}}}" if network.bias else "")
        inner = affine if activation == "identity" else \
            rf"\operatorname{{{activation}}}\left({affine}\right)"
    return (rf"\hat y = {inner}, \quad x \in \mathbb{{R}}^{{{network.input_width}}},\ "
            rf"\hat y \in \mathbb{{R}}^{{{network.output_width}}}\ "
            rf"({network.num_parameters} \text{{ parameters}})")


def _bounded_rows(rows, limit, total=None):
    r"""The first ``limit`` of ``rows`` (LaTeX), then ``\vdots`` and how many of ``total``
    (default ``len(rows)``) are not shown."""
    total = len(rows) if total is None else total
    rows = list(rows[:limit])
    if total > len(rows):
        rows.append(rf"\vdots \quad \text{{({total - len(rows)} more)}}")
    return rows


def _number(value):
    """A decimal (a string, ``Decimal`` or number) in LaTeX, as SymPy prints it."""
    return sp.latex(sp.Float(str(value), max(15, len(str(value)))))


def activation_latex(activation):
    r"""An :class:`~symbolic_inversion.Activation`'s value and derivative in LaTeX,
    printed by SymPy from its symbolic form (the derivative in terms of the value where
    that is how backpropagation uses it).

    Examples
    ========

    >>> from symbolic_inversion import ACTIVATIONS
    >>> from symbolic_inversion.report.display import activation_latex
    >>> print(activation_latex(ACTIVATIONS["tanh"]))
    \operatorname{tanh}(z) = \tanh{\left(z \right)}, \qquad \operatorname{tanh}'(z) = 1 - \tanh^{2}{\left(z \right)}
    """
    z = sp.Symbol("z")
    value = activation.symbolic(z)
    name = rf"\operatorname{{{activation.name}}}"
    return (rf"{name}(z) = {sp.latex(value)}, \qquad "
            rf"{name}'(z) = {sp.latex(activation.derivative(z, value))}")


def _learning_rate(trace):
    """A trace's learning rate in LaTeX (a schedule: its first value and a note)."""
    if trace.optimizer.schedule is None:
        return _number(trace.lr)
    return _number(trace.optimizer.lr_at(0)) + r"\text{ (a schedule)}"


def optimizer_latex(optimizer):
    r"""The update equations of an :class:`~symbolic_inversion.optimizers.Optimizer`
    (:meth:`~symbolic_inversion.optimizers.Optimizer.symbolic_update`, printed by SymPy
    with its numbers) and what an observer reads off two consecutive parameter vectors
    (:func:`observed_gradient_latex`).

    Examples
    ========

    >>> from symbolic_inversion.optimizers import Optimizer
    >>> from symbolic_inversion.report.display import optimizer_latex
    >>> print(optimizer_latex(Optimizer("gd", "0.1")))
    \begin{aligned}
    \theta^{(j + 1)}_{p} &= \theta^{(j)}_{p} - \frac{d^{(j)}_{p}}{10} \\
    \text{observed: } d^{(j)}_{p} &= - 10 \theta^{(j + 1)}_{p} + 10 \theta^{(j)}_{p} \\
    \text{with } d^{(j)}_{p} &\text{ the loss gradient on every sample}
    \end{aligned}
    >>> text = optimizer_latex(Optimizer("sgd", "0.1", momentum="0.9", batch_size=2))
    >>> "|B_j| = 2" in text
    True
    """
    eta = sp.Symbol("eta", positive=True)
    values = {} if optimizer.schedule is not None else {eta: sp.Rational(str(optimizer.lr))}
    rows = [f"{sp.latex(eq.lhs)} &= {sp.latex(eq.rhs.subs(values))}"
            for eq in optimizer.symbolic_update()]
    rows.append(r"\text{observed: } " + observed_gradient_latex(optimizer).replace(
        " = ", " &= ", 1))
    batch = (rf"\text{{ the loss gradient on the batch }} B_j,\ |B_j| = "
             rf"{optimizer.batch_size}" if optimizer.batch_size
             else r"\text{ the loss gradient on every sample}")
    rows.append(r"\text{with } d^{(j)}_{p} &" + batch)
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def _latex_text(value):
    """``value`` safe inside ``\\text{...}``: LaTeX's special characters escaped."""
    special = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&",
               "#": r"\#", "_": r"\_", "%": r"\%", "^": r"\^{}", "~": r"\~{}"}
    return "".join(special.get(c, c) for c in str(value))


def observed_gradient_latex(optimizer=None):
    r"""The gradient ``d^{(j)}_p`` an observer reads off ``theta^{(j)}`` and
    ``theta^{(j+1)}``: the optimizer's update solved for it by SymPy (``None``: plain
    gradient descent with a symbolic learning rate); for an optimizer whose steps are not
    invertible (Adam), the first step's closed form.

    >>> from symbolic_inversion.optimizers import Optimizer
    >>> from symbolic_inversion.report.display import observed_gradient_latex
    >>> print(observed_gradient_latex())
    d^{(j)}_{p} = \frac{\theta^{(j)}_{p} - \theta^{(j + 1)}_{p}}{\eta}
    >>> print(observed_gradient_latex(Optimizer("gd", "0.1", momentum="0.5")))
    d^{(j)}_{p} = - 10 \theta^{(j + 1)}_{p} + 10 \theta^{(j)}_{p} - \frac{v^{(j)}_{p}}{2}
    """
    gradient = sp.Symbol("d^{(j)}_{p}")
    theta, later = sp.Symbol(r"\theta^{(j)}_{p}"), sp.Symbol(r"\theta^{(j + 1)}_{p}")
    if optimizer is None:
        return (rf"{sp.latex(gradient)} = \frac{{{sp.latex(theta)} - {sp.latex(later)}}}"
                r"{\eta}")
    if not optimizer.invertible:
        return (r"d^{(0)}_{p} = \frac{\epsilon\, k_p}{1 - |k_p|},\ k_p = "
                r"\frac{\theta^{(0)}_{p} - \theta^{(1)}_{p}}{\eta}"
                r"\text{ (the first step; later steps enter the system as update "
                r"equations)}")
    eta = sp.Symbol("eta", positive=True)
    values = {} if optimizer.schedule is not None else {eta: sp.Rational(str(optimizer.lr))}
    equations = optimizer.symbolic_update()
    unknowns = [gradient] + [eq.lhs for eq in equations if eq.lhs != later]
    solved = sp.solve(equations, unknowns, dict=True)[0][gradient]
    return f"{sp.latex(gradient)} = {sp.latex(sp.expand(solved.subs(values)))}"


# The per-parameter form of a system is derived by SymPy before its length is known;
# measured (2 samples, general form): a 2-2-1 network (9 parameters) takes 0.3 s for
# rows of 750 LaTeX characters, a 3-4-2 (26) 1.8 s for rows of 2800.  Above this many
# parameters the vector form is written at once: a display must not take seconds.
SYSTEM_EXPANDED_PARAMETERS = 12


def _instantiated_rows(system, max_rows):
    """LaTeX rows of the first equations of a system with a trace; sums over more than
    three samples are elided in the middle (``+ \\cdots +``); the terms of known
    samples are subtracted from the right-hand side."""
    network, trace = system.network, system.trace
    digits = min(trace.digits, SHOWN_COEFFICIENT_DIGITS)
    sides = system.right_hand_sides()

    def numbers(values):
        return sp.Matrix([sp.Float(str(v), digits) for v in values])

    rows = []
    for step in range(system.steps):
        theta = [sp.Float(str(v), digits) for v in trace.parameters[step]]
        batch = list(system.batch(step))
        shown = batch if len(batch) <= 3 else batch[:2] + [batch[-1]]
        # only the symbols shown are built (a trace may claim a million samples)
        terms = [network.sample_term(*network.sample_symbols(i), theta, system.loss)
                 for i in shown]
        known = sp.zeros(network.num_parameters, 1)
        for x, y in system.known_terms(step):
            known += network.sample_term(numbers(x), numbers(y), theta, system.loss)
        for p in range(network.num_parameters):
            parts = [sp.latex(term[p]) for term in terms]
            if len(shown) < len(batch):
                parts = parts[:2] + [r"\cdots"] + parts[2:]
            side = sp.Rational(sides[step][p].numerator, sides[step][p].denominator)
            side = sp.Float(side - known[p], digits)
            rows.append(r" + ".join(parts) + " = " + sp.latex(side))
            if len(rows) == max_rows:
                return rows
    return rows


def _system_summary(system):
    r"""The counts of a system (and what its trace is) as ``\text`` rows."""
    counts, trace = system.counts, system.trace
    network = system.network
    rows = [rf"\text{{{counts['equations']} equations in {counts['unknowns']} unknowns "
            rf"({counts['samples']} samples of {network.input_width} + "
            rf"{network.output_width} values, {counts['steps']} steps of "
            rf"{counts['parameters']} parameters)}}"]
    if trace is not None:
        settings = trace.optimizer.to_dict()
        optimizer = ", ".join([settings.pop("name")] + [
            f"{k.replace('_', ' ')} {v}" for k, v in settings.items() if k != "lr"])
        known = len(trace.offset[0]) if getattr(trace, "offset", None) else 0
        rows.append(rf"\text{{from a trace: {_latex_text(optimizer)}, }} \eta = "
                    rf"{_learning_rate(trace)}\text{{, {trace.digits} digits"
                    + (f", {known} known sample{'s' if known > 1 else ''} subtracted" if known
                       else "") + "}")
    return rows


def _vector_form(system):
    """The system in vector form: one line for every step, the observed gradient (or,
    for an optimizer that cannot be undone, its update equations), the network."""
    trace = system.trace
    loss = system.loss
    links = {"mse": r"\ell(f) = f", "cross_entropy": r"\ell = \operatorname{softmax}",
             "bce_with_logits": r"\ell = \sigma"}
    size = sp.Symbol("n", positive=True)
    factor = sp.latex(loss.factor_expression(size, system.network.output_width)).replace(
        "n", r"|B_j|")
    steps = system.counts["steps"]
    form = (r"d^{(j)} = c_j \sum_{i \in B_j} J_\theta f(x_i)^{\mathsf{T}} \big(\ell(f(x_i))"
            rf" - y_i\big) \Big|_{{\theta = \theta^{{(j)}}}}, \quad c_j = {factor}, \quad "
            + links.get(loss.name, rf"\ell\text{{: the link of {_latex_text(loss.name)}}}")
            + (r", \quad j = 0" if steps == 1 else rf", \quad j = 0, \dots, {steps - 1}"))
    optimizer = trace.optimizer if trace is not None else system.optimizer
    if optimizer is not None and system.form != "gradient":
        rows = [f"{sp.latex(eq.lhs)} = {sp.latex(eq.rhs)}" for eq in
                optimizer.symbolic_update()]
        return [form] + rows + [network_latex(system.network)]
    gradient = observed_gradient_latex(optimizer)
    return [form, gradient, network_latex(system.network)]


def system_latex(system, max_rows=6):
    r"""The inversion system in LaTeX: its equations, then its counts (and, from a
    trace, the optimizer, learning rate and digits).

    A small network (at most 12 parameters) is written equation by equation: the
    general form (the paper's eq. (9), one row per parameter) or, from a trace, the first
    ``max_rows`` instantiated equations, then ``\vdots`` and how many more; sums over
    more than three samples show two terms, ``\cdots`` and the last.  A larger network,
    or rows too long to read, is written in vector form (one line for all steps, the
    observed gradient undone from the optimizer, the forward map), in any size.

    Examples
    ========

    >>> from symbolic_inversion import InversionSystem, Network, simulate
    >>> from symbolic_inversion.report.display import system_latex
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2", "0.1", "0.9"],
    ...                  ["0.5", "0.4", "0.3", "0.6"], lr="0.1", epochs=4,
    ...                  init=["0.5", "0.5"], dps=8)
    >>> text = system_latex(InversionSystem.from_trace(trace), max_rows=3)
    >>> text.count(r"\cdots"), text.count(r"\vdots"), "8 equations in 8 unknowns" in text
    (3, 1, True)
    >>> big = InversionSystem(Network([784, 64, 10], ["relu", "identity"]), samples=60000)
    >>> len(system_latex(big)) < 1000, "50890 parameters" in system_latex(big)
    (True, True)
    """
    network = system.network
    summary = _system_summary(system)
    rows = []
    if network.num_parameters <= SYSTEM_EXPANDED_PARAMETERS:
        if system.trace is None:
            rows = [sp.latex(eq) for eq in system.general_equations()]
            steps = system.counts["steps"]
            summary[0] += (r"\quad \text{for } j = 0" if steps == 1 else
                           rf"\quad \text{{for }} j = 0, \dots, {steps - 1}")
        else:
            rows = _instantiated_rows(system, max_rows)
            if system.trace.digits > SHOWN_COEFFICIENT_DIGITS:
                summary.append(rf"\text{{(coefficients to {SHOWN_COEFFICIENT_DIGITS} "
                               r"digits)}")
    if not rows or max(len(row) for row in rows) > LONGEST_ROW:
        return (r"\begin{gathered}" + " \\\\\n".join(_vector_form(system) + summary)
                + r"\end{gathered}")
    if system.trace is not None:
        rows = _bounded_rows(rows, max_rows, system.counts["equations"])
    body = "\\begin{cases}\n" + " \\\\\n".join(rows) + "\n\\end{cases}"
    # the counts below the system, not beside it: the rows are wide already
    return "\\begin{gathered}\n" + body + " \\\\\n" + " \\\\\n".join(summary) + \
        "\n\\end{gathered}"


def closed_form_latex(form, max_rows=MAX_ROWS):
    r"""A :class:`~symbolic_inversion.OneSampleClosedForm`'s formulas as ``aligned``
    rows (at most ``max_rows``, then ``\vdots``).

    >>> from symbolic_inversion import Network, one_sample_closed_form
    >>> from symbolic_inversion.report.display import closed_form_latex
    >>> print(closed_form_latex(one_sample_closed_form(Network([1, 1], "tanh")))
    ...       .splitlines()[1])
    x_{0} &= \frac{w^{(0)} - w^{(1)}}{b^{(0)} - b^{(1)}} \\
    """
    rows = [f"{sp.latex(x)} &= {sp.latex(e)}"
            for x, e in zip(form.symbols["x"], form.inputs)]
    rows += [f"{sp.latex(y)} &= {sp.latex(e)}"
             for y, e in zip(form.symbols["y"], form.labels)]
    rows = [row if len(row) <= 3 * LONGEST_ROW else
            row.split("&=")[0] + r"&= \text{(" + str(len(row)) + " characters of LaTeX)}"
            for row in _bounded_rows(rows, max_rows)]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def virtual_region_latex(region, max_rows=6):
    r"""A :class:`~symbolic_inversion.VirtualRegion` in LaTeX: the loss polynomial (its
    size instead, when longer than a screen) on the region's first ``max_rows`` sign
    conditions, then ``\vdots``.

    >>> from symbolic_inversion import Network, virtual_region
    >>> from symbolic_inversion.report.display import virtual_region_latex
    >>> region = virtual_region(Network([1, 3, 1], ["relu", "identity"], bias=False),
    ...                         [["2"], ["-1"]], [["1"], ["0"]], [1, -1, 2, 1, 1, 1])
    >>> print(virtual_region_latex(region, max_rows=2))
    L = ... \quad \text{on} \quad \begin{cases} ... \\ ... \\ \vdots \quad \text{(4 more)} \end{cases}
    """
    polynomial = sp.latex(region.polynomial)
    if len(polynomial) > 2 * LONGEST_ROW:
        terms = len(sp.Add.make_args(sp.expand(region.polynomial)))
        polynomial = (rf"\text{{a polynomial of degree "
                      rf"{sp.Poly(region.polynomial, *region.symbols).total_degree()} "
                      rf"with {terms} terms in {len(region.symbols)} parameters}}")
    if not region.inequalities:
        return f"L = {polynomial}"
    conditions = _bounded_rows([sp.latex(c) for c in region.inequalities], max_rows)
    return (f"L = {polynomial}" + r" \quad \text{on} \quad \begin{cases} "
            + r" \\ ".join(conditions) + r" \end{cases}")


# -- HTML of results --------------------------------------------------------------------

def solution_html(solution):
    """The HTML of a :class:`~symbolic_inversion.Solution`: status, a table of the
    samples to the digits vouched for, residual, time, symmetries.

    Examples
    ========

    >>> from symbolic_inversion import Network, simulate, recover
    >>> from symbolic_inversion.report.display import solution_html
    >>> trace = simulate(Network([1, 1], "tanh"), [0.6], [0.5], lr="0.1", epochs=3,
    ...                  init=[0.5, 0.5], dps=30)
    >>> text = solution_html(recover(trace))
    >>> "converged" in text, "<td>[0.600000000000000000000000000]</td>" in text
    (True, True)
    """
    stats = solution.stats
    symmetries = getattr(solution, "symmetries", None) or stats.get("symmetries")
    facts = [("message", solution.message),
             ("digits vouched for", solution.digits),
             ("residual", _short(solution.residual)),
             ("tolerance (trace rounding)", _short(stats.get("tolerance"))),
             ("error bound", _short(stats.get("error_bound"))),
             ("method", stats.get("method")),
             ("steps used", stats.get("steps_used")),
             ("paths tried", len(stats["paths"]) if "paths" in stats
              else stats.get("attempts")),
             ("time", f"{stats['time']:.2f} s" if "time" in stats else None),
             ("symmetries", ", ".join(map(str, symmetries)) if symmetries else "none")]
    tables = [_samples_table(solution.samples, solution.digits)] if solution.samples else []
    notes = [] if solution.ok or not solution.samples else \
        ["The values are not vouched for: 6 significant digits shown."]
    return html_report("Solution", solution.status.value, solution.ok, facts, tables, notes)


def certificate_html(certificate):
    """The HTML of a :class:`~symbolic_inversion.Certificate`: verdict, radii, centre.

    Examples
    ========

    >>> from symbolic_inversion import Network, certify, recover, simulate
    >>> from symbolic_inversion.report.display import certificate_html
    >>> trace = simulate(Network([1, 1], "tanh"), ["0.6", "0.2"], ["0.5", "0.4"],
    ...                  lr="0.1", epochs=4, init=["0.5", "0.5"], dps=30)
    >>> text = certificate_html(certify(trace, recover(trace)))
    >>> ">certified</span>" in text, "<td>unique within (of the centre)</td>" in text
    (True, True)
    """
    facts = [("reason", certificate.reason),
             ("exact solution within", _short(certificate.radius)),
             ("tolerance", _short(certificate.tolerance)),
             ("unique within (of the centre)", _short(certificate.uniqueness_radius)),
             ("box radius", _short(certificate.box_radius)),
             ("equations certified", len(certificate.equations)),
             ("equations checked over the enclosure", len(certificate.checked)),
             ("other equations' residual", _short(certificate.rest_residual)),
             ("steps", certificate.steps),
             ("arithmetic", f"{certificate.backend} at {certificate.dps} digits")]
    digits = 0
    if certificate.proved and certificate.enclosure_radius:
        digits = max(0, int(-mpmath.log10(certificate.enclosure_radius)))
    tables = [_samples_table(certificate.center, digits)] if certificate.center else []
    verdict = "certified" if certificate.certified else "not certified"
    return html_report("Certificate", verdict, certificate.certified, facts, tables)


def _parameters_text(vector, limit=8):
    shown = [str(v)[:12] for v in vector[:limit]]
    return "[" + ", ".join(shown) + (", ..." if len(vector) > limit else "") + "]"


def trace_html(trace):
    """A summary of a :class:`~symbolic_inversion.Trace` in HTML.

    Examples
    ========

    >>> from symbolic_inversion import Network, Trace
    >>> from symbolic_inversion.report.display import trace_html
    >>> trace = Trace(Network([1, 1], "tanh"), "0.1", 2, [["0.5", "0.5"], ["0.49", "0.48"]])
    >>> text = trace_html(trace)
    >>> "<td>steps</td><td>1</td>" in text, "<td>1</td><td>[0.49, 0.48]</td>" in text
    (True, True)
    """
    network = trace.network
    # a dict in version 0.1, an Optimizer with to_dict() later: the same fields
    settings = dict(trace.optimizer.to_dict() if hasattr(trace.optimizer, "to_dict")
                    else trace.optimizer)
    name = settings.pop("name")
    settings.pop("lr", None)  # a row of its own
    optimizer = ", ".join(f"{k} {v}" for k, v in settings.items())
    facts = [("network", f"{list(network.layers)} {'/'.join(network.activations)}, "
                         f"bias {'yes' if network.bias else 'no'}, "
                         f"{network.num_parameters} parameters"),
             ("optimizer", name + (f" ({optimizer})" if optimizer else "")),
             ("learning rate", trace.lr), ("samples", trace.samples),
             ("steps", trace.steps), ("digits", trace.digits),
             ("schedule recorded", "yes" if trace.batches else None)]
    facts += [(key, value) for key, value in trace.extra.items()
              if isinstance(value, (str, int, float))]
    rows = [[j, _parameters_text(trace.parameters[j])]
            for j in sorted({0, trace.steps})]
    return html_report("Trace", f"{trace.steps} steps", True, facts,
                       [html_table(rows, header=["step", "parameters"])])


def loss_reconstruction_html(result):
    """The HTML of a :class:`~symbolic_inversion.LossReconstruction`.

    Examples
    ========

    >>> from symbolic_inversion import Network
    >>> from symbolic_inversion.oracle import LossOracle, reconstruct_from_loss
    >>> from symbolic_inversion.report.display import loss_reconstruction_html
    >>> oracle = LossOracle(Network([2, 2, 1], ["relu", "identity"]),
    ...                     inputs=[["1/2", "3"], ["-2", "1"]], labels=[["2"], ["-1/3"]])
    >>> text = loss_reconstruction_html(reconstruct_from_loss(oracle, 9, seed=1))
    >>> "recovered" in text, "<td>[1/2, 3]</td>" in text
    (True, True)
    """
    def vector(values):
        return "[" + ", ".join(result.number_text(v) for v in values) + "]"

    facts = [("message", result.message), ("layers", result.layers),
             ("bias", {True: "yes", False: "no"}.get(result.bias)),
             ("output activation", result.output_activation),
             ("samples", result.num_samples), ("verified", "yes" if result.verified else "no"),
             ("loss evaluations", result.evaluations),
             ("time", f"{result.time:.2f} s"), ("arithmetic", result.arithmetic)]
    rows = [[vector(s["x"]), vector(s["y"]), s.get("multiplicity", 1)] for s in result.samples]
    tables = [html_table(rows, header=["x", "y", "multiplicity"])] if rows else []
    notes = [f"Not identifiable: {reason}" for reason in result.unidentifiable]
    return html_report("Loss reconstruction", result.status, result.ok, facts, tables, notes)


def _network_text(network):
    """``"1-1 tanh"``, ``"3-4-2 tanh/identity, no bias"``: a network in a few words."""
    names = network.activations
    return ("-".join(map(str, network.layers)) + " "
            + (names[0] if len(set(names)) == 1 else "/".join(names))
            + ("" if network.bias else ", no bias"))


def resimulation_html(resimulation):
    """The HTML of a :class:`~symbolic_inversion.Resimulation`: the fewest digits that
    agree, and per step the digits and the largest difference.

    Examples
    ========

    >>> import mpmath
    >>> from symbolic_inversion import Resimulation
    >>> from symbolic_inversion.report.display import resimulation_html
    >>> text = resimulation_html(Resimulation([30, 29], [mpmath.mpf("1e-31"),
    ...                                                  mpmath.mpf("2e-30")], 40))
    >>> "<td>fewest digits matching</td><td>29</td>" in text, text.count("<tr>")
    (True, 6)
    """
    rows = [[j, digits, _short(difference)] for j, (digits, difference)
            in enumerate(zip(resimulation.digits, resimulation.differences), 1)]
    facts = [("fewest digits matching", resimulation.min_digits),
             ("steps replayed", len(resimulation.digits)),
             ("arithmetic", f"mpmath at {resimulation.dps} digits")]
    return html_report("Resimulation", f"{resimulation.min_digits} digits match", True,
                       facts, [html_table(rows, header=["step", "digits", "largest difference"])])


def rank_report_html(report):
    """The HTML of a :class:`~symbolic_inversion.RankReport`: the rank of the system on
    the first ``E`` steps, for every ``E``, and the steps that identify the data.

    Examples
    ========

    >>> from symbolic_inversion import Network, generic_rank
    >>> from symbolic_inversion.report.display import rank_report_html
    >>> text = rank_report_html(generic_rank(Network([1, 1], "tanh"), 2, max_steps=3))
    >>> ">identifiable from 2 steps</span>" in text, "<td>2</td><td>4 of 4</td>" in text
    (True, True)
    """
    identified = report.min_steps is not None
    verdict = (f"identifiable from {report.min_steps} steps" if identified else
               f"not identifiable in {len(report.ranks)} steps")
    rows = [[steps, f"{rank} of {report.unknowns}",
             "-" if gap is None else (f"{gap:.1f}" if gap != float("inf") else "no zero")]
            for steps, (rank, gap) in enumerate(zip(report.ranks, report.gaps), 1)]
    facts = [("network", _network_text(report.network)), ("samples", report.samples),
             ("unknowns", report.unknowns), ("equations per step", report.parameters),
             ("steps by counting alone", report.counting_min_steps),
             ("rank stopped growing", "yes" if report.saturated else "no"),
             ("trustworthy (gaps wider than dps/4)", "yes" if report.trustworthy else "no"),
             ("working precision", f"{report.dps} digits"),
             ("detail", report.detail or None)]
    table = html_table(rows, header=["steps", "rank", "gap (decades)"])
    return html_report("Generic rank", verdict, identified, facts, [table])


def loss_oracle_html(oracle):
    """The HTML of a :class:`~symbolic_inversion.LossOracle`: what the black box is.  Its
    hidden samples are not shown: they are what the reconstruction is to find.

    >>> from symbolic_inversion import LossOracle, Network
    >>> from symbolic_inversion.report.display import loss_oracle_html
    >>> text = loss_oracle_html(LossOracle(Network([1, 1, 1], ["relu", "identity"]),
    ...                                    inputs=[["2"]], labels=[["3"]]))
    >>> "<td>hidden samples</td><td>1</td>" in text, "3" in text.split("hidden")[1][:40]
    (True, False)
    """
    facts = [("network", _network_text(oracle.network)),
             ("parameters", oracle.num_parameters), ("hidden samples", oracle.num_samples),
             ("loss values", "exact rationals" if oracle.dps is None
              else f"mpmath at {oracle.dps} digits"),
             ("evaluations so far", oracle.evaluations)]
    return html_report("Loss oracle", "a black box", True, facts)


def study_html(study):
    """The HTML of a :class:`~symbolic_inversion.Study`: the grid and its size.

    >>> from symbolic_inversion import Study
    >>> from symbolic_inversion.report.display import study_html
    >>> text = study_html(Study([{"layers": [1, 1]}], samples=[1, 2], seeds=3,
    ...                         digits=[30, "float64"]))
    >>> "<td>cells</td><td>12</td>" in text, "<td>networks</td><td>1-1 tanh</td>" in text
    (True, True)
    """
    facts = [("networks", "; ".join(_network_text(network) for network, _ in study.networks)),
             ("samples", _listed(study.samples, limit=MAX_ROWS)),
             ("seeds", _listed(study.seeds, limit=MAX_ROWS)),
             ("digits", _listed(study.digits, limit=MAX_ROWS)),
             ("steps", study.steps), ("learning rate", study.lr),
             ("method", study.method), ("dps", study.dps), ("backend", study.backend),
             ("attempts", study.attempts),
             ("timeout", None if study.timeout is None else f"{study.timeout} s per cell"),
             ("cells", len(study.cells())), ("output", study.output)]
    return html_report("Study", f"{len(study.cells())} cells", True, facts)


def study_result_html(result):
    """The HTML of a :class:`~symbolic_inversion.StudyResult`: cells done, and one row
    per network x samples x digits (the summary table, elided in the middle when long).

    >>> from symbolic_inversion import run_study
    >>> from symbolic_inversion.report.display import study_result_html
    >>> result = run_study({"networks": [{"layers": [1, 1]}], "samples": [1], "seeds": 2,
    ...                     "digits": [20], "method": "closed_form"})
    >>> text = study_result_html(result)
    >>> ">complete</span>" in text, "<td>1-1 tanh</td><td>1</td><td>20</td><td>2/2</td>" in text
    (True, True)
    """
    rows = [[row["network"], row["samples"], row["digits"],
             f"{row['cells']}/{row['expected']}", f"{row['success']:.0%}", row["failed"],
             "-" if row["max_error"] is None else f"{row['max_error']:.1e}",
             "-" if row["median_time"] is None else f"{row['median_time']:.2f}"]
            for row in result.summary()]
    header = ["network", "n", "digits", "cells", "success", "failed", "max error",
              "median s"]
    facts = [("cells done", f"{len(result.records)} of {result.total}"),
             ("output", result.output)]
    verdict = "complete" if result.complete else f"{result.remaining} cells to run"
    tables = [html_table(rows, header=header)] if rows else []
    return html_report("Study result", verdict, result.complete, facts, tables)


# What each limit bounds, in a few words (the full reasons: Limits' docstring).
_LIMIT_MEANING = {
    "max_file_bytes": "bytes of a file read", "max_json_depth": "nesting of a JSON file",
    "max_number_digits": "digits of one number", "max_dps": "working or recorded digits",
    "max_trace_values": "numbers in a trace", "max_parameters": "parameters, numeric work",
    "max_symbolic_parameters": "parameters, symbolic work",
    "max_oracle_parameters": "parameters behind the loss oracle",
    "max_oracle_exponent": "decimal exponent of an oracle number",
    "max_seconds": "seconds of a long command"}


def limits_html(limits):
    """The HTML of :class:`~symbolic_inversion.Limits`: every limit, its value (marked
    where it differs from the default) and the environment variable that raises it.

    >>> from symbolic_inversion import Limits
    >>> from symbolic_inversion.report.display import limits_html
    >>> text = limits_html(Limits(max_dps=5000))
    >>> "<td>max_dps</td><td>5000 (default 3000)</td>" in text
    True
    >>> "SYMBOLIC_INVERSION_MAX_DPS" in text
    True
    """
    import dataclasses
    defaults = type(limits)()
    rows = []
    for item in dataclasses.fields(limits):
        value, default = getattr(limits, item.name), getattr(defaults, item.name)
        rows.append([item.name, f"{value}" + ("" if value == default else
                                             f" (default {default})"),
                     _LIMIT_MEANING.get(item.name, ""),
                     limits.env_prefix + item.name.upper()])
    changed = sum(1 for row in rows if "(default" in row[1])
    table = html_table(rows, header=["limit", "value", "bounds", "raised with"],
                       limit=len(rows))
    return html_report("Limits", f"{changed} changed" if changed else "defaults", True, [],
                       [table])


def program_html(program):
    """The HTML of a :class:`~symbolic_inversion.program.LayerwiseProgram`: its network,
    loss link and the arithmetics it has compiled activations for.

    >>> from symbolic_inversion import Network, layerwise_program
    >>> from symbolic_inversion.report.display import program_html
    >>> "<td>network</td><td>1-1 tanh</td>" in program_html(layerwise_program(Network([1, 1])))
    True
    """
    network = program.network
    facts = [("network", _network_text(network)), ("parameters", network.num_parameters),
             ("loss", program.loss.name),
             ("compiled for", ", ".join(program._compiled) or "no arithmetic yet")]
    return html_report(type(program).__name__, _network_text(network), True, facts)
