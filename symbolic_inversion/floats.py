r"""Traces trained in binary floating point (``dtype`` ``"float32"`` or ``"float64"``).

A trace recorded from PyTorch (or any float training) holds binary numbers.  Each
written value is read as the *exact* binary value it denotes (the nearest number of the
format: the shortest round-trip decimal names it), so the observer's parameters carry no
rounding at all.  The rounding is in the optimizer's own arithmetic: PyTorch's
``torch.optim.SGD`` computes, in the parameters' format,

.. math:: d = \mathrm{fl}(\hat g + \lambda\theta),\quad
          v' = \mathrm{fl}(\mathrm{fl}(\mu v) + d),\quad
          \theta' = \mathrm{fl}(\theta - \mathrm{fl}(\eta\, v')),

(``d_p.add(param, alpha=wd)``, ``buf.mul_(momentum).add_(d_p)``,
``param.add_(buf, alpha=-lr)``) from a gradient :math:`\hat g` that backpropagation
computed in the same format.  The observer undoes the step exactly
(:meth:`~symbolic_inversion.optimizers.Optimizer.observed_gradients`), so each observed
gradient entry differs from the exact gradient of the network at the recorded
parameters by at most (``u`` the unit roundoff, :math:`2^{-24}` or :math:`2^{-53}`)

.. math:: \underbrace{u\,(2|v'| + |\theta'| / \eta)}_{\text{the update}}
          + \mu\,(\ldots)_{\text{previous step}}
          + \underbrace{3u\,(\mu|v| + |d|) + u\,\lambda|\theta|}_{\text{momentum, decay}}
          + \underbrace{\gamma_K\, G}_{\text{backpropagation}},

where :math:`\gamma_K = K u / (1 - K u)` is the standard forward error bound of a
``K``-term dot product (``K`` counts the samples and the operations of the longest chain
of the layer-wise program) and ``G`` the largest observed gradient entry of the trace
(a stand-in for the sum of the absolute values of the per-sample terms).  Observed
magnitudes stand in for the unknown exact ones, with a factor 2 of safety.  This model
replaces the count of written digits (:attr:`Trace.digits
<symbolic_inversion.trace.Trace.digits>` is the format's round-trip digits, 17 or 9)
everywhere the trace's uncertainty enters: the judge's residual allowance, the digits
vouched for, :func:`~symbolic_inversion.analysis.analyze` and certificates.  What that
rounding does to the data (is the format fine enough?) is the verdict of
:mod:`symbolic_inversion.solvers.float_verdict`.

Examples
========

>>> from symbolic_inversion.floats import binary_value, shortest, unit_roundoff
>>> binary_value("0.1", "float32")
Decimal('0.100000001490116119384765625')
>>> shortest(binary_value("0.1", "float32"), "float32")
'0.1'
>>> unit_roundoff("float64") == 2.0 ** -53
True
"""

from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np

from .errors import InputError

__all__ = ["DTYPES", "binary_value", "shortest", "unit_roundoff", "round_trip_digits",
           "gradient_bounds", "update_bounds", "round_bounds", "gradient_uncertainty",
           "check_dtype"]

#: numpy type and significand bits of every supported binary format.
DTYPES = {"float32": (np.float32, 24), "float64": (np.float64, 53)}

#: Decimal digits that name every number of the format (round trip).
_ROUND_TRIP = {"float32": 9, "float64": 17}

# Safety factor on the bound (observed magnitudes stand in for the exact ones).
_SAFETY = 2


def check_dtype(dtype, field="dtype"):
    """``None`` or a known format name; anything else is an :class:`InputError`.

    >>> check_dtype("float32")
    'float32'
    >>> check_dtype("float16")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: dtype: expected 'float32' or 'float64', got 'float16'
    """
    if dtype is None or (isinstance(dtype, str) and dtype in DTYPES):
        return dtype
    raise InputError(f"{field}: expected 'float32' or 'float64', got {dtype!r}")


def unit_roundoff(dtype):
    """The unit roundoff ``u = 2^-p`` of the format (a Fraction).

    >>> unit_roundoff("float32")
    Fraction(1, 16777216)
    """
    return Fraction(1, 2 ** DTYPES[check_dtype(dtype)][1])


