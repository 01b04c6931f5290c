"""The optimizer step and its inverse (symbolic_inversion.optimizers).

References are written out by hand from PyTorch's documented update
(``torch.optim.SGD``: d = g + wd * p; buf = mu * buf + d, buf = d at the first step;
p = p - lr * buf), not taken from the code under test.
"""

from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from symbolic_inversion import InputError, Network, Trace
from symbolic_inversion.optimizers import Optimizer

THETAS = [[Fraction(1, 2), Fraction(-3, 4)], [Fraction(1, 3), Fraction(1, 5)]]
GRADS = [[Fraction(2, 7), Fraction(-1, 9)], [Fraction(5, 11), Fraction(3, 13)],
         [Fraction(-1, 17), Fraction(1, 19)]]


def pytorch_sgd(theta, gradients, lr, mu, wd):
    """Three steps of torch.optim.SGD's update, written out with Fractions."""
    path, buf = [list(theta)], None
    for g in gradients:
        d = [gi + wd * p for gi, p in zip(g, theta)]
        buf = d if buf is None else [mu * b + di for b, di in zip(buf, d)]
        theta = [p - lr * b for p, b in zip(theta, buf)]
        path.append(theta)
    return path


@pytest.mark.parametrize("momentum,weight_decay", [("0", "0"), ("0.9", "0"),
                                                   ("0", "0.01"), ("0.5", "0.02")])
def test_step_is_pytorch_sgd_and_the_inverse_undoes_it_exactly(momentum, weight_decay):
    opt = Optimizer("sgd", "0.1", momentum, weight_decay, batch_size=1)
    lr, mu, wd = (Fraction(v) for v in ("0.1", momentum, weight_decay))
    expected = pytorch_sgd(THETAS[0], GRADS, lr, mu, wd)
    theta, velocity, path = THETAS[0], None, [THETAS[0]]
    for g in GRADS:
        theta, velocity = opt.step(theta, g, velocity)
        path.append(theta)
    assert path == expected
    assert opt.observed_gradients(path) == GRADS


def test_generic_over_mpmath_float_and_numpy_dtypes():
    opt = Optimizer("gd", "0.1", "0.9", "0.01")
    exact = pytorch_sgd(THETAS[0], GRADS, Fraction("0.1"), Fraction("0.9"), Fraction("0.01"))
    with mpmath.workdps(50):
        path, theta, velocity = [], [mpmath.mpf(t.numerator) / t.denominator
                                     for t in THETAS[0]], None
        for g in GRADS:
            g = [mpmath.mpf(v.numerator) / v.denominator for v in g]
            theta, velocity = opt.step(theta, g, velocity)
            path.append(theta)
        assert all(isinstance(v, mpmath.mpf) for v in theta)
        assert max(abs(a - mpmath.mpf(b.numerator) / b.denominator)
                   for got, ref in zip(path, exact[1:]) for a, b in zip(got, ref)) < 1e-45
    for dtype in (np.float64, np.float32):
        theta, velocity = np.array([float(t) for t in THETAS[0]], dtype=dtype), None
        for g in GRADS:
            theta, velocity = opt.step(theta, np.array([float(v) for v in g], dtype=dtype),
                                       velocity)
        assert theta.dtype == dtype  # the coefficients are rounded to the data's format
        assert np.allclose(theta, [float(v) for v in exact[-1]],
                           atol=10 * np.finfo(dtype).eps)
    floats = opt.observed_gradients([[float(v) for v in t] for t in exact])
    assert np.allclose(floats, [[float(v) for v in g] for g in GRADS], atol=1e-13)
    arrays = opt.observed_gradients([np.array([float(v) for v in t]) for t in exact])
    assert np.allclose(np.array(arrays), np.array(floats), atol=0)


