r"""Rich display in notebooks: HTML tables and LaTeX for the toolkit's objects.

Jupyter shows ``obj._repr_html_()`` or ``obj._repr_latex_()`` when an object is the
value of a cell.  Every class delegates to one function here, so that what a user sees
is decided in one place:

============================ ============================================================
object                       shown as
============================ ============================================================
``Network``                  its forward map in LaTeX (:func:`network_latex`)
``InversionSystem``          the system in LaTeX, shortened when large (:func:`system_latex`)
``OneSampleClosedForm``      its formulas in LaTeX
``Solution``                 status, samples to the digits vouched for, residual, time
``Certificate``              verdict, radii, the certified centre
``Trace``                    a summary: network, optimizer, counts, first and last step
``LossReconstruction``       status, architecture, samples, what is not identifiable
============================ ============================================================

Everything is escaped; numbers are shown to the digits that can be trusted, not to the
working precision.
"""

import html

import mpmath
import sympy as sp

__all__ = ["html_table", "html_report", "network_latex", "system_latex", "math_block",
           "solution_html", "certificate_html", "trace_html", "loss_reconstruction_html",
           "MAX_ROWS"]

#: Longest table (samples, equations) shown in full; longer ones show head and tail.
MAX_ROWS = 12
# Widest number shown: a 60-digit trace vouches for ~58 digits, more is unreadable.
MAX_SHOWN_DIGITS = 40
_OK, _BAD = "#1a7f37", "#b42318"


def _cell(value, tag):
    return f"<{tag}>{html.escape(str(value))}</{tag}>"


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
    return "[" + ", ".join(_vouched(v, digits) for v in values) + "]"


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


def _instantiated_rows(system, max_rows):
    """LaTeX rows of the first equations of a system with a trace; sums over more than
    three samples are elided in the middle (``+ \\cdots +``)."""
    network, trace = system.network, system.trace
    digits = min(trace.digits, SHOWN_COEFFICIENT_DIGITS)
    sides = system.right_hand_sides()
    rows = []
    for step in range(system.steps):
        theta = [sp.Float(str(v), digits) for v in trace.parameters[step]]
        batch = list(system.batch(step))
        shown = batch if len(batch) <= 3 else batch[:2] + [batch[-1]]
        # only the symbols shown are built (a trace may claim a million samples)
        terms = [network.half_gradient(*network.sample_symbols(i), theta) for i in shown]
        for p in range(network.num_parameters):
            parts = [sp.latex(term[p]) for term in terms]
            if len(shown) < len(batch):
                parts = parts[:2] + [r"\cdots"] + parts[2:]
            side = sp.Float(sp.Rational(sides[step][p].numerator, sides[step][p].denominator),
                            digits)
            rows.append(r" + ".join(parts) + " = " + sp.latex(side))
            if len(rows) == max_rows:
                return rows
    return rows


def system_latex(system, max_rows=6):
    r"""The inversion system in LaTeX, shortened sensibly when large.

    At most ``max_rows`` equations are written out (the first ones), then ``\vdots``
    and the counts; sums over more than three samples show two terms, ``\cdots`` and the
    last; a network above 40 parameters is written in vector form.

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
    """
    network, counts = system.network, system.counts
    summary = (rf"\text{{{counts['equations']} equations in {counts['unknowns']} unknowns "
               rf"({counts['samples']} samples, {counts['steps']} steps)}}")
    rows = []
    if network.num_parameters <= EXPANDED_PARAMETERS:
        if system.trace is None:
            rows = [sp.latex(eq) for eq in system.general_equations()]
        else:
            rows = _instantiated_rows(system, max_rows)
            summary += (rf"\ \text{{(coefficients to {SHOWN_COEFFICIENT_DIGITS} digits)}}"
                        if system.trace.digits > SHOWN_COEFFICIENT_DIGITS else "")
    if not rows or max(len(row) for row in rows) > LONGEST_ROW:
        form = (r"\sum_{i \in B_j} \nabla_\theta \tfrac12 \left\| f_\theta(x_i) - y_i "
                r"\right\|^2 \Big|_{\theta = \theta^{(j)}} = \frac{|B_j|}{2 \eta}"
                r"\left(\theta^{(j)} - \theta^{(j+1)}\right), \quad j = 0, \dots, "
                + str(counts["steps"] - 1))
        return (r"\begin{gathered}" + form + r" \\ " + network_latex(network) + r" \\ "
                + summary + r"\end{gathered}")
    total = counts["equations"] if system.trace is not None else len(rows)
    rows = rows[:max_rows]
    if total > len(rows):
        rows.append(r"\vdots")
    body = "\\begin{cases}\n" + " \\\\\n".join(rows) + "\n\\end{cases}"
    # the counts below the system, not beside it: the rows are wide already
    return "\\begin{gathered}\n" + body + " \\\\\n" + summary + "\n\\end{gathered}"


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
    from ..oracle.result import _text

    def vector(values):
        return "[" + ", ".join(_text(v, result.dps) for v in values) + "]"

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
