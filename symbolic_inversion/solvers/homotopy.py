r"""Parameter homotopy on the right-hand side, in complex multiprecision, for any network.

The inversion system reads ``F(u) = G`` with ``u`` the inputs and labels of all samples,
``F`` the sum of the per-sample terms ``B (f - y)`` at the observed parameters and ``G``
the observed (half, batch-scaled) gradients.  Pick random data ``u~``: it solves
``F(u) = G~`` with ``G~ = F(u~)``.  Track

.. math:: F(u) = (1 - s)\,\tilde G + s\,G, \qquad s = \frac{t}{t + \gamma (1 - t)},

from ``t = 0`` (where ``u = u~``) to ``t = 1`` with a Runge-Kutta predictor and a
Newton corrector.  ``gamma`` is a random complex number: the path then avoids the real folds
where a real homotopy turns back (measured: with real ``gamma`` most paths fail from
n = 5).  When the trace has more equations than unknowns the homotopy runs on a square
subsystem (the first steps, squared up by a random complex combination if needed); the
steps left out are used afterwards to reject a wrong root.

The tracker (:func:`track`) is generic: the moment homotopy of
:mod:`symbolic_inversion.solvers.moments` reuses it.  The solver entry is
``SOLVERS["homotopy"]`` (:func:`symbolic_inversion.solvers.pipeline.solve_homotopy`).
"""

import contextvars
import math

import mpmath

from ..backends import SampleKernels

__all__ = ["TraceEquations", "track", "PathResult", "parameter_homotopy_path",
           "tracking_dps", "square_rows", "solve_steps", "path_info"]


def tracking_dps(trace):
    """Working precision for path tracking: about ``1.5`` digits per unknown plus 30.

    For the single neuron this is the ``3n + 30`` digits that square solves need (the
    condition number grows like ``10^(2.2 n)``, see ``docs/conditioning``).
    """
    unknowns = trace.samples * (trace.network.input_width + trace.network.output_width)
    return int(1.5 * unknowns) + 30


class TraceEquations:
    """The inversion system restricted to some steps, evaluated on a backend.

    Unknowns are ordered sample by sample, inputs then labels (as
    :meth:`InversionSystem.unknowns`).  ``evaluate`` returns the left-hand sides ``F``,
    the right-hand sides ``G`` and the Jacobian ``dF/du`` as backend numbers, for real
    or complex data.
    """

    def __init__(self, trace, steps, backend):
        self.trace = trace
        self.network = trace.network
        self.steps = list(steps)
        self.backend = backend
        self.kernels = SampleKernels(trace.network, backend)
        P = self.network.num_parameters
        number = backend.number
        gradients = trace.observed_gradients()
        self.thetas = [[number(v) for v in trace.theta(j)] for j in self.steps]
        self.batches = [trace.batch(j) for j in self.steps]
        self.rhs = [number(len(batch) * g / 2) for j, batch in zip(self.steps, self.batches)
                    for g in gradients[j]]
        d, m = self.network.input_width, self.network.output_width
        self.width = d + m
        self.rows = len(self.steps) * P
        self.unknowns = trace.samples * self.width

    def split(self, u):
        d = self.network.input_width
        inputs = [u[i * self.width: i * self.width + d] for i in range(self.trace.samples)]
        labels = [u[i * self.width + d: (i + 1) * self.width] for i in range(self.trace.samples)]
        return inputs, labels

    def join(self, inputs, labels):
        return [v for x, y in zip(inputs, labels) for v in list(x) + list(y)]

    def sample_terms(self, inputs):
        """Kernel outputs per step and sample: ``terms[k][i] = (Bf, B, dBf, dB)``."""
        return [{i: self.kernels(theta, inputs[i]) for i in batch}
                for theta, batch in zip(self.thetas, self.batches)]

    def evaluate(self, u, jacobian=True, terms=None):
        """``(F, J)``: left-hand sides and, if asked, their Jacobian (list of rows)."""
        inputs, labels = self.split(u)
        if terms is None:
            terms = self.sample_terms(inputs)
        P, m, d = self.kernels.shape
        zero = self.backend.number(0)
        F = [zero] * self.rows
        J = [[zero] * self.unknowns for _ in range(self.rows)] if jacobian else None
        for k, per_sample in enumerate(terms):
            for i, (Bf, B, dBf, dB) in per_sample.items():
                y = labels[i]
                column = i * self.width
                for p in range(P):
                    row = k * P + p
                    F[row] = F[row] + Bf[p] - sum((B[p][o] * y[o] for o in range(1, m)),
                                                  B[p][0] * y[0])
                    if jacobian:
                        target = J[row]
                        for c in range(d):
                            value = dBf[p][c]
                            for o in range(m):
                                value = value - dB[p][o][c] * y[o]
                            target[column + c] = value
                        for o in range(m):
                            target[column + d + o] = -B[p][o]
        return F, J


