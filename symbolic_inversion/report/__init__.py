"""Reports for people: rich notebook display, progress on long work, plots.

* :mod:`~symbolic_inversion.report.display`: the ``_repr_html_`` and ``_repr_latex_``
  of the toolkit's objects (every class delegates to a function here);
* :mod:`~symbolic_inversion.report.progress`: :class:`Progress`, the reporter behind
  ``recover(..., progress=...)`` and the command line's ``--progress``;
* :mod:`~symbolic_inversion.report.plot` (re-exported as :mod:`symbolic_inversion.plot`,
  needs matplotlib): figures of results.
"""

from .progress import Progress

__all__ = ["Progress"]
