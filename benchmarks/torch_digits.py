"""One PyTorch SGD step of a classifier on scikit-learn's 8 x 8 digits, recorded with
:class:`symbolic_inversion.torch.TraceRecorder`: the float32/float64 traces of
``bench_fedsgd.py`` and ``bench_relu_outputs.py`` (``None`` when torch or scikit-learn
is not installed)."""

import numpy as np


def available():
    try:
        import sklearn.datasets  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def digits_step(layers, activation, loss, n, seed, dtype="float32", lr=0.1):
    """``(trace, images, labels)`` of one full-batch SGD step (``lr``) of a
    ``layers`` network (``layers[0] == 64``, hidden ``activation``: ``"relu"``,
    ``"tanh"`` or ``"gelu"``; PyTorch's default initialisation, seeded) on ``n``
    distinct digits (pixels / 16), in ``dtype``; ``loss`` ``"cross_entropy"``
    (``nn.CrossEntropyLoss()``, labels one-hot) or ``"mse"`` (``nn.MSELoss()`` on the
    one-hot labels)."""
    import torch
    from sklearn.datasets import load_digits
    from symbolic_inversion.torch import TraceRecorder
    if layers[0] != 64:
        raise ValueError("digits have 64 pixels: layers[0] must be 64")
    kind = {"float32": torch.float32, "float64": torch.float64}[dtype]
    digits = load_digits()
    chosen = np.random.default_rng(seed).choice(len(digits.data), n, replace=False)
    X = torch.tensor(digits.data[chosen] / 16.0, dtype=kind)
    classes = torch.tensor(digits.target[chosen])
    onehot = np.eye(layers[-1])[digits.target[chosen]]
    torch.manual_seed(seed)
    modules = []
    for fan_in, fan_out in zip(layers[:-2], layers[1:-1]):
        modules += [torch.nn.Linear(fan_in, fan_out),
                    {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
                     "gelu": torch.nn.GELU}[activation]()]
    modules.append(torch.nn.Linear(layers[-2], layers[-1]))
    model = torch.nn.Sequential(*modules).to(kind)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    if loss == "cross_entropy":
        criterion, target = torch.nn.CrossEntropyLoss(), classes
    else:
        criterion, target = torch.nn.MSELoss(), torch.tensor(onehot, dtype=kind)
    recorder = TraceRecorder(model, optimizer, loss=criterion, samples=n)
    criterion(model(X), target).backward()
    optimizer.step()
    recorder.record()
    return recorder.trace(), X.double().numpy().tolist(), onehot.tolist()