def test_exact_fields_and_file_object_round_trip():
    opt = Optimizer.from_dict({"name": "sgd", "lr": "0.10", "batch_size": 2,
                               "momentum": Decimal("0.9"), "weight_decay": "0"})
    assert opt.lr == Decimal("0.10") and str(opt.lr) == "0.10"
    assert opt.to_dict() == {"name": "sgd", "lr": "0.10", "batch_size": 2, "momentum": "0.9"}
    assert Optimizer.from_dict(opt.to_dict()) == opt
    assert opt.replace(momentum="0").to_dict() == {"name": "sgd", "lr": "0.10",
                                                   "batch_size": 2}
    with pytest.raises(Exception):
        opt.lr = Decimal(1)  # frozen


@pytest.mark.parametrize("fields,named", [
    ({"name": "lion", "lr": "0.1"}, "optimizer.name"),
    ({"name": "gd", "lr": "-0.1"}, "optimizer.lr"),
    ({"name": "gd", "lr": "exp(1)"}, "optimizer.lr"),
    ({"name": "gd"}, "optimizer.lr"),
    ({"name": "gd", "lr": "0.1", "momentum": "1"}, "optimizer.momentum"),
    ({"name": "gd", "lr": "0.1", "weight_decay": "-1e-3"}, "optimizer.weight_decay"),
    ({"name": "sgd", "lr": "0.1"}, "optimizer.batch_size"),
    ({"name": "sgd", "lr": "0.1", "batch_size": 0}, "optimizer.batch_size"),
    ({"name": "sgd", "lr": "0.1", "batch_size": True}, "optimizer.batch_size"),
    ([], "optimizer"),
])
def test_bad_fields_are_input_errors_naming_the_field(fields, named):
    with pytest.raises(InputError, match=f"^{named}"):
        Optimizer.from_dict(fields)


def test_trace_carries_a_typed_optimizer_and_writes_the_same_file():
    trace = Trace(Network([1, 1]), "0.1", 2, [["0.5", "0.5"], ["0.49", "0.48"]],
                  optimizer={"name": "sgd", "batch_size": 2, "momentum": "0.5"},
                  batches=[[0, 1]])
    assert isinstance(trace.optimizer, Optimizer) and trace.optimizer.name == "sgd"
    assert trace.to_dict()["optimizer"] == {"name": "sgd", "lr": "0.1", "batch_size": 2,
                                            "momentum": "0.5"}
    with pytest.raises(InputError, match="optimizer.batch_size"):
        Trace(Network([1, 1]), "0.1", 2, [["0.5", "0.5"], ["0.49", "0.48"]],
              optimizer={"name": "sgd", "batch_size": 3})
    same = Trace(trace.network, trace.lr, 2, trace.parameters, optimizer=trace.optimizer,
                 batches=trace.batches)
    assert same.to_json() == trace.to_json()


def test_gradient_uncertainty_of_the_inverse():
    opt = Optimizer("gd", "0.1", momentum="0.5", weight_decay="0.2")
    with mpmath.workdps(30):
        assert opt.gradient_uncertainty(Decimal("1e-7"), 1) == \
            mpmath.mpf("1e-7") * (mpmath.mpf("1.5") / mpmath.mpf("0.1") + mpmath.mpf("0.1"))


def test_interval_arrays_enclose_the_exact_gradient():
    """mpmath intervals in numpy arrays of two entries (an iv number on the left of an
    array would read it as the endpoints of one interval)."""
    opt = Optimizer("gd", "0.1", "0.9", "0.01")
    exact = pytorch_sgd(THETAS[0], GRADS, Fraction("0.1"), Fraction("0.9"), Fraction("0.01"))
    saved = mpmath.iv.prec
    try:
        mpmath.iv.prec = 200
        enclose = lambda q: mpmath.iv.mpf(q.numerator) / q.denominator  # noqa: E731
        thetas = [np.array([enclose(v) for v in theta], dtype=object) for theta in exact]
        observed = opt.observed_gradients(thetas, number=mpmath.iv.mpf)
        for got, ref in zip(observed, GRADS):
            for interval, value in zip(got, ref):
                low, high = (mpmath.mpf(e) for e in interval._mpi_)
                assert low <= mpmath.mpf(value.numerator) / value.denominator <= high
                assert high - low < 1e-50
        theta, velocity = opt.step(thetas[0], np.array([enclose(v) for v in GRADS[0]]))
        assert all(mpmath.mpf(t._mpi_[0]) <= mpmath.mpf(e.numerator) / e.denominator
                   <= mpmath.mpf(t._mpi_[1]) for t, e in zip(theta, exact[1]))
    finally:
        mpmath.iv.prec = saved


