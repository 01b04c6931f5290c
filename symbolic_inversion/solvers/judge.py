"""The one judge loop: candidates -> refine -> assess -> dedupe -> verdict.

Every global solver (the cold-start pipeline's homotopy paths, the SGD solvers'
multistart) produces *candidates*; the :class:`Judge` turns them into one answer:

1. **Refine**: Gauss-Newton (:func:`~symbolic_inversion.solvers.newton.gauss_newton`) on
   *all* steps at the refinement precision (labels and inputs together).
2. **Assess** (:func:`assess`): the candidate must explain every step to the trace's
   rounding, and the Jacobian must have full column rank so the trace's digits bound the
   error of the data (first order).
3. **Dedupe**: datasets are multisets of samples; candidates that agree (after matching)
   within their digits are one dataset.
4. **Verdict**: the policy says when to stop.  ``"first"``: the first accepted dataset
   is the answer (spare equations reject wrong roots); ``"confirm"``: with no spare
   equations nothing rejects a wrong root, so a second independent candidate must reach
   the same dataset, and two different ones give ``not_unique``; ``"all"``: every
   candidate is judged and every distinct accepted dataset kept (more than one:
   ``not_unique``).
"""

import math
import time

import mpmath
import numpy as np

from ..arithmetic import get_arithmetic
from ..limits import check_time
from ..precision import refine_dps, residual_allowance_digits, vouchable_digits
from ..system import digits_from_error
from .newton import gauss_newton
from .solution import Solution, Status, same_dataset

__all__ = ["assess", "assess_float64", "judged_in_float64", "Judge", "RESIDUAL_SLACK",
           "elapsed"]

# Rounding of the trace moves each right-hand side by at most ``rhs_uncertainty``; a
# candidate may be off by that much at the truth, and a least-squares fit of the labels
# or a trace rounded from a longer computation (the paper's tables) adds a little more.
RESIDUAL_SLACK = 4


# Conditioning that a float64 Jacobian measures reliably (digits lost; beyond it the
# smallest singular value is rounding noise and the prior law of refine_dps applies) ...
MEASURABLE_DIGITS = 11
# ... and the digits added to a measurement taken at a candidate, not at the root.
LOST_MARGIN = 4


def lost_digits(system, inputs, labels):
    """``log10(sigma_max / sigma_min)`` of the system's Jacobian at ``(inputs, labels)``
    in float64, or ``None`` where double cannot measure it (not finite, or more than
    :data:`MEASURABLE_DIGITS` digits lost)."""
    evaluator = system.evaluator(get_arithmetic("float64"))
    with np.errstate(all="ignore"):
        u = evaluator.join(np.array([[float(v) for v in x] for x in inputs]),
                           np.array([[float(v) for v in y] for y in labels]))
        _, J = evaluator.evaluate(u)
        if not np.all(np.isfinite(J)) or J.shape[0] < J.shape[1]:
            return None
        singular = np.linalg.svd(J, compute_uv=False)
    if not singular.size or singular[-1] <= 0:
        return None
    lost = float(np.log10(singular[0] / singular[-1]))
    return lost if lost <= MEASURABLE_DIGITS else None


def elapsed(started):
    return round(time.perf_counter() - started, 4)