def round_trip_digits(dtype):
    """Significant decimal digits that identify every number of the format (9 or 17).

    >>> round_trip_digits("float64")
    17
    """
    return _ROUND_TRIP[check_dtype(dtype)]


def binary_value(value, dtype, field="parameters"):
    """The exact value (a Decimal) of the format's number nearest to ``value``.

    ``value`` is a decimal string, Decimal, int or float (a numpy float of the format is
    taken as it is).  Not finite, or out of the format's range: :class:`InputError`
    naming ``field``.

    >>> binary_value("0.1", "float64")
    Decimal('0.1000000000000000055511151231257827021181583404541015625')
    >>> binary_value("1e39", "float32", "parameters[0][0]")
    Traceback (most recent call last):
    ...
    symbolic_inversion.errors.InputError: parameters[0][0]: 1e39 is not a finite float32
    """
    kind = DTYPES[check_dtype(dtype)][0]
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{field}: expected a number, got {value!r}")
    if isinstance(value, (np.floating, float)):
        text = repr(float(value)) if not isinstance(value, kind) else None
        number = value if text is None else kind(text)
    else:
        try:
            text = str(value).strip()
            Decimal(text)
        except Exception:
            raise InputError(f"{field}: expected a number, got {value!r}") from None
        with np.errstate(over="ignore"):
            # float64 parsing is correctly rounded; float32 goes through the nearest
            # double, exact for every shortest round-trip float32 decimal
            number = kind(float(text))
    if not np.isfinite(number):
        raise InputError(f"{field}: {value} is not a finite {dtype}")
    return Decimal(float(number))


def shortest(value, dtype):
    """The shortest decimal string that round-trips to the format's number ``value``.

    >>> shortest(Decimal(0.1), "float64")
    '0.1'
    """
    kind = DTYPES[check_dtype(dtype)][0]
    number = kind(float(value))
    if dtype == "float64":
        return repr(float(number))
    return np.format_float_positional(number, unique=True, trim="-") \
        if 1e-5 <= abs(number) < 1e16 or number == 0 else \
        np.format_float_scientific(number, unique=True, trim="-")


def _chain_length(trace):
    """``K``: the longest chain of roundings behind one gradient entry (a sum over the
    samples of a step plus a forward and a backward pass through every layer)."""
    network = trace.network
    return trace.samples + 4 * sum(network.layers) + 10