# -- every update equation against an independent implementation ----------------------

from generator import SGD as ReferenceSGD  # noqa: E402
from generator import Adam as ReferenceAdam  # noqa: E402

OPTIONS = [
    ({"name": "gd", "lr": "0.1", "momentum": "0.9", "nesterov": True}, "sgd"),
    ({"name": "gd", "lr": "0.1", "momentum": "0.8", "dampening": "0.3",
      "weight_decay": "0.05"}, "sgd"),
    ({"name": "adam", "lr": "0.01"}, "adam"),
    ({"name": "adam", "lr": "0.01", "betas": ["0.8", "0.99"], "eps": "1e-6",
      "weight_decay": "0.1", "amsgrad": True}, "adam"),
    ({"name": "adamw", "lr": "0.02", "weight_decay": "0.3"}, "adam"),
]
GRADIENTS = [["0.3", "-1.2", "0.01"], ["0.5", "-0.7", "-0.02"], ["-0.4", "-0.9", "0.03"],
             ["0.2", "0.8", "0.0"]]


def _reference(data, kind):
    options = dict(data)
    name, lr = options.pop("name"), options.pop("lr")
    if kind == "sgd":
        return ReferenceSGD(lr, options.get("momentum", 0), options.get("dampening", 0),
                            options.get("nesterov", False), options.get("weight_decay", 0))
    return ReferenceAdam(lr, tuple(options.get("betas", ("0.9", "0.999"))),
                         options.get("eps", "1e-8"),
                         options.get("weight_decay", "0.01" if name == "adamw" else 0),
                         options.get("amsgrad", False), decoupled=name == "adamw")


@pytest.mark.parametrize("data,kind", OPTIONS, ids=lambda v: str(v)[:40])
def test_update_equations_match_an_independent_implementation(data, kind):
    opt = Optimizer.from_dict(data)
    reference = _reference(data, kind)
    with mpmath.workdps(50):
        theta, state = [mpmath.mpf(v) for v in ("0.5", "-0.25", "1.5")], None
        expected = list(theta)
        for index, g in enumerate(GRADIENTS):
            g = [mpmath.mpf(v) for v in g]
            theta, state = opt.step(theta, g, state, index)
            expected = reference.step(expected, g)
            assert max(abs(a - b) for a, b in zip(theta, expected)) < mpmath.mpf(10) ** -45


@pytest.mark.parametrize("data,kind", OPTIONS[:2], ids=lambda v: str(v)[:40])
def test_sgd_variants_are_undone_exactly(data, kind):
    opt = Optimizer.from_dict(data)
    thetas, state = [[Fraction(1, 2), Fraction(-1, 4), Fraction(3, 2)]], None
    grads = [[Fraction(v) for v in g] for g in GRADIENTS]
    for index, g in enumerate(grads):
        theta, state = opt.step(thetas[-1], g, state, index)
        thetas.append(theta)
    assert opt.observed_gradients(thetas) == grads


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adams_first_step_is_undone_and_later_steps_are_ambiguous(name):
    opt = Optimizer(name, "0.05")
    with mpmath.workdps(60):
        g = [mpmath.mpf("1"), mpmath.mpf("1")]
        theta0 = [mpmath.mpf("0.3"), mpmath.mpf("-0.2")]
        theta1, state = opt.step(theta0, g, None, 0)
        observed = opt.observed_gradients([theta0, theta1])[0]
        # 60 digits in, about 60 - log10(|g| / eps) = 52 out
        assert max(abs(a - b) for a, b in zip(observed, g)) < mpmath.mpf(10) ** -50
        # the second step: g = 1 and another gradient give the same update (the text of
        # the module: two roots on the side of the sign condition)
        same = opt.step(theta1, [mpmath.mpf(1)] * 2, state, 1)[0]
        roots = opt.select_gradients([theta0, theta1, same],
                                     np.array([[1.0, 1.0], [1.3, 1.3]], dtype=float))[1]
        other = opt.step(theta1, [mpmath.mpf(float(r)) for r in roots], state, 1)[0]
        assert abs(float(roots[0]) - 1) > 0.1
        # the same update to the float64 selection's own noise (the first step's
        # inverse loses log10(|g| / eps) = 8 of double's 16 digits)
        assert max(abs(a - b) for a, b in zip(same, other)) < 1e-9


