"""An independent generator of exact traces, for the tests.

The loss is written here from its textbook formula on SymPy's forward pass of the
network, differentiated by SymPy (``sympy.diff`` of the loss itself), evaluated by
``lambdify`` in mpmath; the optimizers' updates are written here from PyTorch's
documented algorithms.  Nothing goes through the toolkit's layer-wise program, its
losses' links or its optimizers' update equations, so a recovery from these traces
checks them against a second implementation.
"""

from functools import lru_cache

import mpmath
import sympy as sp


def _loss_expression(network, loss, reduction, n):
    """The batch loss of ``n`` symbolic samples and the symbols ``(theta, xs, ys)``."""
    theta = network.parameter_symbols()
    xs, ys, total = [], [], sp.Integer(0)
    m = network.output_width
    for i in range(n):
        x, y = network.sample_symbols(i)
        xs.append(list(x))
        ys.append(list(y))
        f = list(network.forward(x))
        if loss == "mse":
            total += sum((a - b) ** 2 for a, b in zip(f, y))
        elif loss == "cross_entropy":
            log_normaliser = sp.log(sum(sp.exp(v) for v in f))
            total += -sum(p * (v - log_normaliser) for p, v in zip(y, f))
        elif loss == "bce_with_logits":
            total += sum(-(p * sp.log(1 / (1 + sp.exp(-v)))
                           + (1 - p) * sp.log(1 - 1 / (1 + sp.exp(-v))))
                         for p, v in zip(y, f))
        else:
            raise ValueError(loss)
    if loss == "mse":
        divisor = n * (m if reduction == "mean" else 1)
    elif reduction == "sum":
        divisor = 1
    else:
        divisor = n * (m if loss == "bce_with_logits" else 1)
    return total / divisor, theta, xs, ys


@lru_cache(maxsize=None)
def _gradient_function(network, loss, reduction, n):
    expression, theta, xs, ys = _loss_expression(network, loss, reduction, n)
    gradient = [sp.diff(expression, p) for p in theta]
    flat_x = [v for x in xs for v in x]
    flat_y = [v for y in ys for v in y]
    return sp.lambdify([theta, flat_x, flat_y], gradient, "mpmath", cse=True)


def loss_gradient(network, theta, X, Y, loss="mse", reduction="sum_outputs"):
    """The gradient of the batch loss at ``theta`` (mpmath numbers at the working
    precision)."""
    function = _gradient_function(network, loss, reduction, len(X))
    return function(list(theta), [v for x in X for v in x], [v for y in Y for v in y])


class SGD:
    """``torch.optim.SGD`` as documented (momentum, dampening, nesterov, weight decay)."""

    def __init__(self, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0):
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay
        self.buffer = None

    def step(self, theta, gradient, lr=None):
        lr = self.lr if lr is None else lr
        mu, tau = mpmath.mpf(self.momentum), mpmath.mpf(self.dampening)
        g = [gi + mpmath.mpf(self.weight_decay) * t for gi, t in zip(gradient, theta)]
        if self.momentum:
            if self.buffer is None:
                self.buffer = list(g)
            else:
                self.buffer = [mu * b + (1 - tau) * gi for b, gi in zip(self.buffer, g)]
            g = [gi + mu * b for gi, b in zip(g, self.buffer)] if self.nesterov \
                else list(self.buffer)
        return [t - mpmath.mpf(lr) * gi for t, gi in zip(theta, g)]


class Adam:
    """``torch.optim.Adam`` / ``AdamW`` as documented (bias corrections, amsgrad)."""

    def __init__(self, lr, betas=("0.9", "0.999"), eps="1e-8", weight_decay=0,
                 amsgrad=False, decoupled=False):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad, self.decoupled = weight_decay, amsgrad, decoupled
        self.m = self.v = self.v_max = None
        self.t = 0

    def step(self, theta, gradient, lr=None):
        lr = mpmath.mpf(self.lr if lr is None else lr)
        b1, b2 = (mpmath.mpf(b) for b in self.betas)
        eps, wd = mpmath.mpf(self.eps), mpmath.mpf(self.weight_decay)
        theta = list(theta)
        if self.decoupled:
            theta = [t * (1 - lr * wd) for t in theta]
            g = list(gradient)
        else:
            g = [gi + wd * t for gi, t in zip(gradient, theta)]
        if self.m is None:
            self.m = [mpmath.mpf(0)] * len(g)
            self.v = [mpmath.mpf(0)] * len(g)
            self.v_max = [mpmath.mpf(0)] * len(g)
        self.t += 1
        self.m = [b1 * m + (1 - b1) * gi for m, gi in zip(self.m, g)]
        self.v = [b2 * v + (1 - b2) * gi * gi for v, gi in zip(self.v, g)]
        m_hat = [m / (1 - b1 ** self.t) for m in self.m]
        if self.amsgrad:
            self.v_max = [max(a, b) for a, b in zip(self.v_max, self.v)]
            v_hat = [v / (1 - b2 ** self.t) for v in self.v_max]
        else:
            v_hat = [v / (1 - b2 ** self.t) for v in self.v]
        return [t - lr * mh / (mpmath.sqrt(vh) + eps)
                for t, mh, vh in zip(theta, m_hat, v_hat)]