def assess(system, inputs, labels, method, started, dps, stats=None, detail=""):
    """A :class:`Solution` for ``(inputs, labels)``: status, residual, digits, stats.

    Call inside ``mpmath.workdps(dps)``.
    """
    stats = dict(stats or {})
    residuals = [abs(r) for r in system.residual(inputs, labels)]
    residual = max(residuals)
    rounding = mpmath.mpf(10) ** residual_allowance_digits(dps)
    # each equation against its own values' rounding: one coarse value ("0.0" among
    # 60-digit numbers) must not excuse the others
    allowed = [RESIDUAL_SLACK * bound + rounding
               for bound in system.rhs_uncertainties(inputs, labels)]
    tolerance = max(allowed)
    worst = max(range(len(residuals)), key=lambda k: residuals[k] / allowed[k])
    error, sigma_min = system.error_estimate(inputs, labels, dps)
    # The bound covers one residual of rounding size; the candidate and the truth each
    # leave one (a least-squares candidate's is no larger than the truth's), and their
    # distance is bounded by the sum: twice the estimate (measured: a closed-form
    # candidate 1.1e-77 from the truth under a single bound of 8.9e-78)
    error = 2 * error
    stats.update({"method": method, "dps": dps, "steps_used": system.steps,
                  "tolerance": tolerance, "error_bound": error,
                  "sigma_min": sigma_min, "time": elapsed(started)})
    samples = list(zip(inputs, labels))
    if residuals[worst] > allowed[worst]:
        return Solution(samples, Status.INCONSISTENT, residual, 0, stats,
                        detail or f"residual {mpmath.nstr(residuals[worst], 3)} of equation "
                        f"{worst} exceeds what the trace's rounding allows there "
                        f"({mpmath.nstr(allowed[worst], 3)})")
    if not mpmath.isfinite(error):
        return Solution(samples, Status.UNIDENTIFIABLE, residual, 0, stats,
                        detail or "the Jacobian of the system is rank deficient at this "
                        "dataset: other data nearby explain the trace equally well")
    digits = min(digits_from_error(error), vouchable_digits(dps))
    if digits < 1:  # "converged" vouches for digits; with none it would claim nothing
        return Solution(samples, Status.PRECISION_LIMITED, residual, 0, stats,
                        detail or f"the data explain every step, but the trace's digits "
                        f"bound their error only by {mpmath.nstr(error, 3)}: no digit is "
                        f"vouched for")
    return Solution(samples, Status.CONVERGED, residual, digits, stats, detail)


# Binary-float (float32/float64) traces whose system's Jacobian has more entries than this
# are judged in float64 (:func:`assess_float64`): in multiprecision a 64-256-10 network
# with 32 samples (19,210 equations, 2,368 unknowns, 45 million entries) did not finish
# its first Gauss-Newton iteration in 3 minutes (6 GB of mpmath numbers); the 20-32-3
# network with 8 samples (0.15 million entries) is refined in multiprecision in 20 s.
FLOAT64_ENTRIES = 4_000_000
# ... and in the local form (federated rounds), whose every evaluation runs K local steps
# on dual numbers, beyond this: a 64-32-10 digits client (4 images, K = 5; 2,410 x 296)
# had not finished its multiprecision refinement after 100 s, its float64 Gauss-Newton
# takes 2 s an iteration; a 16-4-10 one (236 x 52) is refined in multiprecision in
# about a minute (docs/flower.md)
LOCAL_FLOAT64_ENTRIES = 100_000
# float64 Gauss-Newton steps of that judgement (the Gram matrix of the start reused)
FLOAT64_STEPS = 3
# conditioning (sigma_max / sigma_min of the weighted Jacobian) beyond which float64 does
# not measure the error bound
FLOAT64_CONDITION = 1e10


def judged_in_float64(system):
    """Whether the :class:`Judge` judges ``system``'s candidates in float64: a binary-float
    trace in the gradient form whose Jacobian has more than :data:`FLOAT64_ENTRIES`
    entries, or in the local form (federated rounds) beyond :data:`LOCAL_FLOAT64_ENTRIES`
    (its recorded values carry float64's digits at most: multiprecision adds
    nothing to them but time), and float32 rounds in the local form at any size.

    Float32 rounds are rounded nine orders of magnitude above float64's own evaluation,
    so float64 loses nothing of them, and only :func:`assess_float64` takes their error
    from the weighted residual: multiprecision's worst-case bound sums every rounding
    error of the K local steps at its bound (measured on a 4-8-3 tanh float32 client,
    6 samples, K = 5, at the true data: 0.05 worst case, 2.8e-5 statistical, the
    float64 fit 3.6e-6 from the truth).

    >>> from symbolic_inversion import Network, Trace
    >>> from symbolic_inversion.system import InversionSystem
    >>> rounds = {"name": "gd", "lr": "0.5", "local_steps": 2}
    >>> def system(dtype):
    ...     trace = Trace(Network([1, 1]), "0.5", 1, [[1, 1], [0.5, 0.5]], dtype=dtype,
    ...                   optimizer=rounds)
    ...     return InversionSystem.from_trace(trace)
    >>> judged_in_float64(system("float32")), judged_in_float64(system("float64"))
    (True, False)
    """
    trace = system.trace
    if trace is None or trace.dtype is None:
        return False
    if system.form == "local" and trace.dtype == "float32":
        return True
    counts = system.counts
    limit = {"gradient": FLOAT64_ENTRIES, "local": LOCAL_FLOAT64_ENTRIES}.get(system.form)
    return limit is not None and counts["equations"] * counts["unknowns"] > limit