def square_rows(equations, rng):
    """A ``unknowns x rows`` combination squaring up the system (``None``: already square).

    Random complex Gaussian entries: any root of the full system is a root of the
    combined one, and the combination is generically nonsingular.
    """
    if equations.rows == equations.unknowns:
        return None
    number = equations.backend.number
    return [[number(mpmath.mpc(rng.gauss(0, 1), rng.gauss(0, 1)))
             for _ in range(equations.rows)] for _ in range(equations.unknowns)]


def combine(R, vector):
    if R is None:
        return vector
    return [sum((r * v for r, v in zip(row, vector)), 0 * vector[0]) for row in R]


def combine_matrix(R, rows, backend):
    if R is None:
        return rows
    return backend.matmul(R, rows)


# Opt-in record of the points of every path (``recover(..., record_paths=True)``): a list
# that :func:`track` appends ``[t, [[re, im] per unknown]]`` to, or ``None`` (the default:
# no cost).  A context variable keeps the path functions' signatures unchanged.
PATH_POINTS = contextvars.ContextVar("path_points", default=None)


class PathResult:
    """The end of one path: ``u`` (backend numbers, or ``None``), success, statistics."""

    def __init__(self, u, ok, steps, newton, reason="", last=None, t=None):
        self.u, self.ok, self.steps, self.newton, self.reason = u, ok, steps, newton, reason
        # where a failed path stopped: near t = 1 this is usually close to a root that the
        # working precision cannot resolve (the pipeline refines it at higher precision)
        self.last, self.t = last, t