def exact_trace(network, X, Y, init, optimizer, steps, loss="mse", reduction=None,
                dps=60, lrs=None):
    """The trace file object (a dict) of full-batch training, every parameter rounded
    to ``dps`` significant digits and every step taken from the rounded values.

    ``optimizer`` is the trace file's optimizer object (``name`` gd/adam/adamw and the
    options); ``X``, ``Y`` decimal strings; ``lrs`` a schedule (one lr per step).
    """
    reduction = reduction or ("sum_outputs" if loss == "mse" else "mean")
    options = dict(optimizer)
    name = options.pop("name")
    lr = options.pop("lr")
    if name in ("gd", "sgd"):
        rule = SGD(lr, options.get("momentum", 0), options.get("dampening", 0),
                   options.get("nesterov", False), options.get("weight_decay", 0))
    else:
        rule = Adam(lr, tuple(options.get("betas", ("0.9", "0.999"))),
                    options.get("eps", "1e-8"),
                    options.get("weight_decay", "0.01" if name == "adamw" else 0),
                    options.get("amsgrad", False), decoupled=name == "adamw")
    with mpmath.workdps(dps + 20):
        xs = [[mpmath.mpf(v) for v in x] for x in X]
        ys = [[mpmath.mpf(v) for v in y] for y in Y]
        theta = [mpmath.mpf(v) for v in init]
        recorded = [[mpmath.nstr(t, dps, strip_zeros=False) for t in theta]]
        for step in range(steps):
            gradient = loss_gradient(network, theta, xs, ys, loss, reduction)
            theta = rule.step(theta, gradient, None if lrs is None else lrs[step])
            recorded.append([mpmath.nstr(t, dps, strip_zeros=False) for t in theta])
            theta = [mpmath.mpf(v) for v in recorded[-1]]
    data = {"format": "symbolic-inversion-trace", "version": 1,
            "network": network.to_dict(), "loss": loss, "loss_reduction": reduction,
            "optimizer": dict(optimizer, lr=lrs if lrs is not None else lr),
            "samples": len(X), "parameters": recorded}
    return data


def _rule(optimizer):
    options = dict(optimizer)
    name = options.pop("name")
    lr = options.pop("lr")
    if name in ("gd", "sgd"):
        return SGD(lr, options.get("momentum", 0), options.get("dampening", 0),
                   options.get("nesterov", False), options.get("weight_decay", 0))
    return Adam(lr, tuple(options.get("betas", ("0.9", "0.999"))), options.get("eps", "1e-8"),
                options.get("weight_decay", "0.01" if name == "adamw" else 0),
                options.get("amsgrad", False), decoupled=name == "adamw")


def federated_trace(network, X, Y, init, optimizer, rounds, local_steps, loss="mse",
                    reduction=None, clients=None, batches=None, dps=60):
    """The trace file object of FedAvg: every round, each client starts from the
    recorded parameters with a fresh optimizer (PyTorch's, as above), takes
    ``local_steps`` steps on its own samples (full batch, or ``batches[round][k]``: the
    sample indices of local step ``k``), and the new parameters are the clients' mean
    weighted by ``clients`` (``[(count, weight)]``, samples in order; one client holding
    everything when None), rounded to ``dps`` digits."""
    reduction = reduction or ("sum_outputs" if loss == "mse" else "mean")
    groups, start = [], 0
    for count, weight in clients or [(len(X), 1)]:
        groups.append((mpmath.mpf(weight), list(range(start, start + count))))
        start += count
    with mpmath.workdps(dps + 20):
        xs = [[mpmath.mpf(v) for v in x] for x in X]
        ys = [[mpmath.mpf(v) for v in y] for y in Y]
        theta = [mpmath.mpf(v) for v in init]
        recorded = [[mpmath.nstr(t, dps, strip_zeros=False) for t in theta]]
        total = sum(w for w, _ in groups)
        for r in range(rounds):
            mean = [mpmath.mpf(0)] * len(theta)
            for weight, members in groups:
                rule, local = _rule(optimizer), list(theta)
                for k in range(local_steps):
                    batch = members if batches is None else batches[r][k]
                    gradient = loss_gradient(network, local, [xs[i] for i in batch],
                                             [ys[i] for i in batch], loss, reduction)
                    local = rule.step(local, gradient)
                mean = [a + weight / total * b for a, b in zip(mean, local)]
            recorded.append([mpmath.nstr(t, dps, strip_zeros=False) for t in mean])
            theta = [mpmath.mpf(v) for v in recorded[-1]]
    data = {"format": "symbolic-inversion-trace", "version": 1,
            "network": network.to_dict(), "loss": loss, "loss_reduction": reduction,
            "optimizer": dict(optimizer, local_steps=local_steps),
            "samples": len(X), "parameters": recorded}
    if clients is not None:
        data["clients"] = [{"samples": c, "weight": str(w)} for c, w in clients]
    if batches is not None:
        data["batches"] = [b for round_batches in batches for b in round_batches]
        data["optimizer"]["batch_size"] = max(len(b) for b in data["batches"])
    return data