def gradient_bounds(trace, inputs=None, labels=None):
    """Per step and parameter, a bound on the distance between the observed gradient and
    the exact gradient of the network at the recorded parameters (lists of mpmath numbers
    at the current precision), for a trace with a ``dtype`` (module docstring).

    With a dataset (``inputs``, ``labels``: the candidate being judged) backpropagation's
    rounding is bounded entry by entry by a running error analysis at that dataset
    (:func:`backpropagation_bounds`); without one, by ``gamma_K`` times the largest
    observed gradient entry for every entry (much looser: measured 3,000 times the true
    error of a float32 3-4-1 recovery before this).

    >>> import mpmath
    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1], "identity"), "0.5", 1, [[1.0, 1.0], [0.5, 0.75]],
    ...               dtype="float64")
    >>> with mpmath.workdps(20):
    ...     bounds = gradient_bounds(trace)
    >>> [mpmath.nstr(b / mpmath.mpf(2) ** -53, 4) for b in bounds[0]]
    ['46.0', '44.0']

    (In units of ``u``: the update ``2|v| + |theta'|/lr`` = 3 and 2.5, backpropagation
    ``K |g|max`` = 19 with ``K = 1 + 4 * 2 + 10``, the coefficients ``|g|`` = 1 and 0.5;
    twice their sums.)
    """
    if not trace.optimizer.invertible:
        return [_first_adam_step_bounds(trace)]
    # In float64 (a bound needs no more than its own few digits; mpmath per entry took
    # 6 s for a 64-256-10 network's 19,210 parameters), returned as mpmath numbers.
    u = 2.0 ** -DTYPES[trace.dtype][1]
    K = _chain_length(trace)
    gamma = _gamma(K, u)
    optimizer = trace.optimizer
    mu, wd = float(optimizer.momentum), float(optimizer.weight_decay)
    keep = 1 - float(optimizer.dampening)
    thetas = [np.asarray(trace.parameters[j], dtype=float) for j in range(trace.steps + 1)]
    gradients = [np.asarray(g, dtype=float)
                 for g in optimizer.observed_gradients(thetas, float)]
    largest = max((float(np.max(np.abs(g))) for g in gradients if g.size), default=0.0)
    running = None if inputs is None else backpropagation_bounds(trace, inputs, labels)
    size = len(thetas[0])
    previous = np.zeros(size)   # the last step's update error
    velocity = np.zeros(size)   # PyTorch's buffer (observed values)
    carried = np.zeros(size)    # Nesterov: the buffer's error
    bounds = []
    for j, gradient in enumerate(gradients):
        # each step's own lr (a schedule): theta' is rounded at its size, divided by lr_j
        lr = float(optimizer.lr_at(j))
        steps = (thetas[j] - thetas[j + 1]) / lr
        update = u * (2 * np.abs(steps) + np.abs(thetas[j + 1]) / lr)
        backward = gamma * largest if running is None else np.asarray(running[j], float)
        own = backward + u * np.abs(gradient)  # backpropagation; u|g|: lr, mu, wd rounded
        if wd:
            own = own + 2 * u * wd * np.abs(thetas[j])
        direction = np.abs(gradient) + wd * np.abs(thetas[j])
        if not mu:
            error = update
        elif optimizer.nesterov:
            # update = d + mu (mu v + d): d = (update - mu^2 v) / (1 + mu), with the
            # buffer v carried (its error contracts by mu / (1 + mu) a step)
            error = (update + mu * mu * carried) / (1 + mu)
            if j:
                error = error + 3 * u * (mu * np.abs(velocity) + direction)
        elif j == 0:
            error = update                     # PyTorch's buffer starts as d
        else:
            # update = mu update_prev + (1 - tau) d: both updates' errors, over 1 - tau
            error = (update + mu * previous
                     + 3 * u * (mu * np.abs(velocity) + direction)) / keep
        bounds.append([mpmath.mpf(float(v)) for v in _SAFETY * (error + own)])
        if mu:
            d = gradient + wd * thetas[j]
            velocity = d if j == 0 else mu * velocity + keep * d
            carried = error if j == 0 else mu * carried + error
        previous = update
    return bounds


def _gamma(k, u):
    return k * u / (1 - k * u)


