"""symbolic_inversion: recover training data from what training leaks.

The workflow, one module per step:

1. :mod:`~symbolic_inversion.network`: the network as SymPy expressions, with its
   :mod:`~symbolic_inversion.activations` and :mod:`~symbolic_inversion.losses`; loss
   gradients by symbolic backpropagation.
2. :mod:`~symbolic_inversion.program`: the one numeric forward and backward program,
   layer by layer, in every arithmetic of :mod:`~symbolic_inversion.arithmetic`.
3. :mod:`~symbolic_inversion.trace`: what an observer of training sees; the
   :mod:`~symbolic_inversion.optimizers` (update equations with state) and
   :mod:`~symbolic_inversion.simulate` (training at any precision); the trace file.
4. :mod:`~symbolic_inversion.system`: the inversion system (the paper's eq. (9)):
   counts, LaTeX, residual, Jacobian, label elimination.
5. :mod:`~symbolic_inversion.closed_form` and :mod:`~symbolic_inversion.solvers`:
   exact solutions and cold-start solvers; every result a ``Solution`` with a status.
6. :mod:`~symbolic_inversion.analysis`, :mod:`~symbolic_inversion.identifiability`,
   :mod:`~symbolic_inversion.verify`: conditioning, identifiability, certificates.
7. :mod:`~symbolic_inversion.oracle`: reconstruction from the loss function alone.
8. :mod:`~symbolic_inversion.paper`, :mod:`~symbolic_inversion.cli`: the paper
   reproduced; the command line.

Reports for people (:mod:`~symbolic_inversion.report`): results display themselves in
notebooks, long work reports progress, and :mod:`symbolic_inversion.plot` (matplotlib)
draws them.  Studies (:mod:`~symbolic_inversion.study`, :func:`run_study`) run grids of
simulate-and-recover cells on local processes or a Dask cluster, resumably.
"""

__version__ = "0.1.0"

from .errors import InputError, NotSupportedError
from .limits import BudgetExceeded, Limits, time_budget
from .activations import ACTIVATIONS, Activation, get_activation, register_activation
from .losses import LOSSES, Loss, get_loss, register_loss
from .network import Network
from .optimizers import Optimizer, register_optimizer
from .program import LayerwiseProgram, layerwise_program
from .trace import Trace, read_trace
from .simulate import simulate
from .system import InversionSystem, system_counts
from .closed_form import OneSampleClosedForm, one_sample_closed_form
from .solvers import SOLVERS, RecoveryError, Solution, Status, recover
from .solvers.sgd import recovered_fraction
from .analysis import (analyze, condition_number, conditioning_table, digits_needed,
                       jacobian_singular_values, supported_accuracy)
from .identifiability import (RankReport, analyze_identifiability, data_symmetries,
                              exact_counts, generic_rank, identifiability_report,
                              paper_counts)
from .verify import Certificate, Resimulation, certify, default_certify_dps, resimulate
from .oracle import (LossOracle, LossReconstruction, VirtualRegion, reconstruct_from_loss,
                     virtual_region)
from .report import Progress
from .study import Study, StudyResult, run_study

__all__ = [
    "__version__", "InputError", "NotSupportedError",
    # limits on input and work (docs/reliability)
    "Limits", "BudgetExceeded", "time_budget",
    # 1. networks, activations, losses
    "ACTIVATIONS", "Activation", "get_activation", "register_activation", "Network",
    "LOSSES", "Loss", "get_loss", "register_loss",
    # 2. the numeric program
    "LayerwiseProgram", "layerwise_program",
    # 3. traces and training
    "Trace", "read_trace", "simulate", "Optimizer", "register_optimizer",
    # 4. the inversion system
    "InversionSystem", "system_counts",
    # 5. closed forms and solvers
    "OneSampleClosedForm", "one_sample_closed_form", "SOLVERS", "RecoveryError",
    "Solution", "Status", "recover", "recovered_fraction",
    # 6. analysis, identifiability, verification
    "analyze", "condition_number", "conditioning_table", "digits_needed",
    "jacobian_singular_values", "supported_accuracy", "RankReport",
    "analyze_identifiability", "data_symmetries", "exact_counts", "generic_rank",
    "identifiability_report", "paper_counts", "Certificate", "Resimulation", "certify",
    "default_certify_dps", "resimulate",
    # 7. the loss oracle
    "LossOracle", "LossReconstruction", "VirtualRegion", "reconstruct_from_loss",
    "virtual_region",
    # reports (figures: the symbolic_inversion.plot module, which needs matplotlib)
    "Progress",
    # studies: grids of recoveries on processes or a Dask cluster
    "Study", "StudyResult", "run_study",
]