def test_schedule_and_options_round_trip_and_refusals():
    opt = Optimizer.from_dict({"name": "adamw", "lr": ["0.1", "0.05"], "betas": ["0.8", "0.9"],
                               "amsgrad": True})
    assert opt.schedule == (Decimal("0.1"), Decimal("0.05")) and opt.lr_at(1) == Decimal("0.05")
    assert Optimizer.from_dict(opt.to_dict()) == opt
    assert opt.to_dict() == {"name": "adamw", "lr": ["0.1", "0.05"], "betas": ["0.8", "0.9"],
                             "amsgrad": True}
    for data, named in [({"name": "adam", "lr": "0.1", "betas": ["0.9"]}, "optimizer.betas"),
                        ({"name": "adam", "lr": "0.1", "eps": "0"}, "optimizer.eps"),
                        ({"name": "gd", "lr": "0.1", "nesterov": True}, "optimizer.nesterov"),
                        ({"name": "gd", "lr": "0.1", "batch_size": 2}, "optimizer.batch_size"),
                        ({"name": "gd", "lr": ["0.1", "-1"]}, "optimizer.lr[1]"),
                        ({"name": "adam", "lr": "0.1", "momentum": "0.9"}, "optimizer.momentum"),
                        ({"name": "gd", "lr": "0.1", "local_steps": 0}, "optimizer.local_steps"),
                        ({"name": "gd", "lr": "0.1", "reset_state": 1}, "optimizer.reset_state")]:
        with pytest.raises(InputError, match=named.replace("[", r"\[").replace("]", r"\]")):
            Optimizer.from_dict(data)


def test_float32_steps_stay_float32():
    opt = Optimizer("adam", "0.01")
    theta = np.array([0.5, -0.25], dtype=np.float32)
    theta, state = opt.step(theta, np.array([0.3, -0.1], dtype=np.float32))
    theta, state = opt.step(theta, np.array([0.2, 0.1], dtype=np.float32), state, 1)
    assert theta.dtype == np.float32 and state[0].dtype == np.float32


def test_pytorch_agrees_with_every_update_equation():
    torch = pytest.importorskip("torch", reason="PyTorch not installed (the core install)")
    for data, _ in OPTIONS:
        opt = Optimizer.from_dict(data)
        parameter = torch.nn.Parameter(torch.tensor([0.5, -0.25, 1.5], dtype=torch.float64))
        options = {k: v for k, v in data.items() if k not in ("name",)}
        options = {k: (tuple(float(b) for b in v) if k == "betas" else
                       v if isinstance(v, bool) else float(v)) for k, v in options.items()}
        cls = {"gd": torch.optim.SGD, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW}[data["name"]]
        if data["name"] == "adamw" and "weight_decay" not in options:
            options["weight_decay"] = 0.01
        torch_opt = cls([parameter], **options)
        theta, state = np.array([0.5, -0.25, 1.5]), None
        for index, g in enumerate(GRADIENTS):
            g = np.array([float(v) for v in g])
            parameter.grad = torch.tensor(g)
            torch_opt.step()
            theta, state = opt.step(theta, g, state, index)
            assert np.allclose(parameter.detach().numpy(), theta, rtol=1e-13, atol=1e-15)