def backpropagation_bounds(trace, inputs, labels):
    """Per step and parameter, a bound (float64 numbers) on the rounding of the mean loss
    gradient computed in the trace's format by backpropagation, at the dataset
    ``inputs``, ``labels``: a running error analysis of the layer-wise program's own
    forward pass (:mod:`~symbolic_inversion.program`), first order in the unit roundoff
    ``u``.  Every sum of ``k`` products rounds by at most ``gamma_k`` times the sum of
    the absolute values of its terms; the errors of its operands enter through the
    absolute values of the other factors:

    - forward: ``|dz_l| <= gamma_{in+1} (|W| |h| + |b|) + |W| |dh|``,
      ``|dh_l| <= |sigma'| |dz_l| + 2 u |h_l|``;
    - the loss: ``|dr| <= |J_ell| |df| + (m + 3) u (|ell(f)| + |y|)``;
    - backward: ``|d delta_l| <= |sigma'| (gamma_{out+1} |W|^T |delta| + |W|^T
      |d delta|) + |W^T delta| |sigma''| |dz_l| + u |delta_l|``;
    - the gradient, a mean over ``b`` samples: ``gamma_{b+1} c sum_i |delta_i| |h_i|``
      plus the operands' errors.

    This bounds PyTorch's float32 or float64 backpropagation whatever its summation
    order; the observed-gradient bound adds the optimizer's own rounding
    (:func:`gradient_bounds`).
    """
    from .arithmetic import get_arithmetic
    from .program import layerwise_program
    float64 = get_arithmetic("float64")
    network, loss = trace.network, trace.loss
    program = layerwise_program(network, loss)
    u = float(2.0 ** -DTYPES[trace.dtype][1])
    X = np.asarray([[float(v) for v in x] for x in inputs], dtype=float).reshape(
        len(inputs), network.input_width)
    Y = np.asarray([[float(v) for v in y] for y in labels], dtype=float).reshape(
        len(labels), network.output_width)
    activations = program.activations(float64)
    m = network.output_width
    offset = trace.offset
    out = []
    for j in range(trace.optimizer.invertible_steps(trace.steps)):
        rows_x, rows_y = list(X[trace.batch(j)]), list(Y[trace.batch(j)])
        if offset is not None:   # known samples: computed in the same batch
            d = network.input_width
            for k in offset[2][j]:
                point = [float(v) for v in offset[0][k]]
                rows_x.append(point[:d])
                rows_y.append(point[d:])
        batch_x = np.asarray(rows_x, dtype=float).reshape(len(rows_x), -1)
        batch_y = np.asarray(rows_y, dtype=float).reshape(len(rows_y), -1)
        full = offset[1][j] if offset is not None else len(rows_x)
        theta = np.asarray([float(v) for v in trace.parameters[j]], dtype=float)
        blocks = program._layers(theta[None, :])
        S = np.arange(len(rows_x))[None, :]
        posts, slopes = program._forward(float64, blocks, batch_x, S)
        # forward: magnitudes and errors per layer (E = 1 step, nb samples)
        errors = [np.zeros_like(posts[0])]
        dz = []
        for layer, ((W, b), activation) in enumerate(zip(blocks, activations)):
            fan_in = W.shape[2]
            h, eh = np.abs(posts[layer]), errors[-1]
            size = np.matmul(h, np.abs(W).transpose(0, 2, 1))
            if b is not None:
                size = size + np.abs(b)[:, None, :]
            ez = _gamma(fan_in + 1, u) * size + np.matmul(eh, np.abs(W).transpose(0, 2, 1))
            z, a, s = slopes[layer]
            slope = 1.0 if s is None else np.abs(s)
            errors.append(slope * ez + (0.0 if s is None else 2 * u * np.abs(a)))
            dz.append(ez)
        linked = loss.link(posts[-1], float64)
        er = _link_error(loss.name, linked, errors[-1]) + (m + 3) * u * (
            np.abs(linked) + np.abs(batch_y[S]))
        residual = linked - batch_y[S]
        delta, edelta = _times_slope(residual, er, slopes[-1], activations[-1], dz[-1], u)
        factor = float(loss.factor(full, m))
        pieces = []
        for layer in reversed(range(network.depth)):
            h, eh = np.abs(posts[layer]), errors[layer]
            nb = h.shape[1]
            grad_W = factor * (_gamma(nb + 1, u) * np.matmul(np.abs(delta).transpose(0, 2, 1), h)
                               + np.matmul(edelta.transpose(0, 2, 1), h)
                               + np.matmul(np.abs(delta).transpose(0, 2, 1), eh))
            grad_b = factor * (_gamma(nb + 1, u) * np.abs(delta).sum(axis=1)
                               + edelta.sum(axis=1)) if network.bias else None
            pieces.append((grad_W.reshape(1, -1), grad_b))
            if layer:
                W = blocks[layer][0]
                fan_out = W.shape[1]
                back = np.matmul(delta, W)
                eback = _gamma(fan_out + 1, u) * np.matmul(np.abs(delta), np.abs(W)) + \
                    np.matmul(edelta, np.abs(W))
                delta, edelta = _times_slope(back, eback, slopes[layer - 1],
                                             activations[layer - 1], dz[layer - 1], u)
        flat = []
        for grad_W, grad_b in reversed(pieces):
            flat.append(grad_W)
            if grad_b is not None:
                flat.append(grad_b)
        out.append(list(np.concatenate(flat, axis=1)[0]))
    return out


def _link_error(name, linked, error):
    """``|J_ell| error`` for the loss's link: the identity, the softmax (``J = diag(s) -
    s s^T``), the logistic function (``s (1 - s)``)."""
    if name == "cross_entropy":
        return linked * error + linked * (linked * error).sum(axis=-1, keepdims=True)
    if name == "bce_with_logits":
        return linked * (1 - linked) * error
    return error


