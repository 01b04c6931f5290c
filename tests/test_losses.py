"""symbolic_inversion.losses: factors and links against PyTorch's losses, labels."""

import numpy as np
import pytest

from symbolic_inversion import InputError, Network, get_loss
from symbolic_inversion.program import LayerwiseProgram


def test_reductions_are_checked_and_defaults_are_pytorchs():
    assert get_loss("cross_entropy").reduction == "mean"
    assert get_loss("bce_with_logits").reduction == "mean"
    assert get_loss("mse").reduction == "sum_outputs"
    with pytest.raises(InputError, match="loss_reduction"):
        get_loss("cross_entropy", "sum_outputs")
    with pytest.raises(InputError, match="unknown loss"):
        get_loss("hinge")


def test_one_hot_labels_have_a_class():
    ce = get_loss("cross_entropy")
    assert ce.label_class([0, 1, 0]) == 1
    assert ce.label_class([0.2, 0.8, 0]) is None
    assert ce.label_class([1e-40, 1 - 1e-40, 0], tolerance=1e-30) == 1
    assert get_loss("mse").label_class([0, 1]) is None


@pytest.mark.parametrize("loss,reduction", [("cross_entropy", "mean"),
                                            ("cross_entropy", "sum"),
                                            ("bce_with_logits", "mean"),
                                            ("bce_with_logits", "sum"),
                                            ("mse", "mean")])
def test_the_loss_gradient_is_pytorchs(loss, reduction):
    torch = pytest.importorskip("torch", reason="PyTorch not installed (the core install)")
    network = Network([3, 4, 3], ["gelu", "identity"])
    rng = np.random.default_rng(0)
    theta = rng.uniform(-0.7, 0.7, network.num_parameters)
    X = rng.uniform(-1, 1, (5, 3))
    if loss == "cross_entropy":
        classes = rng.integers(0, 3, 5)
        Y = np.eye(3)[classes]
    else:
        Y = rng.uniform(0, 1, (5, 3))
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU(),
                                torch.nn.Linear(4, 3)).double()
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.tensor(theta), model.parameters())
    criterion = {"cross_entropy": torch.nn.CrossEntropyLoss,
                 "bce_with_logits": torch.nn.BCEWithLogitsLoss,
                 "mse": torch.nn.MSELoss}[loss](reduction=reduction)
    target = torch.tensor(classes) if loss == "cross_entropy" else torch.tensor(Y)
    criterion(model(torch.tensor(X)), target).backward()
    theirs = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
    ours = LayerwiseProgram(network, loss).mean_gradient(theta, X, Y,
                                                         loss=get_loss(loss, reduction))
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-15)
