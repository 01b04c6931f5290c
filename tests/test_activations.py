"""symbolic_inversion.activations: the registry, parameters, and a new activation added
as one class (recovered through, end to end)."""

import mpmath
import numpy as np
import pytest
import sympy as sp

from symbolic_inversion import (ACTIVATIONS, Activation, InputError, Network, Status,
                                get_activation, recover, register_activation, simulate)


def test_every_registered_activation_has_a_consistent_derivative():
    z = sp.Symbol("z")
    for name, activation in ACTIVATIONS.items():
        value = activation.expression(z)
        stated = activation.derivative(z, value)
        for point in ("-1.3", "-0.2", "0.4", "2.1"):
            at = sp.Float(point, 40)
            derived = sp.diff(value, z).subs(z, at)
            assert abs(sp.N(stated.subs(z, at) - derived, 30)) < 1e-25, name


@pytest.mark.parametrize("name,torch_name", [
    ("gelu", "gelu"), ("gelu_tanh", "gelu_tanh"), ("silu", "silu"),
    ("softplus", "softplus"), ("leaky_relu:0.2", "leaky_relu")])
def test_values_match_pytorch(name, torch_name):
    torch = pytest.importorskip("torch", reason="PyTorch not installed (the core install)")
    F = torch.nn.functional
    functions = {"gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
                 "silu": F.silu, "softplus": F.softplus,
                 "leaky_relu": lambda t: F.leaky_relu(t, 0.2)}
    z = np.linspace(-3, 3, 13)
    ours = get_activation(name).numpy(z)
    theirs = functions[torch_name](torch.tensor(z, dtype=torch.float64)).numpy()
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_names_with_parameters_are_canonical_and_checked():
    assert get_activation("leaky_relu:0.01") is get_activation("leaky_relu") or \
        get_activation("leaky_relu:0.01").name == "leaky_relu"
    assert Network([2, 1], "leaky_relu:0.20").activations == ("leaky_relu:0.2",)
    for bad in ("leaky_relu:x", "tanh:2", "swish", 3):
        with pytest.raises(InputError, match="network.activations"):
            get_activation(bad)


@pytest.fixture
def registry():
    """Activations registered by a test leave the registry with it."""
    from symbolic_inversion.activations import ACTIVATION_CLASSES, ACTIVATIONS
    before = dict(ACTIVATION_CLASSES), dict(ACTIVATIONS)
    yield
    for table, saved in zip((ACTIVATION_CLASSES, ACTIVATIONS), before):
        table.clear()
        table.update(saved)


def test_a_new_activation_is_one_class_and_data_come_back_through_it(registry):
    @register_activation
    class Arcsinh(Activation):
        name = "arcsinh_test"
        odd = True

        def expression(self, z):
            return sp.asinh(z)

    network = Network([2, 3, 1], ["arcsinh_test", "identity"])
    X = [["0.3", "-0.5"], ["0.8", "0.2"], ["-0.6", "0.7"]]
    Y = [["0.4"], ["-0.3"], ["0.9"]]
    trace = simulate(network, X, Y, lr="0.2", epochs=3, seed=4, dps=60)
    # what the program computes is SymPy's derivative of asinh, compiled
    assert trace.network.activations[0] == "arcsinh_test"
    solution = recover(trace)
    assert solution.status is Status.CONVERGED and solution.digits >= 30
    with mpmath.workdps(60):
        got = sorted((float(x[0]), float(x[1]), float(y[0])) for x, y in solution.samples)
    want = sorted((float(a), float(b), float(c[0])) for (a, b), c in zip(X, Y))
    assert np.allclose(got, want, atol=1e-25)