def _times_slope(value, error, slope_values, activation, ez, u):
    """``delta = value * sigma'(z)`` and its error bound: ``|sigma'| e + |value|
    |sigma''| |dz| + u |delta|``."""
    z, a, s = slope_values
    if s is None:
        return value, error
    delta = value * s
    e = np.abs(s) * error + u * np.abs(delta)
    if activation.curvature is not None:
        e = e + np.abs(value) * np.abs(activation.curvature(z, a, s)) * ez
    return delta, e


def _backpropagation(trace, gradients):
    """``gamma_K G``: the bound on backpropagation's rounding of a gradient entry."""
    u = mpmath.mpf(2) ** -DTYPES[trace.dtype][1]
    K = _chain_length(trace)
    gamma = K * u / (1 - K * u)
    largest = max((abs(g) for gradient in gradients for g in gradient), default=0)
    return u, gamma * largest


def _first_adam_step_bounds(trace):
    """Adam's first observed gradient ``d = eps k / (1 - |k|)`` in a binary format: the
    rounding of the update (``k`` within ``2u (|theta_0| + |theta_1|) / lr``) amplified
    by ``(|d| + eps)^2 / eps``, plus backpropagation's own (per entry)."""
    optimizer = trace.optimizer
    gradient = trace.observed_gradients()[0]
    u, backpropagation = _backpropagation(trace, [gradient])
    eps = mpmath.mpf(str(optimizer.eps))
    lr = mpmath.mpf(str(optimizer.lr_at(0)))
    wd = mpmath.mpf(str(optimizer.weight_decay))
    before, after = trace.theta(0), trace.theta(1)
    bounds = []
    for g, a, b in zip(gradient, before, after):
        k_error = 2 * u * (abs(a) + abs(b)) / lr
        size = abs(g) + wd * abs(a) + eps
        bounds.append(_SAFETY * (size * size / eps * k_error + backpropagation
                                 + u * abs(g) + u * wd * abs(a)))
    return bounds


def update_bounds(trace):
    """Per step and parameter, a bound on the distance between the observed normalised
    update ``(theta_j - theta_{j+1}) / lr_j`` and the update exact arithmetic makes from
    the exact gradients at the recorded parameters, for a binary-float trace of an
    optimizer whose steps are not inverted (Adam, AdamW; lists of mpmath numbers).

    Three sources, to first order, times the safety factor: the update's own rounding
    (``theta_{j+1}`` rounded, ``u (2 |theta_{j+1}| + |theta_j|) / lr``), Adam's arithmetic
    on its state (relative ``(6 + 2 j) u`` of the update), and backpropagation's rounding
    ``gamma_K G`` of every gradient carried through the update: the normalised update
    is ``m_hat / (sqrt(v_hat) + eps)``, whose derivatives with respect to the gradients
    of steps ``0..j`` sum to at most ``(1 + |q| sqrt((1 - b2) / c2) min(j + 1, 1 / (1 -
    sqrt b2))) / sqrt(v_hat)``, and ``sqrt(v_hat) >= sqrt((1 - b2) b2^j / c2) |d_0|``
    with the first step's observed direction ``d_0`` (an infinite bound where it is 0:
    such a coordinate's updates say nothing about the data).
    """
    optimizer = trace.optimizer
    first = trace.observed_gradients()[0]
    u, backpropagation = _backpropagation(trace, [first])
    b1, b2 = (mpmath.mpf(str(b)) for b in optimizer.betas)
    wd = mpmath.mpf(str(optimizer.weight_decay))
    thetas = [trace.theta(j) for j in range(trace.steps + 1)]
    directions = [abs(g + (wd * t if not optimizer.decoupled else 0))
                  for g, t in zip(first, thetas[0])]
    reach = min(mpmath.mpf(1) / (1 - mpmath.sqrt(b2)), trace.steps)
    bounds = []
    for j in range(trace.steps):
        lr = mpmath.mpf(str(optimizer.lr_at(j)))
        c2 = 1 - b2 ** (j + 1)
        spread = mpmath.sqrt((1 - b2) / c2) * min(j + 1, reach)
        floor = mpmath.sqrt((1 - b2) * b2 ** j / c2)
        step = []
        for p, (now, later) in enumerate(zip(thetas[j], thetas[j + 1])):
            q = abs(now - later) / lr
            own = u * (2 * abs(later) + abs(now)) / lr + (6 + 2 * j) * u * q
            if optimizer.decoupled:
                own += u * abs(now) / lr
            if directions[p]:
                carried = backpropagation * (1 + q * spread) / (floor * directions[p])
            else:
                carried = mpmath.inf
            step.append(_SAFETY * (own + carried))
        bounds.append(step)
    return bounds


