r"""Step 6 of the workflow: turn a recovered dataset into a proof, and re-train from it.

- :mod:`~symbolic_inversion.verify.certificate`: :func:`certify` and
  :class:`Certificate`, the proof that an exact solution lies next to the data;
- :mod:`~symbolic_inversion.verify.krawczyk`: the Krawczyk test;
- :mod:`~symbolic_inversion.verify.intervals`: interval arithmetic and the system over
  boxes;
- re-simulation (:func:`resimulate`) lives in :mod:`symbolic_inversion.simulate`, the
  reading of samples (:func:`read_samples`) in :mod:`symbolic_inversion.samples`; both
  are re-exported here.
"""

from ..exact import mpf_fraction as _mpf_fraction
from ..samples import read_samples
from ..simulate import Resimulation, resimulate
from .certificate import Certificate, certify, default_certify_dps
from .intervals import INTERVAL_BACKENDS, NotDifferentiableError

__all__ = ["Certificate", "certify", "default_certify_dps", "Resimulation", "resimulate",
           "read_samples", "INTERVAL_BACKENDS", "NotDifferentiableError"]