def track(homotopy, start, backend, gamma, max_steps=600, min_step=1e-12,
          initial_step=0.05, max_step=0.25, tolerance=None, endgame=0.9):
    """Follow ``homotopy`` from ``start`` at ``t = 0`` to ``t = 1``.

    ``homotopy(u, s)`` returns ``(H, H_u, H_s)`` (square), with the path parameter
    ``s = t / (t + gamma (1 - t))``.  Fourth-order Runge-Kutta predictor on
    ``du/dt = -H_u^{-1} H_s ds/dt``, at most four Newton corrections per step (to a relative
    ``tolerance``, 1e-6 by default; the corrector is contracting so the path is held), step size
    halved on failure and doubled after two successes; at ``t = 1``
    Newton runs to the working precision.  Past ``t = endgame`` a failed step first
    tries Newton on the target system directly (at most three times).  Run inside ``backend.workdps``.
    """
    clean = backend.clean
    if tolerance is None:
        tolerance = 1e-6
    final_tolerance = 10.0 ** (12 - mpmath.mp.dps)
    floor = 10.0 ** (-mpmath.mp.dps / 3)
    gamma_b = backend.number(gamma)
    one = backend.number(1)

    def s_of(t):
        t_b = backend.number(mpmath.mpf(t))
        denominator = t_b + gamma_b * (one - t_b)
        return t_b / denominator, gamma_b / (denominator * denominator)

    def newton_step(u, s):
        H, Hu, _ = homotopy(u, s)
        delta = backend.solve(Hu, [-h for h in H])
        return [clean(a + b) for a, b in zip(u, delta)], backend.norm(delta)

    def velocity(u, t):
        s, ds_dt = s_of(t)
        _, Hu, Hs = homotopy(u, s)
        return backend.solve(Hu, [-h * ds_dt for h in Hs])

    def runge_kutta(u, t, dt, k1):
        """Classical fourth-order Runge-Kutta step of the path's ODE ``du/dt``."""
        half = backend.number(mpmath.mpf(dt) / 2)
        full = backend.number(mpmath.mpf(dt))
        k2 = velocity([a + half * b for a, b in zip(u, k1)], t + dt / 2)
        k3 = velocity([a + half * b for a, b in zip(u, k2)], t + dt / 2)
        k4 = velocity([a + full * b for a, b in zip(u, k3)], t + dt)
        sixth = full / 6
        step = [clean(a + sixth * (b + 2 * c + 2 * d + e))
                for a, b, c, d, e in zip(u, k1, k2, k3, k4)]
        if not all(math.isfinite(backend.magnitude(v)) for v in step):
            return None
        return step

    def final_newton(u, iterations=40):
        """Newton at ``t = 1`` to the working precision: ``(u, converged, iterations)``."""
        previous = None
        for used in range(1, iterations + 1):
            u, size = newton_step(u, one)
            scale = 1.0 + backend.norm(u)
            if not math.isfinite(size):
                return u, False, used
            if size <= final_tolerance * scale:
                return u, True, used
            if previous is not None and size > 0.5 * previous:
                # no longer contracting: either at the precision floor (converged as far
                # as the working precision allows) or not in a basin at all
                return u, size < floor * scale, used
            previous = size
        return u, False, iterations

    points = PATH_POINTS.get()

    def note(t, u):
        if points is not None:
            values = [backend.to_mpmath(v) for v in u]
            points.append([float(t), [[float(mpmath.re(v)), float(mpmath.im(v))]
                                      for v in values]])

    u = [clean(v) for v in start]
    note(0.0, u)
    jumps = 0
    t, dt, streak, steps, newton = 0.0, initial_step, 0, 0, 0
    while t < 1.0:
        steps += 1
        if steps > max_steps:
            return PathResult(None, False, steps, newton, "too many steps")
        dt = min(dt, 1.0 - t)
        scale = 1.0 + backend.norm(u)
        tangent = velocity(u, t)
        if not all(math.isfinite(backend.magnitude(v)) for v in tangent):
            return PathResult(None, False, steps, newton, "singular Jacobian on the path")
        candidate = runge_kutta(u, t, dt, tangent)
        if candidate is None:
            dt, streak = dt / 2, 0
            continue
        s_new, _ = s_of(t + dt)
        ok, previous = False, None
        for _ in range(4):
            newton += 1
            candidate, size = newton_step(candidate, s_new)
            if not math.isfinite(size) or (previous is not None and size > 0.5 * previous) \
                    or size > 0.1 * scale:
                break
            if size <= tolerance * scale:
                ok = True
                break
            previous = size
        if ok:
            u, t = candidate, t + dt
            note(t, u)
            streak += 1
            if streak >= 2:
                dt, streak = min(2 * dt, max_step), 0
            if backend.norm(u) > 1e8:
                return PathResult(None, False, steps, newton, "the path went to infinity")
        else:
            dt, streak = dt / 2, 0
            if t >= endgame and jumps < 3:
                # Endgame: near t = 1 the path is steep (the root is ill-conditioned);
                # Newton on the target system from here usually converges.  A wrong root
                # reached this way is rejected later against the whole trace.
                jumps += 1
                end, converged, used = final_newton(u, iterations=25)
                newton += used
                if converged:
                    return PathResult(end, True, steps, newton, "endgame jump")
            if dt < min_step:
                return PathResult(None, False, steps, newton, f"step size fell below "
                                  f"{min_step} at t = {t:.6f}", last=u, t=t)
    end, converged, used = final_newton(u)
    newton += used
    if not converged or not all(math.isfinite(backend.magnitude(v)) for v in end):
        return PathResult(None, False, steps, newton, "Newton did not converge at t = 1",
                          last=u, t=t)
    u = end
    note(1.0, u)
    return PathResult(u, True, steps, newton)