def assess_float64(system, inputs, labels, method, started, stats=None):
    """:func:`assess` in float64 for a large binary-float trace or float32 rounds
    (:func:`judged_in_float64`): a few Gauss-Newton steps towards the least-squares fit of
    every step's equations, each weighted by its rounding bound (the trace's
    backpropagation rounding at the candidate, :meth:`InversionSystem.rhs_uncertainties`),
    then the same tests: every equation within ``RESIDUAL_SLACK`` times its bound (plus
    the float64 evaluation's own rounding, one unit of the right-hand side).  The error of
    the data is the statistical one of least squares (:func:`_rounding_error`: the
    standard errors from the weighted residual, with a Gaussian tail at
    :data:`FAILURE_PROBABILITY`, plus the Gauss-Newton step still to go); the worst-case
    first-order bound ``|du_i| <= sum_k |L_ik| eps_k <= sqrt(rows (J_w^T J_w)^-1_ii)``
    (every rounding error at its bound, all aligned) is kept as
    ``stats["error_bound_worst_case"]``: on a float32 digits classifier (64-256-10 ReLU,
    b = 16) it was 0.17 against a true error of 1e-5 and vouched for nothing.  Digits are
    capped at float64's 15."""
    from scipy.linalg import cho_solve
    stats = dict(stats or {})
    evaluator = system.evaluator(get_arithmetic("float64"))
    with mpmath.workdps(20):
        bounds = np.array([float(b) for b in system.rhs_uncertainties(
            [[mpmath.mpf(float(v)) for v in x] for x in inputs],
            [[mpmath.mpf(float(v)) for v in y] for y in labels])])
    rhs = np.abs(np.asarray(evaluator.rhs, dtype=float))
    allowed = RESIDUAL_SLACK * bounds + np.finfo(float).eps * rhs
    finite = np.isfinite(allowed) & (allowed > 0)
    weights = np.where(finite, 1 / np.where(finite, allowed, 1), 0.0)
    u = evaluator.join(np.array([[float(v) for v in x] for x in inputs]),
                       np.array([[float(v) for v in y] for y in labels]))
    with np.errstate(all="ignore"):
        F, J = evaluator.evaluate(u)
        Jw = J * weights[:, None]
        del J
        gram = Jw.T @ Jw
        ratio = np.max(np.abs(F) * weights)
        iterations, correction = 0, math.inf
        factor = _cholesky(gram)
        # towards the weighted least-squares fit, also inside every allowance: the
        # error estimate below is that fit's (a float32 tanh classifier's start, inside
        # the allowances, was 1.6e-4 off, its least-squares fit ...)
        for _ in range(FLOAT64_STEPS if factor is not None else 0):
            step = cho_solve(factor, -(Jw.T @ (F * weights)))
            trial = u + step
            F_trial = evaluator.residual(trial)
            iterations += 1
            if not np.sum(np.square(F_trial * weights)) < np.sum(np.square(F * weights)):
                break
            correction = float(np.max(np.abs(step)) / (1 + np.max(np.abs(u))))
            u, F = trial, F_trial
            ratio = np.max(np.abs(F) * weights)
        error, sigma_min, condition = math.inf, 0.0, math.inf
        worst_case = math.inf
        if factor is not None:
            eigenvalues = np.linalg.eigvalsh(gram)
            if eigenvalues[0] > 0:
                condition = float(np.sqrt(eigenvalues[-1] / eigenvalues[0]))
                sigma_min = float(np.sqrt(eigenvalues[0]))
            inverse = cho_solve(factor, np.eye(len(gram)))
            if condition <= FLOAT64_CONDITION:
                spread = float(np.sqrt(np.max(np.diag(inverse))))
                worst_case = 2 * float(np.sqrt(len(F))) * spread
                error = _rounding_error(F * weights, spread, len(u), worst_case)
                # the fit is the least-squares one to first order only: the Gauss-Newton
                # step still to go is part of its distance to it
                error += float(np.max(np.abs(cho_solve(factor, -(Jw.T @ (F * weights))))))
    X, Y = evaluator.split(u)
    samples = [([mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in y])
               for x, y in zip(X, Y)]
    residual = mpmath.mpf(float(np.max(np.abs(F))))
    stats.update({"method": method, "dps": 16, "steps_used": system.steps,
                  "judged_in": "float64", "refine_iterations": iterations,
                  "refine_converged": bool(ratio <= 0.01), "refine_correction": correction,
                  "tolerance": mpmath.mpf(float(np.max(allowed[finite]))),
                  "residual_ratio": float(ratio), "error_bound": mpmath.mpf(error),
                  "error_bound_worst_case": mpmath.mpf(worst_case),
                  "sigma_min": mpmath.mpf(sigma_min), "condition": condition,
                  "time": elapsed(started)})
    if not ratio <= 1:
        worst = int(np.argmax(np.abs(F) * weights))
        return Solution(samples, Status.INCONSISTENT, residual, 0, stats,
                        f"residual {abs(F[worst]):.3g} of equation {worst} exceeds what "
                        f"the trace's rounding allows there ({allowed[worst]:.3g}; judged "
                        f"in float64)")
    if not math.isfinite(error):
        return Solution(samples, Status.PRECISION_LIMITED, residual, 0, stats,
                        f"the data explain every step, but float64 cannot bound their "
                        f"error: the weighted Jacobian's condition number {condition:.2g} "
                        f"exceeds {FLOAT64_CONDITION:.0e}")
    digits = min(digits_from_error(mpmath.mpf(error)), 15)
    if digits < 1:
        return Solution(samples, Status.PRECISION_LIMITED, residual, 0, stats,
                        f"the data explain every step, but the trace's rounding bounds "
                        f"their error only by {error:.3g}: no digit is vouched for")
    return Solution(samples, Status.CONVERGED, residual, digits, stats,
                    "judged in float64 (a large binary-float trace or float32 rounds): "
                    f"error bound {error:.2g} (statistical, from the residual; worst case "
                    f"{worst_case:.2g})")


