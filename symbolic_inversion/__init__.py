"""symbolic_inversion: recover training data from what training leaks."""
__version__ = "0.1.0"
from .errors import InputError, NotSupportedError
from .network import ACTIVATIONS, Activation, Network
from .codegen import CompiledNetwork, compile_network
from .trace import Trace, read_trace, simulate
from .system import InversionSystem, system_counts
from .closed_form import OneSampleClosedForm, one_sample_closed_form
from .solvers import RecoveryError, Solution, Status, recover
from .oracle import (LossOracle, LossReconstruction, VirtualRegion, reconstruct_from_loss,
                     virtual_region)
from .verify import Certificate, Resimulation, certify, default_certify_dps, resimulate