STALLED_NEAR_END = 0.999
# far outside any data a network is trained on: the path heads for a root at infinity
DIVERGED = 1e6


def path_info(path, backend, gamma, **extra):
    """The JSON-able summary of a path, plus ``endpoint`` (mpmath, complex) when the path
    ended at a complex root or stalled near ``t = 1``; the pipeline removes it."""
    info = dict({"gamma": mpmath.nstr(gamma, 6)}, **extra)
    info.update({"path_steps": path.steps, "newton": path.newton, "reason": path.reason})
    if not path.ok:
        if path.last is not None and path.t is not None and path.t >= STALLED_NEAR_END:
            size = backend.norm(path.last)
            if size > DIVERGED:
                info["reason"] = (f"the path went to infinity (|u| = {size:.1e} at "
                                  f"t = {path.t:.6f})")
            else:
                info["stalled_at"] = path.t
                info["endpoint"] = [backend.to_mpmath(v) for v in path.last]
        return None, info
    real, imaginary = real_endpoint(backend, path.u)
    info["imaginary"] = float(imaginary)
    if real is None:
        info["reason"] = f"the path ended at a complex root (|Im| = {float(imaginary):.1e})"
        # the real part starts a least-squares fit when no path reaches a real root
        info["endpoint"] = [backend.to_mpmath(v) for v in path.u]
    return real, info


def random_gamma(rng):
    angle = rng.uniform(0.3, 2.8)
    return mpmath.mpc(math.cos(angle), math.sin(angle))


def real_endpoint(backend, u, tolerance=1e-6):
    """The real part of an endpoint, or ``None`` if it is not (numerically) real."""
    values = [backend.to_mpmath(v) for v in u]
    scale = 1 + max(abs(v) for v in values)
    imaginary = max(abs(mpmath.im(v)) for v in values)
    if imaginary > tolerance * scale:
        return None, imaginary
    return [mpmath.re(v) for v in values], imaginary


def parameter_homotopy_path(trace, steps, backend, rng, dps):
    """One path of the parameter homotopy on ``steps``; returns ``(real u | None, info)``."""
    with backend.workdps(dps):
        equations = TraceEquations(trace, steps, backend)
        R = square_rows(equations, rng)
        d, m = trace.network.input_width, trace.network.output_width
        start = []
        for _ in range(trace.samples):
            start += [mpmath.mpf(rng.uniform(0, 1)) for _ in range(d)]
            start += [mpmath.mpf(rng.uniform(0, 1)) for _ in range(m)]
        start = [backend.number(v) for v in start]
        G_start, _ = equations.evaluate(start, jacobian=False)
        G = equations.rhs
        direction = combine(R, [a - b for a, b in zip(G_start, G)])

        def homotopy(u, s):
            F, J = equations.evaluate(u)
            target = [(1 - s) * a + s * b for a, b in zip(G_start, G)]
            H = combine(R, [f - g for f, g in zip(F, target)])
            return H, combine_matrix(R, J, backend), direction

        gamma = random_gamma(rng)
        path = track(homotopy, start, backend, gamma)
        return path_info(path, backend, gamma)


def solve_steps(trace, square=None):
    """The steps a square solve uses: the fewest leading steps with enough equations."""
    P = trace.network.num_parameters
    unknowns = trace.samples * (trace.network.input_width + trace.network.output_width)
    needed = -(-unknowns // P)
    return list(range(min(needed if square is None else square, trace.steps)))