def round_bounds(trace):
    """Per round and parameter, a bound on the distance between the observed normalised
    update ``(theta_j - theta_{j+1}) / lr_j`` of a federated round (``local_steps`` K,
    ``clients`` C) trained in a binary format and the update exact arithmetic makes
    from the recorded ``theta_j`` (lists of mpmath numbers).

    Each of the K local steps of a client rounds its update (``u (|theta'| + lr |g|)``)
    and its gradient (backpropagation, ``gamma_K G``, with the largest normalised round
    update of the trace standing in for ``G``); the server's weighted mean of C clients
    rounds once per client and once for the weights (``(C + 2) u |theta|``).  The
    parameters' magnitudes inside the round are unknown: ``max(|theta_j|,
    |theta_{j+1}|) + |theta_j - theta_{j+1}|`` stands in for them.  First order, times
    the safety factor, as :func:`gradient_bounds` (the local steps' own propagation of
    an early rounding is taken as at most that factor).

    >>> import mpmath
    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1], "identity"), "0.5", 1, [[1.0, 1.0], [0.5, 0.75]],
    ...               dtype="float64", optimizer={"name": "gd", "lr": "0.5",
    ...                                           "local_steps": 2})
    >>> with mpmath.workdps(20):
    ...     bounds = round_bounds(trace)
    >>> [mpmath.nstr(b / mpmath.mpf(2) ** -53, 4) for b in bounds[0]]
    ['110.0', '103.0']

    (In units of ``u``, parameter 0: ``q = 1``, magnitude ``1.5``; two local steps of
    ``1.5 / 0.5 + 1 + 19`` (``19 = gamma_K / u``, ``G = 1``) and the server's
    ``3 * 1.5 / 0.5``: 55, twice.)
    """
    u = mpmath.mpf(2) ** -DTYPES[trace.dtype][1]
    K = trace.optimizer.local_steps
    C = len(trace.clients) if trace.clients is not None else 1
    chain = _chain_length(trace)
    gamma = chain * u / (1 - chain * u)
    thetas = [trace.theta(j) for j in range(trace.steps + 1)]
    rates = [mpmath.mpf(str(trace.optimizer.lr_at(j))) for j in range(trace.steps)]
    largest = max((abs(a - b) / rates[j] for j in range(trace.steps)
                   for a, b in zip(thetas[j], thetas[j + 1])), default=0)
    bounds = []
    for j in range(trace.steps):
        lr = rates[j]
        step = []
        for now, later in zip(thetas[j], thetas[j + 1]):
            q = abs(now - later) / lr
            size = max(abs(now), abs(later)) + abs(now - later)
            local = K * (u * (size / lr + q) + gamma * largest)
            server = (C + 2) * u * size / lr
            step.append(_SAFETY * (local + server))
        bounds.append(step)
    return bounds


def gradient_uncertainty(trace):
    """The largest entry of :func:`gradient_bounds` (one mpmath number): the bound the
    judge and the error estimates use for every observed gradient entry.

    >>> import mpmath
    >>> from symbolic_inversion import Network, Trace
    >>> trace = Trace(Network([1, 1], "identity"), "0.5", 1, [[1.0, 1.0], [0.5, 0.75]],
    ...               dtype="float32")
    >>> with mpmath.workdps(20):
    ...     print(mpmath.nstr(gradient_uncertainty(trace) * 2 ** 24, 4))
    46.0
    """
    return max(b for step in gradient_bounds(trace) for b in step)