# Probability that the statistical error bound of a float64 judgement fails (union bound
# over the unknowns; :func:`_rounding_error`).
FAILURE_PROBABILITY = 1e-9


def _rounding_error(weighted_residual, spread, unknowns, worst_case):
    """The error of a least-squares fit from the rounding of its right-hand sides, as the
    statistics of least squares see it: each unknown's standard error ``s sqrt((J_w^T
    J_w)^-1_ii)`` (``spread`` its largest root), ``s`` the root mean square of the
    weighted residual over the ``rows - unknowns`` degrees of freedom (the trace's own
    rounding, measured: the worst-case allowances behind the weights are far above it
    for float32, where backpropagation's ``gamma_K`` terms count every product as
    rounding the same way), times the Gaussian tail ``sqrt(2 ln(2 unknowns / p))`` that
    every unknown stays within with probability ``1 - p``
    (:data:`FAILURE_PROBABILITY`; rounding errors as independent, zero-mean random
    variables: Higham & Mary, SIAM J. Sci. Comput. 41 (2019)).  Never above the
    worst-case first-order bound ``worst_case``.

    >>> import numpy as np
    >>> float(_rounding_error(np.full(110, 0.01), 2.0, 10, 100.0)) < 0.2
    True
    """
    rows = len(weighted_residual)
    if rows <= unknowns:   # no degree of freedom measures the rounding: the worst case
        return worst_case
    scale = float(np.sqrt(np.sum(np.square(weighted_residual)) / (rows - unknowns)))
    tail = math.sqrt(2 * math.log(2 * unknowns / FAILURE_PROBABILITY))
    return min(worst_case, tail * scale * spread)


def _cholesky(gram):
    """The Cholesky factor of ``gram`` (scipy's ``cho_factor``), or ``None`` when it is
    not positive definite."""
    from scipy.linalg import cho_factor
    try:
        return cho_factor(gram, lower=True)
    except np.linalg.LinAlgError:
        return None


