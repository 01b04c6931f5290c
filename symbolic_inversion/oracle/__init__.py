"""Reconstruction of training data from the loss function alone (Sannai, arXiv 1805.07337).

Point :func:`reconstruct_from_loss` at a black-box loss of a ReLU network and get back
the architecture (depth, widths, biases) and the training samples: exactly, in rational
arithmetic, when the first layer has a bias; up to the documented ambiguities without.
:class:`LossOracle` builds such a black box from a network and a dataset;
:func:`virtual_region` gives the loss on one activation region as a SymPy polynomial
together with the inequalities that define the region.
"""

from .blackbox import LossOracle, parse_rational, to_fraction
from .reconstruct import reconstruct_from_loss
from .result import STATUSES, LossReconstruction
from .virtual import VirtualRegion, virtual_region

__all__ = ["LossOracle", "LossReconstruction", "STATUSES", "VirtualRegion",
           "parse_rational", "reconstruct_from_loss", "to_fraction", "virtual_region"]
