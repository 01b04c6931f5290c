"""Plots of results: :mod:`symbolic_inversion.report.plot` under a short name.

Needs matplotlib (``pip install 'symbolic_inversion[plot]'``); see that module for the
list of figures.
"""

from .report.plot import (error_record, plot_analysis, plot_loss_line, plot_paths,
                          plot_precision_law, plot_residuals, plot_singular_values,
                          plot_study)

__all__ = ["error_record", "plot_precision_law", "plot_singular_values", "plot_residuals",
           "plot_paths", "plot_loss_line", "plot_analysis", "plot_study"]