class Judge:
    """Refines, assesses and dedupes candidates of one system under a verdict policy.

    Parameters
    ==========

    system : InversionSystem
        The system on every step used (the one the answer must explain).
    dps : int
        Refinement precision (:func:`~symbolic_inversion.precision.refine_dps`).
    arithmetic : Arithmetic
        Real arithmetic of the refinement.
    method : str
        Name recorded in the solutions' stats.
    policy : ``"first"``, ``"confirm"`` or ``"all"`` (module docstring)
    accept : tuple of Status
        Statuses kept as datasets (``"all"`` keeps ``UNIDENTIFIABLE`` too).
    stats : dict
        Merged into every solution's stats.
    least_dps : int, optional
        Adaptive precision: each candidate is refined at
        :func:`~symbolic_inversion.precision.refine_dps` for the conditioning of its
        Jacobian measured in double (at least ``least_dps``, at most ``dps``); where
        double cannot measure it (more than :data:`MEASURABLE_DIGITS` digits lost), or a
        candidate is rejected with a residual at that precision's floor, at ``dps``.
        ``None``: always ``dps``.
    """

    def __init__(self, system, dps, arithmetic, method, policy="first",
                 accept=(Status.CONVERGED,), stats=None, started=None, least_dps=None):
        self.system, self.dps, self.arithmetic = system, dps, arithmetic
        self.least_dps = least_dps
        self.method, self.policy, self.accept = method, policy, accept
        self.stats = stats if stats is not None else {}
        self.started = time.perf_counter() if started is None else started
        self.accepted, self.rejected = [], []
        self.final = None

    # -- refine and assess --------------------------------------------------------------

    def refine(self, inputs, labels, dps=None):
        """Gauss-Newton on every step: ``(inputs, labels, info)`` (mpmath numbers)."""
        return gauss_newton(self.system.trace, inputs, labels, dps or self.dps,
                            steps=self.system.steps, arithmetic=self.arithmetic,
                            system=self.system)

    def precision(self, inputs, labels):
        """``(dps, lost)``: the refinement precision for this candidate and the digits its
        Jacobian loses as measured in double (``None`` where not measured)."""
        if self.least_dps is None:
            return self.dps, None
        lost = lost_digits(self.system, inputs, labels)
        if lost is None:
            return self.dps, None
        return min(self.dps, refine_dps(self.system.trace, self.least_dps,
                                        lost + LOST_MARGIN)), lost

    def judge(self, inputs, labels, info=None, **stats):
        """Refine ``(inputs, labels)`` and assess the result; ``info`` (a path's record)
        gets the refinement iterations and the status."""
        check_time()  # the time budget's cooperative check, once per candidate
        if judged_in_float64(self.system):
            solution = assess_float64(self.system, inputs, labels, self.method,
                                      self.started, dict(self.stats, **stats))
            if info is not None:
                info["refine_iterations"] = solution.stats["refine_iterations"]
                info["status"] = solution.status.value
            return solution
        dps, lost = self.precision(inputs, labels)
        solution = self._judge(inputs, labels, dps, info, stats)
        if dps < self.dps and solution.status not in self.accept and \
                solution.residual is not None and \
                solution.residual <= mpmath.mpf(10) ** (lost + LOST_MARGIN + 10 - dps) * \
                self.system.evaluator(get_arithmetic("float64")).scale:
            # rejected at the floor of the lower precision: the measure in double may
            # have been taken too far from the root; the full precision decides
            solution = self._judge(inputs, labels, self.dps, info, stats)
        return solution

    def _judge(self, inputs, labels, dps, info, stats):
        inputs, labels, polish = self.refine(inputs, labels, dps)
        if not mpmath.isfinite(polish["residual"]):
            solution = Solution([], Status.NOT_CONVERGED, None, 0, dict(self.stats, **stats),
                                f"the refinement broke down: {polish['reason']}")
            if info is not None:
                info["status"] = solution.status.value
            return solution
        with mpmath.workdps(dps):
            merged = dict(self.stats, refine_iterations=polish["iterations"], **stats)
            solution = assess(self.system, inputs, labels, self.method, self.started,
                              dps, merged)
        solution.stats["refine_converged"] = polish["converged"]
        solution.stats["refine_correction"] = float(polish["correction"])
        if info is not None:
            info["refine_iterations"] = polish["iterations"]
            info["status"] = solution.status.value
        return solution

    def judge_vector(self, u, info=None, **stats):
        """:meth:`judge` for a flat vector of unknowns (sample by sample, inputs then
        labels)."""
        network = self.system.network
        d, width = network.input_width, network.input_width + network.output_width
        n = self.system.samples
        inputs = [list(u[i * width: i * width + d]) for i in range(n)]
        labels = [list(u[i * width + d: (i + 1) * width]) for i in range(n)]
        return self.judge(inputs, labels, info, **stats)

    # -- dedupe and verdict ---------------------------------------------------------------

    def match_tolerance(self, solution, other):
        """Two datasets are the same when they agree to the digits vouched for."""
        if self.policy == "confirm":
            return mpmath.mpf(10) ** (-max(other.digits, 3))
        return max(mpmath.mpf(10) ** -max(solution.digits - 2, 3),
                   mpmath.mpf(10) ** (8 - self.dps))

    def add(self, solution):
        """Record a judged candidate; returns the final :class:`Solution` once the policy
        decides, else ``None`` (go on)."""
        if self.final is not None:
            return self.final
        if solution.status not in self.accept:
            self.rejected.append(solution)
            return None
        if self.policy == "first":
            self.final = solution
            return solution
        same = next((other for other in self.accepted if same_dataset(
            solution.samples, other.samples, self.match_tolerance(solution, other))), None)
        if self.policy == "all":
            if same is None:
                self.accepted.append(solution)
            else:
                same.stats.setdefault("sightings", 1)
                same.stats["sightings"] += 1
            return None
        # "confirm"
        if self.accepted and same is None:
            first = self.accepted[0]
            self.final = Solution(first.samples + solution.samples, Status.NOT_UNIQUE,
                                  solution.residual, 0, solution.stats,
                                  "two different datasets explain every step (both listed); "
                                  "the trace has no spare steps to tell them apart, add steps")
            return self.final
        self.accepted.append(solution)
        if len(self.accepted) == 2:
            first = self.accepted[0]
            first.detail = ("square system: no spare steps to reject other roots; "
                            "two independent paths reached this dataset")
            first.stats["time"] = elapsed(self.started)
            self.final = first
            return first
        return None

    def best_rejected(self):
        """The rejected candidate with the smallest residual (``None`` if none)."""
        if not self.rejected:
            return None
        return min(self.rejected, key=lambda s: s.residual if mpmath.isfinite(s.residual)
                   else mpmath.inf)

    def verdict(self, stats, none_found):
        """The answer after every candidate: ``"all"``: none -> ``NOT_CONVERGED``, several
        -> ``NOT_UNIQUE`` (listed in ``stats["datasets"]``), one -> it; ``"confirm"``: the
        one unconfirmed dataset, said so."""
        stats["time"] = elapsed(self.started)
        if self.final is not None:
            return self.final
        if self.policy == "confirm" and self.accepted:
            solution = self.accepted[0]
            solution.detail = ("square system: no spare steps to reject other roots and only "
                               "one path reached this dataset")
            return solution
        if not self.accepted:
            return Solution([], Status.NOT_CONVERGED, None, 0, stats, none_found)
        if len(self.accepted) > 1:
            stats["datasets"] = [dataset_text(s.samples) for s in self.accepted]
            return Solution([], Status.NOT_UNIQUE, min(s.residual for s in self.accepted), 0,
                            stats, f"{len(self.accepted)} different datasets explain the "
                            f"trace equally well; all are listed in stats['datasets']")
        only = self.accepted[0]
        only.stats.update(stats)
        return only


def dataset_text(samples, digits=25):
    """A dataset as decimal strings (``{"x": [...], "y": [...]}`` per sample)."""
    def text(value):
        return mpmath.nstr(value, digits, strip_zeros=False)
    return [{"x": [text(v) for v in x], "y": [text(v) for v in y]} for x, y in samples]
